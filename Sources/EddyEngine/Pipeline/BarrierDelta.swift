import CPlatform  // `eddy_prefetch`
import Foundation

/// The changed groups of one view at a barrier, copied flat: each group's storage key (its LMDB key) and
/// encoded state (its LMDB value) back to back in one byte array. The hot path fills it and goes back to
/// consuming; the checkpoint thread writes the store and renders the sinks' pairs from it. Its arrays are
/// reused from epoch to epoch (the checkpoint thread hands a committed delta back, emptied), so once warm the
/// barrier allocates nothing per group.
struct BarrierDelta: Sendable {
    /// Keys and states back to back.
    private(set) var bytes: [UInt8] = []
    /// Per entry: where its key starts, then where its state starts; the entry ends where the next begins.
    private(set) var bounds: [Int] = []

    var count: Int { bounds.count / 2 }
    var isEmpty: Bool { bounds.isEmpty }

    /// Empties the delta, keeping its capacity unless this epoch used under a quarter of it: a catch-up epoch of
    /// a million groups should not keep its megabytes through the small epochs that follow.
    mutating func removeAll() {
        let keep = bytes.count >= bytes.capacity / 4 || bytes.capacity < 1 << 20
        bytes.removeAll(keepingCapacity: keep)
        bounds.removeAll(keepingCapacity: keep)
    }

    /// Appends an entry: `key`, then whatever `appendState` appends to the bytes.
    @inline(__always)
    mutating func append(key: UnsafeBufferPointer<UInt8>, state appendState: (inout [UInt8]) -> Void) {
        bounds.append(bytes.count)
        bytes.append(contentsOf: key)
        bounds.append(bytes.count)
        appendState(&bytes)
    }

    /// Calls `body` with each entry's key and state, in the order they were appended; the buffers are valid
    /// only during the call.
    func forEach(_ body: (UnsafeRawBufferPointer, UnsafeRawBufferPointer) throws -> Void) rethrows {
        let entries = count
        try bytes.withUnsafeBytes { all in
            for entry in 0..<entries {
                let keyStart = bounds[2 * entry]
                let stateStart = bounds[2 * entry + 1]
                let end = entry + 1 < entries ? bounds[2 * entry + 2] : all.count
                try body(UnsafeRawBufferPointer(rebasing: all[keyStart..<stateStart]), UnsafeRawBufferPointer(rebasing: all[stateStart..<end]))
            }
        }
    }

    /// `forEach` in the order of the keys' bytes (LMDB's order). Random puts into a large B-tree miss the cache at
    /// every level (measured: most of the checkpoint thread's time at a million groups); in key order, successive
    /// puts find the same pages.
    func forEachInKeyOrder(_ body: (UnsafeRawBufferPointer, UnsafeRawBufferPointer) throws -> Void) rethrows {
        let entries = count
        try bytes.withUnsafeBytes { all in
            func range(_ entry: Int) -> (key: Range<Int>, state: Range<Int>) {
                let keyStart = bounds[2 * entry]
                let stateStart = bounds[2 * entry + 1]
                return (keyStart..<stateStart, stateStart..<(entry + 1 < entries ? bounds[2 * entry + 2] : all.count))
            }
            var order: [KeyOrder.Element] = []
            order.reserveCapacity(entries)
            for entry in 0..<entries {
                let key = range(entry).key
                var prefix: (UInt64, UInt64) = (0, 0)
                withUnsafeMutableBytes(of: &prefix) { words in
                    words.copyMemory(from: UnsafeRawBufferPointer(rebasing: all[key.lowerBound..<min(key.upperBound, key.lowerBound + 16)]))
                }
                order.append(KeyOrder.Element(high: UInt64(bigEndian: prefix.0), low: UInt64(bigEndian: prefix.1), entry: UInt32(truncatingIfNeeded: entry)))
            }
            KeyOrder.sort(&order) { left, right in
                // Equal (zero-padded) first 16 bytes: compare what follows, then the lengths.
                let left = range(Int(left)).key
                let right = range(Int(right)).key
                let common = min(left.count, right.count)
                if common > 16 {
                    let order = memcmp(all.baseAddress! + left.lowerBound + 16, all.baseAddress! + right.lowerBound + 16, common - 16)
                    if order != 0 { return order < 0 }
                }
                return left.count < right.count
            }
            // In key order the entries are scattered over the delta (at a million groups each one's bounds and bytes
            // were a cache miss, the put loop's largest cost): each entry's bounds are prefetched 16 puts ahead, its
            // key and state 8 ahead.
            try bounds.withUnsafeBufferPointer { bounds in
                let base = all.baseAddress!
                for position in order.indices {
                    if position &+ 16 < order.count { eddy_prefetch(bounds.baseAddress! + 2 &* Int(order[position &+ 16].entry)) }
                    if position &+ 8 < order.count { eddy_prefetch(base + bounds[2 &* Int(order[position &+ 8].entry)]) }
                    let (key, state) = range(Int(order[position].entry))
                    try body(UnsafeRawBufferPointer(rebasing: all[key]), UnsafeRawBufferPointer(rebasing: all[state]))
                }
            }
        }
    }
}

/// Sorts a barrier's keys by their bytes: a most-significant-byte-first radix sort on each key's first 16 bytes,
/// held in the element as two big-endian numbers (zero-padded), with a comparison of the rest only where those tie.
/// A million keys of one view share their first bytes (the key encoding's markers) and mostly differ within the
/// next few: the radix passes skip a byte all keys share with one counting pass, and split the rest into buckets
/// small enough for insertion sort after a few levels. It replaced a comparison sort of the same elements that was
/// a fifth of the checkpoint thread's time for a catch-up epoch of 950,000 groups.
enum KeyOrder {
    struct Element {
        var high: UInt64
        var low: UInt64
        var entry: UInt32

        /// Byte `depth` (0 ..< 16) of the key.
        @inline(__always)
        func byte(_ depth: Int) -> Int {
            Int(truncatingIfNeeded: (depth < 8 ? high &>> (56 &- 8 &* depth) : low &>> (120 &- 8 &* depth)) & 0xFF)
        }
    }

    /// Buckets this small are sorted by insertion.
    static let insertionSortBelow = 24

    /// Sorts `elements` by their 16-byte prefixes, then by `tailPrecedes` (entries' keys past those bytes).
    static func sort(_ elements: inout [Element], tailPrecedes: (UInt32, UInt32) -> Bool) {
        guard elements.count > 1 else { return }
        var scratch = [Element](repeating: Element(high: 0, low: 0, entry: 0), count: elements.count)
        // Per depth, a bucket count table and its scatter positions (a level's buckets are sorted before it
        // moves on, so one table a depth serves every bucket of that depth).
        var counts = [Int](repeating: 0, count: 16 * countsPerDepth)
        elements.withUnsafeMutableBufferPointer { elements in
            scratch.withUnsafeMutableBufferPointer { scratch in
                counts.withUnsafeMutableBufferPointer { counts in
                    sort(
                        elements.baseAddress!, count: elements.count, depth: 0, scratch: scratch.baseAddress!, counts: counts.baseAddress!,
                        tailPrecedes: tailPrecedes)
                }
            }
        }
    }

    private static let countsPerDepth = 2 * 257

    private static func sort(
        _ elements: UnsafeMutablePointer<Element>, count: Int, depth: Int, scratch: UnsafeMutablePointer<Element>,
        counts allCounts: UnsafeMutablePointer<Int>, tailPrecedes: (UInt32, UInt32) -> Bool
    ) {
        func precedes(_ left: Element, _ right: Element) -> Bool {
            if left.high != right.high { return left.high < right.high }
            if left.low != right.low { return left.low < right.low }
            return tailPrecedes(left.entry, right.entry)
        }
        if count < insertionSortBelow {
            for index in 1..<max(1, count) {
                let element = elements[index]
                var place = index
                while place > 0 && precedes(element, elements[place &- 1]) {
                    elements[place] = elements[place &- 1]
                    place &-= 1
                }
                elements[place] = element
            }
            return
        }
        if depth == 16 {
            // Equal first 16 bytes: the rest decides.
            var tied = UnsafeMutableBufferPointer(start: elements, count: count)
            tied.sort { tailPrecedes($0.entry, $1.entry) }
            return
        }
        let counts = allCounts + depth &* countsPerDepth
        let next = counts + 257
        counts.update(repeating: 0, count: 257)
        for index in 0..<count { counts[elements[index].byte(depth) &+ 1] &+= 1 }
        if counts[elements[0].byte(depth) &+ 1] == count {
            // Every key has the same byte here.
            sort(elements, count: count, depth: depth &+ 1, scratch: scratch, counts: allCounts, tailPrecedes: tailPrecedes)
            return
        }
        for bucket in 1...256 { counts[bucket] &+= counts[bucket &- 1] }
        // `counts[b]` is now where bucket b starts; the scatter moves each start to its bucket's end.
        next.update(from: counts, count: 257)
        for index in 0..<count {
            let bucket = elements[index].byte(depth)
            scratch[next[bucket]] = elements[index]
            next[bucket] &+= 1
        }
        elements.update(from: scratch, count: count)
        for bucket in 0..<256 where counts[bucket &+ 1] &- counts[bucket] > 1 {
            sort(
                elements + counts[bucket], count: counts[bucket &+ 1] &- counts[bucket], depth: depth &+ 1, scratch: scratch + counts[bucket],
                counts: allCounts, tailPrecedes: tailPrecedes)
        }
    }
}
