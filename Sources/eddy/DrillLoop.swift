#if canImport(Glibc)
import Glibc
#endif
import EddyEngine
import EddyKafka
import EddyRedis
import EddyWorkload
import Foundation
import Logging

/// One run of `eddy drill`: starts the children, produces in paced chunks, injects the schedule's faults one at a
/// time (each once the pipeline recovered from the previous one), then checks the end result.
struct DrillLoop {
    /// Where the fault schedule stands.
    private enum Phase {
        /// Waiting `until` before injecting `fault`.
        case waiting(until: ContinuousClock.Instant, fault: DrillFault)
        /// A stop or pause in force until `liftAt`.
        case active(index: Int, fault: DrillFault, liftAt: ContinuousClock.Instant)
        /// The daemon runs with a crash point armed; given up on at `deadline` (the point was not reached).
        case armed(index: Int, fault: DrillFault, deadline: ContinuousClock.Instant)
        /// Lifted at `liftedAt`: waiting for Redis's total to pass `threshold` (the fault's report index, nil for
        /// the start-up, when the drill waits for the daemon's first write).
        case recovering(index: Int?, liftedAt: ContinuousClock.Instant, threshold: Int)
        case done
    }

    /// How long a fault may take to recover before the drill records it as not recovered and goes on.
    private static let recoveryBound: Duration = .seconds(30)
    /// How far Redis may lag behind what was produced before the next chunk waits: well under what 8 partitions of
    /// the dev broker keep (about 35 000 of these messages each), so that no unread message is ever dropped.
    private static let maximumLagPerPartition = 12_000
    /// Brokers of the drill's dev broker, so that a broker can go down and leaders can move.
    static let brokerCount = 3
    /// How long an armed daemon may run without reaching its crash point.
    private static let crashBound: Duration = .seconds(30)

    private let command: DrillCommand
    private let target: DrillTarget
    private let pipelinePath: String
    private let processes: ChildProcesses
    private var schedule: DrillSchedule
    private let interrupted: StopFlag
    private let started = ContinuousClock.now
    private let redisPort: Int
    private let brokers: String
    private let brokerControl: DevBrokerChannel
    private let monitor: DrillMonitor
    private var redisProcess: pid_t
    private var daemon: pid_t
    private var phase: Phase = .done
    private var faults: [DrillReport.Fault] = []
    private var producer: (pid: pid_t, chunk: Int, manifest: String)?
    private var chunks = 0
    private var produced = 0
    private var expected: [String: Int] = [:]
    /// Every message produced (without its time), for a pipeline checked by `DrillViews`.
    private var messages: [String] = []
    private var lastProgress = ContinuousClock.now
    private let showsProgress = isatty(2) == 1

    init(command: DrillCommand, target: DrillTarget, pipelinePath: String, processes: ChildProcesses, schedule: DrillSchedule, interrupted: StopFlag) throws {
        self.command = command
        self.target = target
        self.pipelinePath = pipelinePath
        self.processes = processes
        self.schedule = schedule
        self.interrupted = interrupted
        redisPort = LoopbackPort.unused()
        redisProcess = try processes.startRedis(port: redisPort)
        let broker = try processes.startBroker(topic: target.topic, partitions: command.partitions, brokers: Self.brokerCount, control: true)
        brokers = broker.bootstrap
        brokerControl = broker.control!
        monitor = DrillMonitor(url: RedisURL(host: "127.0.0.1", port: redisPort), keys: target.countKeys, markerKeys: target.markerKeys, started: started)
        daemon = 0
        daemon = try startDaemon()
        phase = .recovering(index: nil, liftedAt: .now, threshold: 0)
    }

    private var elapsed: Double { (ContinuousClock.now - started) / .seconds(1) }

    /// Starts `eddy run`; with `crashPoint`, armed to die the `nth` time it reaches it.
    private func startDaemon(crashPoint: (point: CrashPoint, nth: Int)? = nil) throws -> pid_t {
        var environment = [DrillSeedView.brokersVariable: brokers, DrillSeedView.redisVariable: "redis://127.0.0.1:\(redisPort)"]
        // Always set, so that a value in the drill's own environment never arms a point by accident.
        environment[CrashPoint.environmentVariable] = crashPoint.map { "\($0.point.name):\($0.nth)" } ?? ""
        environment[UnsafeFenceSwitch.environmentVariable] = command.unsafeDisableFence ? "1" : ""
        return try processes.spawn(
            "run", ["run", pipelinePath, "--state-dir", processes.directory + "/state", "--http", "off", "--checkpoint-interval", "0.2"],
            environment: environment)
    }

    mutating func run() throws -> DrillReport {
        while !(isDone && producer == nil) {
            if interrupted.isSet { throw DrillError(reason: "interrupted; every child stopped") }
            if let exit = processes.exit(of: daemon) {
                guard case .armed(let index, let fault, _) = phase, exit == .signal(SIGKILL) else {
                    throw DrillError(reason: "eddy run exited by itself (\(exit)); the end of its log:\n\(processes.logTail("run"))", status: 1)
                }
                // Died at its crash point: started again, unarmed. Recovered once Redis passes what it held then.
                faults[index].crashPointReached = true
                thresholds[index] = max(thresholds[index], monitor.snapshot.progress)
                if fault.kind == .daemonStaleState {
                    // The copy: a checkpoint committed and not yet acknowledged, as of now; Redis moves on from here.
                    try? FileManager.default.removeItem(atPath: staleCopyPath)
                    try FileManager.default.copyItem(atPath: processes.directory + "/state/data.mdb", toPath: staleCopyPath)
                    daemon = try startDaemon()
                    phase = .active(index: index, fault: fault, liftAt: .now + fault.length)
                } else {
                    daemon = try startDaemon()
                    phase = .recovering(index: index, liftedAt: .now, threshold: thresholds[index])
                }
            }
            try stepProduction(producing: !isDone)
            try stepFaults()
            showProgress()
            usleep(2_000)
        }
        return try finish()
    }

    /// A broker goes down, or is down: no chunk is produced meanwhile. librdkafka's mock cluster can append a produce
    /// request and then lose its reply when a broker goes down, and the producer's retry is appended again even
    /// with idempotence (seen: 9 duplicates in 20 broker-down faults), which would make the manifests wrong.
    private var isBrokerDownDue: Bool {
        switch phase {
        case .waiting(_, let fault), .active(_, let fault, _): fault.kind == .brokerDown
        default: false
        }
    }

    /// Every fault injected and recovered from (or given up on): production stops.
    private var isDone: Bool { if case .done = phase { true } else { false } }

    // MARK: - Load

    /// Collects a finished chunk; starts the next one while `producing`, once Redis is close enough behind.
    private mutating func stepProduction(producing: Bool) throws {
        if let running = producer, let exit = processes.exit(of: running.pid) {
            producer = nil
            guard exit == .status(0), let data = FileManager.default.contents(atPath: running.manifest),
                let manifest = try? JSONDecoder().decode(ProduceManifest.self, from: data), manifest.failed == 0, manifest.unacknowledged == 0
            else {
                throw DrillError(reason: "eddy produce (chunk \(running.chunk)) failed (\(exit)), so the expected result is unknown:\n\(processes.logTail("produce"))")
            }
            produced += manifest.total
            expected.merge(manifest.events.filter { $0.value > 0 }, uniquingKeysWith: +)
            if case .views = target { messages += DrillViews.messages(seed: schedule.producerSeed(chunk: running.chunk), count: manifest.total) }
        }
        let chunkSize = command.rate
        let maximumLag = Self.maximumLagPerPartition * command.partitions
        guard producing, producer == nil, monitor.snapshot.progress >= produced + chunkSize - maximumLag, !isBrokerDownDue else { return }
        let manifest = processes.directory + "/manifest-\(chunks).json"
        let pid = try processes.spawn(
            "produce",
            [
                "produce", "--brokers", brokers, "--topic", target.topic, "--count", String(chunkSize), "--rate", String(command.rate),
                "--seed", String(schedule.producerSeed(chunk: chunks)), "--manifest", manifest, "--idempotent", "--exit-with-parent", String(getpid()),
            ])
        producer = (pid, chunks, manifest)
        chunks += 1
    }

    // MARK: - Faults

    private mutating func stepFaults() throws {
        let now = ContinuousClock.now
        switch phase {
        case .waiting(let until, let fault) where now >= until && !(fault.kind == .brokerDown && producer != nil):
            try inject(fault)
        case .active(let index, let fault, let liftAt) where now >= liftAt:
            try lift(fault)
            // Recovered once Redis passes what it held before the fault and when it ended (writes may go on meanwhile).
            thresholds[index] = max(thresholds[index], monitor.snapshot.progress)
            phase = .recovering(index: index, liftedAt: .now, threshold: thresholds[index])
        case .armed(let index, _, let deadline) where now >= deadline:
            // Never reached: killed (the point stays armed in that process) and started again, unarmed.
            faults[index].crashPointReached = false
            try restartDaemonAfterKill()
            phase = .recovering(index: index, liftedAt: .now, threshold: thresholds[index])
        case .recovering(let index, let liftedAt, let threshold):
            let recovered = monitor.snapshot.progress > threshold
            guard recovered || now - liftedAt > Self.recoveryBound else { return }
            if let index, recovered { faults[index].recoverySeconds = (now - liftedAt) / .seconds(1) }
            scheduleNext()
        default:
            break
        }
    }

    /// Redis's total just before each fault.
    private var thresholds: [Int] = []

    private mutating func scheduleNext() {
        let limit = command.faults ?? (command.duration == nil ? 24 : Int.max)
        let outOfTime = command.duration.map { elapsed >= $0 } ?? false
        guard faults.count < limit, !outOfTime, let fault = schedule.next() else {
            phase = .done
            return
        }
        phase = .waiting(until: .now + fault.delay, fault: fault)
    }

    private mutating func inject(_ fault: DrillFault) throws {
        let index = faults.count
        thresholds.append(monitor.snapshot.progress)
        faults.append(DrillReport.Fault(kind: fault.kind, atSeconds: elapsed, lengthSeconds: fault.length / .seconds(1)))
        faults[index].detail = detail(of: fault)
        switch fault.kind {
        case .daemonKill:
            try restartDaemonAfterKill()
        case .crashAfterCommit, .crashAfterExec, .crashMidConsumption, .crashWholeViewResend, .crashStartupRestore, .daemonStaleState:
            // Stopped cleanly (not a fault of its own), then started armed.
            let exit = processes.stop(daemon, grace: .seconds(30))
            guard exit == .status(0) else {
                throw DrillError(reason: "eddy run did not stop cleanly on SIGTERM (\(exit.map(String.init(describing:)) ?? "still running")):\n\(processes.logTail("run"))", status: 1)
            }
            if fault.kind == .crashWholeViewResend {
                // Redis loses its data: the next write finds no marker and re-sends the whole view.
                try monitor.forgetValues { _ = try redisConnection().command("FLUSHALL") }
            }
            daemon = try startDaemon(crashPoint: (fault.kind.crashPoint ?? .afterCommit, fault.nth))
            phase = .armed(index: index, fault: fault, deadline: .now + Self.crashBound)
            return
        case .redisOutOfMemory:
            // noeviction: every write is refused with OOM (reads still answer), nothing is dropped.
            let redis = try redisConnection()
            _ = try redis.command("CONFIG", "SET", "maxmemory-policy", "noeviction")
            _ = try redis.command("CONFIG", "SET", "maxmemory", "1")
        case .brokerDown:
            try brokerControl.send(.brokerDown(fault.broker))
        case .brokerLeaderMoved:
            try brokerControl.send(.leader(topic: target.topic, partition: fault.partition, broker: fault.broker))
        case .brokerFetchErrors:
            try brokerControl.send(.requestErrors(apiKey: DevBrokerControl.fetchAPIKey, codes: fault.errorCodes))
        case .daemonStop:
            processes.send(SIGSTOP, to: daemon)
        case .redisRestartEmpty:
            try monitor.forgetValues {
                // SHUTDOWN's connection closes without a reply: the error is expected.
                _ = try? redisConnection().command("SHUTDOWN", "NOSAVE")
                if processes.waitForExit(redisProcess, timeout: .seconds(5)) == nil { processes.stop(redisProcess, grace: .seconds(1)) }
                usleep(UInt32(fault.length / .microseconds(1)))
                redisProcess = try processes.startRedis(port: redisPort)
            }
        case .redisPauseWrites:
            let milliseconds = max(1, Int(fault.length / .milliseconds(1)))
            _ = try redisConnection().command("CLIENT", "PAUSE", String(milliseconds), "WRITE")
        }
        phase = fault.length > .zero && fault.kind != .redisRestartEmpty
            ? .active(index: index, fault: fault, liftAt: .now + fault.length)
            : .recovering(index: index, liftedAt: .now, threshold: thresholds[index])
    }

    /// Where `daemon-stale-state` keeps its copy of the state's data file.
    private var staleCopyPath: String { processes.directory + "/stale-data.mdb" }

    /// Ends a fault in force.
    private mutating func lift(_ fault: DrillFault) throws {
        switch fault.kind {
        case .daemonStop: processes.send(SIGCONT, to: daemon)
        case .daemonStaleState:
            processes.send(SIGKILL, to: daemon)
            guard processes.waitForExit(daemon, timeout: .seconds(10)) != nil else { throw DrillError(reason: "eddy run survived kill -9 for 10 s") }
            let data = processes.directory + "/state/data.mdb"
            try? FileManager.default.removeItem(atPath: data)
            try FileManager.default.moveItem(atPath: staleCopyPath, toPath: data)
            daemon = try startDaemon()
        case .redisOutOfMemory: _ = try redisConnection().command("CONFIG", "SET", "maxmemory", "0")
        case .brokerDown: try brokerControl.send(.brokerUp(fault.broker))
        default: break
        }
    }

    private mutating func restartDaemonAfterKill() throws {
        processes.send(SIGKILL, to: daemon)
        guard processes.waitForExit(daemon, timeout: .seconds(10)) != nil else { throw DrillError(reason: "eddy run survived kill -9 for 10 s") }
        daemon = try startDaemon()
    }

    /// What the report says of a fault beyond its kind.
    private func detail(of fault: DrillFault) -> String? {
        switch fault.kind {
        case .crashAfterCommit, .crashAfterExec, .crashMidConsumption, .crashWholeViewResend, .crashStartupRestore, .daemonStaleState:
            "\(CrashPoint.environmentVariable)=\((fault.kind.crashPoint ?? .afterCommit).name):\(fault.nth)"
        case .brokerDown: "broker \(fault.broker)"
        case .brokerLeaderMoved: "partition \(fault.partition) to broker \(fault.broker)"
        case .brokerFetchErrors: "Kafka errors \(fault.errorCodes.map(String.init).joined(separator: ","))"
        default: nil
        }
    }

    private func redisConnection() throws -> RedisConnection {
        do {
            return try RedisConnection.connect(
                url: RedisURL(host: "127.0.0.1", port: redisPort), connectTimeout: .seconds(2), commandTimeout: .seconds(2), logger: Logger(label: "eddy.drill"))
        } catch {
            throw DrillError(reason: "the drill's Redis on 127.0.0.1:\(redisPort) does not answer: \(error.reason)\n\(processes.logTail("redis"))")
        }
    }

    private mutating func showProgress() {
        guard showsProgress, ContinuousClock.now - lastProgress >= .milliseconds(250) else { return }
        lastProgress = .now
        let byKind = schedule.kinds.map { kind in "\(kind.rawValue) \(faults.filter { $0.kind == kind }.count)" }.joined(separator: ", ")
        let line = String(format: "%.1f s", elapsed) + " | faults \(faults.count) (\(byKind)) | produced \(produced) | in Redis \(monitor.snapshot.progress)"
        FileHandle.standardError.write(Data(("\r\u{1B}[K" + line).utf8))
    }

    // MARK: - The end

    /// Waits until Redis holds the expected values, then compares Redis and `eddy query` with them.
    private mutating func finish() throws -> DrillReport {
        // The expected result stands for the messages the producers had acknowledged; the topic must hold exactly those.
        let inTopic = try messagesInTopic()
        guard inTopic == produced else {
            throw DrillError(
                reason: "the topic holds \(inTopic) messages but the producers were acknowledged for \(produced): the dev broker wrote "
                    + "\(inTopic - produced) message(s) twice (librdkafka's mock cluster can, when a broker goes down mid-request, even "
                    + "for an idempotent producer), so the expected result is unknown. Replay with --seed \(schedule.seed) --kinds "
                    + "without broker-down to check the rest.")
        }
        var differences: [DrillReport.Difference] = []
        let seen: DrillMonitor.Snapshot
        let counted: Int
        switch target {
        case .seed(let view):
            let expectedRedis = Dictionary(uniqueKeysWithValues: expected.map { (view.key(for: $0.key), $0.value) })
            try waitUntil { monitor.snapshot.values == expectedRedis }
            seen = monitor.finish()
            counted = seen.total
            for key in Set(expectedRedis.keys).union(seen.values.keys).sorted() where expectedRedis[key] != seen.values[key] {
                differences.append(.init(place: "redis", key: key, expected: expectedRedis[key].map(String.init), found: seen.values[key].map(String.init)))
            }
            // CSV: a header, then `event,count` rows.
            var rows: [String: String] = [:]
            for line in try query(view.query, name: "query").dropFirst() {
                let fields = line.split(separator: ",", omittingEmptySubsequences: false)
                if fields.count == 2 { rows[String(fields[0])] = String(fields[1]) }
            }
            for event in Set(expected.keys).union(rows.keys).sorted() where expected[event].map(String.init) != rows[event] {
                differences.append(.init(place: "eddy query", key: event, expected: expected[event].map(String.init), found: rows[event]))
            }
        case .views(let views):
            let (rows, expectedRedis) = try views.expected(messages: messages)
            var found: [DrillReport.Difference] = []
            try waitUntil {
                found = (try? redisDifferences(expectedRedis, markerKeys: Set(views.markerKeys))) ?? [.init(place: "redis", key: "", expected: nil, found: "no answer")]
                return found.isEmpty
            }
            seen = monitor.finish()
            counted = seen.progress
            differences += found
            for (name, _) in views.views {
                // CSV: a header, then one line per row, compared as a multiset with SQLite's rows.
                let printed = try query("SELECT * FROM \(name)", name: "query-\(name)").dropFirst().map(String.init).sorted()
                let wanted = (rows[name] ?? []).map { $0.joined(separator: ",") }.sorted()
                for row in Set(printed).symmetricDifference(wanted).sorted() {
                    differences.append(.init(place: "eddy query \(name)", key: row, expected: wanted.contains(row) ? "present" : nil, found: printed.contains(row) ? "present" : nil))
                }
            }
        }
        return DrillReport(
            seed: schedule.seed, pipeline: pipelinePath, seconds: elapsed, faults: faults, messagesProduced: produced,
            messagesCounted: counted, decreases: seen.decreases, monitorPolls: seen.polls, differences: differences,
            notCovered: ["a second writer"])
    }

    /// The sum of the topic's high watermarks (every partition starts at 0: nothing is ever deleted from it).
    private func messagesInTopic() throws -> Int {
        let configuration = KafkaConsumerConfiguration(bootstrapServers: brokers, topic: target.topic)
        let probe = try KafkaConsumer.make(configuration: configuration)
        defer { probe.close() }
        return try (0..<Int32(command.partitions)).reduce(0) { $0 + Int(try probe.watermarks(partition: $1).high) }
    }

    /// Polls `condition` (up to 60 s) until it holds.
    private func waitUntil(_ condition: () throws -> Bool) throws {
        let deadline = ContinuousClock.now + .seconds(60)
        while try !condition() && ContinuousClock.now < deadline {
            if interrupted.isSet { throw DrillError(reason: "interrupted; every child stopped") }
            usleep(100_000)
        }
        if showsProgress { FileHandle.standardError.write(Data("\r\u{1B}[K".utf8)) }
    }

    /// The lines `eddy query --format csv` prints for `sql` (its output and log named `name`).
    private func query(_ sql: String, name: String) throws -> [Substring] {
        let query = try processes.run(name, ["query", "--state-dir", processes.directory + "/state", "--format", "csv", sql], timeout: .seconds(60))
        guard query.exit == .status(0) else {
            throw DrillError(reason: "eddy query failed (\(query.exit.map(String.init(describing:)) ?? "timed out")):\n\(processes.logTail(name))", status: 1)
        }
        return query.output.split(whereSeparator: \.isNewline)
    }

    /// Keys whose value in Redis is not `expected`'s, and keys Redis holds that nothing expects (markers aside).
    private func redisDifferences(_ expected: [String: String], markerKeys: Set<String>) throws -> [DrillReport.Difference] {
        let redis = try redisConnection()
        defer { redis.close() }
        var differences: [DrillReport.Difference] = []
        let keys = expected.keys.sorted()
        for start in stride(from: 0, to: keys.count, by: 1_000) {
            let chunk = Array(keys[start..<min(keys.count, start + 1_000)])
            guard case .array(let replies) = try redis.command((["MGET"] + chunk).map { Array($0.utf8) }) else { continue }
            for (key, reply) in zip(chunk, replies) where reply.text != expected[key] {
                differences.append(.init(place: "redis", key: key, expected: expected[key], found: reply.text))
            }
        }
        var cursor = "0"
        repeat {
            guard case .array(let answer) = try redis.command("SCAN", cursor, "COUNT", "1000"), answer.count == 2, case .array(let found) = answer[1] else { break }
            cursor = answer[0].text ?? "0"
            for key in found.compactMap(\.text) where expected[key] == nil && !markerKeys.contains(key) {
                differences.append(.init(place: "redis", key: key, expected: nil, found: "present"))
            }
        } while cursor != "0"
        return differences
    }
}
