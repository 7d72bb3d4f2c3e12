import Logging

/// How one key in Redis differs from the value expected for it.
public enum RedisKeyDifference: Sendable, Equatable {
    /// A value was expected; Redis has none (or holds the key as another type than a string).
    case missing
    /// Redis holds another value.
    case different
    /// No value was expected (the row left the view); Redis still has one.
    case unexpected
}

/// What comparing one chunk of keys with Redis found.
public enum RedisChunkComparison: Sendable, Equatable {
    /// Redis' marker does not stand for the values compared against (another point of the stream, another
    /// output form, or no marker): nothing was compared or written. `marker` is what the key held.
    case markerMismatch(marker: [UInt8]?)
    /// The marker changed while the chunk was read (a writer was active): the reads may mix two points of
    /// the stream, so nothing is reported and nothing was written.
    case markerMoved
    /// Redis held the expected marker throughout. `differences` are the keys whose value differs, by index
    /// into the pairs given, in order; `repaired` whether they were written (then all of them were, at once).
    case compared(differences: [RedisKeyMismatch], repaired: Bool)
}

/// One key of a chunk that differs: its index into the pairs compared, and how.
public struct RedisKeyMismatch: Sendable, Equatable {
    public var index: Int
    public var difference: RedisKeyDifference

    public init(index: Int, difference: RedisKeyDifference) {
        self.index = index
        self.difference = difference
    }
}

/// Compares a chunk of keys with the values a checkpoint says they hold and, when asked, rewrites the ones
/// that differ: the repair of keys another program overwrote or deleted (DESIGN §3's values are only rewritten
/// when they change, so such a key would otherwise stay wrong while its group is idle).
///
/// How, per chunk, in one pipeline and one more round trip: `WATCH marker`, `GET marker`, `MGET keys`; the
/// marker is checked here (`markerMatches`: does it say Redis holds exactly the values compared against?);
/// then `MULTI`, the `MSET`/`DEL` of the differing keys and `SET marker <the same value>` when repairing,
/// `EXEC`. The transaction is fenced like an epoch write: if anyone set the marker after `WATCH` (an epoch
/// written meanwhile), `EXEC` applies nothing and the chunk reports `markerMoved`, so a repair never
/// overwrites a newer value. An empty `MULTI`/`EXEC` closes a read-only comparison the same way, which is
/// how `eddy verify` knows its reads all come from one point of the stream. Setting the marker to its own
/// value makes the repair an epoch of its own for anyone watching the marker (another writer's transaction
/// in flight then reads again).
///
/// `MGET` answers nil for a key of another type than a string: such a key counts as `missing` and is
/// overwritten by `MSET` on repair; where no value is expected it goes unnoticed.
///
/// **Thread:** the connection's thread.
public final class RedisKeyRepairer: @unchecked Sendable {
    /// After an error with `breaksConnection`, make a new connection and a new repairer.
    public let connection: RedisConnection
    private let logger: Logger
    private var command = RedisCommandEncoder()
    private var keys = RedisCommandEncoder()
    private var sets = RedisCommandEncoder()
    private var deletes = RedisCommandEncoder()

    public init(connection: RedisConnection, logger: Logger) {
        self.connection = connection
        self.logger = logger
    }

    /// Compares `pairs` (distinct keys; a nil value means the key should not exist) with Redis while
    /// `markerKey` holds a value `markerMatches` accepts; with `repair`, writes the differing ones.
    ///
    /// Throws `outOfMemory` (the repair was refused as a whole; nothing written), `timeout` /
    /// `connectionBroken` (connection closed; nothing or everything of the repair was applied, and a new
    /// comparison tells which), other server errors.
    public func compare<Pairs: RandomAccessCollection>(
        markerKey: String,
        pairs: Pairs,
        repair: Bool,
        markerMatches: ([UInt8]?) -> Bool
    ) throws(RedisError) -> RedisChunkComparison where Pairs.Element == (key: [UInt8], value: [UInt8]?) {
        // 1. WATCH, GET marker, MGET keys: one round trip; every reply read before any is checked, so that
        // the connection stays in step whatever fails.
        command.reset()
        command.appendCommandHeader(argumentCount: 2)
        command.appendArgument("WATCH")
        command.appendArgument(markerKey)
        command.appendCommandHeader(argumentCount: 2)
        command.appendArgument("GET")
        command.appendArgument(markerKey)
        keys.reset()
        for pair in pairs { keys.appendArgument(pair.key) }
        if !pairs.isEmpty {
            command.appendCommandHeader(argumentCount: 1 + keys.argumentCount)
            command.appendArgument("MGET")
            command.append(keys)
        }
        try connection.send(command.bytes, commandName: "WATCH + GET + MGET")
        let watchReply = try connection.receive(commandName: "WATCH")
        let markerReply = try connection.receive(commandName: "GET")
        let valuesReply = pairs.isEmpty ? RedisReply.array([]) : try connection.receive(commandName: "MGET")
        let marker: [UInt8]?
        let values: [RedisReply]
        do throws(RedisError) {
            _ = try watchReply.checked(by: connection, commandName: "WATCH")
            switch try markerReply.checked(by: connection, commandName: "GET \(markerKey)") {
            case .null: marker = nil
            case .string(let bytes): marker = bytes
            case let other: throw connection.breakingProtocolError("GET \(markerKey) returned \(other.summary)")
            }
            guard case .array(let replies) = try valuesReply.checked(by: connection, commandName: "MGET"), replies.count == pairs.count else {
                throw connection.breakingProtocolError("MGET of \(pairs.count) keys returned \(valuesReply.summary)")
            }
            values = replies
        } catch {
            if connection.isOpen { _ = try? connection.command("UNWATCH") }
            throw error
        }
        guard markerMatches(marker) else {
            _ = try connection.command("UNWATCH")
            return .markerMismatch(marker: marker)
        }

        // 2. Compare.
        var differences: [RedisKeyMismatch] = []
        sets.reset()
        deletes.reset()
        for (offset, (pair, actual)) in zip(pairs, values).enumerated() {
            let difference: RedisKeyDifference?
            switch (pair.value, actual) {
            case (let expected?, .string(let bytes)): difference = expected == bytes ? nil : .different
            case (.some, _): difference = .missing
            case (nil, .string): difference = .unexpected
            case (nil, _): difference = nil
            }
            guard let difference else { continue }
            differences.append(RedisKeyMismatch(index: offset, difference: difference))
            if let value = pair.value {
                sets.appendArgument(pair.key)
                sets.appendArgument(value)
            } else {
                deletes.appendArgument(pair.key)
            }
        }
        let writes = repair && !differences.isEmpty

        // 3. MULTI, [MSET, DEL, SET marker,] EXEC: applies only if the marker stayed untouched since WATCH.
        command.reset()
        command.appendCommandHeader(argumentCount: 1)
        command.appendArgument("MULTI")
        var queued = 0
        if writes {
            if sets.argumentCount > 0 {
                command.appendCommandHeader(argumentCount: 1 + sets.argumentCount)
                command.appendArgument("MSET")
                command.append(sets)
                queued += 1
            }
            if deletes.argumentCount > 0 {
                command.appendCommandHeader(argumentCount: 1 + deletes.argumentCount)
                command.appendArgument("DEL")
                command.append(deletes)
                queued += 1
            }
            // (An absent marker stands for no checkpoint, so it is never accepted; were it, WATCH alone fences.)
            if let marker {
                command.appendCommandHeader(argumentCount: 3)
                command.appendArgument("SET")
                command.appendArgument(markerKey)
                command.appendArgument(marker)
                queued += 1
            }
        }
        command.appendCommandHeader(argumentCount: 1)
        command.appendArgument("EXEC")
        let name = writes ? "the repair (MULTI/EXEC)" : "MULTI/EXEC"
        try connection.send(command.bytes, commandName: name)
        _ = try connection.receive(commandName: "MULTI").checked(by: connection, commandName: "MULTI")
        var refusedWhileQueued: String?
        for _ in 0..<queued {
            if case .error(let message) = try connection.receive(commandName: name), refusedWhileQueued == nil { refusedWhileQueued = message }
        }
        switch try connection.receive(commandName: "EXEC") {
        case .null:
            logger.debug("Redis epoch marker changed while comparing keys", metadata: ["eddy.redis.key": "\(markerKey)"])
            return .markerMoved
        case .error(let message):
            throw connection.serverError(RedisEpochWriter.abortReason(execError: message, refusedWhileQueued: refusedWhileQueued), commandName: name)
        case .array(let results) where results.count == queued:
            if let failed = results.firstIndex(where: { if case .error = $0 { true } else { false } }) {
                throw RedisError(
                    code: .serverError,
                    reason: "Redis at \(connection.url.address) applied the repair only in part (command \(failed + 2) of the transaction returned \(results[failed].summary))",
                    isRetriable: false, breaksConnection: false)
            }
            return .compared(differences: differences, repaired: writes)
        case let other:
            throw connection.breakingProtocolError("EXEC returned \(other.summary)")
        }
    }
}
