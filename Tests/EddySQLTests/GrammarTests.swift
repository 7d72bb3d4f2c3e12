import Testing
@testable import EddySQL

@Suite struct GrammarTests {
    @Test func everyColumnTypeAndItsSynonyms() throws {
        let text = """
            create table T ("Mixed Case" text, b int, c integer, d bigint, e smallint, f real, g double precision, h float,
              i boolean, j timestamp, k timestamptz, l date, m decimal(10, 2), n numeric, o varchar(255), p character varying,
              q timestamp with time zone, r timestamp without time zone, s int8, t bool)
            with (connector = 'kafka', topic = 't', properties.bootstrap.server = 'h:1') format plain encode json;
            """
        let source = try #require(compiledPipeline(text)?.sources.first)
        #expect(source.isTable)
        #expect(source.name == "t")
        #expect(source.columns.map(\.type) == [
            .varchar, .integer, .integer, .bigint, .smallint, .real, .double, .double, .boolean, .timestamp, .timestamptz,
            .date, .decimal, .decimal, .varchar, .varchar, .timestamptz, .timestamp, .bigint, .boolean,
        ])
        #expect(source.columns[0].name == "Mixed Case")
    }

    @Test func commentsCaseAndSeparators() throws {
        let text = """
            -- a comment
            /* a /* nested */ block
               comment */
            CrEaTe SoUrCe user_events (event VARCHAR) WITH (connector='kafka', topic='t', properties.bootstrap.server='h:1') FORMAT PLAIN ENCODE JSON;;
            create materialized view "V1" as select event, count(*) as "N" -- trailing
              from user_events group by event
            """
        let pipeline = try #require(compiledPipeline(text))
        #expect(pipeline.views.map(\.name) == ["V1"])
        #expect(pipeline.views[0].outputColumns.map(\.name) == ["event", "N"])
    }

    @Test func outputNamesAndTypesFollowPostgreSQL() throws {
        let text = exampleSource.replacingOccurrences(of: "event VARCHAR )", with: "event VARCHAR, amount BIGINT, price DOUBLE PRECISION, cost DECIMAL )") + """

            CREATE MATERIALIZED VIEW v AS SELECT event, COUNT(*), COUNT(user) AS users, COUNT(DISTINCT page) AS pages,
              SUM(amount), SUM(price) AS price_sum, SUM(cost) AS cost_sum, MIN(event_timestamp), MAX(page) AS last_page,
              AVG(amount) AS avg_amount, AVG(price) AS avg_price, COUNT(*) * 2 AS twice
              FROM user_events GROUP BY event;
            """
        let view = try #require(compiledPipeline(text)?.views.first)
        #expect(view.outputColumns.map(\.name) == [
            "event", "count", "users", "pages", "sum", "price_sum", "cost_sum", "min", "last_page", "avg_amount", "avg_price", "twice",
        ])
        #expect(view.outputColumns.map(\.type) == [
            .text, .integer, .integer, .integer, .integer, .double, .numeric, .timestamp, .text, .numeric, .double, .integer,
        ])
        #expect(view.aggregates.map(\.description) == [
            "count(*)", "count(user)", "count(DISTINCT page)", "sum(amount)", "sum(price)", "sum(cost)", "min(event_timestamp)",
            "max(page)", "avg(amount)", "avg(price)",
        ])
        // COUNT(*) * 2 reuses the first aggregate instead of keeping a second copy.
        #expect(view.outputColumns[11].expression == .binary(.multiply, .aggregate(0, text: "count(*)"), .literal(.int(2))))
    }

    @Test func havingMayUseAggregatesTheSelectListDoesNot() throws {
        let view = try #require(compiledPipeline(exampleSource + "\nCREATE MATERIALIZED VIEW v AS SELECT event FROM user_events GROUP BY event HAVING COUNT(*) > 10 AND MAX(page) <> '';")?.views.first)
        #expect(view.outputColumns.map(\.name) == ["event"])
        #expect(view.aggregates.map(\.description) == ["count(*)", "max(page)"])
        let having = try #require(view.having)
        let keep = having.evaluate(column: { _ in .null }, groupKey: { _ in .string("click") }, aggregate: { [SQLValue.int(11), .string("/a")][$0] })
        let drop = having.evaluate(column: { _ in .null }, groupKey: { _ in .string("click") }, aggregate: { [SQLValue.int(10), .string("/a")][$0] })
        #expect(keep == .bool(true))
        #expect(drop == .bool(false))
    }

    @Test func groupByOrdinalsAliasesAndGlobalAggregates() throws {
        let byOrdinal = try #require(compiledPipeline(exampleSource + "\nCREATE MATERIALIZED VIEW v AS SELECT page AS p, event, COUNT(*) FROM user_events GROUP BY 2, p;")?.views.first)
        #expect(byOrdinal.groupByNames == ["event", "page"])
        let global = try #require(compiledPipeline(exampleSource + "\nCREATE MATERIALIZED VIEW v AS SELECT COUNT(*) AS total, MAX(event_timestamp) AS latest FROM user_events;")?.views.first)
        #expect(global.groupBy.isEmpty)
        #expect(global.aggregates.count == 2)
    }

    @Test func whereClausesBindAndEvaluate() throws {
        let text = exampleSource + """

            CREATE MATERIALIZED VIEW v AS SELECT event, COUNT(*) FROM user_events
            WHERE (event IN ('click', 'scroll') OR page LIKE 'https://%/docs/_') AND NOT user IS NULL
              AND event_timestamp BETWEEN '2026-11-24' AND '2026-11-25 00:00' AND page NOT ILIKE '%ADMIN%'
            GROUP BY event;
            """
        let view = try #require(compiledPipeline(text)?.views.first)
        let filter = try #require(view.filter)
        func row(_ timestamp: String, _ user: String?, _ page: String, _ event: String) -> (Int) -> SQLValue {
            { [SQLValue.string(timestamp), user.map(SQLValue.string) ?? .null, .string(page), .string(event)][$0] }
        }
        #expect(filter.evaluate(column: row("2026-11-24 17:00:03", "a@b", "https://x/", "click")) == .bool(true))
        #expect(filter.evaluate(column: row("2026-11-24 17:00:03", "a@b", "https://x/docs/7", "focus")) == .bool(true))
        #expect(filter.evaluate(column: row("2026-11-24 17:00:03", "a@b", "https://x/docs/77", "focus")) == .bool(false))
        #expect(filter.evaluate(column: row("2026-11-24 17:00:03", nil, "https://x/", "click")) == .bool(false))
        #expect(filter.evaluate(column: row("2026-11-25 00:00:01", "a@b", "https://x/", "click")) == .bool(false))
        #expect(filter.evaluate(column: row("2026-11-24 10:00:00", "a@b", "https://x/Admin/", "click")) == .bool(false))
        // The date literal was brought to the timestamp's canonical text.
        #expect(view.canonicalText.contains("'2026-11-24 00:00:00'"))
    }

    @Test func theFingerprintFollowsStateNotPresentation() throws {
        func fingerprint(_ select: String) throws -> String {
            try #require(compiledPipeline(exampleSource + "\nCREATE MATERIALIZED VIEW v AS \(select);")?.views.first).canonicalText
        }
        let base = try fingerprint("SELECT event, COUNT(*) FROM user_events GROUP BY event")
        #expect(try fingerprint("select event as kind, count(*) as n from user_events group by event") == base)
        #expect(try fingerprint("SELECT event, COUNT(*) FROM user_events GROUP BY event HAVING COUNT(*) > 0") == base)
        #expect(try fingerprint("SELECT event, COUNT(*) FROM user_events WHERE page <> '' GROUP BY event") != base)
        #expect(try fingerprint("SELECT event, COUNT(user) FROM user_events GROUP BY event") != base)
        #expect(try fingerprint("SELECT page, COUNT(*) FROM user_events GROUP BY page") != base)
        // Columns the view does not read may change.
        let widened = try #require(compiledPipeline(exampleSource.replacingOccurrences(of: "page VARCHAR,", with: "page VARCHAR, extra INT,") + "\n" + exampleView)?.views.first)
        #expect(widened.canonicalText == (try #require(compiledPipeline(exampleSource + "\n" + exampleView)?.views.first)).canonicalText)
    }

    @Test func kafkaPropertiesPassThroughAndGroupID() throws {
        let text = exampleSource.replacingOccurrences(
            of: "scan.startup.mode='earliest'",
            with: "scan.startup.mode='timestamp', scan.startup.timestamp.millis='1764000000000', properties.group.id='g1', properties.fetch.min.bytes='1024', properties.client.id='eddy-1'")
        let kafka = try #require(compiledPipeline(text)?.sources.first).kafka
        #expect(kafka.startupMode == .timestamp(millisecondsSinceEpoch: 1_764_000_000_000))
        #expect(kafka.groupID == "g1")
        #expect(kafka.clientProperties.map(\.key) == ["fetch.min.bytes", "client.id"])
        #expect(kafka.clientProperties.map(\.value) == ["1024", "eddy-1"])
        let latestByDefault = try #require(compiledPipeline(exampleSource.replacingOccurrences(of: ", scan.startup.mode='earliest'", with: ""))?.sources.first)
        #expect(latestByDefault.kafka.startupMode == .latest)
    }

    @Test(arguments: [
        ("redis://h", RedisEndpoint(host: "h", port: 6379, username: nil, password: nil, database: 0)),
        ("redis://h:7000/5", RedisEndpoint(host: "h", port: 7000, username: nil, password: nil, database: 5)),
        ("redis://:pw@h:1/", RedisEndpoint(host: "h", port: 1, username: nil, password: "pw", database: 0)),
        ("redis://user@h:1", RedisEndpoint(host: "h", port: 1, username: "user", password: nil, database: 0)),
        ("redis://us%40er:p%3Aw%40rd@h:1", RedisEndpoint(host: "h", port: 1, username: "us@er", password: "p:w@rd", database: 0)),
        ("REDIS://[::1]:6380/2", RedisEndpoint(host: "::1", port: 6380, username: nil, password: nil, database: 2)),
        ("rediss://:pw@cache.example.com:6380/1", RedisEndpoint(host: "cache.example.com", port: 6380, password: "pw", database: 1, tls: .init())),
    ])
    func redisURLs(_ url: String, _ expected: RedisEndpoint) throws {
        let text = exampleSource + "\n" + exampleView + "\n" + exampleSink.replacingOccurrences(of: "redis://127.0.0.1:6379", with: url)
        let result = compile(text)
        #expect(result.errors.isEmpty, "\(result.errors.map(\.description))")
        #expect(result.pipeline?.sinks.first?.redis.endpoint == expected)
        if expected.password != nil { #expect(result.pipeline?.sinks.first?.redis.endpoint.description.contains("***") == true) }
    }

    @Test func tlsOptionsOfARedissURL() throws {
        let sink = exampleSink.replacingOccurrences(of: "redis.url= 'redis://127.0.0.1:6379'", with: """
            redis.url='rediss://u:pw@10.0.0.7:6380', redis.ssl.ca.location='/etc/eddy/ca.pem', redis.ssl.certificate.location='/etc/eddy/client.pem', \
            redis.ssl.key.location='/etc/eddy/private/client.key', redis.ssl.server.name='cache.internal'
            """)
        #expect(sink != exampleSink)
        let result = compile(exampleSource + "\n" + exampleView + "\n" + sink)
        #expect(result.errors.isEmpty, "\(result.errors.map(\.description))")
        let endpoint = try #require(result.pipeline?.sinks.first?.redis.endpoint)
        #expect(endpoint.tls == RedisEndpoint.TLS(
            caLocation: "/etc/eddy/ca.pem", certificateLocation: "/etc/eddy/client.pem", keyLocation: "/etc/eddy/private/client.key", serverName: "cache.internal"))
        // As `eddy check` prints it: the password and the key's path masked.
        #expect(endpoint.description == """
            rediss://u:***@10.0.0.7:6380/0 (TLS: CA /etc/eddy/ca.pem, client certificate /etc/eddy/client.pem, client key ***, server name cache.internal)
            """)
        // An error on that line shows the line with the key's path starred.
        let keyOnly = sink.replacingOccurrences(of: "redis.ssl.certificate.location='/etc/eddy/client.pem', ", with: "")
        let error = try #require(compile(exampleSource + "\n" + exampleView + "\n" + keyOnly).errors.first)
        #expect(error.message.hasPrefix("redis.ssl.key.location needs redis.ssl.certificate.location"))
        #expect(error.description.contains("redis.ssl.key.location='****"), "\(error.description)")
        #expect(!error.description.contains("private/client.key"))
        let plain = try #require(compile(exampleSource + "\n" + exampleView + "\n" + exampleSink).pipeline?.sinks.first?.redis.endpoint)
        #expect(plain.tls == nil)
        #expect(plain.description == "redis://127.0.0.1:6379/0")
    }

    @Test func jsonSinksAndTemplatesWithText() throws {
        let text = exampleSource + "\n" + exampleView + """

            CREATE SINK j FROM events_statisics_mv WITH (connector='redis', primary_key='event', redis.url='redis://h:1', sink.max_pending_epochs='3') FORMAT PLAIN ENCODE JSON;
            CREATE SINK t FROM events_statisics_mv WITH (connector='redis', primary_key='event', redis.url='redis://h:1') FORMAT PLAIN ENCODE TEMPLATE (key_format='events:{event}', value_format='{event}={count}');
            """
        let pipeline = try #require(compiledPipeline(text))
        let json = try #require(pipeline.sink(named: "j"))
        guard case .json = json.redis.encoding else { Issue.record("expected JSON"); return }
        #expect(json.redis.maxPendingEpochs == 3)
        #expect(!json.redis.forceAppendOnly)
        guard case .template(let key, let value) = try #require(pipeline.sink(named: "t")).redis.encoding else { Issue.record("expected a template"); return }
        let row: [SQLValue] = [.string("click"), .int(7)]
        #expect(key.render { row[$0] } == "events:click")
        #expect(value.render { row[$0] } == "click=7")
        #expect(value.render { [SQLValue.null, .int(0)][$0] } == "NULL=0")
    }

    @Test func queriesFilterOrderAndLimit() throws {
        let text = exampleSource + "\n" + exampleView + "\nSELECT event AS kind, count FROM events_statisics_mv WHERE count > 1 ORDER BY count DESC, 1 LIMIT 2;"
        let query = try #require(compiledPipeline(text)?.queries.first)
        #expect(query.columns.map(\.name) == ["kind", "count"])
        let rows: [[SQLValue]] = [[.string("click"), .int(5)], [.string("scroll"), .int(1)], [.string("focus"), .int(9)], [.string("apply"), .int(5)], [.null, .int(7)]]
        #expect(query.run(on: rows) == [[.string("focus"), .int(9)], [.null, .int(7)]])
        let ascending = try #require(compiledPipeline(exampleSource + "\n" + exampleView + "\nSELECT * FROM events_statisics_mv ORDER BY event;")?.queries.first)
        #expect(ascending.run(on: rows).map { $0[0] } == [.string("apply"), .string("click"), .string("focus"), .string("scroll"), .null])
    }

    @Test func queriesCompileAgainstViewsAlone() throws {
        let views = try #require(compiledPipeline(exampleSource + "\n" + exampleView)).views
        let (query, errors) = PipelineCompiler.compileQuery("select * from events_statisics_mv where event = 'click'", views: views)
        #expect(errors.isEmpty)
        #expect(query?.run(on: [[.string("click"), .int(3)], [.string("focus"), .int(1)]]) == [[.string("click"), .int(3)]])
        let (_, bad) = PipelineCompiler.compileQuery("select nope from events_statisics_mv", views: views)
        #expect(bad.first?.headline == "query:1:8: error: column 'nope' does not exist in 'events_statisics_mv' (columns: event, count)")
    }
}

@Suite struct EvaluationTests {
    private func evaluate(_ expression: BoundExpression) -> SQLValue { expression.evaluate(column: { _ in .null }) }

    @Test func threeValuedLogic() {
        let t = BoundExpression.literal(.bool(true)), f = BoundExpression.literal(.bool(false)), n = BoundExpression.literal(.null)
        #expect(evaluate(.binary(.and, n, f)) == .bool(false))
        #expect(evaluate(.binary(.and, n, t)) == .null)
        #expect(evaluate(.binary(.or, n, t)) == .bool(true))
        #expect(evaluate(.binary(.or, n, f)) == .null)
        #expect(evaluate(.unary(.not, n)) == .null)
        #expect(evaluate(.inList(.literal(.int(1)), [.literal(.int(2)), n], negated: false)) == .null)
        #expect(evaluate(.inList(.literal(.int(2)), [.literal(.int(2)), n], negated: false)) == .bool(true))
        #expect(evaluate(.isNull(n, negated: false)) == .bool(true))
    }

    @Test func arithmeticNeverTraps() {
        #expect(evaluate(.binary(.divide, .literal(.int(7)), .literal(.int(2)))) == .int(3))
        #expect(evaluate(.binary(.divide, .literal(.int(7)), .literal(.int(0)))) == .null)
        #expect(evaluate(.binary(.add, .literal(.int(.max)), .literal(.int(1)))) == .null)
        #expect(evaluate(.binary(.divide, .literal(.int(.min)), .literal(.int(-1)))) == .null)
        #expect(evaluate(.unary(.negate, .literal(.int(.min)))) == .null)
        #expect(evaluate(.binary(.add, .literal(.int(1)), .literal(.double(0.5)))) == .double(1.5))
        #expect(evaluate(.binary(.modulo, .literal(.double(7)), .literal(.double(0)))) == .null)
        #expect(evaluate(.binary(.concatenate, .literal(.string("a")), .literal(.int(1)))) == .string("a1"))
    }

    @Test(arguments: [
        ("abc", "a%", true), ("abc", "%c", true), ("abc", "_b_", true), ("abc", "a_", false), ("", "%", true),
        ("100%", "100\\%", true), ("1000", "100\\%", false), ("aXbXc", "a%b%c", true), ("ab", "a%b%c", false), ("é", "_", true),
    ])
    func like(_ text: String, _ pattern: String, _ expected: Bool) {
        #expect(LikePattern.matches(text, pattern: pattern) == expected)
    }

    @Test func comparisonUsesByteOrderAndNumericPromotion() {
        #expect(SQLValue.compare(.string("B"), .string("a")) == -1)
        #expect(SQLValue.compare(.int(2), .double(2.0)) == 0)
        #expect(SQLValue.compare(.double(.nan), .double(1)) == 1)
        #expect(SQLValue.compare(.string("a"), .int(1)) == nil)
    }

    @Test func canonicalTimes() {
        #expect(CanonicalTime.parse("2026-11-24", dateOnly: false) == "2026-11-24 00:00:00")
        #expect(CanonicalTime.parse("2026-11-24T17:00", dateOnly: false) == "2026-11-24 17:00:00")
        #expect(CanonicalTime.parse("2026-11-24 17:00:03.5", dateOnly: false) == "2026-11-24 17:00:03.500000")
        #expect(CanonicalTime.parse("2024-02-29", dateOnly: true) == "2024-02-29")
        #expect(CanonicalTime.parse("2025-02-29", dateOnly: true) == nil)
        #expect(CanonicalTime.parse("2026-11-24 24:00:00", dateOnly: false) == nil)
        #expect(CanonicalTime.parse("2026-11-24 17:00:03.1234567", dateOnly: false) == nil)
    }
}
