import EddyKafka
import EddyTestSupport
import Testing

@Suite struct KafkaConfigurationTests {
    private func value(_ key: String, in properties: [(String, String)]) -> String? {
        properties.last { $0.0 == key }?.1
    }

    // The SQL options are compiled into these typed settings by EddySQL (see its tests); here: the rendering.
    @Test func typedSettingsRenderToLibrdkafkaProperties() {
        var configuration = KafkaConsumerConfiguration(bootstrapServers: "host:9092", topic: "test")
        configuration.startupMode = .earliest
        configuration.security.securityProtocol = "sasl_ssl"
        configuration.security.saslMechanism = "SCRAM-SHA-256"
        configuration.security.saslUsername = "u"
        configuration.security.saslPassword = "hunter2"
        configuration.clientProperties = [("fetch.wait.max.ms", "50")]
        #expect(configuration.groupID == "eddy-test")
        let properties = configuration.rdKafkaProperties
        #expect(value("bootstrap.servers", in: properties) == "host:9092")
        #expect(value("security.protocol", in: properties) == "sasl_ssl")
        #expect(value("sasl.mechanism", in: properties) == "SCRAM-SHA-256")
        #expect(value("sasl.username", in: properties) == "u")
        #expect(value("sasl.password", in: properties) == "hunter2")
        #expect(value("fetch.wait.max.ms", in: properties) == "50")
        #expect(value("enable.auto.commit", in: properties) == "false")
        #expect(value("enable.auto.offset.store", in: properties) == "false")
        #expect(value("auto.offset.reset", in: properties) == "error")
        #expect(value("enable.partition.eof", in: properties) == "false")
        #expect(value("statistics.interval.ms", in: properties) == nil)
        #expect(value("sasl.password", in: configuration.maskedProperties) == "***")
        #expect(!configuration.maskedProperties.contains { $0.1.contains("hunter2") })
    }

    @Test func librdkafkaRejectsABadPropertyWithoutShowingSecrets() throws {
        var configuration = KafkaConsumerConfiguration(bootstrapServers: "127.0.0.1:1", topic: "t")
        configuration.clientProperties = [("sasl.password", "hunter2"), ("fetch.wait.max.ms", "soon")]
        let error = try #require(throws: KafkaError.self) { try KafkaConsumer.make(configuration: configuration) }
        #expect(error.code == .invalidConfiguration)
        #expect(error.reason.contains("fetch.wait.max.ms"))
        #expect(!error.reason.contains("hunter2"))
    }
}

@Suite struct KafkaDevBrokerTests {
    @Test func chosenPortRelaysToTheMockCluster() throws {
        let port = KafkaTestBroker.unusedLoopbackPort()
        let broker = try KafkaDevBroker.make(partitionsByTopic: ["relayed": 3], port: port)
        #expect(broker.bootstrapServers == "127.0.0.1:\(port)")
        let producer = try KafkaProducer.make(configuration: KafkaProducerConfiguration(bootstrapServers: broker.bootstrapServers))
        #expect(try producer.partitionCount(of: "relayed") == 3)
        try Array("hello".utf8).withUnsafeBytes { try producer.send(topic: "relayed", partition: 2, payload: $0, tag: 3) }
        try producer.flush(timeout: .seconds(10))
        #expect(producer.deliveredCount == 1 && producer.deliveredCount(tag: 3) == 1)
        let consumer = try KafkaConsumer.make(configuration: KafkaConsumerConfiguration(bootstrapServers: broker.bootstrapServers, topic: "relayed"))
        defer { consumer.close() }
        #expect(try consumer.watermarks(partition: 2) == (low: 0, high: 1))
    }

    @Test func producerReportsAMissingTopic() throws {
        let broker = try KafkaTestBroker.start(topics: ["here": 1])
        let producer = try KafkaProducer.make(configuration: KafkaProducerConfiguration(bootstrapServers: broker.bootstrapServers))
        let error = try #require(throws: KafkaError.self) { try producer.partitionCount(of: "nowhere") }
        #expect(error.code == .topicNotFound && error.reason.contains("'here'"))
    }
}
