import Testing

@testable import EddyEngine

/// `WHERE column = 'value'` on a string column, without allocating.
struct StringEquals: RowPredicate {
    let column: Int
    let value: [UInt8]

    func accepts(_ row: DecodedRow) -> Bool {
        row.withStringBytes(column) { $0.elementsEqual(value) } ?? false
    }
}

@Suite struct AggregatorTests {
    /// `SELECT event, COUNT(*) FROM user_events GROUP BY event`.
    func exampleView(filter: (any RowPredicate)? = nil) -> Aggregator {
        Aggregator(schema: userEvents, groupBy: [3], aggregates: [AggregateSpec(.count, argument: nil)], filter: filter)
    }

    @Test func countsRowsPerGroupWithNullAsAGroup() throws {
        var view = exampleView()
        for event in [#""click""#, #""scroll""#, #""click""#, "null", "42", #""click""#, "[1]"] {
            view.apply(#"{"user": "u", "event": \#(event)}"#)
        }
        view.apply(#"{"user": "u"}"#)
        view.apply("not json")
        let results = try view.table.results()
        #expect(results == [[.string("click")]: [.int64(3)], [.string("scroll")]: [.int64(1)], [.null]: [.int64(4)]])
        #expect(view.counters.rows == 8)
        #expect(view.counters.wrongTypeFields == 2)
        #expect(view.counters[.notJSON] == 1)
        #expect(view.counters.messages == 9)
    }

    static let wide = schema(
        ("g", .string), ("n", .int64), ("d", .double), ("s", .string), ("t", .timestamp), ("b", .bool), ("day", .date),
        ("dec", .decimal))
    static let everyAggregate: [AggregateSpec] = [
        .init(.count, argument: nil), .init(.count, argument: 1), .init(.count, argument: 1, isDistinct: true),
        .init(.sum, argument: 1), .init(.sum, argument: 2), .init(.avg, argument: 1), .init(.avg, argument: 2),
        .init(.min, argument: 1), .init(.max, argument: 1), .init(.min, argument: 2), .init(.max, argument: 2),
        .init(.min, argument: 3), .init(.max, argument: 3), .init(.min, argument: 4), .init(.max, argument: 4),
        .init(.min, argument: 5), .init(.max, argument: 5), .init(.sum, argument: 1, isDistinct: true),
        .init(.count, argument: 3, isDistinct: true), .init(.avg, argument: 2, isDistinct: true),
        .init(.sum, argument: 7), .init(.min, argument: 6), .init(.max, argument: 7),
        .init(.count, argument: 2, isDistinct: true), .init(.max, argument: 3, isDistinct: true),
    ]
    static let wideMessages = [
        #"{"g": "a", "n": 5, "d": 1.5, "s": "pear", "t": "2026-01-02 03:04:05", "b": true, "day": "2026-01-02", "dec": 0.1}"#,
        #"{"g": "a", "n": -2, "d": -0.5, "s": "apple", "t": "2025-12-31 23:59:59.5", "b": false, "day": "1969-12-31", "dec": 0.2}"#,
        #"{"g": "a", "n": 5, "d": 1.5, "s": "Zebra", "t": null, "b": true, "dec": "x"}"#,
        #"{"g": "a", "n": null, "d": 0, "s": "\u00e9clair"}"#,
        #"{"g": "a", "d": -0}"#,
        #"{"g": "b"}"#,
        #"{"g": "b", "n": "7", "d": "x", "s": 3, "t": "nope", "b": 1}"#,
    ]

    @Test func everyFunctionWithNulls() throws {
        var view = Aggregator(schema: Self.wide, groupBy: [0], aggregates: Self.everyAggregate, filter: nil)
        for message in Self.wideMessages { view.apply(message) }
        let results = try view.table.results()
        let t1 = (daysSince1970(2026, 1, 2) * 86_400 + 3 * 3600 + 4 * 60 + 5) * 1_000_000
        let t2 = (daysSince1970(2025, 12, 31) * 86_400 + 86_399) * 1_000_000 + 500_000
        let a: [ScalarValue] = [
            .int64(5), .int64(3), .int64(2), .int64(8), .double(2.5), .double(8.0 / 3), .double(0.5),
            .int64(-2), .int64(5), .double(-0.5), .double(1.5), .string("Zebra"), .string("éclair"), .int64(t2), .int64(t1),
            .bool(false), .bool(true), .int64(3), .int64(4), .double((1.5 - 0.5 + 0) / 3),
            .double(0.1 + 0.2), .int64(daysSince1970(1969, 12, 31)), .double(0.2), .int64(3), .string("éclair"),
        ]
        let b: [ScalarValue] = [
            .int64(2), .int64(0), .int64(0), .null, .null, .null, .null, .null, .null, .null, .null, .null, .null, .null, .null,
            .null, .null, .null, .int64(0), .null, .null, .null, .null, .int64(0), .null,
        ]
        #expect(results[[.string("a")]] == a)
        #expect(results[[.string("b")]] == b)
        #expect(view.counters.wrongTypeFields == 6)
        #expect(view.counters.rows == 7)
    }

    @Test func integerSumsAreExactBeyondInt64() throws {
        let numbers = schema(("g", .string), ("n", .int64))
        var view = Aggregator(
            schema: numbers, groupBy: [], aggregates: [.init(.sum, argument: 1), .init(.avg, argument: 1)], filter: nil)
        view.apply(#"{"n": 9223372036854775807}"#)
        view.apply(#"{"n": 9223372036854775807}"#)
        #expect(view.table.value(ofAggregate: 0, group: 0) == .double(2 * 9_223_372_036_854_775_807.0))
        #expect(view.table.value(ofAggregate: 1, group: 0) == .double(9_223_372_036_854_775_807.0))
        view.apply(#"{"n": -9223372036854775807}"#)
        #expect(view.table.value(ofAggregate: 0, group: 0) == .int64(Int64.max))
        view.apply(#"{"n": -9223372036854775808}"#)
        view.apply(#"{"n": -9223372036854775808}"#)
        #expect(view.table.value(ofAggregate: 0, group: 0) == .double(-9_223_372_036_854_775_809.0))
        view.apply(#"{"n": 1}"#)
        #expect(view.table.value(ofAggregate: 0, group: 0) == .int64(Int64.min))
        // No GROUP BY: one group, whose key is the single byte 0x01.
        #expect(view.table.groupCount == 1)
        #expect(view.table.keyBytes(ofGroup: 0) == [0x01])
        #expect(try view.table.keyValues(ofGroup: 0) == [])
    }

    @Test func groupsByEveryKindWithNulls() throws {
        let kinds = schema(("s", .string), ("i", .int64), ("d", .double), ("b", .bool), ("t", .timestamptz), ("day", .date), ("x", .decimal))
        var view = Aggregator(schema: kinds, groupBy: [0, 1, 2, 3, 4, 5, 6], aggregates: [.init(.count, argument: nil)], filter: nil)
        let messages = [
            #"{"s": "a", "i": 1, "d": 0, "b": true, "t": "1970-01-01 00:00:00Z", "day": "1970-01-01", "x": 1}"#,
            #"{"s": "a", "i": 1, "d": -0.0, "b": true, "t": "1970-01-01T01:00:00+01:00", "day": "1970-01-01", "x": 1.0}"#,
            #"{"s": "a", "i": -1, "d": -1e300, "b": false, "t": "1969-12-31 23:59:59.999999", "day": "0001-01-01", "x": -0.001}"#,
            #"{}"#, #"{"s": null, "i": "1", "d": null, "b": null}"#,
            #"{"s": "", "i": 0}"#, #"{"s": "\u0000"}"#,
        ]
        for message in messages { view.apply(message) }
        let results = try view.table.results()
        let allNull: [ScalarValue] = Array(repeating: .null, count: 7)
        #expect(results == [
            [.string("a"), .int64(1), .double(0), .bool(true), .int64(0), .int64(0), .double(1)]: [.int64(2)],
            [.string("a"), .int64(-1), .double(-1e300), .bool(false), .int64(-1), .int64(daysSince1970(1, 1, 1)), .double(-0.001)]:
                [.int64(1)],
            allNull: [.int64(2)],
            [.string(""), .int64(0)] + allNull.dropFirst(2): [.int64(1)],
            [.string("\u{0}")] + allNull.dropFirst(1): [.int64(1)],
        ])
    }

    @Test func tracksDirtyGroups() throws {
        var view = exampleView()
        #expect(view.table.dirtyCount == 0)
        for event in ["click", "scroll", "click"] { view.apply(#"{"event": "\#(event)"}"#) }
        #expect(view.table.dirtyCount == 2)
        let first = view.table.takeDirty()
        #expect(try first.map { try view.table.keyValues(ofGroup: $0) } == [[.string("click")], [.string("scroll")]])
        #expect(view.table.dirtyCount == 0)
        #expect(view.table.takeDirty() == [])
        view.apply(#"{"event": "scroll"}"#)
        view.apply(#"{"event": "submit"}"#)
        view.apply(#"{"event": "scroll"}"#)
        view.apply("[]")  // skipped: dirties nothing
        let second = view.table.takeDirty()
        #expect(try second.map { try view.table.keyValues(ofGroup: $0) } == [[.string("scroll")], [.string("submit")]])
        #expect(view.table.groupCount == 3)
    }

    @Test func appliesTheFilter() throws {
        var view = exampleView(filter: StringEquals(column: 3, value: Array("click".utf8)))
        for event in ["click", "scroll", "click", "focus"] { view.apply(#"{"event": "\#(event)"}"#) }
        view.apply(#"{"event": 1}"#)
        #expect(try view.table.results() == [[.string("click")]: [.int64(2)]])
        #expect(view.counters.rows == 2)
        #expect(view.counters.filteredOut == 3)
        #expect(view.counters.wrongTypeFields == 1)
        #expect(view.counters.messages == 5)
    }

    @Test func countsEverySkipReason() {
        var view = Aggregator(
            schema: userEvents, groupBy: [3], aggregates: [.init(.count, argument: nil)],
            limits: DecoderLimits(maxMessageBytes: 64, maxDepth: 2), filter: nil)
        view.apply("")
        view.apply(String(repeating: " ", count: 65))
        view.apply(#"{"event": "click""#)
        view.apply("[1]")
        view.apply(#"{"x": [[1]]}"#)
        view.apply(bytes: Array(#"{"event": ""#.utf8) + [0xFF] + Array(#""}"#.utf8))
        view.apply(#"{"event": "click"}"#)
        #expect(SkipReason.allCases.filter { $0 != .groupKeyCollision }.allSatisfy { view.counters[$0] == 1 })
        #expect(view.counters.skipped == 6)
        #expect(view.counters.rows == 1)
        #expect(view.counters.messages == 7)
        #expect(SkipReason.allCases.map(\.description) == [
            "empty_message", "too_large", "not_json", "not_object", "too_deep", "invalid_utf8", "group_key_collision",
        ])
    }

    @Test func manyGroups() throws {
        let schema = schema(("user", .string), ("n", .int64))
        var byUser = Aggregator(schema: schema, groupBy: [0], aggregates: [.init(.count, argument: nil), .init(.sum, argument: 1)], filter: nil)
        var byNumber = Aggregator(schema: schema, groupBy: [1], aggregates: [.init(.count, argument: nil)], filter: nil)
        let groups = 100_000
        for round in 0..<2 {
            for index in 0..<groups {
                let message = #"{"user": "user-\#(index)@example.org", "n": \#(index * 7919 % groups + round * groups)}"#
                byUser.apply(message)
                byNumber.apply(message)
            }
        }
        #expect(byUser.table.groupCount == groups)
        #expect(byNumber.table.groupCount == 2 * groups)
        let keys = try byUser.table.groupsByKey()
        for index in stride(from: 0, to: groups, by: 997) {
            let group = try #require(keys[[.string("user-\(index)@example.org")]])
            #expect(byUser.table.value(ofAggregate: 0, group: group) == .int64(2))
            #expect(byUser.table.value(ofAggregate: 1, group: group) == .int64(Int64(2 * (index * 7919 % groups) + groups)))
        }
        #expect((0..<groups).allSatisfy { byUser.table.value(ofAggregate: 0, group: $0) == .int64(2) })
        #expect((0..<(2 * groups)).allSatisfy { byNumber.table.value(ofAggregate: 0, group: $0) == .int64(1) })
        #expect(byUser.table.takeDirty().count == groups)
    }

    @Test func longGroupKeysGetShortStorageKeys() throws {
        let schema = schema(("k", .string), ("n", .int64))
        var view = Aggregator(
            schema: schema, groupBy: [0], aggregates: [.init(.count, argument: nil), .init(.count, argument: 1, isDistinct: true)],
            filter: nil)
        // One string column: key = 0x01, 0x01, LEB128 length (2 bytes here), bytes. 507 bytes: 511 in all.
        let atLimit = String(repeating: "k", count: 507)
        let overLimit = String(repeating: "k", count: 508)
        let prefix = String(repeating: "p", count: 3000)
        let values = [atLimit, overLimit, prefix + "1", prefix + "2", String(repeating: "é", count: 40_000)]
        for (index, value) in values.enumerated() {
            for repeatCount in 0...index { view.apply(#"{"k": "\#(value)", "n": \#(repeatCount)}"#) }
        }
        #expect(view.counters.rows == 15)
        let keys = (0..<view.table.groupCount).map { view.table.keyBytes(ofGroup: $0) }
        #expect(keys.map(\.count) == [511, 511, 511, 511, 511])
        #expect(keys.map(\.first) == [0x01, 0x02, 0x02, 0x02, 0x02])
        #expect(Set(keys).count == 5)
        #expect(try (0..<5).map { try view.table.keyValues(ofGroup: $0) } == values.map { [.string($0)] })

        var restored = Aggregator(
            schema: schema, groupBy: [0], aggregates: [.init(.count, argument: nil), .init(.count, argument: 1, isDistinct: true)],
            filter: nil)
        var state: [UInt8] = []
        for group in 0..<view.table.groupCount {
            view.table.encodeState(ofGroup: group, into: &state)
            try restored.table.restoreGroup(key: view.table.keyBytes(ofGroup: group), state: state)
        }
        #expect(try restored.table.results() == view.table.results())
        #expect((0..<5).map { restored.table.keyBytes(ofGroup: $0) } == keys)
        // A storage key bound to a wrong full key is refused.
        view.table.encodeState(ofGroup: 2, into: &state)
        #expect(throws: EngineError.self) { try restored.table.restoreGroup(key: keys[3], state: state) }
    }

    @Test func aLongKeyWhoseStorageKeyIsTakenIsSkipped() throws {
        var view = Aggregator(schema: schema(("k", .string)), groupBy: [0], aggregates: [.init(.count, argument: nil)], filter: nil)
        let value = String(repeating: "c", count: 600)
        var key: [UInt8] = [0x01, 0x01]
        GroupTable.appendVarint(600, to: &key)
        key += Array(value.utf8)
        // Pretend another group already owns this key's storage key (a real collision takes crafted input).
        let storageKey = key.withUnsafeBufferPointer { GroupKey.longStorageKey($0) }
        view.table.longKeyOwners[storageKey] = 12345
        view.apply(#"{"k": "\#(value)"}"#)
        view.apply(#"{"k": "short"}"#)
        #expect(view.counters[.groupKeyCollision] == 1)
        #expect(view.counters.rows == 1)
        #expect(try view.table.results() == [[.string("short")]: [.int64(1)]])
    }

    @Test func copiesAreIndependent() throws {
        var original = Aggregator(
            schema: userEvents, groupBy: [3], aggregates: [.init(.count, argument: nil), .init(.count, argument: 1, isDistinct: true)],
            filter: nil)
        for event in ["click", "scroll", "click"] { original.apply(#"{"user": "u", "event": "\#(event)"}"#) }
        var copy = original
        copy.apply(#"{"user": "v", "event": "click"}"#)
        copy.apply(#"{"user": "v", "event": "focus"}"#)
        original.apply(#"{"user": "w", "event": "submit"}"#)
        #expect(try original.table.results() == [
            [.string("click")]: [.int64(2), .int64(1)], [.string("scroll")]: [.int64(1), .int64(1)],
            [.string("submit")]: [.int64(1), .int64(1)],
        ])
        #expect(try copy.table.results() == [
            [.string("click")]: [.int64(3), .int64(2)], [.string("scroll")]: [.int64(1), .int64(1)],
            [.string("focus")]: [.int64(1), .int64(1)],
        ])
        #expect(original.counters.rows == 4 && copy.counters.rows == 5)
        // A table copied out (say, for a query) keeps its values while the view moves on.
        var snapshot = original.table
        let dirtyInSnapshot = snapshot.takeDirty()
        original.apply(#"{"user": "u", "event": "click"}"#)
        #expect(dirtyInSnapshot.count == 3)
        #expect(original.table.dirtyCount == 3)
        #expect(snapshot.value(ofAggregate: 0, group: 0) == .int64(2))
        #expect(original.table.value(ofAggregate: 0, group: 0) == .int64(3))
    }
}
