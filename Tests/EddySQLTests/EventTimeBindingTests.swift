import Testing
@testable import EddySQL

private let eventSource = """
    CREATE SOURCE s (ts TIMESTAMP, user VARCHAR, event VARCHAR, WATERMARK FOR ts AS ts - INTERVAL '5 SECONDS') WITH (connector='kafka', topic='t', properties.bootstrap.server='h:1') FORMAT PLAIN ENCODE JSON;
    """
private let plainSource = """
    CREATE SOURCE s (ts TIMESTAMP, user VARCHAR, event VARCHAR) WITH (connector='kafka', topic='t', properties.bootstrap.server='h:1') FORMAT PLAIN ENCODE JSON;
    """
private let sink = "CREATE SINK k FROM v WITH (connector='redis', primary_key='event,window_start', redis.url='redis://h:1') FORMAT PLAIN ENCODE TEMPLATE (key_format='{event}:{window_start}', value_format='{n}');"

private func lines(_ parts: String...) -> String { parts.joined(separator: "\n") }

/// Misuse of windows, watermarks, `EMIT ON WINDOW CLOSE` and `INCLUDE`: each reported at its line:column (the
/// column is where `at` first occurs on the line).
let eventTimeBadInputs: [BadInput] = [
    BadInput(sql: lines(plainSource, "CREATE MATERIALIZED VIEW v AS SELECT COUNT(*) FROM TUMBLE(s, user, INTERVAL '1 minute');"), line: 2, at: "user,", message: "TUMBLE needs a TIMESTAMP or TIMESTAMPTZ column for its windows; 'user' is VARCHAR"),
    BadInput(sql: lines(plainSource, "CREATE MATERIALIZED VIEW v AS SELECT COUNT(*) FROM TUMBLE(s, tss, INTERVAL '1 minute');"), line: 2, at: "tss", message: "column 'tss' does not exist in 's'; did you mean 'ts'?"),
    BadInput(sql: lines(plainSource, "CREATE MATERIALIZED VIEW v AS SELECT COUNT(*) FROM TUMBLE(s, ts, INTERVAL '0 seconds');"), line: 2, at: "INTERVAL", message: "the window size of TUMBLE must be positive, not '00:00:00'"),
    BadInput(sql: lines(plainSource, "CREATE MATERIALIZED VIEW v AS SELECT COUNT(*) FROM TUMBLE(s, ts, INTERVAL '-1 minute');"), line: 2, at: "INTERVAL", message: "must be positive, not '-00:01:00'"),
    BadInput(sql: lines(plainSource, "CREATE MATERIALIZED VIEW v AS SELECT COUNT(*) FROM TUMBLE(s, ts, INTERVAL '1 month');"), line: 2, at: "INTERVAL", message: "cannot count months or years ('1 mon')"),
    BadInput(sql: lines(plainSource, "CREATE MATERIALIZED VIEW v AS SELECT COUNT(*) FROM TUMBLE(s, ts, 60);"), line: 2, at: "60", message: "the window size of TUMBLE must be a constant INTERVAL, e.g. INTERVAL '1 minute', not BIGINT"),
    BadInput(sql: lines(plainSource, "CREATE MATERIALIZED VIEW v AS SELECT COUNT(*) FROM TUMBLE(s, ts);"), line: 2, at: "TUMBLE", message: "TUMBLE takes 3 or 4 arguments"),
    BadInput(sql: lines(plainSource, "CREATE MATERIALIZED VIEW v AS SELECT COUNT(*) FROM HOP(s, ts, INTERVAL '2 minutes', INTERVAL '5 minutes');"), line: 2, at: "INTERVAL '5", message: "the window size of HOP ('00:05:00') must be a multiple of its hop ('00:02:00')"),
    BadInput(sql: lines(plainSource, "CREATE MATERIALIZED VIEW v AS SELECT COUNT(*) FROM HOP(s, ts, INTERVAL '0 minutes', INTERVAL '5 minutes');"), line: 2, at: "INTERVAL '0", message: "the hop of HOP must be positive"),
    BadInput(sql: lines(plainSource, "CREATE MATERIALIZED VIEW v AS SELECT COUNT(*) FROM TUMBLE(nowhere, ts, INTERVAL '1 minute');"), line: 2, at: "nowhere", message: "source or materialized view 'nowhere' does not exist"),
    BadInput(sql: lines(plainSource, "CREATE MATERIALIZED VIEW v AS SELECT COUNT(*) FROM TUMBLE((SELECT ts FROM s), ts, INTERVAL '1 minute');"), line: 2, at: "(SELECT", message: "TUMBLE over a subquery is not supported"),
    BadInput(sql: lines(plainSource, "CREATE MATERIALIZED VIEW v AS SELECT window_start, COUNT(*) FROM s GROUP BY window_start;"), line: 2, at: "window_start", message: "column 'window_start' does not exist in 's'"),
    BadInput(sql: lines(plainSource, "CREATE MATERIALIZED VIEW v AS SELECT COUNT(*) FROM generate_series(1, 3);"), line: 2, at: "generate_series", message: "generate_series(...) in FROM is not a table function Eddy has"),
    BadInput(sql: lines(plainSource, "CREATE MATERIALIZED VIEW v AS SELECT user, COUNT(*) FROM s GROUP BY user;", "SELECT * FROM TUMBLE(v, ts, INTERVAL '1 minute');"), line: 3, at: "TUMBLE", message: "TUMBLE in FROM of a query is not supported"),

    // Watermarks.
    BadInput(sql: "CREATE SOURCE s (ts TIMESTAMP, WATERMARK FOR tss AS tss - INTERVAL '5' SECOND) WITH (connector='kafka', topic='t', properties.bootstrap.server='h:1') FORMAT PLAIN ENCODE JSON;", line: 1, at: "tss", message: "WATERMARK FOR an unknown column: column 'tss' does not exist in 's'"),
    BadInput(sql: "CREATE SOURCE s (ts VARCHAR, WATERMARK FOR ts AS ts) WITH (connector='kafka', topic='t', properties.bootstrap.server='h:1') FORMAT PLAIN ENCODE JSON;", line: 1, at: "ts AS", message: "a watermark is on a TIMESTAMP or TIMESTAMPTZ column, and 'ts' is VARCHAR"),
    BadInput(sql: "CREATE SOURCE s (ts TIMESTAMP, WATERMARK FOR ts AS ts + INTERVAL '5' SECOND) WITH (connector='kafka', topic='t', properties.bootstrap.server='h:1') FORMAT PLAIN ENCODE JSON;", line: 1, at: "ts + ", message: "the watermark of 'ts' runs ahead of it"),
    BadInput(sql: "CREATE SOURCE s (ts TIMESTAMP, WATERMARK FOR ts AS 5) WITH (connector='kafka', topic='t', properties.bootstrap.server='h:1') FORMAT PLAIN ENCODE JSON;", line: 1, at: "5)", message: "the watermark of 'ts' must be a time like it"),
    BadInput(sql: "CREATE SOURCE s (ts TIMESTAMP, WATERMARK FOR ts AS ts, WATERMARK FOR ts AS ts) WITH (connector='kafka', topic='t', properties.bootstrap.server='h:1') FORMAT PLAIN ENCODE JSON;", line: 1, at: "WATERMARK", occurrence: 2, message: "a source has one watermark"),
    BadInput(sql: "CREATE SOURCE s (ts TIMESTAMP, WATERMARK ts AS ts) WITH (connector='kafka', topic='t', properties.bootstrap.server='h:1') FORMAT PLAIN ENCODE JSON;", line: 1, at: "ts AS", message: "unknown type 'ts' for column 'watermark'"),

    // EMIT ON WINDOW CLOSE.
    BadInput(sql: lines(plainSource, "CREATE MATERIALIZED VIEW v AS SELECT event, window_start, COUNT(*) FROM TUMBLE(s, ts, INTERVAL '1 minute') GROUP BY event, window_start EMIT ON WINDOW CLOSE;"), line: 2, at: "EMIT", message: "EMIT ON WINDOW CLOSE needs a watermark on 'ts' to know when a window closes: declare WATERMARK FOR ts AS ts - INTERVAL '5 seconds' in source 's'"),
    BadInput(sql: lines(eventSource, "CREATE MATERIALIZED VIEW v AS SELECT event, COUNT(*) FROM s GROUP BY event EMIT ON WINDOW CLOSE;"), line: 2, at: "EMIT", message: "EMIT ON WINDOW CLOSE needs windows: read FROM TUMBLE(...) or HOP(...)"),
    BadInput(sql: lines(eventSource, "CREATE MATERIALIZED VIEW v AS SELECT event, COUNT(*) FROM TUMBLE(s, ts, INTERVAL '1 minute') GROUP BY event EMIT ON WINDOW CLOSE;"), line: 2, at: "EMIT", message: "EMIT ON WINDOW CLOSE needs GROUP BY window_start or window_end"),
    BadInput(sql: lines(eventSource, "CREATE MATERIALIZED VIEW v AS SELECT event, window_start FROM TUMBLE(s, ts, INTERVAL '1 minute') EMIT ON WINDOW CLOSE;"), line: 2, at: "EMIT", message: "EMIT ON WINDOW CLOSE needs an aggregating view"),
    BadInput(sql: lines(eventSource, "CREATE MATERIALIZED VIEW w AS SELECT ts, event FROM s WHERE event <> 'x';", "CREATE MATERIALIZED VIEW v AS SELECT window_end, COUNT(*) AS n FROM TUMBLE(w, ts, INTERVAL '1 minute') GROUP BY window_end EMIT ON WINDOW CLOSE;"), line: 3, at: "EMIT", message: "the columns of a view carry none yet: window the source"),
    BadInput(sql: lines(eventSource, "CREATE MATERIALIZED VIEW v AS SELECT event, window_start, COUNT(*) FROM TUMBLE(s, ts, INTERVAL '1 minute') GROUP BY event, window_start EMIT ON UPDATE;"), line: 2, at: "UPDATE", message: "EMIT ON UPDATE is not a clause"),
    BadInput(sql: lines(eventSource, "CREATE MATERIALIZED VIEW v AS SELECT event, COUNT(*) FROM s GROUP BY event;", "SELECT * FROM v EMIT ON WINDOW CLOSE;"), line: 3, at: "EMIT", message: "EMIT ON WINDOW CLOSE belongs to CREATE MATERIALIZED VIEW"),

    // Temporal filters.
    BadInput(sql: lines(plainSource, "CREATE MATERIALIZED VIEW v AS SELECT event, now() AS t, COUNT(*) FROM s GROUP BY event;"), line: 2, at: "now()", message: "now() is only allowed in a temporal filter: a condition of a view's WHERE or HAVING, joined to the rest by AND"),
    BadInput(sql: lines(plainSource, "CREATE MATERIALIZED VIEW v AS SELECT event, COUNT(*) FROM s WHERE ts > now() - INTERVAL '1 hour' OR event = 'a' GROUP BY event;"), line: 2, at: "now()", message: "now() is only allowed in a temporal filter"),
    BadInput(sql: lines(plainSource, "CREATE MATERIALIZED VIEW v AS SELECT event, COUNT(*) FROM s GROUP BY event HAVING MAX(ts) > now() OR COUNT(*) > 2;"), line: 2, at: "now()", message: "now() is only allowed in a temporal filter"),
    BadInput(sql: lines(plainSource, "CREATE MATERIALIZED VIEW v AS SELECT event, COUNT(*) FROM s GROUP BY event HAVING MAX(user) > now();"), line: 2, at: "MAX(user)", message: "a temporal filter compares now() with a TIMESTAMP or TIMESTAMPTZ, and this is VARCHAR"),
    BadInput(sql: lines(plainSource, "CREATE MATERIALIZED VIEW v AS SELECT event, COUNT(*) FROM s WHERE ts = now() GROUP BY event;"), line: 2, at: "=", message: "a temporal filter compares a time with now() by <, <=, > or >=, not ="),
    BadInput(sql: lines(plainSource, "CREATE MATERIALIZED VIEW v AS SELECT event, COUNT(*) FROM s WHERE event > now() - INTERVAL '1 hour' GROUP BY event;"), line: 2, at: "event >", message: "a temporal filter compares now() with a TIMESTAMP or TIMESTAMPTZ, and this is VARCHAR"),
    BadInput(sql: lines(plainSource, "CREATE MATERIALIZED VIEW v AS SELECT event, COUNT(*) FROM s WHERE ts > now() - INTERVAL '1 month' GROUP BY event;"), line: 2, at: "INTERVAL", message: "a temporal filter's interval cannot count months or years ('1 mon')"),
    BadInput(sql: lines(plainSource, "CREATE MATERIALIZED VIEW v AS SELECT event, COUNT(*) FROM s WHERE ts > now() - 60 GROUP BY event;"), line: 2, at: "60", message: "a temporal filter adds to now() or subtracts from it a constant INTERVAL"),
    BadInput(sql: lines(plainSource, "CREATE MATERIALIZED VIEW v AS SELECT event, COUNT(*) FROM s WHERE tss > now() GROUP BY event;"), line: 2, at: "tss", message: "column 'tss' does not exist in 's'"),
    BadInput(sql: lines(plainSource, "CREATE MATERIALIZED VIEW v AS SELECT event, COUNT(*) FROM s GROUP BY event;", "SELECT * FROM v WHERE event > now();"), line: 3, at: "now()", message: "now() is only allowed in a temporal filter"),
    BadInput(sql: lines(eventSource, "CREATE MATERIALIZED VIEW v AS SELECT event, window_start, COUNT(*) FROM TUMBLE(s, ts, INTERVAL '1 minute') GROUP BY event, window_start HAVING MAX(ts) > now() - INTERVAL '1 hour' EMIT ON WINDOW CLOSE;"), line: 2, at: "EMIT", message: "a temporal filter in HAVING cannot be combined with EMIT ON WINDOW CLOSE"),

    // INCLUDE.
    BadInput(sql: "CREATE SOURCE s (ts TIMESTAMP) INCLUDE header WITH (connector='kafka', topic='t', properties.bootstrap.server='h:1') FORMAT PLAIN ENCODE JSON;", line: 1, at: "header", message: "INCLUDE header (not supported yet): a source can include timestamp, partition, offset, key"),
    BadInput(sql: "CREATE SOURCE s (ts TIMESTAMP) INCLUDE partition AS ts WITH (connector='kafka', topic='t', properties.bootstrap.server='h:1') FORMAT PLAIN ENCODE JSON;", line: 1, at: "ts WITH", message: "column 'ts' of INCLUDE partition is already a column of source 's'"),
    BadInput(sql: "CREATE SOURCE s (ts TIMESTAMP) INCLUDE key INCLUDE key AS k2 WITH (connector='kafka', topic='t', properties.bootstrap.server='h:1') FORMAT PLAIN ENCODE JSON;", line: 1, at: "key", occurrence: 2, message: "INCLUDE key is given twice"),
]

/// `TUMBLE`/`HOP` in FROM, `WATERMARK FOR`, `EMIT ON WINDOW CLOSE` and `INCLUDE`, bound.
@Suite struct EventTimeBindingTests {
    @Test(arguments: eventTimeBadInputs)
    func misuseIsReportedWhereItIs(_ input: BadInput) throws {
        try BadInputTests().reportsTheErrorWhereItIs(input)
    }

    @Test func temporalConditionsAreSplitFromWhereEitherWayRound() throws {
        let pipeline = try #require(compiledPipeline(lines(
            plainSource,
            "CREATE MATERIALIZED VIEW v AS SELECT event, COUNT(*) FROM s WHERE ts > now() - INTERVAL '1 hour' AND event <> 'x' AND now() + INTERVAL '5' MINUTE >= ts GROUP BY event;",
            "CREATE MATERIALIZED VIEW w AS SELECT user FROM s WHERE INTERVAL '1 day' + now() < ts + INTERVAL '2 days';")))
        let view = pipeline.views[0]
        #expect(view.filter?.description == "(event <> 'x')")
        #expect(view.temporalFilter.map(\.description) == ["ts > now() - INTERVAL '01:00:00'", "ts <= now() + INTERVAL '00:05:00'"])
        #expect(view.temporalFilter.map(\.comparison) == [.greater, .lessOrEqual])
        #expect(view.temporalFilter.map(\.offsetMicroseconds) == [-3_600_000_000, 300_000_000])
        #expect(view.temporalFilter[0].location == "test.sql:2:67")
        #expect(view.canonicalText.contains("; temporal filter ts > now() - INTERVAL '01:00:00'"))
        let rows = pipeline.views[1]
        #expect(rows.filter == nil)
        #expect(rows.temporalFilter.map(\.comparison) == [.greater] && rows.temporalFilter[0].offsetMicroseconds == 86_400_000_000)
    }

    @Test func tumbleAddsWindowColumnsForSelectGroupByAndTemplates() throws {
        let result = compile(lines(
            eventSource,
            "CREATE MATERIALIZED VIEW v AS SELECT event, t.window_start, COUNT(*) AS n FROM TUMBLE(s, ts, INTERVAL '1 MINUTE') AS t GROUP BY event, window_start;",
            sink,
            "CREATE MATERIALIZED VIEW peak AS SELECT event, MAX(n) AS peak FROM v GROUP BY event;"))
        let pipeline = try #require(result.pipeline, "\(result.errors.map(\.description))")
        let view = pipeline.views[0]
        let window = try #require(view.window)
        #expect(window.kind == .tumble(sizeMicroseconds: 60_000_000))
        #expect(window.timeColumn == 0 && window.timeColumnName == "ts" && window.offsetMicroseconds == 0)
        #expect(window.windowStartColumn == 3)
        #expect(window.location == "test.sql:2:80")
        #expect(view.input == .source("s"))
        #expect(view.groupBy == [2, 3])
        #expect(view.outputColumns.map(\.name) == ["event", "window_start", "n"])
        #expect(view.outputColumns.map(\.type) == [.text, .timestamp, .integer])
        #expect(view.canonicalText.contains("; window TUMBLE(ts, INTERVAL '00:01:00')"))
        #expect(view.emitOnWindowClose == nil)
        let sink = try #require(pipeline.sinks.first)
        guard case .template(let key, _) = sink.redis.encoding else { Issue.record("not a template"); return }
        #expect(key.render { index in [SQLValue.string("click"), .string("2026-11-24 17:00:00"), .int(3)][index] } == "click:2026-11-24 17:00:00")
        // A view over the window view: the peak per-minute count per event.
        #expect(pipeline.views[1].input == .view("v"))
        #expect(pipeline.views[1].window == nil)
    }

    @Test func hopTakesHopThenSizeAndAnOffset() throws {
        let pipeline = try #require(compiledPipeline(lines(
            plainSource,
            "CREATE MATERIALIZED VIEW v AS SELECT window_start, window_end, COUNT(*) FROM HOP(s, ts, INTERVAL '1 MINUTE', INTERVAL '5 MINUTES', INTERVAL '30' SECOND) GROUP BY window_start, window_end;",
            "CREATE MATERIALIZED VIEW r AS SELECT user, window_end FROM TUMBLE(s, ts, INTERVAL '1' HOUR) WHERE window_start > '2026-01-01';")))
        let hop = try #require(pipeline.views[0].window)
        #expect(hop.kind == .hop(hopMicroseconds: 60_000_000, sizeMicroseconds: 300_000_000))
        #expect(hop.offsetMicroseconds == 30_000_000)
        #expect(hop.description == "HOP(ts, INTERVAL '00:01:00', INTERVAL '00:05:00', INTERVAL '00:00:30')")
        // A window view that does not aggregate: its rows with their windows.
        let rows = pipeline.views[1]
        #expect(!rows.isAggregating)
        #expect(rows.window?.kind == .tumble(sizeMicroseconds: 3_600_000_000))
        #expect(rows.filter?.description == "(window_start > '2026-01-01 00:00:00')")
        #expect(rows.outputColumns.map(\.name) == ["user", "window_end"])
    }

    @Test func aTimestamptzWindowHasTimestamptzBounds() throws {
        let pipeline = try #require(compiledPipeline(lines(
            "CREATE SOURCE s (ts TIMESTAMPTZ, event VARCHAR) WITH (connector='kafka', topic='t', properties.bootstrap.server='h:1') FORMAT PLAIN ENCODE JSON;",
            "CREATE MATERIALIZED VIEW v AS SELECT window_start, COUNT(*) FROM TUMBLE(s, ts, INTERVAL '1 day') GROUP BY window_start;")))
        #expect(pipeline.views[0].outputColumns[0].type == .timestamptz)
    }

    @Test func theWatermarkIsKeptOnTheSource() throws {
        let pipeline = try #require(compiledPipeline(eventSource))
        let watermark = try #require(pipeline.sources[0].watermark)
        #expect(watermark.column == 0 && watermark.columnName == "ts")
        #expect(watermark.delayMicroseconds == 5_000_000)
        #expect(watermark.expression.description == "(ts - INTERVAL '00:00:05')")
        #expect(watermark.location == "test.sql:1:61")
        #expect(pipeline.sources[0].columns.map(\.name) == ["ts", "user", "event"])
        let bare = try #require(compiledPipeline("CREATE SOURCE s (ts TIMESTAMP, WATERMARK FOR ts AS ts) WITH (connector='kafka', topic='t', properties.bootstrap.server='h:1') FORMAT PLAIN ENCODE JSON;"))
        #expect(bare.sources[0].watermark?.delayMicroseconds == 0)
        let computed = try #require(compiledPipeline("CREATE SOURCE s (ts TIMESTAMP, WATERMARK FOR ts AS date_trunc('minute', ts)) WITH (connector='kafka', topic='t', properties.bootstrap.server='h:1') FORMAT PLAIN ENCODE JSON;"))
        #expect(computed.sources[0].watermark?.delayMicroseconds == nil)
    }

    @Test func emitOnWindowCloseIsKeptWithTheKeyThatCloses() throws {
        let pipeline = try #require(compiledPipeline(lines(
            eventSource,
            "CREATE MATERIALIZED VIEW v AS SELECT event, window_start, COUNT(*) AS n FROM TUMBLE(s, ts, INTERVAL '1 minute') GROUP BY event, window_start EMIT ON WINDOW CLOSE;",
            "CREATE MATERIALIZED VIEW h AS SELECT window_end, event, COUNT(*) AS n FROM HOP(s, ts, INTERVAL '1 minute', INTERVAL '2 minutes') GROUP BY window_end, event EMIT ON WINDOW CLOSE;")))
        let byStart = try #require(pipeline.views[0].emitOnWindowClose)
        #expect(byStart.windowKey == 1 && byStart.endOffsetMicroseconds == 60_000_000)
        #expect(byStart.location == "test.sql:2:142")
        let byEnd = try #require(pipeline.views[1].emitOnWindowClose)
        #expect(byEnd.windowKey == 0 && byEnd.endOffsetMicroseconds == 0)
        #expect(pipeline.views[0].canonicalText.hasSuffix("; emit on window close"))
        #expect(pipeline.views[0].definitionText.hasSuffix("EMIT ON WINDOW CLOSE"))
        // `emit` is no alias of the relation before it.
        #expect(compiledPipeline(lines(eventSource, "CREATE MATERIALIZED VIEW v AS SELECT window_start, COUNT(*) FROM TUMBLE(s, ts, INTERVAL '1 minute') GROUP BY window_start EMIT ON WINDOW CLOSE;")) != nil)
    }

    @Test func includeAddsKafkaMetadataColumnsAfterTheJSONColumns() throws {
        let pipeline = try #require(compiledPipeline(lines(
            "CREATE SOURCE s (event VARCHAR) INCLUDE timestamp AS kafka_ts INCLUDE partition INCLUDE offset INCLUDE key AS message_key WITH (connector='kafka', topic='t', properties.bootstrap.server='h:1') FORMAT PLAIN ENCODE JSON;",
            "CREATE MATERIALIZED VIEW v AS SELECT _rw_kafka_partition, window_start, COUNT(*) FROM TUMBLE(s, kafka_ts, INTERVAL '1 minute') GROUP BY _rw_kafka_partition, window_start;")))
        let source = pipeline.sources[0]
        #expect(source.columns.map(\.name) == ["event"])
        #expect(source.includedColumns.map(\.kind) == [.timestamp, .partition, .offset, .key])
        #expect(source.rowColumns.map(\.name) == ["event", "kafka_ts", "_rw_kafka_partition", "_rw_kafka_offset", "message_key"])
        #expect(source.rowColumns.map(\.type) == [.varchar, .timestamptz, .varchar, .varchar, .varchar])
        #expect(source.includedColumns[0].location == "test.sql:1:33")
        #expect(pipeline.views[0].window?.timeColumn == 1)
        #expect(pipeline.views[0].groupBy == [2, 5])
    }

    @Test func thePlanShowsWindowsWatermarksIncludesAndEmission() throws {
        let pipeline = try #require(compiledPipeline(lines(
            "CREATE SOURCE s (ts TIMESTAMP, event VARCHAR, WATERMARK FOR ts AS ts - INTERVAL '5 SECONDS') INCLUDE partition WITH (connector='kafka', topic='t', properties.bootstrap.server='h:1') FORMAT PLAIN ENCODE JSON;",
            "CREATE MATERIALIZED VIEW v AS SELECT event, window_start, COUNT(*) AS n FROM TUMBLE(s, ts, INTERVAL '1 minute') GROUP BY event, window_start EMIT ON WINDOW CLOSE;")))
        let plan = pipeline.planDescription
        #expect(plan.contains("  include: partition AS _rw_kafka_partition VARCHAR (from the Kafka message)"), "\(plan)")
        #expect(plan.contains("  watermark: for ts as (ts - INTERVAL '00:00:05') (trails the largest ts seen by 00:00:05); later rows behind it are late"), "\(plan)")
        #expect(plan.contains("  window:     TUMBLE(ts, INTERVAL '00:01:00') adds window_start, window_end"), "\(plan)")
        #expect(plan.contains("  emit:       on window close (each group once, when the watermark passes window_start + 00:01:00; its state then dropped)"), "\(plan)")
    }
}
