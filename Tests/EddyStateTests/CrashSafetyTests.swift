import Foundation
import Testing

@testable import EddyState
import EddyTestSupport

@Suite struct CrashSafetyTests {
    /// A process killed with SIGKILL in the middle of a commit leaves the previous checkpoint, and no lock.
    @Test func aWriterKilledMidCommitLeavesThePreviousCheckpoint() async throws {
        let directory = try TemporaryDirectory()
        defer { directory.remove() }
        let path = directory.path
        await #expect(processExitsWith: .signal(SIGKILL)) { [path = path as String] in
            let store = try CheckpointStore.open(directory: path)
            let view = try store.validatePipeline(fingerprints: ["v": "def"]).views["v"]!
            let partition = TopicPartition(topic: "t", partition: 0)
            try store.commit(epoch: 1, offsets: [(partition, 100)]) { writer in
                try writer.put(view: view, key: Array("kept".utf8), value: Array("1".utf8))
            }
            try store.commit(epoch: 2, offsets: [(partition, 200)]) { writer in
                for index in 0..<1000 {
                    try writer.put(view: view, key: Array("lost-\(index)".utf8), value: Array("2".utf8))
                }
                kill(getpid(), SIGKILL)
            }
        }
        let store = try CheckpointStore.open(directory: path)
        let checkpoint = try store.loadCheckpoint()
        #expect(checkpoint.epoch == 1 && checkpoint.offsets == [TopicPartition(topic: "t", partition: 0): 100])
        var keys: [String] = []
        try store.forEachEntry(view: "v") { key, _ in keys.append(string(key)) }
        #expect(keys == ["kept"])
        try store.commit(epoch: 2, offsets: []) { _ in }
    }

    /// Another process opening the store read-only while this one writes sees the last committed checkpoint.
    @Test func aReadOnlyProcessSeesTheCommittedCheckpoint() async throws {
        let directory = try TemporaryDirectory()
        defer { directory.remove() }
        let path = directory.path
        let writer = try CheckpointStore.open(directory: path)
        let view = try #require(writer.validatePipeline(fingerprints: ["v": "def"]).views["v"])
        try writer.commit(epoch: 3, offsets: [(TopicPartition(topic: "t", partition: 1), 42)]) { transaction in
            try transaction.put(view: view, key: bytes("k"), value: bytes("v"))
        }
        await #expect(processExitsWith: .success) { [path = path as String] in
            let reader = try CheckpointStore.open(directory: path, options: .init(readOnly: true))
            let checkpoint = try reader.loadCheckpoint()
            var entries = 0
            try reader.forEachEntry(view: "v") { _, _ in entries += 1 }
            let locked = (try? CheckpointStore.open(directory: path)) == nil
            exit(checkpoint.epoch == 3 && checkpoint.offsets.count == 1 && entries == 1 && locked ? 0 : 1)
        }
        withExtendedLifetime(writer) {}
    }

    /// A reader in another process keeps reading after the writer grew the map past the reader's map size
    /// (LMDB reports `MDB_MAP_RESIZED`; the reader adopts the new size).
    @Test func aReadOnlyProcessFollowsTheWriterAcrossMapGrowth() async throws {
        let directory = try TemporaryDirectory()
        defer { directory.remove() }
        let path = directory.path
        let writer = try CheckpointStore.open(directory: path, options: .init(initialMapSize: 1 << 20))
        let view = try #require(writer.validatePipeline(fingerprints: ["v": "def"]).views["v"])
        try writer.commit(epoch: 1, offsets: []) { transaction in
            try transaction.put(view: view, key: bytes("first"), value: bytes("1"))
        }
        let ready = directory.appending("reader-ready")
        // The writer waits for the reader process on its own thread: the exit test below may hold a pool thread.
        async let growths = onDedicatedThread { () throws -> Int in
            guard eventually({ FileManager.default.fileExists(atPath: ready) }) else { return -1 }
            let large = [UInt8](repeating: 1, count: 1000)
            return try writer.commit(epoch: 2, offsets: []) { transaction in
                for index in 0..<4000 { try transaction.put(view: view, key: bytes("big-\(index)"), value: large) }
            }.mapGrowths
        }
        await #expect(processExitsWith: .success) { [path = path as String, ready = ready as String] in
            let reader = try CheckpointStore.open(
                directory: path, options: .init(initialMapSize: 1 << 20, readOnly: true))
            guard try reader.loadCheckpoint().epoch == 1 else { exit(2) }
            _ = FileManager.default.createFile(atPath: ready, contents: nil)
            let deadline = ContinuousClock.now + .seconds(30)
            while try reader.loadCheckpoint().epoch < 2 {
                guard ContinuousClock.now < deadline else { exit(3) }
                usleep(1000)
            }
            var entries = 0
            try reader.forEachEntry(view: "v") { _, _ in entries += 1 }
            exit(entries == 4001 ? 0 : 4)
        }
        #expect(try await growths >= 2)
    }

    /// A write error during commit (here the file size limit standing in for a full disk) is a clear error and
    /// leaves the previous checkpoint readable, in the same process and after a restart.
    @Test func aFailedWriteLeavesThePreviousCheckpoint() async throws {
        let directory = try TemporaryDirectory()
        defer { directory.remove() }
        let path = directory.path
        await #expect(processExitsWith: .success) { [path = path as String] in
            let store = try CheckpointStore.open(directory: path)
            let view = try store.validatePipeline(fingerprints: ["v": "def"]).views["v"]!
            try store.commit(epoch: 1, offsets: [(TopicPartition(topic: "t", partition: 0), 1)]) { writer in
                try writer.put(view: view, key: Array("kept".utf8), value: Array("1".utf8))
            }
            var info = stat()
            guard stat(path + "/data.mdb", &info) == 0 else { exit(2) }
            signal(SIGXFSZ, SIG_IGN)
            var limit = rlimit(rlim_cur: rlim_t(info.st_size) + 64 * 1024, rlim_max: rlim_t.max)
            guard setrlimit(__rlimit_resource_t(RLIMIT_FSIZE.rawValue), &limit) == 0 else { exit(3) }
            do {
                try store.commit(epoch: 2, offsets: [(TopicPartition(topic: "t", partition: 0), 2)]) { writer in
                    for index in 0..<2000 {
                        let value = [UInt8](repeating: 0, count: 500)
                        try writer.put(view: view, key: Array("lost-\(index)".utf8), value: value)
                    }
                }
                exit(4)
            } catch let error as StateError {
                // A write cut short by the limit is EIO in LMDB, a write refused outright EFBIG: either way the
                // message names the limit and the directory.
                guard error.code == .diskFull, error.reason.contains("file size limit"), error.reason.contains(path) else { exit(5) }
            }
            var keys = 0
            try store.forEachEntry(view: "v") { _, _ in keys += 1 }
            exit(try store.loadCheckpoint().epoch == 1 && keys == 1 ? 0 : 6)
        }
        let store = try CheckpointStore.open(directory: path)
        #expect(try store.loadCheckpoint().epoch == 1)
        var keys: [String] = []
        try store.forEachEntry(view: "v") { key, _ in keys.append(string(key)) }
        #expect(keys == ["kept"])
    }
}
