import EddyRedis
import Foundation

/// A real Redis Cluster on loopback for tests: `masters` `redis-server`s with `--cluster-enabled yes` (and
/// `replicasPerMaster` replicas each), joined by `redis-cli --cluster create`. Each node is a
/// `RedisTestServer`, so a test can kill one (a master failure), start it again, pause it, ….
///
/// Every node's cluster bus listens on its own free port (`--cluster-port`), kept across restarts, because
/// the default (port + 10,000) may be taken or beyond 65,535 for an ephemeral port.
public final class RedisTestCluster: Sendable {
    /// Every node, masters first as created (after a failover a replica may be the master of its slots).
    public let nodes: [RedisTestServer]
    private let busPorts: [Int]
    /// Replicas each master has once the cluster is healthy.
    public let replicasPerMaster: Int
    /// Node timeout: how long a master may be unreachable before its replica takes over.
    public let nodeTimeout: Duration

    /// Starts the nodes and creates the cluster; returns once every node sees every slot served
    /// (`cluster_state:ok`).
    public init(masters: Int = 3, replicasPerMaster: Int = 0, nodeTimeout: Duration = .milliseconds(1_000)) throws {
        precondition(masters >= 3, "redis-cli --cluster create needs at least 3 masters")
        let count = masters * (1 + replicasPerMaster)
        nodes = try (0..<count).map { _ in try RedisTestServer() }
        var ports: [Int] = []
        while ports.count < count {
            let port = LoopbackPort.unused()
            if !ports.contains(port) && !nodes.contains(where: { $0.port == port }) { ports.append(port) }
        }
        busPorts = ports
        self.nodeTimeout = nodeTimeout
        self.replicasPerMaster = replicasPerMaster
        for index in nodes.indices { try start(node: index) }
        try Self.redisCLI(["--cluster", "create"] + nodes.map { "127.0.0.1:\($0.port)" } + ["--cluster-replicas", String(replicasPerMaster), "--cluster-yes"])
        try awaitHealthy()
    }

    deinit { destroy() }

    /// Kills every node and removes their directories.
    public func destroy() { nodes.forEach { $0.destroy() } }

    /// The URLs of every node, as a sink's `redis.url` lists them.
    public var urls: [RedisURL] { nodes.map(\.url) }

    /// Starts node `index` (again), with its data (append-only, fsync always) and its `nodes.conf`.
    public func start(node index: Int) throws {
        try nodes[index].start(
            persistent: true,
            extraArguments: [
                "--cluster-enabled", "yes", "--cluster-config-file", "nodes.conf", "--cluster-port", String(busPorts[index]),
                "--cluster-node-timeout", String(nodeTimeout.components.seconds * 1_000 + nodeTimeout.components.attoseconds / 1_000_000_000_000_000),
            ])
    }

    /// The slot map as node `index` sees it.
    public func topology(askingNode index: Int = 0) throws -> RedisClusterTopology {
        let connection = try nodes[index].connect()
        defer { connection.close() }
        return try RedisClusterTopology(clusterSlots: connection.command("CLUSTER", "SLOTS"), askedHost: "127.0.0.1")
    }

    /// The node serving `key`'s slot now (as node 0 sees it).
    public func node(servingKey key: String, askingNode index: Int = 0) throws -> RedisTestServer? {
        guard let master = try topology(askingNode: index).master(of: RedisHashSlot(key: Array(key.utf8))) else { return nil }
        return nodes.first { $0.port == master.port }
    }

    /// `GET key` on the master serving it; nil when absent.
    public func get(_ key: String) throws -> String? {
        guard let node = try node(servingKey: key) else { throw RedisTestServerError("no master serves the slot of \(key)") }
        return try node.get(key)
    }

    /// Waits until every running node reports `cluster_state:ok` and sees all 16,384 slots served, each master
    /// with its replicas (as many as were created, counting only running nodes).
    public func awaitHealthy(timeout: Duration = .seconds(30)) throws {
        var last = "no answer"
        let healthy = eventually(timeout: timeout, every: .milliseconds(50)) {
            for node in nodes where node.isRunning {
                guard let info = try? node.command("CLUSTER", "INFO").text else { return false }
                let fields = Dictionary(
                    info.split(whereSeparator: \.isNewline).compactMap { line -> (String, String)? in
                        let parts = line.split(separator: ":", maxSplits: 1)
                        return parts.count == 2 ? (String(parts[0]), String(parts[1])) : nil
                    }, uniquingKeysWith: { first, _ in first })
                last = "node \(node.port): state \(fields["cluster_state"] ?? "?"), slots ok \(fields["cluster_slots_ok"] ?? "?")"
                guard fields["cluster_state"] == "ok", fields["cluster_slots_ok"] == String(RedisHashSlot.count) else { return false }
            }
            let running = nodes.count { $0.isRunning }
            guard let asking = nodes.firstIndex(where: \.isRunning), let map = try? topology(askingNode: asking) else { return false }
            let replicas = map.shards.reduce(0) { $0 + $1.replicas.count }
            last = "\(map.shards.count) masters with \(replicas) replicas of \(running) running nodes"
            return map.shards.count + replicas == running
        }
        guard healthy else { throw RedisTestServerError("the Redis cluster did not become healthy within \(timeout): \(last)") }
    }

    private static func redisCLI(_ arguments: [String]) throws {
        let (status, output) = try runTool("/usr/bin/redis-cli", arguments)
        guard status == 0 else {
            throw RedisTestServerError("redis-cli \(arguments.prefix(2).joined(separator: " ")) failed: \(output.suffix(2_000))")
        }
    }
}
