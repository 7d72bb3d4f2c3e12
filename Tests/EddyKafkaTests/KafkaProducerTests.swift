import EddyKafka
import EddyTestSupport
import Testing

/// A producer that must stop while its broker does not answer: nothing may wait for librdkafka's 30 s timeout.
@Suite struct KafkaProducerTests {
    @Test func aFullQueueMakesTrySendReturnAndAbandoningCountsEveryMessageAsGivenUpNotFailed() throws {
        let broker = try KafkaTestBroker.start(topics: ["t": 1])
        var configuration = KafkaProducerConfiguration(bootstrapServers: broker.bootstrapServers)
        configuration.maxQueuedMessages = 50
        let producer = try KafkaProducer.make(configuration: configuration)
        #expect(try producer.partitionCount(of: "t") == 1)
        let payload: [UInt8] = Array("{}".utf8)
        try payload.withUnsafeBytes { try producer.send(topic: "t", partition: 0, payload: $0) }
        #expect(producer.awaitAcknowledgements(timeout: .seconds(10)) && producer.deliveredCount == 1)

        try broker.broker.setBrokerDown(1)
        var queued = 0
        let started = ContinuousClock.now
        while try payload.withUnsafeBytes({ try producer.trySend(topic: "t", partition: 0, payload: $0, waitingIfFull: .milliseconds(10)) }) {
            queued += 1
        }
        #expect(queued == 50, "the queue holds maxQueuedMessages")
        #expect(ContinuousClock.now - started < .seconds(2))
        #expect(!producer.awaitAcknowledgements(timeout: .milliseconds(200)))

        #expect(producer.abandonOutstanding() == 50)
        #expect(producer.outstandingCount == 0 && producer.abandonedCount == 50)
        #expect(producer.deliveredCount == 1 && producer.failedCount == 0 && producer.firstDeliveryError == nil)
        #expect(producer.abandonOutstanding() == 0, "nothing left to give up")
        #expect(throws: Never.self) { try producer.flush(timeout: .zero) }
    }
}
