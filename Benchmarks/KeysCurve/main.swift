// The keys curve (issue 13): the whole `eddy run` daemon on `SELECT user, COUNT(*) … GROUP BY user` with a Redis
// sink and durable 1 s checkpoints, over the same number of messages drawn from 5, 1K, 100K and 1M distinct users,
// each row against librdkafka's floor measured in the same run on the same topic.
//
//   cd Benchmarks && EDDY=../.build/release/eddy swift run -c release KeysCurve [messages] [keys,keys,...] [eddy run options...]
//
// Per key count: a fresh `eddy dev-broker` (its own process, CPU not counted) with one partition per 25,000
// messages (the mock keeps ~5 MB per partition), `eddy produce --users N --seed 1`, then, alternated twice:
// the floor — Eddy's KafkaConsumer alone in this process, only counting (librdkafka's own floor through the same
// library; DESIGN §9) — and `kcat -q` to /dev/null (the weaker second reference), and the daemon from an empty
// state directory. The daemon is timed twice: until it logs that it caught up with the topic (consumption), and
// until it has exited after SIGTERM (final checkpoint committed and Redis written: the end-to-end time). Redis is
// then checked key by key against counts replayed from the generator, and the daemon is started once more on
// its final state and timed to "state restored" and to caught up (the restart). Reported per row: messages/s and
// CPU-seconds per million as ratios against the floor, resident memory at catch-up (per key: minus the first
// row's, over the key count; split into anonymous memory and file-backed pages, which are mostly LMDB's map),
// the restart's times, checkpoint durations and groups per checkpoint (from the daemon's debug log), Redis keys
// per sink write.
#if canImport(Glibc)
import Glibc
#endif
import EddyKafka
import EddyRedis
import EddyTestSupport
import EddyWorkload
import Foundation

func fail(_ message: String) -> Never {
    FileHandle.standardError.write(Data("KeysCurve: \(message)\n".utf8))
    exit(1)
}

var arguments = Array(CommandLine.arguments.dropFirst())
let messageCount = arguments.first.flatMap { Int($0) } ?? 3_000_000
if !arguments.isEmpty { arguments.removeFirst() }
let keyCounts = arguments.first.map { $0.split(separator: ",").compactMap { Int($0) } } ?? [5, 1_000, 100_000, 1_000_000]
if !arguments.isEmpty { arguments.removeFirst() }
let extraRunOptions = arguments
let partitionCount = max(1, messageCount / 25_000)
let eddyPath = ProcessInfo.processInfo.environment["EDDY"]
    ?? URL(fileURLWithPath: FileManager.default.currentDirectoryPath).appendingPathComponent("../.build/release/eddy").standardized.path
guard FileManager.default.isExecutableFile(atPath: eddyPath) else {
    fail("no eddy binary at \(eddyPath): build it (swift build -c release --product eddy) or set EDDY=/path/to/eddy")
}
let kcatPath = ["/usr/bin/kcat", "/usr/local/bin/kcat"].first { FileManager.default.isExecutableFile(atPath: $0) }

struct Usage {
    var wallSeconds: Double
    var cpuSeconds: Double
}

func seconds(_ value: timeval) -> Double { Double(value.tv_sec) + Double(value.tv_usec) / 1e6 }
func now() -> Double {
    var spec = timespec()
    clock_gettime(CLOCK_MONOTONIC, &spec)
    return Double(spec.tv_sec) + Double(spec.tv_nsec) / 1e9
}
func selfCPU() -> Double {
    var usage = rusage()
    getrusage(__rusage_who_t(RUSAGE_SELF.rawValue), &usage)
    return seconds(usage.ru_utime) + seconds(usage.ru_stime)
}

/// Runs a program to completion with stdout to /dev/null; wall time and CPU (all its threads) from `wait4`.
func runMeasured(_ path: String, _ arguments: [String]) -> Usage {
    var actions = posix_spawn_file_actions_t()
    posix_spawn_file_actions_init(&actions)
    defer { posix_spawn_file_actions_destroy(&actions) }
    posix_spawn_file_actions_addopen(&actions, 1, "/dev/null", O_WRONLY, 0)
    posix_spawn_file_actions_addopen(&actions, 2, "/dev/null", O_WRONLY, 0)
    let argv = ([path] + arguments).map { strdup($0) } + [nil]
    defer { argv.forEach { free($0) } }
    var pid: pid_t = 0
    let started = now()
    guard posix_spawn(&pid, path, &actions, nil, argv, environ) == 0 else { fail("cannot start \(path)") }
    var status: Int32 = 0
    var usage = rusage()
    _ = wait4(pid, &status, 0, &usage)
    guard status == 0 else { fail("\(path) \(arguments.joined(separator: " ")) exited with status \(status)") }
    return Usage(wallSeconds: now() - started, cpuSeconds: seconds(usage.ru_utime) + seconds(usage.ru_stime))
}

/// Resident memory of a process, from /proc/PID/status: all of it, its anonymous part (heap, stacks) and its
/// file-backed part (LMDB's map, the binary and libraries).
struct Resident {
    var total = 0.0
    var anonymous = 0.0
    var file = 0.0
}

/// CPU seconds (all threads) and resident bytes of a running process, from /proc.
func processUsage(_ pid: Int32) -> (cpu: Double, resident: Resident) {
    var cpu = 0.0
    if let stat = try? String(contentsOfFile: "/proc/\(pid)/stat", encoding: .utf8), let close = stat.lastIndex(of: ")") {
        let fields = stat[stat.index(after: close)...].split(separator: " ")
        cpu = ((Double(fields[11]) ?? 0) + (Double(fields[12]) ?? 0)) / Double(sysconf(Int32(_SC_CLK_TCK)))
    }
    var resident = Resident()
    if let status = try? String(contentsOfFile: "/proc/\(pid)/status", encoding: .utf8) {
        func kilobytes(_ field: String) -> Double {
            guard let line = status.split(separator: "\n").first(where: { $0.hasPrefix(field) }) else { return 0 }
            return (Double(line.split(separator: " ").dropFirst().first ?? "0") ?? 0) * 1024
        }
        resident = Resident(total: kilobytes("VmRSS:"), anonymous: kilobytes("RssAnon:"), file: kilobytes("RssFile:"))
    }
    return (cpu, resident)
}

/// Per user login, the number of messages `eddy produce --seed 1 --users N --count messageCount` writes.
func expectedCounts(users: Int) -> [String: Int] {
    var generator = UserEventGenerator(seed: 1, userCount: users)
    var counts: [[UInt8]: Int] = [:]
    var buffer: [UInt8] = []
    let marker = Array(#""user": ""#.utf8)
    let timestamp = EventTimestamp(epochSeconds: 0)
    for _ in 0..<messageCount {
        buffer.removeAll(keepingCapacity: true)
        _ = generator.appendMessage(timestamp: timestamp, to: &buffer)
        guard let start = buffer.indices.first(where: { buffer[$0...].starts(with: marker) }).map({ $0 + marker.count }),
            let end = buffer[start...].firstIndex(of: UInt8(ascii: "\""))
        else { fail("the generator's message has no user field") }
        counts[Array(buffer[start..<end]), default: 0] += 1
    }
    return Dictionary(uniqueKeysWithValues: counts.map { (String(decoding: $0.key, as: UTF8.self), $0.value) })
}

struct DaemonRun {
    var caughtUp: Usage
    var stopped: Usage
    var resident: Resident
    /// A second `eddy run` on the final state: seconds from its start to "state restored", and to caught up.
    var restored: Double
    var restartCaughtUp: Double
    var checkpoints: [(groups: Int, seconds: Double)]
    var sinkWrites: [Int]
}

func number(_ value: Any?) -> Double? {
    if let text = value as? String { return Double(text.split(separator: " ").first ?? "") }
    return (value as? NSNumber)?.doubleValue
}

/// `eddy run` from an empty state directory: timed until it logs that it caught up, then until it exits after
/// SIGTERM; Redis must then hold exactly `expected`.
func runDaemon(pipeline: String, directory: String, redis: RedisTestServer, expected: [String: Int]) -> DaemonRun {
    try? redis.flushAll()
    let state = directory + "/state-\(UUID().uuidString)"
    let log = directory + "/run.log"
    _ = FileManager.default.createFile(atPath: log, contents: nil)
    let process = Process()
    process.executableURL = URL(fileURLWithPath: eddyPath)
    process.arguments = ["run", pipeline, "--state-dir", state, "--http", "off", "--checkpoint-interval", "1",
                         "--log-format", "json", "--log-level", "debug"] + extraRunOptions
    process.standardOutput = FileHandle.nullDevice
    process.standardError = FileHandle(forWritingAtPath: log)
    let started = now()
    do { try process.run() } catch { fail("cannot start eddy run: \(error)") }
    var caughtUp = Usage(wallSeconds: 0, cpuSeconds: 0)
    var resident = Resident()
    while true {
        if let text = try? String(contentsOfFile: log, encoding: .utf8), text.contains("caught up with the source") {
            let usage = processUsage(process.processIdentifier)
            caughtUp = Usage(wallSeconds: now() - started, cpuSeconds: usage.cpu)
            resident = usage.resident
            break
        }
        guard process.isRunning else { fail("eddy run exited: \((try? String(contentsOfFile: log, encoding: .utf8)) ?? "")") }
        guard now() - started < 600 else { process.terminate(); fail("eddy run did not catch up in 600 s; its log: \(log)") }
        usleep(1_000)
    }
    // The CPU of the whole run, threads included, up to its exit: the last sample before the process is reaped.
    kill(process.processIdentifier, SIGTERM)
    var lastCPU = caughtUp.cpuSeconds
    while process.isRunning {
        let cpu = processUsage(process.processIdentifier).cpu
        if cpu > 0 { lastCPU = cpu }
        usleep(1_000)
    }
    let stopped = Usage(wallSeconds: now() - started, cpuSeconds: lastCPU)
    guard process.terminationStatus == 0 else { fail("eddy run exited with \(process.terminationStatus)") }

    var checkpoints: [(Int, Double)] = []
    var writes: [Int] = []
    for line in ((try? String(contentsOfFile: log, encoding: .utf8)) ?? "").split(separator: "\n") {
        guard let object = try? JSONSerialization.jsonObject(with: Data(line.utf8)) as? [String: Any] else { continue }
        let message = object["message"] as? String ?? object["msg"] as? String ?? ""
        let metadata = object["metadata"] as? [String: Any] ?? object
        if message == "checkpoint committed", let groups = number(metadata["eddy.groups"]), let duration = number(metadata["eddy.duration"]) {
            checkpoints.append((Int(groups), duration))
        } else if message == "sink wrote", let keys = number(metadata["eddy.keys"]) {
            writes.append(Int(keys))
        }
    }
    if checkpoints.isEmpty { fail("no 'checkpoint committed' lines in the debug log \(log)") }

    // Exactness: every user's count, and nothing else but Eddy's marker.
    let users = Array(expected.keys)
    do {
        let connection = try redis.connect()
        defer { connection.close() }
        for start in stride(from: 0, to: users.count, by: 10_000) {
            let batch = users[start..<min(users.count, start + 10_000)]
            guard case .array(let values) = try connection.command([Array("MGET".utf8)] + batch.map { Array($0.utf8) }) else { fail("MGET answered no array") }
            for (user, value) in zip(batch, values) {
                guard case .string(let bytes) = value, Int(String(decoding: bytes, as: UTF8.self)) == expected[user] else {
                    fail("Redis holds \(value) for \(user), expected \(expected[user]!)")
                }
            }
        }
        guard case .integer(let size) = try connection.command([Array("DBSIZE".utf8)]), Int(size) <= users.count + 1 else {
            fail("Redis holds more keys than the \(users.count) users and a marker")
        }
    } catch { fail("checking Redis: \(error)") }
    let (restored, restartCaughtUp) = restart(pipeline: pipeline, state: state, log: directory + "/restart.log")
    try? FileManager.default.removeItem(atPath: state)
    return DaemonRun(
        caughtUp: caughtUp, stopped: stopped, resident: resident, restored: restored, restartCaughtUp: restartCaughtUp,
        checkpoints: checkpoints, sinkWrites: writes)
}

/// `eddy run` again on a state directory whose checkpoint holds the whole topic: seconds from its start until it
/// logs "state restored" (every group read back from LMDB) and until it logs that it caught up (nothing left to
/// consume); then stopped with SIGTERM.
func restart(pipeline: String, state: String, log: String) -> (restored: Double, caughtUp: Double) {
    _ = FileManager.default.createFile(atPath: log, contents: nil)
    let process = Process()
    process.executableURL = URL(fileURLWithPath: eddyPath)
    process.arguments = ["run", pipeline, "--state-dir", state, "--http", "off", "--checkpoint-interval", "1", "--log-format", "json"]
        + extraRunOptions
    process.standardOutput = FileHandle.nullDevice
    process.standardError = FileHandle(forWritingAtPath: log)
    let started = now()
    do { try process.run() } catch { fail("cannot start eddy run: \(error)") }
    var restored = 0.0
    while true {
        let text = (try? String(contentsOfFile: log, encoding: .utf8)) ?? ""
        if restored == 0 && text.contains("state restored") { restored = now() - started }
        if text.contains("caught up with the source") { break }
        guard process.isRunning else { fail("the restarted eddy run exited: \(text)") }
        guard now() - started < 120 else { process.terminate(); fail("the restarted eddy run did not catch up in 120 s; its log: \(log)") }
        usleep(1_000)
    }
    let caughtUp = now() - started
    kill(process.processIdentifier, SIGTERM)
    process.waitUntilExit()
    guard process.terminationStatus == 0 else { fail("the restarted eddy run exited with \(process.terminationStatus)") }
    return (restored, caughtUp)
}

/// The floor, retried when the consumer stalls: against the mock cluster an in-process consumer sometimes stops
/// receiving partway (seen here with both the old and the new daemon's broker, with and without EOF reports).
func floorConsumer(bootstrap: String, partitions: Int) throws -> Usage {
    for attempt in 1...4 {
        if let usage = try floorConsumerAttempt(bootstrap: bootstrap, partitions: partitions) { return usage }
        FileHandle.standardError.write(Data("KeysCurve: the floor consumer stalled (attempt \(attempt)); again\n".utf8))
    }
    fail("the floor consumer stalled four times")
}

func floorConsumerAttempt(bootstrap: String, partitions: Int) throws -> Usage? {
    var configuration = KafkaConsumerConfiguration(bootstrapServers: bootstrap, topic: "keys")
    configuration.startupMode = .earliest
    let cpuBefore = selfCPU()
    let started = now()
    let consumer = try KafkaConsumer.make(configuration: configuration)
    try consumer.assign(partitions: Array(0..<Int32(partitions)))
    var received = 0
    var checksum: UInt8 = 0
    // Done at the known count; no message for 5 s is a stall.
    var lastProgress = now()
    var lastReceived = 0
    while received < messageCount {
        if received != lastReceived {
            lastReceived = received
            lastProgress = now()
        } else if now() - lastProgress > 5 {
            consumer.close()
            return nil
        }
        try consumer.consumeBatch(maxMessages: 10_000, timeout: .milliseconds(100)) { batch in
            for index in 0..<batch.count {
                if batch.isError(at: index) { continue }
                checksum ^= batch.payload(at: index).last ?? 0  // touch the bytes, as a decoder would
                received += 1
            }
        }
    }
    consumer.close()
    guard received == messageCount else { fail("the floor consumer read \(received) messages, expected \(messageCount) (checksum \(checksum))") }
    return Usage(wallSeconds: now() - started, cpuSeconds: selfCPU() - cpuBefore)
}

struct Row {
    var keys: Int
    var distinct: Int
    var floor: Usage
    var kcat: Usage?
    var daemon: DaemonRun
}

let redis: RedisTestServer
do {
    redis = try RedisTestServer()
    try redis.start(persistent: false)
} catch { fail("\(error)") }
let directory = NSTemporaryDirectory() + "/eddy-keys-curve-\(getpid())"
try? FileManager.default.createDirectory(atPath: directory, withIntermediateDirectories: true)
defer { try? FileManager.default.removeItem(atPath: directory) }

func fastest(_ runs: [Usage]) -> Usage { runs.min { $0.wallSeconds < $1.wallSeconds }! }
func leanest(_ runs: [Usage]) -> Double { runs.map(\.cpuSeconds).min()! }

var rows: [Row] = []
print("KeysCurve: \(messageCount) messages on \(partitionCount) partitions per row; eddy run options: --checkpoint-interval 1 \(extraRunOptions.joined(separator: " "))")
for keys in keyCounts {
    let broker = Process()
    broker.executableURL = URL(fileURLWithPath: eddyPath)
    broker.arguments = ["dev-broker", "--topic", "keys:\(partitionCount)"]
    let brokerOutput = Pipe()
    broker.standardOutput = brokerOutput
    broker.standardError = FileHandle.nullDevice
    do { try broker.run() } catch { fail("cannot start \(eddyPath) dev-broker: \(error)") }
    var firstLine = Data()
    while !firstLine.contains(UInt8(ascii: "\n")) {
        let chunk = brokerOutput.fileHandleForReading.availableData
        if chunk.isEmpty { fail("eddy dev-broker exited before printing its address") }
        firstLine.append(chunk)
    }
    let bootstrap = String(decoding: firstLine.prefix { $0 != UInt8(ascii: "\n") }.dropFirst("bootstrap=".count), as: UTF8.self)
    _ = runMeasured(eddyPath, ["produce", "--brokers", bootstrap, "--topic", "keys", "--count", "\(messageCount)", "--rate", "0", "--seed", "1", "--users", "\(keys)"])
    do {
        var configuration = KafkaConsumerConfiguration(bootstrapServers: bootstrap, topic: "keys")
        configuration.startupMode = .earliest
        let probe = try KafkaConsumer.make(configuration: configuration)
        var total: Int64 = 0
        for partition in 0..<Int32(partitionCount) {
            let (low, high) = try probe.watermarks(partition: partition)
            guard low == 0 else { fail("partition \(partition) lost its first \(low) messages: use more partitions") }
            total += high
        }
        guard total == messageCount else { fail("broker holds \(total) messages, expected \(messageCount)") }
        probe.close()
    } catch { fail("\(error)") }
    let expected = expectedCounts(users: keys)

    let pipeline = directory + "/pipeline-\(keys).sql"
    let text = """
        CREATE SOURCE user_events (event_timestamp TIMESTAMP, user VARCHAR, page VARCHAR, event VARCHAR) WITH (connector='kafka', \
        topic='keys', properties.bootstrap.server='\(bootstrap)', scan.startup.mode='earliest') FORMAT PLAIN ENCODE JSON;
        CREATE MATERIALIZED VIEW user_counts AS SELECT user, COUNT(*) FROM user_events GROUP BY user;
        CREATE SINK redis_sink FROM user_counts WITH (connector='redis', primary_key='user', redis.url='redis://127.0.0.1:\(redis.port)') \
        FORMAT PLAIN ENCODE TEMPLATE (force_append_only='true', key_format='{user}', value_format='{count}');
        """
    try? text.write(toFile: pipeline, atomically: true, encoding: .utf8)

    var floors: [Usage] = []
    var kcats: [Usage] = []
    var daemons: [DaemonRun] = []
    for _ in 0..<2 {
        do { floors.append(try floorConsumer(bootstrap: bootstrap, partitions: partitionCount)) } catch { fail("\(error)") }
        if let kcatPath { kcats.append(runMeasured(kcatPath, ["-C", "-b", bootstrap, "-t", "keys", "-o", "beginning", "-e", "-q"])) }
        daemons.append(runDaemon(pipeline: pipeline, directory: directory, redis: redis, expected: expected))
    }
    broker.terminate()
    broker.waitUntilExit()
    var best = daemons.min { $0.caughtUp.wallSeconds < $1.caughtUp.wallSeconds }!
    best.caughtUp.cpuSeconds = daemons.map(\.caughtUp.cpuSeconds).min()!
    best.stopped.wallSeconds = daemons.map(\.stopped.wallSeconds).min()!
    best.stopped.cpuSeconds = daemons.map(\.stopped.cpuSeconds).min()!
    best.resident = daemons.map(\.resident).min { $0.total < $1.total }!
    best.restored = daemons.map(\.restored).min()!
    best.restartCaughtUp = daemons.map(\.restartCaughtUp).min()!
    var floor = fastest(floors)
    floor.cpuSeconds = leanest(floors)
    var kcat = kcats.isEmpty ? nil : fastest(kcats)
    kcat?.cpuSeconds = leanest(kcats)
    let row = Row(keys: keys, distinct: expected.count, floor: floor, kcat: kcat, daemon: best)
    rows.append(row)
    let million = Double(messageCount) / 1e6
    let durations = best.checkpoints.map(\.seconds).sorted()
    let groups = best.checkpoints.map(\.groups)
    print(String(
        format: "%8d keys (%d distinct): floor %.0f msg/s %.3f CPU-s/M%@; eddy run caught up %.0f msg/s %.3f CPU-s/M, stopped %.2f s %.3f CPU-s/M; RSS %.0f MiB (anonymous %.0f, file %.0f); restart: restored %.2f s, caught up %.2f s; %d checkpoints, median %.1f ms, max %.1f ms, %.0f groups each on average; %d sink writes, %.0f keys each",
        keys, expected.count, Double(messageCount) / floor.wallSeconds, floor.cpuSeconds / million,
        kcat.map { String(format: "; kcat -q %.0f msg/s %.3f CPU-s/M", Double(messageCount) / $0.wallSeconds, $0.cpuSeconds / million) } ?? "",
        Double(messageCount) / best.caughtUp.wallSeconds, best.caughtUp.cpuSeconds / million, best.stopped.wallSeconds, best.stopped.cpuSeconds / million,
        best.resident.total / 1_048_576, best.resident.anonymous / 1_048_576, best.resident.file / 1_048_576, best.restored,
        best.restartCaughtUp, best.checkpoints.count, durations[durations.count / 2] * 1000, durations.last! * 1000,
        Double(groups.reduce(0, +)) / Double(max(1, groups.count)), best.sinkWrites.count,
        Double(best.sinkWrites.reduce(0, +)) / Double(max(1, best.sinkWrites.count))))
}

print("")
print("| distinct keys | msg/s vs floor (caught up) | msg/s vs floor (stopped, Redis exact) | CPU vs floor | RSS per key (anonymous + file) | restart: restored, caught up | checkpoints: count, median, max | groups per checkpoint | Redis keys per write |")
print("|---|---|---|---|---|---|---|---|---|")
for row in rows {
    let base = rows.first!.daemon.resident
    let resident = row.daemon.resident
    let perKey = row.keys == rows.first!.keys ? "–" : String(
        format: "%.0f B (%.0f + %.0f)", (resident.total - base.total) / Double(row.distinct),
        (resident.anonymous - base.anonymous) / Double(row.distinct), (resident.file - base.file) / Double(row.distinct))
    let durations = row.daemon.checkpoints.map(\.seconds).sorted()
    let groups = row.daemon.checkpoints.map(\.groups)
    print(String(
        format: "| %@ | %.2f× | %.2f× | %.2f× | %@ | %.2f s, %.2f s | %d, %.1f ms, %.0f ms | %.0f | %.0f |",
        row.distinct.formatted(), row.floor.wallSeconds / row.daemon.caughtUp.wallSeconds, row.floor.wallSeconds / row.daemon.stopped.wallSeconds,
        row.daemon.stopped.cpuSeconds / row.floor.cpuSeconds, perKey, row.daemon.restored, row.daemon.restartCaughtUp, durations.count, durations[durations.count / 2] * 1000,
        durations.last! * 1000, Double(groups.reduce(0, +)) / Double(max(1, groups.count)),
        Double(row.daemon.sinkWrites.reduce(0, +)) / Double(max(1, row.daemon.sinkWrites.count))))
}
print("floor: Eddy's KafkaConsumer alone in this process, only counting; CPU vs floor is the daemon's CPU to its exit (final checkpoint and Redis write included)")
