import EddyEngine
import EddySQL
import EddyTestSupport
import EddyWorkload
import Foundation
import Testing

/// Views over views, run by the engine over the mock Kafka cluster and a real Redis, checked against SQLite
/// computing the same SQL in batch over every message produced (`SQLiteOracle`).
@Suite("Cascading views", .serialized)
struct CascadeTests {
    /// Each view's `SELECT`, as both the pipeline and SQLite run it. Forty users, so that per-user counts
    /// climb through the count groups (updates, groups emptied and deleted, MIN moving up).
    static let views: [(name: String, select: String)] = [
        ("per_user", "SELECT user, COUNT(*) AS n FROM user_events GROUP BY user"),
        ("count_of_counts", "SELECT n, COUNT(*) AS users FROM per_user GROUP BY n"),
        ("extremes", "SELECT MAX(n) AS top, MIN(n) AS bottom, COUNT(*) AS users, SUM(n) AS total FROM per_user"),
        ("crowded", "SELECT n, COUNT(*) AS users FROM per_user GROUP BY n HAVING COUNT(*) >= 3"),
        ("tiers", "SELECT CASE WHEN n >= 12 THEN 'high' WHEN n >= 7 THEN 'mid' ELSE 'low' END AS tier, user, n FROM per_user WHERE n > 1"),
        ("tier_counts", "SELECT tier, COUNT(*) AS users, COUNT(*) FILTER (WHERE n > 10) AS over_ten, MAX(n) AS top, MIN(n) AS bottom FROM tiers GROUP BY tier"),
        // MIN and MAX over a view whose rows move down and up: a user's first page moves down as smaller pages
        // arrive, so users leave one `first_page` group for another, taking the group's extreme with them.
        ("firsts", "SELECT user, MIN(page) AS first_page, MAX(page) AS last_page FROM user_events GROUP BY user"),
        ("by_first", "SELECT first_page, COUNT(*) AS users, MAX(last_page) AS top, MIN(last_page) AS low FROM firsts GROUP BY first_page"),
        ("page_extremes", "SELECT MAX(first_page) AS top_first, MIN(first_page) AS low_first, MIN(last_page) AS low_last, COUNT(DISTINCT first_page) AS firsts FROM firsts"),
        ("repeaters", """
            SELECT event, COUNT(*) AS users, MIN(n) AS least, MAX(n) AS most \
            FROM (SELECT user, event, COUNT(*) AS n FROM user_events GROUP BY user, event) AS per_user_event \
            WHERE n >= 2 GROUP BY event
            """),
    ]

    /// Views the hot path does not run, over the source's rows: a filter and projection (every row kept,
    /// keyed by partition and offset), a view over it, and aggregates with `FILTER`.
    static let rowViews: [(name: String, select: String)] = [
        ("clicks", "SELECT user, page, lower(event) AS what FROM user_events WHERE event = 'click'"),
        ("page_clicks", "SELECT page, COUNT(*) AS clicks, COUNT(DISTINCT user) AS users FROM clicks GROUP BY page"),
        ("filtered", "SELECT event, COUNT(*) FILTER (WHERE page LIKE '%/1%') AS some_pages, COUNT(*) AS total FROM user_events GROUP BY event"),
    ]

    static func pipelineText(views: [(name: String, select: String)], sinks: String) -> String {
        var text = """
            CREATE SOURCE user_events (event_timestamp TIMESTAMP, user VARCHAR, page VARCHAR, event VARCHAR)
              WITH (connector='kafka', topic='${TOPIC}', properties.bootstrap.server='${KAFKA_BROKERS}', scan.startup.mode='earliest') FORMAT PLAIN ENCODE JSON;

            """
        for view in views { text += "CREATE MATERIALIZED VIEW \(view.name) AS \(view.select);\n" }
        return text + sinks
    }

    static let pipelineText = pipelineText(views: views, sinks: """
            CREATE SINK coc_sink FROM count_of_counts WITH (connector='redis', primary_key='n', redis.url='${REDIS_URL}')
              FORMAT PLAIN ENCODE TEMPLATE (key_format='coc:{n}', value_format='{users}');
            CREATE SINK crowded_sink FROM crowded WITH (connector='redis', primary_key='n', redis.url='${REDIS_URL}')
              FORMAT PLAIN ENCODE TEMPLATE (key_format='crowded:{n}', value_format='{users}');
            CREATE SINK tier_sink FROM tiers WITH (connector='redis', primary_key='user', redis.url='${REDIS_URL}')
              FORMAT PLAIN ENCODE TEMPLATE (key_format='tier:{user}', value_format='{tier}');

            """)

    static let rowPipelineText = pipelineText(views: rowViews, sinks: """
            CREATE SINK page_sink FROM page_clicks WITH (connector='redis', primary_key='page', redis.url='${REDIS_URL}')
              FORMAT PLAIN ENCODE TEMPLATE (key_format='pc:{page}', value_format='{clicks}');

            """)

    /// `count` seeded messages as the load generator writes them.
    static func messages(seed: UInt64, count: Int) -> [String] {
        var generator = UserEventGenerator(seed: seed, userCount: 40, pageCount: 10)
        let timestamp = EventTimestamp(epochSeconds: 1_700_000_000)
        var buffer: [UInt8] = []
        return (0..<count).map { _ in
            buffer.removeAll(keepingCapacity: true)
            _ = generator.appendMessage(timestamp: timestamp, to: &buffer)
            return String(decoding: buffer, as: UTF8.self)
        }
    }

    static func oracle(_ produced: [String], views: [(name: String, select: String)] = views) throws -> [String: [SQLiteOracle.Row]] {
        try SQLiteOracle.evaluate(
            table: "user_events", columns: ["event_timestamp", "user", "page", "event"], jsonRows: produced, views: views)
    }

    static func text(_ value: SQLValue) -> String {
        switch value {
        case .null: "NULL"
        case .bool(let flag): flag ? "1" : "0"
        case .int(let number): String(number)
        case .double(let number): SQLiteOracle.normalised(NSNumber(value: number))
        case .string(let text): text
        }
    }

    static func sorted(_ rows: [SQLiteOracle.Row]) -> [SQLiteOracle.Row] {
        rows.sorted { $0.joined(separator: "\u{1}") < $1.joined(separator: "\u{1}") }
    }

    /// The views whose checkpointed rows differ from the oracle's, with both.
    static func differences(
        _ harness: PipelineHarness, expected: [String: [SQLiteOracle.Row]], views: [(name: String, select: String)] = views
    ) throws -> [String] {
        guard let runner = harness.runner else { return ["not running"] }
        return try views.compactMap { view in
            let rows = try runner.checkpointedRows(view: view.name)?.rows.map { $0.map(text) } ?? []
            let want = sorted(expected[view.name] ?? [])
            let have = sorted(rows)
            return have == want ? nil : "\(view.name): eddy \(have.prefix(12)) vs sqlite \(want.prefix(12))"
        }
    }

    /// Redis' keys under `prefix` and their values.
    static func redisEntries(_ harness: PipelineHarness, prefix: String) throws -> [String: String] {
        guard case .array(let keys) = try harness.redis.command("KEYS", prefix + "*") else { return [:] }
        var entries: [String: String] = [:]
        for key in keys.compactMap(\.text) { entries[key] = try harness.redis.get(key) }
        return entries
    }

    /// Waits until every view's checkpointed rows equal SQLite's; records an issue naming the differences if not.
    static func expectViews(
        _ harness: PipelineHarness, equal expected: [String: [SQLiteOracle.Row]], views: [(name: String, select: String)] = views,
        _ round: String, sourceLocation: Testing.SourceLocation = #_sourceLocation
    ) throws {
        var last: [String] = []
        let agreed = try eventually(timeout: .seconds(60), every: .milliseconds(50)) {
            if let ended = harness.endedWith { try ended.get() }
            last = try differences(harness, expected: expected, views: views)
            return last.isEmpty
        }
        #expect(agreed, "\(round): \(last.joined(separator: "\n"))", sourceLocation: sourceLocation)
    }

    /// Waits until Redis' keys under `prefix` and their values are exactly `wanted`.
    static func expectRedis(
        _ harness: PipelineHarness, prefix: String, equal wanted: [String: String], _ round: String, sourceLocation: Testing.SourceLocation = #_sourceLocation
    ) throws {
        var held: [String: String] = [:]
        let matched = try eventually(timeout: .seconds(30), every: .milliseconds(20)) {
            held = try redisEntries(harness, prefix: prefix)
            return held == wanted
        }
        #expect(matched, "\(round): Redis \(held.sorted { $0.key < $1.key }.prefix(10)) vs \(wanted.sorted { $0.key < $1.key }.prefix(10))", sourceLocation: sourceLocation)
    }

    @Test("views over views, a subquery in FROM, HAVING, CASE and FILTER agree with SQLite across epochs and a restart; Redis follows, rows that leave are deleted")
    func cascadesAgreeWithABatchComputation() throws {
        let harness = try PipelineHarness(partitions: 3)
        try harness.start(Self.pipelineText)
        // One population of users over three rounds.
        let all = Self.messages(seed: 7, count: 480)
        var produced: [String] = []
        for round in 0..<3 {
            if round == 2 {
                // The derived views' state is restored from the checkpoint, not recomputed.
                try harness.stopPipeline()
                try harness.start(Self.pipelineText)
            }
            let batch = Array(all[round * 160..<(round + 1) * 160])
            try harness.broker.produce(
                topic: harness.topic, messages: batch.enumerated().map { (Int32($0.offset % 3), Array($0.element.utf8)) })
            produced += batch
            let expected = try Self.oracle(produced)
            try Self.expectViews(harness, equal: expected, "round \(round)")

            // Redis holds exactly the sunk views' rows: keys of groups that emptied, or that HAVING or WHERE
            // dropped, are deleted in the epoch that removed them.
            let sinks: [(prefix: String, view: String, key: Int, value: Int)] = [
                ("coc:", "count_of_counts", 0, 1), ("crowded:", "crowded", 0, 1), ("tier:", "tiers", 1, 0),
            ]
            for sink in sinks {
                let wanted = Dictionary(uniqueKeysWithValues: expected[sink.view]!.map { (sink.prefix + $0[sink.key], $0[sink.value]) })
                try Self.expectRedis(harness, prefix: sink.prefix, equal: wanted, "round \(round), \(sink.view)")
            }
        }
        // The test's premise: the counts moved, so groups were updated, emptied and deleted on the way.
        let firstRound = try Self.oracle(Array(all.prefix(160)))["count_of_counts"]!.map { $0[0] }
        let final = try Self.oracle(all)["count_of_counts"]!.map { $0[0] }
        #expect(!Set(firstRound).subtracting(final).isEmpty, "no count group emptied: \(firstRound) then \(final)")
        // ...and users moved down from one first page to a smaller one.
        let firstPages = Dictionary(uniqueKeysWithValues: try Self.oracle(Array(all.prefix(160)))["firsts"]!.map { ($0[0], $0[1]) })
        let moved = try Self.oracle(all)["firsts"]!.filter { row in firstPages[row[0]].map { $0 != row[1] } ?? false }
        #expect(!moved.isEmpty, "no user's first page moved")
        try harness.stopPipeline()
    }

    @Test("views over a source's rows (a filter and projection kept row by row, a view over it, FILTER) agree with SQLite across a restart")
    func viewsOverTheSourceRowsAgreeWithABatchComputation() throws {
        let harness = try PipelineHarness(partitions: 2)
        try harness.start(Self.rowPipelineText)
        let all = Self.messages(seed: 3, count: 300)
        var produced: [String] = []
        for round in 0..<2 {
            if round == 1 {
                try harness.stopPipeline()
                try harness.start(Self.rowPipelineText)
            }
            let batch = Array(all[round * 150..<(round + 1) * 150])
            try harness.broker.produce(
                topic: harness.topic, messages: batch.enumerated().map { (Int32($0.offset % 2), Array($0.element.utf8)) })
            produced += batch
            let expected = try Self.oracle(produced, views: Self.rowViews)
            #expect(expected["clicks"]!.count > 10)
            try Self.expectViews(harness, equal: expected, views: Self.rowViews, "round \(round)")
            let wanted = Dictionary(uniqueKeysWithValues: expected["page_clicks"]!.map { ("pc:" + $0[0], $0[1]) })
            try Self.expectRedis(harness, prefix: "pc:", equal: wanted, "round \(round)")
        }
        try harness.stopPipeline()
    }

    /// Two sources, each with its own topic, start-up mode and offsets, feeding views of their own (one a
    /// cascade); `latest` is resolved once, at the first start, and the restart resumes every source from
    /// the checkpoint.
    @Test("two sources feed two views with their own topics, start-up modes and offsets, across a restart")
    func twoSourcesFeedTheirOwnViews() throws {
        let harness = try PipelineHarness(partitions: 2, otherTopics: ["views": 3])
        let views: [(name: String, select: String)] = [
            ("events_by_kind", "SELECT event, COUNT(*) AS n FROM user_events GROUP BY event"),
            ("views_by_page", "SELECT page, COUNT(*) AS n, COUNT(DISTINCT user) AS users FROM page_views GROUP BY page"),
            ("busy_pages", "SELECT n, COUNT(*) AS pages FROM views_by_page WHERE n >= 2 GROUP BY n"),
        ]
        var text = Self.pipelineText(views: views, sinks: """
            CREATE SINK busy_sink FROM busy_pages WITH (connector='redis', primary_key='n', redis.url='${REDIS_URL}')
              FORMAT PLAIN ENCODE TEMPLATE (key_format='busy:{n}', value_format='{pages}');

            """)
        text = """
            CREATE SOURCE page_views (event_timestamp TIMESTAMP, user VARCHAR, page VARCHAR, event VARCHAR)
              WITH (connector='kafka', topic='views', properties.bootstrap.server='${KAFKA_BROKERS}', scan.startup.mode='latest') FORMAT PLAIN ENCODE JSON;

            """ + text
        let events = Self.messages(seed: 5, count: 400)
        let pageViews = Self.messages(seed: 6, count: 400)
        func produce(_ messages: ArraySlice<String>, topic: String, partitions: Int32) throws {
            try harness.broker.produce(topic: topic, messages: messages.enumerated().map { (Int32($0.offset) % partitions, Array($0.element.utf8)) })
        }
        // Before the first start: counted on `events` (earliest), not on `views` (latest).
        try produce(events[0..<100], topic: harness.topic, partitions: 2)
        try produce(pageViews[0..<100], topic: "views", partitions: 3)
        try harness.start(text)
        let consuming = try eventually(timeout: .seconds(30), every: .milliseconds(10)) {
            if let ended = harness.endedWith { try ended.get() }
            return harness.runner?.statistics.snapshot.phase == .running
        }
        #expect(consuming)
        try produce(events[100..<200], topic: harness.topic, partitions: 2)
        try produce(pageViews[100..<250], topic: "views", partitions: 3)

        func check(events counted: ArraySlice<String>, views viewed: ArraySlice<String>, round: String) throws {
            let expected = try SQLiteOracle.evaluate(
                tables: [
                    .init(name: "user_events", columns: ["event_timestamp", "user", "page", "event"], jsonRows: Array(counted)),
                    .init(name: "page_views", columns: ["event_timestamp", "user", "page", "event"], jsonRows: Array(viewed)),
                ],
                views: views)
            try Self.expectViews(harness, equal: expected, views: views, round)
            let wanted = Dictionary(uniqueKeysWithValues: expected["busy_pages"]!.map { ("busy:" + $0[0], $0[1]) })
            try Self.expectRedis(harness, prefix: "busy:", equal: wanted, round)
        }
        try check(events: events[0..<200], views: pageViews[100..<250], round: "first run")
        let sources = harness.runner?.statistics.snapshot.partitions.map(\.topic) ?? []
        #expect(Set(sources) == ["events", "views"] && sources.count == 5)

        // Written while stopped: both sources resume at their checkpointed offsets.
        try harness.stopPipeline()
        try produce(events[200..<300], topic: harness.topic, partitions: 2)
        try produce(pageViews[250..<400], topic: "views", partitions: 3)
        try harness.start(text)
        try check(events: events[0..<300], views: pageViews[100..<400], round: "after the restart")
        try harness.stopPipeline()
    }
}
