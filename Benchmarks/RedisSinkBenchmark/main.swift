// Redis sink benchmark: RedisEpochWriter's fenced epochs against redis-benchmark's pipelined SETs, on the
// same redis-server (started here, no persistence) in the same run.
//
//   cd Benchmarks && swift run -c release RedisSinkBenchmark [keys-per-epoch] [epochs] [value-bytes] [resend-keys]
//
// Reference: `redis-benchmark -P 64 -t set -n N -r N -d <value-bytes>` with N = keys-per-epoch × epochs.
// Eddy: the same number of distinct keys (redis-benchmark's `key:%012d` shape) written as `epochs`
// fenced epochs through RedisEpochWriter (WATCH + MULTI + batched MSET + EXEC). Reference and Eddy
// alternate three times; the best of each is compared. Then one whole-view re-send of `resend-keys` keys
// in a single call, and one epoch that deletes them all.
#if canImport(Glibc)
import Glibc
#endif
import EddyEngine
import EddyRedis
import EddyState
import EddyTestSupport
import Foundation
import Logging

nonisolated(unsafe) var startedServer: RedisTestServer?

func fail(_ message: String) -> Never {
    FileHandle.standardError.write(Data("RedisSinkBenchmark: \(message)\n".utf8))
    startedServer?.destroy()
    exit(1)
}

let arguments = CommandLine.arguments.dropFirst().map { Int($0) }
let keysPerEpoch = arguments.first.flatMap { $0 } ?? 100_000
let epochCount = arguments.dropFirst().first.flatMap { $0 } ?? 10
let valueSize = arguments.dropFirst(2).first.flatMap { $0 } ?? 16
let resendKeys = arguments.dropFirst(3).first.flatMap { $0 } ?? 1_000_000
let totalKeys = keysPerEpoch * epochCount
let logger = Logger(label: "eddy.bench.redis")

guard let redisBenchmark = ["/usr/bin/redis-benchmark", "/usr/local/bin/redis-benchmark"].first(where: { FileManager.default.isExecutableFile(atPath: $0) }) else {
    fail("redis-benchmark is not installed (apt-get install redis-tools)")
}

func now() -> Double {
    var spec = timespec()
    clock_gettime(CLOCK_MONOTONIC, &spec)
    return Double(spec.tv_sec) + Double(spec.tv_nsec) / 1e9
}

let server: RedisTestServer
do {
    server = try RedisTestServer()
    startedServer = server
    try server.start(persistent: false)
} catch { fail("\(error)") }

/// `key:%012d`, as redis-benchmark names its keys.
func key(_ index: Int) -> [UInt8] {
    var digits = Array(String(index).utf8)
    if digits.count < 12 { digits = Array(repeating: UInt8(ascii: "0"), count: 12 - digits.count) + digits }
    return Array("key:".utf8) + digits
}

func value(_ index: Int) -> [UInt8] {
    var bytes = Array(repeating: UInt8(ascii: "x"), count: valueSize)
    let tag = Array(String(index).utf8.suffix(valueSize))
    bytes.replaceSubrange(0..<tag.count, with: tag)
    return bytes
}

typealias Pairs = [(key: [UInt8], value: [UInt8]?)]
let epochs: [Pairs] = (0..<epochCount).map { epoch in
    (0..<keysPerEpoch).map { index in
        let global = epoch * keysPerEpoch + index
        return (key: key(global), value: value(global))
    }
}

func flush() {
    do { try server.flushAll() } catch { fail("FLUSHALL: \(error)") }
}

func dbSize() -> Int64 {
    guard case .integer(let size)? = try? server.command("DBSIZE") else { fail("DBSIZE failed") }
    return size
}

func runReference() -> Double {
    flush()
    let process = Process()
    process.executableURL = URL(fileURLWithPath: redisBenchmark)
    process.arguments = ["-h", "127.0.0.1", "-p", "\(server.port)", "-P", "64", "-t", "set", "-n", "\(totalKeys)", "-r", "\(totalKeys)", "-d", "\(valueSize)", "--csv"]
    let output = Pipe()
    process.standardOutput = output
    process.standardError = FileHandle.nullDevice
    do { try process.run() } catch { fail("cannot run redis-benchmark: \(error)") }
    let data = output.fileHandleForReading.readDataToEndOfFile()
    process.waitUntilExit()
    let text = String(decoding: data, as: UTF8.self)
    guard let line = text.split(separator: "\n").first(where: { $0.hasPrefix("\"SET\"") }),
        let rate = Double(line.split(separator: ",")[1].trimmingCharacters(in: CharacterSet(charactersIn: "\"")))
    else { fail("cannot read redis-benchmark's output: \(text)") }
    return rate
}

/// One epoch through the writer under the engine's progress fence, as the sink writes it: the checkpoint of
/// epoch `epoch` stands at offset `epoch` of one partition. Returns the refusal, nil when applied.
func fencedWrite(_ writer: RedisEpochWriter, epoch: UInt64, pairs: Pairs) throws -> SinkStateMachine.Refusal? {
    let at = { (epoch: UInt64) in SinkProgress(epoch: epoch, form: 1, offsets: [TopicPartition(topic: "bench", partition: 0): Int64(epoch)]) }
    let write = SinkStateMachine.Write(
        progress: at(epoch), pairs: [], isWholeView: false, base: epoch > 1 ? at(epoch - 1) : nil)
    return try writer.write(sink: "bench", marker: Array(write.progress.markerText.utf8), pairs: pairs) { bytes in
        let marker = bytes.map { SinkProgress.parseMarker($0) ?? .epochOnly(0) } ?? .absent
        return SinkStateMachine.fence(marker: marker, write: write).map(RedisMarkerCheck.refuse) ?? .write
    }
}

/// Writes every epoch through the fenced writer; returns keys/s and the slowest epoch in seconds.
func runEddy() -> (rate: Double, slowestEpoch: Double) {
    flush()
    do {
        let connection = try server.connect(timeout: .seconds(60))
        let writer = RedisEpochWriter(connection: connection, logger: logger)
        _ = try writer.readMarker(sink: "bench")
        var slowest = 0.0
        let started = now()
        for (index, pairs) in epochs.enumerated() {
            let epochStarted = now()
            if let refusal = try fencedWrite(writer, epoch: UInt64(index + 1), pairs: pairs) { fail("epoch \(index + 1): \(refusal)") }
            slowest = max(slowest, now() - epochStarted)
        }
        let elapsed = now() - started
        guard dbSize() == totalKeys + 1 else { fail("Redis holds \(dbSize()) keys, expected \(totalKeys + 1)") }
        return (Double(totalKeys) / elapsed, slowest)
    } catch { fail("\(error)") }
}

print("redis-server \(server.url) | \(epochCount) epochs × \(keysPerEpoch) keys, \(valueSize)-byte values")
var referenceRates: [Double] = []
var rates: [Double] = []
for round in 1...3 {
    referenceRates.append(runReference())
    let result = runEddy()
    rates.append(result.rate)
    print(String(format: "round %d: redis-benchmark %9.0f SET/s | eddy %9.0f keys/s (slowest epoch %.3f s)", round, referenceRates.last!, result.rate, result.slowestEpoch))
}
let reference = referenceRates.max()!
let best = rates.max()!
print(String(format: "best redis-benchmark -P 64 -t set: %.0f SET/s", reference))
print(String(format: "best eddy: %.0f keys/s, ratio %.2fx (target >= 0.8x)", best, best / reference))

// One whole-view re-send: all keys in one call, first into an empty Redis, then over existing keys; then
// one epoch that deletes every key of the view.
let view: Pairs = (0..<resendKeys).map { (key: key($0), value: value($0)) }
let deleteAll: Pairs = (0..<resendKeys).map { (key: key($0), value: nil) }
do {
    flush()
    let connection = try server.connect(timeout: .seconds(120))
    let writer = RedisEpochWriter(connection: connection, logger: logger)
    let steps = [("re-send into an empty Redis", view), ("re-send over existing keys", view), ("delete of every key", deleteAll)]
    for (index, (label, pairs)) in steps.enumerated() {
        let epoch = UInt64(index + 1)
        let started = now()
        let refusal = try fencedWrite(writer, epoch: epoch, pairs: pairs)
        let elapsed = now() - started
        if let refusal { fail("\(label): \(refusal)") }
        print(String(format: "whole-view %@ (%d keys): one call %.2f s", label, resendKeys, elapsed))
        if index == 1, dbSize() != resendKeys + 1 { fail("Redis holds \(dbSize()) keys after the re-send, expected \(resendKeys + 1)") }
    }
    guard dbSize() == 1 else { fail("Redis holds \(dbSize()) keys after deleting the view, expected only the marker") }
} catch { fail("re-send: \(error)") }
server.destroy()
