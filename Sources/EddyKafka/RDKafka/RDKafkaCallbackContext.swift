import CRdKafka
import Logging
import Synchronization

/// What librdkafka's callbacks need from Swift, reached through the client's `opaque` pointer.
///
/// Owned by the `RDKafkaClient` that registered it, which outlives every callback (it destroys the
/// `rd_kafka_t` before releasing this). Log, error and statistics callbacks may run on librdkafka's own
/// threads: what they touch is behind `shared`. Delivery-report and rebalance callbacks only run inside
/// `rd_kafka_poll`/`consume_batch_queue`, on the thread that owns the client: what they touch is plain.
final class RDKafkaCallbackContext: @unchecked Sendable {
    struct Shared {
        var lastClientError: KafkaError?
        var fatalError: KafkaError?
        var allBrokersDown = false
    }

    let logger: Logger
    let shared = Mutex(Shared())
    let statisticsHandler: (@Sendable (String) -> Void)?

    // Owner-thread state (producer delivery reports).
    var deliveredByTag: [Int] = []
    var deliveredTotal = 0
    var failedDeliveries = 0
    var firstDeliveryError: KafkaError?
    /// Messages purged by the producer itself (`rd_kafka_purge`): given up, not failed.
    var abandonedDeliveries = 0
    var abandonedInFlight = 0

    // Owner-thread state (consumer rebalances): set by the consumer, called from `rebalance`.
    var rebalanceHandler: ((_ isAssignment: Bool, _ partitions: UnsafeMutablePointer<rd_kafka_topic_partition_list_t>) -> Void)?

    init(logger: Logger, statisticsHandler: (@Sendable (String) -> Void)? = nil) {
        self.logger = logger
        self.statisticsHandler = statisticsHandler
    }

    static func from(_ opaque: UnsafeMutableRawPointer?) -> RDKafkaCallbackContext? {
        opaque.map { Unmanaged<RDKafkaCallbackContext>.fromOpaque($0).takeUnretainedValue() }
    }

    /// librdkafka's own log lines go to swift-log at debug (they are chatty and repeat while a broker is
    /// down); what matters to the caller arrives as typed errors instead.
    func log(level: Int32, facility: String, message: String) {
        logger.debug(
            "\(message)",
            metadata: ["eddy.rdkafka.facility": "\(facility)", "eddy.rdkafka.syslog_level": "\(level)"]
        )
    }

    func recordClientError(code: Int32, reason: String) {
        let isFatal = code == RD_KAFKA_RESP_ERR__FATAL.rawValue
        let error = KafkaError(
            code: .client,
            rdKafkaCode: code,
            reason: reason,
            isRetriable: !isFatal,
            isFatal: isFatal
        )
        shared.withLock { state in
            state.lastClientError = error
            if isFatal { state.fatalError = error }
            if code == RD_KAFKA_RESP_ERR__ALL_BROKERS_DOWN.rawValue { state.allBrokersDown = true }
        }
        logger.debug("librdkafka error: \(reason)", metadata: ["eddy.rdkafka.error": "\(code)"])
    }

    func recordDelivery(tag: Int, errorCode: Int32) {
        if errorCode == 0 {
            if tag >= deliveredByTag.count { deliveredByTag += Array(repeating: 0, count: tag + 1 - deliveredByTag.count) }
            deliveredByTag[tag] += 1
            deliveredTotal += 1
        } else if errorCode == RD_KAFKA_RESP_ERR__PURGE_QUEUE.rawValue || errorCode == RD_KAFKA_RESP_ERR__PURGE_INFLIGHT.rawValue {
            abandonedDeliveries += 1
            if errorCode == RD_KAFKA_RESP_ERR__PURGE_INFLIGHT.rawValue { abandonedInFlight += 1 }
        } else {
            failedDeliveries += 1
            if firstDeliveryError == nil {
                firstDeliveryError = KafkaError(
                    code: .deliveryFailed,
                    rdKafkaCode: errorCode,
                    reason: "delivery failed: \(String(cString: rd_kafka_err2str(rd_kafka_resp_err_t(rawValue: errorCode))))",
                    isRetriable: true
                )
            }
        }
    }
}

/// Registers the callbacks every Eddy client uses. Plain C function pointers: they find their context
/// through the `opaque` pointer.
func installCallbacks(on conf: OpaquePointer, context: RDKafkaCallbackContext, deliveryReports: Bool, rebalance: Bool) {
    rd_kafka_conf_set_opaque(conf, Unmanaged.passUnretained(context).toOpaque())
    rd_kafka_conf_set_log_cb(conf) { client, level, facility, message in
        guard let client, let context = RDKafkaCallbackContext.from(rd_kafka_opaque(client)) else { return }
        context.log(
            level: level,
            facility: facility.map { String(cString: $0) } ?? "",
            message: message.map { String(cString: $0) } ?? ""
        )
    }
    rd_kafka_conf_set_error_cb(conf) { _, code, reason, opaque in
        RDKafkaCallbackContext.from(opaque)?.recordClientError(code: code, reason: reason.map { String(cString: $0) } ?? "")
    }
    if context.statisticsHandler != nil {
        rd_kafka_conf_set_stats_cb(conf) { _, json, length, opaque in
            guard let json, let context = RDKafkaCallbackContext.from(opaque) else { return 0 }
            let text = String(decoding: UnsafeRawBufferPointer(start: json, count: length), as: UTF8.self)
            context.statisticsHandler?(text)
            return 0  // librdkafka frees the JSON
        }
    }
    if deliveryReports {
        rd_kafka_conf_set_dr_msg_cb(conf) { _, message, opaque in
            guard let message, let context = RDKafkaCallbackContext.from(opaque) else { return }
            let tag = Int(bitPattern: message.pointee._private) &- 1
            context.recordDelivery(tag: max(0, tag), errorCode: message.pointee.err.rawValue)
        }
    }
    if rebalance {
        rd_kafka_conf_set_rebalance_cb(conf) { client, code, partitions, opaque in
            let isAssignment = code == RD_KAFKA_RESP_ERR__ASSIGN_PARTITIONS
            if let partitions, let handler = RDKafkaCallbackContext.from(opaque)?.rebalanceHandler {
                handler(isAssignment, partitions)
            } else {
                // No handler (closing): librdkafka still waits for the (un)assignment to complete.
                rd_kafka_assign(client, isAssignment ? partitions : nil)
            }
        }
    }
}
