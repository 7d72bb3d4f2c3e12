import Foundation
import Testing

@testable import EddyState

/// `data.mdb` is checked against its meta pages before LMDB maps it: a file cut short is a clear
/// `corrupt_state` error (not SIGBUS), a sound file opens.
@Suite struct LMDBDataFileTests {
    /// A real store: the format version, a view of a few thousand entries, offsets and an epoch.
    private func makeStore(_ path: String, entries: Int = 5000) throws {
        let store = try CheckpointStore.open(directory: path)
        let view = try #require(store.validatePipeline(fingerprints: ["v": "def"]).views["v"])
        try store.commit(epoch: 1, offsets: [(TopicPartition(topic: "t", partition: 0), Int64(entries))]) { writer in
            for index in 0..<entries {
                try writer.put(view: view, key: bytes("key-\(index)"), value: [UInt8](repeating: UInt8(index % 251), count: 40))
            }
        }
    }

    private func newestMeta(_ path: String) throws -> (meta: LMDBDataFile.Meta, size: Int) {
        let descriptor = open(path + "/data.mdb", O_RDONLY)
        try #require(descriptor >= 0)
        defer { close(descriptor) }
        var info = stat()
        try #require(fstat(descriptor, &info) == 0)
        let meta = try #require(LMDBDataFile.newestMeta(.init(descriptor: descriptor, size: Int(info.st_size))))
        return (meta, Int(info.st_size))
    }

    /// The offsets read from the meta pages are the ones the linked liblmdb writes: page size, last page and
    /// transaction id agree with what LMDB itself reports, over commits that alternate the two meta pages.
    @Test func theMetaPageLayoutMatchesTheLinkedLMDB() throws {
        let directory = try TemporaryDirectory()
        defer { directory.remove() }
        let environment = try LMDBEnvironment.make(
            directory: directory.path, mapSize: 64 << 20, maximumDatabases: 4, readOnly: false, releasedAfterClose: nil,
            logger: .init(label: "test"))
        for round in 1...3 {
            try environment.withWriteTransaction { transaction in
                let database = try #require(try transaction.openDatabase(named: "d", create: true))
                for index in 0..<(round * 700) {
                    try transaction.put(database, key: "k\(round)-\(index)", value: [UInt8](repeating: 7, count: 100))
                }
            }
            let (meta, size) = try newestMeta(directory.path)
            let usage = environment.usage
            #expect(meta.pageSize == usage.pageSize)
            #expect(meta.lastPage + 1 == UInt64(usage.usedPages))
            #expect(meta.transactionID == UInt64(environment.lastTransactionID))
            #expect(meta.freeRoot != LMDBDataFile.invalidPage || round == 1)
            #expect(size >= usage.usedPages * usage.pageSize)
        }
    }

    @Test(arguments: ["empty", "one page", "half", "last page missing"])
    func aDataFileCutShortIsAClearErrorForWritersAndReaders(_ cut: String) throws {
        let directory = try TemporaryDirectory()
        defer { directory.remove() }
        try makeStore(directory.path)
        let (meta, size) = try newestMeta(directory.path)
        // Every page up to the last is in the file, so cutting off even the last one loses data.
        try #require(size == Int(meta.lastPage + 1) * meta.pageSize && size >= 16 * meta.pageSize)
        let newSize = switch cut {
        case "empty": 0
        case "one page": meta.pageSize
        case "half": size / 2
        default: size - meta.pageSize
        }
        let file = directory.appending("data.mdb")
        try #require(truncate(file, off_t(newSize)) == 0)
        for readOnly in [true, false] {
            let error = try #require(throws: StateError.self) {
                try CheckpointStore.open(directory: directory.path, options: .init(readOnly: readOnly))
            }
            #expect(error.code == .corruptState, "\(error)")
            #expect(error.description.contains("corrupt_state"))
            #expect(error.reason.contains("the state file \(file) is damaged"), "\(error)")
            #expect(error.reason.contains("restore \(directory.path) from a backup, or move it away"), "\(error)")
            if newSize >= 2 * meta.pageSize {
                let needed = "pages 0...\(meta.lastPage) of \(meta.pageSize) bytes (\(size) bytes): the file was cut short"
                #expect(error.reason.contains("it is \(newSize) bytes, but its last commit") && error.reason.contains(needed), "\(error)")
            }
            // Refused before LMDB touched it: an empty file is not made into a new store.
            #expect((try FileManager.default.attributesOfItem(atPath: file)[.size] as? Int) == newSize)
        }
    }

    /// LMDB never writes pages a transaction allocated and freed again, so a sound file may end before its
    /// last page number; those pages are listed as free, and the file opens. With 60,000 entries the list of
    /// pages freed by one commit is longer than a page (LMDB's overflow pages).
    @Test(arguments: [5000, 60000])
    func pagesFreedBeforeTheyWereWrittenMayBeMissing(entries: Int) throws {
        let directory = try TemporaryDirectory()
        defer { directory.remove() }
        try makeStore(directory.path, entries: entries)
        do {
            let store = try CheckpointStore.open(directory: directory.path)
            let view = try store.view(named: "v")
            // Pages freed by this commit become reusable by the next, which takes them and then grows the file.
            try store.commit(epoch: 2, offsets: []) { writer in
                for index in 0..<entries { try writer.put(view: view, key: bytes("key-\(index)"), value: bytes("\(index)")) }
            }
            // Values of several pages each, taken past the end of the file and given back in the same
            // transaction: LMDB returns them to its free list without writing them.
            try store.commit(epoch: 3, offsets: []) { writer in
                try writer.put(view: view, key: bytes("key-0"), value: bytes("reuses a free page first"))
                for index in 0..<50 { try writer.put(view: view, key: bytes("large-\(index)"), value: [UInt8](repeating: 1, count: 10_000)) }
                for index in 0..<50 { try writer.delete(view: view, key: bytes("large-\(index)")) }
            }
        }
        let (meta, size) = try newestMeta(directory.path)
        try #require(size < Int(meta.lastPage + 1) * meta.pageSize, "the file holds every page up to the last: \(size) bytes, last page \(meta.lastPage)")
        for readOnly in [true, false] {
            let store = try CheckpointStore.open(directory: directory.path, options: .init(readOnly: readOnly))
            #expect(try store.loadCheckpoint().epoch == 3)
            var count = 0
            try store.forEachEntry(view: "v") { _, _ in count += 1 }
            #expect(count == entries)
        }
    }
}
