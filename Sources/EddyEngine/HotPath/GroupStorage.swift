/// Owns a `GroupState`. Copy-on-write is `GroupTable`'s job: it copies the storage (`copy()`) before
/// mutating it while shared.
final class GroupStorage: @unchecked Sendable {
    let state: UnsafeMutablePointer<GroupState>

    init(wordsPerGroup: Int, plan: [CompiledAggregate], groupBy: [Int], singleStringColumn: Int) {
        state = .allocate(capacity: 1)
        state.initialize(
            to: GroupState(wordsPerGroup: wordsPerGroup, plan: plan, groupBy: groupBy, singleStringColumn: singleStringColumn))
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

/// The hot part of a `GroupTable`, in memory allocated once and grown geometrically: the group keys
/// (one byte arena under an open-addressing hash table), each group's aggregate state words, and the
/// dirty set. Raw memory reached through a plain pointer (not arrays or class properties), so that a
/// message costs no reference counting and no exclusivity checks.
struct GroupState {
    let wordsPerGroup: Int
    /// The view's compiled aggregates (a copy of `GroupTable.plan` that the hot loop can walk without
    /// retaining an array).
    let plan: UnsafeMutablePointer<CompiledAggregate>
    let planCount: Int
    /// The GROUP BY columns (a copy of `GroupTable.groupBy`, for the same reason).
    let groupBy: UnsafeMutablePointer<Int>
    let groupByCount: Int
    /// The column when the view groups by exactly one text column (the fast path), else -1.
    let singleStringColumn: Int
    /// Groups in the table.
    private(set) var count = 0
    private var capacity: Int
    /// 0: empty; otherwise the hash's high 32 bits (a tag that skips most key comparisons) and the
    /// group + 1 in the low 32 bits. The slot comes from the hash's low bits; at most half are used.
    private var slots: UnsafeMutablePointer<UInt64>
    private var slotMask: Int
    /// Keys back to back; group `g`'s key is `arena[starts[g] ..< starts[g + 1]]`.
    private var arena: UnsafeMutablePointer<UInt8>
    private var arenaCapacity: Int
    private var starts: UnsafeMutablePointer<Int>
    /// Each group's key hash, so that growing never re-reads keys.
    private var hashes: UnsafeMutablePointer<UInt64>
    /// `wordsPerGroup` state words per group.
    private(set) var words: UnsafeMutablePointer<UInt64>
    private var dirtyFlags: UnsafeMutablePointer<Bool>
    private var dirtyList: UnsafeMutablePointer<Int32>
    private(set) var dirtyCount = 0

    static let tagMask: UInt64 = 0xFFFF_FFFF_0000_0000

    init(
        wordsPerGroup: Int, plan: [CompiledAggregate], groupBy: [Int], singleStringColumn: Int, capacity: Int = 256,
        arenaCapacity: Int = 8192
    ) {
        self.wordsPerGroup = wordsPerGroup
        self.singleStringColumn = singleStringColumn
        planCount = plan.count
        self.plan = .allocate(capacity: max(plan.count, 1))
        self.plan.initialize(from: plan, count: plan.count)
        groupByCount = groupBy.count
        self.groupBy = .allocate(capacity: max(groupBy.count, 1))
        self.groupBy.initialize(from: groupBy, count: groupBy.count)
        self.capacity = capacity
        self.arenaCapacity = arenaCapacity
        slotMask = capacity * 2 - 1
        slots = .allocate(capacity: capacity * 2)
        slots.initialize(repeating: 0, count: capacity * 2)
        arena = .allocate(capacity: arenaCapacity)
        starts = .allocate(capacity: capacity + 1)
        starts[0] = 0
        hashes = .allocate(capacity: capacity)
        words = .allocate(capacity: capacity * wordsPerGroup)
        dirtyFlags = .allocate(capacity: capacity)
        dirtyList = .allocate(capacity: capacity)
    }

    func deallocate() {
        plan.deinitialize(count: planCount)
        plan.deallocate()
        groupBy.deallocate()
        slots.deallocate()
        arena.deallocate()
        starts.deallocate()
        hashes.deallocate()
        words.deallocate()
        dirtyFlags.deallocate()
        dirtyList.deallocate()
    }

    /// An independent copy (for copy-on-write).
    func copy() -> GroupState {
        var copy = GroupState(
            wordsPerGroup: wordsPerGroup, plan: Array(UnsafeBufferPointer(start: plan, count: planCount)),
            groupBy: Array(UnsafeBufferPointer(start: groupBy, count: groupByCount)), singleStringColumn: singleStringColumn,
            capacity: capacity,
            arenaCapacity: arenaCapacity)
        copy.count = count
        copy.dirtyCount = dirtyCount
        copy.slots.update(from: slots, count: capacity * 2)
        copy.arena.update(from: arena, count: starts[count])
        copy.starts.update(from: starts, count: count + 1)
        copy.hashes.update(from: hashes, count: count)
        copy.words.update(from: words, count: count * wordsPerGroup)
        copy.dirtyFlags.update(from: dirtyFlags, count: count)
        copy.dirtyList.update(from: dirtyList, count: dirtyCount)
        return copy
    }

    /// The group whose key equals `key`, or -1.
    @inline(always)
    func find(_ key: UnsafePointer<UInt8>, count length: Int, hash: UInt64) -> Int {
        let tag = hash & Self.tagMask
        var slot = Int(truncatingIfNeeded: hash) & slotMask
        while true {
            let entry = slots[slot]
            if entry == 0 { return -1 }
            if entry & Self.tagMask == tag {
                let group = Int(truncatingIfNeeded: entry & 0xFFFF_FFFF) &- 1
                let start = starts[group]
                if starts[group &+ 1] &- start == length && NameTables.equalBytes(arena + start, key, length) {
                    return group
                }
            }
            slot = (slot &+ 1) & slotMask
        }
    }

    /// Adds a group for `key`, which must not be present; its state words are zero and it is not dirty.
    @inline(never)
    mutating func insert(_ key: UnsafeRawBufferPointer, hash: UInt64) -> Int {
        let group = count
        precondition(group < Int(Int32.max) - 1, "more than 2 billion groups")
        if group == capacity { grow() }
        let start = starts[group]
        if start + key.count > arenaCapacity { growArena(minimum: start + key.count) }
        if let base = key.baseAddress { (arena + start).update(from: base.assumingMemoryBound(to: UInt8.self), count: key.count) }
        starts[group + 1] = start + key.count
        hashes[group] = hash
        (words + group * wordsPerGroup).update(repeating: 0, count: wordsPerGroup)
        dirtyFlags[group] = false
        count = group + 1
        place(group: group, hash: hash)
        return group
    }

    private func place(group: Int, hash: UInt64) {
        var slot = Int(truncatingIfNeeded: hash) & slotMask
        while slots[slot] != 0 { slot = (slot + 1) & slotMask }
        slots[slot] = (hash & Self.tagMask) | UInt64(group + 1)
    }

    private mutating func grow() {
        let newCapacity = capacity * 2
        func regrow<Element>(_ pointer: inout UnsafeMutablePointer<Element>, used: Int, capacity: Int) {
            let grown = UnsafeMutablePointer<Element>.allocate(capacity: capacity)
            grown.moveInitialize(from: pointer, count: used)
            pointer.deallocate()
            pointer = grown
        }
        regrow(&starts, used: count + 1, capacity: newCapacity + 1)
        regrow(&hashes, used: count, capacity: newCapacity)
        regrow(&words, used: count * wordsPerGroup, capacity: newCapacity * wordsPerGroup)
        regrow(&dirtyFlags, used: count, capacity: newCapacity)
        regrow(&dirtyList, used: dirtyCount, capacity: newCapacity)
        capacity = newCapacity
        slots.deallocate()
        slots = .allocate(capacity: newCapacity * 2)
        slots.initialize(repeating: 0, count: newCapacity * 2)
        slotMask = newCapacity * 2 - 1
        for group in 0..<count { place(group: group, hash: hashes[group]) }
    }

    private mutating func growArena(minimum: Int) {
        let newCapacity = max(minimum, arenaCapacity * 2)
        let grown = UnsafeMutablePointer<UInt8>.allocate(capacity: newCapacity)
        grown.moveInitialize(from: arena, count: starts[count])
        arena.deallocate()
        arena = grown
        arenaCapacity = newCapacity
    }

    /// The key of `group`; valid until the storage changes.
    func key(_ group: Int) -> UnsafeBufferPointer<UInt8> {
        UnsafeBufferPointer(start: arena + starts[group], count: starts[group + 1] - starts[group])
    }

    @inline(always)
    mutating func markDirty(_ group: Int) {
        if !dirtyFlags[group] {
            dirtyFlags[group] = true
            dirtyList[dirtyCount] = Int32(truncatingIfNeeded: group)
            dirtyCount &+= 1
        }
    }

    /// The `index`th dirty group, in the order they first changed (`index < dirtyCount`).
    func dirtyGroup(at index: Int) -> Int { Int(dirtyList[index]) }

    /// Clears the dirty set.
    mutating func clearDirty() {
        for index in 0..<dirtyCount { dirtyFlags[Int(dirtyList[index])] = false }
        dirtyCount = 0
    }

    /// The dirty groups in the order they first changed; clears the set.
    mutating func takeDirty() -> [Int] {
        let taken = (0..<dirtyCount).map { Int(dirtyList[$0]) }
        for group in taken { dirtyFlags[group] = false }
        dirtyCount = 0
        return taken
    }
}
