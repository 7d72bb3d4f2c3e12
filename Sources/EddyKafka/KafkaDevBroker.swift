import CRdKafka
import Logging

/// A Kafka-protocol broker in this process: librdkafka's mock cluster on loopback, for development and
/// tests. Any Kafka client (kcat included) can connect to `bootstrapServers`.
///
/// Limits: data lives in memory only, and the mock drops a partition's oldest messages once it holds a few
/// MB (librdkafka 2.0.2); use enough partitions, or consume while producing, to keep every message, and
/// check the low watermark is 0 where that matters.
///
/// Owns the mock cluster and the `rd_kafka_t` hosting it (and the optional port forwarder), all freed in
/// `deinit`. The mock runs on its own thread; every method may be called from any thread.
public final class KafkaDevBroker: @unchecked Sendable {
    /// `host:port` to give clients.
    public let bootstrapServers: String
    /// Broker ids are `1...brokerCount`.
    public let brokerCount: Int

    private let host: RDKafkaClient
    private let cluster: OpaquePointer
    private let forwarder: LoopbackForwarder?

    private init(host: RDKafkaClient, cluster: OpaquePointer, forwarder: LoopbackForwarder?, bootstrapServers: String, brokerCount: Int) {
        self.host = host
        self.cluster = cluster
        self.forwarder = forwarder
        self.bootstrapServers = bootstrapServers
        self.brokerCount = brokerCount
    }

    /// Starts a mock cluster with `brokers` brokers and the given topics.
    ///
    /// - Parameter port: if set, clients bootstrap through 127.0.0.1:`port` (relayed to the mock, which
    ///   only listens on ephemeral ports); if `nil`, `bootstrapServers` is the mock's own address.
    public static func make(
        partitionsByTopic: [String: Int] = [:],
        brokers: Int = 1,
        port: Int? = nil,
        logger: Logger = Logger(label: "eddy.kafka.dev-broker")
    ) throws -> KafkaDevBroker {
        guard brokers >= 1 else { throw KafkaError(code: .invalidConfiguration, reason: "a dev broker needs at least one broker") }
        let context = RDKafkaCallbackContext(logger: logger)
        // The mock cluster needs a client instance to live in; a producer that never sends does.
        let host = try RDKafkaClient.make(kind: .producer, properties: [("bootstrap.servers", "127.0.0.1:1")], context: context)
        guard let cluster = rd_kafka_mock_cluster_new(host.handle, Int32(brokers)) else {
            throw KafkaError(code: .mockCluster, reason: "cannot start librdkafka's mock cluster")
        }
        let mockBootstrap = String(cString: rd_kafka_mock_cluster_bootstraps(cluster))
        var forwarder: LoopbackForwarder?
        var bootstrap = mockBootstrap
        if let port {
            let firstAddress = mockBootstrap.split(separator: ",").first.map(String.init) ?? mockBootstrap
            guard let targetPort = firstAddress.split(separator: ":").last.flatMap({ Int($0) }) else {
                rd_kafka_mock_cluster_destroy(cluster)
                throw KafkaError(code: .mockCluster, reason: "unexpected mock bootstrap address '\(mockBootstrap)'")
            }
            do {
                forwarder = try LoopbackForwarder.make(port: port, targetPort: targetPort)
            } catch {
                rd_kafka_mock_cluster_destroy(cluster)
                throw error
            }
            bootstrap = "127.0.0.1:\(port)"
        }
        let broker = KafkaDevBroker(host: host, cluster: cluster, forwarder: forwarder, bootstrapServers: bootstrap, brokerCount: brokers)
        for (topic, partitions) in partitionsByTopic.sorted(by: { $0.key < $1.key }) {
            try broker.createTopic(topic, partitions: partitions)
        }
        return broker
    }

    deinit {
        forwarder?.stop()
        rd_kafka_mock_cluster_destroy(cluster)
        // `host` (the rd_kafka_t) is destroyed after this body.
    }

    private func check(_ code: rd_kafka_resp_err_t, _ what: String) throws {
        guard code == RD_KAFKA_RESP_ERR_NO_ERROR else {
            throw KafkaError(code: .mockCluster, rdKafkaCode: code.rawValue, reason: "\(what): \(errorString(code))")
        }
    }

    /// Creates a topic (replication factor 1).
    public func createTopic(_ name: String, partitions: Int) throws {
        guard partitions >= 1, !name.isEmpty else {
            throw KafkaError(code: .invalidConfiguration, reason: "topic '\(name)' needs a name and at least one partition")
        }
        try check(rd_kafka_mock_topic_create(cluster, name, Int32(partitions), 1), "create topic '\(name)'")
    }

    /// Takes broker `id` down: its connections close and it refuses new ones until `setBrokerUp`.
    public func setBrokerDown(_ id: Int32 = 1) throws {
        try check(rd_kafka_mock_broker_set_down(cluster, id), "set broker \(id) down")
    }

    /// Brings broker `id` back.
    public func setBrokerUp(_ id: Int32 = 1) throws {
        try check(rd_kafka_mock_broker_set_up(cluster, id), "set broker \(id) up")
    }

    /// Delays every response of broker `id`.
    public func setBrokerRoundTripTime(_ id: Int32, _ roundTrip: Duration) throws {
        try check(rd_kafka_mock_broker_set_rtt(cluster, id, Int32(roundTrip.milliseconds)), "set rtt of broker \(id)")
    }

    /// Moves a partition's leadership to broker `id`.
    public func setPartitionLeader(topic: String, partition: Int32, broker id: Int32) throws {
        try check(rd_kafka_mock_partition_set_leader(cluster, topic, partition, id), "set leader of \(topic)[\(partition)]")
    }

    /// Makes the group or transaction coordinator for `key` broker `id` (`keyType`: "group" or "transaction").
    public func setCoordinator(keyType: String, key: String, broker id: Int32) throws {
        try check(rd_kafka_mock_coordinator_set(cluster, keyType, key, id), "set \(keyType) coordinator")
    }

    /// Makes every request about `topic` fail with librdkafka error `code` (0 clears it).
    public func setTopicError(topic: String, code: Int32) {
        rd_kafka_mock_topic_set_error(cluster, topic, rd_kafka_resp_err_t(rawValue: code))
    }

    /// Makes the next requests of Kafka API `apiKey` (e.g. 1 = Fetch) fail with these librdkafka error
    /// codes, one per request, in order.
    public func pushRequestErrors(apiKey: Int16, codes: [Int32]) {
        let errors = codes.map { rd_kafka_resp_err_t(rawValue: $0) }
        errors.withUnsafeBufferPointer { rd_kafka_mock_push_request_errors_array(cluster, apiKey, errors.count, $0.baseAddress) }
    }

    /// Forgets errors pushed for `apiKey`.
    public func clearRequestErrors(apiKey: Int16) {
        rd_kafka_mock_clear_request_errors(cluster, apiKey)
    }
}

/// The librdkafka version this build links against, e.g. "2.0.2".
public var librdkafkaVersion: String { String(cString: rd_kafka_version_str()) }
