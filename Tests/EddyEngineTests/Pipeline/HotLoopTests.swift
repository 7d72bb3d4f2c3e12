@testable import EddyEngine
import EddyKafka
import EddyTestSupport
import Testing

/// The hot loop against a real (mock-cluster) consumer: what it does when Kafka hands out a message again.
@Suite struct HotLoopTests {
    /// A re-assignment that races with messages already queued (the recovery from a spurious offset-out-of-range)
    /// can deliver a partition's messages a second time; a seek back does the same on purpose here.
    @Test func messagesDeliveredAgainBelowTheNextOffsetAreDroppedAndCountedApart() throws {
        let broker = try KafkaTestBroker.start(topics: ["again": 1])
        func produce(_ range: Range<Int>) throws {
            try broker.produce(topic: "again", messages: range.map { (0, Array(#"{"s": "m\#($0)"}"#.utf8)) })
        }
        try produce(0..<10)
        let consumer = try KafkaConsumer.make(configuration: KafkaConsumerConfiguration(bootstrapServers: broker.bootstrapServers, topic: "again"))
        defer { consumer.close() }
        try consumer.assign(partitions: [0], startOffsets: [0: 0])
        var loop = HotLoop(
            aggregators: [], decoder: RowDecoder(schema: schema(("s", .string))), sourceRows: nil, nextOffsets: [0], consumedPerPartition: [0])
        func consume(until done: (HotLoop) -> Bool) throws {
            let deadline = ContinuousClock.now + .seconds(20)
            while !done(loop) && ContinuousClock.now < deadline {
                try consumer.consumeBatch(maxMessages: 100, timeout: .milliseconds(100)) { batch in
                    try loop.apply(batch) { error, _ in Issue.record("unexpected \(error)") }
                }
            }
        }

        try consume { $0.nextOffsets == [10] }
        #expect(loop.nextOffsets == [10] && loop.decodedRows == 10)

        try consumer.seek(partition: 0, to: 4)
        try consume { $0.counters.redeliveredMessages == 6 }
        #expect(loop.counters.redeliveredMessages == 6)
        #expect(loop.nextOffsets == [10] && loop.decodedRows == 10 && loop.consumedPerPartition == [10])

        try produce(10..<15)
        try consume { $0.nextOffsets == [15] }
        #expect(loop.nextOffsets == [15] && loop.decodedRows == 15 && loop.consumedPerPartition == [15])
        #expect(loop.counters.redeliveredMessages == 6)
    }
}
