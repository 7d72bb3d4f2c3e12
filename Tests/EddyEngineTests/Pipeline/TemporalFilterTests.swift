import EddyEngine
import EddySQL
import EddyTestSupport
import Foundation
import Synchronization
import Testing

/// Temporal filters (`WHERE ts > now() - INTERVAL …`) run by the engine over the mock Kafka cluster and a real
/// Redis, with a clock the test sets: rows leave the views, and their keys leave Redis, as the clock passes them.
/// Each view is checked against SQLite computing the same SQL with `now()` the clock's value.
@Suite("Temporal filters", .serialized)
struct TemporalFilterTests {
    /// The wall clock the pipeline reads, set by the test (microseconds since 1970).
    final class TestClock: Sendable {
        private let micros: Atomic<Int64>
        init(seconds: Int64) { micros = Atomic(seconds * 1_000_000) }
        func set(seconds: Int64) { micros.store(seconds * 1_000_000, ordering: .relaxed) }
        var now: Int64 { micros.load(ordering: .relaxed) }
    }

    static let seconds = WindowTests.seconds

    /// Each view as Eddy runs it, and as SQLite computes it at clock time `now` (seconds).
    static func views(now: Int64?) -> [WindowTests.WindowView] {
        let now = now ?? 0
        return [
            // Aggregated over the rows of the last 10 minutes: a count leaves as its last row does.
            WindowTests.WindowView(
                name: "recent",
                eddy: "SELECT event, COUNT(*) AS n FROM user_events WHERE event_timestamp > now() - INTERVAL '10 minutes' GROUP BY event",
                sqlite: "SELECT event, COUNT(*) AS n FROM user_events WHERE \(seconds) > \(now - 600) GROUP BY event"),
            // Rows, with another condition beside the clock's, in either order of its sides.
            WindowTests.WindowView(
                name: "recent_submits",
                eddy: "SELECT user, event_timestamp FROM user_events WHERE event = 'submit' AND now() - INTERVAL '5 minutes' <= event_timestamp",
                sqlite: "SELECT user, datetime(\(seconds), 'unixepoch') AS event_timestamp FROM user_events WHERE event = 'submit' AND \(seconds) >= \(now - 300)"),
            // An upper bound: rows enter once the clock is a minute past them.
            WindowTests.WindowView(
                name: "settled",
                eddy: "SELECT page, COUNT(*) AS n FROM user_events WHERE event_timestamp <= now() - INTERVAL '1 minute' GROUP BY page",
                sqlite: "SELECT page, COUNT(*) AS n FROM user_events WHERE \(seconds) <= \(now - 60) GROUP BY page"),
            // Over a view's changes: a hot-path TUMBLE, and the minutes of the last three.
            WindowTests.WindowView(
                name: "per_minute",
                eddy: "SELECT event, window_start, COUNT(*) AS n FROM TUMBLE(user_events, event_timestamp, INTERVAL '1 MINUTE') GROUP BY event, window_start",
                sqlite: "SELECT event, datetime(\(seconds) / 60 * 60, 'unixepoch') AS window_start, COUNT(*) AS n FROM user_events GROUP BY event, \(seconds) / 60"),
            // In HAVING: users seen in the last four minutes, with all their events.
            WindowTests.WindowView(
                name: "active_users",
                eddy: "SELECT user, COUNT(*) AS n, MAX(event_timestamp) AS last_seen FROM user_events GROUP BY user HAVING MAX(event_timestamp) > now() - INTERVAL '4 minutes' AND COUNT(*) > 1",
                sqlite: "SELECT user, COUNT(*) AS n, datetime(MAX(\(seconds)), 'unixepoch') AS last_seen FROM user_events GROUP BY user HAVING MAX(\(seconds)) > \(now - 240) AND COUNT(*) > 1"),
            WindowTests.WindowView(
                name: "last_minutes",
                eddy: "SELECT event, window_start, n FROM per_minute WHERE window_start >= now() - INTERVAL '3 minutes'",
                sqlite: "SELECT event, window_start, n FROM per_minute WHERE CAST(strftime('%s', window_start) AS INTEGER) >= \(now - 180)"),
        ]
    }

    static let sinks = """
        CREATE SINK recent_sink FROM recent WITH (connector='redis', primary_key='event', redis.url='${REDIS_URL}')
          FORMAT PLAIN ENCODE TEMPLATE (key_format='recent:{event}', value_format='{n}');
        CREATE SINK active_sink FROM active_users WITH (connector='redis', primary_key='user', redis.url='${REDIS_URL}')
          FORMAT PLAIN ENCODE TEMPLATE (key_format='active:{user}', value_format='{n}');
        CREATE SINK last_sink FROM last_minutes WITH (connector='redis', primary_key='event,window_start', redis.url='${REDIS_URL}')
          FORMAT PLAIN ENCODE TEMPLATE (key_format='last:{event}:{window_start}', value_format='{n}');

        """

    /// What Redis should hold under each sink's prefix at clock time `now`, from SQLite.
    static func expectedRedis(_ rows: [String: [SQLiteOracle.Row]]) -> [String: [String: String]] {
        ["recent:": Dictionary(uniqueKeysWithValues: rows["recent"]!.map { ("recent:" + $0[0], $0[1]) }),
         "last:": Dictionary(uniqueKeysWithValues: rows["last_minutes"]!.map { ("last:\($0[0]):\($0[1])", $0[2]) }),
         "active:": Dictionary(uniqueKeysWithValues: rows["active_users"]!.map { ("active:" + $0[0], $0[1]) })]
    }

    @Test("Rows leave temporal-filter views, and their keys leave Redis, as the clock advances with no new message; rows behind an upper bound enter; all agree with SQLite at each time, across a restart")
    func rowsLeaveAsTheClockAdvances() throws {
        let harness = try PipelineHarness(partitions: 2)
        let clock = TestClock(seconds: WindowTests.start + 12 * 60)
        harness.options.wallClock = { clock.now }
        let views = Self.views(now: nil).map { (name: $0.name, select: $0.eddy) }
        let text = CascadeTests.pipelineText(views: views, sinks: Self.sinks)
        try harness.start(text)
        // Twelve minutes of events, 17:00 to 17:12, a few seconds out of order.
        let produced = WindowTests.messages(seed: 5, count: 360, first: WindowTests.start, spacing: 2)
        try WindowTests.produce(produced, to: harness)

        func check(at now: Int64, _ round: String) throws -> [String: [SQLiteOracle.Row]] {
            let expected = try WindowTests.oracle(produced, views: Self.views(now: now))
            try CascadeTests.expectViews(harness, equal: expected, views: views, round)
            for (prefix, entries) in Self.expectedRedis(expected) {
                try CascadeTests.expectRedis(harness, prefix: prefix, equal: entries, "\(round), \(prefix)")
            }
            return expected
        }

        var now = WindowTests.start + 12 * 60
        let full = try check(at: now, "at 17:12")
        #expect(full["recent"]!.count == 5 && full["last_minutes"]!.count > 10 && full["active_users"]!.count > 10, "the first round checks too little: \(full)")
        // Minutes pass with no new message: each step changes every view, since rows cross a bound each time.
        for minutes in [15, 17] {
            now = WindowTests.start + Int64(minutes) * 60
            clock.set(seconds: now)
            _ = try check(at: now, "at 17:\(minutes)")
        }
        // A restart resumes at the checkpoint's time; the clock goes on from there (and never back: a clock set
        // earlier than the checkpoint's time changes nothing).
        try harness.stopPipeline()
        clock.set(seconds: now - 120)
        try harness.start(text)
        _ = try check(at: now, "restarted at 17:17, the wall clock behind")
        now = WindowTests.start + 22 * 60 + 30
        clock.set(seconds: now)
        let emptied = try check(at: now, "at 17:22:30")
        #expect(emptied["recent"]!.isEmpty && emptied["last_minutes"]!.isEmpty && emptied["recent_submits"]!.isEmpty && emptied["active_users"]!.isEmpty)
        for prefix in ["recent:", "last:", "active:"] { #expect(try CascadeTests.redisEntries(harness, prefix: prefix).isEmpty) }
        try harness.stopPipeline()
    }
}
