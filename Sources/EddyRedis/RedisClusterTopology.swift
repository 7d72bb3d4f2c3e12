/// Which master serves each hash slot of a Redis Cluster, as `CLUSTER SLOTS` told it at one moment.
///
/// The map is a snapshot: a failover or a resharding moves slots, which the cluster tells a client by
/// answering `MOVED <slot> <host:port>` (the slot moved for good: read the map again) or `ASK <slot>
/// <host:port>` (the slot is migrating: send this one command there, after `ASKING`).
public struct RedisClusterTopology: Sendable, Equatable {
    /// One master and the slots it serves.
    public struct Shard: Sendable, Equatable {
        /// The master's address as the cluster announces it.
        public var master: RedisClusterNode
        /// Its replicas, as announced (they take over on a failover).
        public var replicas: [RedisClusterNode]
        /// Inclusive ranges of slots.
        public var slots: [ClosedRange<Int>]
    }

    /// Every master serving at least one slot, in the order of their first slot.
    public private(set) var shards: [Shard]
    /// For each slot, the index in `shards` of its master; -1 for a slot no master serves.
    private var shardOfSlot: [Int16]

    /// The master serving `slot`, or nil when no master serves it (the cluster is down for that slot).
    public func master(of slot: RedisHashSlot) -> RedisClusterNode? {
        let shard = shardOfSlot[slot.value]
        return shard < 0 ? nil : shards[Int(shard)].master
    }

    /// The index in `shards` of the master serving `slot`, or nil.
    public func shardIndex(of slot: RedisHashSlot) -> Int? {
        let shard = shardOfSlot[slot.value]
        return shard < 0 ? nil : Int(shard)
    }

    /// Slots no master serves.
    public var unservedSlotCount: Int { shardOfSlot.count { $0 < 0 } }

    /// Reads a `CLUSTER SLOTS` reply: an array of `[start, end, master, replica…]`, each node
    /// `[host, port, id, …]`. An empty host (a node that does not know its own address) is `askedHost`, the
    /// address the question went to.
    public init(clusterSlots reply: RedisReply, askedHost: String) throws(RedisError) {
        guard case .array(let ranges) = reply else { throw Self.malformed("not an array: \(reply.summary)") }
        var shards: [Shard] = []
        var shardOfSlot = [Int16](repeating: -1, count: RedisHashSlot.count)
        for range in ranges {
            guard case .array(let fields) = range, fields.count >= 3,
                case .integer(let start) = fields[0], case .integer(let end) = fields[1],
                (0..<Int64(RedisHashSlot.count)).contains(start), (start...Int64(RedisHashSlot.count - 1)).contains(end)
            else { throw Self.malformed("a slot range is not [start, end, master, …]: \(range.summary)") }
            let master = try RedisClusterNode(slotsEntry: fields[2], askedHost: askedHost)
            let replicas = try fields.dropFirst(3).map { (entry) throws(RedisError) in try RedisClusterNode(slotsEntry: entry, askedHost: askedHost) }
            let slots = Int(start)...Int(end)
            if let known = shards.firstIndex(where: { $0.master == master }) {
                shards[known].slots.append(slots)
            } else {
                shards.append(Shard(master: master, replicas: replicas, slots: [slots]))
            }
        }
        shards.sort { ($0.slots.map(\.lowerBound).min() ?? 0) < ($1.slots.map(\.lowerBound).min() ?? 0) }
        for (index, shard) in shards.enumerated() {
            for range in shard.slots { for slot in range { shardOfSlot[slot] = Int16(index) } }
        }
        self.shards = shards
        self.shardOfSlot = shardOfSlot
    }

    private static func malformed(_ detail: String) -> RedisError {
        RedisError(code: .protocolError, reason: "CLUSTER SLOTS answered something Eddy cannot read (\(detail))", isRetriable: false, breaksConnection: false)
    }
}

/// A node of a Redis Cluster as the cluster announces it.
public struct RedisClusterNode: Hashable, Sendable, CustomStringConvertible {
    public var host: String
    public var port: Int

    public init(host: String, port: Int) {
        self.host = host
        self.port = port
    }

    /// `host:port`, IPv6 hosts in brackets.
    public var description: String { host.contains(":") ? "[\(host)]:\(port)" : "\(host):\(port)" }

    init(slotsEntry: RedisReply, askedHost: String) throws(RedisError) {
        guard case .array(let fields) = slotsEntry, fields.count >= 2, let host = fields[0].text,
            case .integer(let port) = fields[1], (1...65_535).contains(port)
        else {
            throw RedisError(code: .protocolError, reason: "CLUSTER SLOTS named a node Eddy cannot read (\(slotsEntry.summary))", isRetriable: false, breaksConnection: false)
        }
        self.init(host: host.isEmpty || host == "?" ? askedHost : host, port: Int(port))
    }
}

/// A cluster's answer that a key's slot is served elsewhere.
public struct RedisClusterRedirect: Sendable, Equatable {
    public enum Kind: String, Sendable {
        /// The slot moved for good: read the slot map again.
        case moved = "MOVED"
        /// The slot is being migrated: send the command to `node` once, after `ASKING`.
        case ask = "ASK"
    }

    public var kind: Kind
    public var slot: RedisHashSlot
    public var node: RedisClusterNode

    public init(kind: Kind, slot: RedisHashSlot, node: RedisClusterNode) {
        self.kind = kind
        self.slot = slot
        self.node = node
    }

    /// Reads `MOVED 3999 127.0.0.1:6381` or `ASK 3999 127.0.0.1:6381` (an error reply's text); nil for any
    /// other error. An empty host (`MOVED 3999 :6381`) means the node the command went to: `askedHost`.
    public init?(errorMessage: String, askedHost: String) {
        let parts = errorMessage.split(separator: " ", omittingEmptySubsequences: true)
        guard parts.count == 3, let kind = Kind(rawValue: String(parts[0])), let slot = Int(parts[1]),
            (0..<RedisHashSlot.count).contains(slot), let colon = parts[2].lastIndex(of: ":"),
            let port = Int(parts[2][parts[2].index(after: colon)...]), (1...65_535).contains(port)
        else { return nil }
        var host = String(parts[2][..<colon])
        if host.hasPrefix("[") && host.hasSuffix("]") { host = String(host.dropFirst().dropLast()) }
        self.kind = kind
        self.slot = RedisHashSlot(slot)
        self.node = RedisClusterNode(host: host.isEmpty ? askedHost : host, port: port)
    }
}
