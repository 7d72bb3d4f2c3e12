import EddyState

/// How far through the source a sink's values are: the point of the stream a checkpoint stands for. Redis'
/// marker holds the progress of the values it holds; the checkpoint store holds the progress of the epoch a
/// sink last acknowledged.
///
/// Progress, not epoch numbers, is what the fence compares (DESIGN §3): two daemons started from copies of one
/// state directory number their epochs alike, so one epoch number can stand for different points of the
/// stream, while one set of offsets always stands for the same state (processing is deterministic).
public struct SinkProgress: Sendable, Equatable {
    /// The epoch the values come from: informational (logs, dashboards), never compared.
    public var epoch: UInt64
    /// A hash of what the sink writes (templates, encoding, the view's output): equal offsets are the same
    /// values only in the same form, so a changed output form is written again even at equal offsets.
    public var form: UInt64
    /// The next offset to read, per partition, of the checkpoint the values come from.
    public var offsets: [TopicPartition: Int64]

    public init(epoch: UInt64, form: UInt64, offsets: [TopicPartition: Int64]) {
        self.epoch = epoch
        self.form = form
        self.offsets = offsets
    }

    /// The form hash of a sink's fingerprint (FNV-1a, 64 bits: stable across processes, unlike `Hasher`).
    public static func form(ofFingerprint fingerprint: String) -> UInt64 {
        var hash: UInt64 = 0xcbf2_9ce4_8422_2325
        for byte in fingerprint.utf8 {
            hash ^= UInt64(byte)
            hash &*= 0x0000_0100_0000_01b3
        }
        return hash
    }

    // MARK: Order

    /// How `self` stands against `other`, partition by partition. A partition one side has no offset for
    /// counts as not started (below every offset).
    public func compared(to other: SinkProgress) -> Order {
        var ahead = false
        var behind = false
        for partition in Set(offsets.keys).union(other.offsets.keys) {
            let mine = offsets[partition] ?? -1
            let theirs = other.offsets[partition] ?? -1
            if mine > theirs { ahead = true }
            if mine < theirs { behind = true }
        }
        switch (ahead, behind) {
        case (false, false): return .same
        case (true, false): return .ahead
        case (false, true): return .behind
        case (true, true): return .incomparable
        }
    }

    /// Whether `self` has reached `other` on every partition (`.same` or `.ahead`).
    public func hasReached(_ other: SinkProgress) -> Bool {
        switch compared(to: other) {
        case .same, .ahead: return true
        case .behind, .incomparable: return false
        }
    }

    public enum Order: Sendable, Equatable {
        case same
        /// At least as far on every partition, further on one.
        case ahead
        /// At most as far on every partition, behind on one.
        case behind
        /// Ahead on one partition, behind on another: two writers that advanced partitions in different orders.
        case incomparable
    }

    // MARK: The marker's text

    /// The marker's value: `v1 <epoch> <form, 16 hex digits> <topic>/<partition>=<next offset> …`, partitions
    /// in order. Text, so that `redis-cli GET eddy:<sink>:epoch` tells an operator where Redis stands. Kafka
    /// topic names hold only `[a-zA-Z0-9._-]`, so the separators never occur in them.
    public var markerText: String {
        var text = "v1 \(epoch) \(Self.hex16(form))"
        for partition in offsets.keys.sorted(by: { ($0.topic, $0.partition) < ($1.topic, $1.partition) }) {
            text += " \(partition.topic)/\(partition.partition)=\(offsets[partition]!)"
        }
        return text
    }

    private static func hex16(_ value: UInt64) -> String {
        let digits = String(value, radix: 16)
        return String(repeating: "0", count: 16 - digits.count) + digits
    }

    /// What a sink's marker key holds.
    public enum Marker: Sendable, Equatable {
        /// No marker: nothing was ever written, or Redis lost its data.
        case absent
        /// A bare epoch number, written by an Eddy from before the progress fence: where Redis stands is
        /// unknown, so the whole view is written again (once, on upgrade).
        case epochOnly(UInt64)
        case progress(SinkProgress)
    }

    /// Parses a marker's value; nil when it is neither form (another program uses the key).
    public static func parseMarker(_ bytes: [UInt8]) -> Marker? {
        let text = String(decoding: bytes, as: UTF8.self)
        if !bytes.isEmpty && bytes.allSatisfy({ $0 >= UInt8(ascii: "0") && $0 <= UInt8(ascii: "9") }) {
            return UInt64(text).map(Marker.epochOnly)
        }
        let fields = text.split(separator: " ", omittingEmptySubsequences: false)
        guard fields.count >= 3, fields[0] == "v1", let epoch = UInt64(fields[1]), fields[2].count == 16,
            let form = UInt64(fields[2], radix: 16)
        else { return nil }
        var offsets: [TopicPartition: Int64] = [:]
        for field in fields.dropFirst(3) {
            guard let slash = field.lastIndex(of: "/"), let equals = field.lastIndex(of: "="), slash < equals,
                slash > field.startIndex,
                let partition = Int32(field[field.index(after: slash)..<equals]),
                let offset = Int64(field[field.index(after: equals)...])
            else { return nil }
            offsets[TopicPartition(topic: String(field[..<slash]), partition: partition)] = offset
        }
        return .progress(SinkProgress(epoch: epoch, form: form, offsets: offsets))
    }
}
