import EddyTestSupport
import Foundation
import Testing

/// `eddy bench` as a user (or CI) runs it: its own broker, Redis, references and daemon.
@Suite(.serialized) struct BenchCLITests {
    /// The parts of `--json`'s report the test reads.
    private struct Report: Decodable {
        struct Rate: Decodable {
            let seconds: Double
            let messagesPerSecond: Double
            let cpuSecondsPerMillion: Double
        }

        struct Percentiles: Decodable {
            let count: Int
            let p50Milliseconds: Double
            let p99Milliseconds: Double
            let maxMilliseconds: Double
        }

        struct Latency: Decodable {
            let rate: Double
            let messages: Int
            let sink: String
            let endToEnd: Percentiles?
        }

        struct Checkpoints: Decodable {
            let count: Int
            let meanMilliseconds: Double?
            let p50Milliseconds: Double?
            let p99Milliseconds: Double?
        }

        struct Memory: Decodable {
            let peakResidentBytes: Int
            let restartedAnonymousBytes: Int
        }

        struct Redis: Decodable {
            let keyWritesPerSecond: Double
            let transactionsPerSecond: Double
        }

        struct Scenario: Decodable {
            let name: String
            let messages: Int
            let averageMessageBytes: Double
            let partitions: Int
            let groupsByView: [String: Int]
            let groups: Int
            let floor: Rate
            let kcat: Rate?
            let daemon: Rate
            let caughtUp: Rate
            let daemonCPUByThread: [String: Double]
            let throughputVersusFloor: Double
            let throughputToRedisVersusFloor: Double
            let cpuVersusFloor: Double
            let latency: Latency
            let checkpoints: Checkpoints
            let restartSeconds: Double
            let memory: Memory
            let redis: Redis
            let exact: Bool
            let differences: [[String: String]]
        }

        let messagesBase: Int
        let checkpointIntervalSeconds: Double
        let scenarios: [Scenario]
        let exact: Bool
    }

    /// A `--quick` run of the first two keys-curve scenarios, as CI runs it: the JSON report parses, every figure is
    /// measured (positive), Redis equals the replayed views, and the plot has a point per scenario. No timing is
    /// asserted.
    @Test func aQuickRunReportsEveryFigureAnExactResultAndAPlot() throws {
        let scratch = try ScratchDirectory(prefix: "eddy-bench-test")
        defer { scratch.remove() }
        let plot = scratch.path + "/keys.svg"
        let bench = try EddyProcess.run(
            ["bench", "seed", "users-1k", "--quick", "--checkpoint-interval", "0.2", "--json", "--plot", plot], timeout: .seconds(300))
        #expect(bench.status == 0, "\(bench.standardOutput)\n\(bench.standardError.suffix(3000))")
        let report = try JSONDecoder().decode(Report.self, from: Data(bench.standardOutput.utf8))
        #expect(report.messagesBase == 20_000 && report.checkpointIntervalSeconds == 0.2)
        #expect(report.exact)
        try #require(report.scenarios.count == 2)
        let users = report.scenarios[1]
        #expect(users.name == "users-1k" && users.exact && users.groups > 5 && users.groups <= 1_000, "\(users.groups)")
        let svg = try String(contentsOfFile: plot, encoding: .utf8)
        #expect(svg.hasPrefix("<svg") && svg.hasSuffix("</svg>\n"))
        // Throughput (the daemon's, kcat's if installed) and memory: each line through both scenarios.
        #expect(svg.components(separatedBy: "<polyline").count - 1 == (users.kcat == nil ? 2 : 3), "\(svg)")
        #expect(svg.components(separatedBy: "<circle").count - 1 == 2 * (users.kcat == nil ? 2 : 3))
        #expect(svg.contains(">seed<") && svg.contains(">users-1k<"))
        #expect(bench.standardError.contains("plot written to \(plot)"))
        let seed = report.scenarios[0]
        // The keys curve's scenarios run 3 times the base.
        #expect(seed.name == "seed" && seed.messages == 60_000 && seed.partitions >= 1)
        #expect(seed.exact && seed.differences.isEmpty, "\(seed.differences)")
        #expect(seed.groups == 5 && seed.groupsByView == ["events_statisics_mv": 5])
        #expect(seed.averageMessageBytes > 100 && seed.averageMessageBytes < 200)
        for rate in [seed.floor, seed.daemon, seed.caughtUp] + (seed.kcat.map { [$0] } ?? []) {
            #expect(rate.seconds > 0 && rate.messagesPerSecond > 0 && rate.cpuSecondsPerMillion > 0, "\(rate)")
        }
        // Per thread, by the names the daemon gives its own: the hot path decoded every message.
        #expect((seed.daemonCPUByThread["eddy-hot-path"] ?? 0) > 0, "\(seed.daemonCPUByThread)")
        #expect(seed.daemonCPUByThread.values.reduce(0, +) <= seed.daemon.cpuSecondsPerMillion * 1.05 + 0.5, "\(seed.daemonCPUByThread)")
        // Caught up comes first; Redis holds everything after it.
        #expect(seed.caughtUp.seconds <= seed.daemon.seconds && seed.caughtUp.cpuSecondsPerMillion <= seed.daemon.cpuSecondsPerMillion)
        #expect(seed.throughputVersusFloor > 0 && seed.throughputToRedisVersusFloor > 0 && seed.cpuVersusFloor > 0)
        #expect(seed.latency.messages > 0 && seed.latency.rate > 0 && seed.latency.sink == "events_statisics_mv_sink")
        let latency = try #require(seed.latency.endToEnd)
        #expect(latency.count == seed.latency.messages)
        #expect(latency.p50Milliseconds > 0 && latency.p50Milliseconds <= latency.p99Milliseconds && latency.p99Milliseconds <= latency.maxMilliseconds)
        #expect(seed.checkpoints.count > 0, "\(seed.checkpoints)")
        #expect((seed.checkpoints.meanMilliseconds ?? 0) > 0 && (seed.checkpoints.p50Milliseconds ?? 0) > 0)
        #expect((seed.checkpoints.p50Milliseconds ?? 0) <= (seed.checkpoints.p99Milliseconds ?? 0))
        #expect(seed.restartSeconds > 0)
        #expect(seed.memory.peakResidentBytes > 0 && seed.memory.restartedAnonymousBytes > 0)
        #expect(seed.redis.keyWritesPerSecond > 0 && seed.redis.transactionsPerSecond > 0)
        #expect(bench.standardError.contains("eddy bench: seed: producing 60000 messages"))
    }

    /// An unknown scenario is refused before anything starts, naming it and the scenarios there are.
    @Test func anUnknownScenarioIsRefusedNamingTheScenarios() throws {
        let bench = try EddyProcess.run(["bench", "seed", "nope"], timeout: .seconds(30))
        #expect(bench.status == 64, "\(bench.standardError)")
        #expect(bench.standardError.contains("unknown scenario 'nope'"), "\(bench.standardError)")
        #expect(bench.standardError.contains("seed, users-1k, page-user-100k, keys-1m"), "\(bench.standardError)")
        #expect(!bench.standardError.contains("producing"))
        let plot = try EddyProcess.run(["bench", "seed", "size-1k", "--plot", "/tmp/never-written.svg"], timeout: .seconds(30))
        #expect(plot.status == 64 && plot.standardError.contains("--plot needs at least two of the keys-curve scenarios"), "\(plot.standardError)")
        #expect(!FileManager.default.fileExists(atPath: "/tmp/never-written.svg"))
    }

    /// `--list` names every scenario with its message count; `eddy help bench` explains the references.
    @Test func theListAndTheHelpExplainTheScenariosAndReferences() throws {
        let list = try EddyProcess.run(["bench", "--list", "--messages", "10000"])
        #expect(list.status == 0)
        let names = list.standardOutput.split(separator: "\n").map { $0.split(separator: " ").first.map(String.init) ?? "" }
        #expect(names == ["seed", "users-1k", "page-user-100k", "keys-1m", "size-1k", "size-4k", "partitions-1", "partitions-64", "views-3", "cascade"])
        #expect(list.standardOutput.contains("keys-1m         30000 messages"), "\(list.standardOutput)")
        let help = try EddyProcess.run(["help", "bench"])
        #expect(help.status == 0)
        let words = help.standardOutput.split(whereSeparator: \.isWhitespace).joined(separator: " ")
        for text in ["librdkafka's own floor", "kcat -C -e -q", "caught up with the source", "epoch marker", "--json", "--messages", "--quick", "--plot", "Exit status"] {
            #expect(words.contains(text), "\(text) missing from: \(help.standardOutput)")
        }
    }
}
