import EddyRedis
import EddyState
import EddyTestSupport
import Logging
import Testing

@testable import EddyEngine

private typealias Pair = SinkStateMachine.Pair

private func bytes(_ text: String) -> [UInt8] { Array(text.utf8) }
private func pair(_ key: String, _ value: String?) -> Pair { Pair(key: bytes(key), value: value.map(bytes)) }
/// The checkpoint of epoch `epoch` at offset `offset` of partition t/0.
private func progress(_ epoch: UInt64, offset: Int64? = nil, form: UInt64 = 7) -> SinkProgress {
    SinkProgress(epoch: epoch, form: form, offsets: [TopicPartition(topic: "t", partition: 0): offset ?? Int64(epoch) * 10])
}

private let marker = "eddy:s:epoch"

/// A pass run against a real redis-server through a real `RedisKeyRepairer`, as the sink's thread runs it.
private struct Harness {
    let server: RedisTestServer
    let repairer: RedisKeyRepairer

    init() throws {
        server = try RedisTestServer()
        try server.start(persistent: false)
        repairer = RedisKeyRepairer(
            connection: try server.connect(), logger: Logger(label: "eddy.test.repair"))
    }

    func step(_ pass: inout SinkRepairPass, maxKeys: Int = 10, repair: Bool = true) throws -> SinkRepairPass.Step {
        try pass.step(maxKeys: maxKeys, repair: repair) { chunk, repair, markerMatches in
            try repairer.compare(markerKey: marker, pairs: chunk, repair: repair, markerMatches: markerMatches)
        }
    }
}

@Suite struct SinkRepairPassTests {
    @Test func aPassComparesTheWholeViewInChunksAndRepairsWhatDiffers() throws {
        let harness = try Harness()
        let view = SinkPairBatch((0..<25).map { pair("key\($0)", "\($0)") })
        try harness.server.command("SET", marker, progress(3).markerText)
        for pair in view { try harness.server.command("SET", String(decoding: pair.key, as: UTF8.self), String(decoding: pair.value!, as: UTF8.self)) }
        // Someone else overwrites one key of the first chunk and deletes one of the last.
        try harness.server.command("SET", "key4", "999")
        try harness.server.command("DEL", "key22")

        var pass = SinkRepairPass(progress: progress(3), pairs: view)
        #expect(pass.keyCount == 25)
        var steps: [SinkRepairPass.Step] = []
        while !pass.isFinished { steps.append(try harness.step(&pass)) }
        #expect(steps == [
            .compared(keys: 10, differing: [.init(key: bytes("key4"), difference: .different)], repaired: true),
            .compared(keys: 10, differing: [], repaired: false),
            .compared(keys: 5, differing: [.init(key: bytes("key22"), difference: .missing)], repaired: true),
        ])
        #expect(try harness.step(&pass) == .finished)
        #expect(try harness.server.get("key4") == "4")
        #expect(try harness.server.get("key22") == "22")
        #expect(try harness.server.get(marker) == progress(3).markerText)
    }

    @Test func epochsCommittedDuringThePassAreFoldedInSoTheirValuesAreNotUndone() throws {
        let harness = try Harness()
        try harness.server.command("MSET", marker, progress(1).markerText, "a", "1", "b", "1", "c", "1")
        var pass = SinkRepairPass(progress: progress(1), pairs: [pair("a", "1"), pair("b", "1"), pair("c", "1")])
        #expect(try harness.step(&pass, maxKeys: 1) == .compared(keys: 1, differing: [], repaired: false))

        // Epoch 2 changes b and deletes c; the sink writes it.
        try harness.server.command("MSET", marker, progress(2).markerText, "b", "2")
        try harness.server.command("DEL", "c")
        // Until the pass knows of epoch 2, Redis' marker does not stand for its values: nothing is compared.
        #expect(try harness.step(&pass, maxKeys: 1) == .markerMismatch(marker: bytes(progress(2).markerText)))
        #expect(pass.position == 1)
        pass.advance(to: progress(2), pairs: [pair("b", "2"), pair("c", nil), pair("new", "2")])
        // An older epoch arriving late changes nothing.
        pass.advance(to: progress(1), pairs: [pair("b", "1")])
        #expect(pass.progress == progress(2))

        #expect(try harness.step(&pass) == .compared(keys: 2, differing: [], repaired: false))
        #expect(try harness.server.get("b") == "2")
        #expect(try harness.server.get("c") == nil)
        #expect(pass.isFinished)
    }

    @Test func aChunkWhoseMarkerMovedIsComparedAgain() throws {
        let harness = try Harness()
        let writer = try harness.server.connect()
        try harness.server.command("MSET", marker, progress(1).markerText, "a", "overwritten")
        var pass = SinkRepairPass(progress: progress(1), pairs: [pair("a", "1")])
        let chunk = try #require(pass.nextChunk(maxKeys: 10))
        let moved = try harness.repairer.compare(markerKey: marker, pairs: chunk.pairs, repair: true) { current in
            _ = try? writer.command("SET", marker, progress(1).markerText)  // an epoch write touches the marker, even to the same value
            return chunk.progress.isHeld(byMarker: current)
        }
        #expect(pass.record(moved, of: chunk) == .markerMoved)
        #expect(pass.position == 0)
        #expect(try harness.server.get("a") == "overwritten")
        #expect(try harness.step(&pass) == .compared(keys: 1, differing: [.init(key: bytes("a"), difference: .different)], repaired: true))
        #expect(try harness.server.get("a") == "1")
    }

    @Test func aReadOnlyPassReportsWithoutWriting() throws {
        let harness = try Harness()
        try harness.server.command("MSET", marker, progress(1).markerText, "a", "x", "gone", "still here")
        var pass = SinkRepairPass(progress: progress(1), pairs: [pair("a", "1"), pair("b", "1"), pair("gone", nil)])
        #expect(try harness.step(&pass, repair: false) == .compared(keys: 3, differing: [
            .init(key: bytes("a"), difference: .different),
            .init(key: bytes("b"), difference: .missing),
            .init(key: bytes("gone"), difference: .unexpected),
        ], repaired: false))
        #expect(try harness.server.get("a") == "x")
        #expect(try harness.server.get("gone") == "still here")
    }

    @Test func theMarkerMustHoldExactlyTheCheckpointInTheSameForm() {
        let checkpoint = SinkProgress(
            epoch: 4, form: 7, offsets: [TopicPartition(topic: "t", partition: 0): 10, TopicPartition(topic: "t", partition: 1): 5])
        #expect(checkpoint.isHeld(byMarker: bytes(checkpoint.markerText)))
        // The epoch number is informational: another daemon's epoch at the same offsets holds the same values.
        var renumbered = checkpoint
        renumbered.epoch = 9
        #expect(checkpoint.isHeld(byMarker: bytes(renumbered.markerText)))
        var ahead = checkpoint
        ahead.offsets[TopicPartition(topic: "t", partition: 1)] = 6
        #expect(!checkpoint.isHeld(byMarker: bytes(ahead.markerText)))
        var behind = checkpoint
        behind.offsets[TopicPartition(topic: "t", partition: 0)] = nil
        #expect(!checkpoint.isHeld(byMarker: bytes(behind.markerText)))
        var otherForm = checkpoint
        otherForm.form = 8
        #expect(!checkpoint.isHeld(byMarker: bytes(otherForm.markerText)))
        #expect(!checkpoint.isHeld(byMarker: nil))
        #expect(!checkpoint.isHeld(byMarker: bytes("4")))
        #expect(!checkpoint.isHeld(byMarker: bytes("not a marker")))
    }
}
