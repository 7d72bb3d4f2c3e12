import CPlatform  // `eddy_prefetch` (see `GroupState.prefetchSlot`)
import Glibc

/// Owns a `GroupState`. Copy-on-write is `GroupTable`'s job: it copies the storage (`copy()`) before
/// mutating it while shared.
final class GroupStorage: @unchecked Sendable {
    let state: UnsafeMutablePointer<GroupState>

    init(stateWords: Int, plan: [CompiledAggregate], groupBy: [Int], singleStringColumn: Int) {
        state = .allocate(capacity: 1)
        state.initialize(
            to: GroupState(stateWords: stateWords, plan: plan, groupBy: groupBy, singleStringColumn: singleStringColumn))
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

/// The hot part of a `GroupTable`, in flat arenas allocated once and grown geometrically, reached through
/// plain pointers (not arrays or class properties) so that a message costs no reference counting and no
/// exclusivity checks. Laid out so that finding a present group touches two cache lines, its index slot's and
/// its entry's:
///
/// - `entries`: one entry per group, back to back in group order, 8-byte aligned: a header word (the group's
///   number in bits 0–31, its key's length in bits 32–62, the dirty flag in bit 63), the group's aggregate
///   state words (`stateWords`), then its encoded key, padded to a whole word. Key, state and dirty flag share
///   the entry's cache line(s).
/// - `index`: open addressing over the entries, one `UInt64` per slot: the key hash's high 32 bits (a
///   fingerprint, so that a probe past another key compares without reading that key's entry) above the
///   entry's word offset + 1 (0: empty). At most half full, probed linearly from the fingerprint's low bits, so
///   that growing re-places each slot from the slot alone.
/// - `entryOffsets`: each group's entry (word offset), for reading by group number.
///
/// Plus the dirty list (one `UInt32` per group that changed since the last barrier, in the order they first
/// changed: its entry's word offset, so that the barrier reaches a dirty group's entry with one cache miss). Bytes
/// per group, with capacity `c` (a power of two, doubled when full) for `n` groups:
/// `(2 × 8 + 4 + 4) × c / n` plus the entry (`8 + 8 × stateWords` + the key rounded up to 8) times the entry
/// arena's slack (grown by half: at most 1.5). `COUNT(*)` grouped by one text column (one state word, a key of
/// 3 + the text's bytes: 25-character users make 28-byte keys, 48-byte entries) at 950,000 groups (`c / n` =
/// 1.10, arena slack 1.25): 26 + 60 = 86 bytes.
struct GroupState {
    /// Aggregate state words per group (see `CompiledAggregate.wordCount`).
    let stateWords: Int
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
    /// Groups the per-group arrays hold (a power of two).
    private var capacity: Int
    private var index: UnsafeMutablePointer<UInt64>
    /// `2 × capacity - 1`.
    private var indexMask: Int
    private var entries: UnsafeMutablePointer<UInt64>
    private var entryWordsCapacity: Int
    /// Where the next entry goes: the end of the last group's.
    private var entryWordsUsed = 0
    private var entryOffsets: UnsafeMutablePointer<UInt32>
    private var dirtyList: UnsafeMutablePointer<UInt32>
    private(set) var dirtyCount = 0
    /// Rows whose lookup is in flight (`GroupTable.accumulateDeferred`).
    var pending: PendingLookups

    static let groupMask: UInt64 = 0xFFFF_FFFF
    static let dirtyFlag: UInt64 = 1 << 63
    static let lengthMask: UInt64 = 0x7FFF_FFFF

    init(
        stateWords: Int, plan: [CompiledAggregate], groupBy: [Int], singleStringColumn: Int, capacity: Int = 256,
        entryWordsCapacity: Int = 1024
    ) {
        precondition(capacity > 0 && capacity & (capacity - 1) == 0, "capacity \(capacity) is not a power of two")
        self.stateWords = stateWords
        self.singleStringColumn = singleStringColumn
        planCount = plan.count
        self.plan = .allocate(capacity: max(plan.count, 1))
        self.plan.initialize(from: plan, count: plan.count)
        groupByCount = groupBy.count
        self.groupBy = .allocate(capacity: max(groupBy.count, 1))
        self.groupBy.initialize(from: groupBy, count: groupBy.count)
        self.capacity = capacity
        self.entryWordsCapacity = entryWordsCapacity
        indexMask = capacity * 2 - 1
        index = .allocate(capacity: capacity * 2)
        index.initialize(repeating: 0, count: capacity * 2)
        entries = Self.reallocateWords(nil, count: entryWordsCapacity)
        entryOffsets = .allocate(capacity: capacity)
        dirtyList = .allocate(capacity: capacity)
        pending = PendingLookups(argumentCount: plan.count)
    }

    func deallocate() {
        plan.deinitialize(count: planCount)
        plan.deallocate()
        groupBy.deallocate()
        index.deallocate()
        free(entries)
        entryOffsets.deallocate()
        dirtyList.deallocate()
        pending.deallocate()
    }

    /// An independent copy (for copy-on-write).
    func copy() -> GroupState {
        var copy = GroupState(
            stateWords: stateWords, plan: Array(UnsafeBufferPointer(start: plan, count: planCount)),
            groupBy: Array(UnsafeBufferPointer(start: groupBy, count: groupByCount)), singleStringColumn: singleStringColumn,
            capacity: capacity, entryWordsCapacity: entryWordsCapacity)
        copy.count = count
        copy.entryWordsUsed = entryWordsUsed
        copy.dirtyCount = dirtyCount
        copy.index.update(from: index, count: capacity * 2)
        copy.entries.update(from: entries, count: entryWordsUsed)
        copy.entryOffsets.update(from: entryOffsets, count: count)
        copy.dirtyList.update(from: dirtyList, count: dirtyCount)
        copy.pending.copyRows(from: pending)
        return copy
    }

    /// Bytes allocated, for the documentation's per-group figures and their test.
    var allocatedBytes: Int {
        capacity * 2 * MemoryLayout<UInt64>.stride + entryWordsCapacity * 8 + capacity * 2 * MemoryLayout<UInt32>.stride
    }

    /// An entry's bytes on average (header, state words and padded key: a little more than its key and encoded
    /// state), for sizing a barrier's delta.
    var averageEntryBytes: Int { count == 0 ? 0 : entryWordsUsed * 8 / count }

    /// Words of an entry with `stateWords` state words and a key of `keyLength` bytes.
    @inline(always)
    func entryWords(keyLength: Int) -> Int { 1 &+ stateWords &+ (keyLength &+ 7) &>> 3 }

    // MARK: Finding groups

    /// The index slot a hash starts probing at; `prefetchSlot` brings its cache line in ahead of `findEntry`. Taken
    /// from the fingerprint (the bits a slot keeps), which is wide enough: entries are addressed by 32-bit word
    /// offsets, so there are fewer than 2^31 groups and 2^32 slots.
    @inline(always)
    func firstSlot(hash: UInt64) -> Int { Int(truncatingIfNeeded: hash &>> 32) & indexMask }

    /// Starts loading the cache line of `hash`'s first index slot (a hint: nothing is read).
    @inline(always)
    func prefetchSlot(hash: UInt64) {
        eddy_prefetch(index + firstSlot(hash: hash))
    }

    /// Starts loading the entry that `hash`'s probe would compare first (its index slot should be in cache:
    /// see `prefetchSlot`), both ends of it for a key of `keyLength` bytes; nothing when no slot has the
    /// fingerprint before an empty one. A hint: the entry is compared by `findEntry` later.
    @inline(always)
    func prefetchEntry(hash: UInt64, keyLength: Int) {
        let fingerprint = hash &>> 32
        var slot = firstSlot(hash: hash)
        while true {
            let value = index[slot]
            if value == 0 { return }
            if value &>> 32 == fingerprint {
                let entry = entries + (Int(truncatingIfNeeded: value & Self.groupMask) &- 1)
                eddy_prefetch_for_write(entry)
                eddy_prefetch_for_write(entry + (entryWords(keyLength: keyLength) &- 1))
                return
            }
            slot = (slot &+ 1) & indexMask
        }
    }

    /// The entry (word offset) whose key equals `key`, or -1.
    @inline(always)
    func findEntry(_ key: UnsafePointer<UInt8>, count length: Int, hash: UInt64) -> Int {
        let fingerprint = hash &>> 32
        let wanted = UInt64(truncatingIfNeeded: length) &<< 32
        var slot = firstSlot(hash: hash)
        while true {
            let value = index[slot]
            if value == 0 { return -1 }
            if value &>> 32 == fingerprint {
                let entry = Int(truncatingIfNeeded: value & Self.groupMask) &- 1
                let header = entries[entry]
                if header & (Self.lengthMask &<< 32) == wanted
                    && NameTables.equalBytes(keyPointer(entry: entry), key, length)
                {
                    return entry
                }
            }
            slot = (slot &+ 1) & indexMask
        }
    }

    /// The group whose key equals `key`, or -1.
    @inline(always)
    func find(_ key: UnsafePointer<UInt8>, count length: Int, hash: UInt64) -> Int {
        let entry = findEntry(key, count: length, hash: hash)
        return entry < 0 ? -1 : group(atEntry: entry)
    }

    // MARK: Entries

    @inline(always)
    func group(atEntry entry: Int) -> Int { Int(truncatingIfNeeded: entries[entry] & Self.groupMask) }

    @inline(always)
    func entry(ofGroup group: Int) -> Int { Int(truncatingIfNeeded: entryOffsets[group]) }

    @inline(always)
    func keyPointer(entry: Int) -> UnsafePointer<UInt8> {
        UnsafeRawPointer(entries + (entry &+ 1 &+ stateWords)).assumingMemoryBound(to: UInt8.self)
    }

    @inline(always)
    func keyLength(entry: Int) -> Int { Int(truncatingIfNeeded: (entries[entry] &>> 32) & Self.lengthMask) }

    /// The state words at `entry` (`stateWords` of them); valid until the storage changes.
    @inline(always)
    func words(atEntry entry: Int) -> UnsafeMutablePointer<UInt64> { entries + (entry &+ 1) }

    /// Marks the group at `entry` dirty (once per barrier: it goes on the dirty list the first time).
    @inline(always)
    mutating func markDirty(entry: Int) {
        let header = entries[entry]
        if header & Self.dirtyFlag == 0 {
            entries[entry] = header | Self.dirtyFlag
            dirtyList[dirtyCount] = UInt32(truncatingIfNeeded: entry)
            dirtyCount &+= 1
        }
    }

    // MARK: Groups by number

    /// The key of `group`; valid until the storage changes.
    func key(_ group: Int) -> UnsafeBufferPointer<UInt8> {
        let entry = entry(ofGroup: group)
        return UnsafeBufferPointer(start: keyPointer(entry: entry), count: keyLength(entry: entry))
    }

    /// The state words of `group` (`stateWords` of them); valid until the storage changes.
    @inline(always)
    func words(of group: Int) -> UnsafeMutablePointer<UInt64> { words(atEntry: entry(ofGroup: group)) }

    @inline(always)
    mutating func markDirty(_ group: Int) { markDirty(entry: entry(ofGroup: group)) }

    /// Adds a group for `key`, which must not be present; its state words are zero and it is not dirty.
    @inline(never)
    mutating func insert(_ key: UnsafeRawBufferPointer, hash: UInt64) -> Int {
        let group = count
        precondition(group < Int(UInt32.max) - 1, "more than 4 billion groups")
        precondition(key.count <= Int(Self.lengthMask), "a group key of \(key.count) bytes")
        if group == capacity { grow() }
        let start = entryWordsUsed
        let words = entryWords(keyLength: key.count)
        if start + words > entryWordsCapacity { growEntries(minimum: start + words) }
        precondition(start + words < Int(UInt32.max), "more than 32 GB of group entries")
        let entry = entries + start
        entry[0] = UInt64(truncatingIfNeeded: group) | UInt64(truncatingIfNeeded: key.count) &<< 32
        (entry + 1).update(repeating: 0, count: words - 1)  // state words, and the key's padding
        if let base = key.baseAddress {
            UnsafeMutableRawPointer(entry + 1 + stateWords).copyMemory(from: base, byteCount: key.count)
        }
        entryWordsUsed = start + words
        entryOffsets[group] = UInt32(truncatingIfNeeded: start)
        count = group + 1
        place(entry: start, hash: hash)
        return group
    }

    private func place(entry: Int, hash: UInt64) {
        place(slotValue: (hash & ~Self.groupMask) | UInt64(truncatingIfNeeded: entry + 1))
    }

    /// Puts a slot's value (fingerprint and entry) in the first free slot of its probe.
    private func place(slotValue value: UInt64) {
        var slot = firstSlot(hash: value)
        while index[slot] != 0 { slot = (slot + 1) & indexMask }
        index[slot] = value
    }

    private mutating func grow() {
        let newCapacity = capacity * 2
        func regrow<Element>(_ pointer: inout UnsafeMutablePointer<Element>, used: Int, capacity: Int) {
            let grown = UnsafeMutablePointer<Element>.allocate(capacity: capacity)
            grown.moveInitialize(from: pointer, count: used)
            pointer.deallocate()
            pointer = grown
        }
        regrow(&entryOffsets, used: count, capacity: newCapacity)
        regrow(&dirtyList, used: dirtyCount, capacity: newCapacity)
        capacity = newCapacity
        // Each slot moves by its fingerprint: no key is read or hashed again (at a million groups that was a
        // cache miss and a hash per group, 7% of the hot thread in a keys-1m bench), and the old slots, read in
        // order, land in two nearly sequential runs of the new index.
        let oldIndex = index
        let oldSlots = indexMask + 1
        index = .allocate(capacity: newCapacity * 2)
        index.initialize(repeating: 0, count: newCapacity * 2)
        indexMask = newCapacity * 2 - 1
        for oldSlot in 0..<oldSlots where oldIndex[oldSlot] != 0 { place(slotValue: oldIndex[oldSlot]) }
        oldIndex.deallocate()
    }

    private mutating func growEntries(minimum: Int) {
        let newCapacity = max(minimum, entryWordsCapacity + entryWordsCapacity / 2)
        entries = Self.reallocateWords(entries, count: newCapacity)
        entryWordsCapacity = newCapacity
    }

    /// The entry arena grows with `realloc`, not allocate-copy-free: glibc moves a large (mmapped) block by
    /// remapping its pages, without copying it or leaving the old arena in its heap.
    private static func reallocateWords(_ words: UnsafeMutablePointer<UInt64>?, count: Int) -> UnsafeMutablePointer<UInt64> {
        guard let grown = realloc(words, count * MemoryLayout<UInt64>.stride) else {
            fatalError("out of memory: group entries of \(count * MemoryLayout<UInt64>.stride) bytes")
        }
        return grown.bindMemory(to: UInt64.self, capacity: count)
    }

    // MARK: Dirty groups

    /// Calls `body` with the entry of each dirty group, in the order they first changed, and clears the set, in
    /// one pass. The entries are scattered over the arena (at a million groups each is a cache and TLB miss), so
    /// each is prefetched `dirtyPrefetchDistance` groups ahead and its dirty flag cleared while it is in cache.
    @inline(always)
    mutating func drainDirty(_ body: (_ entry: Int) -> Void) {
        let distance = Self.dirtyPrefetchDistance
        for index in 0..<min(distance, dirtyCount) { prefetchDirtyEntry(Int(truncatingIfNeeded: dirtyList[index])) }
        for index in 0..<dirtyCount {
            if index &+ distance < dirtyCount { prefetchDirtyEntry(Int(truncatingIfNeeded: dirtyList[index &+ distance])) }
            let entry = Int(truncatingIfNeeded: dirtyList[index])
            entries[entry] &= ~Self.dirtyFlag
            body(entry)
        }
        dirtyCount = 0
    }

    static let dirtyPrefetchDistance = 16

    /// Starts loading the entry at `entry` (a hint): its header's cache line and the next, which hold all of an
    /// entry of up to 64 bytes (a 28-byte key with one state word is 48) wherever it starts.
    @inline(always)
    private func prefetchDirtyEntry(_ entry: Int) {
        eddy_prefetch_for_write(entries + entry)
        eddy_prefetch(entries + (entry &+ 7))
    }

    /// The dirty groups in the order they first changed; clears the set.
    mutating func takeDirty() -> [Int] {
        var taken: [Int] = []
        taken.reserveCapacity(dirtyCount)
        let entries = self.entries
        drainDirty { entry in taken.append(Int(truncatingIfNeeded: entries[entry] & Self.groupMask)) }
        return taken
    }
}

/// Rows waiting for their group lookup (`GroupTable.accumulateDeferred`), oldest first in a ring of `capacity`:
/// each row's encoded key (at most `keyStride` bytes), its hash, and the aggregates' argument slots (copied:
/// only views whose aggregates fold numbers defer). A row's index slot is prefetched when it arrives, the
/// entry that slot points to `prefetchDistance` rows later, and the row is folded `capacity` rows later, so
/// that the cache misses of several rows overlap instead of following one another.
struct PendingLookups {
    static let capacity = 16
    static let prefetchDistance = 8
    static let keyStride = 128
    /// Argument slots per row (the view's aggregates; a `COUNT(*)` slot is left unset).
    let argumentCount: Int
    let keys: UnsafeMutablePointer<UInt8>
    let keyLengths: UnsafeMutablePointer<Int>
    let hashes: UnsafeMutablePointer<UInt64>
    let arguments: UnsafeMutablePointer<ColumnSlot>
    /// The oldest row's place in the ring.
    var first = 0
    var count = 0

    init(argumentCount: Int) {
        self.argumentCount = argumentCount
        keys = .allocate(capacity: Self.capacity * Self.keyStride)
        keyLengths = .allocate(capacity: Self.capacity)
        hashes = .allocate(capacity: Self.capacity)
        arguments = .allocate(capacity: Self.capacity * max(argumentCount, 1))
        arguments.initialize(repeating: ColumnSlot(), count: Self.capacity * max(argumentCount, 1))
    }

    func deallocate() {
        keys.deallocate()
        keyLengths.deallocate()
        hashes.deallocate()
        arguments.deallocate()
    }

    /// Takes `other`'s waiting rows (same argument count), for a copy of the table.
    mutating func copyRows(from other: PendingLookups) {
        keys.update(from: other.keys, count: Self.capacity * Self.keyStride)
        keyLengths.update(from: other.keyLengths, count: Self.capacity)
        hashes.update(from: other.hashes, count: Self.capacity)
        arguments.update(from: other.arguments, count: Self.capacity * max(argumentCount, 1))
        first = other.first
        count = other.count
    }

    /// The ring place of the `offset`th waiting row (0: the oldest; `count`: the next to arrive).
    @inline(always)
    func place(_ offset: Int) -> Int { (first &+ offset) & (Self.capacity &- 1) }

    @inline(always)
    func key(at place: Int) -> UnsafeMutablePointer<UInt8> { keys + place &* Self.keyStride }
}
