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
            // Sorted by the first 24 bytes as three numbers (keys of similar text, such as e-mail logins, mostly
            // differ there), the rest compared only on a tie.
            var order: [(prefix: (UInt64, UInt64, UInt64), entry: Int)] = []
            order.reserveCapacity(entries)
            for entry in 0..<entries {
                let key = range(entry).key
                var prefix: (UInt64, UInt64, UInt64) = (0, 0, 0)
                withUnsafeMutableBytes(of: &prefix) { words in
                    words.copyMemory(from: UnsafeRawBufferPointer(rebasing: all[key.lowerBound..<min(key.upperBound, key.lowerBound + 24)]))
                }
                order.append(((UInt64(bigEndian: prefix.0), UInt64(bigEndian: prefix.1), UInt64(bigEndian: prefix.2)), entry))
            }
            order.sort { lhs, rhs in
                if lhs.prefix != rhs.prefix { return lhs.prefix < rhs.prefix }
                let left = range(lhs.entry).key
                let right = range(rhs.entry).key
                // Equal (zero-padded) first 24 bytes: compare what follows, then the lengths.
                let common = min(left.count, right.count)
                if common > 24 {
                    let order = memcmp(all.baseAddress! + left.lowerBound + 24, all.baseAddress! + right.lowerBound + 24, common - 24)
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
                    if position &+ 16 < order.count { eddy_prefetch(bounds.baseAddress! + 2 &* order[position &+ 16].entry) }
                    if position &+ 8 < order.count { eddy_prefetch(base + bounds[2 &* order[position &+ 8].entry]) }
                    let (key, state) = range(order[position].entry)
                    try body(UnsafeRawBufferPointer(rebasing: all[key]), UnsafeRawBufferPointer(rebasing: all[state]))
                }
            }
        }
    }
}
