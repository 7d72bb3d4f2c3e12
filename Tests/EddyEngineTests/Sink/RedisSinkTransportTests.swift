@testable import EddyEngine
import EddyRedis
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
