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

/// How `RedisEpochWriter` makes an epoch atomic and fenced. Both write nothing when the fence refuses,
/// when Redis is out of memory, or when the connection is lost before Redis ran the write; both pass the
/// same tests. Measured on this machine (RedisSinkBenchmark, 100 000-key epochs): `transaction` runs at
/// ~1.1-1.7x redis-benchmark's pipelined SET rate, `script` at ~0.5-0.8x, hence `transaction` is the
/// default.
public enum RedisEpochWriteMethod: Sendable, Equatable, CustomStringConvertible {
    /// One Lua script per epoch (`EVALSHA` of `RedisEpochScript`): the fence is checked inside Redis.
    /// Needs scripting (`+@scripting` for ACL users). Redis copies every key and value into Lua and back,
    /// which costs about twice the time of plain `MSET`s.
    case script
    /// `WATCH marker` + `GET marker`, the fence checked here, then `MULTI`, `MSET` in batches, `SET marker`,
    /// `EXEC` in one pipeline. `EXEC` applies nothing if the marker changed after `WATCH` (the write then
    /// starts over) and discards everything if a command was refused while queued (`OOM`). One round
    /// trip more per epoch, no Lua.
    case transaction

    public var description: String {
        switch self {
        case .script: "script"
        case .transaction: "transaction"
        }
    }
}

/// Writes epochs to Redis atomically and fenced by a marker key: an epoch is applied only if
/// `minimumMarker <= marker < epoch`, where an absent marker counts as 0 (see `RedisEpochWriteMethod`).
///
/// With `.script`, loads the script once per connection (`SCRIPT LOAD`) and runs it with `EVALSHA`,
/// loading it again when Redis answers `NOSCRIPT` (after `SCRIPT FLUSH` or a restart). Keeps its encoding
/// buffers between epochs. **Thread:** the connection's thread.
public final class RedisEpochWriter: @unchecked Sendable {
    /// The connection every write goes through. After an error with `breaksConnection`, make a new
    /// connection and a new writer.
    public let connection: RedisConnection
    /// How epochs are made atomic and fenced.
    public let method: RedisEpochWriteMethod

    private let logger: Logger
    /// Which script form this server accepts: `flagged` until a Redis < 7 refuses to compile it.
    private(set) var scriptForm: RedisEpochScript.Form
    private(set) var loadedScriptSHA: [UInt8]?
    /// `.script`: the keys, then the values, as arguments. `.transaction`: `MSET` commands in `keys`.
    private var keys = RedisCommandEncoder()
    private var values = RedisCommandEncoder()
    private var batch = RedisCommandEncoder()
    private var command = RedisCommandEncoder()
    private var pairCount = 0
    private var msetCount = 0
    /// Tests only: runs between reading the marker and sending the transaction.
    var afterMarkerRead: (() -> Void)?

    /// Pairs per `MSET` of a transaction: large enough to make the per-command cost vanish, small enough
    /// to keep each queued command modest.
    static let pairsPerMSET = 1_000
    /// How often a transaction starts over because the marker moved before giving up (another writer).
    static let transactionAttempts = 5
    /// Buffers grown past this (a whole-view re-send) are released after the write instead of kept.
    private static let retainedBufferBytes = 32 << 20

    public convenience init(connection: RedisConnection, logger: Logger, method: RedisEpochWriteMethod = .transaction) {
        self.init(connection: connection, logger: logger, method: method, scriptForm: .flagged)
    }

    init(connection: RedisConnection, logger: Logger, method: RedisEpochWriteMethod, scriptForm: RedisEpochScript.Form) {
        self.connection = connection
        self.method = method
        self.logger = logger
        self.scriptForm = scriptForm
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
    /// sets every pair (absolute values, raw bytes) and the marker to `epoch`, all at once. An empty `pairs`
    /// still moves the marker.
    ///
    /// The whole epoch is one script or one transaction, however many pairs: splitting it would let
    /// readers see half an epoch, and Redis blocks others for the same total time either way. Measured
    /// here (release build, 2 cores): a whole-view re-send of 1 000 000 keys takes about 1.3-2.8 s as a
    /// script and 0.6-0.9 s as a transaction; `commandTimeout` must cover it. If it does not, the call
    /// throws `timeout` and the epoch is either wholly in Redis (Redis had started it: the retry on a new
    /// connection sees `.stale(marker: epoch)`) or not at all (it died with the closed socket).
    ///
    /// Throws `outOfMemory` (nothing written; retriable), `invalidMarker` (the marker holds something
    /// else), `timeout`/`connectionBroken` (connection closed; a new connection's retry is safe: a write
    /// still queued in Redis died with the old socket).
    public func write<Pairs: Sequence>(
        sink: String,
        epoch: UInt64,
        minimumMarker: UInt64,
        pairs: Pairs
    ) throws(RedisError) -> RedisEpochWriteOutcome where Pairs.Element == (key: [UInt8], value: [UInt8]) {
        defer { releaseLargeBuffers() }
        let markerKey = Self.markerKey(sink: sink)
        let outcome: RedisEpochWriteOutcome
        switch method {
        case .script:
            encodeForScript(pairs)
            let reply = try runScript(markerKey: markerKey, epoch: epoch, minimumMarker: minimumMarker)
            outcome = try scriptOutcome(of: reply, markerKey: markerKey)
        case .transaction:
            encodeForTransaction(pairs)
            outcome = try runTransaction(markerKey: markerKey, epoch: epoch, minimumMarker: minimumMarker)
        }
        logger.trace(
            "Redis epoch write",
            metadata: [
                "eddy.sink": "\(sink)", "eddy.epoch": "\(epoch)", "eddy.redis.pairs": "\(pairCount)",
                "eddy.redis.method": "\(method)", "eddy.redis.outcome": "\(outcome)",
            ]
        )
        return outcome
    }

    // MARK: - Script

    private func encodeForScript<Pairs: Sequence>(_ pairs: Pairs) where Pairs.Element == (key: [UInt8], value: [UInt8]) {
        keys.reset()
        values.reset()
        for pair in pairs {
            keys.appendArgument(pair.key)
            values.appendArgument(pair.value)
        }
        pairCount = keys.argumentCount
    }

    private func runScript(markerKey: String, epoch: UInt64, minimumMarker: UInt64) throws(RedisError) -> RedisReply {
        var reloaded = false
        while true {
            let sha = try loadScript()
            // Handed to hiredis in four pieces (it only appends them to its output buffer), so that the
            // keys and values are not copied once more into one command.
            command.reset()
            command.appendCommandHeader(argumentCount: 3 + 1 + pairCount + 2 + pairCount)
            command.appendArgument("EVALSHA")
            command.appendArgument(sha)
            command.appendArgument(UInt64(1 + pairCount))
            command.appendArgument(markerKey)
            try connection.send(command.bytes, commandName: "EVALSHA")
            try connection.send(keys.bytes, commandName: "EVALSHA")
            command.reset()
            command.appendArgument(epoch)
            command.appendArgument(minimumMarker)
            try connection.send(command.bytes, commandName: "EVALSHA")
            try connection.send(values.bytes, commandName: "EVALSHA")
            let reply = try connection.receive(commandName: "EVALSHA")
            // NOSCRIPT is decided before the script runs: nothing was written, so sending again is safe.
            if case .error(let message) = reply, message.hasPrefix("NOSCRIPT"), !reloaded {
                logger.debug("Redis forgot the epoch script (SCRIPT FLUSH or restart); loading it again")
                loadedScriptSHA = nil
                reloaded = true
                continue
            }
            return reply
        }
    }

    private func loadScript() throws(RedisError) -> [UInt8] {
        if let loadedScriptSHA { return loadedScriptSHA }
        var reply: RedisReply
        do {
            reply = try connection.command("SCRIPT", "LOAD", RedisEpochScript.source(scriptForm))
        } catch where scriptForm == .flagged && error.code == .serverError && error.reason.contains("compiling") {
            // Redis < 7 reads `#!lua` as Lua and fails to compile it: use the form without flags.
            logger.debug("Redis does not know script flags (Redis < 7); using the legacy epoch script")
            scriptForm = .legacy
            reply = try connection.command("SCRIPT", "LOAD", RedisEpochScript.source(scriptForm))
        }
        guard case .string(let sha) = reply, sha.count == 40 else {
            throw connection.breakingProtocolError("SCRIPT LOAD returned \(reply.summary), not a SHA1")
        }
        loadedScriptSHA = sha
        return sha
    }

    private func scriptOutcome(of reply: RedisReply, markerKey: String) throws(RedisError) -> RedisEpochWriteOutcome {
        if case .error(let message) = reply {
            if message.hasPrefix(RedisEpochScript.markerErrorPrefix) {
                throw invalidMarker(key: markerKey, detail: String(message.dropFirst(RedisEpochScript.markerErrorPrefix.count + 1)))
            }
            throw connection.serverError(message, commandName: "the epoch write (EVALSHA)")
        }
        guard case .array(let elements) = reply, let verdict = elements.first?.text else {
            throw connection.breakingProtocolError("the epoch script returned \(reply.summary)")
        }
        let marker: UInt64?? = elements.count > 1 ? elements[1].text.map { Self.parseEpoch(Array($0.utf8)) } : .some(nil)
        switch (verdict, elements.count, marker) {
        case ("applied", 1, _):
            return .applied
        case ("stale", 2, let marker??):
            return .stale(marker: marker)
        case ("behind", 1, _):
            return .behind(marker: nil)
        case ("behind", 2, let marker??):
            return .behind(marker: marker)
        case ("stale", 2, .some(nil)), ("behind", 2, .some(nil)):
            throw invalidMarker(key: markerKey, detail: "holds a number that does not fit in 64 bits")
        default:
            throw connection.breakingProtocolError("the epoch script returned \(reply.summary)")
        }
    }

    // MARK: - Transaction

    private func encodeForTransaction<Pairs: Sequence>(_ pairs: Pairs) where Pairs.Element == (key: [UInt8], value: [UInt8]) {
        keys.reset()
        batch.reset()
        pairCount = 0
        msetCount = 0
        for pair in pairs {
            batch.appendArgument(pair.key)
            batch.appendArgument(pair.value)
            pairCount += 1
            if batch.argumentCount == 2 * Self.pairsPerMSET { flushMSET() }
        }
        if batch.argumentCount > 0 { flushMSET() }
    }

    private func flushMSET() {
        keys.appendCommandHeader(argumentCount: 1 + batch.argumentCount)
        keys.appendArgument("MSET")
        keys.append(batch)
        batch.reset()
        msetCount += 1
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
            _ = try connection.receive(commandName: "WATCH").checked(by: connection, commandName: "WATCH")
            let markerReply = try connection.receive(commandName: "GET")
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

            // 2. MULTI, the MSETs, the marker, EXEC: one pipeline, handed to hiredis in three pieces.
            command.reset()
            command.appendCommandHeader(argumentCount: 1)
            command.appendArgument("MULTI")
            try connection.send(command.bytes, commandName: "MULTI")
            try connection.send(keys.bytes, commandName: "MULTI")
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
            for _ in 0..<(msetCount + 1) {
                let queued = try connection.receive(commandName: name)
                if case .error(let message) = queued, refusedWhileQueued == nil { refusedWhileQueued = message }
            }
            switch try connection.receive(commandName: "EXEC") {
            case .null:
                logger.debug("Redis epoch marker changed during the transaction; reading it again", metadata: ["eddy.redis.key": "\(markerKey)"])
                continue
            case .error(let message):
                // EXECABORT: a command was refused while queued (OOM, …) or at EXEC; nothing was applied.
                throw connection.serverError(refusedWhileQueued ?? message, commandName: name)
            case .array(let results) where results.count == msetCount + 1:
                if let failed = results.firstIndex(where: { $0 != .status("OK") }) {
                    // MSET and SET do not fail once queued; if one ever did, say so plainly.
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
        if keys.bytes.capacity + values.bytes.capacity > Self.retainedBufferBytes {
            keys = RedisCommandEncoder()
            values = RedisCommandEncoder()
            batch = RedisCommandEncoder()
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
