#if canImport(Glibc)
import Glibc
#endif
import EddyHTTP
import EddyKafka
import EddyRedis
import EddyWorkload
import Foundation
import Logging

/// One scenario of `eddy bench`, against a dev broker and a Redis of its own:
///
/// 1. `eddy produce` writes the messages (as fast as it can), and the broker is checked to hold every one;
/// 2. the references read them: librdkafka's floor (a consumer in this process that only counts) and `kcat -q`;
/// 3. `eddy run` reads them from an empty state directory, timed from its start until it logs that it caught up;
///    its CPU and memory come from /proc, its groups from `/api/status`;
/// 4. while it runs caught up, the latency phase (`BenchLatencyProbe`) at half its rate; then Redis's key writes
///    over the daemon's whole run from `INFO`;
/// 5. SIGTERM; Redis must equal the views replayed from every message produced (`BenchExpectation`);
/// 6. `eddy run` again on the final state, timed until caught up (the restart), then SIGTERM.
struct BenchRun {
    let scenario: BenchScenario
    let messages: Int
    let partitions: Int
    let options: Options
    let processes: ChildProcesses
    let stop: StopFlag

    struct Options {
        var checkpointInterval: Double
        var latencySeconds: Double
        var latencyRate: Double?
        var seed: UInt64
        /// The seed scenario's restarted anonymous memory in this invocation, the base of bytes per key.
        var baselineAnonymousBytes: Int?
    }

    init(scenario: BenchScenario, messagesBase: Int, options: Options, directory: String, stop: StopFlag) throws {
        self.scenario = scenario
        messages = scenario.messageCount(base: messagesBase)
        partitions = scenario.partitionCount(messages: messages)
        self.options = options
        try FileManager.default.createDirectory(atPath: directory, withIntermediateDirectories: true)
        processes = ChildProcesses(directory: directory)
        self.stop = stop
    }

    private func say(_ text: String) { printToStandardError("eddy bench: \(scenario.name): \(text)") }

    private func checkInterrupted() throws { if stop.isSet { throw BenchError(reason: "interrupted; every child stopped") } }

    func run() throws -> BenchReport.Scenario {
        defer { processes.stopAll() }
        let redisPort = LoopbackPort.unused()
        _ = try processes.startRedis(port: redisPort)
        let brokers = try processes.startBroker(topic: BenchScenario.topic, partitions: partitions).bootstrap

        say("producing \(messages) messages on \(partitions) partition(s)")
        try produce(brokers: brokers)
        let ends = try checkBrokerHoldsEveryMessage(brokers: brokers)
        try checkInterrupted()

        say("librdkafka floor and kcat")
        let floor = try BenchFloorConsumer(brokers: brokers, partitions: partitions, messages: messages).run(stop: stop)
        let kcat = try runKcat(brokers: brokers)
        try checkInterrupted()

        say("eddy run until caught up")
        let pipelinePath = processes.directory + "/pipeline.sql"
        try scenario.pipeline(brokers: brokers, redisURL: "redis://127.0.0.1:\(redisPort)").write(toFile: pipelinePath, atomically: true, encoding: .utf8)
        let state = processes.directory + "/state"
        let httpPort = LoopbackPort.unused()
        let started = ContinuousClock.now
        let daemon = try startDaemon("run", pipeline: pipelinePath, state: state, httpPort: httpPort)
        guard let caughtUpAt = processes.waitForLog("run", containing: "caught up with the source", while: daemon, timeout: .seconds(600), until: stop) else {
            try checkInterrupted()
            throw BenchError(reason: "eddy run did not catch up (\(processes.exit(of: daemon).map(String.init(describing:)) ?? "still running after 10 min")):\n\(processes.logTail("run"))")
        }
        let caughtUpRate = BenchReport.Rate(
            messages: messages, seconds: (caughtUpAt - started) / .seconds(1), cpuSeconds: ChildProcesses.usage(of: daemon).cpuSeconds)
        // The daemon's work for these messages ends when Redis holds them, not when it logs that it caught up: the
        // last epochs are still being committed and written then (with catch-up epochs of up to a million groups,
        // most of the checkpoint and sink threads' work). Its rate and CPU are taken at that moment.
        try waitUntilRedisHolds(ends: ends, redisPort: redisPort, daemon: daemon)
        let inRedisUsage = ChildProcesses.usage(of: daemon)
        let cpuByThread = ChildProcesses.cpuSecondsByThread(of: daemon).mapValues { $0 / (Double(messages) / 1e6) }
        let inRedisSeconds = (ContinuousClock.now - started) / .seconds(1)
        let status = try JSONDecoder().decode(PipelineStatus.self, from: BenchHTTP.get(port: httpPort, path: "/api/status"))
        let daemonRate = BenchReport.Rate(messages: messages, seconds: inRedisSeconds, cpuSeconds: inRedisUsage.cpuSeconds)
        try checkInterrupted()

        // At most 10,000 messages/s per partition: the dev broker keeps about 35,000 natural messages per partition
        // and drops the oldest beyond, so a daemon a checkpoint behind must still find what it has not read.
        let rate = options.latencyRate ?? min(200_000, Double(partitions * 10_000), max(100, (daemonRate.messagesPerSecond / 2).rounded()))
        let latencyCount = max(1, Int(rate * options.latencySeconds))
        let latencySink = scenario.views.last!.sinkName
        say("latency: \(latencyCount) messages at \(Int(rate)) msg/s")
        let latency = try BenchLatencyProbe(
            brokers: brokers, partitions: partitions, startOffsets: ends, redisPort: redisPort, sink: latencySink, rate: rate,
            count: latencyCount, seed: options.seed &+ 1, users: scenario.users, padding: scenario.padding
        ).run(stop: stop)

        let metrics = String(decoding: try BenchHTTP.get(port: httpPort, path: "/metrics"), as: UTF8.self)
        let peakResident = ChildProcesses.usage(of: daemon).peakResidentBytes
        // Over the daemon's whole run: at the moment it catches up, its first checkpoint may not be in Redis yet.
        let redisCounters = try redisWriteCounters(port: redisPort)
        let daemonSeconds = (ContinuousClock.now - started) / .seconds(1)
        guard processes.stop(daemon, grace: .seconds(60)) == .status(0) else {
            throw BenchError(reason: "eddy run did not stop cleanly on SIGTERM:\n\(processes.logTail("run"))")
        }
        try checkInterrupted()

        say("checking Redis against the replayed views")
        var expectation = BenchExpectation(scenario: scenario)
        expectation.replay(seed: options.seed, count: messages)
        expectation.replay(seed: options.seed &+ 1, count: latency.sent)
        let differences = try compareRedis(port: redisPort, expected: expectation.redisContents)

        say("restart on the final state")
        let restartStarted = ContinuousClock.now
        let restarted = try startDaemon("restart", pipeline: pipelinePath, state: state, httpPort: LoopbackPort.unused())
        guard let restartCaughtUp = processes.waitForLog("restart", containing: "caught up with the source", while: restarted, timeout: .seconds(300), until: stop) else {
            try checkInterrupted()
            throw BenchError(reason: "the restarted eddy run did not catch up:\n\(processes.logTail("restart"))")
        }
        let restartedAnonymous = ChildProcesses.usage(of: restarted).anonymousResidentBytes
        processes.stop(restarted, grace: .seconds(60))

        let groupsByView = Dictionary(status.views.map { ($0.name, $0.groups) }, uniquingKeysWith: +)
        let groups = groupsByView.values.reduce(0, +)
        let checkpoints = BenchHTTP.Histogram(named: "eddy_checkpoint_duration_seconds", in: metrics)
        let floorRate = floor.rate.messagesPerSecond
        let throughputVersusFloor = caughtUpRate.messagesPerSecond / floorRate
        let throughputToRedisVersusFloor = daemonRate.messagesPerSecond / floorRate
        return BenchReport.Scenario(
            name: scenario.name, summary: scenario.summary, messages: messages, averageMessageBytes: floor.averageBytes, partitions: partitions,
            groupsByView: groupsByView, groups: groups, floor: floor.rate, kcat: kcat, daemon: daemonRate, caughtUp: caughtUpRate,
            daemonCPUByThread: cpuByThread,
            throughputVersusFloor: throughputVersusFloor, throughputToRedisVersusFloor: throughputToRedisVersusFloor,
            cpuVersusFloor: daemonRate.cpuSecondsPerMillion / floor.rate.cpuSecondsPerMillion,
            throughputVersusKcat: kcat.map { caughtUpRate.messagesPerSecond / $0.messagesPerSecond },
            cpuVersusKcat: kcat.map { daemonRate.cpuSecondsPerMillion / $0.cpuSecondsPerMillion },
            latency: BenchReport.Latency(
                rate: rate, messages: latency.sent, sink: latencySink, endToEnd: BenchReport.Percentiles(sortedSeconds: latency.latencies)),
            checkpoints: BenchReport.Checkpoints(
                count: Int(checkpoints?.count ?? 0),
                meanMilliseconds: checkpoints.flatMap { $0.count > 0 ? $0.sum / $0.count * 1000 : nil },
                p50Milliseconds: checkpoints?.quantile(0.5).map { $0 * 1000 }, p99Milliseconds: checkpoints?.quantile(0.99).map { $0 * 1000 }),
            restartSeconds: (restartCaughtUp - restartStarted) / .seconds(1),
            memory: BenchReport.Memory(
                peakResidentBytes: peakResident, restartedAnonymousBytes: restartedAnonymous,
                bytesPerGroupKey: options.baselineAnonymousBytes.flatMap { base in
                    groups >= 1_000 ? Double(restartedAnonymous - base) / Double(groups - 5) : nil
                }),
            redis: BenchReport.Redis(
                keyWritesPerSecond: Double(redisCounters.keyWrites) / daemonSeconds, transactionsPerSecond: Double(redisCounters.transactions) / daemonSeconds),
            exact: differences.isEmpty, differences: differences)
    }

    // MARK: - Steps

    private func produce(brokers: String) throws {
        let manifestPath = processes.directory + "/manifest.json"
        var arguments = [
            "produce", "--brokers", brokers, "--topic", BenchScenario.topic, "--count", String(messages), "--rate", "0", "--seed", String(options.seed),
            "--users", String(scenario.users), "--manifest", manifestPath,
        ]
        if scenario.padding > 0 { arguments += ["--pad", String(scenario.padding)] }
        let pid = try processes.spawn("produce", arguments + ["--exit-with-parent", String(getpid())])
        while processes.exit(of: pid) == nil {
            if stop.isSet {
                processes.stop(pid, grace: .seconds(2))
                try checkInterrupted()
            }
            usleep(5_000)
        }
        guard processes.exit(of: pid) == .status(0), let data = FileManager.default.contents(atPath: manifestPath),
            let manifest = try? JSONDecoder().decode(ProduceManifest.self, from: data), manifest.total == messages
        else { throw BenchError(reason: "eddy produce did not write all \(messages) messages:\n\(processes.logTail("produce"))") }
    }

    /// The dev broker drops a partition's oldest messages past about 5 MB: every reader must see all of them.
    /// Returns each partition's end offset.
    private func checkBrokerHoldsEveryMessage(brokers: String) throws -> [Int64] {
        var configuration = KafkaConsumerConfiguration(bootstrapServers: brokers, topic: BenchScenario.topic)
        configuration.startupMode = .earliest
        let probe = try KafkaConsumer.make(configuration: configuration)
        defer { probe.close() }
        var ends: [Int64] = []
        for partition in 0..<Int32(partitions) {
            let (low, high) = try probe.watermarks(partition: partition)
            guard low == 0 else {
                throw BenchError(
                    reason: "the dev broker dropped the first \(low) messages of partition \(partition) (it keeps about 5 MB per partition): "
                        + "use fewer --messages")
            }
            ends.append(high)
        }
        guard ends.reduce(0, +) == Int64(messages) else { throw BenchError(reason: "the broker holds \(ends.reduce(0, +)) messages, not \(messages)") }
        return ends
    }

    /// `kcat -C -e -q` to /dev/null, timed; nil when kcat is not installed.
    private func runKcat(brokers: String) throws -> BenchReport.Rate? {
        guard let kcat = ChildProcesses.executable(named: "kcat") else { return nil }
        let started = ContinuousClock.now
        let pid = try processes.spawn(
            "kcat", executable: kcat, ["-C", "-b", brokers, "-t", BenchScenario.topic, "-o", "beginning", "-e", "-q"], output: "/dev/null")
        guard let exit = processes.waitForExit(pid, timeout: .seconds(600)) else {
            processes.stop(pid, grace: .seconds(1))
            throw BenchError(reason: "kcat did not finish reading the topic in 600 s")
        }
        let seconds = (ContinuousClock.now - started) / .seconds(1)
        guard exit == .status(0) else { throw BenchError(reason: "kcat failed (\(exit)):\n\(processes.logTail("kcat"))") }
        return BenchReport.Rate(messages: messages, seconds: seconds, cpuSeconds: processes.cpuSeconds(ofExited: pid) ?? 0)
    }

    /// Waits until every sink's epoch marker in Redis is at `ends` (every produced message's effect is in Redis).
    private func waitUntilRedisHolds(ends: [Int64], redisPort: Int, daemon: pid_t) throws {
        let pollers = scenario.views.map { view in
            BenchMarkerPoller(url: RedisURL(host: "127.0.0.1", port: redisPort), sink: view.sinkName, topic: BenchScenario.topic, partitions: partitions)
        }
        defer { pollers.forEach { $0.stop() } }
        let deadline = ContinuousClock.now + .seconds(120)
        while !pollers.allSatisfy({ $0.hasReached(ends) }) {
            try checkInterrupted()
            guard processes.exit(of: daemon) == nil, ContinuousClock.now < deadline else {
                throw BenchError(reason: "eddy run caught up but Redis did not show every message within 120 s:\n\(processes.logTail("run"))")
            }
            usleep(2_000)
        }
    }

    private func startDaemon(_ name: String, pipeline: String, state: String, httpPort: Int) throws -> pid_t {
        try processes.spawn(
            name, ["run", pipeline, "--state-dir", state, "--http", "127.0.0.1:\(httpPort)", "--checkpoint-interval", String(options.checkpointInterval)])
    }

    private func redisConnection(port: Int) throws -> RedisConnection {
        do {
            return try RedisConnection.connect(
                url: RedisURL(host: "127.0.0.1", port: port), connectTimeout: .seconds(2), commandTimeout: .seconds(30), logger: Logger(label: "eddy.bench"))
        } catch {
            throw BenchError(reason: "the bench's Redis on 127.0.0.1:\(port) does not answer: \(error.reason)")
        }
    }

    /// Keys changed so far (persistence is off, so `rdb_changes_since_last_save` counts every one since start) and
    /// `EXEC`s run.
    private func redisWriteCounters(port: Int) throws -> (keyWrites: Int, transactions: Int) {
        let connection = try redisConnection(port: port)
        defer { connection.close() }
        let info = try connection.command("INFO", "all").text ?? ""
        func field(_ name: String) -> Substring? {
            info.split(whereSeparator: \.isNewline).first { $0.hasPrefix(name) }.map { $0.dropFirst(name.count) }
        }
        let keyWrites = field("rdb_changes_since_last_save:").flatMap { Int($0) } ?? 0
        // cmdstat_exec:calls=N,usec=…
        let transactions = field("cmdstat_exec:calls=").flatMap { Int($0.prefix { $0.isNumber }) } ?? 0
        return (keyWrites, transactions)
    }

    /// Every expected key with its value, and nothing else but the sinks' markers; at most 20 differences.
    private func compareRedis(port: Int, expected: [(sink: String, values: [String: String])]) throws -> [BenchReport.Difference] {
        let connection = try redisConnection(port: port)
        defer { connection.close() }
        var differences: [BenchReport.Difference] = []
        var expectedKeys = 0
        for (_, values) in expected {
            expectedKeys += values.count
            let keys = Array(values.keys)
            for start in stride(from: 0, to: keys.count, by: 10_000) {
                let batch = keys[start..<min(keys.count, start + 10_000)]
                guard case .array(let replies) = try connection.command([Array("MGET".utf8)] + batch.map { Array($0.utf8) }) else {
                    throw BenchError(reason: "Redis answered MGET with no array")
                }
                for (key, reply) in zip(batch, replies) where reply.text != values[key] && differences.count < 20 {
                    differences.append(.init(key: key, expected: values[key], found: reply.text))
                }
            }
        }
        guard case .integer(let size) = try connection.command("DBSIZE") else { throw BenchError(reason: "Redis answered DBSIZE with no integer") }
        let extra = Int(size) - expectedKeys - expected.count
        if extra != 0 {
            differences.append(.init(key: "(key count)", expected: "\(expectedKeys) keys and \(expected.count) marker(s)", found: "\(size) keys"))
        }
        return differences
    }
}

/// librdkafka's own floor (DESIGN §9): a consumer of every partition through EddyKafka that only counts the
/// messages (touching their last byte, as a decoder would), in this process; CPU from `getrusage`.
struct BenchFloorConsumer {
    var brokers: String
    var partitions: Int
    var messages: Int

    struct Result {
        var rate: BenchReport.Rate
        var averageBytes: Double
    }

    /// Against the mock cluster an in-process consumer sometimes stops receiving partway (seen in the keys
    /// benchmark): an attempt without a message for 5 s is abandoned and the floor read again.
    func run(stop: StopFlag) throws -> Result {
        for _ in 1...4 {
            if let result = try attempt(stop: stop) { return result }
            if stop.isSet { throw BenchError(reason: "interrupted; every child stopped") }
            printToStandardError("eddy bench: the floor consumer stalled; reading again")
        }
        throw BenchError(reason: "the floor consumer stalled four times")
    }

    private func attempt(stop: StopFlag) throws -> Result? {
        var configuration = KafkaConsumerConfiguration(bootstrapServers: brokers, topic: BenchScenario.topic)
        configuration.startupMode = .earliest
        // As the daemon's pipeline sets it (see `BenchScenario.fetchMaxBytes`).
        configuration.clientProperties = [("fetch.max.bytes", String(BenchScenario.fetchMaxBytes))]
        let cpuBefore = Self.processCPUSeconds()
        let started = ContinuousClock.now
        let consumer = try KafkaConsumer.make(configuration: configuration)
        defer { consumer.close() }
        try consumer.assign(partitions: Array(0..<Int32(partitions)))
        var received = 0
        var bytes = 0
        var checksum: UInt8 = 0
        var lastProgress = ContinuousClock.now
        var lastReceived = 0
        var lastError: String?
        while received < messages {
            if received != lastReceived {
                lastReceived = received
                lastProgress = .now
            } else if ContinuousClock.now - lastProgress > .seconds(5) || stop.isSet {
                printToStandardError("eddy bench: the floor consumer read \(received) of \(messages) messages, then nothing for 5 s" + (lastError.map { "; last error: \($0)" } ?? "")
                        + (consumer.lastClientError.map { "; last client error: \($0.reason)" } ?? ""))
                return nil
            }
            try consumer.consumeBatch(maxMessages: 10_000, timeout: .milliseconds(100)) { batch in
                for index in 0..<batch.count {
                    if batch.isError(at: index) {
                        if lastError == nil { lastError = batch.error(at: index).map { "\($0)" } }
                        continue
                    }
                    let payload = batch.payload(at: index)
                    checksum ^= payload.last ?? 0
                    bytes += payload.count
                    received += 1
                }
            }
        }
        let seconds = (ContinuousClock.now - started) / .seconds(1)
        let cpu = Self.processCPUSeconds() - cpuBefore
        withExtendedLifetime(checksum) {}
        return Result(rate: BenchReport.Rate(messages: messages, seconds: seconds, cpuSeconds: cpu), averageBytes: Double(bytes) / Double(max(1, received)))
    }

    private static func processCPUSeconds() -> Double {
        var usage = rusage()
        getrusage(__rusage_who_t(RUSAGE_SELF.rawValue), &usage)
        return Double(usage.ru_utime.tv_sec) + Double(usage.ru_utime.tv_usec) / 1e6 + Double(usage.ru_stime.tv_sec) + Double(usage.ru_stime.tv_usec) / 1e6
    }
}
