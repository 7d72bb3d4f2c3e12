import EddySQL
import Testing

@testable import EddyEngine

/// The direct rendering of a barrier delta (`SinkRenderer.pairs(ofDelta:collisions:)`) against the general path
/// (the delta's groups restored into a table, rendered through output rows and `Template.render`): the same
/// pairs, in the same order, with the same key collisions.
@Suite struct SinkRendererTests {
    static let source = """
        CREATE SOURCE src (k VARCHAR, s VARCHAR, n BIGINT, b BOOLEAN, d DOUBLE, t TIMESTAMP) WITH (connector='kafka', topic='t', \
        properties.bootstrap.server='h:1') FORMAT PLAIN ENCODE JSON;
        """

    /// The view `v` and sink `k` of `statements` (after the source), as the checkpoint thread renders them.
    func renderer(_ statements: String) throws -> SinkRenderer {
        let result = PipelineCompiler.compile(text: Self.source + "\n" + statements, file: "t.sql", environment: [:])
        let pipeline = try #require(result.pipeline, "\(result.errors.map(\.message))")
        let plan = try ViewPlan(view: try #require(pipeline.views.first), source: try #require(pipeline.sources.first))
        return SinkRenderer(sink: try #require(pipeline.sinks.first), plan: plan)
    }

    func sink(key: String, value: String, primaryKey: String, appendOnly: Bool = true) -> String {
        """
        CREATE SINK k FROM v WITH (connector='redis', primary_key='\(primaryKey)', redis.url='redis://h:1') FORMAT PLAIN ENCODE \
        TEMPLATE (force_append_only='\(appendOnly)', key_format='\(key)', value_format='\(value)');
        """
    }

    /// Applies `messages` to the view, hands its changed groups over as the barrier does, and renders them both
    /// ways; returns the direct pairs after checking that the general path gives the same.
    func renderBothWays(_ renderer: SinkRenderer, _ messages: [String]) throws -> (pairs: SinkPairBatch, collisions: Int) {
        let plan = try #require(renderer.plan)
        var aggregator = plan.makeAggregator()
        for message in messages { aggregator.apply(message) }
        var delta = BarrierDelta()
        aggregator.table.takeDirty(into: &delta)
        #expect(renderer.rendersDeltasDirectly)
        var directCollisions = 0
        let direct = try renderer.pairs(ofDelta: delta, collisions: &directCollisions)
        let table = try plan.table { body in try delta.forEach(body) }
        var generalCollisions = 0
        let general = try renderer.pairs(of: table, groups: 0..<table.groupCount, collisions: &generalCollisions)
        #expect(direct == general)
        #expect(directCollisions == generalCollisions)
        return (direct, directCollisions)
    }

    func text(_ pairs: SinkPairBatch) -> [String: String] {
        Dictionary(uniqueKeysWithValues: pairs.map { (String(decoding: $0.key, as: UTF8.self), $0.value.map { String(decoding: $0, as: UTF8.self) } ?? "(delete)") })
    }

    @Test(arguments: [Int64.min, -1_000_000_007, -1, 0, 9, 10, 12_345, Int64.max])
    func numbersRenderAsStringWritesThem(_ value: Int64) {
        var bytes: [UInt8] = [0x7B]
        DirectTemplateRenderer.appendDecimal(value, to: &bytes)
        #expect(bytes == [0x7B] + Array(String(value).utf8))
    }

    @Test func countsSumsAndExtremesOfTextKeys() throws {
        let renderer = try renderer("""
            CREATE MATERIALIZED VIEW v AS SELECT k, COUNT(*) AS c, COUNT(n) AS cn, SUM(n) AS total, MIN(n) AS lo, MAX(n) AS hi \
            FROM src GROUP BY k;
            """ + sink(key: "u:{k}", value: "{c}/{cn} sum={total} [{lo},{hi}]", primaryKey: "k"))
        // A key past LMDB's 511 bytes, and a pair too long to compose on the stack (rendered part by part).
        let long = String(repeating: "long-é-", count: 100)
        #expect(long.utf8.count > DirectTemplateRenderer.composedPairBytes)
        let (pairs, collisions) = try renderBothWays(renderer, [
            #"{"k": "a", "n": 5}"#, #"{"k": "a", "n": -12}"#, #"{"k": "a"}"#,
            #"{"k": "é☃", "n": -9223372036854775808}"#,
            #"{"k": "big", "n": 9223372036854775807}"#, #"{"k": "big", "n": 9223372036854775807}"#,
            #"{"k": "\#(long)", "n": 0}"#,
            #"{"n": 3}"#,  // the NULL group
            #"{"k": "NULL", "n": 4}"#,  // renders to the NULL group's key
        ])
        #expect(collisions == 1)
        #expect(text(pairs) == [
            "u:a": "3/2 sum=-7 [-12,5]",
            "u:é☃": "1/1 sum=-9223372036854775808 [-9223372036854775808,-9223372036854775808]",
            "u:big": "2/2 sum=\(SQLValue.text(of: 2 * 9223372036854775807.0)) [9223372036854775807,9223372036854775807]",
            "u:\(long)": "1/1 sum=0 [0,0]",
            "u:NULL": "1/1 sum=4 [4,4]",
        ])
    }

    @Test func integerAndBooleanKeysAndGroupsWithoutValues() throws {
        let renderer = try renderer("""
            CREATE MATERIALIZED VIEW v AS SELECT n, b, COUNT(*) AS c, SUM(n) AS total, MAX(n) AS hi FROM src GROUP BY n, b;
            """ + sink(key: "{n}:{b}", value: "{c} {total} {hi}", primaryKey: "n,b"))
        let (pairs, collisions) = try renderBothWays(renderer, [
            #"{"n": -3, "b": true}"#, #"{"n": -3, "b": true}"#, #"{"n": 0, "b": false}"#, #"{"b": false}"#, #"{"n": 7}"#, #"{}"#,
        ])
        #expect(collisions == 0)
        #expect(text(pairs) == ["-3:t": "2 -6 -3", "0:f": "1 0 0", "NULL:f": "1 NULL NULL", "7:NULL": "1 7 7", "NULL:NULL": "1 NULL NULL"])
    }

    @Test func keysTheTemplateCannotTellApartKeepTheLaterGroup() throws {
        let renderer = try renderer("""
            CREATE MATERIALIZED VIEW v AS SELECT k, s, COUNT(*) AS c FROM src GROUP BY k, s;
            """ + sink(key: "{k}{s}", value: "{k}|{s}={c}", primaryKey: "k,s"))
        let (pairs, collisions) = try renderBothWays(renderer, [
            #"{"k": "x", "s": "yz"}"#, #"{"k": "xy", "s": "z"}"#, #"{"k": "xy", "s": "z"}"#, #"{"k": "", "s": "xyz"}"#, #"{"k": "a", "s": "b"}"#,
        ])
        #expect(collisions == 2)
        #expect(text(pairs) == ["xyz": "|xyz=1", "ab": "a|b=1"])
    }

    @Test func otherShapesTakeTheGeneralPath() throws {
        let count = "CREATE MATERIALIZED VIEW v AS SELECT k, COUNT(*) AS c FROM src GROUP BY k"
        let general = [
            count + " HAVING COUNT(*) > 1;" + sink(key: "{k}", value: "{c}", primaryKey: "k", appendOnly: false),
            "CREATE MATERIALIZED VIEW v AS SELECT d, COUNT(*) AS c FROM src GROUP BY d;" + sink(key: "{d}", value: "{c}", primaryKey: "d"),
            "CREATE MATERIALIZED VIEW v AS SELECT t, COUNT(*) AS c FROM src GROUP BY t;" + sink(key: "{t}", value: "{c}", primaryKey: "t"),
            "CREATE MATERIALIZED VIEW v AS SELECT k, AVG(n) AS a FROM src GROUP BY k;" + sink(key: "{k}", value: "{a}", primaryKey: "k"),
            "CREATE MATERIALIZED VIEW v AS SELECT k, MIN(s) AS a FROM src GROUP BY k;" + sink(key: "{k}", value: "{a}", primaryKey: "k"),
            "CREATE MATERIALIZED VIEW v AS SELECT k, COUNT(*) + 1 AS c FROM src GROUP BY k;" + sink(key: "{k}", value: "{c}", primaryKey: "k"),
            count + ";CREATE SINK k FROM v WITH (connector='redis', primary_key='k', redis.url='redis://h:1') FORMAT PLAIN ENCODE JSON;",
        ]
        for statements in general {
            #expect(try !renderer(statements).rendersDeltasDirectly, "\(statements)")
        }
        // An aggregate the templates do not name does not matter, however it is stored.
        let direct = try renderer("""
            CREATE MATERIALIZED VIEW v AS SELECT k, MIN(s) AS lo, COUNT(DISTINCT s) AS kinds, COUNT(*) AS c FROM src GROUP BY k;
            """ + sink(key: "{k}", value: "{c}", primaryKey: "k"))
        let (pairs, _) = try renderBothWays(direct, [#"{"k": "a", "s": "p"}"#, #"{"k": "a", "s": "q"}"#, #"{"k": "b"}"#])
        #expect(text(pairs) == ["a": "2", "b": "1"])
    }
}
