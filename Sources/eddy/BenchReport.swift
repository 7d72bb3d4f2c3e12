import Foundation

/// What `eddy bench` measured: printed as a table, or as one JSON object with `--json`.
struct BenchReport: Codable, Sendable {
    /// A reader of the scenario's topic: messages per second and CPU-seconds per million messages.
    struct Rate: Codable, Sendable, Equatable {
        var seconds: Double
        var messagesPerSecond: Double
        var cpuSecondsPerMillion: Double

        init(messages: Int, seconds: Double, cpuSeconds: Double) {
            self.seconds = seconds
            messagesPerSecond = seconds > 0 ? Double(messages) / seconds : 0
            cpuSecondsPerMillion = cpuSeconds / (Double(messages) / 1e6)
        }
    }

    /// Percentiles of a set of durations, in milliseconds (nearest rank).
    struct Percentiles: Codable, Sendable, Equatable {
        var count: Int
        var p50Milliseconds: Double
        var p99Milliseconds: Double
        var maxMilliseconds: Double

        /// From seconds sorted ascending; nil for none.
        init?(sortedSeconds seconds: [Double]) {
            guard let last = seconds.last else { return nil }
            count = seconds.count
            p50Milliseconds = nearestRank(seconds, 0.5) * 1000
            p99Milliseconds = nearestRank(seconds, 0.99) * 1000
            maxMilliseconds = last * 1000
        }
    }

    struct Latency: Codable, Sendable, Equatable {
        /// Messages per second the paced producer aimed at (half the daemon's rate unless --latency-rate).
        var rate: Double
        var messages: Int
        /// The sink whose marker was polled (the last-level view's for a cascade).
        var sink: String
        var endToEnd: Percentiles?
    }

    struct Checkpoints: Codable, Sendable, Equatable {
        /// Checkpoints committed over the run, from `eddy_checkpoint_duration_seconds`.
        var count: Int
        /// Exact: the histogram's sum over its count.
        var meanMilliseconds: Double?
        /// Interpolated within the histogram's buckets (5, 10, 25, 50, 100, 250 ms, …), as Prometheus does.
        var p50Milliseconds: Double?
        var p99Milliseconds: Double?
    }

    struct Memory: Codable, Sendable, Equatable {
        /// VmHWM of the daemon just before it was stopped (catch-up and latency phase).
        var peakResidentBytes: Int
        /// Anonymous resident memory of the restarted daemon once caught up: the restored state, no backlog.
        var restartedAnonymousBytes: Int
        /// `restartedAnonymousBytes` minus the seed scenario's, per group key beyond its 5; nil without a seed run
        /// in the same invocation or with fewer than 1,000 keys.
        var bytesPerGroupKey: Double?
    }

    struct Redis: Codable, Sendable, Equatable {
        /// Keys Redis changed (its `rdb_changes_since_last_save`, persistence off) per second of the daemon's run
        /// (catch-up and latency phase).
        var keyWritesPerSecond: Double
        /// `EXEC`s (one per epoch write) per second of the daemon's run.
        var transactionsPerSecond: Double
    }

    struct Difference: Codable, Sendable, Equatable {
        var key: String
        var expected: String?
        var found: String?
    }

    struct Scenario: Codable, Sendable {
        var name: String
        var summary: String
        var messages: Int
        var averageMessageBytes: Double
        var partitions: Int
        /// Rows per view once caught up (from `/api/status`).
        var groupsByView: [String: Int]
        var groups: Int
        /// librdkafka's own floor: a plain consumer of the same partitions through the same library, only counting.
        var floor: Rate
        /// `kcat -C -e -q` to /dev/null; nil when kcat is not installed.
        var kcat: Rate?
        /// `eddy run`, from its start until Redis held every message's effect (each sink's epoch marker at the
        /// partitions' ends), with its CPU at that moment: all the work the messages cost.
        var daemon: Rate
        /// `eddy run`, from its start until it logged that it caught up with the source (its consumption rate; its
        /// last epochs are then still on their way to LMDB and Redis, up to a checkpoint interval, which in a run of
        /// a second or two would otherwise weigh as much as the consumption itself).
        var caughtUp: Rate
        /// `daemon`'s CPU-seconds per million messages by thread name (`eddy-hot-path`, `eddy-checkpoint`,
        /// `eddy-sink`, librdkafka's `rdk:…`, …), at the same moment: where the CPU above the floor goes.
        var daemonCPUByThread: [String: Double]
        /// The daemon's consumption rate (`caughtUp`) over the floor's (higher is better), its rate until Redis held
        /// everything over the floor's, and its CPU per message until then over the floor's (lower is better); the
        /// same against kcat.
        var throughputVersusFloor: Double
        var throughputToRedisVersusFloor: Double
        var cpuVersusFloor: Double
        var throughputVersusKcat: Double?
        var cpuVersusKcat: Double?
        var latency: Latency
        var checkpoints: Checkpoints
        /// Seconds from starting `eddy run` again on the final state until it caught up.
        var restartSeconds: Double
        var memory: Memory
        var redis: Redis
        /// Redis equals the views computed by replaying every message produced, key for key, and holds nothing else.
        var exact: Bool
        var differences: [Difference]
    }

    var messagesBase: Int
    var checkpointIntervalSeconds: Double
    var scenarios: [Scenario]
    var exact: Bool { scenarios.allSatisfy(\.exact) }

    private enum CodingKeys: String, CodingKey {
        case messagesBase, checkpointIntervalSeconds, scenarios, exact
    }

    init(messagesBase: Int, checkpointIntervalSeconds: Double, scenarios: [Scenario]) {
        self.messagesBase = messagesBase
        self.checkpointIntervalSeconds = checkpointIntervalSeconds
        self.scenarios = scenarios
    }

    init(from decoder: any Decoder) throws {
        let container = try decoder.container(keyedBy: CodingKeys.self)
        messagesBase = try container.decode(Int.self, forKey: .messagesBase)
        checkpointIntervalSeconds = try container.decode(Double.self, forKey: .checkpointIntervalSeconds)
        scenarios = try container.decode([Scenario].self, forKey: .scenarios)
    }

    func encode(to encoder: any Encoder) throws {
        var container = encoder.container(keyedBy: CodingKeys.self)
        try container.encode(messagesBase, forKey: .messagesBase)
        try container.encode(checkpointIntervalSeconds, forKey: .checkpointIntervalSeconds)
        try container.encode(scenarios, forKey: .scenarios)
        try container.encode(exact, forKey: .exact)
    }

    var json: String {
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.sortedKeys]
        // A ratio over a zero (a run too short for the clock ticks of /proc) must not lose the whole report.
        encoder.nonConformingFloatEncodingStrategy = .convertToString(positiveInfinity: "inf", negativeInfinity: "-inf", nan: "nan")
        return String(decoding: (try? encoder.encode(self)) ?? Data("{}".utf8), as: UTF8.self)
    }

    /// A Markdown table (the README's form), then each scenario's references and differences.
    var text: String {
        func integer(_ value: Int) -> String {
            String(String(value).reversed().enumerated().map { $0 > 0 && $0 % 3 == 0 ? "\($1)," : "\($1)" }.reversed().joined())
        }
        func number(_ value: Double) -> String {
            value >= 100 ? integer(Int(value.rounded())) : String(format: value >= 10 ? "%.1f" : "%.2f", value)
        }
        func milliseconds(_ value: Double?) -> String { value.map { String(format: $0 >= 100 ? "%.0f" : "%.1f", $0) } ?? "–" }
        func mebibytes(_ bytes: Int) -> String { String(format: "%.0f MiB", Double(bytes) / 1_048_576) }
        var lines = [
            "| scenario | messages | keys | msg/s caught up (× floor) | × floor to Redis | CPU-s per M (× floor) | e2e latency p50 / p99 ms | checkpoint p50 / p99 ms | restart s | peak RSS | B per key | Redis keys/s | exact |",
            "|---|---|---|---|---|---|---|---|---|---|---|---|---|",
        ]
        for scenario in scenarios {
            let latency = scenario.latency.endToEnd
            lines.append(
                "| \(scenario.name) | \(integer(scenario.messages)) | \(integer(scenario.groups)) "
                    + "| \(number(scenario.caughtUp.messagesPerSecond)) (\(String(format: "%.2f", scenario.throughputVersusFloor))×) "
                    + "| \(String(format: "%.2f", scenario.throughputToRedisVersusFloor))× "
                    + "| \(String(format: "%.3f", scenario.daemon.cpuSecondsPerMillion)) (\(String(format: "%.2f", scenario.cpuVersusFloor))×) "
                    + "| \(milliseconds(latency?.p50Milliseconds)) / \(milliseconds(latency?.p99Milliseconds)) "
                    + "| \(milliseconds(scenario.checkpoints.p50Milliseconds)) / \(milliseconds(scenario.checkpoints.p99Milliseconds)) "
                    + "| \(String(format: "%.2f", scenario.restartSeconds)) | \(mebibytes(scenario.memory.peakResidentBytes)) "
                    + "| \(scenario.memory.bytesPerGroupKey.map { String(format: "%.0f", $0) } ?? "–") "
                    + "| \(number(scenario.redis.keyWritesPerSecond)) | \(scenario.exact ? "yes" : "**NO**") |")
        }
        lines.append("")
        for scenario in scenarios {
            var line = "\(scenario.name): \(scenario.summary); \(scenario.partitions) partition(s), "
                + String(format: "%.0f", scenario.averageMessageBytes) + " B per message; floor "
                + "\(number(scenario.floor.messagesPerSecond)) msg/s, \(String(format: "%.3f", scenario.floor.cpuSecondsPerMillion)) CPU-s/M"
            if let kcat = scenario.kcat, let throughput = scenario.throughputVersusKcat, let cpu = scenario.cpuVersusKcat {
                line += "; kcat -q \(number(kcat.messagesPerSecond)) msg/s, \(String(format: "%.3f", kcat.cpuSecondsPerMillion)) CPU-s/M "
                    + "(eddy run \(String(format: "%.2f", throughput))× its rate, \(String(format: "%.2f", cpu))× its CPU)"
            }
            let threads = scenario.daemonCPUByThread.filter { $0.value >= 0.0005 }.sorted { $0.value > $1.value }
            line += "; eddy run CPU-s/M by thread: " + threads.map { "\($0.key) \(String(format: "%.3f", $0.value))" }.joined(separator: ", ")
            line += "; latency at \(number(scenario.latency.rate)) msg/s (\(scenario.latency.messages) messages, marker of \(scenario.latency.sink))"
            line += "; \(scenario.checkpoints.count) checkpoints, mean \(milliseconds(scenario.checkpoints.meanMilliseconds)) ms"
            line += "; \(number(scenario.redis.transactionsPerSecond)) Redis transactions/s"
            lines.append(line)
            for difference in scenario.differences {
                lines.append("  \(difference.key): expected \(difference.expected ?? "absent"), found \(difference.found ?? "absent")")
            }
        }
        lines.append(
            "floor: a plain consumer of the same partitions through the same library (librdkafka), only counting; msg/s of eddy run from "
                + "its start until caught up, and until Redis held every message (× floor to Redis: its last epoch adds up to a checkpoint "
                + "interval); CPU until Redis held every message; e2e latency from queued in a paced producer to visible in Redis (1 ms polls); result "
                + (exact ? "EXACT" : "NOT EXACT"))
        return lines.joined(separator: "\n")
    }
}

/// The nearest-rank `p` percentile of values sorted ascending (not empty).
func nearestRank(_ sorted: [Double], _ p: Double) -> Double {
    sorted[max(0, min(sorted.count - 1, Int((p * Double(sorted.count)).rounded(.up)) - 1))]
}
