import EddyDataflow
import EddySQL
import EddyWorkload
import Testing

@Sendable private func makeRow(_ random: inout SplitMix64) -> [SQLValue] {
    [random.nullOr(.string("u\(random.below(5))"), oneIn: 8), random.nullOr(.int(Int64(random.below(20))), oneIn: 6)]
}

@Suite struct FilterProjectOperatorTests {
    private static let value = Expr.column(1, "value")

    private func makeOperator() throws -> FilterProjectOperator {
        // SELECT user, value * 2, value % 3 FROM input WHERE value > 8
        try FilterProjectOperator(
            inputWidth: 2, filter: .binary(.greater, Self.value, Expr.int(8)),
            projection: [Expr.column(0, "user"), .binary(.multiply, Self.value, Expr.int(2)), .binary(.modulo, Self.value, Expr.int(3))])
    }

    @Test(arguments: [41, 42, 43] as [UInt64])
    func matchesTheBatchComputation(seed: UInt64) throws {
        var filter = try makeOperator()
        var stream = RandomChangeStream(seed: seed, makeRow: makeRow)
        var input = ChangeBatch(keyWidth: 1, rowWidth: 2)
        var output = ChangeBatch(keyWidth: 1, rowWidth: 3)
        var view = MaterializedRows()
        var kinds = Set<ChangeBatch.Kind>()
        for _ in 0..<100 {
            input.removeAll()
            output.removeAll()
            stream.append(1 + stream.below(20), to: &input)
            filter.apply(input, into: &output)
            view.apply(output)
            for index in 0..<output.count { kinds.insert(output.kind(at: index)) }
        }
        var expected: [[SQLValue]: [SQLValue]] = [:]
        for (id, row) in stream.live {
            guard case .int(let number) = row[1], number > 8 else { continue }
            expected[[.int(id)]] = [row[0], .int(number * 2), .int(number % 3)]
        }
        #expect(view.rows == expected)
        #expect(kinds == [.insert, .delete, .update])
    }

    @Test func updatesBecomeDeletesAndInsertsAsRowsLeaveAndEnter() throws {
        var filter = try makeOperator()
        var input = ChangeBatch(keyWidth: 1, rowWidth: 2)
        let key: [SQLValue] = [.int(7)]
        input.appendUpdate(key: key, old: [.string("a"), .int(10)], new: [.string("a"), .int(3)])  // leaves
        input.appendUpdate(key: key, old: [.string("a"), .int(3)], new: [.string("a"), .int(12)])  // enters
        input.appendUpdate(key: key, old: [.string("a"), .int(12)], new: [.string("b"), .int(12)])  // stays, changes
        input.appendUpdate(key: key, old: [.string("b"), .int(12)], new: [.string("b"), .int(12)])  // no change
        input.appendUpdate(key: key, old: [.string("b"), .int(1)], new: [.string("b"), .null])  // never in
        var output = ChangeBatch(keyWidth: 1, rowWidth: 3)
        filter.apply(input, into: &output)
        #expect((0..<output.count).map { output.kind(at: $0) } == [.delete, .insert, .update])
        #expect(output.oldRow(at: 0).map(Array.init) == [.string("a"), .int(20), .int(1)])
        #expect(output.newRow(at: 1).map(Array.init) == [.string("a"), .int(24), .int(0)])
        #expect(output.newRow(at: 2).map(Array.init) == [.string("b"), .int(24), .int(0)])
        #expect(throws: DataflowError.self) {
            _ = try FilterProjectOperator(inputWidth: 2, filter: nil, projection: [Expr.aggregate(0)])
        }
    }
}
