// Consumer and pipeline benchmark, against kcat reading the same topic of the same broker in the same run. The
// broker is a separate `eddy dev-broker` process so its CPU is not counted.
//
//   cd Benchmarks && EDDY=../.build/release/eddy swift run -c release ConsumerBenchmark [messages] [partitions]
//
// Rows: kcat; Eddy's KafkaConsumer alone (in this process); the whole `eddy run` daemon on the example view with
// durable 1 s checkpoints and its Redis sink, timed from start until it has caught up with the topic; and the
// same daemon with checkpoints off (one at the end); then the dataflow's shapes without a sink: one GROUP BY view,
// three views over the source (each message decoded once for all three), per-user counts alone, and per-user
// counts with a count of counts over them (a two-level cascade). Reports messages/s and CPU-seconds per million
// messages, and the ratios DESIGN §9 and the dataflow issue set targets for.
#if canImport(Glibc)
import Glibc
#endif
import EddyKafka
import EddyTestSupport
import Foundation

func fail(_ message: String) -> Never {
    FileHandle.standardError.write(Data("ConsumerBenchmark: \(message)\n".utf8))
    exit(1)
}

let arguments = CommandLine.arguments.dropFirst()
let messageCount = arguments.first.flatMap { Int($0) } ?? 1_000_000
// The mock keeps about 5 MB per partition: ~130-byte messages need one partition per ~30 000.
let partitionCount = arguments.dropFirst().first.flatMap { Int($0) } ?? max(1, messageCount / 25_000)
let eddyPath = ProcessInfo.processInfo.environment["EDDY"]
    ?? URL(fileURLWithPath: FileManager.default.currentDirectoryPath).appendingPathComponent("../.build/release/eddy").standardized.path
guard FileManager.default.isExecutableFile(atPath: eddyPath) else {
    fail("no eddy binary at \(eddyPath): build it (swift build -c release --product eddy) or set EDDY=/path/to/eddy")
}
let kcatPath = ["/usr/bin/kcat", "/usr/local/bin/kcat"].first { FileManager.default.isExecutableFile(atPath: $0) }
guard let kcatPath else { fail("kcat is not installed (apt-get install kcat)") }

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

/// Runs a program to completion with stdout to /dev/null; returns its wall time and CPU (user + system,
/// all its threads) from `wait4`.
func runMeasured(_ path: String, _ arguments: [String]) -> Usage {
    var actions = posix_spawn_file_actions_t()
    posix_spawn_file_actions_init(&actions)
    defer { posix_spawn_file_actions_destroy(&actions) }
    posix_spawn_file_actions_addopen(&actions, 1, "/dev/null", O_WRONLY, 0)
    let argv = ([path] + arguments).map { strdup($0) } + [nil]
    defer { argv.forEach { free($0) } }
    var pid: pid_t = 0
    let started = now()
    guard posix_spawn(&pid, path, &actions, nil, argv, environ) == 0 else { fail("cannot start \(path)") }
    var status: Int32 = 0
    var usage = rusage()
    _ = wait4(pid, &status, 0, &usage)
    let wall = now() - started
    guard status == 0 else { fail("\(path) \(arguments.joined(separator: " ")) exited with status \(status)") }
    return Usage(wallSeconds: wall, cpuSeconds: seconds(usage.ru_utime) + seconds(usage.ru_stime))
}

func selfCPU() -> Double {
    var usage = rusage()
    getrusage(__rusage_who_t(RUSAGE_SELF.rawValue), &usage)
    return seconds(usage.ru_utime) + seconds(usage.ru_stime)
}

// 1. The broker, as its own process.
let broker = Process()
broker.executableURL = URL(fileURLWithPath: eddyPath)
broker.arguments = ["dev-broker", "--topic", "bench:\(partitionCount)"]
let brokerOutput = Pipe()
broker.standardOutput = brokerOutput
broker.standardError = FileHandle.nullDevice
do { try broker.run() } catch { fail("cannot start \(eddyPath) dev-broker: \(error)") }
defer { broker.terminate() }
var firstLine = Data()
while !firstLine.contains(UInt8(ascii: "\n")) {
    let chunk = brokerOutput.fileHandleForReading.availableData
    if chunk.isEmpty { fail("eddy dev-broker exited before printing its address") }
    firstLine.append(chunk)
}
let bootstrap = String(decoding: firstLine.prefix { $0 != UInt8(ascii: "\n") }.dropFirst("bootstrap=".count), as: UTF8.self)

// 2. The messages.
let produce = runMeasured(eddyPath, ["produce", "--brokers", bootstrap, "--topic", "bench", "--count", "\(messageCount)", "--rate", "0", "--seed", "1"])
print("produced \(messageCount) messages on \(partitionCount) partitions of \(bootstrap) in \(String(format: "%.2f", produce.wallSeconds)) s")

var configuration = KafkaConsumerConfiguration(bootstrapServers: bootstrap, topic: "bench")
configuration.startupMode = .earliest
configuration.reportsPartitionEOF = true
do {
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

// 3. Readers, alternated twice so that neither always runs on a warmer broker.
@MainActor func runKcat() -> Usage {
    runMeasured(kcatPath, ["-C", "-b", bootstrap, "-t", "bench", "-o", "beginning", "-e", "-q"])
}

@MainActor func runEddyConsumer() throws -> Usage {
    let cpuBefore = selfCPU()
    let started = now()
    let consumer = try KafkaConsumer.make(configuration: configuration)
    try consumer.assign(partitions: Array(0..<Int32(partitionCount)))
    var received = 0
    var finishedPartitions = Set<Int32>()
    var checksum: UInt8 = 0
    while finishedPartitions.count < partitionCount {
        try consumer.consumeBatch(maxMessages: 10_000, timeout: .milliseconds(100)) { batch in
            for index in 0..<batch.count {
                if batch.isError(at: index) {
                    if case .partitionEOF(let partition, let offset)? = batch.error(at: index), offset > 0 {
                        finishedPartitions.insert(partition)
                    }
                    continue
                }
                let payload = batch.payload(at: index)
                checksum ^= payload.last ?? 0  // touch the bytes, as a decoder would
                received += 1
            }
        }
    }
    consumer.close()
    let usage = Usage(wallSeconds: now() - started, cpuSeconds: selfCPU() - cpuBefore)
    guard received == messageCount else { fail("Eddy's consumer read \(received) messages, expected \(messageCount) (checksum \(checksum))") }
    return usage
}

/// CPU seconds a running process has used so far (user + system, all threads), from /proc.
func processCPU(_ pid: Int32) -> Double {
    guard let stat = try? String(contentsOfFile: "/proc/\(pid)/stat", encoding: .utf8),
        let close = stat.lastIndex(of: ")")
    else { return 0 }
    let fields = stat[stat.index(after: close)...].split(separator: " ")
    // After the command: state is field 3, utime 14 and stime 15 (1-based over the whole line).
    let ticks = (Double(fields[11]) ?? 0) + (Double(fields[12]) ?? 0)
    return ticks / Double(sysconf(Int32(_SC_CLK_TCK)))
}

let redis: RedisTestServer
do {
    redis = try RedisTestServer()
    try redis.start(persistent: false)
} catch { fail("\(error)") }
let pipelineDirectory = NSTemporaryDirectory() + "/eddy-pipeline-bench-\(getpid())"
try? FileManager.default.createDirectory(atPath: pipelineDirectory, withIntermediateDirectories: true)
defer { try? FileManager.default.removeItem(atPath: pipelineDirectory) }
let pipelinePath = pipelineDirectory + "/pipeline.sql"
let pipelineText = """
    CREATE SOURCE user_events (event_timestamp TIMESTAMP, user VARCHAR, page VARCHAR, event VARCHAR) WITH (connector='kafka', \
    topic='bench', properties.bootstrap.server='\(bootstrap)', scan.startup.mode='earliest') FORMAT PLAIN ENCODE JSON;
    CREATE MATERIALIZED VIEW events_statisics_mv AS SELECT event, COUNT(*) FROM user_events GROUP BY event;
    CREATE SINK redis_sink FROM events_statisics_mv WITH (connector='redis', primary_key='event', redis.url='redis://127.0.0.1:\(redis.port)') \
    FORMAT PLAIN ENCODE TEMPLATE (force_append_only='true', key_format='{event}', value_format='{count}');
    """
try? pipelineText.write(toFile: pipelinePath, atomically: true, encoding: .utf8)

/// A pipeline of `views` over the benchmark's topic, without a sink, written to a file of its own.
func shapePipeline(_ name: String, views: [String]) -> String {
    let path = pipelineDirectory + "/\(name).sql"
    let text = """
        CREATE SOURCE user_events (event_timestamp TIMESTAMP, user VARCHAR, page VARCHAR, event VARCHAR) WITH (connector='kafka', \
        topic='bench', properties.bootstrap.server='\(bootstrap)', scan.startup.mode='earliest') FORMAT PLAIN ENCODE JSON;

        """ + views.map { $0 + ";\n" }.joined()
    try? text.write(toFile: path, atomically: true, encoding: .utf8)
    return path
}
let oneView = shapePipeline("one-view", views: ["CREATE MATERIALIZED VIEW by_event AS SELECT event, COUNT(*) FROM user_events GROUP BY event"])
let threeViews = shapePipeline("three-views", views: [
    "CREATE MATERIALIZED VIEW by_event AS SELECT event, COUNT(*) FROM user_events GROUP BY event",
    "CREATE MATERIALIZED VIEW by_page AS SELECT page, COUNT(*) FROM user_events GROUP BY page",
    "CREATE MATERIALIZED VIEW by_page_event AS SELECT page, event, COUNT(*) FROM user_events GROUP BY page, event",
])
let perUser = shapePipeline("per-user", views: ["CREATE MATERIALIZED VIEW per_user AS SELECT user, COUNT(*) AS n FROM user_events GROUP BY user"])
let cascade = shapePipeline("cascade", views: [
    "CREATE MATERIALIZED VIEW per_user AS SELECT user, COUNT(*) AS n FROM user_events GROUP BY user",
    "CREATE MATERIALIZED VIEW count_of_counts AS SELECT n, COUNT(*) AS users FROM per_user GROUP BY n",
])

/// `eddy run` from an empty state directory, timed until it logs that it caught up with the topic; then Redis
/// must hold every message (checked, not timed) and SIGTERM must stop it.
@MainActor func runDaemon(checkpointInterval: String, pipeline: String = pipelinePath) -> Usage {
    try? redis.flushAll()
    let state = pipelineDirectory + "/state-\(UUID().uuidString)"
    let log = pipelineDirectory + "/run.log"
    _ = FileManager.default.createFile(atPath: log, contents: nil)
    let process = Process()
    process.executableURL = URL(fileURLWithPath: eddyPath)
    process.arguments = ["run", pipeline, "--state-dir", state, "--http", "off", "--checkpoint-interval", checkpointInterval]
    process.standardOutput = FileHandle.nullDevice
    process.standardError = FileHandle(forWritingAtPath: log)
    let started = now()
    do { try process.run() } catch { fail("cannot start eddy run: \(error)") }
    var cpu = 0.0
    while true {
        if let text = try? String(contentsOfFile: log, encoding: .utf8), text.contains("caught up with the source") {
            cpu = processCPU(process.processIdentifier)
            break
        }
        guard process.isRunning else { fail("eddy run exited: \((try? String(contentsOfFile: log, encoding: .utf8)) ?? "")") }
        usleep(1_000)
    }
    let wall = now() - started
    process.terminate()
    process.waitUntilExit()
    guard process.terminationStatus == 0 else { fail("eddy run exited with \(process.terminationStatus)") }
    let total = ["click", "scroll", "submit", "download", "focus"].compactMap { try? redis.get($0) }.compactMap(Int.init).reduce(0, +)
    guard pipeline != pipelinePath || total == messageCount else { fail("Redis holds \(total) events after the run, expected \(messageCount)") }
    try? FileManager.default.removeItem(atPath: state)
    return Usage(wallSeconds: wall, cpuSeconds: cpu)
}

@MainActor func report(_ name: String, _ usage: Usage) {
    let perSecond = Double(messageCount) / usage.wallSeconds
    let cpuPerMillion = usage.cpuSeconds / (Double(messageCount) / 1e6)
    print(name.padding(toLength: 26, withPad: " ", startingAt: 0) + String(format: " %10.0f msg/s  %6.3f s wall  %6.3f CPU-s per million", perSecond, usage.wallSeconds, cpuPerMillion))
}

do {
    var kcatRuns: [Usage] = []
    var eddyRuns: [Usage] = []
    var daemonRuns: [Usage] = []
    var uncheckpointedRuns: [Usage] = []
    var shapeRuns: [String: [Usage]] = [:]
    for _ in 0..<2 {
        kcatRuns.append(runKcat())
        report("kcat", kcatRuns.last!)
        eddyRuns.append(try runEddyConsumer())
        report("eddy consumer", eddyRuns.last!)
        daemonRuns.append(runDaemon(checkpointInterval: "1"))
        report("eddy run", daemonRuns.last!)
        uncheckpointedRuns.append(runDaemon(checkpointInterval: "3600"))
        report("eddy run, checkpoints off", uncheckpointedRuns.last!)
        for (name, path) in [("one view", oneView), ("three views", threeViews), ("per-user counts", perUser), ("two-level cascade", cascade)] {
            shapeRuns[name, default: []].append(runDaemon(checkpointInterval: "1", pipeline: path))
            report(name, shapeRuns[name]!.last!)
        }
    }
    func fastest(_ runs: [Usage]) -> Double { runs.map(\.wallSeconds).min()! }
    func leanest(_ runs: [Usage]) -> Double { runs.map(\.cpuSeconds).min()! }
    print(String(format: "consumer/kcat: throughput %.2fx (higher is better), CPU per message %.2fx (lower is better)",
                 fastest(kcatRuns) / fastest(eddyRuns), leanest(eddyRuns) / leanest(kcatRuns)))
    print(String(format: "eddy run/kcat: throughput %.2fx (target >= 0.9), CPU per message %.2fx (target <= 1.2)",
                 fastest(kcatRuns) / fastest(daemonRuns), leanest(daemonRuns) / leanest(kcatRuns)))
    print(String(format: "checkpoints on/off: throughput %.2fx (target >= 0.97)", fastest(uncheckpointedRuns) / fastest(daemonRuns)))
    print(String(format: "three views/one view: time %.2fx, CPU %.2fx (target <= 1.4)",
                 fastest(shapeRuns["three views"]!) / fastest(shapeRuns["one view"]!), leanest(shapeRuns["three views"]!) / leanest(shapeRuns["one view"]!)))
    print(String(format: "two-level cascade/first level alone: time %.2fx, CPU %.2fx (target <= 1.5)",
                 fastest(shapeRuns["two-level cascade"]!) / fastest(shapeRuns["per-user counts"]!),
                 leanest(shapeRuns["two-level cascade"]!) / leanest(shapeRuns["per-user counts"]!)))
} catch {
    fail("\(error)")
}
