import Foundation
import Testing

@testable import EddyState

@Suite struct FormatVersionTests {
    @Test func aFreshStoreRecordsTheFormatVersion() throws {
        let directory = try TemporaryDirectory()
        defer { directory.remove() }
        do { _ = try CheckpointStore.open(directory: directory.path) }
        let dump = try run("/usr/bin/mdb_dump", ["-p", "-s", "meta", directory.path])
        #expect(dump.output.contains(" format_version\n \\01\\00\\00\\00\\00\\00\\00\\00\n"))
    }

    @Test func aNewerFormatIsRefusedWithAClearMessage() throws {
        let directory = try TemporaryDirectory()
        defer { directory.remove() }
        do {
            let store = try CheckpointStore.open(directory: directory.path)
            try store.commit(epoch: 1, offsets: []) { _ in }
        }
        // Rewrite the version as a future build would (mdb_load -T: key line, value line, hex escapes).
        let load = try run(
            "/usr/bin/mdb_load", ["-T", "-s", "meta", directory.path],
            input: "format_version\n\\02\\00\\00\\00\\00\\00\\00\\00\n")
        #expect(load.status == 0)
        for readOnly in [false, true] {
            let error = try #require(throws: StateError.self) {
                try CheckpointStore.open(directory: directory.path, options: .init(readOnly: readOnly))
            }
            #expect(error.code == .unsupportedFormat)
            #expect(error.reason.contains("format 2") && error.reason.contains(directory.path))
        }
    }
}
