#if canImport(Glibc)
import Glibc
#endif
import EddyKafka
import EddyTestSupport
import EddyWorkload
import Foundation
import Testing

/// `EMIT ON WINDOW CLOSE` through a SIGKILL of the built binary at the worst moment: the checkpoint in which the
/// watermark passed a window's end is committed, but Redis (paused) has not taken its write.
@Suite(.serialized) struct WindowCrashRecoveryTests {
    /// 2026-11-24 17:00:00 UTC.
    static let start: Int64 = 1_795_539_600

    static let pipeline = """
        CREATE SOURCE user_events (event_timestamp TIMESTAMP, user VARCHAR, page VARCHAR, event VARCHAR,
            WATERMARK FOR event_timestamp AS event_timestamp - INTERVAL '5 SECONDS')
          WITH (connector='kafka', topic='test', properties.bootstrap.server='${KAFKA_BROKERS}', scan.startup.mode='earliest') FORMAT PLAIN ENCODE JSON;
        CREATE MATERIALIZED VIEW closed_minutes AS SELECT event, window_start, COUNT(*) AS n
          FROM TUMBLE(user_events, event_timestamp, INTERVAL '1 MINUTE') GROUP BY event, window_start EMIT ON WINDOW CLOSE;
        CREATE MATERIALIZED VIEW accepted_events AS SELECT COUNT(*) AS n FROM user_events;
        CREATE SINK closed_sink FROM closed_minutes WITH (connector='redis', primary_key='event,window_start', redis.url='${REDIS_URL}')
          FORMAT PLAIN ENCODE TEMPLATE (key_format='w:{event}:{window_start}', value_format='{n}');
        """

    /// `count` events a second apart from `first` (seconds since 1970), as the load generator writes them.
    static func messages(seed: UInt64, count: Int, first: Int64) -> [String] {
        var generator = UserEventGenerator(seed: seed, userCount: 30, pageCount: 10)
        var buffer: [UInt8] = []
        return (0..<count).map { index in
            buffer.removeAll(keepingCapacity: true)
            _ = generator.appendMessage(timestamp: EventTimestamp(epochSeconds: first + Int64(index)), to: &buffer)
            return String(decoding: buffer, as: UTF8.self)
        }
    }

    /// Redis keys and values of the windows of `messages` that start before `before` (seconds), computed by
    /// SQLite with integer arithmetic on epoch seconds.
    static func windows(of messages: [String], startingBefore before: Int64) throws -> [String: String] {
        let seconds = "CAST(strftime('%s', event_timestamp) AS INTEGER)"
        let rows = try SQLiteOracle.evaluate(
            table: "user_events", columns: ["event_timestamp", "user", "page", "event"], jsonRows: messages,
            views: [("w", "SELECT event, datetime(\(seconds) / 60 * 60, 'unixepoch'), COUNT(*) FROM user_events WHERE \(seconds) < \(before) GROUP BY event, \(seconds) / 60")])["w"]!
        return Dictionary(uniqueKeysWithValues: rows.map { ("w:\($0[0]):\($0[1])", $0[2]) })
    }

    @Test func aKillNineBetweenTheWatermarkPassingAndTheRedisWriteStillWritesEachWindowOnce() throws {
        let directory = try ScratchDirectory(prefix: "eddy-eowc-crash")
        defer { directory.remove() }
        let broker = try DevBrokerProcess(topics: ["test:2"])
        defer { _ = broker.stop() }
        let redis = try RedisTestServer()
        try redis.start(persistent: false)
        let path = directory.path + "/windows.sql"
        try Self.pipeline.write(toFile: path, atomically: true, encoding: .utf8)
        let environment = ["KAFKA_BROKERS": broker.bootstrapServers, "REDIS_URL": "redis://127.0.0.1:\(redis.port)"]
        let stateDirectory = directory.path + "/state"
        var launches = 0
        func launchDaemon() throws -> EddyProcess {
            launches += 1
            return try EddyProcess.launch(
                ["run", path, "--state-dir", stateDirectory, "--http", "off", "--checkpoint-interval", "0.1"],
                environment: environment, outputDirectory: directory.path, name: "eddy-\(launches)")
        }
        func produce(_ messages: [String]) throws { try broker.produce(messages, topic: "test", partitions: 2) }
        var lastQuery = ""
        /// The rows of a view in the last committed checkpoint.
        func checkpointed(_ view: String) throws -> [String] {
            let query = try EddyProcess.queryCheckpoint("SELECT * FROM \(view)", stateDirectory: stateDirectory)
            lastQuery = query.output
            return query.rows ?? []
        }
        func windowKeys() throws -> [String: String] {
            guard case .array(let keys) = try redis.command("KEYS", "w:*") else { return [:] }
            var entries: [String: String] = [:]
            for key in keys.compactMap(\.text) { entries[key] = try redis.get(key) }
            return entries
        }

        var daemon = try launchDaemon()
        // Minute 0, and the first seconds of minute 1: the watermark stays before 17:01:00.
        var produced = Self.messages(seed: 1, count: 60, first: Self.start) + Self.messages(seed: 2, count: 60, first: Self.start)
            + Self.messages(seed: 3, count: 4, first: Self.start + 60)
        try produce(produced)
        #expect(eventually(timeout: .seconds(60), every: .milliseconds(50)) { (try? checkpointed("accepted_events")) == [String(produced.count)] },
            "\(lastQuery) \(daemon.standardError.suffix(2000))")
        #expect(try windowKeys().isEmpty, "a window was written before it closed")

        // Redis stops taking writes; then events at 17:01:10 on both partitions move the watermark to 17:01:05,
        // and the checkpoint that closes minute 0 commits without reaching Redis.
        try redis.pause(writesFor: .seconds(120))
        let closing = Self.messages(seed: 4, count: 2, first: Self.start + 70)
        try produce(closing)
        produced += closing
        #expect(eventually(timeout: .seconds(60), every: .milliseconds(50)) { (try? checkpointed("closed_minutes"))?.count == 5 },
            "\(lastQuery) \(daemon.standardError.suffix(2000))")
        #expect(try windowKeys().isEmpty, "Redis took a write while paused")
        daemon.kill()
        #expect(daemon.waitForExit(timeout: .seconds(10)) != nil)
        try redis.unpause()

        // The restart re-sends what Redis lacks from the checkpoint: minute 0, once, exact.
        daemon = try launchDaemon()
        let minute0 = try Self.windows(of: produced, startingBefore: Self.start + 60)
        #expect(minute0.count == 5)
        var held: [String: String] = [:]
        #expect(eventually(timeout: .seconds(60), every: .milliseconds(20)) { held = (try? windowKeys()) ?? [:]; return held == minute0 },
            "Redis \(held) vs \(minute0): \(daemon.standardError.suffix(2000))")

        // Minute 1 closes after the restart (the watermark was restored: nothing of minute 0 counts again).
        let minute1 = Self.messages(seed: 5, count: 60, first: Self.start + 71) + Self.messages(seed: 6, count: 2, first: Self.start + 30)
        try produce(minute1)
        produced += minute1.prefix(60)
        let minutes = try Self.windows(of: produced, startingBefore: Self.start + 120)
        #expect(eventually(timeout: .seconds(60), every: .milliseconds(20)) { held = (try? windowKeys()) ?? [:]; return held == minutes },
            "Redis \(held) vs \(minutes): \(daemon.standardError.suffix(2000))")
        daemon.send(SIGTERM)
        #expect(daemon.waitForExit(timeout: .seconds(15)) == 0, "\(daemon.standardError.suffix(2000))")
    }
}
