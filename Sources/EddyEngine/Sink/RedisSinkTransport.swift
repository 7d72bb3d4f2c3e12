import EddyRedis
import Logging

/// `SinkTransport` over hiredis: one connection, made again after any error that breaks it. Used only on
/// its sink's thread.
final class RedisSinkTransport: SinkTransport {
    private let sink: String
    private let url: RedisURL
    private let connectTimeout: Duration
    private let commandTimeout: Duration
    private let logger: Logger
    private var writer: RedisEpochWriter?
    private var repairer: RedisKeyRepairer?
    private var warnedAboutEviction = false

    init(sink: String, url: RedisURL, connectTimeout: Duration, commandTimeout: Duration, logger: Logger) {
        self.sink = sink
        self.url = url
        self.connectTimeout = connectTimeout
        self.commandTimeout = commandTimeout
        self.logger = logger
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
                \(limit)): an evicted key reads as missing until its group changes again. Use noeviction, or a volatile-* policy \
                (Eddy's keys have no TTL, so it never evicts them).
                """, metadata: ["eddy.sink": "\(sink)"])
        }
        let writer = RedisEpochWriter(connection: connection, logger: logger)
        self.writer = writer
        repairer = RedisKeyRepairer(connection: connection, logger: logger)
        return try readMarker()
    }

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
            sink: sink, marker: Array(write.progress.markerText.utf8), pairs: write.pairs
        ) { bytes in
            guard let bytes else { return Self.check(.absent, write) }
            guard let marker = SinkProgress.parseMarker(bytes) else { return .unreadable(detail: Self.unreadable(bytes)) }
            return Self.check(marker, write)
        }
    }

    func compare(_ chunk: SinkRepairPass.Chunk, repair: Bool) throws -> RedisChunkComparison {
        guard let repairer else { throw RedisError(code: .connectionBroken, reason: "not connected to Redis at \(url.address)", isRetriable: true, breaksConnection: true) }
        return try repairer.compare(markerKey: RedisEpochWriter.markerKey(sink: sink), pairs: chunk.pairs, repair: repair, markerMatches: chunk.progress.isHeld(byMarker:))
    }

    /// The name the sink's connections carry in `CLIENT LIST`: `eddy:<sink>`.
    static func clientName(sink: String) -> String { "eddy:\(sink)" }

    private static func check(_ marker: SinkProgress.Marker, _ write: SinkStateMachine.Write) -> RedisMarkerCheck<SinkStateMachine.Refusal> {
        if UnsafeFenceSwitch.isFenceDisabled { return .write }
        return SinkStateMachine.fence(marker: marker, write: write).map(RedisMarkerCheck.refuse) ?? .write
    }

    private static func unreadable(_ bytes: [UInt8]) -> String {
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
