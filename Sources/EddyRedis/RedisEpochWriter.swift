import Logging

/// What a fenced epoch write did.
public enum RedisEpochWriteOutcome: Sendable, Equatable {
    /// Every pair and the marker were written, at once.
    case applied
    /// The marker was already at or past the epoch: nothing was written. Either a newer writer got there
    /// first, or this epoch (or a later one) was applied earlier and its reply lost (`marker == epoch`
    /// after a timeout usually means the latter: the epoch is in Redis).
    case stale(marker: UInt64)
    /// The marker was below `minimumMarker` (or absent: `nil`): Redis lost acknowledged data (flushed,
    /// restarted without persistence). Nothing was written; the caller re-sends the whole view.
    case behind(marker: UInt64?)

    /// The fence: what a write of `epoch` does against `marker` (absent = 0); `nil` means apply it.
    static func fence(marker: UInt64?, epoch: UInt64, minimumMarker: UInt64) -> RedisEpochWriteOutcome? {
        let current = marker ?? 0
        if current >= epoch { return .stale(marker: current) }
        if current < minimumMarker { return .behind(marker: marker) }
        return nil
    }
}

/// Writes epochs to Redis atomically and fenced by a marker key: an epoch is applied only if
/// `minimumMarker <= marker < epoch`, where an absent marker counts as 0.
///
/// How: `WATCH marker` + `GET marker`, the fence checked here, then one pipeline of `MULTI`, the `MSET`s,
/// the `DEL`s, `SET marker epoch`, `EXEC`.
/// - Fenced: `EXEC` applies nothing if the marker changed after `WATCH` (another writer); the write then
///   reads the marker again and starts over.
/// - All or nothing: under `maxmemory`, Redis refuses every command queued in `MULTI` (`DEL` included)
///   and any `EXEC` of a transaction holding `MSET`/`SET` (memory crossed the limit after queueing), then
///   discards the transaction (`EXECABORT`): nothing is written. Once queued, `MSET`, `SET` and `DEL`
///   cannot fail (a key of any type is overwritten or deleted), so an `EXEC` that runs applies everything.
///
/// Why no Lua script (`EVALSHA` with the fence inside Redis, which Eddy had as a second method): one write
/// path to keep correct, and the transaction measured about twice as fast (RedisSinkBenchmark: ~1.5x
/// redis-benchmark's pipelined `SET` rate against ~0.64x), because a script copies every key and value
/// into Lua and back. It was no safer: the transaction is as all-or-nothing and as fenced (`WATCH` on the
/// marker). The cost is one round trip more per epoch.
///
/// Keeps its encoding buffers between epochs. **Thread:** the connection's thread.
public final class RedisEpochWriter: @unchecked Sendable {
    /// The connection every write goes through. After an error with `breaksConnection`, make a new
    /// connection and a new writer.
    public let connection: RedisConnection

    private let logger: Logger
    /// Whole `MSET` commands, then whole `DEL` commands, of the epoch being written.
    private var sets = RedisCommandEncoder()
    private var deletes = RedisCommandEncoder()
    /// The arguments of the `MSET` / `DEL` being filled.
    private var setBatch = RedisCommandEncoder()
    private var deleteBatch = RedisCommandEncoder()
    private var command = RedisCommandEncoder()
    private var setCount = 0
    private var deleteCount = 0
    private var msetCount = 0
    private var delCount = 0
    /// Tests only: runs between reading the marker and sending the transaction.
    var afterMarkerRead: (() -> Void)?

    /// Pairs per `MSET` and keys per `DEL`: large enough to make the per-command cost vanish, small
    /// enough to keep each queued command modest.
    static let pairsPerMSET = 1_000
    static let keysPerDEL = 1_000
    /// How often a transaction starts over because the marker moved before giving up (another writer).
    static let transactionAttempts = 5
    /// Buffers grown past this (a whole-view re-send) are released after the write instead of kept.
    private static let retainedBufferBytes = 32 << 20

    public init(connection: RedisConnection, logger: Logger) {
        self.connection = connection
        self.logger = logger
    }

    /// The key holding the last applied epoch of `sink`: `eddy:<sink>:epoch`.
    public static func markerKey(sink: String) -> String { "eddy:\(sink):epoch" }

    /// The epoch `sink`'s marker holds, `nil` when the key is absent. Throws `invalidMarker` when it holds
    /// anything but a decimal number that fits in 64 bits.
    public func readMarker(sink: String) throws(RedisError) -> UInt64? {
        let key = Self.markerKey(sink: sink)
        let reply: RedisReply
        do {
            reply = try connection.command("GET", key)
        } catch where error.code == .wrongType {
            throw invalidMarker(key: key, detail: "holds a \(try typeName(of: key)), not an epoch number")
        }
        return try marker(from: reply, key: key)
    }

    /// Applies epoch `epoch` of `sink` if and only if `minimumMarker <= marker < epoch` (absent marker = 0):
    /// sets every key that has a value (absolute values, raw bytes), deletes every key whose value is `nil`
    /// (a row that left the view; a key already absent is fine), and sets the marker to `epoch`, all at
    /// once. An empty `pairs` still moves the marker. Keys must be distinct within one call: sets and
    /// deletes are batched apart, so which of two pairs of one key wins is not defined.
    ///
    /// The whole epoch is one transaction, however many pairs: splitting it would let readers see half an
    /// epoch, and Redis blocks others for the same total time either way. Measured here (release build,
    /// 2 cores): a whole-view re-send of 1 000 000 keys takes about 0.6-0.9 s; `commandTimeout` must cover
    /// it. If it does not, the call throws `timeout` and the epoch is either wholly in Redis (Redis had run
    /// `EXEC`: the retry on a new connection sees `.stale(marker: epoch)`) or not at all (the transaction
    /// died with the closed socket).
    ///
    /// Throws `outOfMemory` (nothing written; retriable; an epoch of deletes only is refused too, as it
    /// sets the marker), `invalidMarker` (the marker holds something else), `serverUnavailable` (the marker
    /// kept changing: another writer), `timeout`/`connectionBroken` (connection closed; a new connection's
    /// retry is safe: a transaction still queued in Redis died with the old socket).
    public func write<Pairs: Sequence>(
        sink: String,
        epoch: UInt64,
        minimumMarker: UInt64,
        pairs: Pairs
    ) throws(RedisError) -> RedisEpochWriteOutcome where Pairs.Element == (key: [UInt8], value: [UInt8]?) {
        defer { releaseLargeBuffers() }
        let markerKey = Self.markerKey(sink: sink)
        encode(pairs)
        let outcome = try runTransaction(markerKey: markerKey, epoch: epoch, minimumMarker: minimumMarker)
        logger.trace(
            "Redis epoch write",
            metadata: [
                "eddy.sink": "\(sink)", "eddy.epoch": "\(epoch)", "eddy.redis.sets": "\(setCount)",
                "eddy.redis.deletes": "\(deleteCount)", "eddy.redis.outcome": "\(outcome)",
            ]
        )
        return outcome
    }

    // MARK: - Transaction

    private func encode<Pairs: Sequence>(_ pairs: Pairs) where Pairs.Element == (key: [UInt8], value: [UInt8]?) {
        sets.reset()
        deletes.reset()
        setBatch.reset()
        deleteBatch.reset()
        (setCount, deleteCount, msetCount, delCount) = (0, 0, 0, 0)
        for pair in pairs {
            if let value = pair.value {
                setBatch.appendArgument(pair.key)
                setBatch.appendArgument(value)
                setCount += 1
                if setBatch.argumentCount == 2 * Self.pairsPerMSET { flushMSET() }
            } else {
                deleteBatch.appendArgument(pair.key)
                deleteCount += 1
                if deleteBatch.argumentCount == Self.keysPerDEL { flushDEL() }
            }
        }
        if setBatch.argumentCount > 0 { flushMSET() }
        if deleteBatch.argumentCount > 0 { flushDEL() }
    }

    private func flushMSET() {
        sets.appendCommandHeader(argumentCount: 1 + setBatch.argumentCount)
        sets.appendArgument("MSET")
        sets.append(setBatch)
        setBatch.reset()
        msetCount += 1
    }

    private func flushDEL() {
        deletes.appendCommandHeader(argumentCount: 1 + deleteBatch.argumentCount)
        deletes.appendArgument("DEL")
        deletes.append(deleteBatch)
        deleteBatch.reset()
        delCount += 1
    }

    private func runTransaction(markerKey: String, epoch: UInt64, minimumMarker: UInt64) throws(RedisError) -> RedisEpochWriteOutcome {
        for _ in 0..<Self.transactionAttempts {
            // 1. Watch the marker and read it: EXEC below applies nothing if anyone changes it meanwhile.
            command.reset()
            command.appendCommandHeader(argumentCount: 2)
            command.appendArgument("WATCH")
            command.appendArgument(markerKey)
            command.appendCommandHeader(argumentCount: 2)
            command.appendArgument("GET")
            command.appendArgument(markerKey)
            try connection.send(command.bytes, commandName: "WATCH + GET")
            // Both replies are read before either is checked: an error from WATCH (a user without the
            // permission) must not leave GET's reply unread, out of step for the next command.
            let watchReply = try connection.receive(commandName: "WATCH")
            let markerReply = try connection.receive(commandName: "GET")
            _ = try watchReply.checked(by: connection, commandName: "WATCH")
            let marker: UInt64?
            do throws(RedisError) {
                if case .error(let message) = markerReply, message.hasPrefix("WRONGTYPE") {
                    throw invalidMarker(key: markerKey, detail: "holds a \(try typeName(of: markerKey)), not an epoch number")
                }
                marker = try self.marker(from: markerReply.checked(by: connection, commandName: "GET"), key: markerKey)
            } catch {
                try unwatch()
                throw error
            }
            if let refused = RedisEpochWriteOutcome.fence(marker: marker, epoch: epoch, minimumMarker: minimumMarker) {
                try unwatch()
                return refused
            }
            afterMarkerRead?()

            // 2. MULTI, the MSETs, the DELs, the marker, EXEC: one pipeline, handed to hiredis in four pieces
            // (it only appends them to its output buffer) so that the keys and values are not copied again.
            command.reset()
            command.appendCommandHeader(argumentCount: 1)
            command.appendArgument("MULTI")
            try connection.send(command.bytes, commandName: "MULTI")
            try connection.send(sets.bytes, commandName: "MULTI")
            try connection.send(deletes.bytes, commandName: "MULTI")
            command.reset()
            command.appendCommandHeader(argumentCount: 3)
            command.appendArgument("SET")
            command.appendArgument(markerKey)
            command.appendArgument(epoch)
            command.appendCommandHeader(argumentCount: 1)
            command.appendArgument("EXEC")
            try connection.send(command.bytes, commandName: "EXEC")

            let name = "the epoch write (MULTI/EXEC)"
            _ = try connection.receive(commandName: "MULTI").checked(by: connection, commandName: "MULTI")
            var refusedWhileQueued: String?
            for _ in 0..<(msetCount + delCount + 1) {
                let queued = try connection.receive(commandName: name)
                if case .error(let message) = queued, refusedWhileQueued == nil { refusedWhileQueued = message }
            }
            switch try connection.receive(commandName: "EXEC") {
            case .null:
                logger.debug("Redis epoch marker changed during the transaction; reading it again", metadata: ["eddy.redis.key": "\(markerKey)"])
                continue
            case .error(let message):
                // EXECABORT: nothing was applied.
                throw connection.serverError(Self.abortReason(execError: message, refusedWhileQueued: refusedWhileQueued), commandName: name)
            case .array(let results) where results.count == msetCount + delCount + 1:
                if let failed = firstUnexpectedResult(results) {
                    // MSET, DEL and SET do not fail once queued; if one ever did, say so plainly.
                    throw RedisError(
                        code: .serverError,
                        reason: "Redis at \(connection.url.address) applied the epoch write only in part (command \(failed + 2) of the transaction returned \(results[failed].summary))",
                        isRetriable: false, breaksConnection: false
                    )
                }
                return .applied
            case let other:
                throw connection.breakingProtocolError("EXEC returned \(other.summary)")
            }
        }
        throw RedisError(
            code: .serverUnavailable,
            reason: "epoch marker \(markerKey) on Redis at \(connection.url.address) changed \(Self.transactionAttempts) times during the write: another writer is using this sink",
            isRetriable: true, breaksConnection: false
        )
    }

    /// Why Redis discarded a transaction. A command refused while queued answered with its own error
    /// (`OOM …`) and `EXEC` with `EXECABORT … previous errors`; a transaction refused as a whole at `EXEC`
    /// (memory went over the limit after queueing) names the reason after a prefix.
    static func abortReason(execError: String, refusedWhileQueued: String?) -> String {
        if let refusedWhileQueued { return refusedWhileQueued }
        let prefix = "EXECABORT Transaction discarded because of: "
        return execError.hasPrefix(prefix) ? String(execError.dropFirst(prefix.count)) : execError
    }

    /// The index of the first `EXEC` result that is not what its command returns once applied: `OK` for
    /// `MSET` and the marker's `SET`, for `DEL` the number of keys it removed (at most those it named).
    private func firstUnexpectedResult(_ results: [RedisReply]) -> Int? {
        for (index, result) in results.enumerated() {
            let delIndex = index - msetCount
            if delIndex >= 0 && delIndex < delCount {
                let named = Int64(min(Self.keysPerDEL, deleteCount - delIndex * Self.keysPerDEL))
                guard case .integer(let removed) = result, (0...named).contains(removed) else { return index }
            } else if result != .status("OK") {
                return index
            }
        }
        return nil
    }

    private func unwatch() throws(RedisError) {
        _ = try connection.command("UNWATCH")
    }

    // MARK: - Shared

    private func marker(from reply: RedisReply, key: String) throws(RedisError) -> UInt64? {
        switch reply {
        case .null:
            return nil
        case .string(let bytes):
            guard let marker = Self.parseEpoch(bytes) else {
                let shown = String(decoding: bytes.prefix(32), as: UTF8.self)
                let detail = bytes.allSatisfy { $0 >= UInt8(ascii: "0") && $0 <= UInt8(ascii: "9") } && !bytes.isEmpty
                    ? "holds a number that does not fit in 64 bits" : "holds \"\(shown)\", not an epoch number"
                throw invalidMarker(key: key, detail: detail)
            }
            return marker
        default:
            throw connection.breakingProtocolError("GET \(key) returned \(reply.summary)")
        }
    }

    private func typeName(of key: String) throws(RedisError) -> String {
        try connection.command("TYPE", key).text ?? "value of another type"
    }

    private func invalidMarker(key: String, detail: String) -> RedisError {
        RedisError(
            code: .invalidMarker,
            reason: "epoch marker \(key) on Redis at \(connection.url.address) \(detail): another program uses this key",
            isRetriable: false,
            breaksConnection: false
        )
    }

    private func releaseLargeBuffers() {
        if sets.bytes.capacity + deletes.bytes.capacity > Self.retainedBufferBytes {
            sets = RedisCommandEncoder()
            deletes = RedisCommandEncoder()
            setBatch = RedisCommandEncoder()
            deleteBatch = RedisCommandEncoder()
            command = RedisCommandEncoder()
        }
    }

    /// Decimal digits (leading zeros allowed) that fit in a `UInt64`.
    static func parseEpoch(_ bytes: [UInt8]) -> UInt64? {
        guard !bytes.isEmpty else { return nil }
        var value: UInt64 = 0
        for byte in bytes {
            guard byte >= UInt8(ascii: "0"), byte <= UInt8(ascii: "9") else { return nil }
            let (times10, overflow1) = value.multipliedReportingOverflow(by: 10)
            let (sum, overflow2) = times10.addingReportingOverflow(UInt64(byte - UInt8(ascii: "0")))
            guard !overflow1, !overflow2 else { return nil }
            value = sum
        }
        return value
    }
}
