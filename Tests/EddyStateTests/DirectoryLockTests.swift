import Foundation
import Testing

@testable import EddyState

@Suite struct DirectoryLockTests {
    @Test func aSecondWritableOpenIsRefusedUntilTheFirstIsReleased() throws {
        let directory = try TemporaryDirectory()
        defer { directory.remove() }
        var first: CheckpointStore? = try CheckpointStore.open(directory: directory.path)
        try first?.commit(epoch: 1, offsets: []) { _ in }
        let error = try #require(throws: StateError.self) { try CheckpointStore.open(directory: directory.path) }
        #expect(error.code == .directoryLocked && error.isRetriable)
        #expect(error.reason.contains(directory.path) && error.reason.contains("pid \(getpid())"))
        first = nil  // closing releases the lock
        let second = try CheckpointStore.open(directory: directory.path)
        #expect(try second.loadCheckpoint().epoch == 1)
    }

    @Test func theLockFileNamesTheHoldingProcess() throws {
        let directory = try TemporaryDirectory()
        defer { directory.remove() }
        let store = try CheckpointStore.open(directory: directory.path)
        let contents = try String(contentsOfFile: DirectoryLock.lockFilePath(in: directory.path), encoding: .utf8)
        #expect(contents == "\(getpid())\n")
        withExtendedLifetime(store) {}
    }

    @Test func aFileInPlaceOfTheDirectoryIsAClearError() throws {
        let directory = try TemporaryDirectory()
        defer { directory.remove() }
        let path = directory.appending("file")
        #expect(FileManager.default.createFile(atPath: path, contents: Data("x".utf8)))
        let error = try #require(throws: StateError.self) { try CheckpointStore.open(directory: path) }
        #expect(error.code == .directoryUnavailable && error.reason.contains(path))
    }

    @Test func aDirectoryOpenReadOnlyInThisProcessIsNotReopenedForWriting() throws {
        let directory = try TemporaryDirectory()
        defer { directory.remove() }
        do { _ = try CheckpointStore.open(directory: directory.path) }
        var reader: CheckpointStore? = try CheckpointStore.open(
            directory: directory.path, options: .init(readOnly: true))
        let error = try #require(throws: StateError.self) { try CheckpointStore.open(directory: directory.path) }
        #expect(error.code == .directoryLocked && error.reason.contains("read-only in this process"))
        #expect(try reader?.loadCheckpoint().epoch == 0)
        reader = nil
        let writer = try CheckpointStore.open(directory: directory.path)
        try writer.commit(epoch: 1, offsets: []) { _ in }
    }
}
