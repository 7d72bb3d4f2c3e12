#if canImport(Glibc)
import Glibc
#endif
import EddyTestSupport
import Foundation
import Synchronization
import Testing

// Acceptance tests of operability (issue 6) against a real `eddy run` of the example pipeline: librdkafka's
// mock cluster as the source, a real redis-server as the sink, the HTTP side on a free loopback port.

/// The package root, for the example pipeline, `test-output/` (git-ignored) and `docs/`.
private let packageRoot = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent()
private let examplePipeline = packageRoot.appendingPathComponent("examples/seed_pipeline.sql").path
/// What the example pipeline names (`SELECT` it, label metrics with it).
private let exampleTopic = "test"
private let exampleView = "events_statisics_mv"
private let exampleSink = "redis_sink"
private let partitionCount: Int32 = 3

@Suite("eddy run: metrics, dashboard, readiness, graceful stop", .serialized)
struct OperabilityTests {
    @Test("/metrics parses strictly, has every metric the issue lists, and its counters follow the messages")
    func metricsMoveWithTheMessages() async throws {
        let rig = try PipelineRig()
        try rig.produce(2_000)
        try await rig.launch()
        try await rig.awaitConsumed(2_000)
        await rig.awaitRedisEqualsProduced()

        let (text, first) = try await rig.scrapeText()
        #expect(PrometheusText.value(in: first, name: "eddy_messages_consumed_total") == 2_000)
        for family in [
            "eddy_messages_consumed_total", "eddy_partition_messages_consumed_total", "eddy_source_errors_total", "eddy_view_rows",
            "eddy_checkpoint_duration_seconds", "eddy_checkpoint_epoch", "eddy_sink_write_duration_seconds", "eddy_sink_pending_epochs",
            "eddy_sink_retries_total", "eddy_consumer_paused_partitions", "eddy_consumer_lag_messages", "process_resident_memory_bytes",
        ] {
            #expect(first.contains { $0.family == family }, "/metrics has no \(family):\n\(text)")
        }
        let types = Dictionary(first.map { ($0.family, $0.type) }, uniquingKeysWith: { first, _ in first })
        #expect(types["eddy_messages_consumed_total"] == .counter)
        #expect(types["eddy_checkpoint_duration_seconds"] == .histogram)
        #expect(types["eddy_sink_write_duration_seconds"] == .histogram)
        #expect(types["eddy_view_rows"] == .gauge)
        #expect(types["process_resident_memory_bytes"] == .gauge)
        #expect((PrometheusText.value(in: first, name: "process_resident_memory_bytes") ?? 0) > 1_000_000)

        // More messages, a few of them undecodable: the counters move by exactly that much.
        try rig.produce(1_500)
        let garbage: [(partition: Int32, payload: [UInt8])] = [(0, Array("not json".utf8)), (1, Array("{\"event\": ".utf8)), (2, Array("[1, 2]".utf8))]
        try rig.broker.produce(topic: exampleTopic, messages: garbage)
        rig.recordUncounted(garbage.map(\.partition))
        try await rig.awaitConsumed(3_503)
        await rig.awaitRedisEqualsProduced()
        // The checkpoint that wrote Redis is in the metrics once its sink write is recorded; lag is published
        // each 100 ms: wait for the scrape that shows the whole run.
        var final: [PrometheusText.Sample] = []
        let settled = try await awaitCondition {
            final = try await rig.scrape()
            return (0..<partitionCount).allSatisfy {
                PrometheusText.value(in: final, name: "eddy_consumer_lag_messages", labels: ["partition": String($0)]) == 0
            } && PrometheusText.value(in: final, name: "eddy_sink_pending_epochs", labels: ["sink": exampleSink]) == 0
                // The gauge is published every 100 ms: the write that filled Redis may not be in it yet.
                && (PrometheusText.value(in: final, name: "eddy_sink_write_duration_seconds_count", labels: ["sink": exampleSink]) ?? 0)
                    > (PrometheusText.value(in: first, name: "eddy_sink_write_duration_seconds_count", labels: ["sink": exampleSink]) ?? 0)
        }
        #expect(settled, "lag or pending epochs never reached 0")
        #expect(PrometheusText.value(in: final, name: "eddy_messages_consumed_total") == 3_503)
        for partition in 0..<partitionCount {
            let consumed = PrometheusText.value(
                in: final, name: "eddy_partition_messages_consumed_total", labels: ["topic": exampleTopic, "partition": String(partition)])
            #expect(consumed == Double(rig.producedPerPartition[Int(partition)]), "partition \(partition)")
        }
        #expect(PrometheusText.value(in: final, name: "eddy_source_errors_total", labels: ["reason": "not_json"]) == 2)
        #expect(PrometheusText.value(in: final, name: "eddy_source_errors_total", labels: ["reason": "not_object"]) == 1)
        #expect(PrometheusText.value(in: final, name: "eddy_source_errors_total", labels: ["reason": "too_large"]) == 0)
        #expect(PrometheusText.value(in: final, name: "eddy_view_rows", labels: ["view": exampleView]) == Double(rig.produced.count))
        let epoch = try #require(PrometheusText.value(in: final, name: "eddy_checkpoint_epoch"))
        #expect(epoch > (PrometheusText.value(in: first, name: "eddy_checkpoint_epoch") ?? 0))
        let firstCheckpoints = PrometheusText.value(in: first, name: "eddy_checkpoint_duration_seconds_count") ?? 0
        #expect((PrometheusText.value(in: final, name: "eddy_checkpoint_duration_seconds_count") ?? 0) > firstCheckpoints)
        let firstWrites = PrometheusText.value(in: first, name: "eddy_sink_write_duration_seconds_count", labels: ["sink": exampleSink]) ?? 0
        #expect(firstWrites >= 1)
        #expect((PrometheusText.value(in: final, name: "eddy_sink_write_duration_seconds_count", labels: ["sink": exampleSink]) ?? 0) > firstWrites)
        #expect(PrometheusText.value(in: final, name: "eddy_sink_retries_total", labels: ["sink": exampleSink]) == 0)
        #expect(PrometheusText.value(in: final, name: "eddy_consumer_paused_partitions") == 0)

        try rig.stopDaemon()
    }

    @Test(
        "the dashboard of a real run draws in headless Chromium; screenshot in test-output/ (and docs/ with EDDY_UPDATE_DOCS=1)",
        .enabled(if: HeadlessChromium.find() != nil, "chromium is not installed: ops/install-deps.sh installs Debian's chromium")
    )
    func dashboardOfARealRun() async throws {
        let chromium = try #require(HeadlessChromium.find())
        // EDDY_UPDATE_DOCS=1 also renders docs/dashboard.png: two minutes of page time at the pace of the
        // clock, at the default checkpoint interval, so that its line charts show real rates.
        let updatesDocs = ProcessInfo.processInfo.environment["EDDY_UPDATE_DOCS"] == "1"
        let rig = try PipelineRig()
        try rig.produce(50_000)
        try await rig.launch(updatesDocs ? [] : ["--checkpoint-interval", "0.2"])
        try await rig.awaitConsumed(50_000)
        await rig.awaitRedisEqualsProduced()
        #expect(try await rig.status().pipeline == "seed_pipeline")

        // Keep events coming while the page polls, so that its totals and line charts move; the rate
        // swells and ebbs over 40 s, as live traffic does.
        let trickle = TrickleProducer.start(broker: rig.broker) { seconds in Int(60 + 35 * sin(seconds * 2 * Double.pi / 40)) }
        let page = try await chromium.dumpDOM(of: rig.baseURL + "/", virtualTime: .seconds(6))
        #expect(page.consoleMessages.isEmpty, "the page wrote to its console: \(page.consoleMessages)")
        let dom = page.dom.components(separatedBy: "<script>")[0]
        #expect(dom.contains(#"data-chart-drawn="true""#), "the page never set its chart-drawn marker")
        for text in ["seed_pipeline", "user_events", exampleView, exampleSink] + rig.produced.keys.sorted() {
            #expect(dom.contains(text), "the page does not show \(text)")
        }

        let outputDirectory = packageRoot.appendingPathComponent("test-output")
        try FileManager.default.createDirectory(at: outputDirectory, withIntermediateDirectories: true)
        let screenshot = outputDirectory.appendingPathComponent("operability-dashboard.png")
        let blank = outputDirectory.appendingPathComponent("operability-blank.png")
        let size = HeadlessChromium.WindowSize(width: 1440, height: 1080)
        let (picture, empty) = try await chromium.screenshotBesideBlank(of: rig.baseURL + "/", to: screenshot, blank: blank, virtualTime: .seconds(20), windowSize: size)
        #expect(picture.width == size.width && picture.height == size.height)
        #expect(picture.imageDataBytes > 20 * empty.imageDataBytes, "dashboard PNG \(picture.imageDataBytes) B vs blank \(empty.imageDataBytes) B")

        if updatesDocs {
            // Page time stands still while a fetch is in flight: fetches held half a second each (two per
            // poll) keep page time in step with the clock.
            let proxy = try DelayingProxy(upstream: rig.httpPort, delay: .milliseconds(500))
            defer { proxy.stop() }
            let documented = outputDirectory.appendingPathComponent("operability-docs-dashboard.png")
            try await chromium.screenshot(of: "http://127.0.0.1:\(proxy.port)/", to: documented, virtualTime: .seconds(125), windowSize: size)
            _ = try PNGSummary(Data(contentsOf: documented))
            let target = packageRoot.appendingPathComponent("docs/dashboard.png")
            try? FileManager.default.removeItem(at: target)
            try FileManager.default.copyItem(at: documented, to: target)
        }

        rig.add(try trickle.stop())
        await rig.awaitRedisEqualsProduced()
        try rig.stopDaemon()
    }

    @Test("/readyz turns 503 soon after Redis stops while messages arrive, 200 once it is back; Redis then holds every count")
    func readinessFollowsRedis() async throws {
        let rig = try PipelineRig()
        try rig.produce(3_000)
        try await rig.launch(["--checkpoint-interval", "0.2"])
        await rig.awaitRedisEqualsProduced()
        #expect(await rig.awaitReadiness(200), "never ready")

        rig.redis.stop()
        let trickle = TrickleProducer.start(broker: rig.broker) { _ in 50 }
        // A sink write fails at the next checkpoint (0.2 s); a few seconds allow for a busy machine.
        #expect(await rig.awaitReadiness(503, timeout: .seconds(8)), "still ready with Redis stopped")
        let notReady = try await rig.get("/readyz")
        #expect(notReady.text.contains("sink \(exampleSink) unhealthy"), "\(notReady.text)")
        let status = try await rig.status()
        #expect(status.sinks.first?.healthy == false)

        let batchesWhileAway = trickle.batches
        try rig.redis.start()
        // Backoff is capped at 5 s: the sink is back within that plus a write.
        #expect(await rig.awaitReadiness(200, timeout: .seconds(20)), "not ready again after Redis came back")
        rig.add(try trickle.stop())
        #expect(batchesWhileAway >= 1, "no messages arrived while Redis was away")
        await rig.awaitRedisEqualsProduced()
        let samples = try await rig.scrape()
        #expect((PrometheusText.value(in: samples, name: "eddy_sink_retries_total", labels: ["sink": exampleSink]) ?? 0) >= 1)
        #expect(PrometheusText.value(in: samples, name: "eddy_messages_consumed_total") == Double(rig.producedTotal))
        try rig.stopDaemon()
    }

    @Test("/readyz turns 503 within seconds of a broker outage, saying so, and 200 once the broker is back; Redis then holds every count")
    func readinessFollowsTheBroker() async throws {
        let rig = try PipelineRig()
        try rig.produce(2_000)
        try await rig.launch(["--checkpoint-interval", "0.2"])
        await rig.awaitRedisEqualsProduced()
        #expect(await rig.awaitReadiness(200), "never ready")

        try rig.broker.setAllBrokers(up: false)
        // 3 s of silence, statistics once a second, the HTTP poll: well within 10 s.
        #expect(await rig.awaitReadiness(503, timeout: .seconds(10)), "still ready with every broker down")
        let notReady = try await rig.get("/readyz")
        #expect(notReady.text.contains("no Kafka broker has answered for"), "\(notReady.text)")

        try rig.broker.setAllBrokers(up: true)
        #expect(await rig.awaitReadiness(200, timeout: .seconds(20)), "not ready again after the broker came back")
        try rig.produce(1_000)
        try await rig.awaitConsumed(3_000)
        await rig.awaitRedisEqualsProduced()
        try rig.stopDaemon()
    }

    @Test("/readyz turns 503 while Redis holds writes (CLIENT PAUSE WRITE) with epochs waiting, and 200 after")
    func readinessFollowsAStalledSink() async throws {
        let rig = try PipelineRig()
        try rig.produce(1_000)
        // The default checkpoint interval (1 s): backpressure would pause consumption only after 8 epochs, and
        // the held write times out after 10 s; the stall must show before either.
        try await rig.launch()
        await rig.awaitRedisEqualsProduced()
        #expect(await rig.awaitReadiness(200), "never ready")

        // Reads go on (the idle probe succeeds): only the waiting writes can tell.
        try rig.redis.pause(writesFor: .seconds(30))
        let trickle = TrickleProducer.start(broker: rig.broker) { _ in 20 }
        #expect(await rig.awaitReadiness(503, timeout: .seconds(7)), "still ready with Redis holding every write")
        let notReady = try await rig.get("/readyz")
        #expect(notReady.text.contains("sink \(exampleSink) stalled"), "\(notReady.text)")

        try rig.redis.unpause()
        #expect(await rig.awaitReadiness(200, timeout: .seconds(20)), "not ready again after Redis took writes")
        rig.add(try trickle.stop())
        await rig.awaitRedisEqualsProduced()
        try rig.stopDaemon()
    }

    @Test("SIGTERM during start-up (before the pipeline runs) still stops gracefully: exit 0, not death by the signal")
    func sigtermDuringStartupStopsGracefully() throws {
        let rig = try PipelineRig()
        try rig.produce(500)
        // An armed crash point that is never reached logs one line at the very start of `eddy run`, before the
        // state is opened: the moment to send SIGTERM.
        let daemon = try EddyProcess.launch(
            ["run", examplePipeline, "--state-dir", rig.stateDirectory, "--http", "off"],
            environment: ["KAFKA_BROKERS": rig.broker.bootstrapServers, "REDIS_URL": "redis://127.0.0.1:\(rig.redis.port)", "EDDY_CRASH_POINT": "startup-restore:1000000"],
            outputDirectory: rig.directory.path, name: "eddy-early-stop")
        #expect(daemon.waitForOutput(containing: "crash point armed"), "\(daemon.standardError)")
        daemon.send(SIGTERM)
        #expect(daemon.waitForExit(timeout: .seconds(20)) == 0, "exit status \(daemon.exitStatus.map(String.init) ?? "none: still running")\n\(daemon.standardError)")
        #expect(!daemon.standardError.contains("exiting at once"))
    }

    @Test("SIGTERM exits 0 within 5 s after a final checkpoint; a restart resumes without counting anything twice")
    func sigtermCheckpointsAndRestartResumes() async throws {
        let rig = try PipelineRig()
        try rig.produce(4_000)
        // No periodic checkpoint during this run: only the final one can hold these counts.
        try await rig.launch(["--checkpoint-interval", "600"])
        try await rig.awaitConsumed(4_000)
        #expect(try rig.redisCounts().values.allSatisfy { $0 == nil }, "Redis was written before the final checkpoint")

        let daemon = try #require(rig.daemon)
        daemon.send(SIGTERM)
        #expect(daemon.waitForExit(timeout: .seconds(5)) == 0, "exit status \(daemon.exitStatus.map(String.init) ?? "none: still running")\n\(daemon.standardError)")
        let stoppedLine = daemon.standardError.split(separator: "\n").first { $0.contains("stopped") && $0.contains("eddy.messages=4000") }
        #expect(stoppedLine != nil, "no 'stopped' line with the message count:\n\(daemon.standardError)")
        #expect(try rig.queryCounts() == rig.produced)
        #expect(try rig.redisCounts() == rig.produced.mapValues { Optional($0) })

        // Restart after more messages: only those are consumed.
        let before = rig.producedPerPartition
        try rig.produce(2_500)
        try await rig.launch()
        await rig.awaitRedisEqualsProduced()
        try await rig.awaitConsumed(2_500)
        let status = try await rig.status()
        #expect(status.sources.first?.consumed == 2_500)
        #expect(status.sources.first?.partitions.map(\.consumed) == zip(rig.producedPerPartition, before).map { Int64($0 - $1) })
        let samples = try await rig.scrape()
        #expect(PrometheusText.value(in: samples, name: "eddy_messages_consumed_total") == 2_500)
        try rig.stopDaemon()
        #expect(try rig.queryCounts() == rig.produced)
        #expect(try rig.redisCounts() == rig.produced.mapValues { Optional($0) })
    }
}

// MARK: - The rig

/// A mock Kafka cluster holding the example's topic, a real redis-server, a state directory, and `eddy run`
/// of the example pipeline against them (one daemon at a time). Remembers what it produced.
private final class PipelineRig: @unchecked Sendable {
    let broker: KafkaTestBroker
    let redis: RedisTestServer
    let directory: ScratchDirectory
    var stateDirectory: String { directory.path + "/state" }
    private(set) var daemon: EddyProcess?
    private(set) var baseURL = ""
    private(set) var httpPort = 0
    /// Acknowledged events per `event` value, over the rig's life.
    private(set) var produced: [String: Int] = [:]
    /// Acknowledged messages per partition (events and undecodable ones), over the rig's life.
    private(set) var producedPerPartition = [Int](repeating: 0, count: Int(partitionCount))
    private var seed: UInt64 = 1

    var producedTotal: Int { producedPerPartition.reduce(0, +) }

    init() throws {
        broker = try KafkaTestBroker.start(topics: [exampleTopic: Int(partitionCount)])
        redis = try RedisTestServer()
        try redis.start()
        directory = try ScratchDirectory(prefix: "eddy-operability")
    }

    deinit {
        if daemon?.isRunning == true { daemon?.kill() }
        directory.remove()
    }

    /// Produces `count` generated events round-robin from partition 0, as `produceEvents` does.
    func produce(_ count: Int) throws {
        seed += 1
        let result = try broker.produceEvents(topic: exampleTopic, count: count, partitions: partitionCount, seed: seed)
        guard result.total == count else { throw ProcessError("the broker acknowledged \(result.total) of \(count) events") }
        add(result)
    }

    /// Adds what another producer got acknowledged (round-robin from partition 0 per batch).
    func add(_ events: [KafkaProducedEvents]) {
        for batch in events {
            produced.merge(batch.countsByEvent) { $0 + $1 }
            for index in 0..<batch.total { producedPerPartition[index % Int(partitionCount)] += 1 }
        }
    }

    private func add(_ events: KafkaProducedEvents) { add([events]) }

    /// Counts messages that are consumed but count in no view.
    func recordUncounted(_ partitions: [Int32]) {
        for partition in partitions { producedPerPartition[Int(partition)] += 1 }
    }

    /// Launches `eddy run` of the example pipeline and waits until its HTTP side answers.
    func launch(_ extraArguments: [String] = []) async throws {
        precondition(daemon?.isRunning != true, "one daemon at a time")
        let environment = ["KAFKA_BROKERS": broker.bootstrapServers, "REDIS_URL": "redis://127.0.0.1:\(redis.port)"]
        let (process, port) = try await EddyProcess.launchServingHTTP(environment: environment, outputDirectory: directory.path, name: "eddy-run") {
            ["run", examplePipeline, "--state-dir", stateDirectory, "--http", "127.0.0.1:\($0)"] + extraArguments
        }
        daemon = process
        baseURL = "http://127.0.0.1:\(port)"
        httpPort = port
    }

    /// SIGTERM, and a clean exit.
    func stopDaemon() throws {
        try daemon?.stopGracefully()
    }

    func get(_ path: String) async throws -> HTTPTestResponse { try await HTTPTestClient.get(baseURL + path) }

    func status() async throws -> Status {
        let response = try await get("/api/status")
        return try JSONDecoder().decode(Status.self, from: response.body)
    }

    func scrapeText() async throws -> (String, [PrometheusText.Sample]) {
        let response = try await get("/metrics")
        guard response.status == 200 else { throw ProcessError("/metrics answered \(response.status)") }
        return (response.text, try PrometheusText.parse(response.text))
    }

    func scrape() async throws -> [PrometheusText.Sample] { try await scrapeText().1 }

    /// Waits until the daemon has consumed `count` messages since it started (and fails if it consumed more).
    func awaitConsumed(_ count: Int, timeout: Duration = .seconds(30)) async throws {
        var consumed: Int64 = -1
        _ = try await awaitCondition(timeout: timeout) {
            consumed = try await status().sources.first?.consumed ?? -1
            return consumed >= count
        }
        #expect(consumed == Int64(count), "consumed \(consumed) messages, expected \(count)\n\(daemon?.standardError ?? "")")
    }

    /// Waits until `/readyz` answers `code`.
    func awaitReadiness(_ code: Int, timeout: Duration = .seconds(20)) async -> Bool {
        await awaitCondition(timeout: timeout) { (try? await get("/readyz"))?.status == code }
    }

    /// The Redis value of every produced event (nil when absent).
    func redisCounts() throws -> [String: Int?] {
        var counts: [String: Int?] = [:]
        for event in produced.keys { counts[event] = try redis.get(event).flatMap { Int($0) } }
        return counts
    }

    /// Waits until Redis holds exactly the produced counts.
    func awaitRedisEqualsProduced(timeout: Duration = .seconds(30)) async {
        let expected = produced.mapValues { Optional($0) }
        var last: [String: Int?] = [:]
        let equal = await awaitCondition(timeout: timeout) {
            last = (try? redisCounts()) ?? [:]
            return last == expected
        }
        #expect(equal, "Redis holds \(last), produced \(expected)")
    }

    /// `eddy query --state-dir ... --format json`: the view's counts in the last checkpoint.
    func queryCounts() throws -> [String: Int] {
        let run = try EddyProcess.run(["query", "--state-dir", stateDirectory, "--format", "json", "SELECT * FROM \(exampleView)"])
        guard run.status == 0 else { throw ProcessError("eddy query failed: \(run.standardError)") }
        guard let rows = try JSONSerialization.jsonObject(with: Data(run.standardOutput.utf8)) as? [[String: Any]] else {
            throw ProcessError("eddy query printed no JSON rows: \(run.standardOutput)")
        }
        var counts: [String: Int] = [:]
        for row in rows {
            guard let event = row["event"] as? String, let count = row["count"] as? Int else { throw ProcessError("unexpected row \(row)") }
            counts[event] = count
        }
        return counts
    }

    /// The part of `/api/status` these tests read.
    struct Status: Decodable {
        struct Source: Decodable {
            struct Partition: Decodable {
                let partition: Int32
                let consumed: Int64
            }
            let consumed: Int64
            let partitions: [Partition]
        }
        struct Sink: Decodable {
            let healthy: Bool
        }
        let pipeline: String
        let sources: [Source]
        let sinks: [Sink]
    }
}

/// Produces a batch of events about every 50 ms on a thread of its own until stopped, like a live topic.
private final class TrickleProducer: Sendable {
    private struct State {
        var stopRequested = false
        var batches: [KafkaProducedEvents] = []
        var error: (any Error)?
    }

    private let state = Mutex(State())
    private let finished = DispatchSemaphore(value: 0)

    private init() {}

    /// `eventsPerBatch` is asked for each batch's size, given the seconds since the start.
    static func start(broker: KafkaTestBroker, eventsPerBatch: @escaping @Sendable (Double) -> Int) -> TrickleProducer {
        let producer = TrickleProducer()
        let started = ContinuousClock.now
        Thread.detachNewThread {
            var seed: UInt64 = 1_000
            while !producer.state.withLock({ $0.stopRequested }) {
                seed += 1
                let count = max(1, eventsPerBatch((ContinuousClock.now - started) / .seconds(1)))
                do {
                    let batch = try broker.produceEvents(topic: exampleTopic, count: count, partitions: partitionCount, seed: seed)
                    producer.state.withLock { $0.batches.append(batch) }
                } catch {
                    producer.state.withLock { $0.error = error }
                    break
                }
                // Pacing, not synchronisation: a steady stream rather than one burst.
                Thread.sleep(forTimeInterval: 0.05)
            }
            producer.finished.signal()
        }
        return producer
    }

    /// Batches produced so far.
    var batches: Int { state.withLock { $0.batches.count } }

    /// Stops after the batch in flight; what the broker acknowledged, batch by batch.
    func stop() throws -> [KafkaProducedEvents] {
        state.withLock { $0.stopRequested = true }
        finished.wait()
        return try state.withLock { state in
            if let error = state.error { throw error }
            return state.batches
        }
    }
}

/// A loopback TCP relay to `upstream` that holds each chunk a client sends for `delay` before passing it on.
/// Headless Chromium's page time stands still while a fetch is in flight, so a page polling through it lives at
/// the pace of the clock (for the documentation's screenshot, whose line charts should show real rates).
private final class DelayingProxy: Sendable {
    let port: Int
    private let listener: Int32

    init(upstream: Int, delay: Duration) throws {
        let listener = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
        var address = loopbackAddress(port: 0)
        var length = socklen_t(MemoryLayout<sockaddr_in>.size)
        let bound = withUnsafeMutablePointer(to: &address) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { bind(listener, $0, length) == 0 && getsockname(listener, $0, &length) == 0 }
        }
        guard listener >= 0, bound, listen(listener, 16) == 0 else {
            if listener >= 0 { close(listener) }
            throw ProcessError("proxy: cannot listen: \(String(cString: strerror(errno)))")
        }
        self.listener = listener
        port = Int(UInt16(bigEndian: address.sin_port))
        Thread.detachNewThread {
            while true {
                let client = accept(listener, nil, nil)
                guard client >= 0 else { return }
                let server = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
                var target = loopbackAddress(port: upstream)
                let connected = withUnsafePointer(to: &target) {
                    $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { connect(server, $0, socklen_t(MemoryLayout<sockaddr_in>.size)) == 0 }
                }
                guard connected else {
                    close(client)
                    close(server)
                    continue
                }
                let pair = SocketPair(client, server)
                Thread.detachNewThread { pair.relay(from: client, to: server, delay: delay) }
                Thread.detachNewThread { pair.relay(from: server, to: client, delay: .zero) }
            }
        }
    }

    /// Stops accepting; open connections end when their peers close them.
    func stop() {
        shutdown(listener, Int32(SHUT_RDWR))
        close(listener)
    }
}

/// Two connected sockets, closed once both directions have ended.
private final class SocketPair: Sendable {
    private let sockets: (Int32, Int32)
    private let openDirections = Mutex(2)

    init(_ first: Int32, _ second: Int32) { sockets = (first, second) }

    func relay(from source: Int32, to destination: Int32, delay: Duration) {
        var buffer = [UInt8](repeating: 0, count: 64 << 10)
        copying: while true {
            let count = read(source, &buffer, buffer.count)
            guard count > 0 else { break }
            if delay > .zero { Thread.sleep(forTimeInterval: delay / .seconds(1)) }
            var sent = 0
            while sent < count {
                let written = buffer.withUnsafeBytes { write(destination, $0.baseAddress! + sent, count - sent) }
                guard written > 0 else { break copying }
                sent += written
            }
        }
        shutdown(destination, Int32(SHUT_WR))
        if openDirections.withLock({ $0 -= 1; return $0 == 0 }) {
            close(sockets.0)
            close(sockets.1)
        }
    }
}

private func loopbackAddress(port: Int) -> sockaddr_in {
    var address = sockaddr_in()
    address.sin_family = sa_family_t(AF_INET)
    address.sin_addr.s_addr = in_addr_t(0x7F00_0001).bigEndian
    address.sin_port = UInt16(port).bigEndian
    return address
}

