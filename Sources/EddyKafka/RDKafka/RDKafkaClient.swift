import CRdKafka
import EddySecrets
import Logging

/// Owns one `rd_kafka_t` (producer or consumer) and the callback context it points to.
///
/// Created by `make`, destroyed in `deinit` (after which no callback can run, so the context may go).
/// librdkafka handles are thread-safe; the Swift types above this one decide which thread calls what.
final class RDKafkaClient: @unchecked Sendable {
    enum Kind { case producer, consumer }

    /// The `rd_kafka_t*`. Do not let it escape the owner of this client.
    let handle: OpaquePointer
    let context: RDKafkaCallbackContext

    private init(handle: OpaquePointer, context: RDKafkaCallbackContext) {
        self.handle = handle
        self.context = context
    }

    static func make(
        kind: Kind,
        properties: [(String, String)],
        context: RDKafkaCallbackContext,
        deliveryReports: Bool = false,
        rebalance: Bool = false
    ) throws -> RDKafkaClient {
        guard let conf = rd_kafka_conf_new() else {
            throw KafkaError(code: .clientCreation, reason: "rd_kafka_conf_new failed")
        }
        var errorText = [CChar](repeating: 0, count: 512)
        func text() -> String { String(decoding: errorText.prefix { $0 != 0 }.map { UInt8(bitPattern: $0) }, as: UTF8.self) }
        for (key, value) in properties {
            let result = rd_kafka_conf_set(conf, key, value, &errorText, errorText.count)
            guard result == RD_KAFKA_CONF_OK else {
                rd_kafka_conf_destroy(conf)
                let shown = Secrets.isSecretSetting(key) ? Secrets.mask : value
                throw KafkaError(
                    code: .invalidConfiguration,
                    reason: "Kafka property \(key)=\(shown): \(text())"
                )
            }
        }
        context.shared.withLock { $0.secretValues = secretValues(of: properties) }
        installCallbacks(on: conf, context: context, deliveryReports: deliveryReports, rebalance: rebalance)
        let type = kind == .producer ? RD_KAFKA_PRODUCER : RD_KAFKA_CONSUMER
        // On success rd_kafka_new owns `conf`; on failure it is still ours.
        guard let handle = rd_kafka_new(type, conf, &errorText, errorText.count) else {
            rd_kafka_conf_destroy(conf)
            throw KafkaError(code: .clientCreation, reason: "cannot create Kafka client: \(text())")
        }
        return RDKafkaClient(handle: handle, context: context)
    }

    deinit {
        rd_kafka_destroy(handle)
    }

    /// Fetches the cluster's topics and returns the partition count of `topic`, or throws
    /// `brokersUnreachable` (no broker answered within `timeout`, with the last cause librdkafka gave, e.g. an
    /// authentication failure) or `topicNotFound` (listing the topics that exist).
    ///
    /// Call it before a consumer's main queue is forwarded (`rd_kafka_poll_set_consumer`): on failure it
    /// serves the error events queued meanwhile with `rd_kafka_poll`, to learn their cause.
    func partitionCount(of topic: String, bootstrapServers: String, timeout: Duration) throws -> Int {
        var metadataPointer: UnsafePointer<rd_kafka_metadata>?
        let code = rd_kafka_metadata(handle, 1, nil, &metadataPointer, timeout.millisecondsInt32)
        guard code == RD_KAFKA_RESP_ERR_NO_ERROR, let metadata = metadataPointer else {
            if code == RD_KAFKA_RESP_ERR__TIMED_OUT || code == RD_KAFKA_RESP_ERR__TRANSPORT
                || code == RD_KAFKA_RESP_ERR__ALL_BROKERS_DOWN
            {
                let seconds = Double(timeout.milliseconds) / 1000
                rd_kafka_poll(handle, 0)
                let cause = context.shared.withLock { $0.lastClientError?.reason }
                throw KafkaError(
                    code: .brokersUnreachable,
                    rdKafkaCode: code.rawValue,
                    reason: "no Kafka broker reachable at \(bootstrapServers) within \(seconds) s"
                        + (cause.map { " (last error: \($0))" } ?? ""),
                    isRetriable: true
                )
            }
            throw KafkaError(
                code: .requestFailed,
                rdKafkaCode: code.rawValue,
                reason: "metadata request to \(bootstrapServers) failed: \(errorString(code))",
                isRetriable: true
            )
        }
        defer { rd_kafka_metadata_destroy(metadata) }
        context.shared.withLock { $0.brokerLiveness = BrokerLiveness(answeredAt: .now) }
        var names: [String] = []
        for index in 0..<Int(metadata.pointee.topic_cnt) {
            let entry = metadata.pointee.topics[index]
            let name = String(cString: entry.topic)
            if name == topic, entry.err == RD_KAFKA_RESP_ERR_NO_ERROR { return Int(entry.partition_cnt) }
            if entry.err == RD_KAFKA_RESP_ERR_NO_ERROR, !name.hasPrefix("__") { names.append(name) }
        }
        let existing = names.isEmpty ? "none" : names.sorted().map { "'\($0)'" }.joined(separator: ", ")
        throw KafkaError(
            code: .topicNotFound,
            reason: "topic '\(topic)' does not exist on \(bootstrapServers) (topics there: \(existing))"
        )
    }

    /// Low and high watermarks of a partition, asked of the broker.
    func queryWatermarks(topic: String, partition: Int32, timeout: Duration) throws -> (low: Int64, high: Int64) {
        var low: Int64 = -1
        var high: Int64 = -1
        let code = rd_kafka_query_watermark_offsets(handle, topic, partition, &low, &high, timeout.millisecondsInt32)
        guard code == RD_KAFKA_RESP_ERR_NO_ERROR else {
            throw KafkaError(
                code: .requestFailed,
                rdKafkaCode: code.rawValue,
                reason: "watermarks of \(topic)[\(partition)]: \(errorString(code))",
                isRetriable: true
            )
        }
        return (low, high)
    }
}

func errorString(_ code: rd_kafka_resp_err_t) -> String { String(cString: rd_kafka_err2str(code)) }

/// librdkafka's symbolic name of an error code, e.g. `_AUTHENTICATION`.
func errorName(_ code: Int32) -> String { String(cString: rd_kafka_err2name(rd_kafka_resp_err_t(rawValue: code))) }

/// Turns an `rd_kafka_error_t*` into a `KafkaError` and destroys it.
func consumeError(_ error: OpaquePointer, code: KafkaError.Code, context: String) -> KafkaError {
    defer { rd_kafka_error_destroy(error) }
    return KafkaError(
        code: code,
        rdKafkaCode: rd_kafka_error_code(error).rawValue,
        reason: "\(context): \(String(cString: rd_kafka_error_string(error)))",
        isRetriable: rd_kafka_error_is_retriable(error) != 0,
        isFatal: rd_kafka_error_is_fatal(error) != 0
    )
}

/// Owns one `rd_kafka_topic_partition_list_t`, destroyed in `deinit`. Used on one thread at a time.
final class RDKafkaPartitionList {
    let pointer: UnsafeMutablePointer<rd_kafka_topic_partition_list_t>

    init(topic: String, partitions: [Int32], offsets: [Int64]? = nil) {
        pointer = rd_kafka_topic_partition_list_new(Int32(max(1, partitions.count)))
        for (index, partition) in partitions.enumerated() {
            let entry = rd_kafka_topic_partition_list_add(pointer, topic, partition)!
            entry.pointee.offset = offsets?[index] ?? -1001  // RD_KAFKA_OFFSET_INVALID
        }
    }

    init(copying other: UnsafePointer<rd_kafka_topic_partition_list_t>) {
        pointer = rd_kafka_topic_partition_list_copy(other)
    }

    deinit { rd_kafka_topic_partition_list_destroy(pointer) }

    var count: Int { Int(pointer.pointee.cnt) }
    subscript(index: Int) -> rd_kafka_topic_partition_t { pointer.pointee.elems[index] }

    /// The first per-partition error, if any.
    func firstError(context: String) -> KafkaError? {
        for index in 0..<count where self[index].err != RD_KAFKA_RESP_ERR_NO_ERROR {
            let entry = self[index]
            return KafkaError(
                code: .partitionControlFailed,
                rdKafkaCode: entry.err.rawValue,
                reason: "\(context) \(String(cString: entry.topic))[\(entry.partition)]: \(errorString(entry.err))",
                isRetriable: true
            )
        }
        return nil
    }
}
