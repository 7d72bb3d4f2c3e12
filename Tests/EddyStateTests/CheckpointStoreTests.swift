import Foundation
import Testing

@testable import EddyState

private let clicks = TopicPartition(topic: "test", partition: 0)
private let scrolls = TopicPartition(topic: "test", partition: 1)

/// Reads a whole view into a dictionary (string keys and values).
private func contents(of store: CheckpointStore, view: String) throws -> [String: String] {
    var result: [String: String] = [:]
    try store.forEachEntry(view: view) { key, value in result[string(key)] = string(value) }
    return result
}

@Suite struct CheckpointStoreTests {
    @Test func epochOffsetsAndEntriesSurviveCloseAndReopen() throws {
        let directory = try TemporaryDirectory()
        defer { directory.remove() }
        let stateDirectory = directory.appending("nested/state")  // created by open
        do {
            let store = try CheckpointStore.open(directory: stateDirectory)
            #expect(try store.loadCheckpoint() == StoredCheckpoint())
            let views = try store.validatePipeline(fingerprints: ["counts": "SELECT 1", "totals": "SELECT 2"]).views
            let counts = try #require(views["counts"])
            let totals = try #require(views["totals"])
            try store.commit(epoch: 1, offsets: [(clicks, 10), (scrolls, 20)]) { writer in
                try writer.put(view: counts, key: bytes("click"), value: bytes("3"))
                try writer.put(view: counts, key: bytes("scroll"), value: bytes("4"))
                try writer.put(view: totals, key: bytes("all"), value: bytes("7"))
            }
            let summary = try store.commit(epoch: 2, offsets: [(clicks, 12)]) { writer in
                try writer.put(view: counts, key: bytes("click"), value: bytes("5"))
                try writer.delete(view: counts, key: bytes("scroll"))
                try writer.delete(view: counts, key: bytes("never-stored"))
            }
            #expect(summary.putCount == 1 && summary.deleteCount == 2 && summary.mapGrowths == 0)
        }
        let reopened = try CheckpointStore.open(directory: stateDirectory)
        let checkpoint = try reopened.loadCheckpoint()
        #expect(checkpoint.epoch == 2)
        #expect(checkpoint.offsets == [clicks: 12, scrolls: 20])  // an unlisted partition keeps its offset
        #expect(checkpoint.viewFingerprints == ["counts": "SELECT 1", "totals": "SELECT 2"])
        #expect(try contents(of: reopened, view: "counts") == ["click": "5"])
        #expect(try contents(of: reopened, view: "totals") == ["all": "7"])
        let statistics = try reopened.statistics()
        #expect(statistics.entriesPerView == ["counts": 1, "totals": 1])
        #expect(statistics.epoch == 2 && statistics.usedBytes > 0 && statistics.mapSize >= 64 << 20)
    }

    @Test func throwingWritesLeaveThePreviousCheckpointUntouched() throws {
        struct EncodingFailed: Error {}
        let directory = try TemporaryDirectory()
        defer { directory.remove() }
        let store = try CheckpointStore.open(directory: directory.path)
        let counts = try #require(store.validatePipeline(fingerprints: ["counts": "v1"]).views["counts"])
        try store.commit(epoch: 1, offsets: [(clicks, 10)]) { writer in
            try writer.put(view: counts, key: bytes("click"), value: bytes("1"))
        }
        #expect(throws: EncodingFailed.self) {
            try store.commit(epoch: 2, offsets: [(clicks, 99)]) { writer in
                try writer.put(view: counts, key: bytes("click"), value: bytes("2"))
                try writer.put(view: counts, key: bytes("submit"), value: bytes("1"))
                throw EncodingFailed()
            }
        }
        let checkpoint = try store.loadCheckpoint()
        #expect(checkpoint.epoch == 1 && checkpoint.offsets == [clicks: 10])
        #expect(try contents(of: store, view: "counts") == ["click": "1"])
        // The aborted epoch can be committed afterwards.
        try store.commit(epoch: 2, offsets: [(clicks, 11)]) { _ in }
        #expect(try store.loadCheckpoint().epoch == 2)
    }

    @Test func epochsMustIncrease() throws {
        let directory = try TemporaryDirectory()
        defer { directory.remove() }
        let store = try CheckpointStore.open(directory: directory.path)
        try store.commit(epoch: 5, offsets: [(clicks, 1)]) { _ in }
        let error = try #require(throws: StateError.self) {
            try store.commit(epoch: 5, offsets: [(clicks, 2)]) { _ in }
        }
        #expect(error.code == .invalidArgument)
        #expect(try store.loadCheckpoint().offsets == [clicks: 1])
    }

    @Test func deletedEntriesAreGoneAfterReopen() throws {
        let directory = try TemporaryDirectory()
        defer { directory.remove() }
        do {
            let store = try CheckpointStore.open(directory: directory.path)
            let view = try #require(store.validatePipeline(fingerprints: ["v": "def"]).views["v"])
            try store.commit(epoch: 1, offsets: []) { writer in
                for index in 0..<10 { try writer.put(view: view, key: bytes("k\(index)"), value: bytes("\(index)")) }
            }
            try store.commit(epoch: 2, offsets: []) { writer in
                for index in stride(from: 0, to: 10, by: 2) { try writer.delete(view: view, key: bytes("k\(index)")) }
            }
        }
        let store = try CheckpointStore.open(directory: directory.path)
        #expect(try contents(of: store, view: "v") == ["k1": "1", "k3": "3", "k5": "5", "k7": "7", "k9": "9"])
        #expect(try store.statistics().entriesPerView == ["v": 5])
    }

    @Test func manyViewsKeepTheirOwnEntries() throws {
        let directory = try TemporaryDirectory()
        defer { directory.remove() }
        let names = (0..<60).map { "view_\($0)" }
        do {
            let store = try CheckpointStore.open(directory: directory.path)
            let fingerprints = Dictionary(uniqueKeysWithValues: names.map { ($0, "SELECT \($0)") })
            let views = try store.validatePipeline(fingerprints: fingerprints).views
            #expect(views.count == names.count)
            try store.commit(epoch: 1, offsets: []) { writer in
                for (index, name) in names.enumerated() {
                    let view = try #require(views[name])
                    for entry in 0...index { try writer.put(view: view, key: bytes("\(entry)"), value: bytes(name)) }
                }
            }
        }
        let store = try CheckpointStore.open(directory: directory.path, options: .init(readOnly: true))
        let statistics = try store.statistics()
        for (index, name) in names.enumerated() {
            #expect(statistics.entriesPerView[name] == index + 1)
            #expect(Set(try contents(of: store, view: name).values) == [name])
        }
        #expect(throws: StateError.self) { try store.view(named: "view_60") }
    }

    /// A write transaction keeps the last put's cursor at hand: puts that alternate between views, in one commit
    /// and in the next, still land each in its own view.
    @Test func putsAlternatingBetweenViewsLandInTheirOwnView() throws {
        let directory = try TemporaryDirectory()
        defer { directory.remove() }
        let store = try CheckpointStore.open(directory: directory.path)
        let views = try store.validatePipeline(fingerprints: ["a": "SELECT a", "b": "SELECT b"]).views
        let a = try #require(views["a"])
        let b = try #require(views["b"])
        for epoch in UInt64(1)...2 {
            try store.commit(epoch: epoch, offsets: []) { writer in
                for index in 0..<50 {
                    try writer.put(view: index % 3 == 0 ? b : a, key: bytes("\(epoch)-\(index)"), value: bytes(index % 3 == 0 ? "b" : "a"))
                }
            }
        }
        let inA = try contents(of: store, view: "a")
        let inB = try contents(of: store, view: "b")
        #expect(inA.count == 2 * 33 && Set(inA.values) == ["a"])
        #expect(inB.count == 2 * 17 && Set(inB.values) == ["b"])
        #expect(inB["2-48"] == "b" && inA["2-49"] == "a")
    }

    @Test func theMapGrowsWhenACommitDoesNotFit() throws {
        let directory = try TemporaryDirectory()
        defer { directory.remove() }
        let initialMapSize = 1 << 20
        let value = [UInt8](repeating: 0xAB, count: 1000)
        let entryCount = 4000  // about 4 MB of values: four times the initial map
        do {
            let store = try CheckpointStore.open(
                directory: directory.path, options: .init(initialMapSize: initialMapSize))
            let view = try #require(store.validatePipeline(fingerprints: ["v": "def"]).views["v"])
            var attempts = 0
            let summary = try store.commit(epoch: 1, offsets: [(clicks, 4000)]) { writer in
                attempts += 1
                for index in 0..<entryCount { try writer.put(view: view, key: bytes("key-\(index)"), value: value) }
            }
            #expect(summary.mapGrowths >= 2 && attempts == summary.mapGrowths + 1)
            #expect(summary.putCount == entryCount)
            #expect(try store.statistics().mapSize >= 4 * initialMapSize)
        }
        let store = try CheckpointStore.open(directory: directory.path, options: .init(initialMapSize: initialMapSize))
        #expect(try store.loadCheckpoint().offsets == [clicks: 4000])
        var seen = 0
        try store.forEachEntry(view: "v") { _, stored in
            if stored.elementsEqual(value) { seen += 1 }
        }
        #expect(seen == entryCount)
    }

    @Test func pastTheMaximumMapSizeCommitFailsAndTheStateStaysUsable() throws {
        let directory = try TemporaryDirectory()
        defer { directory.remove() }
        let store = try CheckpointStore.open(
            directory: directory.path, options: .init(initialMapSize: 1 << 20, maximumMapSize: 2 << 20))
        let view = try #require(store.validatePipeline(fingerprints: ["v": "def"]).views["v"])
        try store.commit(epoch: 1, offsets: [(clicks, 1)]) { writer in
            try writer.put(view: view, key: bytes("kept"), value: bytes("1"))
        }
        let large = [UInt8](repeating: 7, count: 1000)
        let error = try #require(throws: StateError.self) {
            try store.commit(epoch: 2, offsets: [(clicks, 2)]) { writer in
                for index in 0..<4000 { try writer.put(view: view, key: bytes("big-\(index)"), value: large) }
            }
        }
        #expect(error.code == .mapFull && !error.isRetriable)
        #expect(error.reason.contains("maximum map size of 2 MiB") && error.reason.contains(directory.path))
        #expect(try store.loadCheckpoint().offsets == [clicks: 1])
        #expect(try contents(of: store, view: "v") == ["kept": "1"])
        #expect(try store.statistics().mapSize == 2 << 20)
        try store.commit(epoch: 2, offsets: [(clicks, 2)]) { writer in
            try writer.put(view: view, key: bytes("small"), value: bytes("2"))
        }
        #expect(try contents(of: store, view: "v") == ["kept": "1", "small": "2"])
    }

    @Test func aChangedViewDefinitionIsRefusedByName() throws {
        let directory = try TemporaryDirectory()
        defer { directory.remove() }
        do {
            let store = try CheckpointStore.open(directory: directory.path)
            let first = try store.validatePipeline(fingerprints: ["counts": "COUNT(*) BY event", "pages": "BY page"])
            #expect(first.addedViews == ["counts", "pages"] && first.droppedViews.isEmpty)
        }
        let store = try CheckpointStore.open(directory: directory.path)
        let error = try #require(throws: StateError.self) {
            try store.validatePipeline(fingerprints: ["counts": "COUNT(*) BY user", "pages": "BY page"])
        }
        #expect(error.code == .pipelineChanged)
        #expect(error.reason.contains("'counts'") && !error.reason.contains("'pages'"))
        #expect(error.reason.contains(directory.path) && error.reason.contains("--state-dir"))
        // New views start empty; views gone from the pipeline are reported and keep their state.
        let added = try store.validatePipeline(
            fingerprints: ["counts": "COUNT(*) BY event", "pages": "BY page", "users": "BY user"])
        #expect(added.addedViews == ["users"] && added.droppedViews.isEmpty)
        #expect(try contents(of: store, view: "users").isEmpty)
        let dropped = try store.validatePipeline(fingerprints: ["counts": "COUNT(*) BY event"])
        #expect(dropped.addedViews.isEmpty && dropped.droppedViews == ["pages", "users"])
        #expect(try store.loadCheckpoint().viewFingerprints.count == 3)
    }

    @Test func definitionsAreRecordedAndFollowThePipeline() throws {
        let directory = try TemporaryDirectory()
        defer { directory.remove() }
        let store = try CheckpointStore.open(directory: directory.path)
        try store.validatePipeline(fingerprints: ["counts": "f"], definitions: ["counts": "SELECT event, COUNT(*) ..."])
        #expect(try store.loadCheckpoint().viewDefinitions == ["counts": "SELECT event, COUNT(*) ..."])
        // A new presentation of the same state replaces the definition and keeps the fingerprint.
        try store.validatePipeline(fingerprints: ["counts": "f"], definitions: ["counts": "SELECT event AS kind, COUNT(*) ..."])
        let checkpoint = try store.loadCheckpoint()
        #expect(checkpoint.viewDefinitions == ["counts": "SELECT event AS kind, COUNT(*) ..."])
        #expect(checkpoint.viewFingerprints == ["counts": "f"])
    }

    @Test func theAcknowledgedEpochAndItsOffsetsNeverMoveBackwards() throws {
        let directory = try TemporaryDirectory()
        defer { directory.remove() }
        let partition = TopicPartition(topic: "test", partition: 3)
        do {
            let store = try CheckpointStore.open(directory: directory.path)
            for epoch in UInt64(1)...3 { try store.commit(epoch: epoch, offsets: []) { _ in } }
            #expect(try store.recordAcknowledged(sink: "redis_sink", epoch: 2, offsets: [partition: 20]) == 2)
            #expect(try store.recordAcknowledged(sink: "redis_sink", epoch: 1, offsets: [partition: 10]) == 2)
            #expect(try store.recordAcknowledged(sink: "other", epoch: 3, offsets: [:]) == 3)
            let error = try #require(throws: StateError.self) {
                try store.recordAcknowledged(sink: "redis_sink", epoch: 4, offsets: [partition: 40])
            }
            #expect(error.code == .invalidArgument)
        }
        let store = try CheckpointStore.open(directory: directory.path)
        let checkpoint = try store.loadCheckpoint()
        #expect(checkpoint.acknowledgedEpochs == ["redis_sink": 2, "other": 3])
        #expect(checkpoint.acknowledgedOffsets == ["redis_sink": [partition: 20], "other": [:]])
    }

    /// A Redis Cluster sink's per-slot record: only the slots a write touched change, an entry never moves
    /// backwards, it is recorded even at the acknowledged epoch (a whole view re-sent there), and a changed sink
    /// forgets it with its acknowledgement.
    @Test func thePerSlotRecordKeepsEachSlotsLastAcknowledgedWrite() throws {
        let directory = try TemporaryDirectory()
        defer { directory.remove() }
        let partition = TopicPartition(topic: "test", partition: 0)
        func at(_ epoch: UInt64) -> AcknowledgedProgress { AcknowledgedProgress(epoch: epoch, offsets: [partition: Int64(epoch) * 10]) }
        do {
            let store = try CheckpointStore.open(directory: directory.path)
            try store.recordSink("cluster:sink", fingerprint: "f")
            for epoch in UInt64(1)...4 { try store.commit(epoch: epoch, offsets: [(partition, Int64(epoch) * 10)]) { _ in } }
            try store.recordAcknowledged(sink: "cluster:sink", epoch: 1, offsets: at(1).offsets, slots: [7: at(1), 16_383: at(1)])
            try store.recordAcknowledged(sink: "cluster:sink", epoch: 3, offsets: at(3).offsets, slots: [7: at(3)])
            try store.recordAcknowledged(sink: "cluster:sink", epoch: 3, offsets: at(3).offsets, slots: [0: at(3), 7: at(2)])
            let error = try #require(throws: StateError.self) {
                try store.recordAcknowledged(sink: "cluster:sink", epoch: 3, offsets: at(3).offsets, slots: [1: at(5)])
            }
            #expect(error.code == .invalidArgument)
        }
        let store = try CheckpointStore.open(directory: directory.path)
        let checkpoint = try store.loadCheckpoint()
        #expect(checkpoint.acknowledgedEpochs["cluster:sink"] == 3)
        #expect(checkpoint.acknowledgedSlots == ["cluster:sink": [0: at(3), 7: at(3), 16_383: at(1)]])
        #expect(try store.recordSink("cluster:sink", fingerprint: "g") == true)
        #expect(try store.loadCheckpoint().acknowledgedSlots["cluster:sink"] == nil)
    }

    @Test func tombstonesStayUntilTheirSinkAcknowledgesTheirEpoch() throws {
        let directory = try TemporaryDirectory()
        defer { directory.remove() }
        let partition = TopicPartition(topic: "test", partition: 0)
        func tombstones(_ keys: String...) -> Tombstones {
            var tombstones = Tombstones()
            for key in keys { Array(key.utf8).withUnsafeBytes { tombstones.append($0) } }
            return tombstones
        }
        func held(_ store: CheckpointStore, _ sink: String) throws -> [String] {
            var keys: [String] = []
            try store.forEachTombstone(sink: sink) { keys.append(String(decoding: $0, as: UTF8.self)) }
            return keys
        }
        // Epochs past 255 too: the epoch is stored big-endian, so a sink's tombstones sort (and prune) by epoch.
        let epochs: [UInt64] = [1, 2, 256, 257]
        do {
            let store = try CheckpointStore.open(directory: directory.path)
            for (index, epoch) in epochs.enumerated() {
                try store.commit(epoch: epoch, offsets: [(partition, Int64(index))]) { writer in
                    let pruned = try writer.pruneTombstones(sink: "s")
                    #expect(pruned == 0)
                    try writer.putTombstones(tombstones("s\(epoch)a", "s\(epoch)b"), sink: "s", epoch: epoch)
                    // A sink whose name extends another's keeps its own.
                    try writer.putTombstones(tombstones("s1:\(epoch)"), sink: "s1", epoch: epoch)
                    try writer.putTombstones(Tombstones(), sink: "empty", epoch: epoch)
                }
            }
            #expect(try held(store, "s") == ["s1a", "s1b", "s2a", "s2b", "s256a", "s256b", "s257a", "s257b"])
            #expect(try held(store, "s1") == ["s1:1", "s1:2", "s1:256", "s1:257"])
            #expect(try held(store, "empty").isEmpty)
            try store.recordAcknowledged(sink: "s", epoch: 256, offsets: [partition: 2])
            // Acknowledging alone keeps them: they go with the next checkpoint's transaction.
            #expect(try held(store, "s").count == 8)
            try store.commit(epoch: 300, offsets: [(partition, 4)]) { writer in
                let pruned = try (writer.pruneTombstones(sink: "s"), writer.pruneTombstones(sink: "s1"))
                #expect(pruned == (3, 0))
            }
        }
        let store = try CheckpointStore.open(directory: directory.path)
        #expect(try held(store, "s") == ["s257a", "s257b"])
        #expect(try held(store, "s1").count == 4)
        // The checkpoint's own reading ignores them.
        #expect(try store.loadCheckpoint().epoch == 300)
    }

    @Test func aChangedSinkForgetsItsAcknowledgementInTheSameTransaction() throws {
        let directory = try TemporaryDirectory()
        defer { directory.remove() }
        let store = try CheckpointStore.open(directory: directory.path)
        let partition = TopicPartition(topic: "test", partition: 0)
        #expect(try store.recordSink("redis_sink", fingerprint: "template {event}") == false)
        try store.commit(epoch: 1, offsets: [(partition, 7)]) { _ in }
        try store.recordAcknowledged(sink: "redis_sink", epoch: 1, offsets: [partition: 7])
        #expect(try store.recordSink("redis_sink", fingerprint: "template {event}") == false)
        #expect(try store.loadCheckpoint().acknowledgedOffsets["redis_sink"] == [partition: 7])
        #expect(try store.recordSink("redis_sink", fingerprint: "json") == true)
        let checkpoint = try store.loadCheckpoint()
        #expect(checkpoint.acknowledgedEpochs["redis_sink"] == 0)
        #expect(checkpoint.acknowledgedOffsets["redis_sink"] == nil)
        #expect(checkpoint.sinkFingerprints["redis_sink"] == "json")
    }

    @Test func aRejectedKeyFailsTheCommitEvenIfTheClosureSwallowsTheError() throws {
        let directory = try TemporaryDirectory()
        defer { directory.remove() }
        let store = try CheckpointStore.open(directory: directory.path)
        let view = try #require(store.validatePipeline(fingerprints: ["v": "def"]).views["v"])
        try store.commit(epoch: 1, offsets: [(clicks, 1)]) { writer in
            try writer.put(view: view, key: bytes("k"), value: bytes("1"))
        }
        let error = try #require(throws: StateError.self) {
            try store.commit(epoch: 2, offsets: [(clicks, 2)]) { writer in
                try writer.put(view: view, key: bytes("k"), value: bytes("2"))
                _ = try? writer.put(view: view, key: [], value: bytes("empty keys are not allowed"))
                _ = try? writer.put(view: view, key: [UInt8](repeating: 1, count: 600), value: bytes("too long"))
            }
        }
        #expect(error.code == .invalidArgument)
        #expect(try store.loadCheckpoint().offsets == [clicks: 1])
        #expect(try contents(of: store, view: "v") == ["k": "1"])
    }

    @Test func theMapGrowsEvenWhenTheClosureWrapsTheMapFullError() throws {
        struct Wrapped: Error { var underlying: any Error }
        let directory = try TemporaryDirectory()
        defer { directory.remove() }
        let store = try CheckpointStore.open(directory: directory.path, options: .init(initialMapSize: 1 << 20))
        let view = try #require(store.validatePipeline(fingerprints: ["v": "def"]).views["v"])
        let value = [UInt8](repeating: 3, count: 1000)
        let summary = try store.commit(epoch: 1, offsets: []) { writer in
            do {
                for index in 0..<2000 { try writer.put(view: view, key: bytes("k\(index)"), value: value) }
            } catch {
                throw Wrapped(underlying: error)
            }
        }
        #expect(summary.mapGrowths >= 1)
        #expect(try store.statistics().entriesPerView == ["v": 2000])
    }
}
