import EddyRedis
import EddySQL
import EddyState
import Logging

/// Compares Redis with the last checkpoint of a state directory once, read-only (`eddy verify`): every sink's
/// view is rendered from the checkpoint exactly as the sink writes it, and compared key by key with Redis
/// while Redis' marker says Redis holds that very checkpoint (`SinkProgress.isHeld(byMarker:)`). Nothing is
/// written, neither to Redis nor to the state directory; it works while `eddy run` runs, but a busy daemon
/// moves Redis past the checkpoint read, and then the comparison cannot be made (retry when it is idle).
public struct SinkVerifier: Sendable {
    public struct Settings: Sendable {
        public var connectTimeout: Duration = .seconds(5)
        public var commandTimeout: Duration = .seconds(10)
        /// Keys per `MGET`.
        public var chunkKeys = 1_000
        /// Differing keys listed per sink at most.
        public var listedKeys = 10

        public init() {}
    }

    /// What comparing one sink found.
    public struct Result: Sendable {
        public var sink: String
        public var view: String
        /// The Redis server as `host:port` (never the password).
        public var redisAddress: String
        /// The checkpoint compared against, once it was read.
        public var checkpoint: SinkProgress?
        public var outcome: Outcome

        public enum Outcome: Sendable, Equatable {
            /// Redis held the checkpoint's marker throughout; `keys` keys were compared.
            case compared(keys: Int, missing: Int, different: Int, unexpected: Int, firstDifferences: [SinkRepairPass.Difference])
            /// The comparison could not be made. `retryable`: it may succeed later (Redis at another point of
            /// the stream, or unreachable); else the pipeline file does not fit the state directory.
            case cannotCompare(reason: String, retryable: Bool)
        }

        /// Keys that differ (nil when nothing was compared).
        public var differingKeys: Int? {
            guard case .compared(_, let missing, let different, let unexpected, _) = outcome else { return nil }
            return missing + different + unexpected
        }
    }

    private struct Target: Sendable {
        let sink: Sink
        /// The index of the sink's view in `graph`.
        let view: Int
        let renderer: SinkRenderer
        let fingerprint: String
    }

    public let stateDirectory: String
    private let settings: Settings
    private let logger: Logger
    private let targets: [Target]
    private let graph: DataflowGraph

    /// Checks that every sink of `pipeline` reads a view Eddy can run.
    public init(pipeline: Pipeline, stateDirectory: String, settings: Settings = Settings(), logger: Logger) throws(EngineError) {
        guard !pipeline.sinks.isEmpty else { throw EngineError(.unsupported, "the pipeline defines no sink: there is nothing to compare") }
        let graph = try DataflowGraph(pipeline: pipeline)
        var targets: [Target] = []
        for sink in pipeline.sinks {
            guard let view = graph.index(ofView: sink.viewName) else {
                throw EngineError(.invalidArgument, "sink '\(sink.name)' reads view '\(sink.viewName)', which the pipeline does not define")
            }
            targets.append(Target(
                sink: sink, view: view, renderer: SinkRenderer(sink: sink, node: graph.nodes[view]),
                fingerprint: PipelineRunner.fingerprint(of: sink, view: graph.views[view])))
        }
        self.graph = graph
        self.stateDirectory = stateDirectory
        self.settings = settings
        self.logger = logger
        self.targets = targets
    }

    /// Compares every sink once. Throws only when the state directory cannot be read at all.
    public func verify() throws(StateError) -> [Result] {
        let store = try CheckpointStore.open(directory: stateDirectory, options: .init(readOnly: true, logger: logger))
        return targets.map { verify($0, store: store) }
    }

    private func verify(_ target: Target, store: CheckpointStore) -> Result {
        let sink = target.sink
        let url = sink.redisURL
        var result = Result(sink: sink.name, view: sink.viewName, redisAddress: url.address, checkpoint: nil, outcome: .cannotCompare(reason: "", retryable: false))
        func cannot(_ reason: String, retryable: Bool) -> Result {
            result.outcome = .cannotCompare(reason: reason, retryable: retryable)
            return result
        }

        guard sink.redis.clusterNodes.isEmpty else {
            return cannot("sink '\(sink.name)' writes to a Redis Cluster (redis.url lists nodes); eddy verify compares a single Redis only", retryable: false)
        }
        guard sink.redis.isComparable else {
            return cannot("sink '\(sink.name)' writes \(sink.redis.ttlSeconds != nil ? "keys with a TTL (they leave Redis by design)" : "redis_value_type \(sink.redis.valueType)"); eddy verify compares string values without TTL only", retryable: false)
        }
        // The checkpoint, rendered as the sink writes it.
        let rendered: (progress: SinkProgress, pairs: SinkPairBatch)
        do {
            let checkpoint = try store.loadCheckpoint()
            guard checkpoint.viewFingerprints[sink.viewName] == graph.fingerprint(ofView: target.view) else {
                return cannot(
                    checkpoint.viewFingerprints[sink.viewName] == nil
                        ? "\(stateDirectory) holds no state of view '\(sink.viewName)' (has `eddy run` run this pipeline there?)"
                        : "view '\(sink.viewName)' in \(stateDirectory) was built from another definition than the pipeline file's",
                    retryable: false)
            }
            guard let recorded = checkpoint.sinkFingerprints[sink.name] else {
                return cannot("\(stateDirectory) has no record of sink '\(sink.name)' (has `eddy run` run this pipeline there?)", retryable: false)
            }
            guard recorded == target.fingerprint else {
                return cannot("sink '\(sink.name)' in \(stateDirectory) writes another form (templates, encoding or view output) than the pipeline file's", retryable: false)
            }
            let form = SinkProgress.form(ofFingerprint: target.fingerprint)
            // Another process may commit between reading the checkpoint and the view: read until both agree.
            var attempt = 0
            while true {
                let candidate = try target.renderer.renderCheckpoint(of: store, graph: graph, view: target.view, form: form)
                if try store.loadCheckpoint().epoch == candidate.progress.epoch {
                    rendered = (candidate.progress, candidate.pairs)
                    break
                }
                attempt += 1
                if attempt == 5 { return cannot("the daemon committed new checkpoints while the view was read; retry when it is idle", retryable: true) }
            }
        } catch {
            return cannot("cannot read view '\(sink.viewName)' from \(stateDirectory): \(error)", retryable: false)
        }
        result.checkpoint = rendered.progress
        guard !rendered.progress.offsets.isEmpty else {
            return cannot("\(stateDirectory) holds no checkpoint of topic \(graph.topics.sorted().map { "'\($0)'" }.joined(separator: ", ")) yet", retryable: true)
        }

        // Redis, chunk by chunk, while its marker stands for that checkpoint.
        let repairer: RedisKeyRepairer
        do {
            repairer = RedisKeyRepairer(
                connection: try RedisConnection.connect(url: url, connectTimeout: settings.connectTimeout, commandTimeout: settings.commandTimeout, logger: logger),
                logger: logger)
        } catch {
            return cannot(error.reason, retryable: true)
        }
        defer { repairer.connection.close() }
        let markerKey = RedisEpochWriter.markerKey(sink: sink.name)
        var pass = SinkRepairPass(progress: rendered.progress, pairs: rendered.pairs)
        var counts = (keys: 0, missing: 0, different: 0, unexpected: 0)
        var listed: [SinkRepairPass.Difference] = []
        var moves = 0
        while true {
            let step: SinkRepairPass.Step
            do {
                step = try pass.step(maxKeys: settings.chunkKeys, repair: false) { chunk, repair, markerMatches in
                    try repairer.compare(markerKey: markerKey, pairs: chunk, repair: repair, markerMatches: markerMatches)
                }
            } catch {
                return cannot("\(error)", retryable: true)
            }
            switch step {
            case .finished:
                result.outcome = .compared(keys: counts.keys, missing: counts.missing, different: counts.different, unexpected: counts.unexpected, firstDifferences: listed)
                return result
            case .markerMismatch(let marker):
                return cannot(Self.mismatch(marker: marker, markerKey: markerKey, checkpoint: rendered.progress), retryable: true)
            case .markerMoved:
                moves += 1
                if moves == 5 { return cannot("the daemon kept writing to Redis during the comparison; retry when it is idle", retryable: true) }
            case .compared(let keys, let differing, _):
                counts.keys += keys
                for difference in differing {
                    switch difference.difference {
                    case .missing: counts.missing += 1
                    case .different: counts.different += 1
                    case .unexpected: counts.unexpected += 1
                    }
                    if listed.count < settings.listedKeys { listed.append(difference) }
                }
            }
        }
    }

    /// Why a marker does not stand for the checkpoint, in words.
    static func mismatch(marker: [UInt8]?, markerKey: String, checkpoint: SinkProgress) -> String {
        let retry = "retry when the daemon is idle (or pass --wait SECONDS)"
        guard let marker else {
            return "Redis has no marker \(markerKey): nothing was written to it yet, or it lost its data; \(retry)"
        }
        switch SinkProgress.parseMarker(marker) {
        case nil:
            return "Redis' marker \(markerKey) holds \"\(String(decoding: marker.prefix(48), as: UTF8.self))\", not an Eddy marker: another program uses the key"
        case .absent?:
            return "Redis has no marker \(markerKey); \(retry)"
        case .epochOnly(let epoch)?:
            return "Redis' marker \(markerKey) holds epoch \(epoch) as an older Eddy wrote it, without offsets; run the daemon to write it again"
        case .progress(let held)?:
            if held.form != checkpoint.form {
                return "Redis holds the view in another output form than the checkpoint (marker \(held.markerText)); run the daemon to write it again"
            }
            let stands: String
            switch held.compared(to: checkpoint) {
            case .same: stands = "at the checkpoint"  // not reached: the marker would match
            case .ahead: stands = "further along the stream than the checkpoint (the daemon has written newer values since, or another writer is active)"
            case .behind: stands = "behind the checkpoint (the daemon has not written it yet, or stopped before it could)"
            case .incomparable: stands = "at another point of the stream than the checkpoint (another writer?)"
            }
            return "Redis is \(stands): its marker reads \(held.markerText), the checkpoint is \(checkpoint.markerText); \(retry)"
        }
    }
}

extension SinkRenderer {
    /// The whole view rendered from the store's latest checkpoint, with the progress it stands for (offsets of
    /// `topic`, output form `form`). The caller keeps the checkpoint from changing meanwhile (the commit lock),
    /// or checks its epoch afterwards.
    func renderCheckpoint(
        of store: CheckpointStore, graph: DataflowGraph, view index: Int, form: UInt64
    ) throws -> (progress: SinkProgress, pairs: SinkPairBatch, collisions: Int) {
        let stored = try store.loadCheckpoint()
        var collisions = 0
        let pairs = try wholeView(in: store, graph: graph, view: index, collisions: &collisions)
        return (PipelineRunner.progress(epoch: stored.epoch, offsets: stored.offsets, form: form, topics: graph.topics), pairs, collisions)
    }
}

extension Sink {
    /// Where the sink writes, as the Redis client takes it (a Redis Cluster's first listed node).
    var redisURL: RedisURL { Self.redisURL(redis.endpoint) }

    /// A Redis Cluster sink's nodes (`redis.url` as a JSON array), as the Redis client takes them.
    var redisClusterURLs: [RedisURL] { redis.clusterNodes.map(Self.redisURL) }

    private static func redisURL(_ endpoint: RedisEndpoint) -> RedisURL {
        let tls = endpoint.tls.map {
            RedisTLSSettings(caFile: $0.caLocation, certificateFile: $0.certificateLocation, keyFile: $0.keyLocation, serverName: $0.serverName)
        }
        return RedisURL(host: endpoint.host, port: endpoint.port, user: endpoint.username, password: endpoint.password, database: endpoint.database, tls: tls)
    }
}
