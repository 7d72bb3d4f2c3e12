@testable import EddyRedis
import EddyTestSupport
import Foundation
import Synchronization
import Testing

private typealias Pairs = [(key: [UInt8], value: [UInt8]?)]

/// What a write did in one slot under the epoch-number fence these tests drive the writer with (the engine's
/// progress fence is SinkStateMachine's; the writer only applies whatever the caller decides, per slot).
private enum SlotOutcome: Equatable {
    /// The slot's marker is at this epoch or later.
    case stale(marker: UInt64)
}

extension RedisClusterEpochWriter {
    /// Applies `epoch` in each slot whose marker (absent = 0) is below it; `decided` counts the decisions per slot.
    fileprivate func write(sink: String, epoch: UInt64, pairs: Pairs, layout: RedisValueLayout = .string, decided: Tally? = nil) throws(RedisError) -> [RedisHashSlot: SlotOutcome] {
        try write(sink: sink, marker: bytes(String(epoch)), pairs: pairs, layout: layout) { slot, marker -> RedisMarkerCheck<SlotOutcome> in
            decided?.counts[slot, default: 0] += 1
            guard let marker else { return .write }
            guard let current = UInt64(String(decoding: marker, as: UTF8.self)) else { return .unreadable(detail: "holds no epoch number") }
            return current >= epoch ? .refuse(.stale(marker: current)) : .write
        }
    }
}

/// Counts, from the writer's closures (on the test's thread).
private final class Tally {
    var counts: [RedisHashSlot: Int] = [:]
    var rounds = 0
}

private func makeWriter(_ cluster: RedisTestCluster, seeds: [RedisURL]? = nil) -> RedisClusterEpochWriter {
    RedisClusterEpochWriter(seeds: seeds ?? cluster.urls, connectTimeout: .seconds(2), commandTimeout: .seconds(10), clientName: "eddy:test", logger: testLogger)
}

private func epochPairs(_ keys: [String], _ value: (String) -> String?) -> Pairs {
    keys.map { (key: bytes($0), value: value($0).map(bytes)) }
}

/// Reads `keys` (and the markers of their slots) from the masters serving them now, one pipeline per master.
private func read(_ cluster: RedisTestCluster, _ keys: [String]) throws -> [String: String] {
    let asking = try #require(cluster.nodes.firstIndex { $0.isRunning })
    let map = try cluster.topology(askingNode: asking)
    var byNode: [Int: [String]] = [:]
    for key in keys {
        let master = try #require(map.master(of: RedisHashSlot(key: bytes(key))))
        byNode[master.port, default: []].append(key)
    }
    var values: [String: String] = [:]
    for (port, keys) in byNode {
        let node = try #require(cluster.nodes.first { $0.port == port })
        let connection = try node.connect()
        defer { connection.close() }
        for (key, reply) in zip(keys, try connection.pipeline(keys.map { [bytes("GET"), bytes($0)] })) {
            if let text = reply.text { values[key] = text }
        }
    }
    return values
}

/// Every key whose name starts with `prefix` on every running master.
private func keys(_ cluster: RedisTestCluster, prefix: String) throws -> Set<String> {
    var found = Set<String>()
    let map = try cluster.topology(askingNode: try #require(cluster.nodes.firstIndex { $0.isRunning }))
    for shard in map.shards {
        let node = try #require(cluster.nodes.first { $0.port == shard.master.port })
        guard case .array(let names) = try node.command("KEYS", prefix + "*") else { continue }
        found.formUnion(names.compactMap(\.text))
    }
    return found
}

private func markerKeys(sink: String, of keys: [String]) -> Set<String> {
    Set(keys.map { RedisClusterEpochWriter.markerKey(sink: sink, slot: RedisHashSlot(key: bytes($0))) })
}

/// Sets `values` on `node` in one transaction, as another writer of the sink would.
private func anotherWriter(_ node: RedisTestServer, _ values: [String: String]) {
    guard let connection = try? node.connect() else { Issue.record("cannot connect to \(node.port)"); return }
    defer { connection.close() }
    let sets = values.map { [bytes("SET"), bytes($0.key), bytes($0.value)] }
    #expect((try? connection.pipeline([[bytes("MULTI")]] + sets + [[bytes("EXEC")]])) != nil)
}

/// Against a real 3-master cluster on loopback (`RedisTestCluster`).
@Suite(.serialized) struct RedisClusterEpochWriterTests {
    @Test func markersSitInTheirSlotWhateverTheSinkName() {
        for name in ["clicks", "a{b}c", "{x}", ""] {
            for slot in [0, 1, 8_000, 16_383].map(RedisHashSlot.init) {
                #expect(RedisHashSlot(key: bytes(RedisClusterEpochWriter.markerKey(sink: name, slot: slot))) == slot)
            }
        }
    }

    @Test func writesKeysInManySlotsExactlyWithEveryMarkerSet() throws {
        let cluster = try RedisTestCluster()
        // Seeded with one node: the rest of the cluster is found from its slot map.
        let writer = makeWriter(cluster, seeds: [cluster.urls[1]])
        let names = (0..<600).map { "view:page-\($0)" }
        let slots = Set(names.map { RedisHashSlot(key: bytes($0)) })
        #expect(slots.count > 500)

        #expect(try writer.write(sink: "s", epoch: 1, pairs: epochPairs(names) { "\($0)@1" }).isEmpty)
        let first = try read(cluster, names)
        #expect(names.allSatisfy { first[$0] == "\($0)@1" })
        #expect(try keys(cluster, prefix: "eddy:") == markerKeys(sink: "s", of: names))
        let markers = try read(cluster, Array(markerKeys(sink: "s", of: names)))
        #expect(markers.count == slots.count && markers.values.allSatisfy { $0 == "1" })
        #expect(try writer.readMarkers(sink: "s", slots: slots).values.allSatisfy { $0 == bytes("1") })

        // Epoch 2: every third key deleted, the others changed, only in the slots of the first 300 keys.
        let touched = Array(names.prefix(300))
        #expect(try writer.write(sink: "s", epoch: 2, pairs: epochPairs(touched) { $0.hasSuffix("0") ? nil : "\($0)@2" }).isEmpty)
        let second = try read(cluster, names)
        for name in names {
            let expected = touched.contains(name) ? (name.hasSuffix("0") ? nil : "\(name)@2") : "\(name)@1"
            #expect(second[name] == expected, "\(name)")
        }
        let touchedMarkers = markerKeys(sink: "s", of: touched)
        for (key, value) in try read(cluster, Array(markerKeys(sink: "s", of: names))) {
            #expect(value == (touchedMarkers.contains(key) ? "2" : "1"), "\(key)")
        }
    }

    @Test func hashesAndTTLsAreWrittenPerSlotStreamsAreRefused() throws {
        let cluster = try RedisTestCluster()
        let writer = makeWriter(cluster)
        let names = (0..<50).map { "user:\($0)" }
        let layout = RedisValueLayout(kind: .hash, ttlSeconds: 600)
        let pairs = names.map { (key: bytes($0), value: Optional(RedisValueLayout.hashFields([("name", $0), ("count", "7")]))) }
        #expect(try writer.write(sink: "h", epoch: 1, pairs: pairs, layout: layout).isEmpty)
        for name in names.prefix(10) {
            let node = try #require(try cluster.node(servingKey: name))
            #expect(try node.command("HGETALL", name) == .array([.string(bytes("name")), .string(bytes(name)), .string(bytes("count")), .string(bytes("7"))]))
            guard case .integer(let ttl) = try node.command("TTL", name) else { Issue.record("TTL of \(name)"); continue }
            #expect((1...600).contains(ttl))
        }
        do throws(RedisError) {
            _ = try writer.write(sink: "h", epoch: 2, pairs: pairs, layout: RedisValueLayout(kind: .stream(name: bytes("changes"))))
            Issue.record("a stream layout was written to a cluster")
        } catch {
            #expect(error.code == .unsupported && error.reason.contains("single Redis server"), "\(error.reason)")
        }
    }

    @Test func aSecondWriteIsFencedPerSlot() throws {
        let cluster = try RedisTestCluster()
        let writer = makeWriter(cluster)
        let names = (0..<40).map { "k\($0)" }
        #expect(try writer.write(sink: "s", epoch: 1, pairs: epochPairs(names) { "\($0)@1" }).isEmpty)

        // Another writer moved one slot to epoch 5.
        let fenced = RedisHashSlot(key: bytes("k7"))
        let markerKey = RedisClusterEpochWriter.markerKey(sink: "s", slot: fenced)
        #expect(try cluster.node(servingKey: markerKey)!.command("SET", markerKey, "5") == .status("OK"))

        let refusals = try writer.write(sink: "s", epoch: 2, pairs: epochPairs(names) { "\($0)@2" })
        #expect(refusals == [fenced: .stale(marker: 5)])
        let values = try read(cluster, names)
        for name in names {
            let inFencedSlot = RedisHashSlot(key: bytes(name)) == fenced
            #expect(values[name] == "\(name)@\(inFencedSlot ? 1 : 2)", "\(name)")
        }
        // The same epoch again: every slot already holds it (or more); nothing is written.
        let again = try writer.write(sink: "s", epoch: 2, pairs: epochPairs(names) { "\($0)@again" })
        #expect(Set(again.keys) == Set(names.map { RedisHashSlot(key: bytes($0)) }))
        #expect(try read(cluster, names).values.allSatisfy { !$0.hasSuffix("again") })
    }

    @Test func aFlushedScriptIsLoadedAgainAndAMarkerOfAnotherTypeIsAnError() throws {
        let cluster = try RedisTestCluster()
        let writer = makeWriter(cluster)
        let names = (0..<30).map { "n\($0)" }
        #expect(try writer.write(sink: "s", epoch: 1, pairs: epochPairs(names) { "\($0)@1" }).isEmpty)
        // A master forgets its scripts (as a restarted or promoted one has none): NOSCRIPT, loaded again.
        for node in cluster.nodes { #expect(try node.command("SCRIPT", "FLUSH") == .status("OK")) }
        #expect(try writer.write(sink: "s", epoch: 2, pairs: epochPairs(names) { "\($0)@2" }).isEmpty)
        #expect(try read(cluster, names).allSatisfy { $0.value == "\($0.key)@2" })

        let slot = RedisHashSlot(key: bytes("n4"))
        let markerKey = RedisClusterEpochWriter.markerKey(sink: "s", slot: slot)
        let node = try #require(try cluster.node(servingKey: markerKey))
        _ = try node.command("DEL", markerKey)
        _ = try node.command("HSET", markerKey, "field", "value")
        do throws(RedisError) {
            _ = try writer.write(sink: "s", epoch: 3, pairs: epochPairs(names) { "\($0)@3" })
            Issue.record("a marker holding a hash was written over")
        } catch {
            #expect(error.code == .invalidMarker && error.reason.contains(markerKey) && error.reason.contains("another program"), "\(error.reason)")
        }
        #expect(try node.command("TYPE", markerKey) == .status("hash"))
        // Every marker of a round is read before any slot is written: nothing of epoch 3 is anywhere.
        #expect(try read(cluster, names).allSatisfy { $0.value == "\($0.key)@2" })
    }

    @Test func aMarkerMovedBetweenReadAndWriteIsReadAndDecidedAgain() throws {
        let cluster = try RedisTestCluster()
        let writer = makeWriter(cluster)
        let names = (0..<30).map { "item-\($0)" }
        #expect(try writer.write(sink: "s", epoch: 1, pairs: epochPairs(names) { "\($0)@1" }).isEmpty)
        let moved = RedisHashSlot(key: bytes("item-3"))
        let markerKey = RedisClusterEpochWriter.markerKey(sink: "s", slot: moved)
        let node = try #require(try cluster.node(servingKey: markerKey))

        // Another writer writes epoch 2 of one slot between this writer's read of the markers and its scripts.
        let tally = Tally()
        writer.afterMarkerRead = {
            tally.rounds += 1
            if tally.rounds == 1 { anotherWriter(node, ["item-3": "other@2", markerKey: "2"]) }
        }
        #expect(try writer.write(sink: "s", epoch: 3, pairs: epochPairs(names) { "\($0)@3" }, decided: tally).isEmpty)
        #expect(tally.rounds == 2)
        // Decided again in the moved slot only, then written over the other writer's epoch 2.
        #expect(tally.counts.filter { $0.value != 1 } == [moved: 2])
        let values = try read(cluster, names + [markerKey])
        #expect(names.allSatisfy { values[$0] == "\($0)@3" })
        #expect(values[markerKey] == "3")

        // The other writer wrote the same epoch meanwhile: decided again, refused, its value kept (nothing twice).
        tally.rounds = 0
        writer.afterMarkerRead = {
            tally.rounds += 1
            if tally.rounds == 1 { anotherWriter(node, ["item-3": "other@4", markerKey: "4"]) }
        }
        #expect(try writer.write(sink: "s", epoch: 4, pairs: epochPairs(names) { "\($0)@4" }) == [moved: .stale(marker: 4)])
        let after = try read(cluster, names)
        #expect(after["item-3"] == "other@4")
        #expect(names.filter { $0 != "item-3" }.allSatisfy { after[$0] == "\($0)@4" })
    }

    @Test func aSlotBeingMigratedIsWrittenWhereTheClusterAsks() throws {
        let cluster = try RedisTestCluster()
        let writer = makeWriter(cluster)
        let names = ["{moving}a", "{moving}b"] + (0..<20).map { "other-\($0)" }
        #expect(try writer.write(sink: "s", epoch: 1, pairs: epochPairs(names) { "\($0)@1" }).isEmpty)

        // Slot of {moving} is being migrated to another master; its keys and marker went there already.
        let slot = RedisHashSlot(key: bytes("{moving}"))
        let source = try #require(try cluster.node(servingKey: "{moving}"))
        let target = try #require(cluster.nodes.first { $0.port != source.port })
        let sourceID = try #require(try source.command("CLUSTER", "MYID").text)
        let targetID = try #require(try target.command("CLUSTER", "MYID").text)
        #expect(try target.command("CLUSTER", "SETSLOT", String(slot.value), "IMPORTING", sourceID) == .status("OK"))
        #expect(try source.command("CLUSTER", "SETSLOT", String(slot.value), "MIGRATING", targetID) == .status("OK"))
        let moving = ["{moving}a", "{moving}b", RedisClusterEpochWriter.markerKey(sink: "s", slot: slot)]
        let migration = try source.connect()
        defer { migration.close() }
        _ = try migration.command([bytes("MIGRATE"), bytes("127.0.0.1"), bytes(String(target.port)), [], bytes("0"), bytes("5000"), bytes("KEYS")] + moving.map(bytes))
        #expect(try source.command("CLUSTER", "COUNTKEYSINSLOT", String(slot.value)) == .integer(0))

        // The source answers ASK for the slot's marker: the writer reads and writes it on the target, after ASKING.
        #expect(try writer.write(sink: "s", epoch: 2, pairs: epochPairs(names) { "\($0)@2" }).isEmpty)
        #expect(try source.command("CLUSTER", "COUNTKEYSINSLOT", String(slot.value)) == .integer(0))

        for node in cluster.nodes { _ = try node.command("CLUSTER", "SETSLOT", String(slot.value), "NODE", targetID) }
        #expect(eventually { (try? cluster.topology().master(of: slot)?.port) == target.port })
        let values = try read(cluster, names + moving)
        #expect(names.allSatisfy { values[$0] == "\($0)@2" })
        #expect(values[moving[2]] == "2")
    }

    /// What docs/redis-cluster.md promises a reader: one slot's keys and marker move together from one epoch to
    /// the next, and no slot moves backwards.
    @Test func aReaderSeesEachSlotAtOneEpochAndNoSlotGoingBackwards() throws {
        let cluster = try RedisTestCluster()
        let writer = makeWriter(cluster)
        let slotA = ["{a}1", "{a}2", "{a}3"]
        let slotB = ["{b}1", "{b}2"]
        let markerA = RedisClusterEpochWriter.markerKey(sink: "s", slot: RedisHashSlot(key: bytes("{a}")))
        let nodeA = try #require(try cluster.node(servingKey: "{a}"))
        let nodeB = try #require(try cluster.node(servingKey: "{b}"))
        let epochs: UInt64 = 150
        let stop = Atomic(false)
        let seen = Mutex<(snapshots: Int, epochsOfA: Set<Int>, problems: [String])>((0, [], []))
        let reader = Thread {
            guard let a = try? nodeA.connect(), let b = try? nodeB.connect() else {
                seen.withLock { $0.problems.append("the reader cannot connect") }
                return
            }
            defer { a.close(); b.close() }
            var last: (a: Int, b: Int) = (0, 0)
            func epoch(_ reply: RedisReply) -> Int { reply.text.flatMap { Int($0.split(separator: "@").last ?? "") } ?? 0 }
            while !stop.load(ordering: .relaxed) {
                // One slot at a time is all a cluster client can read atomically: MGET of its keys and marker.
                guard case .array(let first)? = try? a.command([bytes("MGET")] + (slotA + [markerA]).map(bytes)),
                    case .array(let second)? = try? b.command([bytes("MGET")] + slotB.map(bytes))
                else { continue }
                let inA = Set(first.dropLast().map(epoch)), inB = Set(second.map(epoch))
                let marker = first.last?.text.flatMap { Int($0) } ?? 0
                seen.withLock { seen in
                    seen.snapshots += 1
                    if inA.count != 1 || inA.first != marker { seen.problems.append("slot {a} at epochs \(inA.sorted()), marker \(marker)") }
                    if inB.count != 1 { seen.problems.append("slot {b} at epochs \(inB.sorted())") }
                    if let a = inA.first, let b = inB.first {
                        seen.epochsOfA.insert(a)
                        if a < last.a || b < last.b { seen.problems.append("went backwards: \(last) then \((a, b))") }
                        last = (a, b)
                    }
                }
            }
        }
        reader.start()
        #expect(eventually { seen.withLock { $0.snapshots } > 0 })
        for epoch in 1...epochs {
            #expect(try writer.write(sink: "s", epoch: epoch, pairs: epochPairs(slotA + slotB) { "\($0)@\(epoch)" }).isEmpty)
        }
        stop.store(true, ordering: .relaxed)
        #expect(eventually(timeout: .seconds(10), every: .milliseconds(1)) { reader.isFinished }, "the reader thread did not stop")
        let result = seen.withLock { $0 }
        #expect(result.problems.isEmpty, "\(result.problems.prefix(5))")
        // The reader saw the epochs go by, not only the start and the end.
        #expect(result.epochsOfA.count > 3, "\(result.snapshots) snapshots")
        let final = try read(cluster, slotA + slotB)
        #expect((slotA + slotB).allSatisfy { final[$0] == "\($0)@\(epochs)" })
    }

    @Test func movedAfterAFailoverIsFollowedToTheNewMaster() throws {
        let cluster = try RedisTestCluster(replicasPerMaster: 1)
        let writer = makeWriter(cluster)
        let names = (0..<60).map { "page:\($0)" }
        #expect(try writer.write(sink: "s", epoch: 1, pairs: epochPairs(names) { "\($0)@1" }).isEmpty)

        // The replica of page:0's master takes over (CLUSTER FAILOVER): the old master answers MOVED.
        let before = try cluster.topology()
        let slot = RedisHashSlot(key: bytes("page:0"))
        let oldMaster = try #require(before.master(of: slot))
        let replica = try #require(before.shards[before.shardIndex(of: slot)!].replicas.first)
        #expect(try cluster.nodes.first { $0.port == replica.port }!.command("CLUSTER", "FAILOVER") == .status("OK"))
        #expect(eventually(timeout: .seconds(20)) { (try? cluster.topology().master(of: slot)) == replica })
        try cluster.awaitHealthy()
        do throws(RedisError) {
            _ = try cluster.nodes.first { $0.port == oldMaster.port }!.command("GET", "page:0")
            Issue.record("the old master still serves page:0")
        } catch {
            #expect(error.clusterRedirect?.kind == .moved)
        }

        #expect(writer.topology?.master(of: slot) == oldMaster)
        #expect(try writer.write(sink: "s", epoch: 2, pairs: epochPairs(names) { "\($0)@2" }).isEmpty)
        #expect(writer.topology?.master(of: slot) == replica)
        let values = try read(cluster, names + Array(markerKeys(sink: "s", of: names)))
        #expect(names.allSatisfy { values[$0] == "\($0)@2" })
        #expect(markerKeys(sink: "s", of: names).allSatisfy { values[$0] == "2" })
    }

    @Test func aKilledMasterFailsOverAndTheRetriedWriteLands() throws {
        let cluster = try RedisTestCluster(replicasPerMaster: 1)
        let writer = makeWriter(cluster)
        let names = (0..<60).map { "page:\($0)" }
        #expect(try writer.write(sink: "s", epoch: 1, pairs: epochPairs(names) { "\($0)@1" }).isEmpty)
        let before = try cluster.topology()
        let slot = RedisHashSlot(key: bytes("page:0"))
        let killed = try #require(cluster.nodes.firstIndex { $0.port == before.master(of: slot)!.port })
        #expect(try cluster.nodes[killed].command("WAIT", "1", "5000") == .integer(1))
        cluster.nodes[killed].kill()

        // As the sink's retry loop does: each call tries for a few seconds, then fails retriably; the next lands.
        var failures: [RedisError] = []
        var refusals: [RedisHashSlot: SlotOutcome]?
        let clock = ContinuousClock()
        let deadline = clock.now + .seconds(40)
        while refusals == nil, clock.now < deadline {
            do throws(RedisError) {
                refusals = try writer.write(sink: "s", epoch: 2, pairs: epochPairs(names) { "\($0)@2" })
            } catch {
                #expect(error.isRetriable, "\(error.reason)")
                failures.append(error)
            }
        }
        #expect(refusals == [:], "\(failures.map(\.reason))")
        try cluster.awaitHealthy()
        #expect(writer.topology?.master(of: slot) != before.master(of: slot))
        let values = try read(cluster, names + Array(markerKeys(sink: "s", of: names)))
        #expect(names.allSatisfy { values[$0] == "\($0)@2" })
        #expect(markerKeys(sink: "s", of: names).allSatisfy { values[$0] == "2" })
    }
}
