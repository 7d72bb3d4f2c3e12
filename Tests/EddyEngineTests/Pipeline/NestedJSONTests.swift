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
}
