import EddyEngine
import EddyRedis
import EddyTestSupport
import Foundation
import Synchronization
import Testing

/// The background repair inside a running pipeline (mock Kafka → PipelineRunner → real redis-server): the sink's
/// thread compares Redis with the checkpoint while it is caught up.
@Suite(.serialized) struct SinkDriverRepairTests {
    @Test func keysOverwrittenOrDeletedBySomeoneElseAreRewrittenWhileTheirGroupsAreIdle() throws {
        let harness = try PipelineHarness(partitions: 2)
        harness.options.sinkRepair = SinkRepairSettings(interval: .milliseconds(200), keysPerSecond: 1_000)
        let produced = try harness.produce(500)
        try harness.start()
        #expect(try harness.waitForRedis(produced))
        let runner = try #require(harness.runner)

        // No new messages: every group is idle. Someone else changes one key and deletes another.
        try harness.redis.command("SET", "click", "1")
        try harness.redis.command("DEL", "scroll")
        let started = ContinuousClock.now
        #expect(try harness.waitForRedis(produced, timeout: .seconds(10)))
        // Within a pass interval and a pass (five keys at 1,000 keys/s), with room for a loaded machine.
        #expect(ContinuousClock.now - started < .seconds(5))
        #expect(eventually { runner.statistics.snapshot.sinks.first?.repairedKeys == 2 })
        #expect(runner.statistics.snapshot.sinks.first.map { $0.repairPasses > 0 && $0.repairComparedKeys >= 5 } == true)
        // The marker still records the checkpoint: the repair wrote the same values, not a new point of the stream.
        let marker = try #require(try harness.redis.get("eddy:redis_sink:epoch"))
        guard case .progress(let progress) = SinkProgress.parseMarker(Array(marker.utf8)) else {
            Issue.record("marker \(marker) is not a progress marker")
            return
        }
        #expect(progress.offsets.values.reduce(0, +) == 500)
        try harness.stopPipeline()
    }

    @Test func aRepairPassSpanningBusyEpochsNeverMovesAValueBack() throws {
        let harness = try PipelineHarness(partitions: 2)
        // One key per chunk, a chunk every 100 ms: a pass over the five keys spans several 100 ms epochs.
        harness.options.sinkRepair = SinkRepairSettings(interval: .milliseconds(50), keysPerSecond: 10)
        var expected = try harness.produce(200)
        try harness.start()
        #expect(try harness.waitForRedis(expected))
        let runner = try #require(harness.runner)

        // A reader polling Redis throughout: no count may ever go down.
        let monitor = RedisMonitor(url: harness.redis.url)
        monitor.start()
        for batch in 0..<8 {
            // Each batch lands while a pass is under way (the sink is caught up in between, so passes run).
            expected = merged(expected, try harness.produce(150, seed: UInt64(100 + batch)))
            #expect(try harness.waitForRedis(expected))
        }
        #expect(eventually { (runner.statistics.snapshot.sinks.first?.repairComparedKeys ?? 0) >= 10 })
        let decreases = monitor.stop()
        #expect(decreases.isEmpty, "values moved back (first 20): \(decreases)")
        #expect(monitor.reads > 10)
        // Nobody else wrote: nothing differed, whatever epochs came during the passes.
        #expect(runner.statistics.snapshot.sinks.first?.repairedKeys == 0)
        try harness.stopPipeline()
    }
}

/// Polls the five event counts every few milliseconds on its own thread and records any that went down.
private final class RedisMonitor: @unchecked Sendable {
    private let url: RedisURL
    private let state = Mutex<(stop: Bool, reads: Int, decreases: [String])>((false, 0, []))
    private let done = DispatchSemaphore(value: 0)

    init(url: RedisURL) { self.url = url }

    var reads: Int { state.withLock { $0.reads } }

    func start() {
        let thread = Thread { [self] in
            defer { done.signal() }
            guard let connection = try? RedisConnection.connect(url: url, connectTimeout: .seconds(2), commandTimeout: .seconds(2), logger: .init(label: "monitor")) else {
                state.withLock { $0.decreases.append("cannot connect") }
                return
            }
            let events = ["click", "scroll", "submit", "download", "focus"]
            var highest: [String: Int] = [:]
            while !state.withLock({ $0.stop }) {
                guard case .array(let values)? = try? connection.command([Array("MGET".utf8)] + events.map { Array($0.utf8) }) else { continue }
                var found: [String] = []
                for (event, value) in zip(events, values) {
                    guard case .string(let bytes) = value, let count = Int(String(decoding: bytes, as: UTF8.self)) else { continue }
                    if let seen = highest[event], count < seen { found.append("\(event) \(seen) → \(count)") }
                    highest[event] = max(count, highest[event] ?? count)
                }
                state.withLock {
                    $0.reads += 1
                    $0.decreases += found.prefix(max(0, 20 - $0.decreases.count))
                }
                Thread.sleep(forTimeInterval: 0.002)  // the sampling period of a monitor, not a wait for a condition
            }
        }
        thread.start()
    }

    /// Stops polling; returns the decreases seen.
    func stop() -> [String] {
        state.withLock { $0.stop = true }
        done.wait()
        return state.withLock { $0.decreases }
    }
}
