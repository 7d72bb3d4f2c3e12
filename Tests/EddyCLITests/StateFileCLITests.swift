import EddyTestSupport
import Foundation
import Testing

private let examplePipeline = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent()
    .deletingLastPathComponent().appendingPathComponent("examples/seed_pipeline.sql").path

/// A damaged state directory as `eddy query` and `eddy run` meet it: one clear line, never SIGBUS.
@Suite struct StateFileCLITests {
    /// Writes an LMDB environment with mdb_load (lmdb-utils): a view of a few thousand entries first, the meta
    /// and offsets databases last, so that the pages every open reads lie in the second half of the file.
    private func makeStateDirectory(_ path: String) throws {
        try FileManager.default.createDirectory(atPath: path, withIntermediateDirectories: true)
        let view = (0..<3000).map { "key-\($0)\n" + String(repeating: "v", count: 60) + "\n" }.joined()
        try load(path, database: "view:v", view)
        try load(path, database: "meta", "format_version\n\\01\\00\\00\\00\\00\\00\\00\\00\n")
        try load(path, database: "offsets", "t\\00\\00\\00\\00\\00\n\\e8\\03\\00\\00\\00\\00\\00\\00\n")
    }

    private func load(_ path: String, database: String, _ text: String) throws {
        let process = Process()
        process.executableURL = URL(fileURLWithPath: "/usr/bin/mdb_load")
        process.arguments = ["-T", "-s", database, path]
        let input = Pipe()
        process.standardInput = input
        try process.run()
        input.fileHandleForWriting.write(Data(text.utf8))
        try input.fileHandleForWriting.close()
        process.waitUntilExit()
        try #require(process.terminationStatus == 0)
    }

    @Test func aTruncatedDataFileIsAClearErrorForQueryAndRun() throws {
        let directory = try ScratchDirectory(prefix: "eddy-state-file")
        defer { directory.remove() }
        let state = directory.path + "/state"
        try makeStateDirectory(state)
        let query = ["query", "--state-dir", state, "SELECT * FROM v"]
        // Whole, the directory opens (it just records no view definitions).
        let whole = try EddyProcess.run(query)
        #expect(whole.status == 1 && whole.standardError.contains("records no views yet"), "\(whole.standardError)")

        let file = state + "/data.mdb"
        let size = try #require(FileManager.default.attributesOfItem(atPath: file)[.size] as? Int)
        try #require(truncate(file, off_t(size / 2)) == 0)
        let expected = [
            "state error (corrupt_state): the state file \(file) is damaged: it is \(size / 2) bytes",
            "the file was cut short; restore \(state) from a backup, or move it away",
        ]
        let cut = try EddyProcess.run(query)
        #expect(cut.status == 1, "a signal instead of an error? status \(cut.status): \(cut.standardError)")
        #expect(cut.standardError.hasPrefix("Error: eddy query: "), "\(cut.standardError)")
        for part in expected { #expect(cut.standardError.contains(part), "\(cut.standardError)") }

        // eddy run refuses before it connects anywhere (nothing listens on these ports).
        let run = try EddyProcess.run(
            ["run", examplePipeline, "--state-dir", state, "--http", "off"],
            environment: ["KAFKA_BROKERS": "127.0.0.1:9", "REDIS_URL": "redis://127.0.0.1:9"], timeout: .seconds(30))
        #expect(run.status == 1, "status \(run.status): \(run.standardError)")
        for part in expected { #expect(run.standardError.contains(part), "\(run.standardError)") }
    }
}
