import EddyDataflow
import EddySQL
import EddyWorkload
import Testing

private let minute: Int64 = 60_000_000
private let second: Int64 = 1_000_000
/// 2026-11-24 17:00:00 UTC.
private let base = CivilTime.days(year: 2026, month: 11, day: 24) * CivilTime.microsecondsPerDay + 17 * 60 * minute
private let events = ["click", "scroll", "submit", "download", "focus"].map(SQLValue.string)

private func time(_ micros: Int64) -> SQLValue { .string(CivilTime.timestampText(microseconds: micros)) }
private func micros(_ value: SQLValue) -> Int64? {
    guard case .string(let text) = value else { return nil }
    return CivilTime.microseconds(of: text)
}

/// Windows by brute force, not by the operator's arithmetic: every whole second `s` near `t` that is aligned
/// (`(s - offset) % step == 0`) and holds `t` (`s <= t < s + size`).
private func bruteForceWindowStarts(of t: Int64, step: Int64, size: Int64, offset: Int64) -> [Int64] {
    let firstCandidate = (t - size) / second * second - second
    return stride(from: firstCandidate, through: t, by: Int64.Stride(second)).filter { start in
        let aligned = ((start - offset) % step + step) % step == 0
        return aligned && start <= t && t < start + size
    }
}

@Sendable private func makeTimedEvent(_ random: inout SplitMix64) -> [SQLValue] {
    // Within 20 minutes, a fraction of a second one time in four, NULL one time in twelve.
    let fraction = random.below(4) == 0 ? Int64(random.below(1_000_000)) : 0
    let at = base + Int64(random.below(20 * 60)) * second + fraction
    return [events[random.below(events.count)], random.nullOr(time(at), oneIn: 12)]
}

/// The window assigner against a brute-force computation over the final input, and an aggregate behind
/// `EMIT ON WINDOW CLOSE` against a direct count: each window's final row once, only after its close, state
/// dropped once closed.
@Suite struct WindowOperatorTests {
    @Test(arguments: [
        WindowAssigner.Kind.tumble(sizeMicroseconds: minute),
        .tumble(sizeMicroseconds: 5 * minute),
        .hop(hopMicroseconds: minute, sizeMicroseconds: 5 * minute),
        .hop(hopMicroseconds: 2 * minute, sizeMicroseconds: 2 * minute),
    ], [0, 30 * second])
    func windowedRowsEqualTheBruteForceWindowsOfTheFinalInput(_ kind: WindowAssigner.Kind, _ offset: Int64) throws {
        var assigner = try WindowAssigner(kind: kind, timeColumn: 1, offsetMicroseconds: offset, inputKeyWidth: 1, inputWidth: 2)
        let (step, size, isHop): (Int64, Int64, Bool) = switch kind {
        case .tumble(let size): (size, size, false)
        case .hop(let hop, let size): (hop, size, true)
        }
        var stream = RandomChangeStream(seed: 9 &+ UInt64(size) &+ UInt64(offset), makeRow: makeTimedEvent)
        var held = MaterializedRows()
        for _ in 0..<20 {
            var input = ChangeBatch(keyWidth: 1, rowWidth: 2)
            stream.append(40, to: &input)
            var output = assigner.makeOutputBatch()
            assigner.apply(input, into: &output)
            held.apply(output)
        }
        var expected: [[SQLValue]: [SQLValue]] = [:]
        for (id, row) in stream.live {
            guard let t = micros(row[1]) else {
                if !isHop { expected[[.int(id)]] = row + [.null, .null] }  // a tumble keeps the row with NULL windows
                continue
            }
            let starts = bruteForceWindowStarts(of: t, step: step, size: size, offset: offset)
            #expect(starts.count == Int(size / step))
            for start in starts {
                expected[isHop ? [.int(id), time(start)] : [.int(id)]] = row + [time(start), time(start + size)]
            }
        }
        #expect(held.rows.count == expected.count)
        #expect(held.rows == expected)
    }

    @Test func aWindowBoundaryBelongsToTheWindowItStarts() throws {
        var assigner = try WindowAssigner(kind: .tumble(sizeMicroseconds: minute), timeColumn: 0, inputKeyWidth: 0, inputWidth: 1)
        var input = ChangeBatch(keyWidth: 0, rowWidth: 1)
        for at in [base, base + minute - 1, base + minute, base - 1] { input.appendInsert(key: EmptyCollection(), row: [time(at)]) }
        var output = assigner.makeOutputBatch()
        assigner.apply(input, into: &output)
        let starts = (0..<output.count).map { Array(output.newRow(at: $0)!)[1] }
        #expect(starts == [time(base), time(base), time(base + minute), time(base - minute)])
        #expect(Array(output.newRow(at: 0)!)[2] == .string("2026-11-24 17:01:00"))
        // Zero, negative and uneven sizes are no windows.
        #expect(throws: DataflowError.self) { try WindowAssigner(kind: .tumble(sizeMicroseconds: 0), timeColumn: 0, inputKeyWidth: 0, inputWidth: 1) }
        #expect(throws: DataflowError.self) { try WindowAssigner(kind: .hop(hopMicroseconds: 2 * minute, sizeMicroseconds: 5 * minute), timeColumn: 0, inputKeyWidth: 0, inputWidth: 1) }
    }

    /// The bound view's window, aggregate and `EMIT ON WINDOW CLOSE`, run over events that arrive up to the
    /// watermark's delay out of order, with a restart in the middle restored as a runtime would restore it.
    @Test(arguments: [
        "SELECT event, window_start, COUNT(*) AS n, SUM(value) AS total FROM TUMBLE(s, ts, INTERVAL '1 minute') GROUP BY event, window_start EMIT ON WINDOW CLOSE",
        "SELECT window_end, event, COUNT(*) AS n, SUM(value) AS total FROM HOP(s, ts, INTERVAL '1 minute', INTERVAL '3 minutes') GROUP BY window_end, event EMIT ON WINDOW CLOSE",
    ])
    func emitOnWindowCloseEmitsEachWindowOnceAfterItClosesAndForgetsIt(_ select: String) throws {
        let result = PipelineCompiler.compile(text: """
            CREATE SOURCE s (event VARCHAR, ts TIMESTAMP, value BIGINT, WATERMARK FOR ts AS ts - INTERVAL '10 seconds') WITH (connector='kafka', topic='t', properties.bootstrap.server='h:1') FORMAT PLAIN ENCODE JSON;
            CREATE MATERIALIZED VIEW v AS \(select);
            """, file: "test.sql", environment: [:])
        let pipeline = try #require(result.pipeline, "\(result.errors.map(\.description))")
        let view = pipeline.views[0]
        let window = try #require(view.window)
        let close = try #require(view.emitOnWindowClose)
        let delay = try #require(pipeline.sources[0].watermark?.delayMicroseconds)
        let windowsPerRow = Int(window.sizeMicroseconds / { if case .hop(let hop, _) = window.kind { hop } else { window.sizeMicroseconds } }())

        var assigner = try WindowAssigner(window, inputKeyWidth: 1, inputWidth: 3)
        let definition = try AggregateDefinition(view: view, inputWidth: assigner.outputRowWidth)
        var aggregate = AggregateOperator(definition)
        var buffer = try WindowCloseBuffer(close, keyWidth: aggregate.outputKeyWidth, rowWidth: aggregate.outputRowWidth)
        var stored: [[UInt8]: [UInt8]] = [:]

        // Events in time order, each moved back by up to the delay: none is late.
        var random = SplitMix64(seed: 77)
        var rows: [[SQLValue]] = []
        for index in 0..<3_000 {
            let at = base + Int64(index) * 200_000 - Int64(random.below(Int(delay)))
            rows.append([events[random.below(events.count)], time(at), .int(Int64(random.below(10)))])
        }
        var emitted: [[SQLValue]: [SQLValue]] = [:]
        var largest = Int64.min
        for (epoch, chunk) in stride(from: 0, to: rows.count, by: 100).enumerated() {
            if epoch == 12 {
                // A restart: the checkpoint's groups and watermark, then the buffer refilled from the aggregate.
                aggregate = AggregateOperator(definition)
                for (key, state) in stored { try aggregate.restore(key: key, state: state) }
                buffer = try WindowCloseBuffer(close, keyWidth: aggregate.outputKeyWidth, rowWidth: aggregate.outputRowWidth, watermark: buffer.watermark)
                aggregate.forEachRow { key, row in buffer.restore(key: key, row: row) }
            }
            var input = ChangeBatch(keyWidth: 1, rowWidth: 3)
            for (offset, row) in rows[chunk..<min(chunk + 100, rows.count)].enumerated() {
                input.appendInsert(key: [.int(Int64(chunk + offset))], row: row)
                largest = max(largest, micros(row[1])!)
            }
            var windowed = assigner.makeOutputBatch()
            assigner.apply(input, into: &windowed)
            aggregate.apply(windowed)
            var changes = aggregate.makeOutputBatch()
            aggregate.emitChanges(into: &changes)
            buffer.apply(changes)
            let watermark = largest - delay
            var closed = aggregate.makeOutputBatch()
            buffer.emitClosed(watermark: watermark, into: &closed)
            for index in 0..<closed.count {
                let change = closed[index]
                #expect(change.kind == .insert)
                #expect(buffer.closingTime(of: change.key)! <= watermark, "emitted before its window closed")
                #expect(emitted.updateValue(Array(change.newRow!), forKey: Array(change.key)) == nil, "window \(Array(change.key)) emitted twice")
            }
            aggregate.removeGroups(where: buffer.isClosed)
            aggregate.drainChangedState { key, state in stored[key] = state }
            // State holds only open windows: at most the delay's and one epoch's worth per event.
            let openWindows = Int((delay + 100 * 200_000) / minute + 2) + windowsPerRow
            #expect(aggregate.groupCount <= events.count * openWindows, "\(aggregate.groupCount) groups held at epoch \(epoch)")
            #expect(stored.count == aggregate.groupCount)
        }
        var rest = aggregate.makeOutputBatch()
        buffer.emitClosed(watermark: .max, into: &rest)
        for index in 0..<rest.count {
            #expect(emitted.updateValue(Array(rest.newRow(at: index)!), forKey: Array(rest.key(at: index))) == nil)
        }
        #expect(buffer.lateChangeCount == 0 && buffer.nullWindowChangeCount == 0 && buffer.pendingCount == 0)

        // The direct computation: per window holding each row and per event, the count and the sum.
        var expected: [[SQLValue]: (count: Int64, sum: Int64)] = [:]
        for row in rows {
            let t = micros(row[1])!
            let step = if case .hop(let hop, _) = window.kind { hop } else { window.sizeMicroseconds }
            for start in bruteForceWindowStarts(of: t, step: step, size: window.sizeMicroseconds, offset: 0) {
                let key = close.endOffsetMicroseconds == 0 ? [time(start + window.sizeMicroseconds), row[0]] : [row[0], time(start)]
                guard case .int(let value) = row[2] else { continue }
                expected[key, default: (0, 0)].count += 1
                expected[key, default: (0, 0)].sum += value
            }
        }
        #expect(emitted.count == expected.count)
        for (key, aggregates) in expected {
            #expect(emitted[key] == key + [.int(aggregates.count), .int(aggregates.sum)], "window \(key)")
        }
    }

    @Test func aChangeToAClosedWindowIsLateAndDroppedAndItsStateGoesAgain() throws {
        let definition = try AggregateDefinition(
            inputWidth: 2, groupBy: [.column(1, name: "window_start")], aggregates: [try AggregateFunction(.countRows, argument: nil)],
            output: [.groupKey(0, name: "window_start"), .aggregate(0, text: "count(*)")])
        var aggregate = AggregateOperator(definition)
        var buffer = try WindowCloseBuffer(keyWidth: 1, rowWidth: 2, windowKey: 0, endOffsetMicroseconds: minute)
        func barrier(_ starts: [Int64], watermark: Int64) -> [[SQLValue]] {
            var input = ChangeBatch(keyWidth: 0, rowWidth: 2)
            for start in starts { input.appendInsert(key: EmptyCollection(), row: [.null, time(start)]) }
            aggregate.apply(input)
            var changes = aggregate.makeOutputBatch()
            aggregate.emitChanges(into: &changes)
            buffer.apply(changes)
            var closed = aggregate.makeOutputBatch()
            buffer.emitClosed(watermark: watermark, into: &closed)
            aggregate.removeGroups(where: buffer.isClosed)
            aggregate.drainChangedState { _, _ in }
            return (0..<closed.count).map { Array(closed.newRow(at: $0)!) }
        }
        #expect(barrier([base, base, base + minute], watermark: base + minute - 1) == [])
        #expect(barrier([base + minute], watermark: base + minute) == [[time(base), .int(2)]])
        #expect(aggregate.groupCount == 1)
        // A row for the closed window: counted as late, never emitted again, its state dropped again.
        #expect(barrier([base], watermark: base + minute + 1) == [])
        #expect(buffer.lateChangeCount == 1)
        #expect(aggregate.groupCount == 1)
        // A watermark that moves back closes nothing.
        #expect(barrier([], watermark: base) == [])
        #expect(barrier([], watermark: base + 2 * minute) == [[time(base + minute), .int(2)]])
        #expect(aggregate.groupCount == 0)
    }
}
