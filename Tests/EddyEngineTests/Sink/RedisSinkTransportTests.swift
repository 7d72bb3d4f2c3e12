@testable import EddyEngine
@testable import EddyRedis
import EddyState
import EddyTestSupport
import Logging
import Testing

/// What the sink's connection does at start besides reading the marker: names itself, warns about eviction.
@Suite struct RedisSinkTransportTests {
    @Test(arguments: [
        ("allkeys-lru", true), ("allkeys-lfu", true), ("allkeys-random", true),
        ("volatile-lru", false), ("volatile-ttl", false), ("noeviction", false),
    ])
    func warnsOnceAtStartWhenRedisMayEvictTheSinksKeys(policy: String, warns: Bool) throws {
        let redis = try RedisTestServer()
        try redis.start(persistent: false, extraArguments: ["--maxmemory", "64mb", "--maxmemory-policy", policy])
        let logs = RecordedLogs(level: .info)
        let transport = RedisSinkTransport(
            sink: "counts", url: redis.url, connectTimeout: .seconds(5), commandTimeout: .seconds(5), logger: logs.logger())
        #expect(try transport.connectAndReadMarker() == .absent)
        #expect(try transport.connectAndReadMarker() == .absent)
        let warnings = logs.lines(atLeast: .warning).map(\.text)
        if warns {
            #expect(warnings.count == 1, "\(warnings)")
            #expect(warnings.first?.hasPrefix(
                "Redis at 127.0.0.1:\(redis.port) may evict this sink's keys under memory pressure (maxmemory-policy \(policy), maxmemory 67108864 bytes)") == true)
        } else {
            #expect(warnings.isEmpty, "\(warnings)")
        }
        transport.disconnect()
    }

    /// Redis applied an epoch whose acknowledgement a crash lost; the restarted daemon's delta (from the older
    /// acknowledged write) repeats its keys. A channel's messages cannot be read back, so that delta publishes
    /// nothing (at most once) and moves the marker; the writes after it publish again.
    @Test func aPubsubDeltaAfterAnUnacknowledgedApplyPublishesNothingTwice() throws {
        let redis = try RedisTestServer()
        try redis.start(persistent: false)
        let subscriber = try redis.connect()
        defer { subscriber.close() }
        guard case .array = try subscriber.command("SUBSCRIBE", "counts") else { Issue.record("SUBSCRIBE failed"); return }
        let transport = RedisSinkTransport(
            sink: "s", url: redis.url, layout: RedisValueLayout(kind: .pubsub(channel: Array("counts".utf8))),
            connectTimeout: .seconds(5), commandTimeout: .seconds(5), logger: Logger(label: "eddy.test"))
        defer { transport.disconnect() }
        _ = try transport.connectAndReadMarker()
        func at(_ epoch: UInt64, _ offset: Int64) -> SinkProgress { SinkProgress(epoch: epoch, form: 7, offsets: [TopicPartition(topic: "t", partition: 0): offset]) }
        func write(_ progress: SinkProgress, _ values: [String: String], base: SinkProgress?) throws -> SinkStateMachine.Refusal? {
            let pairs = values.sorted { $0.key < $1.key }.map { SinkStateMachine.Pair(key: Array($0.key.utf8), value: Array($0.value.utf8)) }
            return try transport.write(SinkStateMachine.Write(progress: progress, pairs: SinkPairBatch(pairs), isWholeView: false, base: base))
        }
        #expect(try write(at(1, 10), ["a": "a=1"], base: nil) == nil)
        #expect(try write(at(2, 20), ["a": "a=2", "b": "b=1"], base: at(1, 10)) == nil)  // applied; the ack is lost
        #expect(try write(at(3, 30), ["a": "a=3", "b": "b=1"], base: at(1, 10)) == nil)  // after the restart
        #expect(try redis.get("eddy:s:epoch") == at(3, 30).markerText)
        #expect(try write(at(4, 40), ["b": "b=2"], base: at(3, 30)) == nil)
        var messages: [String] = []
        for _ in 0..<4 {
            guard case .array(let parts) = try subscriber.receive(commandName: "message"), parts.count == 3 else { continue }
            messages.append(parts[2].text ?? "")
        }
        #expect(messages == ["a=1", "a=2", "b=1", "b=2"])
    }

    @Test func theSinksConnectionIsNamedAfterIt() throws {
        let redis = try RedisTestServer()
        try redis.start(persistent: false)
        let transport = RedisSinkTransport(
            sink: "redis_sink", url: redis.url, connectTimeout: .seconds(5), commandTimeout: .seconds(5), logger: Logger(label: "eddy.test"))
        _ = try transport.connectAndReadMarker()
        #expect(try redis.command("CLIENT", "LIST").text?.contains(" name=eddy:redis_sink ") == true)
        transport.disconnect()
        #expect(try eventually { try redis.connectedClients() == 0 })
    }
}
