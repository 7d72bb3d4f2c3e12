import CRdKafka
import Logging

/// A batching Kafka producer over librdkafka, with delivery reports counted per caller-chosen tag.
///
/// Owns an `rd_kafka_t` producer and its topic handles, freed in `deinit` after a bounded flush.
/// **Thread:** one thread at a time (`Sendable` only to be handed to its thread); delivery reports are counted inside `poll`/`flush`/`send` on it.
public final class KafkaProducer: @unchecked Sendable {
    /// The configuration this producer was built from.
    public let configuration: KafkaProducerConfiguration

    private let client: RDKafkaClient
    private var topics: [String: OpaquePointer] = [:]
    private let logger: Logger

    private init(configuration: KafkaProducerConfiguration, client: RDKafkaClient, logger: Logger) {
        self.configuration = configuration
        self.client = client
        self.logger = logger
    }

    /// Creates the producer. Nothing is checked on the network until `partitionCount(of:)` or `send`.
    public static func make(
        configuration: KafkaProducerConfiguration,
        logger: Logger = Logger(label: "eddy.kafka.producer")
    ) throws -> KafkaProducer {
        let context = RDKafkaCallbackContext(logger: logger)
        let client = try RDKafkaClient.make(
            kind: .producer,
            properties: configuration.rdKafkaProperties,
            context: context,
            deliveryReports: true
        )
        return KafkaProducer(configuration: configuration, client: client, logger: logger)
    }

    deinit {
        // Flush on close: give queued messages a bounded chance to leave.
        rd_kafka_flush(client.handle, 5_000)
        for topic in topics.values { rd_kafka_topic_destroy(topic) }
    }

    /// Checks within `configuration.connectTimeout` that a broker answers and `topic` exists; returns its
    /// partition count. Throws `brokersUnreachable` or `topicNotFound` with one clear reason.
    public func partitionCount(of topic: String) throws -> Int {
        try client.partitionCount(of: topic, bootstrapServers: configuration.bootstrapServers, timeout: configuration.connectTimeout)
    }

    private func topicHandle(_ name: String) throws -> OpaquePointer {
        if let handle = topics[name] { return handle }
        guard let handle = rd_kafka_topic_new(client.handle, name, nil) else {
            let code = rd_kafka_last_error()
            throw KafkaError(code: .produceFailed, rdKafkaCode: code.rawValue, reason: "topic '\(name)': \(errorString(code))")
        }
        topics[name] = handle
        return handle
    }

    /// Queues one message (its bytes are copied) and returns at once. When librdkafka's queue is full it
    /// serves delivery reports and retries, so this only waits when the broker is slower than the caller.
    ///
    /// - Parameters:
    ///   - partition: a partition number, or `nil` to let the partitioner choose (random for a null key).
    ///   - tag: a small non-negative number counted in `deliveredCount(tag:)` when the broker acknowledges.
    public func send(
        topic: String,
        partition: Int32? = nil,
        key: UnsafeRawBufferPointer? = nil,
        payload: UnsafeRawBufferPointer,
        tag: Int = 0
    ) throws {
        while try !trySend(topic: topic, partition: partition, key: key, payload: payload, tag: tag, waitingIfFull: .milliseconds(10)) {}
    }

    /// Queues one message like `send`, but when librdkafka's queue is full it serves delivery reports for
    /// up to `wait` and returns `false` (nothing queued), so that a caller can check for a stop request
    /// between attempts instead of waiting for a slow or gone broker.
    public func trySend(
        topic: String,
        partition: Int32? = nil,
        key: UnsafeRawBufferPointer? = nil,
        payload: UnsafeRawBufferPointer,
        tag: Int = 0,
        waitingIfFull wait: Duration
    ) throws -> Bool {
        precondition(tag >= 0, "tags are non-negative")
        let handle = try topicHandle(topic)
        let result = rd_kafka_produce(
            handle,
            partition ?? -1,  // RD_KAFKA_PARTITION_UA
            RD_KAFKA_MSG_F_COPY,
            UnsafeMutableRawPointer(mutating: payload.baseAddress),
            payload.count,
            key?.baseAddress,
            key?.count ?? 0,
            UnsafeMutableRawPointer(bitPattern: tag + 1)
        )
        if result == 0 { return true }
        let code = rd_kafka_last_error()
        guard code == RD_KAFKA_RESP_ERR__QUEUE_FULL else {
            throw KafkaError(
                code: .produceFailed,
                rdKafkaCode: code.rawValue,
                reason: "cannot send to '\(topic)': \(errorString(code))",
                isRetriable: false
            )
        }
        rd_kafka_poll(client.handle, wait.millisecondsInt32)
        return false
    }

    /// Serves delivery reports for up to `timeout`; returns how many events were served.
    @discardableResult
    public func poll(timeout: Duration = .zero) -> Int {
        Int(rd_kafka_poll(client.handle, timeout.millisecondsInt32))
    }

    /// Waits until every queued message is acknowledged or failed. Throws `flushTimedOut` if messages are
    /// still outstanding after `timeout`, then `deliveryFailed` (the first failure) if any message failed.
    public func flush(timeout: Duration) throws {
        let code = rd_kafka_flush(client.handle, timeout.millisecondsInt32)
        let outstanding = Int(rd_kafka_outq_len(client.handle))
        if code != RD_KAFKA_RESP_ERR_NO_ERROR || outstanding > 0 {
            throw KafkaError(
                code: .flushTimedOut,
                rdKafkaCode: code.rawValue,
                reason: "\(outstanding) message(s) still unacknowledged by \(configuration.bootstrapServers) after \(timeout)",
                isRetriable: true
            )
        }
        if let error = client.context.firstDeliveryError {
            throw KafkaError(
                code: .deliveryFailed,
                rdKafkaCode: error.rdKafkaCode,
                reason: "\(failedCount) message(s) not delivered; first: \(error.reason)",
                isRetriable: error.isRetriable
            )
        }
    }

    /// Sends lingering batches at once and serves delivery reports until nothing is outstanding or
    /// `timeout` passes; returns whether nothing is outstanding. Failures are counted, not thrown.
    @discardableResult
    public func awaitAcknowledgements(timeout: Duration) -> Bool {
        rd_kafka_flush(client.handle, timeout.millisecondsInt32)
        return rd_kafka_outq_len(client.handle) == 0
    }

    /// Gives up on every message not yet acknowledged, so that a stopping producer never waits for a slow or
    /// gone broker: purges librdkafka's queues and its requests in flight, then serves their delivery
    /// reports for up to `timeout`. Given-up messages count in `abandonedCount`, not as failures. Returns
    /// how many messages are unacknowledged after it: those given up now, plus any still outstanding
    /// (none unless `timeout` was too short).
    ///
    /// A message given up in flight may still have been written by the broker (its answer is ignored):
    /// `abandonedInFlightCount` says how many such messages there are.
    public func abandonOutstanding(timeout: Duration = .seconds(1)) -> Int {
        let before = abandonedCount
        guard rd_kafka_outq_len(client.handle) > 0 else { return 0 }
        rd_kafka_purge(client.handle, RD_KAFKA_PURGE_F_QUEUE | RD_KAFKA_PURGE_F_INFLIGHT)
        // Purged messages are reported through the delivery callback, served here like acknowledgements.
        awaitAcknowledgements(timeout: timeout)
        return abandonedCount - before + outstandingCount
    }

    /// Messages queued but not yet acknowledged or failed.
    public var outstandingCount: Int { Int(rd_kafka_outq_len(client.handle)) }
    /// Messages the broker acknowledged so far (as of the last poll).
    public var deliveredCount: Int { client.context.deliveredTotal }
    /// Messages with `tag` the broker acknowledged so far.
    public func deliveredCount(tag: Int) -> Int {
        tag < client.context.deliveredByTag.count ? client.context.deliveredByTag[tag] : 0
    }
    /// Messages whose delivery failed so far (not counting those given up by `abandonOutstanding`).
    public var failedCount: Int { client.context.failedDeliveries }
    /// Messages given up by `abandonOutstanding` so far.
    public var abandonedCount: Int { client.context.abandonedDeliveries }
    /// Of `abandonedCount`, those given up in flight: sent, unanswered, perhaps written by the broker.
    public var abandonedInFlightCount: Int { client.context.abandonedInFlight }
    /// The first delivery failure, if any.
    public var firstDeliveryError: KafkaError? { client.context.firstDeliveryError }
}
