import EddyDataflow
import EddySQL
import EddyWorkload
import Testing

@Sendable private func makeRow(_ random: inout SplitMix64) -> [SQLValue] {
    [
        random.nullOr(.string("u\(random.below(25))"), oneIn: 10),
        random.nullOr(.int(Int64(random.below(9)) - 3), oneIn: 6),
        random.nullOr(.string(["x", "y", "z", "é"][random.below(4)]), oneIn: 6),
    ]
}

private func definition() throws -> AggregateDefinition {
    let value = Expr.column(1, "value")
    let label = Expr.column(2, "label")
    let aggregates = [
        try AggregateFunction(.countRows, argument: nil),
        try AggregateFunction(.sum, argument: value),
        try AggregateFunction(.average, argument: value),
        try AggregateFunction(.minimum, argument: value),
        try AggregateFunction(.maximum, argument: label),
        try AggregateFunction(.count, argument: label, isDistinct: true),
        try AggregateFunction(.count, argument: value, filter: .binary(.greater, value, Expr.int(0))),
    ]
    return try AggregateDefinition(
        inputWidth: 3, groupBy: [Expr.column(0, "user")], aggregates: aggregates,
        output: [Expr.key(0)] + (0..<aggregates.count).map(Expr.aggregate),
        having: .binary(.greater, Expr.aggregate(0), Expr.int(1)))
}

@Suite struct AggregateStateTests {
    /// A checkpoint store fed only what changed, a restart from it at a random barrier: the same output as
    /// without the restart, and the store holds exactly the groups that hold rows.
    @Test(arguments: [31, 32, 33, 34] as [UInt64])
    func restoringAtABarrierContinuesExactly(seed: UInt64) throws {
        let definition = try definition()
        var uninterrupted = AggregateOperator(definition)
        var restarted = AggregateOperator(definition)
        var store: [[UInt8]: [UInt8]] = [:]
        var stream = RandomChangeStream(seed: seed, makeRow: makeRow)
        stream.insertShare = 45
        stream.deleteShare = 40
        var random = SplitMix64(seed: seed ^ 0xBA44)
        let barriers = 60
        let restartAt = 5 + random.below(barriers - 10)
        var input = ChangeBatch(keyWidth: 1, rowWidth: 3)
        var output = uninterrupted.makeOutputBatch()
        var uninterruptedView = MaterializedRows()
        var restartedView = MaterializedRows()
        var touchedSinceDrain = Set<[SQLValue]>()
        for barrier in 0..<barriers {
            for _ in 0..<(1 + random.below(4)) {
                input.removeAll()
                stream.append(1 + random.below(15), to: &input)
                for index in 0..<input.count {
                    if let row = input.oldRow(at: index) { touchedSinceDrain.insert([row[row.startIndex]]) }
                    if let row = input.newRow(at: index) { touchedSinceDrain.insert([row[row.startIndex]]) }
                }
                uninterrupted.apply(input)
                restarted.apply(input)
            }
            output.removeAll()
            uninterrupted.emitChanges(into: &output)
            uninterruptedView.apply(output)
            output.removeAll()
            restarted.emitChanges(into: &output)
            restartedView.apply(output)

            var written = 0
            restarted.drainChangedState { key, state in
                written += 1
                let groupKey = try! ValueCodec.decodeValues(key, count: 1, what: "key")
                #expect(touchedSinceDrain.contains(groupKey), "state written for group \(groupKey), untouched since the last drain")
                if let state {
                    store[key] = state
                } else {
                    #expect(store[key] != nil, "a deletion of group \(groupKey), which was never stored")
                    store[key] = nil
                }
            }
            #expect(written <= touchedSinceDrain.count)
            touchedSinceDrain.removeAll()

            if barrier == restartAt {
                restarted = AggregateOperator(definition)
                for (key, state) in store { try restarted.restore(key: key, state: state) }
                var rows: [[SQLValue]: [SQLValue]] = [:]
                restarted.forEachRow { key, row in rows[Array(key)] = row }
                #expect(rows == restartedView.rows, "the restored operator holds the rows emitted before the restart")
            }
        }
        #expect(restartedView.rows == uninterruptedView.rows)
        let groups = Batch.group(stream.liveRows) { [$0[0]] }
        let expected = groups.filter { $0.value.count > 1 }.mapValues { rows -> [SQLValue] in
            let values = rows.map { $0[1] }
            let labels = rows.map { $0[2] }
            return [
                rows[0][0], .int(Int64(rows.count)), Batch.sum(values), Batch.average(values), Batch.minimum(values),
                Batch.maximum(labels), Batch.countDistinct(labels),
                .int(Int64(values.filter { if case .int(let n) = $0 { n > 0 } else { false } }.count)),
            ]
        }
        #expect(uninterruptedView.rows == expected)
        let storedGroups = try Set(store.keys.map { try ValueCodec.decodeValues($0, count: 1, what: "key") })
        #expect(storedGroups == Set(groups.keys), "the store holds exactly the groups that hold rows")
    }

    @Test func stateOfAnotherDefinitionOrTruncatedIsRefused() throws {
        var aggregate = AggregateOperator(try definition())
        var input = ChangeBatch(keyWidth: 1, rowWidth: 3)
        input.appendInsert(key: [.int(0)], row: [.string("anna"), .int(4), .string("x")])
        aggregate.apply(input)
        var output = aggregate.makeOutputBatch()
        aggregate.emitChanges(into: &output)
        var stored: [([UInt8], [UInt8])] = []
        aggregate.drainChangedState { key, state in stored.append((key, state!)) }
        #expect(stored.count == 1)
        let (key, state) = stored[0]

        var truncated = AggregateOperator(try definition())
        #expect(throws: DataflowError.self) { try truncated.restore(key: key, state: Array(state.dropLast())) }
        var garbledKey = AggregateOperator(try definition())
        #expect(throws: DataflowError.self) { try garbledKey.restore(key: [9] + key, state: state) }

        let other = try AggregateDefinition(
            inputWidth: 3, groupBy: [Expr.column(0, "user")],
            aggregates: [try AggregateFunction(.countRows, argument: nil), try AggregateFunction(.maximum, argument: Expr.column(1, "value"))],
            output: [Expr.key(0)])
        var otherOperator = AggregateOperator(other)
        do {
            try otherOperator.restore(key: key, state: state)
            Issue.record("state of another definition was accepted")
        } catch {
            #expect(error.code == .corruptState)
            #expect(error.reason.contains("another definition"), "\(error.reason)")
        }

        var late = AggregateOperator(try definition())
        late.apply(input)
        #expect(throws: DataflowError(.invalidUse, "restoring a group after the operator has taken input or passed a barrier")) {
            try late.restore(key: key, state: state)
        }
        var twice = AggregateOperator(try definition())
        try twice.restore(key: key, state: state)
        #expect(throws: DataflowError.self) { try twice.restore(key: key, state: state) }
    }

    @Test func definitionsThatReadTheWrongThingAreRefused() throws {
        #expect(throws: DataflowError.self) {
            _ = try AggregateDefinition(inputWidth: 2, groupBy: [Expr.column(2, "c")], aggregates: [], output: [])
        }
        #expect(throws: DataflowError.self) {
            _ = try AggregateDefinition(inputWidth: 2, groupBy: [Expr.column(0, "c")], aggregates: [], output: [Expr.column(0, "c")])
        }
        #expect(throws: DataflowError.self) {
            _ = try AggregateDefinition(inputWidth: 2, groupBy: [], aggregates: [], output: [Expr.aggregate(0)])
        }
        #expect(throws: DataflowError.self) { _ = try AggregateFunction(.sum, argument: nil) }
        #expect(throws: DataflowError.self) { _ = try AggregateFunction(.countRows, argument: nil, isDistinct: true) }
    }
}
