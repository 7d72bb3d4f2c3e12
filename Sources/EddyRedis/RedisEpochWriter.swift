import Logging

/// The keys and values of one epoch write, read in place (no array per key).
public protocol RedisEpochPairs {
    /// Calls `body` with each key and its value (nil: delete the key), in order, the same each time it is
    /// called; the buffers are valid only during the call.
    func forEachKeyValue(_ body: (UnsafeRawBufferPointer, UnsafeRawBufferPointer?) throws -> Void) rethrows
}

/// Pairs held as arrays (tests, benchmarks).
struct RedisArrayPairs<Pairs: Sequence>: RedisEpochPairs where Pairs.Element == (key: [UInt8], value: [UInt8]?) {
    let pairs: Pairs

    func forEachKeyValue(_ body: (UnsafeRawBufferPointer, UnsafeRawBufferPointer?) throws -> Void) rethrows {
        for pair in pairs {
            try pair.key.withUnsafeBytes { key in
                if let value = pair.value {
                    try value.withUnsafeBytes { try body(key, $0) }
                } else {
                    try body(key, nil)
                }
            }
        }
    }
}

/// What a fenced write does with the marker it found, as the caller's fence decides it.
public enum RedisMarkerCheck<Refusal: Sendable>: Sendable {
    /// Write the epoch (and replace the marker).
    case write
    /// Write the epoch without its stream entries or published messages (`RedisValueLayout` `stream`, `pubsub`):
    /// an earlier write the caller did not see acknowledged sent them already. Other layouts write everything.
    case writeWithoutHistory
    /// Write nothing; the write returns `refusal`.
    case refuse(Refusal)
    /// The marker holds something the fence cannot read (`detail` says what): another program uses the key.
    case unreadable(detail: String)
}

/// Writes epochs to Redis atomically and fenced by a marker key: the caller's fence reads the marker's value
/// and decides whether the epoch applies; what the marker means (the progress fence, DESIGN §3) is the
/// engine's business, how to apply it all at once and only against the marker that was read is this type's.
///
/// How: `WATCH marker` + `GET marker`, the caller's fence, then one pipeline of `MULTI`, the `MSET`s,
/// the `DEL`s, `SET marker <new value>`, `EXEC`.
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
    private var command = RedisCommandEncoder()
    private var setCount = 0
    private var deleteCount = 0
    /// What each queued command of `sets`, then of `deletes`, returns once applied.
    private var setResults: [ExpectedResult] = []
    private var deleteResults: [ExpectedResult] = []
    /// The stream whose entries `sets` holds (`RedisValueLayout.Kind.stream`), their sequence, and the sequence of
    /// the write they build on.
    private var stream: (key: [UInt8], sequence: UInt64, base: UInt64?)?
    /// `sets` holds `PUBLISH`es only.
    private var publishes = false
    /// The epoch's values go out as `MSET`s encoded while they are sent (`sendSets`), a chunk at a time, not
    /// held in `sets` beforehand.
    private var streamsMSETs = false
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
    /// `MSET`s are sent once this many bytes of them are encoded (`sendSets`): an epoch of a million keys was a
    /// 66 MB pipeline, fresh pages the sink thread spent half its time zeroing; a chunk this size is reused, and
    /// still warm in the cache when it is written.
    static let streamedChunkBytes = 1 << 20

    public init(connection: RedisConnection, logger: Logger) {
        self.connection = connection
        self.logger = logger
    }

    /// The key holding the last applied epoch of `sink`: `eddy:<sink>:epoch`.
    public static func markerKey(sink: String) -> String { "eddy:\(sink):epoch" }

    /// The value of `sink`'s marker, `nil` when the key is absent. Throws `invalidMarker` when the key holds
    /// another type than a string.
    public func readMarker(sink: String) throws(RedisError) -> [UInt8]? {
        let key = Self.markerKey(sink: sink)
        let reply: RedisReply
        do {
            reply = try connection.command("GET", key)
        } catch where error.code == .wrongType {
            throw invalidMarker(key: key, detail: "holds a \(try typeName(of: key)), not an epoch marker")
        }
        return try marker(from: reply, key: key)
    }

    /// Applies an epoch of `sink` if and only if `check` says so of the marker's value (nil when absent), read
    /// under `WATCH` so that it is still the marker's value when the transaction runs: sets every key that
    /// has a value (absolute values, raw bytes), deletes every key whose value is `nil` (a row that left the
    /// view; a key already absent is fine), and sets the marker to `marker`, all at once. An empty `pairs`
    /// still moves the marker. Keys must be distinct within one call: sets and deletes are batched apart, so
    /// which of two pairs of one key wins is not defined.
    ///
    /// The whole epoch is one transaction, however many pairs: splitting it would let readers see half an
    /// epoch, and Redis blocks others for the same total time either way. Measured here (release build,
    /// 2 cores): a whole-view re-send of 1 000 000 keys takes about 0.6-0.9 s; `commandTimeout` must cover
    /// it. If it does not, the call throws `timeout` and the epoch is either wholly in Redis (Redis had run
    /// `EXEC`: the retry on a new connection finds the marker it wrote) or not at all (the transaction
    /// died with the closed socket).
    ///
    /// - Returns: nil when the epoch was applied, else the refusal `check` returned (nothing was written).
    /// - Throws: `outOfMemory` (nothing written; retriable; an epoch of deletes only is refused too, as it
    ///   sets the marker), `invalidMarker` (the marker holds something else), `serverUnavailable` (the marker
    ///   kept changing: another writer), `timeout`/`connectionBroken` (connection closed; a new connection's
    ///   retry is safe: a transaction still queued in Redis died with the old socket).
    ///
    /// `layout` says what the pairs become (`RedisValueLayout`). A stream's entries get IDs
    /// `<entrySequence>-1`, `-2`, …: the caller gives a sequence that grows with every write the fence lets
    /// through (Eddy: the sum of the write's source offsets) and stays equal when one point of the stream is
    /// written again. The stream's last entry is read under `WATCH` beside the marker: when its sequence is
    /// `entrySequence` or later, the entries are left out (they are there already) and the rest of the epoch
    /// applies, so a re-sent epoch adds no entry twice and no `XADD` is ever refused inside `EXEC`.
    /// `baseSequence` is the sequence of the write these pairs build on (a delta since an acknowledged write; nil
    /// for a whole view): entries after it that already carry a pair's key and value (an epoch Redis applied but
    /// the caller did not see acknowledged before a crash) are not added again.
    public func write<Pairs: RedisEpochPairs, Refusal: Sendable>(
        sink: String,
        marker: [UInt8],
        pairs: Pairs,
        layout: RedisValueLayout = .string,
        entrySequence: UInt64 = 0,
        baseSequence: UInt64? = nil,
        check: ([UInt8]?) -> RedisMarkerCheck<Refusal>
    ) throws(RedisError) -> Refusal? {
        defer { releaseLargeBuffers() }
        let markerKey = Self.markerKey(sink: sink)
        encode(pairs, layout: layout, entrySequence: entrySequence, baseSequence: baseSequence)
        let refusal = try runTransaction(markerKey: markerKey, newMarker: marker, pairs: pairs, check: check)
        logger.trace(
            "Redis epoch write",
            metadata: [
                "eddy.sink": "\(sink)", "eddy.redis.marker": "\(String(decoding: marker, as: UTF8.self))",
                "eddy.redis.sets": "\(setCount)", "eddy.redis.deletes": "\(deleteCount)",
                "eddy.redis.outcome": "\(refusal.map { "refused: \($0)" } ?? "applied")",
            ]
        )
        return refusal
    }

    /// `write(sink:marker:pairs:check:)` with the pairs as arrays.
    public func write<Pairs: Sequence, Refusal: Sendable>(
        sink: String,
        marker: [UInt8],
        pairs: Pairs,
        layout: RedisValueLayout = .string,
        entrySequence: UInt64 = 0,
        baseSequence: UInt64? = nil,
        check: ([UInt8]?) -> RedisMarkerCheck<Refusal>
    ) throws(RedisError) -> Refusal? where Pairs.Element == (key: [UInt8], value: [UInt8]?) {
        try write(
            sink: sink, marker: marker, pairs: RedisArrayPairs(pairs: pairs), layout: layout, entrySequence: entrySequence,
            baseSequence: baseSequence, check: check)
    }

    // MARK: - Transaction

    /// What a queued command returns once applied.
    enum ExpectedResult {
        /// `OK` (`MSET`, `SET`).
        case ok
        /// The number of keys removed, at most this many (`DEL`).
        case removedAtMost(Int64)
        /// Any integer (`HSET`, `EXPIRE`, `PUBLISH`).
        case integer
        /// A bulk string (`XADD`: the entry's ID).
        case entryID
    }

    /// Encodes the epoch's commands straight into their pipelines: the values' commands into `sets`, the `DEL`s
    /// (and a stream's `EXPIRE`) into `deletes`. Strings without TTL are the exception: their `MSET`s are encoded
    /// as they are sent (`sendSets`), after the pairs are counted here, so that each `MSET`'s header is known
    /// before its arguments (no second copy of the keys and values).
    private func encode<Pairs: RedisEpochPairs>(_ pairs: Pairs, layout: RedisValueLayout, entrySequence: UInt64, baseSequence: UInt64?) {
        sets.reset()
        deletes.reset()
        setResults.removeAll(keepingCapacity: true)
        deleteResults.removeAll(keepingCapacity: true)
        stream = nil
        publishes = false
        streamsMSETs = false
        (setCount, deleteCount) = (0, 0)
        var setBytes = 0
        var deleteBytes = 0
        pairs.forEachKeyValue { key, value in
            if let value {
                setCount += 1
                setBytes += key.count + value.count
            } else {
                deleteCount += 1
                deleteBytes += key.count
            }
        }
        // Room for the usual commands up front (an argument's header and line end take at most 16 bytes): grown
        // by doubling, an epoch of a million keys copied its pipeline into each larger buffer, each one fresh pages.
        deletes.reserveCapacity(deleteBytes + 16 * deleteCount)
        let ttl = layout.ttlSeconds.map { UInt64($0) }
        if case .string = layout.kind, ttl == nil {
            // Encoded while sent (`sendSets`): only their replies are known now, one `OK` per `MSET`.
            streamsMSETs = true
            sets.reserveCapacity(min(setBytes + 32 * setCount, Self.streamedChunkBytes + Self.streamedChunkBytes / 4))
            setResults.append(contentsOf: repeatElement(.ok, count: (setCount + Self.pairsPerMSET - 1) / Self.pairsPerMSET))
            encodeDELs(pairs)
            return
        }
        sets.reserveCapacity(setBytes + 32 * setCount)
        switch layout.kind {
        case .string:
            pairs.forEachKeyValue { key, value in
                guard let value else { return }
                sets.appendCommandHeader(argumentCount: 5)
                sets.appendArgument("SET")
                sets.appendArgument(key)
                sets.appendArgument(value)
                sets.appendArgument("EX")
                sets.appendArgument(ttl!)
                setResults.append(.ok)
            }
        case .hash:
            pairs.forEachKeyValue { key, value in
                guard let value, let (count, fields) = RedisValueLayout.splitHashFields(value) else { return }
                // DEL first: the hash then holds exactly these fields, whatever the key held before.
                sets.appendCommandHeader(argumentCount: 2)
                sets.appendArgument("DEL")
                sets.appendArgument(key)
                setResults.append(.removedAtMost(1))
                guard count > 0 else { return }
                sets.appendCommandHeader(argumentCount: 2 + 2 * count)
                sets.appendArgument("HSET")
                sets.appendArgument(key)
                sets.appendEncoded(fields, arguments: 2 * count)
                setResults.append(.integer)
                if let ttl { appendExpire(key, ttl, into: &sets, results: &setResults) }
            }
        case .stream(let name):
            stream = (name, entrySequence, baseSequence.flatMap { $0 < entrySequence ? $0 : nil })
            encodeEntries(pairs, skipping: [:])
            // Into `deletes`, which is always sent: the TTL holds even when the entries are there already.
            if let ttl { name.withUnsafeBytes { appendExpire($0, ttl, into: &deletes, results: &deleteResults) } }
            return
        case .pubsub(let channel):
            publishes = true
            pairs.forEachKeyValue { _, value in
                guard let value else { return }
                sets.appendCommandHeader(argumentCount: 3)
                sets.appendArgument("PUBLISH")
                sets.appendArgument(channel)
                sets.appendArgument(value)
                setResults.append(.integer)
            }
            return
        }
        encodeDELs(pairs)
    }

    /// A stream's `XADD`s into `sets`, leaving out pairs whose key's latest entry since the base (`written`)
    /// holds the same value.
    private func encodeEntries<Pairs: RedisEpochPairs>(_ pairs: Pairs, skipping written: [[UInt8]: [UInt8]]) {
        guard let stream else { return }
        sets.reset()
        setResults.removeAll(keepingCapacity: true)
        var entry: UInt64 = 0
        pairs.forEachKeyValue { key, value in
            if !written.isEmpty, let previous = written[Array(key)], previous.elementsEqual(value ?? UnsafeRawBufferPointer(start: nil, count: 0)) { return }
            entry += 1
            sets.appendCommandHeader(argumentCount: 5)
            sets.appendArgument("XADD")
            sets.appendArgument(stream.key)
            sets.appendArgument("\(stream.sequence)-\(entry)")
            sets.appendArgument(key)
            if let value { sets.appendArgument(value) } else { sets.appendArgument([UInt8]()) }
            setResults.append(.entryID)
        }
    }

    private func appendExpire(_ key: UnsafeRawBufferPointer, _ ttl: UInt64, into encoder: inout RedisCommandEncoder, results: inout [ExpectedResult]) {
        encoder.appendCommandHeader(argumentCount: 3)
        encoder.appendArgument("EXPIRE")
        encoder.appendArgument(key)
        encoder.appendArgument(ttl)
        results.append(.integer)
    }

    /// The epoch's value commands, inside the transaction: `sets` as encoded, or the `MSET`s encoded into `sets`
    /// and sent a chunk of `streamedChunkBytes` at a time (commands run across chunks: Redis reads one stream).
    private func sendSets<Pairs: RedisEpochPairs>(_ pairs: Pairs) throws(RedisError) {
        guard streamsMSETs else { return try connection.send(sets.bytes, commandName: "MULTI") }
        sets.reset()
        var setsLeft = setCount
        var setsInCommand = 0
        do {
            try pairs.forEachKeyValue { key, value in
                guard let value else { return }
                if setsInCommand == 0 {
                    setsInCommand = min(Self.pairsPerMSET, setsLeft)
                    setsLeft -= setsInCommand
                    sets.appendCommandHeader(argumentCount: 1 + 2 * setsInCommand)
                    sets.appendArgument("MSET")
                }
                sets.appendArgument(key)
                sets.appendArgument(value)
                setsInCommand -= 1
                if sets.bytes.count >= Self.streamedChunkBytes {
                    try connection.send(sets.bytes, commandName: "MULTI")
                    sets.reset()
                }
            }
        } catch let error as RedisError {
            throw error
        } catch {
            preconditionFailure("only the connection throws: \(error)")
        }
        if !sets.bytes.isEmpty { try connection.send(sets.bytes, commandName: "MULTI") }
    }

    private func encodeDELs<Pairs: RedisEpochPairs>(_ pairs: Pairs) {
        var deletesLeft = deleteCount
        var deletesInCommand = 0
        pairs.forEachKeyValue { key, value in
            guard value == nil else { return }
            if deletesInCommand == 0 {
                deletesInCommand = min(Self.keysPerDEL, deletesLeft)
                deletesLeft -= deletesInCommand
                deletes.appendCommandHeader(argumentCount: 1 + deletesInCommand)
                deletes.appendArgument("DEL")
                deleteResults.append(.removedAtMost(Int64(deletesInCommand)))
            }
            deletes.appendArgument(key)
            deletesInCommand -= 1
        }
    }

    private func runTransaction<Pairs: RedisEpochPairs, Refusal: Sendable>(
        markerKey: String, newMarker: [UInt8], pairs: Pairs, check: ([UInt8]?) -> RedisMarkerCheck<Refusal>
    ) throws(RedisError) -> Refusal? {
        for _ in 0..<Self.transactionAttempts {
            // 1. Watch the marker and read it: EXEC below applies nothing if anyone changes it meanwhile.
            // A stream is watched too, and its last entry read: entries of this sequence or later are there already.
            command.reset()
            command.appendCommandHeader(argumentCount: stream == nil ? 2 : 3)
            command.appendArgument("WATCH")
            command.appendArgument(markerKey)
            if let stream { command.appendArgument(stream.key) }
            command.appendCommandHeader(argumentCount: 2)
            command.appendArgument("GET")
            command.appendArgument(markerKey)
            if let stream {
                command.appendCommand([Array("XREVRANGE".utf8), stream.key, [UInt8(ascii: "+")], [UInt8(ascii: "-")], Array("COUNT".utf8), [UInt8(ascii: "1")]])
                if let base = stream.base { command.appendCommand([Array("XRANGE".utf8), stream.key, Array("\(base + 1)".utf8), [UInt8(ascii: "+")]]) }
            }
            try connection.send(command.bytes, commandName: "WATCH + GET")
            // Every reply is read before any is checked: an error from WATCH (a user without the
            // permission) must not leave GET's reply unread, out of step for the next command.
            let watchReply = try connection.receive(commandName: "WATCH")
            let markerReply = try connection.receive(commandName: "GET")
            let streamReply = stream == nil ? nil : try connection.receive(commandName: "XREVRANGE")
            let sinceBaseReply = stream?.base == nil ? nil : try connection.receive(commandName: "XRANGE")
            _ = try watchReply.checked(by: connection, commandName: "WATCH")
            let marker: [UInt8]?
            var entriesPresent = false
            do throws(RedisError) {
                if case .error(let message) = markerReply, message.hasPrefix("WRONGTYPE") {
                    throw invalidMarker(key: markerKey, detail: "holds a \(try typeName(of: markerKey)), not an epoch marker")
                }
                marker = try self.marker(from: markerReply.checked(by: connection, commandName: "GET"), key: markerKey)
                if let stream, let streamReply {
                    entriesPresent = try lastEntrySequence(streamReply, stream: stream.key).map { $0 >= stream.sequence } ?? false
                    if !entriesPresent, let sinceBaseReply {
                        // Usually none: entries after the base exist only when an applied write went unacknowledged.
                        let written = try latestValues(sinceBaseReply, stream: stream.key)
                        if !written.isEmpty { encodeEntries(pairs, skipping: written) }
                    }
                }
            } catch {
                try unwatch()
                throw error
            }
            switch check(marker) {
            case .write:
                break
            case .writeWithoutHistory:
                if stream != nil || publishes { entriesPresent = true }
            case .refuse(let refusal):
                try unwatch()
                return refusal
            case .unreadable(let detail):
                try unwatch()
                throw invalidMarker(key: markerKey, detail: detail)
            }
            afterMarkerRead?()

            // 2. MULTI, the MSETs, the DELs, the marker, EXEC: one pipeline, in pieces (hiredis appends the small
            // ones to its output buffer; `send` writes large ones to the socket itself), so that the keys and
            // values are not copied again.
            command.reset()
            command.appendCommandHeader(argumentCount: 1)
            command.appendArgument("MULTI")
            try connection.send(command.bytes, commandName: "MULTI")
            if !entriesPresent { try sendSets(pairs) }
            try connection.send(deletes.bytes, commandName: "MULTI")
            command.reset()
            command.appendCommandHeader(argumentCount: 3)
            command.appendArgument("SET")
            command.appendArgument(markerKey)
            command.appendArgument(newMarker)
            command.appendCommandHeader(argumentCount: 1)
            command.appendArgument("EXEC")
            try connection.send(command.bytes, commandName: "EXEC")

            let name = "the epoch write (MULTI/EXEC)"
            _ = try connection.receive(commandName: "MULTI").checked(by: connection, commandName: "MULTI")
            var refusedWhileQueued: String?
            let sentResults = (entriesPresent ? 0 : setResults.count) + deleteResults.count
            if entriesPresent {
                logger.debug("the stream holds this write's entries already; writing the rest of the epoch", metadata: ["eddy.redis.key": "\(String(decoding: stream?.key ?? [], as: UTF8.self))"])
            }
            for _ in 0..<(sentResults + 1) {
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
            case .array(let results) where results.count == sentResults + 1:
                if let failed = firstUnexpectedResult(results, entriesSent: !entriesPresent) {
                    // No queued command fails once the key types are right; if one ever did, say so plainly.
                    throw RedisError(
                        code: .serverError,
                        reason: "Redis at \(connection.url.address) applied the epoch write only in part (command \(failed + 2) of the transaction returned \(results[failed].summary))",
                        isRetriable: false, breaksConnection: false
                    )
                }
                return nil
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

    /// The index of the first `EXEC` result that is not what its command returns once applied (`ExpectedResult`;
    /// the marker's `SET` last: `OK`).
    private func firstUnexpectedResult(_ results: [RedisReply], entriesSent: Bool) -> Int? {
        let expected = (entriesSent ? setResults : []) + deleteResults + [.ok]
        for (index, (result, expectation)) in zip(results, expected).enumerated() {
            switch (expectation, result) {
            case (.ok, .status("OK")), (.integer, .integer), (.entryID, .string): continue
            case (.removedAtMost(let named), .integer(let removed)) where (0...named).contains(removed): continue
            default: return index
            }
        }
        return nil
    }

    /// Per field, the value of its latest entry, from `XRANGE` (entries of one field and value each).
    private func latestValues(_ reply: RedisReply, stream key: [UInt8]) throws(RedisError) -> [[UInt8]: [UInt8]] {
        guard case .array(let entries) = try reply.checked(by: connection, commandName: "XRANGE") else {
            throw connection.breakingProtocolError("XRANGE \(String(decoding: key, as: UTF8.self)) returned \(reply.summary)")
        }
        var latest: [[UInt8]: [UInt8]] = [:]
        for entry in entries {
            guard case .array(let parts) = entry, parts.count == 2, case .array(let fields) = parts[1] else { continue }
            var index = 0
            while index + 1 < fields.count {
                if case .string(let field) = fields[index], case .string(let value) = fields[index + 1] { latest[field] = value }
                index += 2
            }
        }
        return latest
    }

    /// The sequence (the part before `-`) of a stream's last entry, from `XREVRANGE key + - COUNT 1`; nil when
    /// the stream is empty or absent.
    private func lastEntrySequence(_ reply: RedisReply, stream key: [UInt8]) throws(RedisError) -> UInt64? {
        let name = String(decoding: key, as: UTF8.self)
        if case .error(let message) = reply, message.hasPrefix("WRONGTYPE") {
            throw RedisError(
                code: .serverError,
                reason: "stream key \(name) on Redis at \(connection.url.address) holds a \(try typeName(of: name)), not a stream: another program uses this key",
                isRetriable: false, breaksConnection: false)
        }
        switch try reply.checked(by: connection, commandName: "XREVRANGE") {
        case .array(let entries) where entries.isEmpty:
            return nil
        case .array(let entries):
            guard case .array(let entry) = entries[0], case .string(let id)? = entry.first,
                let sequence = UInt64(String(decoding: id.prefix { $0 != UInt8(ascii: "-") }, as: UTF8.self))
            else { throw connection.breakingProtocolError("XREVRANGE \(name) returned an entry without an ID") }
            return sequence
        case let other:
            throw connection.breakingProtocolError("XREVRANGE \(name) returned \(other.summary)")
        }
    }

    private func unwatch() throws(RedisError) {
        _ = try connection.command("UNWATCH")
    }

    // MARK: - Shared

    private func marker(from reply: RedisReply, key: String) throws(RedisError) -> [UInt8]? {
        switch reply {
        case .null:
            return nil
        case .string(let bytes):
            return bytes
        default:
            throw connection.breakingProtocolError("GET \(key) returned \(reply.summary)")
        }
    }

    private func typeName(of key: String) throws(RedisError) -> String {
        try connection.command("TYPE", key).text ?? "value of another type"
    }

    /// The error for a marker that holds something else: `detail` says what.
    public func invalidMarker(key: String, detail: String) -> RedisError {
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
            command = RedisCommandEncoder()
        }
    }
}
