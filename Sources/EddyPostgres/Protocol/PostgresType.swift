import EddySQL
import Foundation
import NIOCore

/// A PostgreSQL type as the protocol names it: its OID and fixed size (-1: variable).
public struct PostgresType: Sendable, Hashable {
    public var oid: Int32
    public var size: Int16
    /// The name `format_type` and `DESCRIBE` show.
    public var name: String

    public static let bool = PostgresType(oid: 16, size: 1, name: "boolean")
    public static let int8 = PostgresType(oid: 20, size: 8, name: "bigint")
    public static let int2 = PostgresType(oid: 21, size: 2, name: "smallint")
    public static let int4 = PostgresType(oid: 23, size: 4, name: "integer")
    public static let text = PostgresType(oid: 25, size: -1, name: "text")
    public static let oid = PostgresType(oid: 26, size: 4, name: "oid")
    public static let float4 = PostgresType(oid: 700, size: 4, name: "real")
    public static let float8 = PostgresType(oid: 701, size: 8, name: "double precision")
    public static let varchar = PostgresType(oid: 1043, size: -1, name: "character varying")
    public static let date = PostgresType(oid: 1082, size: 4, name: "date")
    public static let timestamp = PostgresType(oid: 1114, size: 8, name: "timestamp without time zone")
    public static let numeric = PostgresType(oid: 1700, size: -1, name: "numeric")
    public static let unknown = PostgresType(oid: 705, size: -2, name: "unknown")

    /// The type a column of Eddy's `type` has on the wire.
    public init(_ type: ValueType) {
        switch type {
        case .boolean: self = .bool
        case .integer: self = .int8
        case .double: self = .float8
        case .numeric: self = .numeric
        case .text: self = .varchar
        case .timestamp, .timestamptz: self = .timestamp
        case .date: self = .date
        case .interval, .unknown: self = .text
        }
    }

    public init(oid: Int32, size: Int16, name: String) {
        self.oid = oid
        self.size = size
        self.name = name
    }

    /// Known types by OID, for parameter types a client names.
    static func named(oid: Int32) -> PostgresType? {
        [PostgresType.bool, .int8, .int2, .int4, .text, .oid, .float4, .float8, .varchar, .date, .timestamp, .numeric, .unknown].first { $0.oid == oid }
    }

    var isInteger: Bool { self == .int2 || self == .int4 || self == .int8 || self == .oid }
    var isNumber: Bool { isInteger || self == .float4 || self == .float8 || self == .numeric }
}

/// Writes one value in text (format 0) or binary (format 1), length first (-1 for NULL).
enum ValueEncoding {
    /// Appends `value`, as a column of `type`, to `buffer`.
    static func write(_ value: SQLValue, as type: PostgresType, binary: Bool, into buffer: inout ByteBuffer) {
        if value.isNull {
            buffer.writeInteger(Int32(-1))
            return
        }
        let lengthIndex = buffer.writerIndex
        buffer.writeInteger(Int32(0))
        if binary {
            writeBinary(value, as: type, into: &buffer)
        } else {
            buffer.writeString(value.text)
        }
        buffer.setInteger(Int32(buffer.writerIndex - lengthIndex - 4), at: lengthIndex)
    }

    private static func writeBinary(_ value: SQLValue, as type: PostgresType, into buffer: inout ByteBuffer) {
        switch type {
        case .bool: buffer.writeInteger(UInt8(value == .bool(true) ? 1 : 0))
        case .int8: buffer.writeInteger(integer(value))
        case .int4: buffer.writeInteger(Int32(truncatingIfNeeded: integer(value)))
        case .int2: buffer.writeInteger(Int16(truncatingIfNeeded: integer(value)))
        case .oid: buffer.writeInteger(UInt32(truncatingIfNeeded: integer(value)))
        case .float8: buffer.writeInteger(double(value).bitPattern)
        case .float4: buffer.writeInteger(Float(double(value)).bitPattern)
        case .numeric: writeNumeric(value.text, into: &buffer)
        case .timestamp:
            buffer.writeInteger(CivilText.microsecondsSince2000(value.text) ?? 0)
        case .date:
            buffer.writeInteger(Int32(truncatingIfNeeded: CivilText.daysSince2000(value.text) ?? 0))
        default: buffer.writeString(value.text)
        }
    }

    private static func integer(_ value: SQLValue) -> Int64 {
        switch value {
        case .int(let number): number
        case .double(let number): Int64(exactly: number.rounded()) ?? 0
        case .bool(let flag): flag ? 1 : 0
        default: Int64(value.text) ?? 0
        }
    }

    private static func double(_ value: SQLValue) -> Double {
        switch value {
        case .int(let number): Double(number)
        case .double(let number): number
        default: Double(value.text) ?? .nan
        }
    }

    /// PostgreSQL's binary numeric: digit count, weight, sign, display scale, then base-10000 digits.
    static func writeNumeric(_ text: String, into buffer: inout ByteBuffer) {
        var decimal = text
        if decimal.contains("e") || decimal.contains("E"), let number = Double(decimal) { decimal = String(format: "%.17f", number) }
        let negative = decimal.hasPrefix("-")
        if negative || decimal.hasPrefix("+") { decimal.removeFirst() }
        let parts = decimal.split(separator: ".", omittingEmptySubsequences: false)
        let integerDigits = parts.first.map(String.init) ?? ""
        let fractionDigits = parts.count > 1 ? String(parts[1]) : ""
        guard (integerDigits + fractionDigits).allSatisfy(\.isASCIIDigit), !(integerDigits + fractionDigits).isEmpty else {
            // NaN and the infinities.
            let sign: UInt16 = decimal == "Infinity" ? (negative ? 0xF000 : 0xD000) : 0xC000
            buffer.writeMultipleIntegers(Int16(0), Int16(0), sign, Int16(0))
            return
        }
        let paddedInteger = String(repeating: "0", count: (4 - integerDigits.count % 4) % 4) + integerDigits
        let paddedFraction = fractionDigits + String(repeating: "0", count: (4 - fractionDigits.count % 4) % 4)
        var groups: [Int16] = []
        for source in [paddedInteger, paddedFraction] {
            var chunk = source[...]
            while !chunk.isEmpty {
                groups.append(Int16(chunk.prefix(4))!)
                chunk = chunk.dropFirst(4)
            }
        }
        var weight = paddedInteger.count / 4 - 1
        while let first = groups.first, first == 0 {
            groups.removeFirst()
            weight -= 1
        }
        while let last = groups.last, last == 0 { groups.removeLast() }
        if groups.isEmpty { weight = 0 }
        buffer.writeMultipleIntegers(Int16(groups.count), Int16(weight), UInt16(negative && !groups.isEmpty ? 0x4000 : 0), Int16(fractionDigits.count))
        for group in groups { buffer.writeInteger(group) }
    }
}

/// Eddy carries times as canonical text (`YYYY-MM-DD HH:MM:SS[.ffffff]`, `YYYY-MM-DD`); the binary forms
/// count from 2000-01-01.
enum CivilText {
    /// 2000-01-01 as days of the Unix epoch.
    private static let epoch2000Days: Int64 = 10_957

    static func daysSince2000(_ text: String) -> Int64? {
        let bytes = Array(text.utf8)
        guard bytes.count >= 10, let year = number(bytes[0..<4]), bytes[4] == UInt8(ascii: "-"),
            let month = number(bytes[5..<7]), bytes[7] == UInt8(ascii: "-"), let day = number(bytes[8..<10])
        else { return nil }
        return CivilTime.days(year: year, month: month, day: day) - epoch2000Days
    }

    static func microsecondsSince2000(_ text: String) -> Int64? {
        if let micros = CivilTime.microseconds(of: text) { return micros - epoch2000Days * 86_400_000_000 }
        return daysSince2000(text).map { $0 * 86_400_000_000 }
    }

    private static func number(_ digits: ArraySlice<UInt8>) -> Int64? {
        var value: Int64 = 0
        for digit in digits {
            guard digit >= UInt8(ascii: "0"), digit <= UInt8(ascii: "9") else { return nil }
            value = value * 10 + Int64(digit - UInt8(ascii: "0"))
        }
        return digits.isEmpty ? nil : value
    }
}

extension Character {
    var isASCIIDigit: Bool { isASCII && isNumber }
}
