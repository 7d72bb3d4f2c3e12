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
}

/// Writes epochs to Redis atomically and fenced by a marker key, in one Lua script per epoch
/// (`RedisEpochScript`): the epoch is applied only if `minimumMarker <= marker < epoch`, where an absent
/// marker counts as 0.
///
/// Loads the script once per connection (`SCRIPT LOAD`) and runs it with `EVALSHA`, loading it again
/// when Redis answers `NOSCRIPT` (after `SCRIPT FLUSH` or a restart). Keeps its encoding buffers between
/// epochs. **Thread:** the connection's thread.
public final class RedisEpochWriter: @unchecked Sendable {
    /// The connection every write goes through. After an error with `breaksConnection`, make a new
    /// connection and a new writer.
    public let connection: RedisConnection

    private let logger: Logger
    /// Which script form this server accepts: `flagged` until a Redis < 7 refuses to compile it.
    private(set) var scriptForm: RedisEpochScript.Form
    private(set) var loadedScriptSHA: [UInt8]?
    private var keys = RedisCommandEncoder()
    private var values = RedisCommandEncoder()
    private var command = RedisCommandEncoder()

    /// Buffers grown past this (a whole-view re-send) are released after the write instead of kept.
    private static let retainedBufferBytes = 32 << 20

    public convenience init(connection: RedisConnection, logger: Logger) {
        self.init(connection: connection, logger: logger, scriptForm: .flagged)
    }

    init(connection: RedisConnection, logger: Logger, scriptForm: RedisEpochScript.Form) {
        self.connection = connection
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
            throw invalidMarker(key: key, detail: "holds a value that is not a string")
        }
        switch reply {
        case .null:
            return nil
        case .string(let bytes):
            guard let marker = Self.parseEpoch(bytes) else {
                throw invalidMarker(key: key, detail: "holds \"\(String(decoding: bytes.prefix(32), as: UTF8.self))\", not an epoch number")
            }
            return marker
        default:
            throw connection.breakingProtocolError("GET \(key) returned \(reply.summary)")
        }
    }

    /// Applies epoch `epoch` of `sink` if and only if `minimumMarker <= marker < epoch` (absent marker = 0):
    /// sets every pair (absolute values, raw bytes) and the marker to `epoch`, all at once. An empty `pairs`
    /// still moves the marker.
    ///
    /// The whole epoch is one `EVALSHA`, however many pairs: one script is the only way for Redis to show
    /// it all at once, and `MULTI` around several chunk scripts would block Redis just as long while
    /// queueing the same bytes. Redis runs nothing else meanwhile: measured here, about 0.x s per 100 000
    /// pairs (see the tests); `commandTimeout` must cover it. If it does not, the call throws `timeout`,
    /// the script still completes in Redis, and the retry on a new connection sees `.stale(marker: epoch)`.
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
        keys.reset()
        values.reset()
        for pair in pairs {
            keys.appendArgument(pair.key)
            values.appendArgument(pair.value)
        }
        defer { releaseLargeBuffers() }
        let markerKey = Self.markerKey(sink: sink)
        let reply = try runScript(markerKey: markerKey, epoch: epoch, minimumMarker: minimumMarker)
        let outcome = try outcome(of: reply, markerKey: markerKey)
        logger.trace(
            "Redis epoch write",
            metadata: ["eddy.sink": "\(sink)", "eddy.epoch": "\(epoch)", "eddy.redis.pairs": "\(keys.argumentCount)", "eddy.redis.outcome": "\(outcome)"]
        )
        return outcome
    }

    // MARK: - Private

    private func runScript(markerKey: String, epoch: UInt64, minimumMarker: UInt64) throws(RedisError) -> RedisReply {
        var reloaded = false
        while true {
            let sha = try loadScript()
            command.reset()
            command.appendCommandHeader(argumentCount: 3 + 1 + keys.argumentCount + 2 + values.argumentCount)
            command.appendArgument("EVALSHA")
            command.appendArgument(sha)
            command.appendArgument(UInt64(1 + keys.argumentCount))
            command.appendArgument(markerKey)
            command.append(keys)
            command.appendArgument(epoch)
            command.appendArgument(minimumMarker)
            command.append(values)
            try connection.send(command.bytes, commandName: "EVALSHA")
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

    private func outcome(of reply: RedisReply, markerKey: String) throws(RedisError) -> RedisEpochWriteOutcome {
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

    private func invalidMarker(key: String, detail: String) -> RedisError {
        RedisError(
            code: .invalidMarker,
            reason: "epoch marker \(key) on Redis at \(connection.url.address) \(detail): another program uses this key",
            isRetriable: false,
            breaksConnection: false
        )
    }

    private func releaseLargeBuffers() {
        if command.bytes.capacity > Self.retainedBufferBytes {
            keys = RedisCommandEncoder()
            values = RedisCommandEncoder()
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
