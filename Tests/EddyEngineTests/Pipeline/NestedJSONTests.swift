import EddyEngine
import EddySQL
import EddyTestSupport
import Foundation
import Testing

/// STRUCT fields and JSONB paths run by the engine over the mock Kafka cluster, checked against SQLite computing
/// the same views over the same messages with its own JSON functions (`json_extract`, `->`, `->>`).
@Suite("Nested JSON", .serialized)
struct NestedJSONTests {
    static let source = """
        CREATE SOURCE ev (event VARCHAR, device STRUCT<os VARCHAR, version INT, screen STRUCT<width INT>>, payload JSONB)
          WITH (connector='kafka', topic='${TOPIC}', properties.bootstrap.server='${KAFKA_BROKERS}', scan.startup.mode='earliest') FORMAT PLAIN ENCODE JSON;

        """

    /// Each view as Eddy runs it and as SQLite does.
    static let views: [(name: String, eddy: String, sqlite: String)] = [
        ("per_os",
         "SELECT (device).os AS os, COUNT(*) AS n, MAX((device).version) AS newest FROM ev GROUP BY (device).os",
         "SELECT json_extract(device, '$.os') AS os, COUNT(*) AS n, MAX(json_extract(device, '$.version')) AS newest FROM ev GROUP BY json_extract(device, '$.os')"),
        ("per_width",
         "SELECT (device).screen.width AS width, COUNT(*) AS n FROM ev WHERE (device).os <> 'ios' GROUP BY (device).screen.width",
         "SELECT json_extract(device, '$.screen.width') AS width, COUNT(*) AS n FROM ev WHERE json_extract(device, '$.os') <> 'ios' GROUP BY json_extract(device, '$.screen.width')"),
        ("per_kind",
         "SELECT payload->>'kind' AS kind, COUNT(*) AS n, SUM((payload->>'amount')::INT) AS total FROM ev GROUP BY payload->>'kind'",
         "SELECT payload->>'kind' AS kind, COUNT(*) AS n, SUM(CAST(payload->>'amount' AS INTEGER)) AS total FROM ev GROUP BY payload->>'kind'"),
        ("tags",
         "SELECT event, payload->'meta'->>'tag' AS tag, payload->'items'->>1 AS second FROM ev WHERE payload->'meta'->>'tag' IS NOT NULL",
         "SELECT event, payload->'meta'->>'tag' AS tag, payload->'items'->>1 AS second FROM ev WHERE payload->'meta'->>'tag' IS NOT NULL"),
    ]

    /// Messages with nesting of every shape: fields missing, null, out of order, strings with escapes, amounts as
    /// numbers and as strings.
    static func messages(count: Int, seed: UInt64) -> [String] {
        var state = seed
        func next(_ bound: Int) -> Int {
            state = state &* 6_364_136_223_846_793_005 &+ 1_442_695_040_888_963_407
            return Int((state >> 33) % UInt64(bound))
        }
        let systems = ["linux", "ios", "android", "mac \\\"pro\\\""]
        let kinds = ["buy", "sell", "hold"]
        return (0..<count).map { _ in
            var device: [String] = []
            if next(6) > 0 { device.append(#""os": "\#(systems[next(systems.count)])""#) }
            if next(5) > 0 { device.append(#""version": \#(next(20))"#) }
            if next(4) > 0 { device.append(#""screen": {"width": \#([320, 640, 1280][next(3)]), "height": 9}"#) }
            if next(2) == 0 { device.reverse() }
            var payload: [String] = [#""kind": "\#(kinds[next(kinds.count)])""#]
            switch next(3) {
            case 0: payload.append(#""amount": \#(next(100))"#)
            case 1: payload.append(#""amount": "\#(next(100))""#)
            default: break
            }
            if next(2) == 0 { payload.append(#""meta": {"tag": "t\#(next(4))", "x": [1, 2]}"#) }
            payload.append(#""items": [\#(next(9)), "s\#(next(3))", null]"#)
            let deviceText = next(10) == 0 ? "null" : "{\(device.joined(separator: ", "))}"
            return #"{"event": "e\#(next(3))", "device": \#(deviceText), "payload": {\#(payload.joined(separator: ", "))}}"#
        }
    }

    @Test("a STRUCT field group-by, a ->> group-by with a cast, and JSONB paths on kept rows agree with SQLite across a restart")
    func nestedViewsAgreeWithABatchComputation() throws {
        let harness = try PipelineHarness(partitions: 2)
        let text = Self.source + Self.views.map { "CREATE MATERIALIZED VIEW \($0.name) AS \($0.eddy);\n" }.joined()
        try harness.start(text)
        let all = Self.messages(count: 300, seed: 11)
        var produced: [String] = []
        for round in 0..<2 {
            if round == 1 {
                try harness.stopPipeline()
                try harness.start(text)
            }
            let batch = Array(all[round * 150..<(round + 1) * 150])
            try harness.broker.produce(topic: harness.topic, messages: batch.enumerated().map { (Int32($0.offset % 2), Array($0.element.utf8)) })
            produced += batch
            let expected = try SQLiteOracle.evaluate(
                table: "ev", columns: ["event", "device", "payload"], jsonRows: produced, views: Self.views.map { ($0.name, $0.sqlite) })
            #expect(expected["per_os"]!.count >= 4 && expected["tags"]!.count > 20, "the premise: varied input \(expected)")
            try CascadeTests.expectViews(harness, equal: expected, views: Self.views.map { ($0.name, $0.eddy) }, "round \(round)")
        }
        try harness.stopPipeline()
    }

    @Test("JSON time values: numbers in the unit timestamptz.handling.mode names, ISO text with or without a zone; a value that does not parse is NULL and counted, the rest of its message still counts")
    func timeValuesFollowTheSourceOption() throws {
        let harness = try PipelineHarness(partitions: 1)
        let text = """
            CREATE SOURCE ev (ts TIMESTAMPTZ, at TIMESTAMP, event VARCHAR)
              WITH (connector='kafka', topic='${TOPIC}', properties.bootstrap.server='${KAFKA_BROKERS}', scan.startup.mode='earliest')
              FORMAT PLAIN ENCODE JSON (timestamptz.handling.mode='milli');
            CREATE MATERIALIZED VIEW per_ts AS SELECT ts, COUNT(*) AS n, MAX(at) AS last_at FROM ev GROUP BY ts;
            """
        try harness.start(text)
        let messages = [
            #"{"ts": 1700000000123, "at": 1700000000000, "event": "a"}"#,
            #"{"ts": "2023-11-14T22:13:20.123Z", "at": "2023-11-14 22:13:21", "event": "b"}"#,
            #"{"ts": "2023-11-15 00:13:20.123+02:00", "event": "c"}"#,
            #"{"ts": "yesterday", "at": 1e300, "event": "d"}"#,
            #"{"ts": 1700000000123.5, "event": "e"}"#,
        ]
        try harness.broker.produce(topic: harness.topic, messages: messages.map { (0, Array($0.utf8)) })
        let instant = "2023-11-14 22:13:20.123000"
        // Three spellings of one instant (milliseconds, Z, +02:00); a fractional millisecond keeps its microseconds.
        let expected = [[instant, "3", "2023-11-14 22:13:21"], ["2023-11-14 22:13:20.123500", "1", "NULL"], ["NULL", "1", "NULL"]]
        var last = ""
        let agreed = try eventually(timeout: .seconds(30), every: .milliseconds(50)) {
            if let ended = harness.endedWith { try ended.get() }
            guard let runner = harness.runner, let rows = try runner.checkpointedRows(view: "per_ts")?.rows.map({ $0.map(CascadeTests.text) }) else { return false }
            let statistics = runner.statistics.snapshot
            last = "\(rows); wrong-type fields \(statistics.wrongTypeFields)"
            return CascadeTests.sorted(rows) == CascadeTests.sorted(expected) && statistics.wrongTypeFields == 2
        }
        #expect(agreed, "\(last)")
        try harness.stopPipeline()
    }
}
