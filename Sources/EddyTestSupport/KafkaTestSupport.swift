import EddyKafka
import EddyWorkload
import Logging

/// An in-process Kafka broker for tests and benchmarks (librdkafka's mock cluster), torn down when the
/// last reference goes. Each test should start its own: brokers are cheap and share nothing.
public final class KafkaTestBroker: Sendable {
    /// The mock cluster, for fault injection (`setBrokerDown`, …).
    public let broker: KafkaDevBroker
    /// `host:port` for clients.
    public var bootstrapServers: String { broker.bootstrapServers }

    private init(broker: KafkaDevBroker) { self.broker = broker }

    /// Starts a broker holding `topics` (name → partition count).
    public static func start(topics: [String: Int], brokers: Int = 1) throws -> KafkaTestBroker {
        KafkaTestBroker(broker: try KafkaDevBroker.make(partitionsByTopic: topics, brokers: brokers))
    }

    /// Produces `messages` (partition, payload) in order and waits until the broker acknowledged each one.
    public func produce(topic: String, messages: [(partition: Int32, payload: [UInt8])], timeout: Duration = .seconds(20)) throws {
        let producer = try KafkaProducer.make(configuration: KafkaProducerConfiguration(bootstrapServers: bootstrapServers))
        for message in messages {
            try message.payload.withUnsafeBytes { try producer.send(topic: topic, partition: message.partition, payload: $0) }
        }
        try producer.flush(timeout: timeout)
    }

    /// Produces `count` generated user events (as `eddy produce` does), round-robin over `partitions`, and
    /// returns how many of each event the broker acknowledged.
    public func produceEvents(
        topic: String,
        count: Int,
        partitions: Int32,
        seed: UInt64 = 1,
        timeout: Duration = .seconds(30)
    ) throws -> KafkaProducedEvents {
        let producer = try KafkaProducer.make(configuration: KafkaProducerConfiguration(bootstrapServers: bootstrapServers))
        var generator = UserEventGenerator(seed: seed)
        let timestamp = EventTimestamp.now()
        var buffer: [UInt8] = []
        buffer.reserveCapacity(256)
        for index in 0..<count {
            buffer.removeAll(keepingCapacity: true)
            let event = generator.appendMessage(timestamp: timestamp, to: &buffer)
            try buffer.withUnsafeBytes {
                try producer.send(topic: topic, partition: Int32(index % Int(partitions)), payload: $0, tag: event)
            }
        }
        try producer.flush(timeout: timeout)
        var counts: [String: Int] = [:]
        for (index, name) in UserEventGenerator.eventNames.enumerated() { counts[name] = producer.deliveredCount(tag: index) }
        return KafkaProducedEvents(total: producer.deliveredCount, countsByEvent: counts)
    }

    /// Makes the next `count` Fetch requests the mock handles answer OFFSET_OUT_OF_RANGE for every partition
    /// they ask for, whatever the offset: the fault of a broker that answers it for an offset it holds.
    public func failNextFetchesWithOffsetOutOfRange(_ count: Int = 1) {
        broker.pushRequestErrors(apiKey: Self.fetchAPIKey, codes: Array(repeating: Self.offsetOutOfRangeCode, count: count))
    }

    /// Kafka's API key of Fetch requests.
    public static let fetchAPIKey: Int16 = 1
    /// Kafka's OFFSET_OUT_OF_RANGE error code.
    public static let offsetOutOfRangeCode: Int32 = 1

    /// Takes every broker of the cluster down (connections closed, new ones refused), or brings them back.
    public func setAllBrokers(up: Bool) throws {
        for id in 1...Int32(broker.brokerCount) {
            if up { try broker.setBrokerUp(id) } else { try broker.setBrokerDown(id) }
        }
    }

    /// Low watermarks of `partitions` of `topic`: all 0 means the mock has dropped nothing.
    public func lowWatermarks(topic: String, partitions: Int32) throws -> [Int64] {
        let consumer = try KafkaConsumer.make(configuration: KafkaConsumerConfiguration(bootstrapServers: bootstrapServers, topic: topic))
        defer { consumer.close() }
        return try (0..<partitions).map { try consumer.watermarks(partition: $0).low }
    }
}

/// What a producing helper got acknowledged.
public struct KafkaProducedEvents: Sendable, Equatable {
    public let total: Int
    public let countsByEvent: [String: Int]
}

/// One consumed message, copied out of the batch (tests only: the hot path never copies).
public struct KafkaConsumedMessage: Sendable, Equatable {
    public let partition: Int32
    public let offset: Int64
    public let payload: [UInt8]
}

extension KafkaConsumer {
    /// Consumes until `until` holds for what was collected (checked after every batch) or `timeout` passes;
    /// per-message errors are collected apart. For tests: copies every payload.
    public func collect(
        timeout: Duration = .seconds(20),
        until: ([KafkaConsumedMessage], [KafkaMessageError]) -> Bool
    ) throws -> (messages: [KafkaConsumedMessage], errors: [KafkaMessageError]) {
        var messages: [KafkaConsumedMessage] = []
        var errors: [KafkaMessageError] = []
        let deadline = ContinuousClock.now + timeout
        while !until(messages, errors), ContinuousClock.now < deadline {
            try consumeBatch(maxMessages: 1000, timeout: .milliseconds(100)) { batch in
                for index in 0..<batch.count {
                    if let error = batch.error(at: index) {
                        errors.append(error)
                    } else {
                        messages.append(
                            KafkaConsumedMessage(partition: batch.partition(at: index), offset: batch.offset(at: index), payload: Array(batch.payload(at: index)))
                        )
                    }
                }
            }
        }
        return (messages, errors)
    }
}

extension KafkaTestBroker {
    /// A loopback TCP port that was free a moment ago: `LoopbackPort.unused()`.
    public static func unusedLoopbackPort() -> Int { LoopbackPort.unused() }
}
