import EddyDataflow
@testable import EddyEngine
import EddySQL
import Testing

/// A source's event time as a value, without Kafka or a store: per-partition maxima, the watermark, late rows,
/// idle partitions, and the round trip through its stored entries.
struct SourceEventTimeTests {
    static let watermark: Watermark = {
        let text = """
            CREATE SOURCE s (event VARCHAR, ts TIMESTAMP, WATERMARK FOR ts AS ts - INTERVAL '5 seconds')
              WITH (connector='kafka', topic='t', properties.bootstrap.server='h:1') FORMAT PLAIN ENCODE JSON;
            """
        return PipelineCompiler.compile(text: text, file: "t.sql", environment: [:]).pipeline!.sources[0].watermark!
    }()

    /// 2026-11-24 17:00:00 plus `seconds`, as the row path carries a time.
    static func time(_ seconds: Int) -> SQLValue {
        .string(CivilTime.timestampText(microseconds: (1_795_539_600 + Int64(seconds)) * 1_000_000))
    }

    /// Source rows (partition, offset → event, ts): one per (partition, second after 17:00:00).
    static func rows(_ events: [(partition: Int, second: Int?)]) -> ChangeBatch {
        var batch = ChangeBatch(keyWidth: 2, rowWidth: 2)
        for (offset, event) in events.enumerated() {
            batch.appendInsert(key: [.int(Int64(event.partition)), .int(Int64(offset))], row: [.string("click"), event.second.map(time) ?? .null])
        }
        return batch
    }

    static func watermarkText(_ eventTime: SourceEventTime) -> String? {
        eventTime.watermark.map { CivilTime.timestampText(microseconds: $0) }
    }

    @Test func theWatermarkIsTheLeastPartitionMaximumMinusTheDelayAndNeverMovesBack() {
        var eventTime = SourceEventTime(watermark: Self.watermark, idleTimeout: .seconds(30))
        let start = ContinuousClock.now
        // Partition 1 has sent nothing yet: it holds the watermark back.
        var (accepted, late) = eventTime.advance(over: Self.rows([(0, 20), (0, 30)]), partitions: [0, 1], now: start)
        #expect(accepted.count == 2 && late == 0 && eventTime.watermark == nil)
        (accepted, late) = eventTime.advance(over: Self.rows([(1, 12), (0, 40)]), partitions: [0, 1], now: start + .seconds(1))
        #expect(Self.watermarkText(eventTime) == "2026-11-24 17:00:07")
        // Behind the watermark: dropped and counted; a NULL time is in no window and never late.
        (accepted, late) = eventTime.advance(over: Self.rows([(1, 6), (1, nil), (1, 7), (1, 50)]), partitions: [0, 1], now: start + .seconds(2))
        #expect(late == 1 && accepted.count == 3)
        #expect((0..<accepted.count).map { Array(accepted.newRow(at: $0)!)[1] } == [.null, Self.time(7), Self.time(50)])
        #expect(Self.watermarkText(eventTime) == "2026-11-24 17:00:35")
        // A partition's older rows do not move it back.
        _ = eventTime.advance(over: Self.rows([(0, 36)]), partitions: [0, 1], now: start + .seconds(3))
        #expect(Self.watermarkText(eventTime) == "2026-11-24 17:00:35")
    }

    @Test func anIdlePartitionStopsHoldingTheWatermarkBack() {
        var eventTime = SourceEventTime(watermark: Self.watermark, idleTimeout: .seconds(10))
        let start = ContinuousClock.now
        _ = eventTime.advance(over: Self.rows([(0, 10), (1, 10)]), partitions: [0, 1, 2], now: start)
        #expect(eventTime.watermark == nil, "partition 2, never heard from, holds it back until it is idle")
        _ = eventTime.advance(over: Self.rows([(0, 60)]), partitions: [0, 1, 2], now: start + .seconds(5))
        #expect(eventTime.watermark == nil)
        _ = eventTime.advance(over: Self.rows([(0, 70)]), partitions: [0, 1, 2], now: start + .seconds(12))
        #expect(Self.watermarkText(eventTime) == "2026-11-24 17:01:05", "partitions 1 and 2 idle: partition 0 alone counts")
        // Partition 1 speaks again: active, it holds the watermark at 17:01:05 where partition 0 alone would
        // take it to 17:01:15. (A partition whose rows are all late stays idle: they are dropped.)
        _ = eventTime.advance(over: Self.rows([(1, 70), (0, 80)]), partitions: [0, 1, 2], now: start + .seconds(13))
        #expect(Self.watermarkText(eventTime) == "2026-11-24 17:01:05")
        _ = eventTime.advance(over: Self.rows([(0, 90)]), partitions: [0, 1, 2], now: start + .seconds(24))
        #expect(Self.watermarkText(eventTime) == "2026-11-24 17:01:25", "partition 1 idle again")
    }

    @Test func theStoredEntriesRestoreTheWatermarkAndTheMaxima() throws {
        var eventTime = SourceEventTime(watermark: Self.watermark, idleTimeout: .seconds(30))
        let start = ContinuousClock.now
        _ = eventTime.advance(over: Self.rows([(0, 40), (1, 30), (3, 50)]), partitions: [0, 1, 3], now: start)
        var stored: [[UInt8]: [UInt8]] = [:]
        eventTime.drainChangedState { key, value in stored[key] = value }
        #expect(stored.count == 4, "three partitions and the watermark")
        var drainedAgain = 0
        eventTime.drainChangedState { _, _ in drainedAgain += 1 }
        #expect(drainedAgain == 0, "nothing changed since")

        var restored = SourceEventTime(watermark: Self.watermark, idleTimeout: .seconds(30))
        for (key, value) in stored {
            try key.withUnsafeBytes { key in try value.withUnsafeBytes { value in try restored.restore(key: key, value: value, source: "s") } }
        }
        #expect(restored.watermark == eventTime.watermark && Self.watermarkText(restored) == "2026-11-24 17:00:25")
        // The restored maxima hold: partition 1 (at 17:00:30) still bounds the watermark after a restart.
        let (_, late) = restored.advance(over: Self.rows([(0, 90), (3, 90), (1, 20)]), partitions: [0, 1, 3], now: start)
        #expect(late == 1 && Self.watermarkText(restored) == "2026-11-24 17:00:25")

        let bad: [UInt8] = [9, 9]
        #expect(throws: EngineError.self) {
            try bad.withUnsafeBytes { key in try bad.withUnsafeBytes { value in try restored.restore(key: key, value: value, source: "s") } }
        }
    }
}
