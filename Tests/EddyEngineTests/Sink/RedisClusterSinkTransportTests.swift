@testable import EddyEngine
import EddyRedis
import EddyState
import EddyTestSupport
import Logging
import Testing

/// The cluster sink's per-slot fence against a real 3-master Redis Cluster: each slot's marker is compared with
/// the record of the last acknowledged write that touched that slot, not with the sink's acknowledgement.
@Suite(.serialized) struct RedisClusterSinkTransportTests {
    private static let partition = TopicPartition(topic: "t", partition: 0)
    private func at(_ epoch: UInt64) -> SinkProgress { SinkProgress(epoch: epoch, form: 7, offsets: [Self.partition: Int64(epoch) * 10]) }
    private func pairs(_ values: [String: String]) -> SinkPairBatch {
        SinkPairBatch(values.sorted { $0.key < $1.key }.map { SinkStateMachine.Pair(key: Array($0.key.utf8), value: Array($0.value.utf8)) })
    }
    private func transport(_ cluster: RedisTestCluster, record: [UInt16: SinkProgress] = [:], acknowledged: Bool = false) -> RedisClusterSinkTransport {
        RedisClusterSinkTransport(
            sink: "s", seeds: cluster.urls, slotRecord: record, acknowledged: acknowledged, connectTimeout: .seconds(5), commandTimeout: .seconds(5),
            logger: Logger(label: "eddy.test"))
    }
    private func slot(_ key: String) -> UInt16 { UInt16(RedisHashSlot(key: Array(key.utf8)).value) }

    @Test func aSlotAnEpochSkippedIsNotLostAndAFlushedOneIsResent() throws {
        let cluster = try RedisTestCluster()
        let transport = transport(cluster)
        defer { transport.disconnect() }
        #expect(try transport.connectAndCheck(SinkStateMachine.Write(progress: at(0), pairs: [], isWholeView: false, base: nil)) == nil)
        // Epoch 1 touches a and b, epoch 2 only a: b's marker stays at 1, behind the acknowledgement (2) but at its own record.
        #expect(try transport.write(SinkStateMachine.Write(progress: at(1), pairs: pairs(["a": "1", "b": "1"]), isWholeView: false, base: nil)) == nil)
        #expect(Set(transport.writtenSlots) == [slot("a"), slot("b")])
        #expect(try transport.write(SinkStateMachine.Write(progress: at(2), pairs: pairs(["a": "2"]), isWholeView: false, base: at(1))) == nil)
        #expect(transport.writtenSlots == [slot("a")])
        #expect(transport.slotRecord == [slot("a"): at(2), slot("b"): at(1)])
        let probe = SinkStateMachine.Write(progress: at(2), pairs: [], isWholeView: false, base: at(2))
        #expect(try transport.check(probe) == nil)
        // A restart with the record from the store checks the same.
        let restarted = self.transport(cluster, record: transport.slotRecord, acknowledged: true)
        defer { restarted.disconnect() }
        #expect(try restarted.connectAndCheck(probe) == nil)
        // b's master loses its data: b's marker is missing although the last epoch never touched it.
        try #require(try cluster.node(servingKey: "b")).flushAll()
        #expect(try restarted.check(probe) == .wholeViewNeeded(.redisLostData))
        // The re-send: every slot fenced; a's slot already holds epoch 2 and is left alone, b's is written.
        let whole = SinkStateMachine.Write(progress: at(2), pairs: pairs(["a": "2", "b": "1"]), isWholeView: true, base: at(2))
        #expect(try restarted.write(whole) == nil)
        #expect(try cluster.get("b") == "1")
        #expect(try restarted.check(probe) == nil)
    }

    @Test func aSlotAheadOfTheCheckpointsMakesTheSinkWaitAndNoRecordMeansTheWholeView() throws {
        let cluster = try RedisTestCluster()
        let writer = transport(cluster)
        defer { writer.disconnect() }
        #expect(try writer.write(SinkStateMachine.Write(progress: at(5), pairs: pairs(["a": "5"]), isWholeView: false, base: nil)) == nil)
        // A copy of the store from before epoch 5: its checkpoints (3) are behind a's marker.
        let copy = transport(cluster, record: [slot("a"): at(2)], acknowledged: true)
        defer { copy.disconnect() }
        #expect(try copy.connectAndCheck(SinkStateMachine.Write(progress: at(3), pairs: [], isWholeView: false, base: at(2))) == .markerAhead(at(5)))
        #expect(try copy.write(SinkStateMachine.Write(progress: at(3), pairs: pairs(["a": "3"]), isWholeView: false, base: at(2))) == .markerAhead(at(5)))
        #expect(try cluster.get("a") == "5")
        // Acknowledged before with no slot recorded (the sink wrote to one Redis before): the whole view, once.
        let moved = transport(cluster, acknowledged: true)
        defer { moved.disconnect() }
        let probe = SinkStateMachine.Write(progress: at(6), pairs: [], isWholeView: false, base: at(6))
        #expect(try moved.connectAndCheck(probe) == .wholeViewNeeded(.redisLostData))
        #expect(try moved.write(SinkStateMachine.Write(progress: at(6), pairs: pairs(["a": "6", "c": "6"]), isWholeView: true, base: at(6))) == nil)
        #expect(try moved.check(probe) == nil)
        #expect(try cluster.get("c") == "6")
    }
}
