import EddyEngine
import EddyKafka
import EddyRedis
import EddySQL
import EddyState
import EddyTestSupport
import Foundation
import Testing

/// The pipeline end to end, in process: mock Kafka cluster → PipelineRunner → LMDB → real redis-server.
@Suite(.serialized) struct PipelineRunnerTests {
    @Test func countsInRedisEqualWhatWasProducedAndTheCheckpointAgrees() throws {
        let harness = try PipelineHarness(partitions: 4)
        let produced = try harness.produce(20_000)
        try harness.start()
        #expect(try harness.waitForRedis(produced))
        let more = try harness.produce(5_000, seed: 2)
        let expected = merged(produced, more)
        #expect(try harness.waitForRedis(expected))
        // The marker records where in the stream Redis' values are: every message counted.
        let marker = try #require(try harness.redis.get("eddy:redis_sink:epoch"))
        guard case .progress(let progress) = SinkProgress.parseMarker(Array(marker.utf8)) else {
            Issue.record("marker \(marker) is not a progress marker")
            return
        }
        #expect(progress.offsets.count == 4 && progress.offsets.values.reduce(0, +) == 25_000)

        // The checkpoint holds the same counts.
        let runner = try #require(harness.runner)
        #expect(try eventually { try runner.checkpointedRows(view: "events_statisics_mv").map(Self.counts) == expected })
        try harness.stopPipeline()
        let statistics = runner.statistics.snapshot
        #expect(statistics.messagesConsumed == 25_000)
        #expect(statistics.rows == 25_000)
        #expect(statistics.isCaughtUp)
        #expect(statistics.partitions.allSatisfy { $0.lag == 0 })
    }

    @Test func theFileSelectIsAnsweredWhenCaughtUp() throws {
        let harness = try PipelineHarness(partitions: 2)
        let produced = try harness.produce(3_000)
        try harness.start()
        let runner = try #require(harness.runner)
        #expect(eventually { runner.statistics.snapshot.isCaughtUp })
        let rows = try #require(runner.rowsWhenCaughtUp["events_statisics_mv"])
        #expect(Self.counts(from: rows) == produced)
        try harness.stopPipeline()
    }

    @Test func aRestartResumesWithNothingCountedTwice() throws {
        let harness = try PipelineHarness(partitions: 3)
        let first = try harness.produce(6_000)
        try harness.start()
        #expect(try harness.waitForRedis(first))
        try harness.stopPipeline()

        let second = try harness.produce(4_000, seed: 9)
        try harness.start()
        #expect(try harness.waitForRedis(merged(first, second)))
        let runner = try #require(harness.runner)
        #expect(eventually { runner.statistics.snapshot.isCaughtUp })
        try harness.stopPipeline()
        // Only the new messages were read on the second run.
        #expect(runner.statistics.snapshot.messagesConsumed == 4_000)
    }

    @Test func latestStartsAtTheEndAndARestartKeepsWhatCameInBetween() throws {
        let harness = try PipelineHarness(partitions: 2)
        try harness.produce(1_000)  // before the first start: never counted with scan.startup.mode='latest'
        let latest = PipelineHarness.pipelineText.replacingOccurrences(of: "scan.startup.mode='earliest'", with: "scan.startup.mode='latest'")
        try harness.start(latest)
        let runner = try #require(harness.runner)
        #expect(eventually { runner.statistics.snapshot.lastCommittedEpoch > 0 })
        try harness.stopPipeline()
        // Produced while stopped: the checkpoint recorded where each partition started, so these count.
        let between = try harness.produce(500, seed: 3)
        try harness.start(latest)
        #expect(try harness.waitForRedis(between))
        try harness.stopPipeline()
    }

    @Test func redisStoppedForSecondsLosesNothingAndPausesConsumption() throws {
        let harness = try PipelineHarness(partitions: 2)
        harness.options.maxPendingEpochs = 3
        let first = try harness.produce(2_000)
        try harness.start()
        #expect(try harness.waitForRedis(first))
        let runner = try #require(harness.runner)

        harness.redis.stop()  // persistent: data kept
        // Checkpoints go on while messages arrive; the sink falls behind; consumption pauses.
        var second: [String: Int] = [:]
        var seed: UInt64 = 100
        let deadline = ContinuousClock.now + .seconds(30)
        while !runner.statistics.snapshot.isPaused && ContinuousClock.now < deadline {
            let epoch = runner.statistics.snapshot.lastCommittedEpoch
            second = merged(second, try harness.produce(200, seed: seed))
            seed += 1
            _ = eventually(timeout: .seconds(2)) { runner.statistics.snapshot.lastCommittedEpoch > epoch }
        }
        #expect(runner.statistics.snapshot.isPaused)
        #expect(!runner.sinksHealthy)
        // Produced while paused: read after the sink catches up.
        second = merged(second, try harness.produce(1_000, seed: 99))
        try harness.redis.start()
        #expect(try harness.waitForRedis(merged(first, second)))
        #expect(eventually { !runner.statistics.snapshot.isPaused })
        #expect(runner.statistics.snapshot.sinks[0].failures > 0)
        try harness.stopPipeline()
    }

    @Test func outOfRangeAnsweredForOffsetsKafkaHoldsIsFetchedAgainAndRedisEndsExact() throws {
        let harness = try PipelineHarness(partitions: 3)
        let first = try harness.produce(3_000)
        try harness.start()
        #expect(try harness.waitForRedis(first))
        try harness.stopPipeline()

        // A backlog, then the restart's first fetches (at the stored offsets, inside every partition) are
        // answered OFFSET_OUT_OF_RANGE: the drill that once sought back to 0 and then crashed on a negative count.
        let second = try harness.produce(3_000, seed: 7)
        harness.broker.failNextFetchesWithOffsetOutOfRange(3)
        try harness.start()
        #expect(try harness.waitForRedis(merged(first, second)))
        let runner = try #require(harness.runner)
        #expect(eventually { runner.statistics.snapshot.isCaughtUp })
        try harness.stopPipeline()
        let statistics = runner.statistics.snapshot
        #expect((statistics.offsetOutOfRangeByOutcome["retried"] ?? 0) >= 1, "the injected errors never reached the runner")
        #expect(statistics.offsetOutOfRangeByOutcome["retention_gap"] == nil && statistics.offsetGapMessages == 0)
        #expect(statistics.messagesConsumed == 3_000)
        #expect(try harness.redisCounts() == merged(first, second))
    }

    @Test func aStoredOffsetDeletedByRetentionIsAGapCountedAndContinuedAtTheLowWatermark() throws {
        let harness = try PipelineHarness(partitions: 1)
        let first = try harness.produce(1_000)
        try harness.start()
        #expect(try harness.waitForRedis(first))
        try harness.stopPipeline()

        // The mock keeps about 5 MB per partition: 8 MB of 200 kB (non-JSON) messages pushes the oldest out,
        // past the stored offset 1000.
        let bulky = [UInt8](repeating: UInt8(ascii: "x"), count: 200_000)
        try harness.broker.produce(topic: harness.topic, messages: (0..<40).map { _ in (0, bulky) })
        let low = try #require(try harness.broker.lowWatermarks(topic: harness.topic, partitions: 1).first)
        try #require(low > 1_000, "the mock kept offset 1000 (low watermark \(low)): no gap to test")

        try harness.start()
        let runner = try #require(harness.runner)
        #expect(eventually { runner.statistics.snapshot.offsetGapMessages == low - 1_000 })
        let second = try harness.produce(500, seed: 5)
        #expect(try harness.waitForRedis(merged(first, second)))
        try harness.stopPipeline()
        let statistics = runner.statistics.snapshot
        #expect(statistics.offsetOutOfRangeByOutcome == ["retention_gap": 1])
        #expect(statistics.offsetGapMessages == low - 1_000)
        // Read from the low watermark on: the surviving bulky messages (skipped as not JSON) and the new events.
        #expect(statistics.messagesConsumed == Int(1_040 - low) + 500)
    }

    @Test func redisRestartedEmptyGetsTheWholeViewAgain() throws {
        let harness = try PipelineHarness(partitions: 2)
        let first = try harness.produce(2_000)
        try harness.start()
        #expect(try harness.waitForRedis(first))
        // Flushed under Eddy's feet.
        try harness.redis.flushAll()
        // The next epoch finds the marker behind what Redis acknowledged, and re-sends the view.
        let second = try harness.produce(10, seed: 4)
        #expect(try harness.waitForRedis(merged(first, second)))

        // Redis crashes and comes back empty (no persistence) while Eddy runs and the topic is quiet: the idle
        // sink's check of the marker notices, and the view is sent again without waiting for a new message.
        harness.redis.kill()
        try harness.redis.start(persistent: false)
        #expect(try harness.waitForRedis(merged(first, second)))
        let third = try harness.produce(10, seed: 6)
        #expect(try harness.waitForRedis(merged(first, second, third)))
        try harness.stopPipeline()

        // Also across a restart of Eddy with nothing new to consume.
        try harness.redis.flushAll()
        try harness.start()
        #expect(try harness.waitForRedis(merged(first, second, third)))
        try harness.stopPipeline()
    }

    @Test func badMessagesAreCountedByReasonAndTheGoodOnesExactly() throws {
        let harness = try PipelineHarness(partitions: 1)
        harness.options.decoderLimits.maxMessageBytes = 64 << 10
        let good = #"{"event_timestamp": "2026-11-24 17:00:03", "user": "a@b", "page": "/", "event": "click"}"#
        let truncatedUTF8 = Array(#"{"event": "caf"#.utf8) + [0xC3] + Array(#""}"#.utf8)
        var blob = Array(#"{"event": "click", "page": ""#.utf8)
        blob += [UInt8](repeating: UInt8(ascii: "x"), count: 100 << 10)
        blob += Array(#""}"#.utf8)
        let messages: [[UInt8]] = [
            Array(good.utf8), Array("not json".utf8), Array("[1,2,3]".utf8), Array(#"{"event": 42}"#.utf8), blob,
            truncatedUTF8, Array(good.utf8), [], Array(#"{"event": "click""#.utf8), Array(#"{"event": null}"#.utf8),
        ]
        try harness.broker.produce(topic: harness.topic, messages: messages.map { (partition: 0, payload: $0) })
        try harness.start()
        let runner = try #require(harness.runner)
        #expect(try harness.waitForRedis(["click": 2]))
        #expect(eventually { runner.statistics.snapshot.isCaughtUp })
        try harness.stopPipeline()
        let snapshot = runner.statistics.snapshot
        #expect(snapshot.messagesConsumed == messages.count)
        #expect(snapshot.skippedByReason["not_json"] == 2)
        #expect(snapshot.skippedByReason["not_object"] == 1)
        #expect(snapshot.skippedByReason["too_large"] == 1)
        #expect(snapshot.skippedByReason["invalid_utf8"] == 1)
        #expect(snapshot.skippedByReason["empty_message"] == 1)
        #expect(snapshot.wrongTypeFields == 1)
        // {"event": 42} and {"event": null} are rows of the NULL group, rendered as the key "NULL".
        #expect(try harness.redis.get("NULL") == "2")
    }

    @Test func aChangedViewIsRefusedWithHowToReset() throws {
        let harness = try PipelineHarness(partitions: 1)
        try harness.start()
        let runner = try #require(harness.runner)
        #expect(eventually { runner.statistics.snapshot.lastCommittedEpoch > 0 })
        try harness.stopPipeline()
        let changed = PipelineHarness.pipelineText.replacingOccurrences(of: "SELECT event, COUNT(*) FROM user_events GROUP BY event", with: "SELECT event, COUNT(user) FROM user_events GROUP BY event")
        try harness.start(changed)
        #expect(eventually { harness.endedWith != nil })
        let error = try #require(throws: StateError.self) { try harness.stopPipeline() }
        #expect(error.code == .pipelineChanged)
        #expect(error.reason.contains("events_statisics_mv") && error.reason.contains("--state-dir"))
    }

    @Test func aViewNewToAStateDirectoryWithOffsetsIsRefusedUnlessAllowed() throws {
        let harness = try PipelineHarness(partitions: 1)
        let produced = try harness.produce(500)
        try harness.start()
        #expect(try harness.waitForRedis(produced))
        try harness.stopPipeline()

        let withPages = PipelineHarness.pipelineText + "\nCREATE MATERIALIZED VIEW pages AS SELECT page, COUNT(*) FROM user_events GROUP BY page;"
        try harness.start(withPages)
        #expect(eventually { harness.endedWith != nil })
        let error = try #require(throws: EngineError.self) { try harness.stopPipeline() }
        #expect(error.code == .pipelineChanged)
        #expect(error.reason.contains("'pages' is new") && error.reason.contains("--allow-new-views"))

        // Allowed: the new view counts from the stored offsets on; the old one keeps its counts.
        harness.options.allowNewViews = true
        try harness.start(withPages)
        let more = try harness.produce(200, seed: 8)
        #expect(try harness.waitForRedis(merged(produced, more)))
        let runner = try #require(harness.runner)
        #expect(try eventually { (try runner.checkpointedRows(view: "pages")?.rows.reduce(0) { total, row in
            if case .int(let count) = row[1] { total + Int(count) } else { total }
        }) == 200 })
        try harness.stopPipeline()
    }

    @Test func aSinkWhoseOutputChangedWritesTheWholeViewAgain() throws {
        let harness = try PipelineHarness(partitions: 1)
        let produced = try harness.produce(300)
        try harness.start()
        #expect(try harness.waitForRedis(produced))
        try harness.stopPipeline()

        // Same view state, new key format: every group appears under its new key without any new message.
        try harness.start(PipelineHarness.pipelineText.replacingOccurrences(of: "key_format='{event}'", with: "key_format='events:{event}'"))
        let expected = Dictionary(uniqueKeysWithValues: produced.map { ("events:\($0.key)", String($0.value)) })
        #expect(eventually { expected.allSatisfy { (try? harness.redis.get($0.key)) == $0.value } })
        try harness.stopPipeline()
    }

    static func counts(from rows: [[SQLValue]]) -> [String: Int] {
        var counts: [String: Int] = [:]
        for row in rows {
            guard case .string(let event) = row[0], case .int(let count) = row[1] else { continue }
            counts[event] = Int(count)
        }
        return counts
    }

    static func counts(_ result: (columns: [OutputColumn], rows: [[SQLValue]], epoch: UInt64)) -> [String: Int] {
        counts(from: result.rows)
    }
}
