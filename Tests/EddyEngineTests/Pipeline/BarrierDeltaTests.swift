import EddyWorkload
import Testing

@testable import EddyEngine

@Suite struct BarrierDeltaTests {
    func makeView() -> Aggregator {
        Aggregator(schema: AggregatorTests.wide, groupBy: [0], aggregates: AggregatorTests.everyAggregate, filter: nil)
    }

    /// The delta holds, for each dirty group in the order it first changed, what `keyBytes` and `encodeState`
    /// give; taking it clears the dirty set.
    @Test func holdsEachDirtyGroupsKeyAndStateInOrder() throws {
        var view = makeView()
        let long = String(repeating: "x", count: 700)  // a key over LMDB's limit: its storage key goes in the delta
        for message in AggregatorTests.wideMessages + [#"{"g": "\#(long)", "n": 1}"#] { view.apply(message) }
        var expected: [(key: [UInt8], state: [UInt8])] = []
        var reference = view
        for group in reference.table.takeDirty() {
            var state: [UInt8] = []
            reference.table.encodeState(ofGroup: group, into: &state)
            expected.append((reference.table.keyBytes(ofGroup: group), state))
        }
        #expect(expected.count >= 3)

        var delta = BarrierDelta()
        view.table.takeDirty(into: &delta)
        #expect(view.table.dirtyCount == 0)
        var entries: [(key: [UInt8], state: [UInt8])] = []
        delta.forEach { key, state in entries.append((Array(key), Array(state))) }
        #expect(entries.map(\.key) == expected.map(\.key))
        #expect(entries.map(\.state) == expected.map(\.state))
        #expect(entries.contains { $0.key.first == GroupKey.longMarker })

        // What a restart makes of it is the same view.
        var restored = makeView()
        try delta.forEach { key, state in _ = try restored.table.restoreGroup(key: Array(key), state: Array(state)) }
        #expect(try restored.table.results() == view.table.results())
    }

    /// Emptied and filled again with no more entries than before, the delta keeps its storage: a warm barrier
    /// allocates nothing per group.
    @Test func reusedItKeepsItsStorage() {
        var view = makeView()
        for message in AggregatorTests.wideMessages { view.apply(message) }
        var delta = BarrierDelta()
        view.table.takeDirty(into: &delta)
        let first = delta.count
        let bytes = delta.bytes.withUnsafeBufferPointer { $0.baseAddress }
        delta.removeAll()
        #expect(delta.isEmpty)
        for message in AggregatorTests.wideMessages { view.apply(message) }
        view.table.takeDirty(into: &delta)
        #expect(delta.count == first)
        #expect(delta.bytes.withUnsafeBufferPointer { $0.baseAddress } == bytes)
    }

    /// In key order, every entry comes once with its own state, sorted as LMDB sorts keys (bytewise, a prefix
    /// first), also where keys share their first 24 bytes.
    @Test func visitsEntriesInKeyOrder() {
        var view = makeView()
        let long = "abcdefghijklmnopqrstuvwxyz"  // past the 24 bytes compared as numbers
        let users = [
            "b", "a", "", "abcdefgh", "abcdefghij", "abcdefghi", #"abcdefgh\u0000"#, "zz", "é", "abcdefgg", long + "1", long + "0", long, long + "00",
        ]
        for (index, user) in users.enumerated() { view.apply(#"{"g": "\#(user)", "n": \#(index)}"#) }
        view.apply(#"{"n": 99}"#)
        var delta = BarrierDelta()
        view.table.takeDirty(into: &delta)
        var inOrder: [(key: [UInt8], state: [UInt8])] = []
        delta.forEach { key, state in inOrder.append((Array(key), Array(state))) }
        var sorted: [(key: [UInt8], state: [UInt8])] = []
        delta.forEachInKeyOrder { key, state in sorted.append((Array(key), Array(state))) }
        #expect(sorted.count == users.count + 1)
        #expect(sorted.map(\.key) == inOrder.map(\.key).sorted { $0.lexicographicallyPrecedes($1) })
        let states = Dictionary(uniqueKeysWithValues: inOrder.map { ($0.key, $0.state) })
        #expect(sorted.allSatisfy { states[$0.key] == $0.state })
    }

    /// Many keys (the radix passes, not only the small-bucket sort): drawn from a few bytes, zero among them, under
    /// shared prefixes of 0 to 28 bytes, so that they tie on whole bytes, on their first 24 bytes and past them.
    @Test func sortsManyKeysAsLMDBDoes() {
        var random = SplitMix64(seed: 20_261_204)
        let prefixes: [[UInt8]] = [[], [1, 1], [1, 1, 0x17], Array(repeating: 0x61, count: 15), Array(repeating: 0x61, count: 22), Array(repeating: 0x61, count: 28)]
        let alphabet: [UInt8] = [0, 1, 0x61, 0x62, 0xFF]
        var keys = Set<[UInt8]>()
        while keys.count < 20_000 {
            var key = prefixes[Int(random.next() % UInt64(prefixes.count))]
            for _ in 0..<Int(random.next() % 12) { key.append(alphabet[Int(random.next() % UInt64(alphabet.count))]) }
            keys.insert(key)
        }
        var delta = BarrierDelta()
        for (index, key) in keys.enumerated() {
            key.withUnsafeBufferPointer { key in delta.append(key: key) { $0.append(UInt8(truncatingIfNeeded: index)) } }
        }
        var states: [[UInt8]: [UInt8]] = [:]
        delta.forEach { key, state in states[Array(key)] = Array(state) }
        var sorted: [[UInt8]] = []
        delta.forEachInKeyOrder { key, state in
            sorted.append(Array(key))
            #expect(states[Array(key)] == Array(state))
        }
        #expect(sorted == keys.sorted { $0.lexicographicallyPrecedes($1) })
    }
}

