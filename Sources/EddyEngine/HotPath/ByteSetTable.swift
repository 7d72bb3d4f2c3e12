import CPlatform  // `eddy_mix64`, `eddy_load_le64`

/// A set of byte strings: an open-addressing hash table over one byte arena (the DISTINCT sets; the
/// group keys use the same layout in `GroupState`, in raw memory). Entries are numbered in insertion
/// order and never removed. Lookups allocate nothing; inserts grow the arrays geometrically.
struct ByteSetTable: Sendable {
    /// Entries back to back; entry `i` is `arena[starts[i]..<starts[i + 1]]`.
    private(set) var arena: [UInt8] = []
    private(set) var starts: [Int] = [0]
    /// Each entry's hash, kept so that growing never re-reads the keys.
    private(set) var hashes: [UInt64] = []
    /// 0: empty; otherwise the hash's high 32 bits (a tag that skips most key comparisons) and the
    /// entry number + 1 in the low 32 bits. The slot comes from the hash's low bits.
    private var slots: [UInt64]
    private var mask: Int

    static let tagMask: UInt64 = 0xFFFF_FFFF_0000_0000

    init(expectedCount: Int = 512) {
        var capacity = 16
        while capacity < expectedCount * 2 { capacity *= 2 }
        slots = Array(repeating: 0, count: capacity)
        mask = capacity - 1
        hashes.reserveCapacity(expectedCount)
        starts.reserveCapacity(expectedCount + 1)
        arena.reserveCapacity(expectedCount * 16)
    }

    var count: Int { hashes.count }

    /// The number of the entry equal to `key`, or -1.
    @inline(always)
    func find(_ key: UnsafePointer<UInt8>, count length: Int, hash: UInt64) -> Int {
        slots.withUnsafeBufferPointer { slots in
            starts.withUnsafeBufferPointer { starts in
                arena.withUnsafeBufferPointer { arena in
                    let tag = hash & Self.tagMask
                    var slot = Int(truncatingIfNeeded: hash) & mask
                    while true {
                        let entry = slots[slot]
                        if entry == 0 { return -1 }
                        if entry & Self.tagMask == tag {
                            let index = Int(truncatingIfNeeded: entry & 0xFFFF_FFFF) &- 1
                            let start = starts[index]
                            if starts[index &+ 1] &- start == length
                                && NameTables.equalBytes(arena.baseAddress.unsafelyUnwrapped + start, key, length)
                            {
                                return index
                            }
                        }
                        slot = (slot &+ 1) & mask
                    }
                }
            }
        }
    }

    /// Adds `key`, which must not be present yet; returns its entry number.
    @inline(never)
    mutating func insertNew(_ key: UnsafeRawBufferPointer, hash: UInt64) -> Int {
        let index = hashes.count
        precondition(index < Int(UInt32.max) - 1, "more than 4 billion entries")
        if (index + 1) * 2 > slots.count { grow() }
        arena.append(contentsOf: key)
        starts.append(arena.count)
        hashes.append(hash)
        place(index: index, hash: hash)
        return index
    }

    private mutating func place(index: Int, hash: UInt64) {
        var slot = Int(truncatingIfNeeded: hash) & mask
        while slots[slot] != 0 { slot = (slot + 1) & mask }
        slots[slot] = (hash & Self.tagMask) | UInt64(index + 1)
    }

    private mutating func grow() {
        let capacity = slots.count * 2
        slots = Array(repeating: 0, count: capacity)
        mask = capacity - 1
        for index in hashes.indices { place(index: index, hash: hashes[index]) }
    }

    func entry(_ index: Int) -> [UInt8] {
        Array(arena[starts[index]..<starts[index + 1]])
    }
}

/// Hashing of byte strings: a wyhash-style multiply-mix, fast on the short keys a group key usually is.
/// In-memory tables seed it at random (`GroupTable.seed`), so crafted keys cannot aim at one slot.
enum KeyHasher {
    static let k0: UInt64 = 0xA076_1D64_78BD_642F
    static let k1: UInt64 = 0xE703_7ED1_A0B4_28DB
    static let k2: UInt64 = 0x8EBC_6AF0_9C88_C6E3

    @inline(always)
    static func mix(_ lhs: UInt64, _ rhs: UInt64) -> UInt64 { eddy_mix64(lhs, rhs) }

    @inline(always)
    static func hash(_ bytes: UnsafePointer<UInt8>, count: Int, seed: UInt64) -> UInt64 {
        let raw = UnsafeRawPointer(bytes)
        @inline(always) func load64(_ offset: Int) -> UInt64 { eddy_load_le64(raw + offset) }
        @inline(always) func load32(_ offset: Int) -> UInt64 { UInt64(eddy_load_le32(raw + offset)) }
        var state = seed ^ k0
        let first: UInt64
        let second: UInt64
        if count <= 16 {
            if count >= 8 {
                first = load64(0)
                second = load64(count &- 8)
            } else if count >= 4 {
                first = load32(0)
                second = load32(count &- 4)
            } else if count > 0 {
                first = UInt64(bytes[0]) &<< 16 | UInt64(bytes[count &>> 1]) &<< 8 | UInt64(bytes[count &- 1])
                second = 0
            } else {
                first = 0
                second = 0
            }
        } else {
            var offset = 0
            while count &- offset > 16 {
                state = mix(load64(offset) ^ k1, load64(offset &+ 8) ^ state)
                offset &+= 16
            }
            first = load64(count &- 16)
            second = load64(count &- 8)
        }
        return mix(k1 ^ UInt64(truncatingIfNeeded: count), mix(first ^ k1, second ^ state) ^ k2)
    }

    /// A 128-bit digest that does not change between runs (fixed seeds), for storage keys.
    static func digest128(_ bytes: UnsafeBufferPointer<UInt8>) -> (UInt64, UInt64) {
        guard let base = bytes.baseAddress, !bytes.isEmpty else { return (k0, k1) }
        return (hash(base, count: bytes.count, seed: 0x5EED_0001), hash(base, count: bytes.count, seed: 0x5EED_0002_0000_0000))
    }
}
