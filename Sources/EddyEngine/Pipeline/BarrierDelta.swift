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
}
