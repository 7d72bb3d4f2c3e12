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
    /// `statistics.interval.ms`: how often librdkafka's statistics JSON is handed to the statistics handler.
    /// Default: `nil` (no statistics).
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
            ("fetch.max.bytes", String(16_777_216 - 512)),
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

    /// Maps the `WITH (...)` options of a SQL Kafka source (RisingWave names) to a configuration.
    ///
    /// Understood: `topic`, `properties.bootstrap.server` (or `.servers`), `properties.group.id`,
    /// `scan.startup.mode` (`earliest`, `latest`, `timestamp`), `scan.startup.timestamp.millis`,
    /// `properties.security.protocol`, `properties.sasl.{mechanism,username,password}`,
    /// `properties.ssl.{ca.location,certificate.location,key.location,key.password}`; any other
    /// `properties.X` passes through to librdkafka as `X`. `connector` is ignored; anything else is an error.
    public init(sourceOptions: [String: String]) throws {
        func required(_ key: String, _ alternatives: String...) throws -> String {
            for name in [key] + alternatives { if let value = sourceOptions[name], !value.isEmpty { return value } }
            throw KafkaError(code: .invalidConfiguration, reason: "Kafka source option '\(key)' is required")
        }
        self.init(
            bootstrapServers: try required("properties.bootstrap.server", "properties.bootstrap.servers"),
            topic: try required("topic"),
            groupID: sourceOptions["properties.group.id"]
        )
        let mode = sourceOptions["scan.startup.mode"]?.lowercased()
        let timestampText = sourceOptions["scan.startup.timestamp.millis"] ?? sourceOptions["scan.startup.timestamp_millis"]
        switch mode {
        case nil, "latest": startupMode = .latest
        case "earliest": startupMode = .earliest
        case "timestamp":
            guard let timestampText, let milliseconds = Int64(timestampText), milliseconds >= 0 else {
                throw KafkaError(
                    code: .invalidConfiguration,
                    reason: "scan.startup.mode='timestamp' needs scan.startup.timestamp.millis=<milliseconds since the epoch>"
                )
            }
            startupMode = .timestamp(millisecondsSinceEpoch: milliseconds)
        case let other?:
            throw KafkaError(
                code: .invalidConfiguration,
                reason: "scan.startup.mode='\(other)' is not one of 'earliest', 'latest', 'timestamp'"
            )
        }
        let handled: Set<String> = [
            "connector", "topic", "properties.bootstrap.server", "properties.bootstrap.servers", "properties.group.id",
            "scan.startup.mode", "scan.startup.timestamp.millis", "scan.startup.timestamp_millis",
        ]
        for key in sourceOptions.keys.sorted() where !handled.contains(key) {
            let value = sourceOptions[key]!
            switch key {
            case "properties.security.protocol": security.securityProtocol = value
            case "properties.sasl.mechanism": security.saslMechanism = value
            case "properties.sasl.username": security.saslUsername = value
            case "properties.sasl.password": security.saslPassword = value
            case "properties.ssl.ca.location": security.sslCALocation = value
            case "properties.ssl.certificate.location": security.sslCertificateLocation = value
            case "properties.ssl.key.location": security.sslKeyLocation = value
            case "properties.ssl.key.password": security.sslKeyPassword = value
            default:
                guard key.hasPrefix("properties.") else {
                    throw KafkaError(code: .invalidConfiguration, reason: "unknown Kafka source option '\(key)'")
                }
                clientProperties.append((String(key.dropFirst("properties.".count)), value))
            }
        }
    }
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

func isSecretProperty(_ key: String) -> Bool { key.contains("password") || key.contains("secret") }

func maskSecret(_ property: (String, String)) -> (String, String) {
    isSecretProperty(property.0) ? (property.0, "***") : property
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
