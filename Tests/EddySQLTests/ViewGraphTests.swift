import Testing
@testable import EddySQL

/// Views over views, table aliases, qualified names and subqueries in FROM: the pipeline's graph of views.
@Suite struct ViewGraphTests {
    @Test func aViewOverAViewReadsItsOutputColumnsWithTheirTypes() throws {
        let pipeline = try #require(compiledPipeline(exampleSource + """

            CREATE MATERIALIZED VIEW per_user AS SELECT user, COUNT(*) AS events, MAX(event_timestamp) AS last_seen FROM user_events GROUP BY user;
            CREATE MATERIALIZED VIEW count_of_counts AS SELECT events, COUNT(*) AS users, MAX(last_seen) AS latest FROM per_user WHERE events > 1 GROUP BY events;
            CREATE SINK k FROM count_of_counts WITH (connector='redis', primary_key='events', redis.url='redis://h:1') FORMAT PLAIN ENCODE JSON;
            """))
        #expect(pipeline.views.map(\.name) == ["per_user", "count_of_counts"])
        let top = pipeline.views[1]
        #expect(top.input == .view("per_user"))
        #expect(top.sourceName == "user_events")
        #expect(pipeline.views[0].input == .source("user_events"))
        #expect(top.groupBy == [1])
        #expect(top.outputColumns.map(\.type) == [.integer, .integer, .timestamp])
        #expect(top.filter?.description == "(events > 1)")
        #expect(top.constructs.map(\.kind) == [.viewInput])
        #expect(top.constructs[0].location == "test.sql:3:109")
        // The reader's fingerprint includes what it reads: changing per_user changes count_of_counts' state.
        #expect(top.canonicalText.hasPrefix("view per_user (source user_events topic test;"))
        #expect(pipeline.sinks.map(\.viewName) == ["count_of_counts"])
    }

    @Test func aliasesQualifyColumns() throws {
        let pipeline = try #require(compiledPipeline(exampleSource + """

            CREATE MATERIALIZED VIEW a AS SELECT e.event, COUNT(*) FROM user_events AS e WHERE e.page <> '/' GROUP BY e.event;
            CREATE MATERIALIZED VIEW b AS SELECT u.event FROM user_events u;
            CREATE MATERIALIZED VIEW c AS SELECT user_events.event, COUNT(*) FROM user_events GROUP BY user_events.event;
            SELECT x.event FROM a x WHERE x.count > 2;
            """))
        #expect(pipeline.views.map(\.name) == ["a", "b", "c"])
        #expect(pipeline.views[0].groupByNames == ["event"])
        #expect(pipeline.views[1].isAggregating == false)
        #expect(pipeline.queries.first?.columns.map(\.name) == ["event"])
    }

    @Test func aSubqueryInFromIsAnAnonymousViewBeforeItsReader() throws {
        let pipeline = try #require(compiledPipeline(exampleSource + """

            CREATE MATERIALIZED VIEW clicks AS
              SELECT t.user, COUNT(*) AS n FROM (SELECT user, lower(page) AS page FROM user_events WHERE event = 'click') AS t
              WHERE t.page LIKE '/cart%' GROUP BY t.user;
            """))
        #expect(pipeline.views.map(\.name) == ["clicks.t", "clicks"])
        let inner = pipeline.views[0]
        #expect(inner.isDerivedTable && !inner.isAggregating)
        #expect(inner.input == .source("user_events"))
        #expect(inner.outputColumns.map(\.name) == ["user", "page"])
        let row: [SQLValue] = [.null, .string("ann"), .string("/Cart/1"), .string("click")]
        #expect(inner.filter?.evaluate(column: { row[$0] }) == .bool(true))
        #expect(inner.outputColumns.map { $0.expression.evaluate(column: { row[$0] }) } == [.string("ann"), .string("/cart/1")])
        #expect(pipeline.views[1].input == .view("clicks.t"))
        #expect(pipeline.views[1].groupByNames == ["user"])
        // No statement may name the subquery.
        #expect(compile(exampleSource + "\nCREATE MATERIALIZED VIEW c AS SELECT x, COUNT(*) FROM (SELECT user AS x FROM user_events) s GROUP BY x;\nSELECT * FROM \"c.s\";").pipeline == nil)
    }

    @Test func checkPrintsTheGraphAndTheNewConstructs() throws {
        let pipeline = try #require(compiledPipeline(exampleSource + """

            CREATE MATERIALIZED VIEW per_user AS SELECT user, COUNT(*) FILTER (WHERE event = 'click') AS clicks FROM user_events GROUP BY user;
            CREATE MATERIALIZED VIEW top AS SELECT clicks, COUNT(*) AS users FROM (SELECT clicks FROM per_user WHERE clicks > 0) AS p GROUP BY clicks;
            CREATE SINK k FROM top WITH (connector='redis', primary_key='clicks', redis.url='redis://h:1') FORMAT PLAIN ENCODE JSON;
            """))
        let plan = pipeline.planDescription
        #expect(plan.contains("materialized view per_user: from source user_events"))
        #expect(plan.contains("aggregates: count(*) FILTER (WHERE (event = 'click'))"))
        #expect(plan.contains("subquery top.p: from view per_user"))
        #expect(plan.contains("rows:       every input row that passes WHERE (no aggregation)"))
        #expect(plan.contains("materialized view top: from view top.p"))
        #expect(plan.contains("""
            graph (dependency order):
              source user_events -> view per_user
              view per_user -> subquery top.p
              view top.p -> view top
              view top -> sink k
            """))
    }
}
