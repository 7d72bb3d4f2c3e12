import EddyDataflow
import EddySQL
import EddyWorkload
import Testing

private let minute: Int64 = 60_000_000
private let second: Int64 = 1_000_000
/// 2026-11-24 17:00:00 UTC.
private let base = CivilTime.days(year: 2026, month: 11, day: 24) * CivilTime.microsecondsPerDay + 17 * 60 * minute
private let events = ["click", "scroll", "submit"].map(SQLValue.string)

private func time(_ micros: Int64) -> SQLValue { .string(CivilTime.timestampText(microseconds: micros)) }

@Sendable private func makeTimedEvent(_ random: inout SplitMix64) -> [SQLValue] {
    // Within 30 minutes: one time in two on the 15-second marks the clock steps by (so bounds meet rows exactly),
    // else anywhere to the microsecond; NULL one time in ten.
    let at = random.below(2) == 0 ? base + Int64(random.below(120)) * 15 * second : base + Int64(random.below(30 * 60 * 1_000_000))
    return [events[random.below(events.count)], random.nullOr(time(at), oneIn: 10)]
}

private func bound(_ comparison: View.TemporalBound.Comparison, _ offset: Int64) -> View.TemporalBound {
    View.TemporalBound(time: .column(1, name: "ts"), comparison: comparison, offsetMicroseconds: offset, location: "test.sql:1:1")
}

/// Whether `row` passes every bound at `now`, by the SQL comparisons themselves (canonical times compare as text).
private func passes(_ row: [SQLValue], _ bounds: [View.TemporalBound], prefilter: Bool, at now: Int64) -> Bool {
    if prefilter && row[0] == .string("scroll") { return false }
    guard case .string = row[1] else { return false }
    return bounds.allSatisfy { bound in
        let edge = time(now + bound.offsetMicroseconds)
        let compared = BoundExpression.binary(
            { switch bound.comparison {
            case .greater: .greater
            case .greaterOrEqual: .greaterOrEqual
            case .less: .less
            case .lessOrEqual: .lessOrEqual
            } }(), .literal(row[1]), .literal(edge))
        return compared.evaluate(column: { _ in .null }) == .bool(true)
    }
}

/// The temporal filter against the rows that pass its bounds, computed directly at each time, over random
/// inserts, deletes and updates and a clock moving forward by random steps (and sometimes not at all).
@Suite struct TemporalFilterOperatorTests {
    @Test(arguments: [
        [bound(.greater, -5 * minute)],
        [bound(.greaterOrEqual, -5 * minute), bound(.lessOrEqual, -30 * second)],
        [bound(.less, 2 * minute), bound(.greater, -10 * minute), bound(.greater, -7 * minute)],
    ])
    func outputIsTheRowsPassingTheBoundsAtEachTime(_ bounds: [View.TemporalBound]) throws {
        for prefilter in [false, true] {
            var stream = RandomChangeStream(seed: 77, makeRow: makeTimedEvent)
            let filterExpression: BoundExpression? = prefilter ? .binary(.notEqual, .column(0, name: "event"), .literal(.string("scroll"))) : nil
            var filter = try TemporalFilterOperator(bounds: bounds, prefilter: filterExpression, keyWidth: 1, rowWidth: 2)
            var output = MaterializedRows()
            var stored: [[SQLValue]: [SQLValue]] = [:]
            var now = base - 2 * minute
            var expiredWithoutInput = 0
            for step in 0..<120 {
                var batch = ChangeBatch(keyWidth: 1, rowWidth: 2)
                // Two steps in three bring no input: rows then change with the clock alone.
                if step % 3 == 0 { stream.append(1 + stream.below(30), to: &batch) }
                now += Int64(stream.below(4)) * 15 * second
                var changes = ChangeBatch(keyWidth: 1, rowWidth: 2)
                filter.apply(batch, now: now, into: &changes)
                if batch.isEmpty { expiredWithoutInput += changes.count }
                output.apply(changes)
                filter.drainChangedState { key, row in stored[key] = row }
                let expected = Dictionary(uniqueKeysWithValues: stream.live.filter { passes($0.row, bounds, prefilter: prefilter, at: now) }.map { ([SQLValue.int($0.id)], $0.row) })
                #expect(output.rows == expected, "step \(step), now \(time(now))")
                #expect(filter.now == now)

                // Every 40 steps: restore a new filter from what was stored; it must hold the same rows and go on alike.
                if step % 40 == 39 {
                    var restored = try TemporalFilterOperator(bounds: bounds, prefilter: filterExpression, keyWidth: 1, rowWidth: 2, now: now)
                    for (key, row) in stored { try restored.restore(key: key, row: row) }
                    var visible: [[SQLValue]: [SQLValue]] = [:]
                    restored.forEachVisibleRow { key, row in visible[key] = row }
                    #expect(visible == output.rows, "restored at step \(step)")
                    #expect(restored.nextChange == filter.nextChange)
                    filter = restored
                }
            }
            #expect(expiredWithoutInput > 10, "the clock alone changed \(expiredWithoutInput) rows: the test exercises too little")
            #expect(stored.count == filter.heldCount, "the store holds \(stored.count) rows, the filter \(filter.heldCount)")
        }
    }

    @Test func nextChangeIsWhenTheClockAloneFirstChangesTheOutput() throws {
        var filter = try TemporalFilterOperator(bounds: [bound(.greater, -5 * minute), bound(.lessOrEqual, 0)], prefilter: nil, keyWidth: 1, rowWidth: 2)
        var input = ChangeBatch(keyWidth: 1, rowWidth: 2)
        input.appendInsert(key: [.int(1)], row: [events[0], time(base)])  // visible from base to base + 5 min
        input.appendInsert(key: [.int(2)], row: [events[1], time(base + minute)])  // from base + 1 min
        input.appendInsert(key: [.int(3)], row: [events[2], .null])  // never
        var output = ChangeBatch(keyWidth: 1, rowWidth: 2)
        filter.apply(input, now: base, into: &output)
        #expect(output.count == 1 && filter.heldCount == 2)
        #expect(filter.nextChange == base + minute)
        let empty = ChangeBatch(keyWidth: 1, rowWidth: 2)
        output.removeAll()
        filter.apply(empty, now: base + minute - 1, into: &output)
        #expect(output.isEmpty)
        filter.apply(empty, now: base + minute, into: &output)
        #expect(output.count == 1 && output.kind(at: 0) == .insert && output.key(at: 0).first == .int(2))
        #expect(filter.nextChange == base + 5 * minute)
        // The clock never goes back: an earlier time changes nothing.
        output.removeAll()
        filter.apply(empty, now: base, into: &output)
        #expect(output.isEmpty && filter.now == base + minute)
        filter.apply(empty, now: base + 6 * minute + 1, into: &output)
        #expect(output.count == 2 && (0..<2).allSatisfy { output.kind(at: $0) == .delete })
        #expect(filter.heldCount == 0 && filter.nextChange == .max)
    }

    @Test func restoringAfterInputIsRefused() throws {
        var filter = try TemporalFilterOperator(bounds: [bound(.greater, 0)], prefilter: nil, keyWidth: 1, rowWidth: 2)
        var output = ChangeBatch(keyWidth: 1, rowWidth: 2)
        filter.apply(ChangeBatch(keyWidth: 1, rowWidth: 2), now: base, into: &output)
        #expect(throws: DataflowError.self) { try filter.restore(key: [.int(1)], row: [events[0], time(base + minute)]) }
        var fresh = try TemporalFilterOperator(bounds: [bound(.greater, 0)], prefilter: nil, keyWidth: 1, rowWidth: 2)
        #expect(throws: DataflowError.self) { try fresh.restore(key: [.int(1)], row: [events[0]]) }
    }
}
