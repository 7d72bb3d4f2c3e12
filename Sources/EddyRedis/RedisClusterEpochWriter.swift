import Logging

#if canImport(Glibc)
import Glibc
#endif

/// Writes epochs to a Redis Cluster, fenced and atomic per hash slot (docs/redis-cluster.md): one marker per
/// slot in use, `markerKey(sink:slot:)`, tagged into the slot of the keys it fences.
///
/// How, per write: the pairs are split by slot; per master, one pipeline of `GET`s of the touched slots'
/// markers; the caller's `check` decides per slot (the same fence as standalone); then one pipeline of
/// `EVALSHA`s of `script`, one per slot to write: *if the marker still holds what was read, apply the slot's
/// commands and set the marker, else return the marker* — `WATCH` + `MULTI`/`EXEC` in one step, which a cluster
/// needs because `WATCH` cannot span the several transactions of several slots on one connection. A slot whose
/// marker moved meanwhile is read and decided again.
///
/// What a reader sees: every key of one slot moves from one epoch to the next at once, with its marker (the
/// script runs alone). Across slots an epoch appears slot by slot: mid-epoch a reader of two keys in different
/// slots may see one at epoch *e* and the other at *e − 1*; no key moves backwards (the fence), and once `write`
/// returns without refusals every touched slot holds the epoch. A cluster client cannot read two slots
/// atomically anyway (`MGET` across slots is `CROSSSLOT`).
///
/// All or nothing per slot: every key of the slot is declared to the script (`KEYS`), so during a resharding the
/// cluster redirects or refuses the whole call (`ASK`, `TRYAGAIN`) before it runs, never a part of it; under
/// `maxmemory` the script's first write is refused (`OOM`) before anything is written, and Redis lets a script
/// that has written go on; `SET`, `DEL`, `HSET` after `DEL` and `EXPIRE` cannot fail on a key of any type.
///
/// Routing: the slot map comes from `CLUSTER SLOTS` of a known node (the seeds, then the masters seen); it is
/// read again after `MOVED` and after a master's connection fails (a failover). `ASK` sends that slot's
/// commands to the named node once, after `ASKING`. `CLUSTERDOWN`, `TRYAGAIN`, `LOADING`, refused connections:
/// the slot is tried again after a short pause. Each call tries at most `rounds` times, then throws the last
/// error (retriable): the caller's own retry loop goes on with backoff. `NOSCRIPT` (a master that restarted or
/// a replica promoted without the script) loads the script again.
///
/// Stream and pubsub layouts are refused (`unsupported`): they need reads of the stream beside the marker and
/// have one key (or none) for the whole epoch, so they gain nothing from a cluster.
///
/// **Thread:** one thread at a time (the sink's); owns one connection per master, made on first use and again
/// after any error that breaks it.
public final class RedisClusterEpochWriter: @unchecked Sendable {
    /// The nodes asked for the slot map first, as configured (their credentials and TLS apply to every node).
    public let seeds: [RedisURL]
    private let connectTimeout: Duration
    private let commandTimeout: Duration
    private let clientName: String?
    private let logger: Logger

    /// The slot map in use; nil until read, and again after `MOVED` or a failed master.
    public private(set) var topology: RedisClusterTopology?
    private var connections: [RedisClusterNode: RedisConnection] = [:]
    /// `SCRIPT LOAD`'s answer: the script's SHA1 (the same on every node).
    private var scriptSHA: [UInt8]?

    // The epoch being written, split by slot without an array per key: every pair's key and commands are encoded
    // once into `body`; `records` says where, `order` lists the records slot by slot (a counting sort), and
    // `slotStart[s] ..< slotStart[s + 1]` is slot s's part of `order`.
    private var body = RedisCommandEncoder()
    private var records: [PairRecord] = []
    private var order: [Int32] = []
    private var slotStart = [Int32](repeating: 0, count: RedisHashSlot.count + 1)
    /// The slots the last `write` call touched (those of its keys), in slot order.
    public private(set) var touchedSlots: [RedisHashSlot] = []
    private var command = RedisCommandEncoder()

    /// Tests only: runs after the markers of one round were read and decided, before the scripts are sent.
    var afterMarkerRead: (() -> Void)?

    /// How many rounds (read markers, decide, compare-and-set) one call makes before giving up: redirects,
    /// failovers and markers moved by another writer each cost a round.
    static let rounds = 8
    /// The pause before a round after a retriable refusal (`CLUSTERDOWN`, `TRYAGAIN`, a refused connection),
    /// doubled each time: the rounds of one call wait about 6 s in all, about a failover's detection time.
    static let firstPause = Duration.milliseconds(50)
    static let maximumPause = Duration.seconds(2)
    /// Lua's `unpack` fails beyond about 8,000 values: the most arguments one command of the script may have.
    static let maximumCommandArguments = 7_000
    /// Buffers grown past this (a whole-view re-send) are released after the write instead of kept.
    private static let retainedBufferBytes = 32 << 20

    /// The compare-and-set. `KEYS[1]` the marker, `KEYS[2…]` the slot's keys in order; `ARGV[1]` the marker that
    /// was read (`=` + value, or `-` when absent), `ARGV[2]` the new marker, then per key: its number of commands,
    /// and per command its number of words, its name and its arguments after the key (the key is `KEYS[n]`).
    /// Returns `{1}` when applied, `{0}` or `{0, marker}` when the marker no longer holds what was read.
    static let script = """
        local current = redis.call('GET', KEYS[1])
        local expected = ARGV[1]
        if current then
          if expected ~= '=' .. current then return {0, current} end
        elseif expected ~= '-' then
          return {0}
        end
        local count = #ARGV
        local i = 3
        local k = 1
        while i <= count do
          k = k + 1
          local key = KEYS[k]
          local commands = tonumber(ARGV[i])
          i = i + 1
          for _ = 1, commands do
            local words = tonumber(ARGV[i])
            redis.call(ARGV[i + 1], key, unpack(ARGV, i + 2, i + words))
            i = i + words + 1
          end
        end
        redis.call('SET', KEYS[1], ARGV[2])
        return {1}
        """

    public init(seeds: [RedisURL], connectTimeout: Duration, commandTimeout: Duration, clientName: String? = nil, logger: Logger) {
        precondition(!seeds.isEmpty, "a Redis Cluster writer needs at least one node")
        self.seeds = seeds
        self.connectTimeout = connectTimeout
        self.commandTimeout = commandTimeout
        self.clientName = clientName
        self.logger = logger
    }

    deinit { close() }

    /// The marker of `sink` in `slot`: `eddy:{<tag>}:<sink>:epoch`. The tag comes first so that no brace in a sink
    /// name can change which part Redis hashes.
    public static func markerKey(sink: String, slot: RedisHashSlot) -> String { "eddy:{\(slot.hashTag)}:\(sink):epoch" }

    /// Closes every connection (a later call connects again).
    public func close() {
        for connection in connections.values { connection.close() }
        connections.removeAll()
        loadedOn.removeAll()
    }

    /// Reads the slot map from the seeds (again): connects, logs in, and fails when no node answers, so that a
    /// caller learns at start whether the cluster is reachable, before any slot is in use.
    public func connect() throws(RedisError) {
        mapIsStale = true
        try refreshTopology()
    }

    /// The markers of `sink` in `slots` (absent ones left out).
    public func readMarkers(sink: String, slots: some Sequence<RedisHashSlot>) throws(RedisError) -> [RedisHashSlot: [UInt8]] {
        var markers: [RedisHashSlot: [UInt8]] = [:]
        var pending = Set(slots)
        var lastError: RedisError?
        for round in 0..<Self.rounds {
            if pending.isEmpty { return markers }
            if round > 0 { pause(round) }
            let plan: [(Route, [RedisHashSlot])]
            do throws(RedisError) { plan = try routes(for: pending.sorted()) } catch where error.isRetriable {
                lastError = error
                continue
            }
            for (node, slots) in plan {
                do throws(RedisError) {
                    let read = try readMarkerReplies(sink: sink, slots: slots, on: node)
                    for (slot, outcome) in zip(slots, read) {
                        switch outcome {
                        case .success(let marker):
                            pending.remove(slot)
                            if let marker { markers[slot] = marker }
                        case .failure(let error):
                            lastError = try handle(error, slot: slot)
                        }
                    }
                } catch {
                    lastError = try handleBroken(error, node: node)
                }
            }
        }
        if pending.isEmpty { return markers }
        throw gaveUp(lastError, slots: pending.count, doing: "reading the markers")
    }

    /// Applies an epoch of `sink` slot by slot, each slot if and only if `check` says so of that slot's marker
    /// (nil when absent): per slot, sets every key that has a value and deletes every key without one, and sets the
    /// marker to `marker`, all at once (see the type's notes for what a reader sees across slots). Keys must be
    /// distinct within one call. Slots without a key are not touched: an empty `pairs` writes nothing.
    ///
    /// - Returns: the refusals `check` returned, by slot; empty when every touched slot applied the epoch. The
    ///   epoch is in Redis as a whole once every touched slot either applied it or refused because its marker
    ///   already held it: the caller acknowledges only then. Slots not refused applied it even when others refused.
    /// - Throws: `invalidMarker` (`check` said `unreadable`, or a marker holds another type), `unsupported` (a
    ///   stream or pubsub layout, a command with more than `maximumCommandArguments` arguments), `outOfMemory`,
    ///   `serverUnavailable` (the cluster is down for a slot, or a marker kept changing: another writer), a
    ///   connection's errors — all after `rounds` tries at most. Slots written before the error keep the epoch;
    ///   calling again with the same epoch finds their markers equal.
    public func write<Pairs: RedisEpochPairs, Refusal: Sendable>(
        sink: String,
        marker: [UInt8],
        pairs: Pairs,
        layout: RedisValueLayout = .string,
        check: (RedisHashSlot, [UInt8]?) -> RedisMarkerCheck<Refusal>
    ) throws(RedisError) -> [RedisHashSlot: Refusal] {
        defer { releaseLargeBuffers() }
        try encode(pairs, layout: layout)
        var refusals: [RedisHashSlot: Refusal] = [:]
        var pending = Set(touchedSlots)
        var markerMoves = 0
        var lastError: RedisError?
        for round in 0..<Self.rounds {
            if pending.isEmpty { break }
            if round > 0 { pause(round) }
            let plan: [(Route, [RedisHashSlot])]
            do throws(RedisError) { plan = try routes(for: pending.sorted()) } catch where error.isRetriable {
                lastError = error
                continue
            }
            var toWrite: [(node: Route, slots: [(slot: RedisHashSlot, read: [UInt8]?)])] = []
            // 1. Per master, the markers; the fence decides each slot.
            for (node, slots) in plan {
                var writes: [(slot: RedisHashSlot, read: [UInt8]?)] = []
                do throws(RedisError) {
                    let read = try readMarkerReplies(sink: sink, slots: slots, on: node)
                    for (slot, outcome) in zip(slots, read) {
                        switch outcome {
                        case .failure(let error):
                            lastError = try handle(error, slot: slot)
                        case .success(let current):
                            switch check(slot, current) {
                            case .write, .writeWithoutHistory:
                                writes.append((slot, current))
                            case .refuse(let refusal):
                                refusals[slot] = refusal
                                pending.remove(slot)
                            case .unreadable(let detail):
                                throw invalidMarker(key: Self.markerKey(sink: sink, slot: slot), node: node.node, detail: detail)
                            }
                        }
                    }
                } catch where error.code == .invalidMarker {
                    throw error
                } catch {
                    lastError = try handleBroken(error, node: node)
                }
                if !writes.isEmpty { toWrite.append((node, writes)) }
            }
            afterMarkerRead?()
            // 2. Per master, one compare-and-set per slot.
            for (node, slots) in toWrite {
                do throws(RedisError) {
                    let outcomes = try compareAndSet(sink: sink, marker: marker, slots: slots, on: node)
                    for ((slot, _), outcome) in zip(slots, outcomes) {
                        switch outcome {
                        case .success(true):
                            pending.remove(slot)
                        case .success(false):
                            markerMoves += 1
                            logger.debug("Redis epoch marker changed before its slot was written; reading it again", metadata: ["eddy.redis.slot": "\(slot)"])
                        case .failure(let error):
                            lastError = try handle(error, slot: slot)
                        }
                    }
                } catch {
                    lastError = try handleBroken(error, node: node)
                }
            }
        }
        logger.trace(
            "Redis Cluster epoch write",
            metadata: [
                "eddy.sink": "\(sink)", "eddy.redis.marker": "\(String(decoding: marker, as: UTF8.self))",
                "eddy.redis.slots": "\(touchedSlots.count)", "eddy.redis.refusedSlots": "\(refusals.count)",
                "eddy.redis.pendingSlots": "\(pending.count)",
            ]
        )
        guard pending.isEmpty else {
            if lastError == nil, markerMoves > 0 {
                throw RedisError(
                    code: .serverUnavailable,
                    reason: "epoch markers of \(pending.count) slots changed during the write \(markerMoves) times: another writer is using sink \(sink)",
                    isRetriable: true, breaksConnection: false)
            }
            throw gaveUp(lastError, slots: pending.count, doing: "writing the epoch")
        }
        return refusals
    }

    /// `write(sink:marker:pairs:layout:check:)` with the pairs as arrays.
    public func write<Pairs: Sequence, Refusal: Sendable>(
        sink: String,
        marker: [UInt8],
        pairs: Pairs,
        layout: RedisValueLayout = .string,
        check: (RedisHashSlot, [UInt8]?) -> RedisMarkerCheck<Refusal>
    ) throws(RedisError) -> [RedisHashSlot: Refusal] where Pairs.Element == (key: [UInt8], value: [UInt8]?) {
        try write(sink: sink, marker: marker, pairs: RedisArrayPairs(pairs: pairs), layout: layout, check: check)
    }

    // MARK: - Encoding

    /// Where one pair's encoded key and script arguments are in `body`.
    private struct PairRecord {
        var slot: UInt16
        /// The key as one bulk string: `keyStart ..< argumentsStart`; its script arguments up to `end`.
        var keyStart: Int
        var argumentsStart: Int
        var end: Int
        var argumentCount: Int
    }

    private func encode<Pairs: RedisEpochPairs>(_ pairs: Pairs, layout: RedisValueLayout) throws(RedisError) {
        switch layout.kind {
        case .string, .hash: break
        case .stream, .pubsub:
            throw RedisError(
                code: .unsupported, reason: "a Redis Cluster sink writes string and hash values only (streams and pubsub need a single Redis server)",
                isRetriable: false, breaksConnection: false)
        }
        body.reset()
        records.removeAll(keepingCapacity: true)
        let ttl = layout.ttlSeconds.map { UInt64($0) }
        var tooLong: Int?
        pairs.forEachKeyValue { key, value in
            let keyStart = body.bytes.count
            body.appendArgument(key)
            let argumentsStart = body.bytes.count
            let argumentsBefore = body.argumentCount
            switch (layout.kind, value) {
            case (_, nil):
                body.appendArgument(1)
                body.appendArgument(1)
                body.appendArgument("DEL")
            case (.hash, let value?):
                guard let (count, fields) = RedisValueLayout.splitHashFields(value) else { return }
                if 2 * count + 1 > Self.maximumCommandArguments { tooLong = 2 * count }
                // DEL first: the hash then holds exactly these fields, whatever the key held before.
                body.appendArgument(UInt64(1 + (count > 0 ? 1 : 0) + (count > 0 && ttl != nil ? 1 : 0)))
                body.appendArgument(1)
                body.appendArgument("DEL")
                if count > 0 {
                    body.appendArgument(UInt64(1 + 2 * count))
                    body.appendArgument("HSET")
                    body.appendEncoded(fields, arguments: 2 * count)
                    if let ttl {
                        body.appendArgument(2)
                        body.appendArgument("EXPIRE")
                        body.appendArgument(ttl)
                    }
                }
            case (_, let value?):
                body.appendArgument(1)
                body.appendArgument(ttl == nil ? 2 : 4)
                body.appendArgument("SET")
                body.appendArgument(value)
                if let ttl {
                    body.appendArgument("EX")
                    body.appendArgument(ttl)
                }
            }
            records.append(PairRecord(
                slot: UInt16(RedisHashSlot(key: key).value), keyStart: keyStart, argumentsStart: argumentsStart, end: body.bytes.count,
                argumentCount: body.argumentCount - argumentsBefore))
        }
        if let tooLong {
            throw RedisError(
                code: .unsupported,
                reason: "a hash value with \(tooLong / 2) fields is more than a Redis Cluster sink writes in one command (\(Self.maximumCommandArguments / 2) fields)",
                isRetriable: false, breaksConnection: false)
        }
        // Counting sort of the records by slot.
        for index in slotStart.indices { slotStart[index] = 0 }
        for record in records { slotStart[Int(record.slot) + 1] += 1 }
        touchedSlots.removeAll(keepingCapacity: true)
        for slot in 0..<RedisHashSlot.count {
            if slotStart[slot + 1] > 0 { touchedSlots.append(RedisHashSlot(slot)) }
            slotStart[slot + 1] += slotStart[slot]
        }
        var next = slotStart
        order = [Int32](repeating: 0, count: records.count)
        for (index, record) in records.enumerated() {
            order[Int(next[Int(record.slot)])] = Int32(index)
            next[Int(record.slot)] += 1
        }
    }

    // MARK: - Rounds

    /// A node and whether each command to it goes after `ASKING` (a slot being migrated there).
    private struct Route: Hashable {
        var node: RedisClusterNode
        var asking: Bool
    }

    /// Slots the cluster sent elsewhere for one command (`ASK`), until that command was sent there.
    private var askedNodes: [RedisHashSlot: RedisClusterNode] = [:]
    /// Whether the slot map must be read again before the next round.
    private var mapIsStale = true

    /// The slots grouped by the node to send them to, in slot order.
    private func routes(for slots: [RedisHashSlot]) throws(RedisError) -> [(Route, [RedisHashSlot])] {
        if mapIsStale || topology == nil { try refreshTopology() }
        guard let topology else { return [] }
        var grouped: [Route: [RedisHashSlot]] = [:]
        for slot in slots {
            if let asked = askedNodes.removeValue(forKey: slot) {
                grouped[Route(node: asked, asking: true), default: []].append(slot)
            } else if let master = topology.master(of: slot) {
                grouped[Route(node: master, asking: false), default: []].append(slot)
            } else {
                mapIsStale = true  // Unserved for now (CLUSTERDOWN): asked again next round.
            }
        }
        return grouped.sorted { ($0.value.first ?? RedisHashSlot(0)) < ($1.value.first ?? RedisHashSlot(0)) }.map { ($0.key, $0.value) }
    }

    /// Reads the slot map from the first node that answers: the masters known, then the seeds.
    private func refreshTopology() throws(RedisError) {
        var candidates = (topology?.shards.map(\.master) ?? []) + seeds.map { RedisClusterNode(host: $0.host, port: $0.port) }
        candidates.append(contentsOf: topology?.shards.flatMap(\.replicas) ?? [])
        var seen = Set<RedisClusterNode>()
        var lastError: RedisError?
        for node in candidates where seen.insert(node).inserted {
            do throws(RedisError) {
                let connection = try connection(to: node)
                let map = try RedisClusterTopology(clusterSlots: connection.command("CLUSTER", "SLOTS"), askedHost: node.host)
                if map.unservedSlotCount == RedisHashSlot.count { continue }  // A node that lost its cluster.
                if map != topology { logger.debug("Redis Cluster slot map read", metadata: ["eddy.redis.server": "\(node)", "eddy.redis.masters": "\(map.shards.count)"]) }
                topology = map
                mapIsStale = false
                // Connections to nodes that no longer serve slots are dropped.
                let masters = Set(map.shards.map(\.master))
                for (known, connection) in connections where !masters.contains(known) {
                    loadedOn.remove(ObjectIdentifier(connection))
                    connection.close()
                    connections[known] = nil
                }
                return
            } catch {
                lastError = error
                if let connection = connections.removeValue(forKey: node) {
                    loadedOn.remove(ObjectIdentifier(connection))
                    connection.close()
                }
            }
        }
        throw RedisError(
            code: lastError?.code ?? .connectionFailed,
            reason: "no node of the Redis Cluster (\(seeds.map(\.address).joined(separator: ", "))) told its slot map: \(lastError?.reason ?? "no node answered")",
            isRetriable: true, breaksConnection: true)
    }

    private func connection(to node: RedisClusterNode) throws(RedisError) -> RedisConnection {
        if let connection = connections[node], connection.isOpen { return connection }
        var url = seeds[0]
        url.host = node.host
        url.port = node.port
        url.database = 0  // A cluster has database 0 only.
        let connection = try RedisConnection.connect(url: url, connectTimeout: connectTimeout, commandTimeout: commandTimeout, clientName: clientName, logger: logger)
        connections[node] = connection
        return connection
    }

    /// The marker of each slot as `node` answers it (its `GET`s in one pipeline); a reply that says to go
    /// elsewhere or try later is that slot's failure. Throws when the connection fails or a marker is unreadable.
    private func readMarkerReplies(sink: String, slots: [RedisHashSlot], on route: Route) throws(RedisError) -> [Result<[UInt8]?, RedisError>] {
        let connection = try connection(to: route.node)
        command.reset()
        for slot in slots {
            if route.asking { command.appendCommand([Array("ASKING".utf8)]) }
            command.appendCommandHeader(argumentCount: 2)
            command.appendArgument("GET")
            command.appendArgument(Self.markerKey(sink: sink, slot: slot))
        }
        try connection.send(command.bytes, commandName: "GET (epoch markers)")
        var replies: [RedisReply] = []
        replies.reserveCapacity(slots.count)
        for _ in slots {
            if route.asking { _ = try connection.receive(commandName: "ASKING") }
            replies.append(try connection.receive(commandName: "GET (epoch markers)"))
        }
        var outcomes: [Result<[UInt8]?, RedisError>] = []
        outcomes.reserveCapacity(slots.count)
        for (slot, reply) in zip(slots, replies) {
            let key = Self.markerKey(sink: sink, slot: slot)
            switch reply {
            case .null: outcomes.append(.success(nil))
            case .string(let bytes): outcomes.append(.success(bytes))
            case .error(let message) where message.hasPrefix("WRONGTYPE"):
                throw invalidMarker(key: key, node: route.node, detail: "holds another type than a string")
            case .error(let message): outcomes.append(.failure(connection.serverError(message, commandName: "GET \(key)")))
            default: throw connection.breakingProtocolError("GET \(key) returned \(reply.summary)")
            }
        }
        return outcomes
    }

    /// One `EVALSHA` per slot, in one pipeline: true when the slot applied, false when its marker had moved.
    private func compareAndSet(
        sink: String, marker: [UInt8], slots: [(slot: RedisHashSlot, read: [UInt8]?)], on route: Route
    ) throws(RedisError) -> [Result<Bool, RedisError>] {
        let connection = try connection(to: route.node)
        let sha = try loadedScript(on: connection)
        command.reset()
        for (slot, read) in slots {
            if route.asking { command.appendCommand([Array("ASKING".utf8)]) }
            appendCompareAndSet(sink: sink, slot: slot, expected: read, marker: marker, sha: sha)
        }
        // Large epochs: the keys and values go to hiredis straight from `command`; nothing else holds them.
        try connection.send(command.bytes, commandName: "EVALSHA (epoch write)")
        var replies: [RedisReply] = []
        for _ in slots {
            if route.asking { _ = try connection.receive(commandName: "ASKING") }
            replies.append(try connection.receive(commandName: "EVALSHA (epoch write)"))
        }
        var outcomes: [Result<Bool, RedisError>] = []
        for ((slot, _), reply) in zip(slots, replies) {
            switch reply {
            case .array(let parts) where parts.first == .integer(1): outcomes.append(.success(true))
            case .array(let parts) where parts.first == .integer(0): outcomes.append(.success(false))
            case .error(let message) where message.hasPrefix("NOSCRIPT"):
                scriptSHA = nil
                outcomes.append(.failure(RedisError(code: .serverUnavailable, reason: "Redis at \(route.node) lost the epoch script (\(message))", isRetriable: true, breaksConnection: false)))
            case .error(let message):
                outcomes.append(.failure(connection.serverError(message, commandName: "the epoch write of slot \(slot) (EVALSHA)")))
            default:
                throw connection.breakingProtocolError("the epoch write of slot \(slot) returned \(reply.summary)")
            }
        }
        return outcomes
    }

    private func appendCompareAndSet(sink: String, slot: RedisHashSlot, expected: [UInt8]?, marker: [UInt8], sha: [UInt8]) {
        let range = Int(slotStart[slot.value])..<Int(slotStart[slot.value + 1])
        var scriptArguments = 0
        for position in range { scriptArguments += records[Int(order[position])].argumentCount }
        command.appendCommandHeader(argumentCount: 3 + 1 + range.count + 2 + scriptArguments)
        command.appendArgument("EVALSHA")
        command.appendArgument(sha)
        command.appendArgument(UInt64(1 + range.count))
        command.appendArgument(Self.markerKey(sink: sink, slot: slot))
        body.bytes.withUnsafeBytes { body in
            for position in range {
                let record = records[Int(order[position])]
                command.appendEncoded(UnsafeRawBufferPointer(rebasing: body[record.keyStart..<record.argumentsStart]), arguments: 1)
            }
            if let expected { command.appendArgument([UInt8(ascii: "=")] + expected) } else { command.appendArgument("-") }
            command.appendArgument(marker)
            for position in range {
                let record = records[Int(order[position])]
                command.appendEncoded(UnsafeRawBufferPointer(rebasing: body[record.argumentsStart..<record.end]), arguments: record.argumentCount)
            }
        }
    }

    /// The script's SHA1 on `connection`'s node, loading it there when it is not known yet (`SCRIPT LOAD` is
    /// idempotent: loading again on a node that has it costs one round trip).
    private func loadedScript(on connection: RedisConnection) throws(RedisError) -> [UInt8] {
        if let scriptSHA, loadedOn.contains(ObjectIdentifier(connection)) { return scriptSHA }
        guard case .string(let sha) = try connection.command("SCRIPT", "LOAD", Self.script) else {
            throw connection.breakingProtocolError("SCRIPT LOAD did not return the script's SHA1")
        }
        scriptSHA = sha
        loadedOn.insert(ObjectIdentifier(connection))
        return sha
    }

    /// Connections the script was loaded on (since the last `NOSCRIPT`).
    private var loadedOn = Set<ObjectIdentifier>()

    // MARK: - Errors

    /// What one slot's error means for the next round: returns it as the last error when the slot may be tried
    /// again, throws it otherwise.
    private func handle(_ error: RedisError, slot: RedisHashSlot) throws(RedisError) -> RedisError {
        if let redirect = error.clusterRedirect {
            switch redirect.kind {
            case .moved: mapIsStale = true
            case .ask: askedNodes[slot] = redirect.node
            }
            return error
        }
        if error.code == .serverUnavailable {
            if error.reason.contains("lost the epoch script") { loadedOn.removeAll() }
            if error.reason.contains("CLUSTERDOWN") { mapIsStale = true }
            return error
        }
        throw error
    }

    /// A node whose connection failed: dropped, and the map read again (its master may have failed over).
    private func handleBroken(_ error: RedisError, node route: Route) throws(RedisError) -> RedisError {
        guard error.breaksConnection else { throw error }
        if let connection = connections.removeValue(forKey: route.node) {
            loadedOn.remove(ObjectIdentifier(connection))
            connection.close()
        }
        mapIsStale = true
        return error
    }

    private func gaveUp(_ error: RedisError?, slots: Int, doing what: String) -> RedisError {
        var error = error ?? RedisError(code: .serverUnavailable, reason: "the Redis Cluster serves no master for some slots", isRetriable: true, breaksConnection: false)
        error.reason = "Redis Cluster: \(slots) slots still unwritten after \(Self.rounds) tries \(what): \(error.reason)"
        error.isRetriable = true
        return error
    }

    private func invalidMarker(key: String, node: RedisClusterNode, detail: String) -> RedisError {
        RedisError(
            code: .invalidMarker, reason: "epoch marker \(key) on Redis at \(node) \(detail): another program uses this key",
            isRetriable: false, breaksConnection: false)
    }

    /// Blocks the sink's thread before round `round` (1, 2, …): the cluster needs time to fail over or finish a
    /// migration, and the thread has nothing else to do meanwhile.
    private func pause(_ round: Int) {
        var pause = Self.firstPause
        for _ in 1..<max(1, round) { pause = min(pause * 2, Self.maximumPause) }
        usleep(UInt32(pause / .microseconds(1)))
    }

    private func releaseLargeBuffers() {
        if body.bytes.capacity + command.bytes.capacity > Self.retainedBufferBytes {
            body = RedisCommandEncoder()
            command = RedisCommandEncoder()
            records = []
            order = []
        }
    }
}
