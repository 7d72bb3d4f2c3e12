import Foundation
import Testing

@testable import EddyState

@Suite struct ReadOnlyStoreTests {
    @Test func aReaderSeesTheLastCommittedCheckpointNotTheOneBeingWritten() throws {
        let directory = try TemporaryDirectory()
        defer { directory.remove() }
        let writer = try CheckpointStore.open(directory: directory.path)
        let view = try #require(writer.validatePipeline(fingerprints: ["v": "def"]).views["v"])
        try writer.commit(epoch: 1, offsets: [(TopicPartition(topic: "t", partition: 0), 5)]) { transaction in
            try transaction.put(view: view, key: bytes("a"), value: bytes("1"))
        }
        // Same process: the reader shares the writer's environment (LMDB must not be opened twice).
        let reader = try CheckpointStore.open(directory: directory.path, options: .init(readOnly: true))
        try writer.commit(epoch: 2, offsets: [(TopicPartition(topic: "t", partition: 0), 9)]) { transaction in
            try transaction.put(view: view, key: bytes("a"), value: bytes("2"))
            try transaction.put(view: view, key: bytes("b"), value: bytes("1"))
            let during = try reader.loadCheckpoint()
            #expect(during.epoch == 1 && during.offsets.values.first == 5)
            var entries: [String: String] = [:]
            try reader.forEachEntry(view: "v") { key, value in entries[string(key)] = string(value) }
            #expect(entries == ["a": "1"])
        }
        #expect(try reader.loadCheckpoint().epoch == 2)
        var entries: [String: String] = [:]
        try reader.forEachEntry(view: "v") { key, value in entries[string(key)] = string(value) }
        #expect(entries == ["a": "2", "b": "1"])
    }

    @Test func anotherProcessReadsWhileAWriteIsInProgress() throws {
        let directory = try TemporaryDirectory()
        defer { directory.remove() }
        let writer = try CheckpointStore.open(directory: directory.path)
        let view = try #require(writer.validatePipeline(fingerprints: ["v": "def"]).views["v"])
        try writer.commit(epoch: 1, offsets: []) { transaction in
            try transaction.put(view: view, key: bytes("committed"), value: bytes("1"))
        }
        // mdb_dump (lmdb-utils) is an independent reader process on the same environment.
        func dumpView() throws -> String {
            let dump = try run("/usr/bin/mdb_dump", ["-p", "-s", "view:v", directory.path])
            #expect(dump.status == 0)
            return dump.output
        }
        try writer.commit(epoch: 2, offsets: []) { transaction in
            try transaction.put(view: view, key: bytes("uncommitted"), value: bytes("2"))
            let during = try dumpView()
            #expect(during.contains("committed") && !during.contains("uncommitted"))
        }
        #expect(try dumpView().contains("uncommitted"))
    }

    @Test func readOnlyOpenNeedsAnExistingCheckpointAndRefusesWrites() throws {
        let directory = try TemporaryDirectory()
        defer { directory.remove() }
        let missing = try #require(throws: StateError.self) {
            try CheckpointStore.open(directory: directory.appending("absent"), options: .init(readOnly: true))
        }
        #expect(missing.code == .noCheckpoint && missing.reason.contains("absent"))
        let empty = try #require(throws: StateError.self) {
            try CheckpointStore.open(directory: directory.path, options: .init(readOnly: true))
        }
        #expect(empty.code == .noCheckpoint)
        do { _ = try CheckpointStore.open(directory: directory.path) }
        let reader = try CheckpointStore.open(directory: directory.path, options: .init(readOnly: true))
        #expect(try reader.loadCheckpoint().epoch == 0)
        let error = try #require(throws: StateError.self) { try reader.commit(epoch: 1, offsets: []) { _ in } }
        #expect(error.code == .readOnly)
        #expect(FileManager.default.fileExists(atPath: directory.appending("absent")) == false)
    }

    @Test func aReadOnlyStoreChecksThePipelineWithoutRecordingIt() throws {
        let directory = try TemporaryDirectory()
        defer { directory.remove() }
        do {
            let writer = try CheckpointStore.open(directory: directory.path)
            try writer.validatePipeline(fingerprints: ["v": "one"])
        }
        let reader = try CheckpointStore.open(directory: directory.path, options: .init(readOnly: true))
        let error = try #require(throws: StateError.self) { try reader.validatePipeline(fingerprints: ["v": "two"]) }
        #expect(error.code == .pipelineChanged && error.reason.contains("'v'"))
        let validation = try reader.validatePipeline(fingerprints: ["v": "one", "new": "x"])
        #expect(validation.addedViews == ["new"] && Set(validation.views.keys) == ["v"])
        #expect(try reader.loadCheckpoint().viewFingerprints == ["v": "one"])
    }
}
