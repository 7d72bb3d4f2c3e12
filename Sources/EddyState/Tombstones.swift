/// Redis keys a sink deleted in one epoch, kept in the checkpoint until the sink has acknowledged that epoch
/// (`CheckpointWriter.putTombstones`, `pruneTombstones`).
///
/// Why: after a crash between Redis applying an epoch and the store recording the acknowledgement, the sink
/// re-sends the whole view, which names only the rows the view holds now. A row that left the view in between
/// (a filter over a view, `HAVING`, a temporal filter) would keep its key in Redis for good; the whole view
/// deletes the keys of the unacknowledged epochs' tombstones too (`docs/model`, run c_s4a).
///
/// Encoded as, per key, its length (UInt32 little-endian) and its bytes.
public struct Tombstones: Sendable, Equatable {
    public private(set) var bytes: [UInt8] = []
    public private(set) var count = 0

    public init() {}

    public var isEmpty: Bool { count == 0 }

    public mutating func append(_ key: UnsafeRawBufferPointer) {
        precondition(key.count <= Int(UInt32.max), "a Redis key over 4 GiB")
        withUnsafeBytes(of: UInt32(key.count).littleEndian) { bytes.append(contentsOf: $0) }
        bytes.append(contentsOf: key)
        count += 1
    }

    public mutating func removeAll() {
        bytes.removeAll(keepingCapacity: true)
        count = 0
    }

    /// Calls `body` with each key of an encoded list (borrowed buffers); nil when the encoding is malformed.
    static func forEach(encoded: UnsafeRawBufferPointer, _ body: (UnsafeRawBufferPointer) throws -> Void) rethrows -> Bool {
        var position = 0
        while position < encoded.count {
            guard position + 4 <= encoded.count else { return false }
            let length = Int(UInt32(littleEndian: encoded.loadUnaligned(fromByteOffset: position, as: UInt32.self)))
            position += 4
            guard length <= encoded.count - position else { return false }
            try body(UnsafeRawBufferPointer(rebasing: encoded[position..<(position + length)]))
            position += length
        }
        return true
    }
}
