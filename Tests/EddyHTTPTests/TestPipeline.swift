import EddyWorkload
#if canImport(Glibc)
import Glibc
#endif
import EddyHTTP
import Synchronization

/// A data source for the server tests: example documents a test can change, and an optional simulation
/// in which every `status()` call moves the pipeline one second forward (the dashboard polls once a
/// second, so page time and pipeline time advance together, whatever the browser's clock does).
final class TestPipeline: EddyHTTPDataSource {
    struct Contents {
        var status: PipelineStatus
        var views: [ViewRows]
        var simulates = false
        var ticks = 0
        var noise = SplitMix64(seed: 6)
    }

    let contents: Mutex<Contents>

    init(simulates: Bool = false) {
        contents = Mutex(Contents(status: Self.exampleStatus, views: [Self.exampleView], simulates: simulates))
    }

    func status() -> PipelineStatus {
        contents.withLock { contents in
            if contents.simulates { Self.advance(&contents) }
            return contents.status
        }
    }

    func views() -> [ViewRows] { contents.withLock { $0.views } }

    func view(named name: String) -> ViewRows? { contents.withLock { $0.views.first { $0.name == name } } }

    func update(_ change: (inout Contents) -> Void) { contents.withLock { change(&$0) } }

    // MARK: Example documents: the seed pipeline of DESIGN.md, an hour and a half into a run.

    static let eventNames = ["click", "scroll", "focus", "submit", "download"]
    /// Share of the traffic per event, so that the bars differ visibly.
    static let eventWeights = [0.36, 0.26, 0.18, 0.12, 0.08]
    static let startCounts: [Int64] = [1_862_410, 1_344_981, 931_072, 620_488, 413_905]

    static let exampleView = ViewRows(
        name: "events_statisics_mv",
        columns: [ViewColumn(name: "event", type: "VARCHAR", isGroupKey: true), ViewColumn(name: "count", type: "BIGINT", isGroupKey: false)],
        rows: zip(eventNames, startCounts).map { [.string($0), .int($1)] },
        epoch: 5_131,
        isLive: true
    )

    static let exampleStatus = PipelineStatus(
        pipeline: "seed_pipeline",
        uptimeSeconds: 5_130.4,
        state: .running,
        sources: [
            SourceStatus(
                name: "user_events",
                topic: "test",
                consumed: startCounts.reduce(0, +),
                partitions: [
                    PartitionStatus(partition: 0, nextOffset: 1_724_310, highWatermark: 1_724_322, lag: 12, consumed: 1_724_310),
                    PartitionStatus(partition: 1, nextOffset: 1_723_980, highWatermark: 1_723_987, lag: 7, consumed: 1_723_980),
                    PartitionStatus(partition: 2, nextOffset: 1_724_566, highWatermark: 1_724_586, lag: 20, consumed: 1_724_566),
                ]
            )
        ],
        decodeErrors: ["not_json": 3, "wrong_type": 1],
        views: [ViewSummary(name: "events_statisics_mv", source: "user_events", groups: 5)],
        sinks: [
            SinkStatus(
                name: "redis_sink", view: "events_statisics_mv", healthy: true, acknowledgedEpoch: 5_130, pendingEpochs: 1, retries: 3,
                secondsSinceLastWrite: 0.42
            )
        ],
        checkpoint: CheckpointStatus(epoch: 5_131, secondsSinceCommit: 0.31, lastDurationMilliseconds: 1.84),
        ready: true,
        notReadyReasons: []
    )

    /// One simulated second: about 1,200 events spread by weight, with a slow swell of traffic and a
    /// little seeded noise per event, as a busy site would send; offsets, epochs and timings move along.
    private static func advance(_ contents: inout Contents) {
        contents.ticks += 1
        let tick = Double(contents.ticks)
        let traffic = 1_200 * (1 + 0.18 * sin(tick / 17) + 0.07 * sin(tick / 5.3))
        var added: Int64 = 0
        for (index, weight) in eventWeights.enumerated() {
            let noise = 1 + 0.16 * (contents.noise.nextUnit() - 0.5)
            let increment = Int64((traffic * weight * noise).rounded())
            added += increment
            if case .int(let count) = contents.views[0].rows[index][1] {
                contents.views[0].rows[index][1] = .int(count + increment)
            }
        }
        contents.views[0].epoch += 1
        var status = contents.status
        status.uptimeSeconds += 1
        status.sources[0].consumed += added
        for index in status.sources[0].partitions.indices {
            let share = added / 3 + (index == 0 ? added % 3 : 0)
            status.sources[0].partitions[index].nextOffset += share
            status.sources[0].partitions[index].consumed += share
            let lag = Int64(6 + 24 * contents.noise.nextUnit())
            status.sources[0].partitions[index].highWatermark = status.sources[0].partitions[index].nextOffset + lag
            status.sources[0].partitions[index].lag = lag
        }
        status.checkpoint.epoch += 1
        status.checkpoint.secondsSinceCommit = 0.1 + 0.8 * contents.noise.nextUnit()
        status.checkpoint.lastDurationMilliseconds = 1.3 + 0.9 * contents.noise.nextUnit() * contents.noise.nextUnit()
        status.sinks[0].acknowledgedEpoch = status.checkpoint.epoch - 1
        status.sinks[0].secondsSinceLastWrite = 0.1 + 0.8 * contents.noise.nextUnit()
        contents.status = status
    }
}

extension SplitMix64 {
    /// A number in [0, 1): simulated traffic the same on every run.
    mutating func nextUnit() -> Double { Double.random(in: 0..<1, using: &self) }
}
