import EddyEngine
import EddyRedis
import EddyTestSupport
import Logging
import Testing

/// `eddy verify`'s comparison against a state directory a real pipeline wrote, and the real redis-server.
@Suite(.serialized) struct SinkVerifierTests {
    private let logger = Logger(label: "eddy.test.verify")

    private func outcome(_ harness: PipelineHarness, _ text: String = PipelineHarness.pipelineText) throws -> SinkVerifier.Result {
        let verifier = try SinkVerifier(pipeline: try harness.compile(text), stateDirectory: harness.options.stateDirectory, logger: logger)
        let results = try verifier.verify()
        try #require(results.count == 1)
        return results[0]
    }

    @Test func equalDifferentAndIncomparableAreToldApart() throws {
        let harness = try PipelineHarness(partitions: 2)
        let produced = try harness.produce(400)
        try harness.start()
        #expect(try harness.waitForRedis(produced))
        try harness.stopPipeline()

        let equal = try outcome(harness)
        #expect(equal.outcome == .compared(keys: produced.count, missing: 0, different: 0, unexpected: 0, firstDifferences: []))
        #expect(equal.redisAddress == "127.0.0.1:\(harness.redis.port)")
        #expect(equal.checkpoint?.offsets.values.reduce(0, +) == 400)

        // Someone else changes one key and deletes another: named, and nothing is written.
        try harness.redis.command("SET", "click", "7")
        try harness.redis.command("DEL", "focus")
        guard case .compared(let keys, 1, 1, 0, let first) = try outcome(harness).outcome else {
            Issue.record("expected one missing and one different key")
            return
        }
        #expect(keys == produced.count)
        // In the view's order: compare as a set.
        #expect(Set(first.map { "\(String(decoding: $0.key, as: UTF8.self)) \($0.difference)" }) == ["click different", "focus missing"])
        #expect(try harness.redis.get("click") == "7")

        // Redis at another point of the stream than the checkpoint: no comparison, and why.
        let marker = try #require(try harness.redis.get("eddy:redis_sink:epoch"))
        guard case .progress(var ahead) = SinkProgress.parseMarker(Array(marker.utf8)) else {
            Issue.record("marker \(marker) is not a progress marker")
            return
        }
        for partition in ahead.offsets.keys { ahead.offsets[partition]! += 5 }
        try harness.redis.command("SET", "eddy:redis_sink:epoch", ahead.markerText)
        guard case .cannotCompare(let reason, true) = try outcome(harness).outcome else {
            Issue.record("expected no comparison")
            return
        }
        #expect(reason.contains("Redis is further along the stream than the checkpoint"))
        #expect(reason.contains(ahead.markerText))
        #expect(reason.contains("retry when the daemon is idle"))

        try harness.redis.command("DEL", "eddy:redis_sink:epoch")
        guard case .cannotCompare(let noMarker, true) = try outcome(harness).outcome else {
            Issue.record("expected no comparison")
            return
        }
        #expect(noMarker.hasPrefix("Redis has no marker eddy:redis_sink:epoch"))

        // A file that does not describe what the state directory runs.
        let otherTemplate = PipelineHarness.pipelineText.replacingOccurrences(of: "key_format='{event}'", with: "key_format='count:{event}'")
        guard case .cannotCompare(let otherForm, false) = try outcome(harness, otherTemplate).outcome else {
            Issue.record("expected no comparison")
            return
        }
        #expect(otherForm.contains("writes another form"))

        // Redis unreachable.
        harness.redis.stop()
        guard case .cannotCompare(let unreachable, true) = try outcome(harness).outcome else {
            Issue.record("expected no comparison")
            return
        }
        #expect(unreachable.contains("127.0.0.1:\(harness.redis.port)"))
    }
}
