import Testing

@testable import EddyEngine

@Suite struct GroupStateTests {
    func makeView(groupBy: [Int] = [0]) -> Aggregator {
        Aggregator(schema: AggregatorTests.wide, groupBy: groupBy, aggregates: AggregatorTests.everyAggregate, filter: nil)
    }

    /// Restores every group of `view` into a fresh view.
    func restored(from view: inout Aggregator, groupBy: [Int] = [0]) throws -> Aggregator {
        var copy = makeView(groupBy: groupBy)
        var state: [UInt8] = []
        for group in 0..<view.table.groupCount {
            view.table.encodeState(ofGroup: group, into: &state)
            let restoredGroup = try copy.table.restoreGroup(key: view.table.keyBytes(ofGroup: group), state: state)
            #expect(restoredGroup == group)
        }
        return copy
    }

    @Test func encodeRestoreRoundTripForEveryAggregate() throws {
        for groupBy in [[0], [0, 1, 2, 3, 4, 5, 6, 7], []] {
            var view = makeView(groupBy: groupBy)
            for message in AggregatorTests.wideMessages { view.apply(message) }
            var copy = try restored(from: &view, groupBy: groupBy)
            #expect(copy.table.dirtyCount == 0)
            #expect(try copy.table.results() == view.table.results())
            for group in 0..<view.table.groupCount {
                #expect(copy.table.keyBytes(ofGroup: group) == view.table.keyBytes(ofGroup: group))
                var original: [UInt8] = []
                var again: [UInt8] = []
                view.table.encodeState(ofGroup: group, into: &original)
                copy.table.encodeState(ofGroup: group, into: &again)
                #expect(original == again)
            }
            // Both continue the same way: the DISTINCT sets and string extremes came back too.
            let more = [
                #"{"g": "a", "n": 5, "d": 1.5, "s": "pear", "t": "2030-01-01 00:00:00", "b": false}"#,
                #"{"g": "a", "n": 6, "d": -0.0, "s": "Aardvark", "dec": 1e10}"#,
                #"{"g": "b", "n": 6, "d": 2, "s": "a"}"#,
                #"{"g": "c", "n": 1}"#,
            ]
            for message in more {
                view.apply(message)
                copy.apply(message)
            }
            #expect(try copy.table.results() == view.table.results())
        }
    }

    @Test func stateOfTheExampleViewIsSmall() throws {
        var view = Aggregator(schema: userEvents, groupBy: [3], aggregates: [.init(.count, argument: nil)], filter: nil)
        for _ in 0..<300 { view.apply(#"{"event": "click"}"#) }
        var state: [UInt8] = []
        view.table.encodeState(ofGroup: 0, into: &state)
        #expect(state == [1, 0, 1, 0xAC, 0x02])  // version, flags, COUNT(*) operation, LEB128 300
        #expect(view.table.keyBytes(ofGroup: 0) == [0x01, 0x01, 5] + Array("click".utf8))
    }

    /// `COUNT(*)` grouped by one text column: one state word a group, and the table's arenas (keys, records, index,
    /// dirty list) hold 100,000 groups of 28-byte keys in well under issue 13's 200 bytes a group, keys included.
    /// Restored in place from the encoded bytes, every group comes back with its count.
    @Test func countStarGroupsAreCompactAndRestoreInPlace() throws {
        var view = Aggregator(schema: userEvents, groupBy: [1], aggregates: [.init(.count, argument: nil)], filter: nil)
        let groups = 100_000
        for index in 0..<groups {
            let user = "user\(String(index + 1_000_000))@example.org"  // 25 characters: keys of 28 bytes
            for _ in 0...(index % 3) { view.apply(#"{"user": "\#(user)"}"#) }
        }
        #expect(view.table.groupCount == groups)
        #expect(view.table.wordsPerGroup == 1)
        let bytesPerGroup = Double(view.table.state.pointee.allocatedBytes) / Double(groups)
        #expect(bytesPerGroup < 100, "\(bytesPerGroup) bytes a group")

        var delta = BarrierDelta()
        view.table.takeDirty(into: &delta)
        var restored = Aggregator(schema: userEvents, groupBy: [1], aggregates: [.init(.count, argument: nil)], filter: nil)
        try delta.forEach { key, state in try restored.table.restoreGroup(key: key, state: state) }
        #expect(restored.table.groupCount == groups)
        #expect(restored.table.dirtyCount == 0)
        for group in stride(from: 0, to: groups, by: 997) {
            #expect(try restored.table.keyValues(ofGroup: group) == view.table.keyValues(ofGroup: group))
            #expect(restored.table.value(ofAggregate: 0, group: group) == .int64(Int64(group % 3 + 1)))
        }
    }

    @Test func refusesCorruptOrForeignState() throws {
        var view = makeView()
        for message in AggregatorTests.wideMessages { view.apply(message) }
        let key = view.table.keyBytes(ofGroup: 0)
        var state: [UInt8] = []
        view.table.encodeState(ofGroup: 0, into: &state)

        func expectCorrupt(key: [UInt8], state: [UInt8], into table: GroupTable? = nil, _ comment: Comment) {
            var table = table ?? makeView().table
            do {
                try table.restoreGroup(key: key, state: state)
                Issue.record("restored: \(comment)")
            } catch {
                #expect(error.code == .corruptState, comment)
                #expect(table.groupCount == 0, comment)
            }
        }
        for length in 0..<state.count {
            expectCorrupt(key: key, state: Array(state[..<length]), "state cut to \(length) bytes")
        }
        expectCorrupt(key: key, state: state + [0], "a trailing byte")
        expectCorrupt(key: key, state: [2] + state.dropFirst(), "another format version")
        expectCorrupt(key: key, state: [1, 1] + state.dropFirst(2), "a long-key flag on a plain key")
        expectCorrupt(key: [], state: state, "an empty key")
        expectCorrupt(key: [0x03] + key.dropFirst(), state: state, "an unknown key marker")
        expectCorrupt(key: key + [0], state: state, "a key with a trailing byte")
        expectCorrupt(key: [0x01, 0x02], state: state, "a bad NULL tag")
        expectCorrupt(key: [0x01, 0x01, 0x02, 0xC3, 0x28], state: state, "a key that is not UTF-8")
        // The same bytes restored into a view with other aggregates.
        let other = GroupTable(schema: AggregatorTests.wide, groupBy: [0], aggregates: [.init(.sum, argument: 1)])
        expectCorrupt(key: key, state: state, into: other, "another view's state")

        var table = makeView().table
        try table.restoreGroup(key: key, state: state)
        #expect(throws: EngineError.self) { try table.restoreGroup(key: key, state: state) }
        #expect(table.groupCount == 1)
    }

    /// A key read from disk is checked for UTF-8; one taken from a group table (a barrier delta's, rendered for a
    /// sink) is not checked again.
    @Test func decodingAKeyChecksUTF8UnlessToldItCameFromAGroupTable() throws {
        let notUTF8: [UInt8] = [0x01, 0x01, 0x02, 0xC3, 0x28]
        try notUTF8.withUnsafeBytes { key in
            #expect(throws: EngineError.self) { try GroupKey.decode(key, kinds: [.string]) }
            var strings: [[UInt8]] = []
            try GroupKey.decode(key, kinds: [.string], validatingUTF8: false) { column in
                if case .string(let bytes) = column { strings.append(Array(bytes)) }
            }
            #expect(strings == [[0xC3, 0x28]])
        }
    }

    @Test func validatesViews() {
        let schema = AggregatorTests.wide
        let invalid: [([Int], [AggregateSpec])] = [
            ([8], []), ([-1], []), ([0], [.init(.sum, argument: nil)]), ([0], [.init(.count, argument: nil, isDistinct: true)]),
            ([0], [.init(.sum, argument: 3)]), ([0], [.init(.avg, argument: 4)]), ([0], [.init(.sum, argument: 5)]),
            ([0], [.init(.min, argument: 9)]),
        ]
        for (groupBy, aggregates) in invalid {
            #expect(throws: EngineError.self, "\(groupBy) \(aggregates)") {
                try GroupTable.validate(schema: schema, groupBy: groupBy, aggregates: aggregates)
            }
        }
        #expect(throws: Never.self) { try GroupTable.validate(schema: schema, groupBy: [0, 0], aggregates: AggregatorTests.everyAggregate) }
    }
}
