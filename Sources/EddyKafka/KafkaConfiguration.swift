import EddySecrets

/// Where a consumer starts reading a partition for which Eddy has no stored offset
/// (`scan.startup.mode` of the SQL source).
public enum KafkaStartupMode: Sendable, Equatable {
    /// The oldest message still in the partition.
    case earliest
    /// Only messages produced after the assignment.
    case latest
    /// The first message whose timestamp is at or after this many milliseconds since the Unix epoch.
    case timestamp(millisecondsSinceEpoch: Int64)
}

/// Authentication and encryption of the connection to the brokers (`properties.security.protocol`,
/// `properties.sasl.*`, `properties.ssl.*`).
public struct KafkaSecurity: Sendable, Equatable {
    /// `security.protocol`: `plaintext`, `ssl`, `sasl_plaintext` or `sasl_ssl`. Default: `nil` (librdkafka's
    /// default, plaintext).
    public var securityProtocol: String?
    /// `sasl.mechanism`, e.g. `PLAIN`, `SCRAM-SHA-256`, `SCRAM-SHA-512`. Default: `nil`.
    public var saslMechanism: String?
    /// `sasl.username`. Default: `nil`.
    public var saslUsername: String?
    /// `sasl.password`. Default: `nil`. Never logged nor printed: `maskedProperties` hides it.
    public var saslPassword: String?
    /// `ssl.ca.location`: PEM file of the CA certificates. Default: `nil` (system store).
    public var sslCALocation: String?
    /// `ssl.certificate.location`: the client certificate (mutual TLS). Default: `nil`.
    public var sslCertificateLocation: String?
    /// `ssl.key.location`: the client key (mutual TLS). Default: `nil`.
    public var sslKeyLocation: String?
    /// `ssl.key.password`. Default: `nil`. Never logged nor printed.
    public var sslKeyPassword: String?

    public init() {}

    var properties: [(String, String)] {
        var result: [(String, String)] = []
        func add(_ key: String, _ value: String?) { if let value { result.append((key, value)) } }
        add("security.protocol", securityProtocol)
        add("sasl.mechanism", saslMechanism)
        add("sasl.username", saslUsername)
        add("sasl.password", saslPassword)
        add("ssl.ca.location", sslCALocation)
        add("ssl.certificate.location", sslCertificateLocation)
        add("ssl.key.location", sslKeyLocation)
        add("ssl.key.password", sslKeyPassword)
        return result
    }
}

/// Settings of a `KafkaConsumer`. Typed fields carry Eddy's defaults; `clientProperties` passes any other
/// librdkafka property through. Everything is rendered to librdkafka key/values in `rdKafkaProperties`.
public struct KafkaConsumerConfiguration: Sendable {
    /// `bootstrap.servers`, e.g. `127.0.0.1:9092,other:9092`. Required.
    public var bootstrapServers: String
    /// The topic to read. Required.
    public var topic: String
    /// `group.id`. Default: `eddy-<topic>`. Offsets are never committed to the group (Eddy keeps them in its
    /// checkpoint); the group only shares partitions between instances.
    public var groupID: String
    /// Where to start a partition that has no stored offset. Default: `.latest` (as RisingWave).
    public var startupMode: KafkaStartupMode = .latest
    /// Connection security. Default: plaintext, no authentication.
    public var security = KafkaSecurity()
    /// How long the start-up check (metadata) may wait for a broker before failing with
    /// `brokersUnreachable`. Default: 5 s.
    public var connectTimeout: Duration = .seconds(5)
    /// Deliver a `.partitionEOF` item when a partition is caught up (`enable.partition.eof`). Default: false.
    public var reportsPartitionEOF = false
    /// `statistics.interval.ms`: how often librdkafka's statistics JSON is handed to the statistics handler,
    /// and how often `KafkaConsumer.lastBrokerAnswer` can move. Default: `nil` (no statistics).
    public var statisticsInterval: Duration?
    /// The most messages one `consumeBatch` call can return (the size of the reused message array).
    /// Default: 10 000.
    public var maxBatchSize = 10_000
    /// Any other librdkafka property, applied after (and so overriding) the typed fields.
    public var clientProperties: [(String, String)] = []

    public init(bootstrapServers: String, topic: String, groupID: String? = nil) {
        self.bootstrapServers = bootstrapServers
        self.topic = topic
        self.groupID = groupID ?? "eddy-\(topic)"
    }

    /// The librdkafka key/values for this configuration, in the order they are applied.
    public var rdKafkaProperties: [(String, String)] {
        var properties: [(String, String)] = [
            ("bootstrap.servers", bootstrapServers),
            ("group.id", groupID),
            // Eddy's offsets live in its own checkpoint, committed atomically with its state.
            ("enable.auto.commit", "false"),
            ("enable.auto.offset.store", "false"),
            // An offset that is gone must reach the caller as an error with its gap, never a silent jump.
            ("auto.offset.reset", "error"),
            ("enable.partition.eof", reportsPartitionEOF ? "true" : "false"),
            // librdkafka's default is 100 MB: Eddy applies its own, smaller message size limit.
            ("receive.message.max.bytes", "16777216"),
            // Half of it: a broker may answer a fetch with more than fetch.max.bytes (a first batch larger than
            // the limit is returned whole, and the mock cluster overshoots over many partitions), and a response
            // above receive.message.max.bytes is an error librdkafka never recovers from ("Invalid response size").
            ("fetch.max.bytes", String(16_777_216 / 2)),
        ]
        if let statisticsInterval {
            properties.append(("statistics.interval.ms", String(max(1, statisticsInterval.milliseconds))))
        }
        properties += security.properties
        properties += clientProperties
        return properties
    }

    /// `rdKafkaProperties` with passwords replaced by `***`, safe to log or print.
    public var maskedProperties: [(String, String)] { rdKafkaProperties.map(maskSecret) }
}

/// Settings of a `KafkaProducer`. Typed fields carry Eddy's defaults; `clientProperties` passes any other
/// librdkafka property through.
public struct KafkaProducerConfiguration: Sendable {
    /// `bootstrap.servers`. Required.
    public var bootstrapServers: String
    /// Connection security. Default: plaintext, no authentication.
    public var security = KafkaSecurity()
    /// How long the start-up check may wait for a broker. Default: 5 s.
    public var connectTimeout: Duration = .seconds(5)
    /// `linger.ms`: how long to wait to fill a batch. Default: 5 ms.
    public var linger: Duration = .milliseconds(5)
    /// `queue.buffering.max.messages`: messages queued but not yet acknowledged. Default: 1 000 000.
    public var maxQueuedMessages = 1_000_000
    /// `message.timeout.ms`: how long a message may wait for its acknowledgement before it fails.
    /// Default: 30 s.
    public var deliveryTimeout: Duration = .seconds(30)
    /// `acks`: `-1` (all in-sync replicas), `1` (leader) or `0`. Default: `-1`.
    public var acks = -1
    /// Any other librdkafka property, applied last.
    public var clientProperties: [(String, String)] = []

    public init(bootstrapServers: String) { self.bootstrapServers = bootstrapServers }

    /// The librdkafka key/values for this configuration, in the order they are applied.
    public var rdKafkaProperties: [(String, String)] {
        [
            ("bootstrap.servers", bootstrapServers),
            ("linger.ms", String(linger.milliseconds)),
            ("queue.buffering.max.messages", String(maxQueuedMessages)),
            ("message.timeout.ms", String(max(1, deliveryTimeout.milliseconds))),
            ("acks", String(acks)),
            // A topic that is missing is an error to report, not one to create by accident.
            ("allow.auto.create.topics", "false"),
        ] + security.properties + clientProperties
    }

    /// `rdKafkaProperties` with passwords replaced by `***`, safe to log or print.
    public var maskedProperties: [(String, String)] { rdKafkaProperties.map(maskSecret) }
}

func maskSecret(_ property: (String, String)) -> (String, String) {
    Secrets.isSecretSetting(property.0) ? (property.0, Secrets.mask) : property
}

/// The values of `properties` that are secret (non-empty ones), for `Secrets.maskingValues`.
func secretValues(of properties: [(String, String)]) -> [String] {
    properties.compactMap { key, value in Secrets.isSecretSetting(key) && !value.isEmpty ? value : nil }
}

extension Duration {
    /// Whole milliseconds, rounded down; saturates instead of trapping.
    var milliseconds: Int {
        let (seconds, attoseconds) = components
        let total = Double(seconds) * 1000 + Double(attoseconds) / 1e15
        return total >= Double(Int32.max) ? Int(Int32.max) : Int(total)
    }

    var millisecondsInt32: Int32 { Int32(clamping: milliseconds) }
}
