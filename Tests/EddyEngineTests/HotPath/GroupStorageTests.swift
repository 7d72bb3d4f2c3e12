import EddyWorkload
import Testing

@testable import EddyEngine

@Suite struct GroupStorageTests {
    /// Keys whose hashes share the fingerprint (the index slot's high 32 bits, which also pick the first slot): each
    /// probe compares the entry's key, so none is taken for another, whatever the length.
    @Test func fingerprintCollisionsCompareTheKeys() {
        var state = GroupState(stateWords: 1, plan: [], groupBy: [0], singleStringColumn: -1)
        defer { state.deallocate() }
        let hash: UInt64 = 0xDEAD_BEEF_0000_0007
        let keys = ["key-a", "key-b", "key-bb", ""].map { Array($0.utf8) }
        func find(_ key: [UInt8], hash: UInt64) -> Int {
            key.withUnsafeBufferPointer { state.find($0.baseAddress ?? UnsafePointer(bitPattern: 1)!, count: $0.count, hash: hash) }
        }
        for (number, key) in keys.enumerated() {
            #expect(find(key, hash: hash) == -1, "\(key) before it is added")
            let group = key.withUnsafeBytes { state.insert($0, hash: hash) }
            #expect(group == number)
        }
        // The next fingerprint, first slot one further on (inside the others' run of slots): found past them.
        let neighbour = Array("key-c".utf8)
        let neighbourHash = hash + (1 << 32)
        #expect(find(neighbour, hash: neighbourHash) == -1)
        #expect(neighbour.withUnsafeBytes { state.insert($0, hash: neighbourHash) } == keys.count)
        for (number, key) in keys.enumerated() {
            #expect(find(key, hash: hash) == number)
            #expect(Array(state.key(number)) == key)
        }
        #expect(find(neighbour, hash: neighbourHash) == keys.count)
        // Another fingerprint in the same first slot: not the same key even though the bytes are.
        #expect(find(keys[0], hash: hash ^ (1 << 63)) == -1)
    }

    /// The entries keep each group's header, state words and key together: the dirty flag, the key and the words
    /// read back by group number after the arenas grew many times, and every key is found again in the index its
    /// slots were moved to at each growth.
    @Test func entriesSurviveGrowth() {
        var state = GroupState(stateWords: 2, plan: [], groupBy: [0], singleStringColumn: -1, capacity: 1, entryWordsCapacity: 1)
        defer { state.deallocate() }
        let keys = (0..<3_000).map { Array("k\(String(repeating: "x", count: $0 % 40))\($0)".utf8) }
        for (number, key) in keys.enumerated() {
            let hash = key.withUnsafeBufferPointer { KeyHasher.hash($0.baseAddress!, count: $0.count, seed: 99) }
            #expect(key.withUnsafeBytes { state.insert($0, hash: hash) } == number)
            state.words(of: number)[0] = UInt64(number)
            state.words(of: number)[1] = ~UInt64(number)
            if number % 3 == 0 { state.markDirty(number) }
        }
        #expect(state.count == keys.count)
        #expect(state.dirtyCount == keys.count / 3)
        for (number, key) in keys.enumerated() {
            let hash = key.withUnsafeBufferPointer { KeyHasher.hash($0.baseAddress!, count: $0.count, seed: 99) }
            #expect(key.withUnsafeBufferPointer { state.find($0.baseAddress!, count: $0.count, hash: hash) } == number)
            #expect(Array(state.key(number)) == key)
            #expect(state.words(of: number)[0] == UInt64(number) && state.words(of: number)[1] == ~UInt64(number))
        }
        #expect(state.takeDirty() == Array(stride(from: 0, to: keys.count, by: 3)))
        #expect(state.dirtyCount == 0)
    }

    static let batchedAggregates: [AggregateSpec] = [
        .init(.count, argument: nil), .init(.count, argument: 1), .init(.sum, argument: 1), .init(.sum, argument: 2),
        .init(.avg, argument: 1), .init(.avg, argument: 2), .init(.min, argument: 1), .init(.max, argument: 2), .init(.min, argument: 4),
        .init(.max, argument: 5), .init(.sum, argument: 7), .init(.min, argument: 6),
    ]

    /// Messages over `users` users: some with a NULL or missing key, some with keys longer than a waiting row
    /// holds (128 bytes) or than LMDB takes (511), numbers NULL now and then.
    static func messages(count: Int, users: Int) -> [String] {
        var random = SplitMix64(seed: 11)
        return (0..<count).map { index in
            let user = Int(random.next() % UInt64(users))
            let key: String
            switch user % 50 {
            case 0: key = "null"
            case 1: key = #""\#(String(repeating: "long", count: 40))\#(user)""#
            case 2: key = #""\#(String(repeating: "longer", count: 100))\#(user)""#
            default: key = #""user\#(user)@example.org""#
            }
            let n = index % 7 == 0 ? "null" : String(Int64(random.next() % 2_000) - 1_000)
            let field = user % 50 == 3 ? "" : #""g": \#(key), "#
            return #"{\#(field)"n": \#(n), "d": \#(Double(index % 13) / 4), "b": \#(index % 2 == 0), "t": \#(index), "#
                + #""day": \#(index % 400), "dec": \#(index % 5)}"#
        }
    }

    /// Applies `messages` to `view` one at a time, or in batches of `batch` (`applyInBatch` then `finishBatch`).
    static func run(_ view: inout Aggregator, _ messages: [String], batch: Int?) {
        guard let batch else {
            for message in messages { view.apply(message) }
            return
        }
        for start in stride(from: 0, to: messages.count, by: batch) {
            for message in messages[start..<min(start + batch, messages.count)] {
                Array(message.utf8).withUnsafeBytes { view.applyInBatch($0) }
            }
            view.finishBatch()
        }
    }

    /// Waiting rows fold into the same groups, states, keys and dirty order as rows applied one at a time: with
    /// NULL and missing keys, keys too long to wait, long keys, and the table growing while rows wait.
    @Test(arguments: [[0], [0, 5], [5, 0, 6]])
    func batchedLookupsMatchOneAtATime(groupBy: [Int]) throws {
        let messages = Self.messages(count: 6_000, users: 2_500)
        var single = Aggregator(schema: AggregatorTests.wide, groupBy: groupBy, aggregates: Self.batchedAggregates, filter: nil)
        Self.run(&single, messages, batch: nil)
        #expect(single.table.groupCount > 1_000, "the table grows several times")
        for batch in [1, 7, 16, 17, 1_000] {
            var batched = Aggregator(schema: AggregatorTests.wide, groupBy: groupBy, aggregates: Self.batchedAggregates, filter: nil)
            #expect(batched.table.defersLookups)
            // From the first group, or from the 500th (rows start waiting partway, while the table grows).
            batched.table.defersLookupsFromGroups = batch == 16 ? 500 : 0
            Self.run(&batched, messages, batch: batch)
            #expect(batched.table.state.pointee.pending.count == 0)
            #expect(batched.counters == single.counters, "batch \(batch)")
            #expect(batched.table.groupCount == single.table.groupCount, "batch \(batch)")
            for group in 0..<single.table.groupCount {
                #expect(batched.table.keyBytes(ofGroup: group) == single.table.keyBytes(ofGroup: group))
            }
            #expect(try batched.table.results() == single.table.results(), "batch \(batch)")
            var singleCopy = single
            #expect(batched.table.takeDirty() == singleCopy.table.takeDirty(), "batch \(batch)")
        }
    }

    /// Views whose rows cannot wait (a DISTINCT set, a string MIN) and views with a filter give the same results
    /// through `applyInBatch`.
    @Test func batchedViewsThatDoNotDeferAndFilters() throws {
        let messages = Self.messages(count: 2_000, users: 300)
        for aggregates in [AggregatorTests.everyAggregate, [.init(.min, argument: 3)], [.init(.count, argument: 1, isDistinct: true)]] {
            var single = Aggregator(schema: AggregatorTests.wide, groupBy: [0], aggregates: aggregates, filter: nil)
            var batched = single
            #expect(!batched.table.defersLookups)
            Self.run(&single, messages, batch: nil)
            Self.run(&batched, messages, batch: 64)
            #expect(try batched.table.results() == single.table.results())
        }
        let filter = StringEquals(column: 0, value: Array("user7@example.org".utf8))
        var single = Aggregator(schema: AggregatorTests.wide, groupBy: [0], aggregates: Self.batchedAggregates, filter: filter)
        var batched = single
        batched.table.defersLookupsFromGroups = 0
        Self.run(&single, messages, batch: nil)
        Self.run(&batched, messages, batch: 64)
        #expect(single.counters.filteredOut > 1_900 && single.table.groupCount == 1)
        #expect(batched.counters == single.counters)
        #expect(try batched.table.results() == single.table.results())
    }

    /// A table copied while rows wait (copy-on-write) keeps them: both copies finish to the same state, and
    /// finishing one does not fold the other's rows.
    @Test func copyWhileRowsWait() throws {
        let messages = Array(Self.messages(count: 40, users: 4).filter { !$0.contains("long") }.prefix(10))
        #expect(messages.count == 10)
        var view = Aggregator(schema: AggregatorTests.wide, groupBy: [0], aggregates: Self.batchedAggregates, filter: nil)
        view.table.defersLookupsFromGroups = 0
        for message in messages { Array(message.utf8).withUnsafeBytes { view.applyInBatch($0) } }
        #expect(view.table.state.pointee.pending.count == 10)
        var copy = view
        view.finishBatch()
        #expect(copy.table.state.pointee.pending.count == 10)
        #expect(copy.table.groupCount == 0)
        copy.finishBatch()
        var single = Aggregator(schema: AggregatorTests.wide, groupBy: [0], aggregates: Self.batchedAggregates, filter: nil)
        Self.run(&single, messages, batch: nil)
        #expect(try copy.table.results() == single.table.results())
        #expect(try view.table.results() == single.table.results())

        // With nothing waiting, finishing a batch does not copy a shared table (the hot loop finishes every batch).
        let snapshot = view
        view.finishBatch()
        #expect(view.table.state == snapshot.table.state)

        // Below `defersLookupsFromGroups` (16,384 by default) nothing waits: the table is complete at once.
        var small = Aggregator(schema: AggregatorTests.wide, groupBy: [0], aggregates: Self.batchedAggregates, filter: nil)
        for message in messages { Array(message.utf8).withUnsafeBytes { small.applyInBatch($0) } }
        #expect(small.table.state.pointee.pending.count == 0)
        #expect(try small.table.results() == single.table.results())
    }
}
