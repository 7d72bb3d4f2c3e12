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

    /// Makes room for `entries` more entries of `bytes` bytes in all.
    mutating func reserve(entries: Int, bytes count: Int) {
        bytes.reserveCapacity(bytes.count + count)
        bounds.reserveCapacity(bounds.count + 2 * entries)
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
                var prefix: (UInt64, UInt64, UInt64) = (0, 0, 0)
                withUnsafeMutableBytes(of: &prefix) { words in
                    words.copyMemory(
                        from: UnsafeRawBufferPointer(rebasing: all[key.lowerBound..<min(key.upperBound, key.lowerBound + KeyOrder.prefixBytes)]))
                }
                order.append(
                    KeyOrder.Element(
                        high: UInt64(bigEndian: prefix.0), middle: UInt64(bigEndian: prefix.1), low: UInt64(bigEndian: prefix.2),
                        entry: UInt32(truncatingIfNeeded: entry)))
            }
            KeyOrder.sort(&order) { left, right in
                // Equal (zero-padded) prefixes: compare what follows, then the lengths.
                let left = range(Int(left)).key
                let right = range(Int(right)).key
                let common = min(left.count, right.count)
                let prefix = KeyOrder.prefixBytes
                if common > prefix {
                    let order = memcmp(all.baseAddress! + left.lowerBound + prefix, all.baseAddress! + right.lowerBound + prefix, common - prefix)
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

/// Sorts a barrier's keys by their bytes: a most-significant-byte-first radix sort on each key's first 24 bytes,
/// held in the element as three big-endian numbers (zero-padded), with a comparison of the rest only where those
/// tie. The keys of one view share many bytes (the key encoding's markers; a text's common beginnings, such as
/// the first names of e-mail logins): each bucket first skips the bytes all its keys share, in one pass that
/// compares whole words, and is then split by its first differing byte until it is small enough for insertion
/// sort. It replaced a comparison sort of the same elements (about a fifth of the checkpoint thread's time for
/// a catch-up epoch of 950,000 groups).
enum KeyOrder {
    struct Element {
        var high: UInt64
        var middle: UInt64
        var low: UInt64
        var entry: UInt32

        /// Byte `depth` (0 ..< 24) of the key.
        @inline(__always)
        func byte(_ depth: Int) -> Int {
            let word = depth < 8 ? high : depth < 16 ? middle : low
            return Int(truncatingIfNeeded: (word &>> (56 &- 8 &* (depth & 7))) & 0xFF)
        }

        /// The first byte (0 ..< 24) where the two prefixes differ, or 24.
        @inline(__always)
        func firstDifference(_ other: Element) -> Int {
            var difference = high ^ other.high
            if difference != 0 { return difference.leadingZeroBitCount &>> 3 }
            difference = middle ^ other.middle
            if difference != 0 { return 8 &+ difference.leadingZeroBitCount &>> 3 }
            difference = low ^ other.low
            if difference != 0 { return 16 &+ difference.leadingZeroBitCount &>> 3 }
            return prefixBytes
        }

        @inline(__always)
        func precedes(_ other: Element, tailPrecedes: (UInt32, UInt32) -> Bool) -> Bool {
            if high != other.high { return high < other.high }
            if middle != other.middle { return middle < other.middle }
            if low != other.low { return low < other.low }
            return tailPrecedes(entry, other.entry)
        }
    }

    /// The key bytes an element holds.
    static let prefixBytes = 24

    /// Buckets this small are sorted by insertion.
    static let insertionSortBelow = 24

    /// Sorts `elements` by their 24-byte prefixes, then by `tailPrecedes` (entries' keys past those bytes).
    static func sort(_ elements: inout [Element], tailPrecedes: (UInt32, UInt32) -> Bool) {
        guard elements.count > 1 else { return }
        // Per depth, a bucket count table and its next places (a level's buckets are sorted before it moves on,
        // so one table a depth serves every bucket of that depth).
        var counts = [Int](repeating: 0, count: prefixBytes * countsPerDepth)
        elements.withUnsafeMutableBufferPointer { elements in
            counts.withUnsafeMutableBufferPointer { counts in
                sort(elements.baseAddress!, count: elements.count, depth: 0, counts: counts.baseAddress!, tailPrecedes: tailPrecedes)
            }
        }
    }

    private static let countsPerDepth = 2 * 257

    /// Sorts `count` elements that share their first `depth` bytes.
    private static func sort(
        _ elements: UnsafeMutablePointer<Element>, count: Int, depth shared: Int, counts allCounts: UnsafeMutablePointer<Int>,
        tailPrecedes: (UInt32, UInt32) -> Bool
    ) {
        if count < insertionSortBelow {
            for index in 1..<max(1, count) {
                let element = elements[index]
                var place = index
                while place > 0 && element.precedes(elements[place &- 1], tailPrecedes: tailPrecedes) {
                    elements[place] = elements[place &- 1]
                    place &-= 1
                }
                elements[place] = element
            }
            return
        }
        // Past the bytes every element shares.
        var depth = prefixBytes
        let first = elements[0]
        for index in 1..<count {
            depth = min(depth, first.firstDifference(elements[index]))
            if depth == shared { break }
        }
        if depth == prefixBytes {
            // Equal prefixes: the rest decides.
            var tied = UnsafeMutableBufferPointer(start: elements, count: count)
            tied.sort { tailPrecedes($0.entry, $1.entry) }
            return
        }
        let counts = allCounts + depth &* countsPerDepth
        let next = counts + 257
        counts.update(repeating: 0, count: 257)
        for index in 0..<count { counts[elements[index].byte(depth) &+ 1] &+= 1 }
        for bucket in 1...256 { counts[bucket] &+= counts[bucket &- 1] }
        // `counts[b]` is now where bucket b starts, and `counts[b + 1]` where it ends. Distributed in place (as
        // American flag sort does): each bucket's next place takes elements until the bucket is full, and every
        // element displaced on the way is carried to its own bucket's next place. A scatter into a scratch copy
        // and back cost a second array as large (at a million keys, 30 MB of fresh pages) and a copy per level.
        next.update(from: counts, count: 257)
        for bucket in 0..<256 {
            let end = counts[bucket &+ 1]
            while next[bucket] < end {
                var element = elements[next[bucket]]
                var home = element.byte(depth)
                while home != bucket {
                    swap(&element, &elements[next[home]])
                    next[home] &+= 1
                    home = element.byte(depth)
                }
                elements[next[bucket]] = element
                next[bucket] &+= 1
            }
        }
        for bucket in 0..<256 where counts[bucket &+ 1] &- counts[bucket] > 1 {
            sort(
                elements + counts[bucket], count: counts[bucket &+ 1] &- counts[bucket], depth: depth &+ 1, counts: allCounts,
                tailPrecedes: tailPrecedes)
        }
    }
}
