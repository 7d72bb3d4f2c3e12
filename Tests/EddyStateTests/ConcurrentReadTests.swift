import Synchronization
import Testing

@testable import EddyState

@Suite struct ConcurrentReadTests {
    /// Readers on other threads keep getting whole checkpoints while the writer commits and grows the map
    /// (growth waits for in-flight reads, and reads never see a half-written epoch).
    @Test func readersSeeWholeCheckpointsWhileTheMapGrows() async throws {
        let directory = try TemporaryDirectory()
        defer { directory.remove() }
        let store = try CheckpointStore.open(directory: directory.path, options: .init(initialMapSize: 1 << 20))
        let view = try #require(store.validatePipeline(fingerprints: ["v": "def"]).views["v"])
        let entriesPerEpoch = 500
        let finished = Atomic<Bool>(false)
        let snapshotsTaken = Atomic<Int>(0)
        async let outcome = onDedicatedThread { () -> (snapshots: Int, torn: Int) in
            var snapshots = 0
            var torn = 0
            while !finished.load(ordering: .acquiring) {
                var epoch = 0
                var entries = 0
                try store.forEachEntry(view: "v") { key, value in
                    if string(key) == "epoch" { epoch = Int(string(value)) ?? -1 } else { entries += 1 }
                }
                if entries != epoch * entriesPerEpoch { torn += 1 }
                snapshots += 1
                snapshotsTaken.store(snapshots, ordering: .releasing)
            }
            return (snapshots, torn)
        }
        let payload = [UInt8](repeating: 9, count: 1000)
        var growths = 0
        for epoch in 1...8 {
            // Interleave for sure: let the reader finish a snapshot between commits.
            let seen = snapshotsTaken.load(ordering: .acquiring)
            let deadline = ContinuousClock.now + .seconds(20)
            while snapshotsTaken.load(ordering: .acquiring) == seen && ContinuousClock.now < deadline {
                try await Task.sleep(for: .milliseconds(1))
            }
            growths += try store.commit(epoch: UInt64(epoch), offsets: []) { writer in
                for index in 0..<(epoch * entriesPerEpoch) {
                    try writer.put(view: view, key: bytes("k\(index)"), value: payload)
                }
                try writer.put(view: view, key: bytes("epoch"), value: bytes("\(epoch)"))
            }.mapGrowths
        }
        finished.store(true, ordering: .releasing)
        let (snapshots, torn) = try await outcome
        #expect(growths >= 2)
        #expect(snapshots >= 8 && torn == 0)
    }
}
