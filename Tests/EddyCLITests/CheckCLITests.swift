import EddyTestSupport
import Foundation
import Testing

private let examplePipeline = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent()
    .deletingLastPathComponent().appendingPathComponent("examples/seed_pipeline.sql").path

/// `eddy check` as a user runs it.
@Suite struct CheckCLITests {
    @Test func theExamplePipelineChecksAndItsPlanHidesSecrets() throws {
        let run = try EddyProcess.run(["check", examplePipeline], environment: [
            "KAFKA_BROKERS": "broker-1:9092", "REDIS_URL": "redis://app:hunter2-secret@cache:6380/1",
        ])
        #expect(run.status == 0, "\(run.standardError)")
        let plan = run.standardOutput
        #expect(plan.components(separatedBy: "\nsource ").count + (plan.hasPrefix("source ") ? 1 : 0) - 1 == 1)
        #expect(plan.hasPrefix("source user_events"))
        #expect(plan.components(separatedBy: "materialized view ").count - 1 == 1)
        #expect(plan.contains("columns:    event VARCHAR, count BIGINT"))
        #expect(plan.components(separatedBy: "\nsink ").count - 1 == 1)
        #expect(plan.contains("redis://app:***@cache:6380/1"))
        #expect(!plan.contains("hunter2") && !run.standardError.contains("hunter2"))
    }

    /// `eddy check` prints how each view runs: on the hot path, or as an operator over a view's changes or over
    /// the source's rows (a view that keeps every row says so).
    @Test func eddyCheckPrintsTheDataflow() throws {
        let directory = try ScratchDirectory(prefix: "eddy-check")
        defer { directory.remove() }
        let path = directory.path + "/p.sql"
        try """
            CREATE SOURCE s (user VARCHAR, event VARCHAR) WITH (connector='kafka', topic='t', properties.bootstrap.server='127.0.0.1:1') FORMAT PLAIN ENCODE JSON;
            CREATE MATERIALIZED VIEW a AS SELECT user, COUNT(*) AS n FROM s GROUP BY user;
            CREATE MATERIALIZED VIEW b AS SELECT n, COUNT(*) AS users FROM a GROUP BY n;
            CREATE MATERIALIZED VIEW c AS SELECT user, event FROM s WHERE event = 'x';
            CREATE MATERIALIZED VIEW d AS SELECT event, COUNT(*) FILTER (WHERE user = 'x') AS xs FROM s GROUP BY event;
            """.write(toFile: path, atomically: true, encoding: .utf8)
        let check = try EddyProcess.run(["check", path])
        #expect(check.status == 0, "\(check.standardError)")
        let dataflow = check.standardOutput.components(separatedBy: "dataflow (").last ?? ""
        #expect(dataflow.contains("source s (topic t): each message decoded once, for a"))
        #expect(dataflow.contains("view a: GROUP BY user on the hot path (source thread); its changed groups become changes at each barrier"))
        #expect(dataflow.contains("view b: aggregate (count(*)) over the changes of view a, on the checkpoint thread at each barrier"))
        #expect(dataflow.contains("view c: filter and projection over the rows of source s"), "\(dataflow)")
        #expect(dataflow.contains("every row stored (keyed by partition and offset)"))
        #expect(dataflow.contains("view d: aggregate (count(*) FILTER (WHERE"), "\(dataflow)")
    }

    @Test func errorsNameFileLineAndColumnAndExitOne() throws {
        let directory = try ScratchDirectory(prefix: "eddy-check")
        defer { directory.remove() }
        let path = directory.path + "/bad.sql"
        try """
            CREATE SOURCE s (event VARCHAR) WITH (connector='kafka', topic='t', properties.bootstrap.server='h:1', properties.sasl.password='hunter2') FORMAT PLAIN ENCODE JSON;
            CREATE MATERIALIZED VIEW v AS SELECT evnt, COUNT(*) FROM s GROUP BY event;
            """.write(toFile: path, atomically: true, encoding: .utf8)
        let run = try EddyProcess.run(["check", path])
        #expect(run.status == 1)
        #expect(run.standardOutput.isEmpty)
        let lines = run.standardError.split(separator: "\n", omittingEmptySubsequences: false)
        #expect(lines.first == "\(path):2:38: error: column 'evnt' does not exist in 's'; did you mean 'event'? (columns: event)")
        #expect(lines.dropFirst(2).first?.trimmingCharacters(in: .whitespaces) == "^~~~")
        #expect(!run.standardError.contains("hunter2"))
    }

    /// The fault drill's lines: a sink line that does not parse (a doubled '=', an unterminated string) is
    /// echoed with its password starred, and so is an unquoted Kafka password.
    @Test func aLineThatDoesNotParseIsEchoedWithItsSecretsMasked() throws {
        let directory = try ScratchDirectory(prefix: "eddy-check")
        defer { directory.remove() }
        let source = "CREATE SOURCE s (event VARCHAR) WITH (connector='kafka', topic='t', properties.bootstrap.server='h:1') FORMAT PLAIN ENCODE JSON;"
        let view = "CREATE MATERIALIZED VIEW v AS SELECT event, COUNT(*) FROM s GROUP BY event;"
        let sinks = [
            "CREATE SINK k FROM v WITH (connector='redis', primary_key='event', redis.url = = 'redis://user:hunter2pw@host') FORMAT PLAIN ENCODE JSON;",
            "CREATE SINK k FROM v WITH (connector='redis', primary_key='event', redis.url='redis://user:hunter2pw@host) FORMAT PLAIN ENCODE JSON;",
        ]
        for (index, sink) in sinks.enumerated() {
            let path = directory.path + "/bad\(index).sql"
            try [source.replacingOccurrences(of: "'h:1')", with: "'h:1', properties.sasl.password = hunter2kafka)"), view, sink]
                .joined(separator: "\n").write(toFile: path, atomically: true, encoding: .utf8)
            let run = try EddyProcess.run(["check", path])
            #expect(run.status == 1)
            #expect(!run.standardError.contains("hunter2") && !run.standardOutput.contains("hunter2"), "\(run.standardError)")
            #expect(run.standardError.contains("\(path):3:"), "\(run.standardError)")
            #expect(run.standardError.contains("redis://\(String(repeating: "*", count: "user:hunter2pw".count))@host"), "\(run.standardError)")
            #expect(run.standardError.contains("properties.sasl.password = \(String(repeating: "*", count: "hunter2kafka".count)))"))
        }
    }

    /// Windows, watermarks and EMIT ON WINDOW CLOSE: `eddy check` prints how they run, and explains each
    /// mistake at its line:column; a watermark that is not a fixed delay is refused by `eddy run` at its
    /// line:column before it connects anywhere (nothing listens on these ports).
    @Test func eddyCheckExplainsWindowsAndTheirErrorsAtLineAndColumn() throws {
        let directory = try ScratchDirectory(prefix: "eddy-check")
        defer { directory.remove() }
        let path = directory.path + "/windows.sql"
        try """
            CREATE SOURCE s (ts TIMESTAMP, event VARCHAR, WATERMARK FOR ts AS ts - INTERVAL '5' SECOND) WITH (connector='kafka', topic='t', properties.bootstrap.server='127.0.0.1:9', watermark.idle.timeout='10 seconds') FORMAT PLAIN ENCODE JSON;
            CREATE MATERIALIZED VIEW v AS SELECT event, window_start, COUNT(*) AS n FROM TUMBLE(s, ts, INTERVAL '1 minute') GROUP BY event, window_start EMIT ON WINDOW CLOSE;
            CREATE MATERIALIZED VIEW peak AS SELECT event, MAX(n) AS top FROM v GROUP BY event;
            """.write(toFile: path, atomically: true, encoding: .utf8)
        let check = try EddyProcess.run(["check", path])
        #expect(check.status == 0, "\(check.standardError)")
        #expect(check.standardOutput.contains("  window:     TUMBLE(ts, INTERVAL '00:01:00') adds window_start, window_end"), "\(check.standardOutput)")
        #expect(check.standardOutput.contains("view v: aggregate (count(*)) emitting each window's rows once, when the watermark passes its end (its state then dropped), over the rows of source s in windows of TUMBLE(ts, INTERVAL '00:01:00')"), "\(check.standardOutput)")
        #expect(check.standardOutput.contains("a partition idle for 10.0 seconds does not hold it back"), "\(check.standardOutput)")

        let mistakes = directory.path + "/mistakes.sql"
        let lines = [
            "CREATE SOURCE s (ts TIMESTAMP, n INT, WATERMARK FOR tz AS tz - INTERVAL '5' SECOND) WITH (connector='kafka', topic='t', properties.bootstrap.server='127.0.0.1:9', watermark.idle.timeout='soon') FORMAT PLAIN ENCODE JSON;",
            "CREATE SOURCE p (ts TIMESTAMP, n INT) WITH (connector='kafka', topic='p', properties.bootstrap.server='127.0.0.1:9') FORMAT PLAIN ENCODE JSON;",
            "CREATE MATERIALIZED VIEW a AS SELECT window_start, COUNT(*) AS c FROM TUMBLE(p, n, INTERVAL '1 minute') GROUP BY window_start;",
            "CREATE MATERIALIZED VIEW b AS SELECT window_start, COUNT(*) AS c FROM TUMBLE(p, ts, INTERVAL '1 minute') GROUP BY window_start EMIT ON WINDOW CLOSE;",
            "CREATE MATERIALIZED VIEW c AS SELECT n, COUNT(*) AS c FROM p GROUP BY n EMIT ON WINDOW CLOSE;",
        ]
        try lines.joined(separator: "\n").write(toFile: mistakes, atomically: true, encoding: .utf8)
        /// `file:line:column` of the first `token` on line `line` (from 1).
        func location(_ line: Int, _ token: String) -> String {
            let text = lines[line - 1]
            return "\(mistakes):\(line):\(text.distance(from: text.startIndex, to: text.range(of: token)!.lowerBound) + 1)"
        }
        let errors = try EddyProcess.run(["check", mistakes])
        #expect(errors.status == 1)
        for expected in [
            "\(location(1, "tz AS")): error: WATERMARK FOR an unknown column: column 'tz' does not exist in 's'",
            "\(location(1, "'soon'")): error: watermark.idle.timeout must be a positive interval such as '30 seconds', not 'soon'",
            "\(location(3, "n, INTERVAL")): error: TUMBLE needs a TIMESTAMP or TIMESTAMPTZ column for its windows; 'n' is INTEGER",
            "\(location(4, "EMIT")): error: EMIT ON WINDOW CLOSE needs a watermark on 'ts' to know when a window closes",
            "\(location(5, "EMIT")): error: EMIT ON WINDOW CLOSE needs windows",
        ] {
            #expect(errors.standardError.contains(expected), "\(expected) not in \(errors.standardError)")
        }

        let watermarked = directory.path + "/watermark.sql"
        try """
            CREATE SOURCE s (ts TIMESTAMP, event VARCHAR, WATERMARK FOR ts AS ts - INTERVAL '1' MONTH) WITH (connector='kafka', topic='t', properties.bootstrap.server='127.0.0.1:9') FORMAT PLAIN ENCODE JSON;
            CREATE MATERIALIZED VIEW v AS SELECT event, COUNT(*) AS n FROM s GROUP BY event;
            """.write(toFile: watermarked, atomically: true, encoding: .utf8)
        let refused = try EddyProcess.run(["run", watermarked, "--state-dir", directory.path + "/state2", "--http", "off"], timeout: .seconds(30))
        #expect(refused.status == 1, "status \(refused.status): \(refused.standardError)")
        #expect(refused.standardError.contains("\(watermarked):1:47: WATERMARK FOR ts AS (ts - INTERVAL '1 mon'): only ts - INTERVAL '...' (a fixed delay) is run"), "\(refused.standardError)")
    }

    @Test func aMissingFileOrVariableIsOneClearLine() throws {
        let missing = try EddyProcess.run(["check", "/nonexistent/pipeline.sql"])
        #expect(missing.status != 0)
        #expect(missing.standardError.contains("no such file: /nonexistent/pipeline.sql"))
        let unset = try EddyProcess.run(["check", examplePipeline], environment: ["KAFKA_BROKERS": "", "REDIS_URL": ""])
        #expect(unset.status == 1)
    }
}
