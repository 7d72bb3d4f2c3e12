import EddyRedis
import EddySQL
import Logging

/// `SinkTransport` over hiredis: one connection, made again after any error that breaks it. Used only on
/// its sink's thread.
final class RedisSinkTransport: SinkTransport {
    private let sink: String
    private let url: RedisURL
    private let connectTimeout: Duration
    private let commandTimeout: Duration
    private let logger: Logger
    private let layout: RedisValueLayout
    private var writer: RedisEpochWriter?
    private var repairer: RedisKeyRepairer?
    private var warnedAboutEviction = false

    init(sink: String, url: RedisURL, layout: RedisValueLayout = .string, connectTimeout: Duration, commandTimeout: Duration, logger: Logger) {
        self.sink = sink
        self.layout = layout
        self.url = url
        self.connectTimeout = connectTimeout
        self.commandTimeout = commandTimeout
        self.logger = logger
    }

    /// The transport for `sink`: a Redis Cluster's (`RedisClusterSinkTransport`) when `redis.url` lists nodes as a
    /// JSON array, else one connection to the one Redis.
    ///
    /// - Parameters:
    ///   - slotRecord: a cluster sink's per-slot record from the store (`StoredCheckpoint.acknowledgedSlots`).
    ///   - acknowledged: whether the store holds an acknowledgement for the sink.
    static func make(
        sink: Sink, slotRecord: [UInt16: SinkProgress], acknowledged: Bool, connectTimeout: Duration, commandTimeout: Duration, logger: Logger
    ) -> any SinkTransport {
        if sink.redis.clusterNodes.isEmpty {
            return RedisSinkTransport(
                sink: sink.name, url: sink.redisURL, layout: sink.redis.layout, connectTimeout: connectTimeout, commandTimeout: commandTimeout, logger: logger)
        }
        return RedisClusterSinkTransport(
            sink: sink.name, seeds: sink.redisClusterURLs, layout: sink.redis.layout, slotRecord: slotRecord, acknowledged: acknowledged,
            connectTimeout: connectTimeout, commandTimeout: commandTimeout, logger: logger)
    }

    func connectAndReadMarker() throws -> SinkProgress.Marker {
        disconnect()
        let connection = try RedisConnection.connect(
            url: url, connectTimeout: connectTimeout, commandTimeout: commandTimeout, clientName: Self.clientName(sink: sink), logger: logger)
        if !warnedAboutEviction, let policy = try? connection.memoryPolicy(), policy.mayEvictSinkKeys {
            warnedAboutEviction = true
            let limit = policy.maxMemoryBytes.map { $0 == 0 ? "maxmemory 0, no limit yet" : "maxmemory \($0) bytes" } ?? "maxmemory unknown"
            logger.warning("""
                Redis at \(url.address) may evict this sink's keys under memory pressure (maxmemory-policy \(policy.policy ?? "?"), \
                \(limit)): an evicted key reads as missing until its group changes again. Use noeviction\
                \(layout.ttlSeconds == nil ? ", or a volatile-* policy (this sink's keys have no TTL, so it never evicts them)" : " (a volatile-* policy would evict them too: they have a TTL)").
                """, metadata: ["eddy.sink": "\(sink)"])
        }
        let writer = RedisEpochWriter(connection: connection, logger: logger)
        self.writer = writer
        repairer = RedisKeyRepairer(connection: connection, logger: logger)
        return try readMarker()
    }

    func connectAndCheck(_ probe: SinkStateMachine.Write) throws -> SinkStateMachine.Refusal? {
        SinkStateMachine.fence(marker: try connectAndReadMarker(), write: probe)
    }

    func check(_ probe: SinkStateMachine.Write) throws -> SinkStateMachine.Refusal? {
        SinkStateMachine.fence(marker: try readMarker(), write: probe)
    }

    /// A single Redis has no hash slots.
    var writtenSlots: [UInt16] { [] }

    func readMarker() throws -> SinkProgress.Marker {
        let writer = try connectedWriter()
        let bytes = try writer.readMarker(sink: sink)
        guard let bytes else { return .absent }
        guard let marker = SinkProgress.parseMarker(bytes) else {
            throw writer.invalidMarker(key: RedisEpochWriter.markerKey(sink: sink), detail: Self.unreadable(bytes))
        }
        return marker
    }

    func write(_ write: SinkStateMachine.Write) throws -> SinkStateMachine.Refusal? {
        let writer = try connectedWriter()
        return try writer.write(
            sink: sink, marker: Array(write.progress.markerText.utf8), pairs: write.pairs, layout: layout,
            entrySequence: Self.entrySequence(of: write.progress),
            baseSequence: write.isWholeView ? nil : write.base.map(Self.entrySequence(of:))
        ) { bytes in
            guard let bytes else { return self.check(.absent, write) }
            guard let marker = SinkProgress.parseMarker(bytes) else { return .unreadable(detail: Self.unreadable(bytes)) }
            return self.check(marker, write)
        }
    }

    func compare(_ chunk: SinkRepairPass.Chunk, repair: Bool) throws -> RedisChunkComparison {
        guard let repairer else { throw RedisError(code: .connectionBroken, reason: "not connected to Redis at \(url.address)", isRetriable: true, breaksConnection: true) }
        return try repairer.compare(markerKey: RedisEpochWriter.markerKey(sink: sink), pairs: chunk.pairs, repair: repair, markerMatches: chunk.progress.isHeld(byMarker:))
    }

    /// A stream entry's sequence for a write of `progress`: the sum of its offsets. The fence applies a write only
    /// when every offset is at least the marker's and one is further, so the sum grows with every applied write,
    /// and one point of the stream always has the same sum — in every copy of the daemon, unlike epoch numbers,
    /// which two copies of one state directory count alike.
    static func entrySequence(of progress: SinkProgress) -> UInt64 {
        progress.offsets.values.reduce(0) { $0 &+ UInt64(max(0, $1)) }
    }

    /// The name the sink's connections carry in `CLIENT LIST`: `eddy:<sink>`.
    static func clientName(sink: String) -> String { "eddy:\(sink)" }

    private func check(_ marker: SinkProgress.Marker, _ write: SinkStateMachine.Write) -> RedisMarkerCheck<SinkStateMachine.Refusal> {
        if UnsafeFenceSwitch.isFenceDisabled { return .write }
        if let refusal = SinkStateMachine.fence(marker: marker, write: write) { return .refuse(refusal) }
        // Redis applied a write after the acknowledged one (its reply was lost to a crash): this delta repeats its
        // keys, whose messages went out then. Published messages cannot be read back to tell which, so none are
        // sent again (at most once); a stream's entries can, and the writer leaves out those already there.
        if case .pubsub = layout.kind, !write.isWholeView, case .progress(let held) = marker, let base = write.base, held.compared(to: base) != .same {
            return .writeWithoutHistory
        }
        return .write
    }

    static func unreadable(_ bytes: [UInt8]) -> String {
        "holds \"\(String(decoding: bytes.prefix(48), as: UTF8.self))\", not an Eddy epoch marker"
    }

    private func connectedWriter() throws(RedisError) -> RedisEpochWriter {
        guard let writer else { throw RedisError(code: .connectionBroken, reason: "not connected to Redis at \(url.address)", isRetriable: true, breaksConnection: true) }
        return writer
    }

    func disconnect() {
        writer?.connection.close()
        writer = nil
        repairer = nil
    }
}

extension RedisError: SinkTransportError {
    public var connectionLost: Bool { breaksConnection }
}

extension RedisSinkSettings {
    /// What the sink's pairs become in Redis.
    var layout: RedisValueLayout {
        let kind: RedisValueLayout.Kind = switch valueType {
        case .string: .string
        case .hash: .hash
        case .stream(let name): .stream(name: Array(name.utf8))
        case .pubsub(let channel): .pubsub(channel: Array(channel.utf8))
        }
        return RedisValueLayout(kind: kind, ttlSeconds: ttlSeconds)
    }

    /// Whether Redis can be compared with the checkpoint key by key (`SinkRepairPass`, `eddy verify`): plain string
    /// values that stay until replaced. A hash is read another way, stream entries and messages are a history
    /// rather than the view, and keys with a TTL leave by design.
    var isComparable: Bool { valueType == .string && ttlSeconds == nil }

    /// Whether the sink keeps the keys it deletes until they are acknowledged (`Tombstones`), so that a whole view
    /// re-sent after a crash deletes them again: keys that hold a view's rows (strings, hashes) and may leave it.
    /// A stream or a channel is a history, not the view; an append-only sink never deletes.
    var keepsTombstones: Bool {
        guard !forceAppendOnly else { return false }
        return switch valueType {
        case .string, .hash: true
        case .stream, .pubsub: false
        }
    }

    /// What the fingerprint adds beyond string values without TTL (nothing then, so that existing sinks keep their
    /// output form).
    var layoutFingerprint: String {
        var parts: [String] = []
        if valueType != .string { parts.append("value type \(valueType)") }
        if let ttlSeconds { parts.append("ttl \(ttlSeconds)") }
        if keyAsText { parts.append("key text") }
        return parts.map { "; " + $0 }.joined()
    }
}
