import CRdKafka
import EddySecrets
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
        /// Values of the client's secret properties, starred out of every reason librdkafka gives.
        var secretValues: [String] = []
        /// When a broker last answered (moved by statistics reports).
        var brokerLiveness = BrokerLiveness(answeredAt: .now)
        /// The last cause logged at error level, and when: librdkafka repeats a failing connection's error
        /// at every reconnect, and one line per cause and minute is enough.
        var lastLoggedCause: (reason: Substring, at: ContinuousClock.Instant)?
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
            "\(Secrets.maskingValues(shared.withLock { $0.secretValues }, in: message))",
            metadata: ["eddy.rdkafka.facility": "\(facility)", "eddy.rdkafka.syslog_level": "\(level)"]
        )
    }

    /// An error librdkafka reports for the client as a whole. Most are transient and logged at debug (librdkafka
    /// retries them); those an operator must act on — authentication, TLS, authorization — at error level,
    /// with their reason, since nothing else would name the cause.
    func recordClientError(code: Int32, reason librdkafkaReason: String) {
        let rawReason = Self.explained(code, reason: librdkafkaReason)
        let isFatal = code == RD_KAFKA_RESP_ERR__FATAL.rawValue
        let now = ContinuousClock.now
        let isOperatorCause = Self.isAuthenticationOrTLSError(code, reason: rawReason)
        let (reason, logsAtErrorLevel) = shared.withLock { state in
            let reason = Secrets.maskingValues(state.secretValues, in: rawReason)
            let error = KafkaError(code: .client, rdKafkaCode: code, reason: reason, isRetriable: !isFatal, isFatal: isFatal)
            state.lastClientError = error
            if isFatal { state.fatalError = error }
            if code == RD_KAFKA_RESP_ERR__ALL_BROKERS_DOWN.rawValue { state.allBrokersDown = true }
            guard isOperatorCause else { return (reason, false) }
            // One TLS handshake failure, however librdkafka words it this time, is one cause.
            let cause = reason.contains("SSL handshake failed") ? "SSL handshake failed" : Self.cause(of: reason)
            if let last = state.lastLoggedCause, last.reason == cause, now - last.at < .seconds(60) { return (reason, false) }
            state.lastLoggedCause = (cause, now)
            return (reason, true)
        }
        if logsAtErrorLevel {
            logger.error("Kafka: \(reason)", metadata: ["eddy.rdkafka.error": "\(errorName(code))"])
        } else {
            logger.debug("librdkafka error: \(reason)", metadata: ["eddy.rdkafka.error": "\(code)"])
        }
    }

    /// A reason without librdkafka's trailing "(after 0ms in state …, 2 identical error(s) suppressed)", which
    /// differs between repeats of one cause.
    static func cause(of reason: String) -> Substring {
        guard let range = reason.ranges(of: " (after ").last else { return reason[...] }
        return reason[..<range.lowerBound]
    }

    /// librdkafka's reason, with what it means said first where the reason alone hides it: a connection the
    /// broker closes during the TLS handshake reads "Disconnected (after 0ms in state SSL_HANDSHAKE)" as often
    /// as "SSL handshake failed", depending on timing.
    static func explained(_ code: Int32, reason: String) -> String {
        guard code == RD_KAFKA_RESP_ERR__TRANSPORT.rawValue, !reason.contains("SSL handshake failed"),
            reason.contains("in state SSL_HANDSHAKE")
        else { return reason }
        return "SSL handshake failed (the broker closed the connection during the TLS handshake: is its listener TLS?): \(reason)"
    }

    /// Whether the error says the client cannot authenticate, cannot set up TLS, or is not allowed in. A TLS
    /// handshake the broker breaks off (e.g. TLS spoken to a plaintext listener) comes as a transport error:
    /// its reason tells it apart.
    static func isAuthenticationOrTLSError(_ code: Int32, reason: String) -> Bool {
        if code == RD_KAFKA_RESP_ERR__TRANSPORT.rawValue, reason.contains("SSL handshake failed") || reason.contains("SASL") {
            return true
        }
        let codes: [rd_kafka_resp_err_t] = [
            RD_KAFKA_RESP_ERR__AUTHENTICATION, RD_KAFKA_RESP_ERR__SSL, RD_KAFKA_RESP_ERR_SASL_AUTHENTICATION_FAILED,
            RD_KAFKA_RESP_ERR_UNSUPPORTED_SASL_MECHANISM, RD_KAFKA_RESP_ERR_ILLEGAL_SASL_STATE,
            RD_KAFKA_RESP_ERR_TOPIC_AUTHORIZATION_FAILED, RD_KAFKA_RESP_ERR_GROUP_AUTHORIZATION_FAILED,
            RD_KAFKA_RESP_ERR_CLUSTER_AUTHORIZATION_FAILED,
        ]
        return codes.contains { $0.rawValue == code }
    }

    /// One statistics report: moves the broker-liveness instant, then goes to the caller's handler.
    func recordStatistics(_ json: String) {
        if let brokers = BrokerLiveness.brokers(inStatistics: json) {
            let now = ContinuousClock.now
            shared.withLock { $0.brokerLiveness.record(brokers, at: now) }
        }
        statisticsHandler?(json)
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
    // Only called when `statistics.interval.ms` is set: feeds broker liveness and the caller's handler.
    rd_kafka_conf_set_stats_cb(conf) { _, json, length, opaque in
        guard let json, let context = RDKafkaCallbackContext.from(opaque) else { return 0 }
        context.recordStatistics(String(decoding: UnsafeRawBufferPointer(start: json, count: length), as: UTF8.self))
        return 0  // librdkafka frees the JSON
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
