import EddyRedis

/// Redis keys and their values, flat: all bytes back to back in one array, and per pair where its key starts
/// and how long its key and value are. An epoch's pairs travel this way from the renderer through the sink's
/// coalescing to the `MSET`s, so that a key costs no array of its own (at a million keys the per-pair
/// `[UInt8]`s were most of the checkpoint thread's and the sink's allocations, reference counting and memory).
///
/// As a collection its elements are `SinkStateMachine.Pair`s, made on access (for tests and the rare paths);
/// the per-epoch paths read the bytes in place (`forEachKeyValue`). Equality compares the pairs in order.
public struct SinkPairBatch: Sendable, RandomAccessCollection, ExpressibleByArrayLiteral, Equatable, CustomStringConvertible {
    /// One pair: its key at `start`, its value right after the key; `valueLength` -1 deletes the key.
    struct Entry: Sendable {
        var start: Int
        var keyLength: Int32
        var valueLength: Int32

        var keyEnd: Int { start &+ Int(keyLength) }
        var hasValue: Bool { valueLength >= 0 }
        /// The bytes the entry holds.
        var length: Int { Int(keyLength) &+ Swift.max(0, Int(valueLength)) }
    }

    /// Keys and values back to back. Renderers append a pair's bytes here, then call `endPair`.
    var bytes: [UInt8] = []
    private(set) var entries: [Entry] = []
    /// Bytes of pairs that were replaced (`replace`): dropped by `compacted()`.
    private(set) var unusedBytes = 0

    public init() {}

    /// Room for about `count` pairs of `bytes` bytes in all.
    init(reservingPairs count: Int, bytes byteCount: Int) {
        entries.reserveCapacity(count)
        bytes.reserveCapacity(byteCount)
    }

    public init(_ pairs: some Sequence<SinkStateMachine.Pair>) {
        for pair in pairs { append(pair) }
    }

    public init(arrayLiteral pairs: SinkStateMachine.Pair...) {
        self.init(pairs)
    }

    public var startIndex: Int { 0 }
    public var endIndex: Int { entries.count }

    public subscript(position: Int) -> SinkStateMachine.Pair {
        let entry = entries[position]
        return SinkStateMachine.Pair(
            key: Array(bytes[entry.start..<entry.keyEnd]),
            value: entry.hasValue ? Array(bytes[entry.keyEnd..<(entry.keyEnd + Int(entry.valueLength))]) : nil)
    }

    /// The bytes held by pairs, without replaced ones.
    public var byteCount: Int { bytes.count - unusedBytes }

    public mutating func append(_ pair: SinkStateMachine.Pair) {
        let start = bytes.count
        bytes.append(contentsOf: pair.key)
        let keyEnd = bytes.count
        if let value = pair.value { bytes.append(contentsOf: value) }
        endPair(start: start, keyEnd: keyEnd, hasValue: pair.value != nil)
    }

    /// Appends pair `position` of `other`.
    mutating func append(_ other: SinkPairBatch, at position: Int) {
        let entry = other.entries[position]
        let start = bytes.count
        other.bytes.withUnsafeBytes { bytes.append(contentsOf: $0[entry.start..<(entry.start + entry.length)]) }
        entries.append(Entry(start: start, keyLength: entry.keyLength, valueLength: entry.valueLength))
    }

    /// Closes the pair whose key the caller appended to `bytes` from `start` to `keyEnd`, followed by its value
    /// (up to the end of `bytes`) when `hasValue`.
    @inline(__always)
    mutating func endPair(start: Int, keyEnd: Int, hasValue: Bool) {
        precondition(keyEnd - start <= Int(Int32.max) && bytes.count - keyEnd <= Int(Int32.max), "a Redis key or value over 2 GiB")
        entries.append(Entry(start: start, keyLength: Int32(truncatingIfNeeded: keyEnd &- start),
                             valueLength: hasValue ? Int32(truncatingIfNeeded: bytes.count &- keyEnd) : -1))
    }

    /// Removes the last pair (its bytes must be the last in `bytes`).
    mutating func removeLast() {
        let entry = entries.removeLast()
        precondition(entry.start + entry.length == bytes.count, "the last pair's bytes are not the last bytes")
        bytes.removeSubrange(entry.start...)
    }

    /// Pair `position` takes the key and value of the last pair, which is removed as a pair of its own; their keys
    /// must be equal. The replaced bytes stay until `compacted()`.
    mutating func replaceWithLast(_ position: Int) {
        let last = entries.removeLast()
        unusedBytes += entries[position].length
        entries[position] = last
    }

    /// Pair `position` takes the value of `other`'s pair `otherPosition` (the same key).
    mutating func replace(_ position: Int, with other: SinkPairBatch, at otherPosition: Int) {
        unusedBytes += entries[position].length
        append(other, at: otherPosition)
        entries[position] = entries.removeLast()
    }

    /// The same pairs in as many bytes as they hold (pair numbers unchanged).
    func compacted() -> SinkPairBatch {
        unusedBytes > 0 ? keepingPairs { _ in true } : self
    }

    /// The pairs `keep` selects by number, in order, compacted.
    func keepingPairs(where keep: (Int) -> Bool) -> SinkPairBatch {
        var result = SinkPairBatch(reservingPairs: entries.count, bytes: byteCount)
        for position in entries.indices where keep(position) { result.append(self, at: position) }
        return result
    }

    /// Calls `body` with each key and its value (nil: delete the key), in order; the buffers are valid only
    /// during the call.
    public func forEachKeyValue(_ body: (UnsafeRawBufferPointer, UnsafeRawBufferPointer?) throws -> Void) rethrows {
        try bytes.withUnsafeBytes { all in
            let base = all.baseAddress
            for entry in entries {
                let key = UnsafeRawBufferPointer(start: base.map { $0 + entry.start }, count: Int(entry.keyLength))
                let value = entry.hasValue
                    ? UnsafeRawBufferPointer(start: base.map { $0 + entry.keyEnd }, count: Int(entry.valueLength)) : nil
                try body(key, value)
            }
        }
    }

    /// The key of pair `position`, valid only during the call.
    @inline(__always)
    func withKey<Result>(_ position: Int, _ body: (UnsafePointer<UInt8>, Int) throws -> Result) rethrows -> Result {
        let entry = entries[position]
        return try bytes.withUnsafeBufferPointer { all in
            // An empty batch's array may have no buffer; an empty key is then read nowhere.
            guard let base = all.baseAddress else { return try withUnsafePointer(to: UInt8(0)) { try body($0, 0) } }
            return try body(base + entry.start, Int(entry.keyLength))
        }
    }

    func key(of position: Int, equals bytes: [UInt8]) -> Bool {
        withKey(position) { key, length in
            length == bytes.count && bytes.withUnsafeBufferPointer { length == 0 || NameTables.equalBytes($0.baseAddress.unsafelyUnwrapped, key, length) }
        }
    }

    public static func == (lhs: SinkPairBatch, rhs: SinkPairBatch) -> Bool {
        lhs.count == rhs.count && lhs.elementsEqual(rhs)
    }

    public var description: String {
        "[" + map { pair in
            "\(String(decoding: pair.key, as: UTF8.self)): \(pair.value.map { String(decoding: $0, as: UTF8.self) } ?? "delete")"
        }.joined(separator: ", ") + "]"
    }
}

extension SinkPairBatch: RedisEpochPairs {}

/// An index of a batch's keys: open addressing over pair numbers, the keys compared in the batch's own bytes
/// (nothing copied). Used to find a pair by its key when several render to one key and when pending epochs
/// coalesce. Seeded at random, so that crafted keys cannot aim at one slot.
struct SinkPairKeyIndex: Sendable {
    /// 0: empty; else the hash's high 32 bits (a tag that skips most key comparisons) and the pair number + 1.
    private var slots: [UInt64]
    private var mask: Int
    private(set) var count = 0
    let seed: UInt64

    init(expectedCount: Int, seed: UInt64) {
        var capacity = 16
        while capacity < expectedCount * 2 { capacity *= 2 }
        slots = Array(repeating: 0, count: capacity)
        mask = capacity - 1
        self.seed = seed
    }

    /// An index of every pair of `batch` (whose keys must be distinct).
    init(of batch: SinkPairBatch, seed: UInt64) {
        self.init(expectedCount: batch.count, seed: seed)
        for position in batch.indices { insert(position, hash: hash(ofPair: position, in: batch), in: batch) }
    }

    @inline(__always)
    func hash(_ key: UnsafePointer<UInt8>, count: Int) -> UInt64 {
        KeyHasher.hash(key, count: count, seed: seed)
    }

    func hash(ofPair position: Int, in batch: SinkPairBatch) -> UInt64 {
        batch.withKey(position) { hash($0, count: $1) }
    }

    /// The number of the pair of `batch` whose key is `key`, or -1.
    func find(_ key: UnsafePointer<UInt8>, count length: Int, hash: UInt64, in batch: SinkPairBatch) -> Int {
        let tag = hash & ByteSetTable.tagMask
        return slots.withUnsafeBufferPointer { slots in
            batch.entries.withUnsafeBufferPointer { entries in
                batch.bytes.withUnsafeBufferPointer { bytes in
                    var slot = Int(truncatingIfNeeded: hash) & mask
                    while true {
                        let value = slots[slot]
                        if value == 0 { return -1 }
                        if value & ByteSetTable.tagMask == tag {
                            let position = Int(truncatingIfNeeded: value & 0xFFFF_FFFF) &- 1
                            let entry = entries[position]
                            if Int(entry.keyLength) == length
                                && (length == 0 || NameTables.equalBytes(bytes.baseAddress.unsafelyUnwrapped + entry.start, key, length))
                            {
                                return position
                            }
                        }
                        slot = (slot &+ 1) & mask
                    }
                }
            }
        }
    }

    /// Adds pair `position` of `batch`, whose key is not in the index yet.
    mutating func insert(_ position: Int, hash: UInt64, in batch: SinkPairBatch) {
        precondition(position < Int(UInt32.max) - 1, "more than 4 billion pairs")
        if (count + 1) * 2 > slots.count { grow(batch) }
        place(position, hash: hash)
        count += 1
    }

    private mutating func place(_ position: Int, hash: UInt64) {
        var slot = Int(truncatingIfNeeded: hash) & mask
        while slots[slot] != 0 { slot = (slot &+ 1) & mask }
        slots[slot] = UInt64(position + 1) | (hash & ByteSetTable.tagMask)
    }

    /// Doubles the slots, hashing each indexed key again from the batch (hashes are not kept: a short key
    /// hashes in a few nanoseconds).
    private mutating func grow(_ batch: SinkPairBatch) {
        let old = slots
        slots = Array(repeating: 0, count: old.count * 2)
        mask = slots.count - 1
        for value in old where value != 0 {
            let position = Int(truncatingIfNeeded: value & 0xFFFF_FFFF) &- 1
            place(position, hash: hash(ofPair: position, in: batch))
        }
    }
}
