#if canImport(Glibc)
import Glibc
#endif
import EddyTestSupport
import Foundation
import Testing

// Issue 14, point 5, against the real binary: `eddy run`'s background repair of a key someone else overwrote,
// and `eddy verify`. The example pipeline, librdkafka's mock cluster as the source, a real redis-server.

private let examplePipeline = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent()
    .appendingPathComponent("examples/seed_pipeline.sql").path

@Suite("eddy run's repair and eddy verify", .serialized)
struct RepairCLITests {
    @Test("an idle key overwritten in Redis is rewritten within the repair interval, counted in /metrics and logged by name")
    func anOverwrittenIdleKeyIsRepaired() async throws {
        let rig = try RepairRig()
        let produced = try rig.produce(1_000)
        try await rig.launch(["--repair-interval", "0.5", "--repair-rate", "1000"])
        #expect(rig.awaitRedis(equals: produced))

        // Nothing new arrives: every group is idle. Someone else overwrites one count.
        try rig.redis.command("SET", "click", "123456789")
        let overwritten = ContinuousClock.now
        #expect(rig.awaitRedis(equals: produced, timeout: .seconds(10)))
        // One interval, one pass of five keys at 1,000 keys/s, and room for a loaded machine.
        #expect(ContinuousClock.now - overwritten < .seconds(5))

        var samples: [PrometheusText.Sample] = []
        let counted = await awaitCondition {
            samples = (try? await rig.scrape()) ?? []
            return PrometheusText.value(in: samples, name: "eddy_sink_repaired_keys_total", labels: ["sink": "redis_sink"]) == 1
        }
        #expect(counted, "eddy_sink_repaired_keys_total: \(PrometheusText.value(in: samples, name: "eddy_sink_repaired_keys_total", labels: ["sink": "redis_sink"]) ?? -1)")
        #expect((PrometheusText.value(in: samples, name: "eddy_sink_repair_compared_keys_total", labels: ["sink": "redis_sink"]) ?? 0) >= 5)
        #expect((PrometheusText.value(in: samples, name: "eddy_sink_repair_passes_total", labels: ["sink": "redis_sink"]) ?? 0) >= 1)

        try rig.stopDaemon()
        let log = rig.daemon?.standardError ?? ""
        let line = try #require(log.split(separator: "\n").first { $0.contains("rewrote keys") }, "no repair line in:\n\(log)")
        #expect(line.contains("click"))
        // Names only: neither the overwritten value nor the rewritten one.
        #expect(!line.contains("123456789"))
        #expect(!line.contains(String(produced["click"] ?? -1)))
    }

    @Test("eddy verify: 0 when Redis equals the checkpoint (also while the daemon runs), 1 naming a key changed while it was stopped, 2 when it cannot compare")
    func verifyExitsByWhatItFinds() async throws {
        let rig = try RepairRig()
        let produced = try rig.produce(800)
        try await rig.launch(["--repair-interval", "0"])
        #expect(rig.awaitRedis(equals: produced))

        let whileRunning = try rig.verify()
        #expect(whileRunning.status == 0, "\(whileRunning.standardOutput)\(whileRunning.standardError)")
        #expect(whileRunning.standardOutput.contains("sink redis_sink (view events_statisics_mv, Redis 127.0.0.1:\(rig.redis.port))"))
        #expect(whileRunning.standardOutput.contains("\(produced.count) keys compared: all equal"))

        try rig.stopDaemon()
        try rig.redis.command("SET", "scroll", "0")
        let differs = try rig.verify()
        #expect(differs.status == 1, "\(differs.standardOutput)\(differs.standardError)")
        #expect(differs.standardOutput.contains("1 differ (0 missing, 1 different, 0 unexpected)"))
        #expect(differs.standardOutput.contains("first differing keys: 'scroll' (different)"))
        #expect(differs.standardError.contains("eddy verify: Redis differs from the checkpoint"))

        try rig.redis.command("DEL", "eddy:redis_sink:epoch")
        let noMarker = try rig.verify()
        #expect(noMarker.status == 2, "\(noMarker.standardOutput)\(noMarker.standardError)")
        #expect(noMarker.standardOutput.contains("cannot compare: Redis has no marker eddy:redis_sink:epoch"))

        let noState = try EddyProcess.run(["verify", examplePipeline, "--state-dir", rig.directory.path + "/nothing"], environment: rig.environment)
        #expect(noState.status == 2, "\(noState.standardOutput)\(noState.standardError)")
        #expect(noState.standardError.contains("\(rig.directory.path)/nothing"))

        rig.redis.stop()
        let unreachable = try rig.verify()
        #expect(unreachable.status == 2)
        #expect(unreachable.standardOutput.contains("cannot compare: cannot connect to Redis at 127.0.0.1:\(rig.redis.port)"))
    }
}

/// A mock Kafka cluster with the example's topic, a real redis-server, a state directory, and `eddy run` of the
/// example pipeline against them.
private final class RepairRig: @unchecked Sendable {
    let broker: KafkaTestBroker
    let redis: RedisTestServer
    let directory: ScratchDirectory
    var stateDirectory: String { directory.path + "/state" }
    private(set) var daemon: EddyProcess?
    private var baseURL = ""
    private var produced: [String: Int] = [:]

    init() throws {
        broker = try KafkaTestBroker.start(topics: ["test": 2])
        redis = try RedisTestServer()
        try redis.start()
        directory = try ScratchDirectory(prefix: "eddy-repair")
    }

    deinit {
        if daemon?.isRunning == true { daemon?.kill() }
        directory.remove()
    }

    var environment: [String: String] { ["KAFKA_BROKERS": broker.bootstrapServers, "REDIS_URL": "redis://127.0.0.1:\(redis.port)"] }

    /// Produces `count` events; returns the counts of all produced so far.
    func produce(_ count: Int) throws -> [String: Int] {
        let result = try broker.produceEvents(topic: "test", count: count, partitions: 2, seed: UInt64(produced.count + 1))
        guard result.total == count else { throw ProcessError("the broker acknowledged \(result.total) of \(count) events") }
        produced.merge(result.countsByEvent, uniquingKeysWith: +)
        return produced
    }

    /// Launches `eddy run` and waits until its HTTP side answers.
    func launch(_ extraArguments: [String]) async throws {
        let (process, port) = try await EddyProcess.launchServingHTTP(environment: environment, outputDirectory: directory.path, name: "eddy-run") {
            ["run", examplePipeline, "--state-dir", stateDirectory, "--http", "127.0.0.1:\($0)", "--checkpoint-interval", "0.2"] + extraArguments
        }
        daemon = process
        baseURL = "http://127.0.0.1:\(port)"
    }

    func stopDaemon() throws {
        try daemon?.stopGracefully()
    }

    func scrape() async throws -> [PrometheusText.Sample] {
        let response = try await HTTPTestClient.get(baseURL + "/metrics")
        guard response.status == 200 else { throw ProcessError("/metrics answered \(response.status)") }
        return try PrometheusText.parse(response.text)
    }

    /// Waits until Redis holds exactly `expected`.
    func awaitRedis(equals expected: [String: Int], timeout: Duration = .seconds(30)) -> Bool {
        eventually(timeout: timeout, every: .milliseconds(20)) {
            expected.allSatisfy { event, count in (try? redis.get(event)) == String(count) }
        }
    }

    func verify() throws -> EddyProcess.Finished {
        try EddyProcess.run(["verify", examplePipeline, "--state-dir", stateDirectory], environment: environment)
    }
}
