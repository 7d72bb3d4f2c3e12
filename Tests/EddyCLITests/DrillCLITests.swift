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

    /// A short drill on the example pipeline (found by itself, above the binary): six faults, every kind at least
    /// once, Redis and `eddy query` exact, nothing moved backwards, exit 0; the JSON report says so.
    @Test func aShortSeededDrillOfTheExamplePipelineIsExactAndReportsItsFaults() throws {
        let drill = try EddyProcess.run(["drill", "--seed", "7", "--faults", "6", "--json"], timeout: .seconds(120))
        #expect(drill.status == 0, "\(drill.standardOutput)\n\(drill.standardError.suffix(3000))")
        let report = try JSONDecoder().decode(Report.self, from: Data(drill.standardOutput.utf8))
        #expect(report.seed == 7)
        #expect(report.faults.count == 6)
        let kinds = ["daemon-kill-9", "daemon-sigstop", "redis-restart-empty", "redis-pause-writes"]
        #expect(Set(report.faults.map(\.kind)) == Set(kinds))
        #expect(report.faultsByKind.values.reduce(0, +) == 6)
        #expect(report.faults.allSatisfy { $0.recoverySeconds != nil }, "\(report.faults)")
        #expect(report.exact && report.decreases.isEmpty, "\(drill.standardOutput)")
        #expect(report.messagesProduced > 0 && report.messagesCounted == report.messagesProduced)
        #expect(report.monitorPolls > 100)
        #expect(drill.standardError.contains("seed 7"))
    }

    /// `eddy help drill` names every fault kind and what the drill does not cover yet.
    @Test func theHelpExplainsTheFaultsAndWhatIsNotCoveredYet() throws {
        let help = try EddyProcess.run(["help", "drill"])
        #expect(help.status == 0)
        // Whatever width the help is wrapped to: words separated by single spaces.
        let words = help.standardOutput.split(whereSeparator: \.isWhitespace).joined(separator: " ")
        for text in ["kill -9", "SIGSTOP", "SHUTDOWN NOSAVE", "CLIENT PAUSE WRITE", "--seed", "--json", "Not covered yet", "crash points", "broker faults"] {
            #expect(words.contains(text), "\(text) missing from: \(help.standardOutput)")
        }
    }

    /// A pipeline of another shape is refused before anything starts, exit 2, saying what v1 checks.
    @Test func aPipelineOfAnotherShapeIsRefusedWithExitTwo() throws {
        let directory = try ScratchDirectory(prefix: "eddy-drill")
        defer { directory.remove() }
        let path = directory.path + "/users.sql"
        try """
            CREATE SOURCE s (user VARCHAR, event VARCHAR) WITH (connector='kafka', topic='t', properties.bootstrap.server='${KAFKA_BROKERS}', scan.startup.mode='earliest') FORMAT PLAIN ENCODE JSON;
            CREATE MATERIALIZED VIEW v AS SELECT user, COUNT(*) FROM s GROUP BY user;
            CREATE SINK k FROM v WITH (connector='redis', primary_key='user', redis.url='${REDIS_URL}') FORMAT PLAIN ENCODE TEMPLATE (key_format='{user}', value_format='{count}');
            """.write(toFile: path, atomically: true, encoding: .utf8)
        let drill = try EddyProcess.run(["drill", path, "--faults", "1"], timeout: .seconds(30))
        #expect(drill.status == 2, "\(drill.standardError)")
        #expect(drill.standardError.contains("\(path): its view is not SELECT event, COUNT(*)"), "\(drill.standardError)")
        #expect(drill.standardError.contains("checks only the seed pipeline's shape"))
        #expect(!drill.standardError.contains("replay with"), "nothing started: \(drill.standardError)")
    }
}
