#if canImport(Glibc)
import Glibc
#endif
import ArgumentParser
import Foundation

/// `eddy bench [SCENARIO…]`: the end-to-end benchmark suite, each scenario against a dev broker and a Redis of its
/// own, every figure next to librdkafka's floor measured in the same run on the same topic (DESIGN §9).
struct BenchCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "bench",
        abstract: "Run the end-to-end benchmark suite: each scenario against its own broker and Redis, figures as ratios to librdkafka's floor.",
        discussion: """
            Scenarios (all of them without arguments; --list prints them): \
            \(BenchScenario.all.map(\.name).joined(separator: ", ")).

            Each scenario, in a scratch directory under $TMPDIR (removed unless --keep): starts an `eddy dev-broker` \
            with a topic of enough partitions to keep every message (the broker keeps about 5 MB per partition) and a \
            `redis-server` on a free loopback port without persistence; `eddy produce --rate 0` writes the messages \
            (--messages, scaled per scenario); then, on the same topic:
              floor      librdkafka's own floor: a plain consumer of the same partitions through the same library, \
            in this process, that only counts
              kcat       `kcat -C -e -q` to /dev/null, when kcat is installed
              eddy run   the scenario's pipeline (views with Redis sinks, durable checkpoints every \
            --checkpoint-interval) from an empty state directory, timed from its start until it logs "caught up \
            with the source" (its consumption rate) and until Redis holds every message (each sink's epoch marker at \
            the partitions' ends: the last epochs add up to a checkpoint interval); CPU from /proc/PID/stat at that \
            last moment (all the work the messages cost), views' groups from /api/status
            Then, with the daemon caught up, the latency phase: this process produces --latency-seconds of messages \
            at half the daemon's rate (at most 200,000/s and 10,000/s per partition, which the dev broker keeps; or \
            --latency-rate) while polling the sink's epoch marker in Redis every \
            millisecond: end-to-end latency is from a message queued to the first poll whose marker is past its \
            offset (the marker changes in the same transaction as the values). Redis's key writes per second (its INFO) \
            are over the daemon's run up to here. Checkpoint durations come from the daemon's /metrics histogram (percentiles interpolated within its buckets; the mean is exact). Then \
            SIGTERM; Redis must equal the views computed by replaying every message produced, key for key, and hold \
            nothing else. Last, `eddy run` again on the final state, timed until caught up (restart), with its \
            anonymous resident memory: bytes per group key are that minus the seed scenario's, per key.

            Reported per scenario: messages/s and CPU-seconds per million messages with their ratios to the floor \
            (and to kcat), the daemon's CPU by thread (eddy-hot-path, eddy-checkpoint, eddy-sink, librdkafka's \
            rdk:broker…, from /proc/PID/task), end-to-end latency p50/p99, checkpoint duration p50/p99, restart to \
            caught up, peak RSS, bytes per group key, Redis key writes per second, and whether the result is exact. A Markdown table \
            by default (progress on stderr), one JSON object with --json.

            Exit status: 0 when every scenario's result is exact, 1 when one is not, 2 when the bench could not run. \
            No figure is ever a pass/fail threshold: the machine is shared and timings are noisy; compare ratios.
            """
    )

    @Argument(help: "Scenarios to run (default: all; see --list).")
    var scenarios: [String] = []

    @Option(help: "Messages per scenario before its scale (seed, users-1k, page-user-100k and keys-1m ×3, size-1k ×0.025, size-4k ×0.00625: the dev broker stops serving a consumer past about 25 MB of padded messages; partitions-1 at most 20,000). Default 1000000, or 20000 with --quick.")
    var messages: Int?

    @Flag(help: "A short run for CI and a first look: 20,000 messages per scenario before its scale and a 1 s latency phase, unless --messages or --latency-seconds say otherwise. Start-up weighs in such runs: quote only full runs.")
    var quick = false

    @Option(help: "Also write an SVG plot of throughput (× the floor) and peak resident memory against the number of group keys, over the keys-curve scenarios that ran (seed, users-1k, page-user-100k, keys-1m; at least two).", completion: .file(extensions: ["svg"]))
    var plot: String?

    @Option(name: .customLong("checkpoint-interval"), help: "The daemon's --checkpoint-interval, in seconds.")
    var checkpointInterval: Double = 1

    @Option(name: .customLong("latency-seconds"), help: "Seconds of paced production in the latency phase (default 3, or 1 with --quick).")
    var latencySeconds: Double?

    @Option(name: .customLong("latency-rate"), help: "Messages per second in the latency phase (default: half the daemon's measured rate, at most 200000 and 10000 per partition).")
    var latencyRate: Double?

    @Option(help: "Seed of the produced messages (the same seed, the same messages).")
    var seed: UInt64 = 1

    @Flag(help: "Print the report as one JSON object.")
    var json = false

    @Flag(help: "List the scenarios and exit.")
    var list = false

    @Flag(help: "Keep the scratch directory (logs, pipelines, state) and print where it is.")
    var keep = false

    func validate() throws {
        let unknown = scenarios.filter { BenchScenario.named($0) == nil }
        if !unknown.isEmpty {
            throw ValidationError(
                "unknown scenario\(unknown.count > 1 ? "s" : "") \(unknown.map { "'\($0)'" }.joined(separator: ", ")); "
                    + "the scenarios are \(BenchScenario.all.map(\.name).joined(separator: ", ")) (eddy bench --list)")
        }
        if plot != nil, selected.count(where: { BenchPlot.keysCurve.contains($0.name) }) < 2 {
            throw ValidationError("--plot needs at least two of the keys-curve scenarios (\(BenchPlot.keysCurve.joined(separator: ", "))) among those run")
        }
        guard (1_000...100_000_000).contains(messagesBase) else { throw ValidationError("--messages must be from 1000 to 100000000, not \(messagesBase)") }
        guard checkpointInterval > 0, checkpointInterval <= 60 else { throw ValidationError("--checkpoint-interval must be in (0, 60] seconds") }
        guard latencyPhaseSeconds > 0, latencyPhaseSeconds <= 600 else { throw ValidationError("--latency-seconds must be in (0, 600]") }
        if let latencyRate { guard latencyRate >= 1, latencyRate <= 1_000_000 else { throw ValidationError("--latency-rate must be from 1 to 1000000 messages per second") } }
    }

    func run() throws {
        if list {
            for scenario in BenchScenario.all {
                print(scenario.name.padding(toLength: 16, withPad: " ", startingAt: 0) + "\(scenario.messageCount(base: messagesBase)) messages  " + scenario.summary)
            }
            return
        }
        do {
            let report = try bench()
            print(json ? report.json : report.text)
            if let plot {
                guard let svg = BenchPlot.svg(of: report) else {
                    printToStandardError("eddy bench: no plot: it needs at least two of the keys-curve scenarios (\(BenchPlot.keysCurve.joined(separator: ", ")))")
                    throw ExitCode(2)
                }
                do {
                    try svg.write(toFile: plot, atomically: true, encoding: .utf8)
                } catch {
                    printToStandardError("eddy bench: cannot write the plot to \(plot): \(error.localizedDescription)")
                    throw ExitCode(2)
                }
                printToStandardError("eddy bench: plot written to \(plot)")
            }
            if !report.exact { throw ExitCode(1) }
        } catch let error as BenchError {
            printToStandardError("eddy bench: \(error.reason)")
            throw ExitCode(2)
        } catch let error as ChildProcessError {
            printToStandardError("eddy bench: \(error.reason)")
            throw ExitCode(2)
        }
    }

    /// Messages per scenario before its scale.
    private var messagesBase: Int { messages ?? (quick ? 20_000 : 1_000_000) }

    private var latencyPhaseSeconds: Double { latencySeconds ?? (quick ? 1 : 3) }

    /// The selected scenarios in the suite's order (the seed first: it is the base of bytes per key).
    private var selected: [BenchScenario] {
        scenarios.isEmpty ? BenchScenario.all : BenchScenario.all.filter { scenarios.contains($0.name) }
    }

    private func bench() throws -> BenchReport {
        _ = try ChildProcesses.redisServerExecutable()
        let scratch = try ChildProcesses.makeScratchDirectory(prefix: "eddy-bench")
        let stop = StopFlag()
        let signals = handleTerminationSignals { stop.flag.store(true, ordering: .relaxed) }
        defer {
            withExtendedLifetime(signals) {}
            if keep {
                printToStandardError("eddy bench: logs, pipelines and state kept in \(scratch)")
            } else {
                try? FileManager.default.removeItem(atPath: scratch)
            }
        }
        var options = BenchRun.Options(
            checkpointInterval: checkpointInterval, latencySeconds: latencyPhaseSeconds, latencyRate: latencyRate, seed: seed)
        var results: [BenchReport.Scenario] = []
        for scenario in selected {
            let run = try BenchRun(scenario: scenario, messagesBase: messagesBase, options: options, directory: scratch + "/" + scenario.name, stop: stop)
            let result = try run.run()
            if scenario.name == "seed" { options.baselineAnonymousBytes = result.memory.restartedAnonymousBytes }
            printToStandardError(
                "eddy bench: \(scenario.name): "
                    + String(format: "%.0f msg/s until caught up (%.2f× the floor; %.2f× until Redis held every message), %.3f CPU-s per million (%.2f×)",
                             result.caughtUp.messagesPerSecond, result.throughputVersusFloor, result.throughputToRedisVersusFloor,
                             result.daemon.cpuSecondsPerMillion, result.cpuVersusFloor)
                    + (result.exact ? ", exact" : ", NOT EXACT"))
            results.append(result)
        }
        return BenchReport(messagesBase: messagesBase, checkpointIntervalSeconds: checkpointInterval, scenarios: results)
    }
}

/// Why `eddy bench` could not run a scenario (exit status 2), as one message.
struct BenchError: Error, CustomStringConvertible {
    let reason: String
    var description: String { reason }
}
