import EddyEngine
import EddyKafka
import EddyRedis
import EddySQL
import EddyTestSupport
import Foundation
import Logging
import Synchronization
import Testing

/// A real pipeline for tests: the mock Kafka cluster, a real redis-server, a state directory, and a
/// `PipelineRunner` on its own thread.
final class PipelineHarness: @unchecked Sendable {
    let broker: KafkaTestBroker
    let redis: RedisTestServer
    let state: ScratchDirectory
    let topic: String
    let partitions: Int32
    var options: PipelineOptions
    private(set) var runner: PipelineRunner?
    private var stop: StopSignal?
    private var finished: DispatchSemaphore?
    private let outcome = OutcomeBox()

    static let pipelineText = """
        CREATE SOURCE IF NOT EXISTS user_events (event_timestamp TIMESTAMP, user VARCHAR, page VARCHAR, event VARCHAR)
          WITH (connector='kafka', topic='${TOPIC}', properties.bootstrap.server='${KAFKA_BROKERS}', scan.startup.mode='earliest') FORMAT PLAIN ENCODE JSON;
        CREATE MATERIALIZED VIEW IF NOT EXISTS events_statisics_mv AS SELECT event, COUNT(*) FROM user_events GROUP BY event;
        CREATE SINK IF NOT EXISTS redis_sink FROM events_statisics_mv WITH (connector='redis', primary_key='event', redis.url='${REDIS_URL}')
          FORMAT PLAIN ENCODE TEMPLATE (force_append_only='true', key_format='{event}', value_format='{count}');
        SELECT * FROM events_statisics_mv;
        """

    /// - Parameter otherTopics: more topics on the broker, with their partition counts (for pipelines of
    ///   several sources).
    init(partitions: Int32 = 4, topic: String = "events", otherTopics: [String: Int] = [:]) throws {
        broker = try KafkaTestBroker.start(topics: otherTopics.merging([topic: Int(partitions)]) { $1 })
        redis = try RedisTestServer()
        try redis.start()
        state = try ScratchDirectory(prefix: "eddy-engine")
        self.topic = topic
        self.partitions = partitions
        options = PipelineOptions(stateDirectory: state.path + "/state")
        options.checkpointInterval = .milliseconds(100)
        options.redisBackoff = Backoff(base: .milliseconds(10), cap: .milliseconds(200))
        options.redisCommandTimeout = .seconds(2)
        options.sinkProbeInterval = .milliseconds(200)
        options.shutdownFlushTimeout = .seconds(10)
    }

    deinit { state.remove() }

    var environment: [String: String] {
        ["TOPIC": topic, "KAFKA_BROKERS": broker.bootstrapServers, "REDIS_URL": "redis://127.0.0.1:\(redis.port)"]
    }

    func compile(_ text: String = PipelineHarness.pipelineText) throws -> Pipeline {
        let result = PipelineCompiler.compile(text: text, file: "test.sql", environment: environment)
        guard let pipeline = result.pipeline else { throw HarnessError("\(result.errors.map(\.description).joined(separator: "\n"))") }
        return pipeline
    }

    /// Starts the pipeline on its own thread.
    func start(_ text: String = PipelineHarness.pipelineText) throws {
        precondition(runner == nil, "already running")
        var logger = Logger(label: "eddy.test")
        logger.logLevel = ProcessInfo.processInfo.environment["EDDY_TEST_LOG"].flatMap(Logger.Level.init(rawValue:)) ?? .critical
        let runner = try PipelineRunner(pipeline: try compile(text), options: options, logger: logger)
        let stop = StopSignal()
        let finished = DispatchSemaphore(value: 0)
        outcome.value.withLock { $0 = nil }
        let thread = Thread { [outcome] in
            let result = Result { try runner.run(until: stop) }
            outcome.value.withLock { $0 = result }
            finished.signal()
        }
        thread.stackSize = 8 << 20
        thread.start()
        self.runner = runner
        self.stop = stop
        self.finished = finished
    }

    /// Stops gracefully and rethrows whatever the run threw.
    func stopPipeline(timeout: Duration = .seconds(30)) throws {
        guard let stop, let finished else { return }
        stop.request()
        guard finished.wait(timeout: .now() + .milliseconds(Int(timeout.components.seconds * 1000))) == .success else {
            throw HarnessError("the pipeline did not stop within \(timeout)")
        }
        runner = nil
        self.stop = nil
        self.finished = nil
        try outcome.value.withLock { $0 }?.get()
    }

    /// The run's result if it ended on its own (an error), nil while it runs.
    var endedWith: Result<Void, any Error>? { outcome.value.withLock { $0 } }

    /// Produces `count` generated events and returns how many of each the broker acknowledged.
    @discardableResult
    func produce(_ count: Int, seed: UInt64 = 1) throws -> [String: Int] {
        try broker.produceEvents(topic: topic, count: count, partitions: partitions, seed: seed).countsByEvent
    }

    /// Redis' value for each event (nil when a key is missing).
    func redisCounts() throws -> [String: Int] {
        var counts: [String: Int] = [:]
        for event in ["click", "scroll", "submit", "download", "focus"] {
            if let value = try redis.get(event), let number = Int(value) { counts[event] = number }
        }
        return counts
    }

    /// Waits until Redis holds exactly `expected` (events with count 0 are absent).
    func waitForRedis(_ expected: [String: Int], timeout: Duration = .seconds(60)) throws -> Bool {
        let wanted = expected.filter { $0.value > 0 }
        return try eventually(timeout: timeout, every: .milliseconds(20)) {
            if let ended = endedWith { try ended.get(); throw HarnessError("the pipeline ended early") }
            return (try? redisCounts()) == wanted
        }
    }
}

final class OutcomeBox: Sendable {
    let value = Mutex<Result<Void, any Error>?>(nil)
}

struct HarnessError: Error, CustomStringConvertible {
    let description: String
    init(_ description: String) { self.description = description }
}

func merged(_ counts: [String: Int]...) -> [String: Int] {
    counts.reduce(into: [:]) { total, next in total.merge(next, uniquingKeysWith: +) }
}
