/// How the store lays out its own keys and values. The engine owns the encoding of view keys and aggregates.
///
/// - `meta`: `format_version` → UInt64 LE, `epoch` → UInt64 LE, `ack:<sink>` → UInt64 LE,
///   `ack_offsets:<sink>` → the offsets of that epoch (`encodeOffsets`; absent in stores written before the
///   progress fence, which then re-send the whole view once),
///   `ack_slot:<sink>:<slot>` → the epoch (UInt64 LE) and offsets (`encodeOffsets`) of the last acknowledged write
///   that touched that Redis Cluster hash slot (a cluster sink's per-slot fence; none for a single Redis),
///   `fingerprint:<view>` → what the view's state means (UTF-8), `definition:<view>` → a self-contained
///   definition for readers without the pipeline file (UTF-8), `sink:<sink>` → what the sink writes to Redis
///   (UTF-8), `tombstones:<sink>` NUL epoch (UInt64 big-endian, so that a sink's entries sort by epoch) → the
///   Redis keys the sink deleted in that epoch (`Tombstones`), kept until the sink acknowledges it.
/// - `offsets`: topic UTF-8, a NUL byte, partition Int32 big-endian → next offset Int64 LE.
/// - `view:<name>`: engine bytes → engine bytes.
///
/// Values carry no checksum (LMDB keeps none either), by decision: what damages a store in practice is a file
/// cut short or overwritten from outside, not a torn page (LMDB writes copy-on-write and syncs the data before
/// the meta page that makes it visible). A short file is refused before it is mapped (`LMDBDataFile`),
/// garbage over the meta pages by LMDB, and every value is decoded strictly (the engine rejects a wrong
/// version, tag, length or trailing byte as `corrupt_state`). A checksum would add only the detection of
/// silent bit flips that leave a value well-formed; it would not cover LMDB's own branch pages, would cost a
/// format change and a pass over every dirty value at each checkpoint, and the filesystem's checksums (ZFS,
/// btrfs) or ECC memory cover the whole file better.
enum StateEncoding {
    /// The on-disk format this build writes and reads. Bump on any incompatible layout change.
    static let formatVersion: UInt64 = 1

    static let metaDatabase = "meta"
    static let offsetsDatabase = "offsets"
    static let viewDatabasePrefix = "view:"

    static let formatVersionKey = "format_version"
    static let epochKey = "epoch"
    static let acknowledgedPrefix = "ack:"
    static let acknowledgedOffsetsPrefix = "ack_offsets:"
    static let acknowledgedSlotPrefix = "ack_slot:"

    static func acknowledgedSlotKey(sink: String, slot: UInt16) -> String { acknowledgedSlotPrefix + sink + ":" + String(slot) }

    /// `ack_slot:<sink>:<slot>` → (sink, slot); the slot follows the last ':' (a sink name may hold one).
    static func decodeAcknowledgedSlotKey(_ name: String) -> (sink: String, slot: UInt16)? {
        let rest = name.dropFirst(acknowledgedSlotPrefix.count)
        guard let colon = rest.lastIndex(of: ":"), let slot = UInt16(rest[rest.index(after: colon)...]) else { return nil }
        return (String(rest[..<colon]), slot)
    }

    /// An acknowledged slot's value: the epoch, then its offsets.
    static func encodeAcknowledged(_ progress: AcknowledgedProgress) -> [UInt8] {
        encode(progress.epoch) + encodeOffsets(progress.offsets)
    }

    static func decodeAcknowledged(_ bytes: UnsafeRawBufferPointer) -> AcknowledgedProgress? {
        guard bytes.count >= 8, let epoch = decodeUInt64(UnsafeRawBufferPointer(rebasing: bytes[0..<8])),
            let offsets = decodeOffsets(UnsafeRawBufferPointer(rebasing: bytes[8...]))
        else { return nil }
        return AcknowledgedProgress(epoch: epoch, offsets: offsets)
    }
    static let tombstonesPrefix = "tombstones:"

    /// `tombstones:<sink>` and a NUL: every key of the sink's tombstones starts with it, and no other sink's does.
    static func tombstonesKeyPrefix(sink: String) -> [UInt8] { Array((tombstonesPrefix + sink).utf8) + [0] }

    static func tombstonesKey(sink: String, epoch: UInt64) -> [UInt8] {
        tombstonesKeyPrefix(sink: sink) + withUnsafeBytes(of: epoch.bigEndian) { Array($0) }
    }

    /// The epoch of a tombstones key that starts with a `tombstonesKeyPrefix` of `prefixLength` bytes.
    static func tombstonesEpoch(_ key: UnsafeRawBufferPointer, prefixLength: Int) -> UInt64? {
        guard key.count == prefixLength + 8 else { return nil }
        return UInt64(bigEndian: key.loadUnaligned(fromByteOffset: prefixLength, as: UInt64.self))
    }

    static let fingerprintPrefix = "fingerprint:"
    static let definitionPrefix = "definition:"
    static let sinkFingerprintPrefix = "sink:"

    static func viewDatabaseName(_ view: String) -> String { viewDatabasePrefix + view }

    static func encode(_ value: UInt64) -> [UInt8] {
        withUnsafeBytes(of: value.littleEndian) { Array($0) }
    }

    static func encode(_ value: Int64) -> [UInt8] {
        withUnsafeBytes(of: value.littleEndian) { Array($0) }
    }

    static func decodeUInt64(_ bytes: UnsafeRawBufferPointer) -> UInt64? {
        guard bytes.count == 8 else { return nil }
        return UInt64(littleEndian: bytes.loadUnaligned(as: UInt64.self))
    }

    static func decodeInt64(_ bytes: UnsafeRawBufferPointer) -> Int64? {
        guard bytes.count == 8 else { return nil }
        return Int64(littleEndian: bytes.loadUnaligned(as: Int64.self))
    }

    static func offsetKey(_ topicPartition: TopicPartition) -> [UInt8] {
        var key = Array(topicPartition.topic.utf8)
        key.append(0)
        withUnsafeBytes(of: topicPartition.partition.bigEndian) { key.append(contentsOf: $0) }
        return key
    }

    static func decodeOffsetKey(_ bytes: UnsafeRawBufferPointer) -> TopicPartition? {
        guard bytes.count >= 5, bytes[bytes.count - 5] == 0 else { return nil }
        let topic = String(decoding: bytes[0..<(bytes.count - 5)], as: UTF8.self)
        let partition = Int32(bigEndian: bytes.loadUnaligned(fromByteOffset: bytes.count - 4, as: Int32.self))
        return TopicPartition(topic: topic, partition: partition)
    }

    /// Offsets per partition: for each, the offset key's length (UInt16 LE), the key (`offsetKey`), the
    /// offset (Int64 LE).
    static func encodeOffsets(_ offsets: [TopicPartition: Int64]) -> [UInt8] {
        var bytes: [UInt8] = []
        for (topicPartition, offset) in offsets {
            let key = offsetKey(topicPartition)
            withUnsafeBytes(of: UInt16(key.count).littleEndian) { bytes.append(contentsOf: $0) }
            bytes.append(contentsOf: key)
            bytes.append(contentsOf: encode(offset))
        }
        return bytes
    }

    static func decodeOffsets(_ bytes: UnsafeRawBufferPointer) -> [TopicPartition: Int64]? {
        var offsets: [TopicPartition: Int64] = [:]
        var position = 0
        while position < bytes.count {
            guard position + 2 <= bytes.count else { return nil }
            let keyLength = Int(UInt16(littleEndian: bytes.loadUnaligned(fromByteOffset: position, as: UInt16.self)))
            position += 2
            guard position + keyLength + 8 <= bytes.count,
                let topicPartition = decodeOffsetKey(UnsafeRawBufferPointer(rebasing: bytes[position..<(position + keyLength)])),
                let offset = decodeInt64(UnsafeRawBufferPointer(rebasing: bytes[(position + keyLength)..<(position + keyLength + 8)]))
            else { return nil }
            offsets[topicPartition] = offset
            position += keyLength + 8
        }
        return offsets
    }

    static func string(_ bytes: UnsafeRawBufferPointer) -> String { String(decoding: bytes, as: UTF8.self) }
}

extension String {
    /// Calls `body` with this string's UTF-8 bytes, without copying when the string is native.
    func withUTF8Buffer<Result>(_ body: (UnsafeRawBufferPointer) throws -> Result) rethrows -> Result {
        var copy = self
        return try copy.withUTF8 { try body(UnsafeRawBufferPointer($0)) }
    }
}
