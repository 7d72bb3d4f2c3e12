/// The sink's pending writes: the newest value of each key not yet written, with the epoch it came from, in one
/// flat batch (`SinkPairBatch`) and an index of its keys over the batch's own bytes — no dictionary of byte
/// arrays, no array per key.
///
/// The usual case costs nothing per key: Redis keeps up, so an epoch's pairs (distinct keys, from the renderer)
/// arrive while nothing is pending and are adopted as they are; the index is built only when a second epoch must
/// coalesce into pending keys (a write in flight, Redis slow or away). Taking the pairs for a write empties
/// everything, so no capacity is held after a large epoch.
struct PendingPairs: Sendable {
    private(set) var batch = SinkPairBatch()
    /// Per pair of `batch`: the epoch its value comes from.
    private var epochs: [UInt64] = []
    /// Over `batch`'s keys; nil until a second epoch coalesces in.
    private var index: SinkPairKeyIndex?
    /// Seeds the index's hash, so that crafted keys cannot aim at one slot.
    private let seed = UInt64.random(in: 0...UInt64.max)

    var count: Int { batch.count }
    var isEmpty: Bool { batch.isEmpty }

    /// Adds epoch `epoch`'s pairs (distinct keys). With `replacing`, a pair replaces the pending value of its key
    /// (a newer epoch); without, it is added only where its key is not pending (putting back an older write).
    mutating func add(_ pairs: SinkPairBatch, epoch: UInt64, replacing: Bool) {
        if pairs.isEmpty { return }
        if batch.isEmpty {
            batch = pairs
            epochs = Array(repeating: epoch, count: pairs.count)
            index = nil
            return
        }
        var index = self.index ?? SinkPairKeyIndex(of: batch, seed: seed)
        self.index = nil
        for position in pairs.indices {
            let (hash, found) = pairs.withKey(position) { key, length in
                let hash = index.hash(key, count: length)
                return (hash, index.find(key, count: length, hash: hash, in: batch))
            }
            if found >= 0 {
                guard replacing else { continue }
                batch.replace(found, with: pairs, at: position)
                epochs[found] = epoch
            } else {
                batch.append(pairs, at: position)
                epochs.append(epoch)
                index.insert(batch.count - 1, hash: hash, in: batch)
            }
        }
        // Keys rewritten epoch after epoch while Redis is away leave their old values behind: drop them once they
        // outweigh the live ones (pair numbers, and so the index, stay valid).
        if batch.unusedBytes > max(1 << 20, batch.byteCount) { batch = batch.compacted() }
        self.index = index
    }

    /// Every pending pair, compacted; nothing is pending after.
    mutating func takeAll() -> SinkPairBatch {
        let taken = batch.compacted()
        batch = SinkPairBatch()
        epochs = []
        index = nil
        return taken
    }

    /// Drops the pairs whose values come from epoch `epoch` or before (a whole-view write of that checkpoint
    /// holds them).
    mutating func removeAll(through epoch: UInt64) {
        guard epochs.contains(where: { $0 <= epoch }) else { return }
        let kept = epochs.filter { $0 > epoch }
        batch = batch.keepingPairs { epochs[$0] > epoch }
        epochs = kept
        index = nil
    }
}
