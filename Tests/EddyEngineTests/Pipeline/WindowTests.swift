import EddyEngine
import EddySQL
import EddyTestSupport
import EddyWorkload
import Foundation
import Testing

/// Event-time windows run by the engine over the mock Kafka cluster and a real Redis, checked against SQLite
/// computing the same windows in batch with integer arithmetic on epoch seconds (SQLite has no TUMBLE / HOP).
@Suite("Event-time windows", .serialized)
struct WindowTests {
    /// 2026-11-24 17:00:00 UTC.
    static let start: Int64 = 1_795_539_600

    /// `count` generated events, the i-th at `first + i * spacing` seconds give or take a few (out of order),
    /// or exactly at the given times.
    static func messages(seed: UInt64, count: Int, first: Int64, spacing: Int64 = 1, jitter: Int64 = 4) -> [String] {
        var generator = UserEventGenerator(seed: seed, userCount: 30, pageCount: 10)
        var buffer: [UInt8] = []
        return (0..<count).map { index in
            let wobble = jitter == 0 ? 0 : Int64((index * 7919) % Int(2 * jitter + 1)) - jitter
            buffer.removeAll(keepingCapacity: true)
            _ = generator.appendMessage(timestamp: EventTimestamp(epochSeconds: first + Int64(index) * spacing + wobble), to: &buffer)
            return String(decoding: buffer, as: UTF8.self)
        }
    }

    /// A view as Eddy runs it and as SQLite computes it.
    struct WindowView {
        var name: String
        var eddy: String
        var sqlite: String
    }

    static let seconds = "CAST(strftime('%s', event_timestamp) AS INTEGER)"

    static let windowViews: [WindowView] = [
        WindowView(
            name: "per_minute",
            eddy: "SELECT event, window_start, COUNT(*) AS n FROM TUMBLE(user_events, event_timestamp, INTERVAL '1 MINUTE') GROUP BY event, window_start",
            sqlite: """
                SELECT event, datetime(m * 60, 'unixepoch') AS window_start, COUNT(*) AS n \
                FROM (SELECT event, \(seconds) / 60 AS m FROM user_events) GROUP BY event, m
                """),
        // The cascade: the peak per-minute count per event, over the window view's changes.
        WindowView(
            name: "peak",
            eddy: "SELECT event, MAX(n) AS peak, COUNT(*) AS minutes FROM per_minute GROUP BY event",
            sqlite: "SELECT event, MAX(n) AS peak, COUNT(*) AS minutes FROM per_minute GROUP BY event"),
        // Each row in four windows (size / hop), with a WHERE and a DISTINCT.
        WindowView(
            name: "hopping",
            eddy: """
                SELECT window_start, window_end, COUNT(*) AS n, COUNT(DISTINCT user) AS users \
                FROM HOP(user_events, event_timestamp, INTERVAL '30 SECONDS', INTERVAL '2 MINUTES') WHERE event <> 'focus' GROUP BY window_start, window_end
                """,
            sqlite: """
                SELECT datetime(h * 30, 'unixepoch') AS window_start, datetime(h * 30 + 120, 'unixepoch') AS window_end, COUNT(*) AS n, COUNT(DISTINCT user) AS users \
                FROM (SELECT user, \(seconds) / 30 - k AS h FROM user_events, (SELECT 0 AS k UNION ALL SELECT 1 UNION ALL SELECT 2 UNION ALL SELECT 3) WHERE event <> 'focus') \
                GROUP BY h
                """),
        // Rows in windows, without aggregating: each kept, keyed by partition and offset.
        WindowView(
            name: "submits",
            eddy: "SELECT user, window_start FROM TUMBLE(user_events, event_timestamp, INTERVAL '5 MINUTES') WHERE event = 'submit'",
            sqlite: "SELECT user, datetime(\(seconds) / 300 * 300, 'unixepoch') AS window_start FROM user_events WHERE event = 'submit'"),
    ]

    /// Produces `batch` to the harness's topic, alternating partitions 0 and 1.
    static func produce(_ batch: [String], to harness: PipelineHarness) throws {
        try harness.broker.produce(topic: harness.topic, messages: batch.enumerated().map { (Int32($0.offset % 2), Array($0.element.utf8)) })
    }

    static func oracle(_ produced: [String], views: [WindowView]) throws -> [String: [SQLiteOracle.Row]] {
        try SQLiteOracle.evaluate(
            table: "user_events", columns: ["event_timestamp", "user", "page", "event"], jsonRows: produced,
            views: views.map { ($0.name, $0.sqlite) })
    }

    @Test("TUMBLE and HOP counts, rows in windows and a cascade over a window view agree with SQLite across epochs and a restart; Redis keys name the window")
    func windowsAgreeWithABatchComputation() throws {
        let harness = try PipelineHarness(partitions: 2)
        let text = CascadeTests.pipelineText(views: Self.windowViews.map { ($0.name, $0.eddy) }, sinks: """
            CREATE SINK minute_sink FROM per_minute WITH (connector='redis', primary_key='event,window_start', redis.url='${REDIS_URL}')
              FORMAT PLAIN ENCODE TEMPLATE (key_format='{event}:{window_start}', value_format='{n}');
            CREATE SINK peak_sink FROM peak WITH (connector='redis', primary_key='event', redis.url='${REDIS_URL}')
              FORMAT PLAIN ENCODE TEMPLATE (key_format='peak:{event}', value_format='{peak}');

            """)
        let views = Self.windowViews.map { (name: $0.name, select: $0.eddy) }
        try harness.start(text)
        // About eight minutes of events, over three rounds; events arrive out of order by a few seconds.
        let all = Self.messages(seed: 11, count: 480, first: Self.start, spacing: 1)
        var produced: [String] = []
        for round in 0..<3 {
            if round == 2 {
                try harness.stopPipeline()
                try harness.start(text)
            }
            let batch = Array(all[round * 160..<(round + 1) * 160])
            try Self.produce(batch, to: harness)
            produced += batch
            let expected = try Self.oracle(produced, views: Self.windowViews)
            #expect(expected["per_minute"]!.count > 10 && expected["hopping"]!.count > 4 && expected["submits"]!.count > 5)
            try CascadeTests.expectViews(harness, equal: expected, views: views, "round \(round)")
            let minutes = Dictionary(uniqueKeysWithValues: expected["per_minute"]!.map { ("\($0[0]):\($0[1])", $0[2]) })
            #expect(minutes.keys.contains("click:2026-11-24 17:00:00"), "\(minutes.keys.sorted().prefix(5))")
            for event in UserEventGenerator.eventNames {
                try CascadeTests.expectRedis(harness, prefix: event + ":", equal: minutes.filter { $0.key.hasPrefix(event + ":") }, "round \(round), \(event)")
            }
            let peaks = Dictionary(uniqueKeysWithValues: expected["peak"]!.map { ("peak:" + $0[0], $0[1]) })
            try CascadeTests.expectRedis(harness, prefix: "peak:", equal: peaks, "round \(round), peak")
        }
        try harness.stopPipeline()
    }

    @Test("A TUMBLE runs on the hot path; another window of the same source, a HOP and INCLUDE columns run on the row path beside it, and all agree with SQLite")
    func hotPathAndRowPathWindowsOfOneSourceAgree() throws {
        let views = [
            Self.windowViews[0],  // per_minute: TUMBLE 1 minute, on the hot path
            WindowView(
                name: "per_five",
                eddy: "SELECT window_start, COUNT(*) AS n FROM TUMBLE(user_events, event_timestamp, INTERVAL '5 MINUTES') GROUP BY window_start",
                sqlite: "SELECT datetime(\(Self.seconds) / 300 * 300, 'unixepoch') AS window_start, COUNT(*) AS n FROM user_events GROUP BY \(Self.seconds) / 300"),
            Self.windowViews[2],  // hopping
            WindowView(
                name: "by_partition",
                eddy: "SELECT window_start, COUNT(kafka_partition) AS n FROM TUMBLE(user_events, event_timestamp, INTERVAL '1 MINUTE') GROUP BY window_start",
                sqlite: "SELECT datetime(\(Self.seconds) / 60 * 60, 'unixepoch') AS window_start, COUNT(*) AS n FROM user_events GROUP BY \(Self.seconds) / 60"),
        ]
        var text = """
            CREATE SOURCE user_events (event_timestamp TIMESTAMP, user VARCHAR, page VARCHAR, event VARCHAR) INCLUDE partition AS kafka_partition
              WITH (connector='kafka', topic='${TOPIC}', properties.bootstrap.server='${KAFKA_BROKERS}', scan.startup.mode='earliest') FORMAT PLAIN ENCODE JSON;

            """
        for view in views { text += "CREATE MATERIALIZED VIEW \(view.name) AS \(view.eddy);\n" }
        text += """
            CREATE SINK minute_sink FROM per_minute WITH (connector='redis', primary_key='event,window_start', redis.url='${REDIS_URL}')
              FORMAT PLAIN ENCODE TEMPLATE (key_format='{event}:{window_start}', value_format='{n}');

            """
        let compiled = PipelineCompiler.compile(text: text, file: "windows.sql", environment: ["TOPIC": "t", "KAFKA_BROKERS": "b", "REDIS_URL": "redis://h"])
        let graph = try DataflowGraph(pipeline: try #require(compiled.pipeline, "\(compiled.errors)"))
        let onHotPath = graph.nodes.indices.filter { if case .source = graph.nodes[$0] { true } else { false } }.map { graph.views[$0].name }
        #expect(onHotPath == ["per_minute", "by_partition"])
        #expect(graph.description.contains("per_minute: GROUP BY event, window_start on the hot path (source thread), in windows of TUMBLE"), "\(graph.description)")

        let harness = try PipelineHarness(partitions: 2)
        try harness.start(text)
        let all = Self.messages(seed: 23, count: 360, first: Self.start, spacing: 1)
        var produced: [String] = []
        for round in 0..<2 {
            if round == 1 {
                try harness.stopPipeline()
                try harness.start(text)
            }
            let batch = Array(all[round * 180..<(round + 1) * 180])
            try Self.produce(batch, to: harness)
            produced += batch
            let expected = try Self.oracle(produced, views: views)
            try CascadeTests.expectViews(harness, equal: expected, views: views.map { (name: $0.name, select: $0.eddy) }, "round \(round)")
            let minutes = Dictionary(uniqueKeysWithValues: expected["per_minute"]!.map { ("\($0[0]):\($0[1])", $0[2]) })
            try CascadeTests.expectRedis(harness, prefix: "click:", equal: minutes.filter { $0.key.hasPrefix("click:") }, "round \(round)")
        }
        try harness.stopPipeline()
    }

    static let closingViews: [WindowView] = [
        WindowView(
            name: "closed_minutes",
            eddy: "SELECT event, window_start, COUNT(*) AS n FROM TUMBLE(user_events, event_timestamp, INTERVAL '1 MINUTE') GROUP BY event, window_start EMIT ON WINDOW CLOSE",
            sqlite: "SELECT event, datetime(\(seconds) / 60 * 60, 'unixepoch') AS window_start, COUNT(*) AS n FROM user_events GROUP BY event, \(seconds) / 60"),
    ]

    static let closingText = """
        CREATE SOURCE user_events (event_timestamp TIMESTAMP, user VARCHAR, page VARCHAR, event VARCHAR,
            WATERMARK FOR event_timestamp AS event_timestamp - INTERVAL '5 SECONDS')
          WITH (connector='kafka', topic='${TOPIC}', properties.bootstrap.server='${KAFKA_BROKERS}', scan.startup.mode='earliest',
                watermark.idle.timeout='5 seconds') FORMAT PLAIN ENCODE JSON;
        CREATE MATERIALIZED VIEW closed_minutes AS \(closingViews[0].eddy);
        CREATE MATERIALIZED VIEW accepted_events AS SELECT COUNT(*) AS n FROM user_events;
        CREATE SINK closed_sink FROM closed_minutes WITH (connector='redis', primary_key='event,window_start', redis.url='${REDIS_URL}')
          FORMAT PLAIN ENCODE TEMPLATE (key_format='w:{event}:{window_start}', value_format='{n}');

        """

    /// The oracle's rows of the windows that end at or before `closedThrough` (seconds), as Redis keys and values.
    static func closedWindows(_ accepted: [String], closedThrough: Int64) throws -> [String: String] {
        let rows = try oracle(accepted, views: closingViews)["closed_minutes"]!
        let limit = CivilTime.timestampText(microseconds: (closedThrough - 60) * 1_000_000)
        return Dictionary(uniqueKeysWithValues: rows.filter { $0[1] <= limit }.map { ("w:\($0[0]):\($0[1])", $0[2]) })
    }

    @Test("EMIT ON WINDOW CLOSE writes each window once its watermark passes, never before; late events are dropped and counted; an idle partition does not hold the watermark back; a restart resumes the watermark")
    func windowsAreEmittedOnceWhenTheyClose() throws {
        let harness = try PipelineHarness(partitions: 2)
        try harness.start(Self.closingText)
        func produce(_ messages: [String], partitions: [Int32] = [0, 1]) throws {
            try harness.broker.produce(topic: harness.topic, messages: messages.enumerated().map { (partitions[$0.offset % partitions.count], Array($0.element.utf8)) })
        }
        /// Waits until a checkpoint holds `count` accepted events and the window sink has acknowledged it.
        func waitUntilSunk(accepted count: Int) throws {
            var epoch: UInt64 = 0
            var held: [[String]] = []
            let counted = try eventually(timeout: .seconds(30), every: .milliseconds(10)) {
                if let ended = harness.endedWith { try ended.get() }
                guard let checkpointed = try harness.runner?.checkpointedRows(view: "accepted_events") else { return false }
                epoch = checkpointed.epoch
                held = checkpointed.rows.map { $0.map(CascadeTests.text) }
                return held == [[String(count)]]
            }
            #expect(counted, "accepted events: \(held), expected \(count)")
            let acknowledged = eventually(timeout: .seconds(30), every: .milliseconds(10)) {
                (harness.runner?.statistics.snapshot.sinks.first { $0.name == "closed_sink" }?.acknowledgedEpoch ?? 0) >= epoch
            }
            #expect(acknowledged)
        }
        var accepted: [String] = []
        // Minute 0 (17:00:00-17:00:59, no event beyond 17:01:03): the watermark stays before 17:01:00.
        let minute0 = Self.messages(seed: 21, count: 60, first: Self.start, jitter: 0) + Self.messages(seed: 22, count: 60, first: Self.start, jitter: 0)
        try produce(minute0)
        accepted += minute0
        let early = Self.messages(seed: 40, count: 4, first: Self.start + 60, spacing: 1, jitter: 0)  // 17:01:00-17:01:03
        try produce(early)
        accepted += early
        try waitUntilSunk(accepted: accepted.count)
        #expect(try CascadeTests.redisEntries(harness, prefix: "w:").isEmpty, "a window was written before the watermark passed its end")
        #expect(try harness.runner?.checkpointedRows(view: "closed_minutes")?.rows.isEmpty == true)

        // 17:01:06 on partition 0 only: partition 1 (at 17:01:03) holds the watermark at 17:00:58 while it is
        // active; once it has been idle for 5 seconds, the next event of partition 0 moves the watermark to
        // 17:01:01 and minute 0 closes.
        let closing = Self.messages(seed: 41, count: 1, first: Self.start + 66, jitter: 0)
        try produce(closing, partitions: [0])
        accepted += closing
        let minute0Closed = try Self.closedWindows(accepted, closedThrough: Self.start + 61)
        #expect(minute0Closed.count == 5)
        try waitUntilSunk(accepted: accepted.count)
        #expect(try CascadeTests.redisEntries(harness, prefix: "w:").isEmpty, "minute 0 closed while partition 1 still held the watermark")
        var nudges = 0
        let closed = try eventually(timeout: .seconds(30), every: .milliseconds(200)) {
            if try CascadeTests.redisEntries(harness, prefix: "w:") == minute0Closed { return true }
            let nudge = Self.messages(seed: 100 + UInt64(nudges), count: 1, first: Self.start + 66, jitter: 0)
            try produce(nudge, partitions: [0])
            accepted += nudge
            nudges += 1
            return false
        }
        let held = try CascadeTests.redisEntries(harness, prefix: "w:")
        #expect(closed && nudges > 0, "minute 0 after \(nudges) more events of partition 0: Redis \(held)")
        try waitUntilSunk(accepted: accepted.count)

        // Late: behind the watermark (17:01:01), dropped and counted; the closed window stays as written.
        let lateBefore = harness.runner?.statistics.snapshot.skippedByReason["late"] ?? 0
        let late = Self.messages(seed: 42, count: 3, first: Self.start + 30, spacing: 10, jitter: 0)
        try produce(late)
        let counted = eventually(timeout: .seconds(30), every: .milliseconds(10)) {
            harness.runner?.statistics.snapshot.skippedByReason["late"] == lateBefore + 3
        }
        #expect(counted, "late: \(harness.runner?.statistics.snapshot.skippedByReason["late"] ?? 0)")
        try waitUntilSunk(accepted: accepted.count)
        #expect(try CascadeTests.redisEntries(harness, prefix: "w:") == minute0Closed)

        // A restart resumes the watermark: what was late stays late, and minute 1 closes once it passes.
        try harness.stopPipeline()
        try harness.start(Self.closingText)
        let lateAgain = Self.messages(seed: 43, count: 2, first: Self.start + 50, jitter: 0)
        try produce(lateAgain)
        let minute1 = Self.messages(seed: 44, count: 70, first: Self.start + 64, spacing: 1, jitter: 2)  // up to 17:02:15
        try produce(minute1)
        accepted += minute1
        try waitUntilSunk(accepted: accepted.count)
        #expect(harness.runner?.statistics.snapshot.skippedByReason["late"] == 2)
        let minutesClosed = try Self.closedWindows(accepted, closedThrough: Self.start + 120)
        #expect(minutesClosed.count > minute0Closed.count)
        try CascadeTests.expectRedis(harness, prefix: "w:", equal: minutesClosed, "minute 1 closed after the restart")
        let rows = try harness.runner?.checkpointedRows(view: "closed_minutes")?.rows.map { "w:\(CascadeTests.text($0[0])):\(CascadeTests.text($0[1]))" } ?? []
        #expect(Set(rows) == Set(minutesClosed.keys))
        try harness.stopPipeline()
    }
}
