/// Compiles a Kafka source's `WITH (...)` options (RisingWave names) into `KafkaSourceSettings`: the one
/// place where SQL options become librdkafka settings.
struct SourceOptionsCompiler {
    let source: SourceText
    var errors: [SQLError] = []
    var warnings: [SQLError] = []

    static let accepted = [
        "connector", "topic", "properties.bootstrap.server", "scan.startup.mode", "scan.startup.timestamp.millis",
        "watermark.idle.timeout", "properties.<librdkafka setting>",
    ]

    /// Settings Eddy owns: letting a user override them would break exactly-once or hide data loss.
    private static let reservedProperties: [String: String] = [
        "enable.auto.commit": "Eddy keeps offsets in its own checkpoint, committed atomically with the view state",
        "enable.auto.offset.store": "Eddy keeps offsets in its own checkpoint, committed atomically with the view state",
        "auto.offset.reset": "use scan.startup.mode for partitions without a stored offset; a stored offset that is gone is reported, never skipped silently",
        "enable.partition.eof": "Eddy sets it itself",
    ]

    private static let securityProtocols = ["plaintext", "ssl", "sasl_plaintext", "sasl_ssl"]
    private static let saslMechanisms = ["PLAIN", "SCRAM-SHA-256", "SCRAM-SHA-512", "GSSAPI", "OAUTHBEARER"]

    mutating func compile(_ options: [OptionEntry], sourceName: String, withStart: Int) -> KafkaSourceSettings? {
        var byKey: [String: OptionEntry] = [:]
        var ordered: [OptionEntry] = []
        for option in options {
            if let first = byKey[option.key] {
                errors.append(source.error(.invalidOption, "option '\(option.key)' is given twice (first at \(source.location(first.keyStart)))", from: option.keyStart, to: option.keyEnd))
                continue
            }
            byKey[option.key] = option
            ordered.append(option)
        }
        let errorCount = errors.count
        // A value whose ${NAME} was not set is already reported: checking it further would only add noise.
        let incomplete = Set(ordered.filter(\.hasFailedSubstitution).map(\.key))
        guard let connector = byKey["connector"] else {
            errors.append(source.error(.invalidOption, "source '\(sourceName)' needs connector='kafka' in its WITH options", from: withStart, to: withStart + 4))
            return nil
        }
        guard connector.value.lowercased() == "kafka" else {
            errors.append(source.error(.unsupported, "connector '\(connector.value)' is not supported for sources; Eddy reads 'kafka'", from: connector.valueStart, to: connector.valueEnd))
            return nil
        }
        func required(_ key: String, _ example: String) -> OptionEntry? {
            if let option = byKey[key], option.hasFailedSubstitution { return nil }
            if let option = byKey[key], !option.value.isEmpty { return option }
            if let option = byKey[key] {
                errors.append(source.error(.invalidOption, "option '\(key)' must not be empty", from: option.valueStart, to: option.valueEnd))
            } else {
                errors.append(source.error(.invalidOption, "source '\(sourceName)' needs \(key) (e.g. \(key)='\(example)')", from: withStart, to: withStart + 4))
            }
            return nil
        }
        if byKey["properties.bootstrap.server"] == nil, let alias = byKey["properties.bootstrap.servers"] {
            byKey["properties.bootstrap.server"] = alias
        }
        let bootstrap = required("properties.bootstrap.server", "host:9092")
        let topic = required("topic", "user_events")
        if let bootstrap { checkBootstrap(bootstrap) }
        if let topic { checkTopic(topic) }

        var startupMode: KafkaSourceSettings.StartupMode = .latest
        let timestampOption = byKey["scan.startup.timestamp.millis"] ?? byKey["scan.startup.timestamp_millis"]
        if let mode = byKey["scan.startup.mode"], !mode.hasFailedSubstitution {
            switch mode.value.lowercased() {
            case "earliest": startupMode = .earliest
            case "latest": startupMode = .latest
            case "timestamp":
                if let timestampOption, let milliseconds = Int64(timestampOption.value), milliseconds >= 0 {
                    startupMode = .timestamp(millisecondsSinceEpoch: milliseconds)
                } else if let timestampOption {
                    errors.append(source.error(.invalidOption, "scan.startup.timestamp.millis must be milliseconds since 1970-01-01 UTC, not '\(timestampOption.value)'", from: timestampOption.valueStart, to: timestampOption.valueEnd))
                } else {
                    errors.append(source.error(.invalidOption, "scan.startup.mode='timestamp' needs scan.startup.timestamp.millis='<milliseconds since 1970-01-01 UTC>'", from: mode.valueStart, to: mode.valueEnd))
                }
            default:
                errors.append(source.error(.invalidOption, "scan.startup.mode must be 'earliest', 'latest' or 'timestamp', not '\(mode.value)'", from: mode.valueStart, to: mode.valueEnd))
            }
        }
        if let timestampOption, byKey["scan.startup.mode"]?.value.lowercased() != "timestamp" {
            warnings.append(source.error(.invalidOption, "scan.startup.timestamp.millis is ignored unless scan.startup.mode='timestamp'", from: timestampOption.keyStart, to: timestampOption.keyEnd, severity: .warning))
        }

        var properties: [KafkaSourceSettings.Property] = []
        var groupID: String?
        let handled: Set<String> = [
            "connector", "topic", "properties.bootstrap.server", "properties.bootstrap.servers", "scan.startup.mode",
            "scan.startup.timestamp.millis", "scan.startup.timestamp_millis", "watermark.idle.timeout",
        ]
        var idleTimeout = KafkaSourceSettings.defaultWatermarkIdleTimeout
        if let option = byKey["watermark.idle.timeout"], !option.hasFailedSubstitution {
            if case .success(let interval) = SQLInterval.parse(option.value), let microseconds = interval.fixedMicroseconds, microseconds > 0 {
                idleTimeout = .microseconds(microseconds)
            } else {
                errors.append(source.error(.invalidOption, "watermark.idle.timeout must be a positive interval such as '30 seconds', not '\(option.value)'", from: option.valueStart, to: option.valueEnd))
            }
        }
        for option in ordered where !handled.contains(option.key) && !option.hasFailedSubstitution {
            guard option.key.hasPrefix("properties."), option.key.count > "properties.".count else {
                errors.append(source.error(.invalidOption, "unknown Kafka source option '\(option.key)'; accepted: \(Self.accepted.joined(separator: ", "))", from: option.keyStart, to: option.keyEnd))
                continue
            }
            let key = String(option.key.dropFirst("properties.".count))
            if let reason = Self.reservedProperties[key] {
                errors.append(source.error(.invalidOption, "option '\(option.key)' cannot be set: \(reason)", from: option.keyStart, to: option.keyEnd))
                continue
            }
            var value = option.value
            switch key {
            case "group.id":
                groupID = value
                continue
            case "security.protocol":
                guard Self.securityProtocols.contains(value.lowercased()) else {
                    errors.append(source.error(.invalidOption, "properties.security.protocol must be one of \(Self.securityProtocols.map { $0.uppercased() }.joined(separator: ", ")), not '\(value)'", from: option.valueStart, to: option.valueEnd))
                    continue
                }
                value = value.lowercased()
            case "sasl.mechanism", "sasl.mechanisms":
                guard Self.saslMechanisms.contains(value.uppercased()) else {
                    errors.append(source.error(.invalidOption, "properties.sasl.mechanism must be one of \(Self.saslMechanisms.joined(separator: ", ")), not '\(value)'", from: option.valueStart, to: option.valueEnd))
                    continue
                }
                value = value.uppercased()
            default:
                break
            }
            properties.append(.init(key: key, value: value))
        }
        let mechanism = properties.first { $0.key.hasPrefix("sasl.mechanism") }
        let securityProtocol = properties.first { $0.key == "security.protocol" }?.value
        if mechanism != nil, !(securityProtocol?.hasPrefix("sasl") ?? false), let option = byKey["properties.sasl.mechanism"] ?? byKey["properties.sasl.mechanisms"] {
            warnings.append(source.error(.invalidOption, "properties.sasl.mechanism has no effect unless properties.security.protocol is SASL_SSL or SASL_PLAINTEXT", from: option.keyStart, to: option.keyEnd, severity: .warning))
        }
        guard errors.count == errorCount, incomplete.isEmpty, let bootstrap, let topic else { return nil }
        return KafkaSourceSettings(
            bootstrapServers: bootstrap.value, topic: topic.value, startupMode: startupMode, groupID: groupID,
            clientProperties: properties, watermarkIdleTimeout: idleTimeout)
    }

    private mutating func checkBootstrap(_ option: OptionEntry) {
        // Only the shape is checked: whether a host answers is the consumer's start-up check.
        for server in option.value.split(separator: ",", omittingEmptySubsequences: false) {
            let trimmed = server.trimmingSpaces
            guard !trimmed.isEmpty, !trimmed.contains(" "), !trimmed.hasPrefix(":"), !trimmed.hasSuffix(":") else {
                errors.append(source.error(.invalidOption, "properties.bootstrap.server: '\(trimmed)' is not host:port (expected a comma-separated list of host:port)", from: option.valueStart, to: option.valueEnd))
                return
            }
        }
    }

    private mutating func checkTopic(_ option: OptionEntry) {
        let valid = option.value.count <= 249 && option.value.unicodeScalars.allSatisfy {
            ($0 >= "a" && $0 <= "z") || ($0 >= "A" && $0 <= "Z") || ($0 >= "0" && $0 <= "9") || $0 == "." || $0 == "_" || $0 == "-"
        }
        if !valid || option.value == "." || option.value == ".." {
            errors.append(source.error(.invalidOption, "topic '\(option.value)' is not a valid Kafka topic name (letters, digits, '.', '_', '-'; at most 249)", from: option.valueStart, to: option.valueEnd))
        }
    }
}

extension Substring {
    var trimmingSpaces: String {
        String(drop { $0 == " " }.reversed().drop { $0 == " " }.reversed())
    }
}
