// Consumer benchmark: Eddy's KafkaConsumer alone against kcat, reading the same topic of the same broker in
// the same run. The broker is a separate `eddy dev-broker` process so its CPU is not counted.
//
//   cd Benchmarks && EDDY=../.build/release/eddy swift run -c release ConsumerBenchmark [messages] [partitions]
//
// Reports messages/s and CPU-seconds per million messages for both, and Eddy/kcat ratios (DESIGN §9).
#if canImport(Glibc)
import Glibc
#endif
import EddyKafka
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

@MainActor func report(_ name: String, _ usage: Usage) {
    let perSecond = Double(messageCount) / usage.wallSeconds
    let cpuPerMillion = usage.cpuSeconds / (Double(messageCount) / 1e6)
    print(String(format: "%-6@ %10.0f msg/s  %6.3f s wall  %6.3f CPU-s per million", name as NSString, perSecond, usage.wallSeconds, cpuPerMillion))
}

do {
    var kcatRuns: [Usage] = []
    var eddyRuns: [Usage] = []
    for _ in 0..<2 {
        kcatRuns.append(runKcat())
        report("kcat", kcatRuns.last!)
        eddyRuns.append(try runEddyConsumer())
        report("eddy", eddyRuns.last!)
    }
    let kcatBest = kcatRuns.min { $0.wallSeconds < $1.wallSeconds }!
    let eddyBest = eddyRuns.min { $0.wallSeconds < $1.wallSeconds }!
    let kcatCPU = kcatRuns.map(\.cpuSeconds).min()!
    let eddyCPU = eddyRuns.map(\.cpuSeconds).min()!
    print(String(format: "ratio eddy/kcat: throughput %.2fx (higher is better), CPU per message %.2fx (lower is better)",
                 kcatBest.wallSeconds / eddyBest.wallSeconds, eddyCPU / kcatCPU))
} catch {
    fail("\(error)")
}
