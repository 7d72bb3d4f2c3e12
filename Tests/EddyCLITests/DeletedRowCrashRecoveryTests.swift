import EddyTestSupport
import Foundation
import Testing

/// A row that leaves a view between a crash and the restart's whole-view re-send: the daemon died after Redis
/// applied an epoch and before the acknowledgement was stored, so the restart re-sends the whole view, which no
/// longer holds the row. Its key must still leave Redis (`Tombstones`; the SPIN model's run c_s4a).
@Suite(.serialized) struct DeletedRowCrashRecoveryTests {
    static let pipeline = """
        CREATE SOURCE user_events (user VARCHAR, event VARCHAR)
          WITH (connector='kafka', topic='test', properties.bootstrap.server='${KAFKA_BROKERS}', scan.startup.mode='earliest') FORMAT PLAIN ENCODE JSON;
        CREATE MATERIALIZED VIEW per_user AS SELECT user, COUNT(*) AS n FROM user_events GROUP BY user;
        CREATE MATERIALIZED VIEW light_users AS SELECT user, n FROM per_user WHERE n < 3;
        CREATE SINK light_sink FROM light_users WITH (connector='redis', primary_key='user', redis.url='${REDIS_URL}')
          FORMAT PLAIN ENCODE TEMPLATE (key_format='light:{user}', value_format='{n}');
        """

    static func event(_ user: String) -> String { #"{"user":"\#(user)","event":"click"}"# }

    @Test func aRowThatLeftTheViewAfterACrashBetweenExecAndTheAcknowledgementLeavesRedis() throws {
        let directory = try ScratchDirectory(prefix: "eddy-deleted-row-crash")
        defer { directory.remove() }
        let broker = try DevBrokerProcess(topics: ["test:1"])
        defer { _ = broker.stop() }
        let redis = try RedisTestServer()
        defer { redis.destroy() }
        // Persistent: Redis keeps what it applied while it is away.
        try redis.start(persistent: true)
        let path = directory.path + "/light.sql"
        try Self.pipeline.write(toFile: path, atomically: true, encoding: .utf8)
        let stateDirectory = directory.path + "/state"
        var launches = 0
        func launchDaemon(environment extra: [String: String] = [:]) throws -> EddyProcess {
            launches += 1
            return try EddyProcess.launch(
                ["run", path, "--state-dir", stateDirectory, "--http", "off", "--checkpoint-interval", "0.1"],
                environment: ["KAFKA_BROKERS": broker.bootstrapServers, "REDIS_URL": "redis://127.0.0.1:\(redis.port)"].merging(extra) { $1 },
                outputDirectory: directory.path, name: "eddy-\(launches)")
        }

        // a, a, b: Redis holds light:a = 2, acknowledged.
        try broker.produce([Self.event("a"), Self.event("a"), Self.event("b")], topic: "test")
        var daemon = try launchDaemon()
        #expect(eventually(timeout: .seconds(60), every: .milliseconds(20)) { (try? redis.get("light:a")) == "2" }, "\(daemon.standardError.suffix(2000))")
        try daemon.stopGracefully()

        // The next run applies an epoch in Redis and dies as kill -9 would right after EXEC, before the
        // acknowledgement reaches the store: the store's checkpoint is ahead of its acknowledgement.
        try broker.produce([Self.event("b")], topic: "test")
        daemon = try launchDaemon(environment: ["EDDY_CRASH_POINT": "after-exec"])
        #expect(daemon.waitForExit(timeout: .seconds(60)) != nil)
        #expect(daemon.standardError.contains("crash point after-exec reached"), "\(daemon.standardError.suffix(2000))")
        #expect(try redis.get("light:a") == "2")

        // With Redis away, a's third and fourth events take it out of the view, and the restarted daemon commits
        // that checkpoint without being able to write it.
        redis.stop()
        try broker.produce([Self.event("a"), Self.event("a"), Self.event("c")], topic: "test")
        daemon = try launchDaemon()
        var query: (rows: [String]?, output: String) = (nil, "")
        #expect(eventually(timeout: .seconds(60), every: .milliseconds(50)) {
            query = (try? EddyProcess.queryCheckpoint("SELECT user, n FROM light_users ORDER BY user", stateDirectory: stateDirectory)) ?? (nil, "")
            return query.rows == ["b,2", "c,1"]
        }, "\(query.output) \(daemon.standardError.suffix(2000))")

        // Redis comes back with light:a. The checkpoint is ahead of the acknowledgement, so the sink re-sends the
        // whole view in one transaction: light:c appears, and light:a must be gone with it.
        try redis.start(persistent: true)
        #expect(eventually(timeout: .seconds(60), every: .milliseconds(20)) { (try? redis.get("light:c")) == "1" },
            "\(daemon.standardError.suffix(2000))")
        #expect(try redis.get("light:a") == nil, "a left the view, but Redis still holds its key")
        #expect(try redis.get("light:b") == "2")
        try daemon.stopGracefully()
    }
}
