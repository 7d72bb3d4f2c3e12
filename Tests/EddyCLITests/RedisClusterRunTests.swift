#if canImport(Glibc)
import Glibc
#endif
import EddyKafka
import EddyRedis
import EddyTestSupport
import Foundation
import Logging
import Synchronization
import Testing

/// The seed pipeline, run as written by the built binary, with `redis.url` a JSON array naming the nodes of a real
/// 3-master Redis Cluster (docs/redis-cluster.md): kill -9 of the daemon, a master failover and a master losing its
/// data mid-run, and what a reader of the cluster sees meanwhile.
private let seedPipeline = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent()
    .deletingLastPathComponent().appendingPathComponent("examples/seed_pipeline.sql").path

private let events = ["click", "scroll", "submit", "download", "focus"]

private struct Manifest: Decodable {
    let total: Int
    let events: [String: Int]
}

/// A daemon of the seed pipeline writing to `cluster`, a broker, and `eddy produce` chunks with their manifests.
private final class ClusterRun {
    let directory: ScratchDirectory
    let broker: DevBrokerProcess
    let cluster: RedisTestCluster
    private(set) var expected: [String: Int] = [:]
    private(set) var produced = 0
    private var chunks = 0

    init(prefix: String, replicasPerMaster: Int = 0, partitions: Int = 4) throws {
        directory = try ScratchDirectory(prefix: prefix)
        broker = try DevBrokerProcess(topics: ["test:\(partitions)"])
        cluster = try RedisTestCluster(masters: 3, replicasPerMaster: replicasPerMaster)
    }

    deinit {
        _ = broker.stop()
        cluster.destroy()
        directory.remove()
    }

    /// `redis.url` as RisingWave writes it for a cluster: a JSON array of node URLs (the masters as created).
    var redisURL: String { "[" + cluster.nodes.prefix(3).map { "\"redis://127.0.0.1:\($0.port)\"" }.joined(separator: ",") + "]" }

    func launchDaemon(name: String = "run") throws -> EddyProcess {
        try EddyProcess.launch(
            ["run", seedPipeline, "--state-dir", directory.path + "/state", "--http", "off", "--checkpoint-interval", "0.2"],
            environment: ["KAFKA_BROKERS": broker.bootstrapServers, "REDIS_URL": redisURL], outputDirectory: directory.path, name: name)
    }

    func produce(_ count: Int) throws {
        chunks += 1
        let manifestPath = directory.path + "/manifest-\(chunks).json"
        let producer = try EddyProcess.run([
            "produce", "--brokers", broker.bootstrapServers, "--topic", "test", "--count", String(count), "--rate", "0",
            "--seed", String(40 + chunks), "--manifest", manifestPath,
        ])
        #expect(producer.status == 0, "\(producer.standardError)")
        let manifest = try JSONDecoder().decode(Manifest.self, from: Data(contentsOf: URL(fileURLWithPath: manifestPath)))
        produced += manifest.total
        expected.merge(manifest.events, uniquingKeysWith: +)
    }

    /// Each event's count in the cluster, read from the master serving it now.
    func counts() -> [String: Int] {
        var counts: [String: Int] = [:]
        for event in events { if let value = (try? cluster.get(event)).flatMap({ $0.flatMap { Int($0) } }) { counts[event] = value } }
        return counts
    }

    var total: Int { counts().values.reduce(0, +) }
}

@Suite(.serialized) struct RedisClusterRunTests {
    /// kill -9 of the daemon at random moments while it writes to the cluster: every key ends exact, none ever
    /// moved backwards, and each restart records and fences per slot.
    @Test func killNineRestartsEndWithEveryKeyExact() throws {
        let run = try ClusterRun(prefix: "eddy-cluster-kill")
        let cluster = run.cluster
        let monitor = MonotonicityMonitor(keys: events) { { keys in try keys.map { try cluster.get($0).flatMap { Int($0) } } } }
        var daemon = try run.launchDaemon()
        var random = SystemRandomNumberGenerator()
        let chunk = 20_000
        for round in 0..<5 {
            try run.produce(chunk)
            if round < 4 {
                let target = run.produced - chunk + Int.random(in: 1..<chunk, using: &random)
                _ = eventually(timeout: .seconds(30), every: .milliseconds(5)) { run.total >= target }
                daemon.kill()
                #expect(daemon.waitForExit(timeout: .seconds(10)) != nil)
                daemon = try run.launchDaemon()
            }
        }
        let exact = eventually(timeout: .seconds(60), every: .milliseconds(50)) { run.counts() == run.expected }
        #expect(exact, "cluster \(run.counts()) vs manifest \(run.expected); daemon: \(daemon.standardError.suffix(2000))")
        let (decreases, polls) = monitor.finish()
        #expect(decreases.isEmpty, "values moved backwards: \(decreases.prefix(10))")
        #expect(polls > 50)
        // Every key's slot has its marker, holding the progress of the values.
        for event in events {
            let slot = RedisHashSlot(key: Array(event.utf8))
            let node = try #require(try run.cluster.node(servingKey: event))
            let marker = try node.get(RedisClusterEpochWriter.markerKey(sink: "redis_sink", slot: slot))
            #expect(marker?.hasPrefix("v1 ") == true, "slot \(slot) of \(event): marker \(marker ?? "absent")")
        }
        #expect(daemon.waitForOutput(containing: "consuming", timeout: .seconds(30)), "\(daemon.standardError.suffix(2000))")
        daemon.send(SIGTERM)
        #expect(daemon.waitForExit(timeout: .seconds(15)) == 0, "\(daemon.standardError.suffix(2000))")
    }

    /// A master killed mid-run (its replica takes over its slots), then another master losing its data (FLUSHALL:
    /// a master restarted empty): the first is carried by the writer's redirects and retries, the second is found by
    /// the per-slot fence (markers behind their own record) and answered with a re-send. Every key ends exact.
    @Test func aMasterFailoverAndAMasterLosingItsDataEndWithEveryKeyExact() throws {
        let run = try ClusterRun(prefix: "eddy-cluster-failover", replicasPerMaster: 1)
        let daemon = try run.launchDaemon()
        try run.produce(20_000)
        _ = eventually(timeout: .seconds(30), every: .milliseconds(5)) { run.total >= 5_000 }
        // Failover: the master of `click`'s slot dies; its replica is promoted after the node timeout.
        let failed = try #require(run.cluster.nodes.firstIndex { $0.port == (try? run.cluster.node(servingKey: "click"))??.port })
        run.cluster.nodes[failed].kill()
        try run.produce(20_000)
        try run.cluster.awaitHealthy()
        #expect(try run.cluster.node(servingKey: "click")?.port != run.cluster.nodes[failed].port)
        let afterFailover = eventually(timeout: .seconds(60), every: .milliseconds(50)) { run.counts() == run.expected }
        #expect(afterFailover, "after the failover: cluster \(run.counts()) vs manifest \(run.expected); daemon: \(daemon.standardError.suffix(2000))")

        // A master losing its data while the daemon runs: keys and markers of its slots vanish.
        let emptied = try #require(try run.cluster.node(servingKey: "scroll"))
        try emptied.flushAll()
        try run.produce(10_000)
        let exact = eventually(timeout: .seconds(60), every: .milliseconds(50)) { run.counts() == run.expected }
        #expect(exact, "after the flush: cluster \(run.counts()) vs manifest \(run.expected); daemon: \(daemon.standardError.suffix(2000))")
        #expect(daemon.standardError.contains("re-sending the whole view"), "\(daemon.standardError.suffix(2000))")
        daemon.send(SIGTERM)
        #expect(daemon.waitForExit(timeout: .seconds(15)) == 0, "\(daemon.standardError.suffix(2000))")
    }

    /// What a reader sees, as documented: a key and its slot's marker move together (read in one `MULTI`/`EXEC` on
    /// the slot's master, the value always equals the count the marker's offsets stand for), and no key moves
    /// backwards. Partition 0 carries only `click` and partition 1 only `scroll`, so a count is the marker's offset.
    @Test func aReaderSeesEachKeyAtItsSlotMarkersProgress() throws {
        let run = try ClusterRun(prefix: "eddy-cluster-reader", partitions: 2)
        let daemon = try run.launchDaemon()
        var configuration = KafkaProducerConfiguration(bootstrapServers: run.broker.bootstrapServers)
        configuration.linger = .milliseconds(1)
        let producer = try KafkaProducer.make(configuration: configuration)
        let reader = SlotReader(cluster: run.cluster, keys: ["click": 0, "scroll": 1])
        var sent: [Int32: Int] = [0: 0, 1: 0]
        #expect(daemon.waitForOutput(containing: "consuming", timeout: .seconds(30)), "\(daemon.standardError.suffix(2000))")
        for batch in 0..<30 {
            for index in 0..<100 {
                let partition = Int32((batch + index) % 2)
                let payload = #"{"event_timestamp": "2026-11-24 17:00:03", "user": "u\#(index)", "page": "p", "event": "\#(partition == 0 ? "click" : "scroll")"}"#
                try Array(payload.utf8).withUnsafeBytes { try producer.send(topic: "test", partition: partition, payload: $0) }
                sent[partition, default: 0] += 1
            }
            try producer.flush(timeout: .seconds(10))
            // Each batch in epochs of its own, so that the reader sees many.
            _ = eventually(timeout: .seconds(10), every: .milliseconds(5)) { (run.counts()["click"] ?? 0) + (run.counts()["scroll"] ?? 0) >= sent[0]! + sent[1]! }
        }
        let exact = eventually(timeout: .seconds(60), every: .milliseconds(20)) {
            run.counts()["click"] == sent[0] && run.counts()["scroll"] == sent[1]
        }
        #expect(exact, "cluster \(run.counts()) vs sent \(sent); daemon: \(daemon.standardError.suffix(2000))")
        let seen = reader.finish()
        #expect(seen.violations.isEmpty, "\(seen.violations.prefix(10))")
        #expect(seen.distinctValues > 10, "the reader saw \(seen.distinctValues) distinct values in \(seen.reads) reads")
        daemon.send(SIGTERM)
        #expect(daemon.waitForExit(timeout: .seconds(15)) == 0, "\(daemon.standardError.suffix(2000))")
    }
}

/// Reads each key with its slot's marker in one transaction on the slot's master, and checks that the value is the
/// count the marker's offset of the key's partition stands for, and that no value moves backwards.
private final class SlotReader: @unchecked Sendable {
    private let cluster: RedisTestCluster
    private let keys: [String: Int32]
    private let state = Mutex<(last: [String: Int], values: Set<String>, violations: [String], reads: Int)>(([:], [], [], 0))
    private let stopped = Atomic<Bool>(false)
    private let done = DispatchSemaphore(value: 0)

    init(cluster: RedisTestCluster, keys: [String: Int32]) {
        self.cluster = cluster
        self.keys = keys
        Thread.detachNewThread { [self] in run() }
    }

    private func run() {
        defer { done.signal() }
        var connections: [Int: RedisConnection] = [:]
        while !stopped.load(ordering: .relaxed) {
            for (key, partition) in keys {
                guard let node = try? cluster.node(servingKey: key) else { continue }
                do {
                    if connections[node.port] == nil { connections[node.port] = try node.connect() }
                    let connection = connections[node.port]!
                    let marker = RedisClusterEpochWriter.markerKey(sink: "redis_sink", slot: RedisHashSlot(key: Array(key.utf8)))
                    _ = try connection.command("MULTI")
                    _ = try connection.command("GET", key)
                    _ = try connection.command("GET", marker)
                    guard case .array(let replies) = try connection.command("EXEC"), replies.count == 2 else { continue }
                    check(key: key, partition: partition, value: replies[0].text, marker: replies[1].text)
                } catch {
                    connections[node.port]?.close()
                    connections[node.port] = nil
                }
            }
            usleep(1_000)
        }
        connections.values.forEach { $0.close() }
    }

    private func check(key: String, partition: Int32, value: String?, marker: String?) {
        state.withLock { state in
            state.reads += 1
            guard let value else {
                if marker != nil { state.violations.append("\(key) absent under marker \(marker!)") }
                if let last = state.last[key] { state.violations.append("\(key) vanished after \(last)") }
                return
            }
            guard let count = Int(value), let marker else {
                state.violations.append("\(key) = \(value) with marker \(marker ?? "absent")")
                return
            }
            state.values.insert("\(key)=\(count)")
            // The marker: `v1 <epoch> <form> test/0=<next offset> test/1=<next offset>`.
            let offset = marker.split(separator: " ").first { $0.hasPrefix("test/\(partition)=") }.flatMap { Int($0.split(separator: "=")[1]) } ?? 0
            if count != offset { state.violations.append("\(key) = \(count) under a marker at offset \(offset) (\(marker))") }
            if let last = state.last[key], count < last { state.violations.append("\(key): \(last) → \(count)") }
            state.last[key] = count
        }
    }

    func finish() -> (violations: [String], distinctValues: Int, reads: Int) {
        stopped.store(true, ordering: .relaxed)
        done.wait()
        return state.withLock { ($0.violations, $0.values.count, $0.reads) }
    }
}
