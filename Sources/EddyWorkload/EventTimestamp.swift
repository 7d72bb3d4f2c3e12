#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// A UTC time rendered as the 19 bytes `YYYY-MM-DD HH:MM:SS` (the `event_timestamp` format), kept inline
/// so that stamping a message copies bytes and allocates nothing.
public struct EventTimestamp: Sendable, Equatable, CustomStringConvertible {
    /// Seconds since the Unix epoch this text stands for.
    public let epochSeconds: Int64
    private var text: (UInt64, UInt64, UInt32) = (0, 0, 0)

    public init(epochSeconds: Int64) {
        self.epochSeconds = epochSeconds
        let days = epochSeconds >= 0 ? epochSeconds / 86_400 : (epochSeconds - 86_399) / 86_400
        let secondOfDay = Int(epochSeconds - days * 86_400)
        let (year, month, day) = Self.civilDate(daysSinceEpoch: days)
        var bytes = [UInt8](repeating: 0, count: 20)
        func put(_ value: Int, width: Int, at offset: Int) {
            var remaining = value
            for position in stride(from: offset + width - 1, through: offset, by: -1) {
                bytes[position] = UInt8(truncatingIfNeeded: 48 + remaining % 10)
                remaining /= 10
            }
        }
        put(Int(year), width: 4, at: 0)
        bytes[4] = UInt8(ascii: "-")
        put(month, width: 2, at: 5)
        bytes[7] = UInt8(ascii: "-")
        put(day, width: 2, at: 8)
        bytes[10] = UInt8(ascii: " ")
        put(secondOfDay / 3600, width: 2, at: 11)
        bytes[13] = UInt8(ascii: ":")
        put(secondOfDay / 60 % 60, width: 2, at: 14)
        bytes[16] = UInt8(ascii: ":")
        put(secondOfDay % 60, width: 2, at: 17)
        withUnsafeMutableBytes(of: &text) { storage in
            storage.copyBytes(from: bytes[0..<Self.length])
        }
    }

    /// The current UTC time, to the second.
    public static func now() -> EventTimestamp {
        var spec = timespec()
        clock_gettime(CLOCK_REALTIME, &spec)
        return EventTimestamp(epochSeconds: Int64(spec.tv_sec))
    }

    /// The rendered text's length in bytes.
    public static let length = 19

    @inline(__always)
    public func append(to buffer: inout [UInt8]) {
        withUnsafeBytes(of: text) { buffer.append(contentsOf: $0.prefix(Self.length)) }
    }

    public var description: String {
        var bytes: [UInt8] = []
        append(to: &bytes)
        return String(decoding: bytes, as: UTF8.self)
    }

    public static func == (lhs: EventTimestamp, rhs: EventTimestamp) -> Bool { lhs.epochSeconds == rhs.epochSeconds }

    /// Days since 1970-01-01 to a proleptic Gregorian date (Howard Hinnant's `civil_from_days`).
    static func civilDate(daysSinceEpoch: Int64) -> (year: Int64, month: Int, day: Int) {
        let z = daysSinceEpoch + 719_468
        let era = (z >= 0 ? z : z - 146_096) / 146_097
        let dayOfEra = z - era * 146_097
        let yearOfEra = (dayOfEra - dayOfEra / 1460 + dayOfEra / 36524 - dayOfEra / 146_096) / 365
        let dayOfYear = dayOfEra - (365 * yearOfEra + yearOfEra / 4 - yearOfEra / 100)
        let monthIndex = (5 * dayOfYear + 2) / 153
        let day = Int(dayOfYear - (153 * monthIndex + 2) / 5 + 1)
        let month = Int(monthIndex < 10 ? monthIndex + 3 : monthIndex - 9)
        return (yearOfEra + era * 400 + (month <= 2 ? 1 : 0), month, day)
    }
}
