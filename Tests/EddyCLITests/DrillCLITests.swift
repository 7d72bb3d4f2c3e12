import EddyTestSupport
import Foundation
import Testing

/// `eddy drill` as a user (or CI) runs it: real broker, Redis, load generator and daemon, all its own.
@Suite(.serialized) struct DrillCLITests {
    /// The parts of `--json`'s report the test reads.
    private struct Report: Decodable {
        struct Fault: Decodable {
            let kind: String
            let recoverySeconds: Double?
            let detail: String?
            let crashPointReached: Bool?
        }

        let seed: UInt64
        let faults: [Fault]
        let faultsByKind: [String: Int]
        let messagesProduced: Int
        let messagesCounted: Int
        let decreases: [String]
        let monitorPolls: Int
        let exact: Bool
    }

    /// Runs a short seeded drill of `kinds` on the example pipeline (found by itself, above the binary), one fault of
    /// each kind; checks that it exits 0 with Redis and `eddy query` exact, nothing moved backwards, every fault
    /// recovered from; returns the JSON report.
    private func drill(seed: Int, kinds: [String], pipeline: [String] = [], options: [String] = []) throws -> Report {
        let drill = try EddyProcess.run(
            ["drill"] + pipeline + ["--seed", String(seed), "--faults", String(kinds.count), "--kinds", kinds.joined(separator: ","), "--json"] + options,
            timeout: .seconds(150))
        #expect(drill.status == 0, "\(drill.standardOutput)\n\(drill.standardError.suffix(3000))")
        let report = try JSONDecoder().decode(Report.self, from: Data(drill.standardOutput.utf8))
        #expect(report.seed == UInt64(seed))
        #expect(report.faults.map(\.kind).sorted() == kinds.sorted())
        #expect(report.faultsByKind.values.reduce(0, +) == kinds.count)
        #expect(report.faults.allSatisfy { $0.recoverySeconds != nil }, "\(report.faults)")
        #expect(report.exact && report.decreases.isEmpty, "\(drill.standardOutput)")
        #expect(report.messagesProduced > 0 && report.messagesCounted == report.messagesProduced)
        #expect(report.monitorPolls > 100)
        #expect(drill.standardError.contains("seed \(seed)"))
        return report
    }

    /// The daemon killed, stopped, started on a stale copy of its state, and faced with Redis and the brokers
    /// failing under it: exact throughout.
    @Test func aShortDrillOfProcessRedisAndBrokerFaultsIsExact() throws {
        let kinds = [
            "daemon-kill-9", "daemon-sigstop", "daemon-stale-state", "redis-restart-empty", "redis-pause-writes", "redis-out-of-memory", "broker-down",
            "broker-leader-moved", "broker-fetch-errors",
        ]
        let report = try drill(seed: 7, kinds: kinds)
        #expect(report.faults.first { $0.kind == "broker-down" }?.detail?.hasPrefix("broker ") == true)
        #expect(report.faults.first { $0.kind == "broker-fetch-errors" }?.detail?.hasPrefix("Kafka errors ") == true)
    }

    /// The daemon dying at each of its named crash points (each reached, not given up on): exact throughout.
    @Test func aShortDrillOfEveryCrashPointIsExact() throws {
        let kinds = ["crash-after-commit", "crash-after-exec", "crash-mid-consumption", "crash-whole-view-resend", "crash-startup-restore"]
        let report = try drill(seed: 5, kinds: kinds)
        #expect(report.faults.allSatisfy { $0.crashPointReached == true }, "\(report.faults)")
        #expect(report.faults.allSatisfy { $0.detail?.hasPrefix("EDDY_CRASH_POINT=") == true }, "\(report.faults)")
    }

    /// The drill can fail: with the sink's fence disabled (the debug build's test switch), a daemon started on a
    /// stale copy of its state writes its older values over Redis' newer ones, the monitor sees them move
    /// backwards, and the drill exits 1 saying so.
    @Test func withTheFenceDisabledAStaleStateMakesTheDrillFail() throws {
        let drill = try EddyProcess.run(
            ["drill", "--seed", "8", "--faults", "2", "--kinds", "daemon-stale-state", "--unsafe-disable-fence", "--json"], timeout: .seconds(120))
        #expect(drill.status == 1, "\(drill.standardOutput)\n\(drill.standardError.suffix(3000))")
        let report = try JSONDecoder().decode(Report.self, from: Data(drill.standardOutput.utf8))
        #expect(report.faults.count == 2 && report.faults.allSatisfy { $0.crashPointReached == true })
        #expect(!report.decreases.isEmpty, "\(drill.standardOutput)")
        // Both the counts and the sink's marker went back.
        #expect(report.decreases.contains { $0.contains(" went from ") }, "\(report.decreases)")
        #expect(report.decreases.contains { $0.contains("eddy:redis_sink:epoch went back from ") }, "\(report.decreases)")
    }

    /// `eddy help drill` names every fault kind and what the drill does not cover yet.
    @Test func theHelpExplainsTheFaultsAndWhatIsNotCoveredYet() throws {
        let help = try EddyProcess.run(["help", "drill"])
        #expect(help.status == 0)
        // Whatever width the help is wrapped to: words separated by single spaces.
        let words = help.standardOutput.split(whereSeparator: \.isWhitespace).joined(separator: " ")
        let kinds = ["daemon-kill-9", "daemon-stale-state", "--unsafe-disable-fence", "crash-after-commit", "crash-whole-view-resend", "redis-out-of-memory", "broker-down", "broker-leader-moved", "broker-fetch-errors"]
        for text in kinds + ["kill -9", "SIGSTOP", "SHUTDOWN NOSAVE", "CLIENT PAUSE WRITE", "maxmemory", "EDDY_CRASH_POINT", "--kinds", "--seed", "--json", "Not covered yet"] {
            #expect(words.contains(text), "\(text) missing from: \(help.standardOutput)")
        }
    }

    /// Every fault kind once on examples/several_views.sql (three views, one over another, three sinks, about a
    /// thousand keys): Redis and `eddy query` equal SQLite's evaluation of the same SELECTs over every message
    /// produced, and no sink's marker ever went back.
    @Test func aShortDrillOfEveryFaultKindOnSeveralViewsIsExact() throws {
        let pipeline = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent()
            .deletingLastPathComponent().appendingPathComponent("examples/several_views.sql").path
        let help = try EddyProcess.run(["help", "drill"]).standardOutput.split(whereSeparator: \.isWhitespace).joined(separator: " ")
        let kinds = ["daemon-kill-9", "daemon-sigstop", "daemon-stale-state", "crash-after-commit", "crash-after-exec", "crash-mid-consumption",
            "crash-whole-view-resend", "crash-startup-restore", "redis-restart-empty", "redis-pause-writes", "redis-out-of-memory", "broker-down",
            "broker-leader-moved", "broker-fetch-errors"]
        #expect(kinds.allSatisfy(help.contains))
        let report = try drill(seed: 11, kinds: kinds, pipeline: [pipeline], options: ["--max-delay", "0.3"])
        #expect(report.faults.allSatisfy { $0.crashPointReached != false }, "\(report.faults)")
    }

    /// A crash point named wrong stops `eddy run` at once, saying which names exist, rather than running unarmed.
    @Test func aMisspelledCrashPointStopsTheDaemonAtStart() throws {
        let pipeline = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent()
            .deletingLastPathComponent().appendingPathComponent("examples/seed_pipeline.sql").path
        let run = try EddyProcess.run(["run", pipeline, "--http", "off"], environment: ["EDDY_CRASH_POINT": "after-comit:2"], timeout: .seconds(30))
        #expect(run.status != 0)
        #expect(run.standardError.contains("EDDY_CRASH_POINT='after-comit:2' is not NAME[:N]"), "\(run.standardError)")
        #expect(run.standardError.contains("after-commit, after-exec"), "\(run.standardError)")
    }

    /// A pipeline the drill cannot compute the expected result of is refused before anything starts, exit 2,
    /// saying why.
    @Test func aPipelineOfAnUnsupportedShapeIsRefusedWithExitTwo() throws {
        let directory = try ScratchDirectory(prefix: "eddy-drill")
        defer { directory.remove() }
        let path = directory.path + "/times.sql"
        try """
            CREATE SOURCE s (event_timestamp TIMESTAMP, user VARCHAR, event VARCHAR) WITH (connector='kafka', topic='t', properties.bootstrap.server='${KAFKA_BROKERS}', scan.startup.mode='earliest') FORMAT PLAIN ENCODE JSON;
            CREATE MATERIALIZED VIEW v AS SELECT user, MAX(event_timestamp) AS last FROM s GROUP BY user;
            CREATE SINK k FROM v WITH (connector='redis', primary_key='user', redis.url='${REDIS_URL}') FORMAT PLAIN ENCODE TEMPLATE (key_format='{user}', value_format='{last}');
            """.write(toFile: path, atomically: true, encoding: .utf8)
        let drill = try EddyProcess.run(["drill", path, "--faults", "1"], timeout: .seconds(30))
        #expect(drill.status == 2, "\(drill.standardError)")
        #expect(drill.standardError.contains("\(path): view v reads event_timestamp"), "\(drill.standardError)")
        #expect(drill.standardError.contains("eddy help drill"))
        #expect(!drill.standardError.contains("replay with"), "nothing started: \(drill.standardError)")
    }
}
