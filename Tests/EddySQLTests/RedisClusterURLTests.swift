import Testing
@testable import EddySQL

/// `redis.url` as a JSON array of node URLs: a Redis Cluster sink (RisingWave's form).
@Suite struct RedisClusterURLTests {
    private func pipeline(url: String, with: String = "") throws -> Pipeline {
        let text = [
            exampleSource, exampleView,
            "CREATE SINK k FROM events_statisics_mv WITH (connector='redis', primary_key='event', redis.url='\(url)'\(with)) FORMAT PLAIN ENCODE TEMPLATE (key_format='{event}', value_format='{count}');",
        ].joined(separator: "\n")
        let result = compile(text)
        return try #require(result.pipeline, "\(result.errors.map(\.description))")
    }

    @Test func anArrayNamesEveryNodeWithItsCredentials() throws {
        let sink = try pipeline(url: #"["redis://u:p%40ss@127.0.0.1:7000", "redis://u:p%40ss@127.0.0.1:7001","redis://u:p%40ss@[::1]:7002"]"#).sinks[0]
        #expect(sink.redis.clusterNodes.map(\.port) == [7000, 7001, 7002])
        #expect(sink.redis.clusterNodes.map(\.host) == ["127.0.0.1", "127.0.0.1", "::1"])
        #expect(sink.redis.clusterNodes.allSatisfy { $0.username == "u" && $0.password == "p@ss" && $0.tls == nil })
        #expect(sink.redis.endpoint == sink.redis.clusterNodes[0])
    }

    @Test func oneURLIsNoCluster() throws {
        #expect(try pipeline(url: "redis://127.0.0.1:7000").sinks[0].redis.clusterNodes.isEmpty)
    }

    @Test func tlsSettingsApplyToEveryNode() throws {
        let sink = try pipeline(url: #"["rediss://127.0.0.1:7000","rediss://127.0.0.1:7001"]"#, with: ", redis.ssl.ca.location='/etc/ca.pem'").sinks[0]
        #expect(sink.redis.clusterNodes.count == 2)
        #expect(sink.redis.clusterNodes.allSatisfy { $0.tls?.caLocation == "/etc/ca.pem" })
    }

    @Test func thePlanListsTheNodesWithPasswordsMasked() throws {
        let plan = try pipeline(url: #"["redis://u:hunter22@127.0.0.1:7000","redis://u:hunter22@127.0.0.1:7001"]"#).planDescription
        #expect(plan.contains("Cluster redis://u:***@127.0.0.1:7000/0, redis://u:***@127.0.0.1:7001/0"), "\(plan)")
        #expect(!plan.contains("hunter22"))
    }

    @Test func anErrorNeverShowsThePassword() throws {
        let text = [
            exampleSource, exampleView,
            #"CREATE SINK k FROM events_statisics_mv WITH (connector='redis', primary_key='event', redis.url='["redis://u:hunter22@127.0.0.1:7000","redis://u:hunter22@127.0.0.1:port"]') FORMAT PLAIN ENCODE JSON;"#,
        ].joined(separator: "\n")
        let errors = compile(text).errors
        #expect(errors.count == 1)
        let shown = errors.map(\.description).joined(separator: "\n")
        #expect(shown.contains("test.sql:3:"), "\(shown)")
        #expect(shown.contains("redis.url node 2 of 2: the port must be a number"), "\(shown)")
        #expect(!shown.contains("hunter22"), "\(shown)")
    }

    @Test func streamsAndPubsubAreRefusedOnACluster() throws {
        let text = [
            exampleSource, exampleView,
            #"CREATE SINK k FROM events_statisics_mv WITH (connector='redis', primary_key='event', redis.url='["redis://127.0.0.1:7000"]') FORMAT UPSERT ENCODE JSON (redis_value_type='stream', stream='s') KEY ENCODE TEXT;"#,
        ].joined(separator: "\n")
        #expect(compile(text).errors.map(\.description).contains { $0.contains("redis_value_type 'stream' is not supported on a Redis Cluster") })
    }

    @Test(arguments: [
        (#"["a","b"]"#, ["a", "b"]), (#" [ ] "#, []), (#"["a\"b\\c\/d\u0041"]"#, [#"a"b\c/dA"#]),
        (#"["a",]"#, nil), (#"["a" "b"]"#, nil), (#"["a"] x"#, nil), (#"[1]"#, nil), (#""a""#, nil), (#"["a"#, nil),
    ] as [(String, [String]?)])
    func jsonArraysOfStrings(_ text: String, _ expected: [String]?) {
        #expect(SinkOptionsCompiler.jsonStrings(text) == expected)
    }
}
