import EddyRedis
import EddyTestSupport
import Testing

@Suite struct RedisHashSlotTests {
    @Test func hashesAsTheClusterSpecificationSays() {
        // CRC16/XMODEM's check value: crc("123456789") = 0x31C3.
        #expect(RedisHashSlot(key: bytes("123456789")).value == 0x31C3)
        // Hash tags: the first `{`, the first `}` after it, non-empty in between.
        #expect(RedisHashSlot(key: bytes("{user1000}.following")) == RedisHashSlot(key: bytes("user1000")))
        #expect(RedisHashSlot(key: bytes("foo{}{bar}")) != RedisHashSlot(key: bytes("bar")))
        #expect(RedisHashSlot(key: bytes("foo{{bar}}zap")) == RedisHashSlot(key: bytes("{bar")))
        #expect(RedisHashSlot(key: bytes("foo{bar}{zap}")) == RedisHashSlot(key: bytes("bar")))
    }
}

@Suite struct RedisClusterRedirectTests {
    @Test func readsMovedAndAskReplies() {
        #expect(RedisClusterRedirect(errorMessage: "MOVED 3999 127.0.0.1:6381", askedHost: "h") == RedisClusterRedirect(kind: .moved, slot: RedisHashSlot(3999), node: RedisClusterNode(host: "127.0.0.1", port: 6381)))
        #expect(RedisClusterRedirect(errorMessage: "ASK 0 [::1]:7000", askedHost: "h") == RedisClusterRedirect(kind: .ask, slot: RedisHashSlot(0), node: RedisClusterNode(host: "::1", port: 7000)))
        // A node that does not know its own address: the one asked.
        #expect(RedisClusterRedirect(errorMessage: "MOVED 16383 :7001", askedHost: "cache.local")?.node == RedisClusterNode(host: "cache.local", port: 7001))
        for other in ["MOVED", "MOVED 16384 h:1", "MOVED 1 h", "MOVED 1 h:0", "ERR MOVED 1 h:1", "ASK x h:1", "TRYAGAIN Multiple keys request during rehashing of slot"] {
            #expect(RedisClusterRedirect(errorMessage: other, askedHost: "h") == nil, "\(other)")
        }
    }
}

/// Against a real 3-master cluster on loopback (`redis-cli --cluster create`).
@Suite(.serialized) struct RedisClusterTests {
    @Test func slotsAndTagsAgreeWithClusterKeyslot() throws {
        let cluster = try RedisTestCluster()
        let connection = try cluster.nodes[0].connect()
        defer { connection.close() }
        let keys = ["", "a", "click", "user:42", "{user1000}.following", "foo{}{bar}", "foo{{bar}}zap", "foo{bar}{zap}", "é{ü}", "{", "}{x}"]
            + (0..<200).map { "view:page-\($0):user-\($0 * 7919)" }
        let replies = try connection.pipeline(keys.map { [bytes("CLUSTER"), bytes("KEYSLOT"), bytes($0)] })
        for (key, reply) in zip(keys, replies) {
            #expect(reply == .integer(Int64(RedisHashSlot(key: bytes(key)).value)), "slot of \(key)")
        }
        // Every slot's tag, inside any key, lands in that slot.
        let slots = (0..<RedisHashSlot.count).map(RedisHashSlot.init)
        let tagged = try connection.pipeline(slots.map { [bytes("CLUSTER"), bytes("KEYSLOT"), bytes("eddy:sink:{\($0.hashTag)}:progress")] })
        let wrong = zip(slots, tagged).filter { $1 != .integer(Int64($0.value)) }.map(\.0)
        #expect(wrong.isEmpty, "tags in the wrong slot: \(wrong.prefix(5))")
    }

    @Test func topologyRoutesEveryKeyToItsMasterAndRedirectsParse() throws {
        let cluster = try RedisTestCluster()
        let topology = try cluster.topology()
        #expect(topology.shards.count == 3)
        #expect(topology.unservedSlotCount == 0)
        #expect(Set(topology.shards.map(\.master.port)) == Set(cluster.nodes.map(\.port)))
        for index in 0..<50 {
            let key = "user-\(index)"
            let slot = RedisHashSlot(key: bytes(key))
            let master = try #require(topology.master(of: slot))
            let owner = try #require(cluster.nodes.first { $0.port == master.port })
            #expect(try owner.command("SET", key, String(index)) == .status("OK"))
            // Any other master answers MOVED to the owner.
            let other = try #require(cluster.nodes.first { $0.port != master.port })
            do {
                try other.command("SET", key, "x")
                Issue.record("SET \(key) on a master not serving its slot succeeded")
            } catch {
                #expect(error.code == .clusterRedirect)
                #expect(error.clusterRedirect == RedisClusterRedirect(kind: .moved, slot: slot, node: master), "\(error.reason)")
            }
            #expect(try cluster.get(key) == String(index))
        }
    }

    @Test func aReplicaTakesOverTheSlotsOfAKilledMaster() throws {
        let cluster = try RedisTestCluster(replicasPerMaster: 1)
        let before = try cluster.topology()
        #expect(before.shards.count == 3)
        let slot = RedisHashSlot(key: bytes("click"))
        let oldMaster = try #require(before.master(of: slot))
        let replica = try #require(before.shards[before.shardIndex(of: slot)!].replicas.first)
        #expect(try cluster.nodes.first { $0.port == oldMaster.port }!.command("SET", "click", "48213") == .status("OK"))
        #expect(try cluster.nodes.first { $0.port == oldMaster.port }!.command("WAIT", "1", "5000") == .integer(1))

        let killed = try #require(cluster.nodes.firstIndex { $0.port == oldMaster.port })
        cluster.nodes[killed].kill()
        try cluster.awaitHealthy()
        let asking = try #require(cluster.nodes.firstIndex { $0.isRunning })
        let after = try cluster.topology(askingNode: asking)
        #expect(after.master(of: slot) == replica)
        #expect(after.unservedSlotCount == 0)
        #expect(try cluster.get("click") == "48213")

        // The old master comes back as a replica of the new one.
        try cluster.start(node: killed)
        #expect(eventually { (try? cluster.topology(askingNode: killed).master(of: slot)) == replica })
    }
}
