import CRdKafka
import Logging

/// A Kafka consumer of one topic, over librdkafka, built for a single hot-path thread.
///
/// Owns an `rd_kafka_t` consumer, its consumer queue and a reused message array; all are freed in `deinit`
/// (after `close`). **Thread:** one thread at a time calls every method (it is `Sendable` only so that it
/// can be handed to the hot-path thread); rebalance handlers run inside `consumeBatch` on that thread.
/// Auto-commit is off: Eddy keeps offsets in its own checkpoint.
public final class KafkaConsumer: @unchecked Sendable {
    /// The configuration this consumer was built from.
    public let configuration: KafkaConsumerConfiguration
    /// Partitions of the topic, from the start-up metadata check.
    public let partitionCount: Int

    private let client: RDKafkaClient
    private let queue: OpaquePointer
    private let messages: UnsafeMutablePointer<UnsafeMutablePointer<rd_kafka_message_t>?>
    private let logger: Logger
    private var pendingError: KafkaError?
    /// Partitions currently assigned, explicitly or by the group.
    public private(set) var assignedPartitions: [Int32] = []
    /// The librdkafka start offset each assigned partition was given.
    private var startOffsets: [Int32: Int64] = [:]

    private init(
        configuration: KafkaConsumerConfiguration,
        partitionCount: Int,
        client: RDKafkaClient,
        queue: OpaquePointer,
        logger: Logger
    ) {
        self.configuration = configuration
        self.partitionCount = partitionCount
        self.client = client
        self.queue = queue
        self.logger = logger
        messages = .allocate(capacity: max(1, configuration.maxBatchSize))
        messages.initialize(repeating: nil, count: max(1, configuration.maxBatchSize))
    }

    /// Creates the consumer and checks, within `configuration.connectTimeout`, that a broker answers and
    /// that the topic exists. Throws `brokersUnreachable` or `topicNotFound` with one clear reason.
    ///
    /// - Parameter statisticsHandler: receives librdkafka's statistics JSON every
    ///   `configuration.statisticsInterval`, on the consuming thread or a librdkafka thread.
    public static func make(
        configuration: KafkaConsumerConfiguration,
        logger: Logger = Logger(label: "eddy.kafka.consumer"),
        statisticsHandler: (@Sendable (String) -> Void)? = nil
    ) throws -> KafkaConsumer {
        guard configuration.maxBatchSize > 0 else {
            throw KafkaError(code: .invalidConfiguration, reason: "maxBatchSize must be positive")
        }
        let context = RDKafkaCallbackContext(logger: logger, statisticsHandler: statisticsHandler)
        let client = try RDKafkaClient.make(
            kind: .consumer,
            properties: configuration.rdKafkaProperties,
            context: context,
            rebalance: true
        )
        // Before the main queue is forwarded: on failure, this check serves the queued error events itself.
        let partitionCount = try client.partitionCount(
            of: configuration.topic,
            bootstrapServers: configuration.bootstrapServers,
            timeout: configuration.connectTimeout
        )
        // Route errors, statistics and rebalances through the consumer queue that consumeBatch drains.
        rd_kafka_poll_set_consumer(client.handle)
        guard let queue = rd_kafka_queue_get_consumer(client.handle) else {
            throw KafkaError(code: .clientCreation, reason: "consumer has no queue (is group.id empty?)")
        }
        let consumer = KafkaConsumer(
            configuration: configuration,
            partitionCount: partitionCount,
            client: client,
            queue: queue,
            logger: logger
        )
        logger.debug(
            "consumer ready",
            metadata: ["eddy.kafka.topic": "\(configuration.topic)", "eddy.kafka.partitions": "\(partitionCount)"]
        )
        return consumer
    }

    deinit {
        close()
        for index in 0..<max(1, configuration.maxBatchSize) {
            if let message = messages[index] { rd_kafka_message_destroy(message) }
        }
        messages.deallocate()
        rd_kafka_queue_destroy(queue)
        // `client` is released after this body: rd_kafka_destroy runs last.
    }

    // MARK: Assignment

    /// Joins the consumer group (`group.id`) and subscribes to the topic. On each assignment `onAssign` gets
    /// the partitions and returns the next offset to read for those Eddy has stored (the others start from
    /// `startupMode`); on revocation `onRevoke` gets the partitions taken away, before they go, so the
    /// engine can checkpoint them. Both run inside `consumeBatch`, on its thread.
    ///
    /// Uses the eager rebalance protocol (the default range/round-robin assignors): every rebalance revokes
    /// everything and assigns anew, which keeps Eddy's per-partition state hand-over simple to reason about.
    public func subscribe(
        onAssign: @escaping ([Int32]) -> [Int32: Int64] = { _ in [:] },
        onRevoke: @escaping ([Int32]) -> Void = { _ in }
    ) throws {
        let topic = configuration.topic
        client.context.rebalanceHandler = { [unowned self] isAssignment, list in
            let partitions = (0..<Int(list.pointee.cnt)).map { list.pointee.elems[$0].partition }
            if isAssignment {
                do {
                    // The group's partitions are authoritative (the topic may have grown since start-up).
                    try self.applyAssignment(partitions: partitions, startOffsets: onAssign(partitions))
                } catch let error as KafkaError {
                    self.pendingError = error
                    rd_kafka_assign(self.client.handle, nil)
                } catch {
                    preconditionFailure("assign throws only KafkaError")
                }
            } else {
                onRevoke(partitions)
                rd_kafka_assign(self.client.handle, nil)
                self.assignedPartitions = []
                self.startOffsets = [:]
            }
        }
        let list = RDKafkaPartitionList(topic: topic, partitions: [-1])
        let code = rd_kafka_subscribe(client.handle, list.pointer)
        guard code == RD_KAFKA_RESP_ERR_NO_ERROR else {
            throw KafkaError(code: .partitionControlFailed, rdKafkaCode: code.rawValue, reason: "subscribe to '\(topic)': \(errorString(code))")
        }
    }

    /// Assigns partitions explicitly (no group membership). `startOffsets` holds the next offset to read for
    /// partitions Eddy has stored; the others start from `configuration.startupMode`.
    public func assign(partitions: [Int32], startOffsets: [Int32: Int64] = [:]) throws {
        for partition in partitions where partition < 0 || Int(partition) >= partitionCount {
            throw KafkaError(
                code: .partitionNotFound,
                reason: "partition \(partition) is not in topic '\(configuration.topic)' (\(partitionCount) partitions)"
            )
        }
        try applyAssignment(partitions: partitions, startOffsets: startOffsets)
    }

    private func applyAssignment(partitions: [Int32], startOffsets: [Int32: Int64]) throws {
        let offsets = try resolveStartOffsets(partitions: partitions, stored: startOffsets)
        let list = RDKafkaPartitionList(topic: configuration.topic, partitions: partitions, offsets: offsets)
        let code = rd_kafka_assign(client.handle, list.pointer)
        guard code == RD_KAFKA_RESP_ERR_NO_ERROR else {
            throw KafkaError(code: .partitionControlFailed, rdKafkaCode: code.rawValue, reason: "assign: \(errorString(code))")
        }
        assignedPartitions = partitions
        self.startOffsets = Dictionary(uniqueKeysWithValues: zip(partitions, offsets))
        logger.debug("assigned", metadata: ["eddy.kafka.partitions": "\(partitions)", "eddy.kafka.offsets": "\(offsets)"])
    }

    /// The offset each partition starts at, as a number: the stored one, else where `startupMode` points now
    /// (low or high watermark, or the first offset at the timestamp; the high watermark when nothing is that
    /// recent). A checkpoint can then record where a partition started even before a message arrives, so a
    /// restart never re-applies `latest` and skips what was produced in between.
    ///
    /// - Parameter bounds: each partition's watermarks, as `watermarks(partition:)` returned them.
    public func concreteStartOffsets(
        partitions: [Int32], stored: [Int32: Int64], bounds: [Int32: (low: Int64, high: Int64)]
    ) throws -> [Int32: Int64] {
        var result: [Int32: Int64] = [:]
        var byTimestamp: [Int32: Int64] = [:]
        if case .timestamp(let milliseconds) = configuration.startupMode {
            byTimestamp = try offsetsForTimestamp(milliseconds, partitions: partitions.filter { stored[$0] == nil })
        }
        for partition in partitions {
            if let offset = stored[partition] {
                result[partition] = offset
                continue
            }
            guard let (low, high) = bounds[partition] else {
                throw KafkaError(code: .invalidConfiguration, reason: "no watermarks given for partition \(partition)")
            }
            switch configuration.startupMode {
            case .earliest: result[partition] = low
            case .latest: result[partition] = high
            case .timestamp: result[partition] = byTimestamp[partition].flatMap { $0 >= 0 ? $0 : nil } ?? high
            }
        }
        return result
    }

    /// The librdkafka start offset of each partition: the stored one, else the startup mode's.
    func resolveStartOffsets(partitions: [Int32], stored: [Int32: Int64]) throws -> [Int64] {
        switch configuration.startupMode {
        case .earliest: return partitions.map { stored[$0] ?? Self.offsetBeginning }
        case .latest: return partitions.map { stored[$0] ?? Self.offsetEnd }
        case .timestamp(let milliseconds):
            let unstored = partitions.filter { stored[$0] == nil }
            let found = try offsetsForTimestamp(milliseconds, partitions: unstored)
            return partitions.map { stored[$0] ?? found[$0] ?? Self.offsetEnd }
        }
    }

    private func offsetsForTimestamp(_ milliseconds: Int64, partitions: [Int32]) throws -> [Int32: Int64] {
        guard !partitions.isEmpty else { return [:] }
        let list = RDKafkaPartitionList(
            topic: configuration.topic,
            partitions: partitions,
            offsets: Array(repeating: milliseconds, count: partitions.count)
        )
        let code = rd_kafka_offsets_for_times(client.handle, list.pointer, configuration.connectTimeout.millisecondsInt32)
        let failure = code != RD_KAFKA_RESP_ERR_NO_ERROR ? code : (0..<list.count).lazy.map { list[$0].err }.first { $0 != RD_KAFKA_RESP_ERR_NO_ERROR }
        if let failure {
            throw KafkaError(
                code: .timestampLookupFailed,
                rdKafkaCode: failure.rawValue,
                reason: "scan.startup.mode='timestamp': the broker at \(configuration.bootstrapServers) could not "
                    + "find offsets for timestamp \(milliseconds) ms in '\(configuration.topic)': \(errorString(failure))",
                isRetriable: failure == RD_KAFKA_RESP_ERR__TIMED_OUT
            )
        }
        var result: [Int32: Int64] = [:]
        // -1 means "no message at or after that time": start at the end.
        for index in 0..<list.count { result[list[index].partition] = list[index].offset < 0 ? Self.offsetEnd : list[index].offset }
        return result
    }

    // MARK: Flow control

    /// Stops fetching these partitions; `consumeBatch` keeps polling (the group stays alive) and delivers
    /// what other partitions have. Messages already fetched for them may still arrive once.
    public func pause(partitions: [Int32]) throws {
        let list = RDKafkaPartitionList(topic: configuration.topic, partitions: partitions)
        let code = rd_kafka_pause_partitions(client.handle, list.pointer)
        if code != RD_KAFKA_RESP_ERR_NO_ERROR {
            throw KafkaError(code: .partitionControlFailed, rdKafkaCode: code.rawValue, reason: "pause: \(errorString(code))")
        }
        if let error = list.firstError(context: "pause") { throw error }
    }

    /// Resumes fetching paused partitions where they stopped.
    public func resume(partitions: [Int32]) throws {
        let list = RDKafkaPartitionList(topic: configuration.topic, partitions: partitions)
        let code = rd_kafka_resume_partitions(client.handle, list.pointer)
        if code != RD_KAFKA_RESP_ERR_NO_ERROR {
            throw KafkaError(code: .partitionControlFailed, rdKafkaCode: code.rawValue, reason: "resume: \(errorString(code))")
        }
        if let error = list.firstError(context: "resume") { throw error }
    }

    /// Moves an assigned partition's read position: the next message delivered for it has this offset.
    /// Also the way to recover after `.offsetOutOfRange` (seek to `low` or `high`, the caller's policy).
    public func seek(partition: Int32, to offset: Int64, timeout: Duration = .seconds(5)) throws {
        let list = RDKafkaPartitionList(topic: configuration.topic, partitions: [partition], offsets: [offset])
        if let error = rd_kafka_seek_partitions(client.handle, list.pointer, timeout.millisecondsInt32) {
            throw consumeError(error, code: .partitionControlFailed, context: "seek \(configuration.topic)[\(partition)] to \(offset)")
        }
        if list.count == 1, list[0].err == RD_KAFKA_RESP_ERR__STATE {
            // A partition stopped by an out-of-range error cannot be sought: assign it anew instead.
            try reassign(partition: partition, at: offset)
            return
        }
        if let error = list.firstError(context: "seek") { throw error }
    }

    /// Assigns the current partitions again, `partition` at `offset` and every other at its current
    /// position (or its start offset if nothing was read from it yet).
    private func reassign(partition: Int32, at offset: Int64) throws {
        let positions = RDKafkaPartitionList(topic: configuration.topic, partitions: assignedPartitions)
        rd_kafka_position(client.handle, positions.pointer)
        let offsets = (0..<positions.count).map { index in
            let entry = positions[index]
            if entry.partition == partition { return offset }
            return entry.offset >= 0 ? entry.offset : (startOffsets[entry.partition] ?? Self.offsetEnd)
        }
        let list = RDKafkaPartitionList(topic: configuration.topic, partitions: assignedPartitions, offsets: offsets)
        let code = rd_kafka_assign(client.handle, list.pointer)
        guard code == RD_KAFKA_RESP_ERR_NO_ERROR else {
            throw KafkaError(code: .partitionControlFailed, rdKafkaCode: code.rawValue, reason: "re-assign to seek: \(errorString(code))")
        }
        for (index, partition) in assignedPartitions.enumerated() { startOffsets[partition] = offsets[index] }
    }

    // MARK: Consuming

    /// Waits up to `timeout` for messages and hands up to `maxMessages` of them to `body` as one batch.
    /// Messages of one partition come in offset order; the engine records `offset + 1` as the next offset.
    ///
    /// The batch and every buffer it hands out are valid only inside `body`: **do not escape them**. The
    /// messages are destroyed when `body` returns. No allocation per message.
    ///
    /// Throws an error raised earlier by a rebalance (e.g. a timestamp lookup failing) or a fatal client error.
    public func consumeBatch(
        maxMessages: Int = .max,
        timeout: Duration,
        _ body: (borrowing KafkaMessageBatch) throws -> Void
    ) throws {
        if let error = pendingError {
            pendingError = nil
            throw error
        }
        if let fatal = client.context.shared.withLock({ $0.fatalError }) { throw fatal }
        let capacity = min(max(1, maxMessages), configuration.maxBatchSize)
        let received = rd_kafka_consume_batch_queue(queue, timeout.millisecondsInt32, messages, capacity)
        if let error = pendingError {
            pendingError = nil
            destroyMessages(count: max(0, received))
            throw error
        }
        guard received >= 0 else {
            let code = rd_kafka_last_error()
            throw KafkaError(code: .client, rdKafkaCode: code.rawValue, reason: "consume: \(errorString(code))", isRetriable: true)
        }
        defer { destroyMessages(count: received) }
        try body(KafkaMessageBatch(messages: messages, count: received, consumer: self))
    }

    private func destroyMessages(count: Int) {
        for index in 0..<count {
            if let message = messages[index] { rd_kafka_message_destroy(message) }
            messages[index] = nil
        }
    }

    // MARK: Inspection

    /// The low (oldest kept) and high (next to be written) offsets of a partition, asked of the broker.
    public func watermarks(partition: Int32, timeout: Duration = .seconds(5)) throws -> (low: Int64, high: Int64) {
        try client.queryWatermarks(topic: configuration.topic, partition: partition, timeout: timeout)
    }

    /// The watermarks librdkafka last saw in fetch responses, without asking the broker (cheap: for lag
    /// metrics). `nil` until a fetch has returned for the partition.
    public func lastKnownWatermarks(partition: Int32) -> (low: Int64, high: Int64)? {
        var low: Int64 = -1
        var high: Int64 = -1
        let code = rd_kafka_get_watermark_offsets(client.handle, configuration.topic, partition, &low, &high)
        return code == RD_KAFKA_RESP_ERR_NO_ERROR && high >= 0 ? (low, high) : nil
    }

    /// The last error librdkafka reported for the client as a whole (e.g. all brokers down), if any. Most
    /// are transient: librdkafka keeps retrying. Secrets are starred out of its reason.
    public var lastClientError: KafkaError? { client.context.shared.withLock { $0.lastClientError } }

    /// When a broker last answered this consumer: the start-up metadata check, then every statistics report
    /// (so it moves only with `configuration.statisticsInterval` set) in which a broker is connected and owes
    /// no reply, or received a reply recently. `now - lastBrokerAnswer` is how long no broker has answered.
    /// Reports are served inside `consumeBatch`.
    public var lastBrokerAnswer: ContinuousClock.Instant { client.context.shared.withLock { $0.brokerLiveness.lastAnswer } }

    /// Leaves the group (if subscribed) and stops fetching. Called by `deinit` if not called before.
    public func close() {
        guard !isClosed else { return }
        isClosed = true
        // The last revocation reaches the default handler (unassign), not the caller's closures.
        client.context.rebalanceHandler = nil
        rd_kafka_consumer_close(client.handle)
    }

    private var isClosed = false

    func errorForMessage(_ message: UnsafeMutablePointer<rd_kafka_message_t>) -> KafkaMessageError {
        let code = message.pointee.err
        let partition = message.pointee.partition
        let offset = message.pointee.offset
        if code == RD_KAFKA_RESP_ERR__PARTITION_EOF {
            return .partitionEOF(partition: partition, offset: offset)
        }
        if code == RD_KAFKA_RESP_ERR__AUTO_OFFSET_RESET || code == RD_KAFKA_RESP_ERR_OFFSET_OUT_OF_RANGE {
            let (low, high) = (try? watermarks(partition: partition, timeout: .seconds(2))) ?? (-1, -1)
            return .offsetOutOfRange(partition: partition, requested: offset, low: low, high: high)
        }
        let reason = message.pointee.payload.map {
            String(decoding: UnsafeRawBufferPointer(start: $0, count: message.pointee.len), as: UTF8.self)
        } ?? errorString(code)
        return .other(
            partition: partition,
            KafkaError(code: .client, rdKafkaCode: code.rawValue, reason: reason, isRetriable: true)
        )
    }

    static let offsetBeginning: Int64 = -2
    static let offsetEnd: Int64 = -1
}

/// A per-message error delivered in a batch in place of a message.
public enum KafkaMessageError: Error, Sendable, Equatable {
    /// The partition is caught up to `offset` (only with `reportsPartitionEOF`).
    case partitionEOF(partition: Int32, offset: Int64)
    /// The offset to read is not in the partition: messages `low..<requested` were removed by retention
    /// (a gap of `low - requested`), or `requested` lies beyond `high`. The partition stops until the
    /// caller seeks; librdkafka never jumps silently (`auto.offset.reset=error`). Watermarks are -1 if they
    /// could not be fetched.
    case offsetOutOfRange(partition: Int32, requested: Int64, low: Int64, high: Int64)
    /// Any other error, for one partition (-1 if none).
    case other(partition: Int32, KafkaError)
}

/// The messages of one `consumeBatch` call, borrowed: valid only inside the closure. Do not escape it nor
/// any buffer it returns.
public struct KafkaMessageBatch: ~Copyable {
    private let messages: UnsafeMutablePointer<UnsafeMutablePointer<rd_kafka_message_t>?>
    /// The number of items (messages and per-message errors).
    public let count: Int
    private unowned let consumer: KafkaConsumer

    init(messages: UnsafeMutablePointer<UnsafeMutablePointer<rd_kafka_message_t>?>, count: Int, consumer: KafkaConsumer) {
        self.messages = messages
        self.count = count
        self.consumer = consumer
    }

    @inline(__always)
    private func message(_ index: Int) -> UnsafeMutablePointer<rd_kafka_message_t> {
        precondition(index >= 0 && index < count, "message index \(index) outside batch of \(count)")
        return messages[index].unsafelyUnwrapped
    }

    /// The partition of item `index`.
    public func partition(at index: Int) -> Int32 { message(index).pointee.partition }

    /// The offset of item `index` (for errors: the offset concerned).
    public func offset(at index: Int) -> Int64 { message(index).pointee.offset }

    /// Whether item `index` is an error rather than a message.
    public func isError(at index: Int) -> Bool { message(index).pointee.err != RD_KAFKA_RESP_ERR_NO_ERROR }

    /// The typed error of item `index`, or `nil` if it is a message. May ask the broker for watermarks
    /// (offset out of range), so call it only when `isError(at:)`.
    public func error(at index: Int) -> KafkaMessageError? {
        let message = message(index)
        return message.pointee.err == RD_KAFKA_RESP_ERR_NO_ERROR ? nil : consumer.errorForMessage(message)
    }

    /// The payload of message `index`, bytes as produced (empty for a null payload). Valid only inside the
    /// `consumeBatch` closure: do not escape it.
    public func payload(at index: Int) -> UnsafeRawBufferPointer {
        let bytes = payloadBytes(at: index)
        return UnsafeRawBufferPointer(start: bytes.start, count: bytes.count)
    }

    /// The payload of message `index` as its first byte (nil when empty) and its length: what `payload(at:)`
    /// holds, for a loop that would otherwise call the buffer pointer's getters per message (see
    /// `RowDecoder.decodeMessage(start:count:extraScratch:)`).
    public func payloadBytes(at index: Int) -> (start: UnsafeRawPointer?, count: Int) {
        let message = message(index)
        return (UnsafeRawPointer(message.pointee.payload), message.pointee.len)
    }

    /// The timestamp of message `index` (the producer's create time or the broker's log-append time, as the
    /// topic says) in milliseconds since 1970-01-01 UTC; -1 when the message has none.
    public func timestampMilliseconds(at index: Int) -> Int64 { rd_kafka_message_timestamp(message(index), nil) }

    /// The key of message `index` (empty if none). Valid only inside the closure.
    public func key(at index: Int) -> UnsafeRawBufferPointer {
        let message = message(index)
        return UnsafeRawBufferPointer(start: message.pointee.key, count: message.pointee.key_len)
    }
}
