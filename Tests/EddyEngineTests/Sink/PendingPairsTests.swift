import Testing

@testable import EddyEngine

/// The sink's coalescing of pending pairs over flat batches.
@Suite struct PendingPairsTests {
    func batch(_ pairs: [(String, String?)]) -> SinkPairBatch {
        SinkPairBatch(pairs.map { SinkStateMachine.Pair(key: Array($0.0.utf8), value: $0.1.map { Array($0.utf8) }) })
    }

    func text(_ pairs: SinkPairBatch) -> [String: String] {
        Dictionary(uniqueKeysWithValues: pairs.map { (String(decoding: $0.key, as: UTF8.self), $0.value.map { String(decoding: $0, as: UTF8.self) } ?? "(delete)") })
    }

    @Test func newerEpochsReplaceAndOlderOnesOnlyFillIn() {
        var pending = PendingPairs()
        pending.add(batch([("a", "1"), ("b", "1"), ("", "empty key")]), epoch: 1, replacing: true)
        pending.add(batch([("b", "2"), ("c", nil), ("", "again")]), epoch: 2, replacing: true)
        // A write of epoch 0 put back: only its keys that nothing newer holds.
        pending.add(batch([("a", "0"), ("d", "0")]), epoch: 0, replacing: false)
        #expect(pending.count == 5)
        #expect(text(pending.batch) == ["a": "1", "b": "2", "c": "(delete)", "": "again", "d": "0"])
        pending.removeAll(through: 1)
        #expect(text(pending.batch) == ["b": "2", "c": "(delete)", "": "again"])
        let taken = pending.takeAll()
        #expect(text(taken) == ["b": "2", "c": "(delete)", "": "again"])
        #expect(taken.byteCount == taken.bytes.count)
        #expect(pending.isEmpty)
    }

    /// Keys rewritten epoch after epoch (Redis away) keep one value each, and the replaced bytes are dropped once
    /// they outweigh the live ones.
    @Test func memoryStaysBoundedByTheDistinctKeys() {
        var pending = PendingPairs()
        let keys = (0..<2_000).map { "user-\($0)@example.org" }
        for epoch in 1...200 {
            pending.add(batch(keys.map { ($0, String(epoch)) }), epoch: UInt64(epoch), replacing: true)
            #expect(pending.batch.bytes.count <= 4 * pending.batch.byteCount + (2 << 20))
        }
        #expect(pending.count == keys.count)
        #expect(Set(text(pending.takeAll()).values) == ["200"])
    }
}
