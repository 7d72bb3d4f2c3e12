/// Owns a `GroupState`. Copy-on-write is `GroupTable`'s job: it copies the storage (`copy()`) before
/// mutating it while shared.
final class GroupStorage: @unchecked Sendable {
    let state: UnsafeMutablePointer<GroupState>

    init(stateWords: Int, plan: [CompiledAggregate], groupBy: [Int], singleStringColumn: Int, seed: UInt64) {
        state = .allocate(capacity: 1)
        state.initialize(
            to: GroupState(stateWords: stateWords, plan: plan, groupBy: groupBy, singleStringColumn: singleStringColumn, seed: seed))
    }

    private init(copying other: GroupStorage) {
        state = .allocate(capacity: 1)
        state.initialize(to: other.state.pointee.copy())
    }

    deinit {
        state.pointee.deallocate()
        state.deinitialize(count: 1)
        state.deallocate()
    }

    func copy() -> GroupStorage { GroupStorage(copying: self) }
}

/// The hot part of a `GroupTable`, in three flat arenas allocated once and grown geometrically, reached
/// through plain pointers (not arrays or class properties) so that a message costs no reference counting
/// and no exclusivity checks:
///
/// - `keyBytes`: every group's encoded key, back to back in group order;
/// - `records`: one fixed-width record per group: word 0 is where its key starts in `keyBytes` (shifted
///   left once) with the dirty flag in bit 0, then the group's aggregate state words (`stateWords`); the
///   key ends where the next group's begins;
/// - `index`: open addressing over the groups, one `UInt32` per slot (group + 1, 0 empty), at most half
///   full, probed linearly from the key hash's low bits.
///
/// Plus the dirty list (one `UInt32` per group that changed since the last barrier, in the order they
/// first changed). Bytes per group, with capacity `c` (a power of two, doubled when full) for `n` groups:
/// `(8 + 8 × stateWords + 4 + 2 × 4) × c / n` plus the encoded key times the key arena's slack (at most 2).
/// `COUNT(*)` grouped by one text column (one state word, a key of 3 + the text's bytes) at 950,000 groups
/// (`c / n` = 1.10, key arena 1.25): 31 + 1.25 × key bytes, so 66 bytes for 25-character users.
/// Hashes are not kept: growing rehashes each key from its bytes.
struct GroupState {
    /// Aggregate state words per group (see `CompiledAggregate.wordCount`).
    let stateWords: Int
    /// `1 + stateWords`: a record's width in words.
    let recordWords: Int
    /// The view's compiled aggregates (a copy of `GroupTable.plan` that the hot loop can walk without
    /// retaining an array).
    let plan: UnsafeMutablePointer<CompiledAggregate>
    let planCount: Int
    /// The GROUP BY columns (a copy of `GroupTable.groupBy`, for the same reason).
    let groupBy: UnsafeMutablePointer<Int>
    let groupByCount: Int
    /// The column when the view groups by exactly one text column (the fast path), else -1.
    let singleStringColumn: Int
    /// Seeds the key hash (`GroupTable.seed`); growing rehashes with it.
    let seed: UInt64
    /// Groups in the table.
    private(set) var count = 0
    /// Records allocated (a power of two).
    private var capacity: Int
    private var index: UnsafeMutablePointer<UInt32>
    /// `2 × capacity - 1`.
    private var indexMask: Int
    private var keyBytes: UnsafeMutablePointer<UInt8>
    private var keyBytesCapacity: Int
    /// Where the next key goes: the end of the last group's key.
    private var keyBytesUsed = 0
    private var records: UnsafeMutablePointer<UInt64>
    private var dirtyList: UnsafeMutablePointer<UInt32>
    private(set) var dirtyCount = 0

    init(
        stateWords: Int, plan: [CompiledAggregate], groupBy: [Int], singleStringColumn: Int, seed: UInt64, capacity: Int = 256,
        keyBytesCapacity: Int = 8192
    ) {
        precondition(capacity > 0 && capacity & (capacity - 1) == 0, "capacity \(capacity) is not a power of two")
        self.stateWords = stateWords
        recordWords = 1 + stateWords
        self.singleStringColumn = singleStringColumn
        self.seed = seed
        planCount = plan.count
        self.plan = .allocate(capacity: max(plan.count, 1))
        self.plan.initialize(from: plan, count: plan.count)
        groupByCount = groupBy.count
        self.groupBy = .allocate(capacity: max(groupBy.count, 1))
        self.groupBy.initialize(from: groupBy, count: groupBy.count)
        self.capacity = capacity
        self.keyBytesCapacity = keyBytesCapacity
        indexMask = capacity * 2 - 1
        index = .allocate(capacity: capacity * 2)
        index.initialize(repeating: 0, count: capacity * 2)
        keyBytes = .allocate(capacity: keyBytesCapacity)
        records = .allocate(capacity: capacity * recordWords)
        dirtyList = .allocate(capacity: capacity)
    }

    func deallocate() {
        plan.deinitialize(count: planCount)
        plan.deallocate()
        groupBy.deallocate()
        index.deallocate()
        keyBytes.deallocate()
        records.deallocate()
        dirtyList.deallocate()
    }

    /// An independent copy (for copy-on-write).
    func copy() -> GroupState {
        var copy = GroupState(
            stateWords: stateWords, plan: Array(UnsafeBufferPointer(start: plan, count: planCount)),
            groupBy: Array(UnsafeBufferPointer(start: groupBy, count: groupByCount)), singleStringColumn: singleStringColumn,
            seed: seed, capacity: capacity, keyBytesCapacity: keyBytesCapacity)
        copy.count = count
        copy.keyBytesUsed = keyBytesUsed
        copy.dirtyCount = dirtyCount
        copy.index.update(from: index, count: capacity * 2)
        copy.keyBytes.update(from: keyBytes, count: keyBytesUsed)
        copy.records.update(from: records, count: count * recordWords)
        copy.dirtyList.update(from: dirtyList, count: dirtyCount)
        return copy
    }

    /// Bytes allocated, for the documentation's per-group figures and their test.
    var allocatedBytes: Int {
        capacity * 2 * MemoryLayout<UInt32>.stride + keyBytesCapacity + capacity * recordWords * 8
            + capacity * MemoryLayout<UInt32>.stride
    }

    @inline(always)
    func keyStart(_ group: Int) -> Int { Int(truncatingIfNeeded: records[group &* recordWords] &>> 1) }

    @inline(always)
    func keyEnd(_ group: Int) -> Int { group &+ 1 < count ? keyStart(group &+ 1) : keyBytesUsed }

    /// The group whose key equals `key`, or -1.
    @inline(always)
    func find(_ key: UnsafePointer<UInt8>, count length: Int, hash: UInt64) -> Int {
        var slot = Int(truncatingIfNeeded: hash) & indexMask
        while true {
            let entry = index[slot]
            if entry == 0 { return -1 }
            let group = Int(truncatingIfNeeded: entry) &- 1
            let start = keyStart(group)
            if keyEnd(group) &- start == length && NameTables.equalBytes(keyBytes + start, key, length) { return group }
            slot = (slot &+ 1) & indexMask
        }
    }

    /// Adds a group for `key`, which must not be present; its state words are zero and it is not dirty.
    @inline(never)
    mutating func insert(_ key: UnsafeRawBufferPointer, hash: UInt64) -> Int {
        let group = count
        precondition(group < Int(UInt32.max) - 1, "more than 4 billion groups")
        if group == capacity { grow() }
        let start = keyBytesUsed
        if start + key.count > keyBytesCapacity { growKeyBytes(minimum: start + key.count) }
        if let base = key.baseAddress { (keyBytes + start).update(from: base.assumingMemoryBound(to: UInt8.self), count: key.count) }
        keyBytesUsed = start + key.count
        let record = records + group * recordWords
        record[0] = UInt64(start) << 1
        (record + 1).update(repeating: 0, count: stateWords)
        count = group + 1
        place(group: group, hash: hash)
        return group
    }

    private func place(group: Int, hash: UInt64) {
        var slot = Int(truncatingIfNeeded: hash) & indexMask
        while index[slot] != 0 { slot = (slot + 1) & indexMask }
        index[slot] = UInt32(truncatingIfNeeded: group + 1)
    }

    private mutating func grow() {
        let newCapacity = capacity * 2
        func regrow<Element>(_ pointer: inout UnsafeMutablePointer<Element>, used: Int, capacity: Int) {
            let grown = UnsafeMutablePointer<Element>.allocate(capacity: capacity)
            grown.moveInitialize(from: pointer, count: used)
            pointer.deallocate()
            pointer = grown
        }
        regrow(&records, used: count * recordWords, capacity: newCapacity * recordWords)
        regrow(&dirtyList, used: dirtyCount, capacity: newCapacity)
        capacity = newCapacity
        index.deallocate()
        index = .allocate(capacity: newCapacity * 2)
        index.initialize(repeating: 0, count: newCapacity * 2)
        indexMask = newCapacity * 2 - 1
        for group in 0..<count {
            let start = keyStart(group)
            place(group: group, hash: KeyHasher.hash(keyBytes + start, count: keyEnd(group) - start, seed: seed))
        }
    }

    private mutating func growKeyBytes(minimum: Int) {
        let newCapacity = max(minimum, keyBytesCapacity * 2)
        let grown = UnsafeMutablePointer<UInt8>.allocate(capacity: newCapacity)
        grown.moveInitialize(from: keyBytes, count: keyBytesUsed)
        keyBytes.deallocate()
        keyBytes = grown
        keyBytesCapacity = newCapacity
    }

    /// The key of `group`; valid until the storage changes.
    func key(_ group: Int) -> UnsafeBufferPointer<UInt8> {
        let start = keyStart(group)
        return UnsafeBufferPointer(start: keyBytes + start, count: keyEnd(group) - start)
    }

    /// The state words of `group` (`stateWords` of them); valid until the storage changes.
    @inline(always)
    func words(of group: Int) -> UnsafeMutablePointer<UInt64> { records + (group &* recordWords &+ 1) }

    @inline(always)
    mutating func markDirty(_ group: Int) {
        let record = records + group &* recordWords
        if record[0] & 1 == 0 {
            record[0] |= 1
            dirtyList[dirtyCount] = UInt32(truncatingIfNeeded: group)
            dirtyCount &+= 1
        }
    }

    /// The `index`th dirty group, in the order they first changed (`index < dirtyCount`).
    func dirtyGroup(at index: Int) -> Int { Int(dirtyList[index]) }

    /// Clears the dirty set.
    mutating func clearDirty() {
        for index in 0..<dirtyCount { records[Int(dirtyList[index]) * recordWords] &= ~1 }
        dirtyCount = 0
    }

    /// The dirty groups in the order they first changed; clears the set.
    mutating func takeDirty() -> [Int] {
        let taken = (0..<dirtyCount).map { Int(dirtyList[$0]) }
        clearDirty()
        return taken
    }
}
