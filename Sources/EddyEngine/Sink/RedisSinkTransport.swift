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
    private var warnedAboutEviction = false

    init(sink: String, url: RedisURL, connectTimeout: Duration, commandTimeout: Duration, logger: Logger) {
        self.sink = sink
        self.url = url
        self.connectTimeout = connectTimeout
        self.commandTimeout = commandTimeout
        self.logger = logger
    }

    func connectAndReadMarker() throws -> UInt64? {
        disconnect()
        let connection = try RedisConnection.connect(url: url, connectTimeout: connectTimeout, commandTimeout: commandTimeout, logger: logger)
        if !warnedAboutEviction, let policy = try? connection.memoryPolicy(), policy.mayEvictSinkKeys {
            warnedAboutEviction = true
            logger.warning("""
                Redis at \(url.address) may evict keys under memory pressure (maxmemory-policy \(policy.policy ?? "?")): an \
                evicted key reads as missing until its group changes again. Use noeviction or a volatile-* policy for Eddy's keys.
                """, metadata: ["eddy.sink": "\(sink)"])
        }
        let writer = RedisEpochWriter(connection: connection, logger: logger)
        self.writer = writer
        return try writer.readMarker(sink: sink)
    }

    func readMarker() throws -> UInt64? {
        guard let writer else { throw RedisError(code: .connectionBroken, reason: "not connected to Redis at \(url.address)", isRetriable: true, breaksConnection: true) }
        return try writer.readMarker(sink: sink)
    }

    func write(epoch: UInt64, pairs: [SinkStateMachine.Pair], minimumMarker: UInt64) throws -> SinkWriteOutcome {
        guard let writer else { throw RedisError(code: .connectionBroken, reason: "not connected to Redis at \(url.address)", isRetriable: true, breaksConnection: true) }
        switch try writer.write(sink: sink, epoch: epoch, minimumMarker: minimumMarker, pairs: pairs.lazy.map { (key: $0.key, value: $0.value) }) {
        case .applied: return .applied
        case .stale(let marker): return .stale(marker: marker)
        case .behind(let marker): return .behind(marker: marker)
        }
    }

    func disconnect() {
        writer?.connection.close()
        writer = nil
    }
}

extension RedisError: SinkTransportError {
    public var connectionLost: Bool { breaksConnection }
}
