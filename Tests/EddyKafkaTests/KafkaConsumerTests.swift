import EddyKafka
import EddyTestSupport
import Synchronization
import Testing

/// Fails the test unless the messages of each partition have exactly the offsets `start..<start+count`
/// (no duplicate, no hole).
private func expectContiguous(_ messages: [KafkaConsumedMessage], partitions: [Int32: Int], from start: Int64 = 0) {
    for (partition, expected) in partitions {
        let offsets = messages.filter { $0.partition == partition }.map(\.offset)
        #expect(offsets == Array(start..<(start + Int64(expected))), "partition \(partition): offsets not contiguous from \(start)")
    }
}

private func eventName(in payload: [UInt8]) -> String? {
    let marker = Array(#""event": ""#.utf8)
    guard payload.count > marker.count else { return nil }
    for start in 0...(payload.count - marker.count) where payload[start..<(start + marker.count)].elementsEqual(marker) {
        let rest = payload[(start + marker.count)...]
        guard let end = rest.firstIndex(of: UInt8(ascii: "\"")) else { return nil }
        return String(decoding: rest[..<end], as: UTF8.self)
    }
    return nil
}

private func makeConsumer(
    _ broker: KafkaTestBroker,
    topic: String,
    mode: KafkaStartupMode = .earliest,
    _ adjust: (inout KafkaConsumerConfiguration) -> Void = { _ in }
) throws -> KafkaConsumer {
    var configuration = KafkaConsumerConfiguration(bootstrapServers: broker.bootstrapServers, topic: topic)
    configuration.startupMode = mode
    adjust(&configuration)
    return try KafkaConsumer.make(configuration: configuration)
}

@Suite struct KafkaConsumerTests {
    @Test func consumesExactlyWhatWasProducedAcrossFourPartitions() throws {
        let broker = try KafkaTestBroker.start(topics: ["events": 4])
        let produced = try broker.produceEvents(topic: "events", count: 4000, partitions: 4, seed: 9)
        #expect(produced.total == 4000)
        #expect(try broker.lowWatermarks(topic: "events", partitions: 4) == [0, 0, 0, 0])

        let consumer = try makeConsumer(broker, topic: "events")
        defer { consumer.close() }
        #expect(consumer.partitionCount == 4)
        try consumer.assign(partitions: [0, 1, 2, 3])
        let (messages, errors) = try consumer.collect { messages, _ in messages.count >= produced.total }
        #expect(errors.isEmpty)
        #expect(messages.count == produced.total)
        expectContiguous(messages, partitions: [0: 1000, 1: 1000, 2: 1000, 3: 1000])
        var counts: [String: Int] = [:]
        for message in messages { counts[eventName(in: message.payload) ?? "?", default: 0] += 1 }
        #expect(counts == produced.countsByEvent)
        // Lag for metrics comes from what fetches saw, without a request.
        #expect(consumer.lastKnownWatermarks(partition: 3)?.high == 1000)
    }

    @Test func pausedPartitionDeliversNothingUntilResumed() throws {
        let broker = try KafkaTestBroker.start(topics: ["paused": 2])
        try broker.produce(topic: "paused", messages: (0..<100).map { (Int32($0 % 2), Array("m\($0)".utf8)) })
        let consumer = try makeConsumer(broker, topic: "paused")
        defer { consumer.close() }
        try consumer.assign(partitions: [0, 1])
        try consumer.pause(partitions: [0])
        let first = try consumer.collect { messages, _ in messages.count >= 50 }
        #expect(first.messages.count == 50)
        #expect(first.messages.allSatisfy { $0.partition == 1 })
        try consumer.resume(partitions: [0])
        let rest = try consumer.collect { messages, _ in messages.count >= 50 }
        #expect(rest.messages.allSatisfy { $0.partition == 0 })
        expectContiguous(rest.messages, partitions: [0: 50])
    }

    @Test func seekRereadsFromTheGivenOffset() throws {
        let broker = try KafkaTestBroker.start(topics: ["seek": 1])
        try broker.produce(topic: "seek", messages: (0..<20).map { (0, Array("m\($0)".utf8)) })
        let consumer = try makeConsumer(broker, topic: "seek")
        defer { consumer.close() }
        try consumer.assign(partitions: [0])
        let all = try consumer.collect { messages, _ in messages.count >= 20 }
        expectContiguous(all.messages, partitions: [0: 20])
        try consumer.seek(partition: 0, to: 5)
        let again = try consumer.collect { messages, _ in messages.count >= 15 }
        expectContiguous(again.messages, partitions: [0: 15], from: 5)
        #expect(again.messages.first?.payload == Array("m5".utf8))
    }

    @Test func storedOffsetWinsOverStartupMode() throws {
        let broker = try KafkaTestBroker.start(topics: ["stored": 2])
        try broker.produce(topic: "stored", messages: (0..<20).map { (Int32($0 % 2), Array("m\($0)".utf8)) })
        let consumer = try makeConsumer(broker, topic: "stored", mode: .earliest)
        defer { consumer.close() }
        try consumer.assign(partitions: [0, 1], startOffsets: [0: 7])
        let (messages, _) = try consumer.collect { messages, _ in messages.count >= 13 }
        #expect(messages.count == 13)
        expectContiguous(messages.filter { $0.partition == 0 }, partitions: [0: 3], from: 7)
        expectContiguous(messages.filter { $0.partition == 1 }, partitions: [1: 10])
    }

    @Test func latestStartSkipsWhatWasThere() throws {
        let broker = try KafkaTestBroker.start(topics: ["latest": 1])
        try broker.produce(topic: "latest", messages: (0..<10).map { (0, Array("old\($0)".utf8)) })
        let consumer = try makeConsumer(broker, topic: "latest", mode: .latest)
        defer { consumer.close() }
        try consumer.assign(partitions: [0])
        // The end offset is resolved asynchronously: keep producing until something new arrives.
        var received: [KafkaConsumedMessage] = []
        let deadline = ContinuousClock.now + .seconds(20)
        while received.isEmpty, ContinuousClock.now < deadline {
            try broker.produce(topic: "latest", messages: [(0, Array("new".utf8))])
            received = try consumer.collect(timeout: .milliseconds(300)) { messages, _ in !messages.isEmpty }.messages
        }
        #expect(!received.isEmpty)
        #expect(received.allSatisfy { $0.offset >= 10 && $0.payload == Array("new".utf8) })
    }

    @Test func timestampStartIsAskedOfTheBrokerAndItsFailureIsClear() throws {
        let broker = try KafkaTestBroker.start(topics: ["times": 1])
        let consumer = try makeConsumer(broker, topic: "times", mode: .timestamp(millisecondsSinceEpoch: 1_700_000_000_000)) {
            $0.connectTimeout = .seconds(3)
        }
        defer { consumer.close() }
        // librdkafka 2.0.2's mock cluster answers every by-time lookup with "no such message" (-1), so the
        // lookup is checked through its failure: make ListOffsets (API key 2) fail.
        broker.broker.pushRequestErrors(apiKey: 2, codes: Array(repeating: 29, count: 5))  // TOPIC_AUTHORIZATION_FAILED
        let error = try #require(throws: KafkaError.self) { try consumer.assign(partitions: [0]) }
        #expect(error.code == .timestampLookupFailed)
        #expect(error.reason.contains("1700000000000") && error.reason.contains("'times'"))
        #expect(consumer.assignedPartitions.isEmpty)
        // A stored offset needs no lookup.
        try consumer.assign(partitions: [0], startOffsets: [0: 0])
        #expect(consumer.assignedPartitions == [0])
    }

    @Test func groupMemberStartsAssignedPartitionsFromTheStoredOffsets() throws {
        let broker = try KafkaTestBroker.start(topics: ["grouped": 2])
        try broker.produce(topic: "grouped", messages: (0..<20).map { (Int32($0 % 2), Array("m\($0)".utf8)) })
        let consumer = try makeConsumer(broker, topic: "grouped")
        defer { consumer.close() }
        var assignments: [[Int32]] = []
        try consumer.subscribe(onAssign: { partitions in
            assignments.append(partitions.sorted())
            return [1: 4]
        })
        let (messages, _) = try consumer.collect(timeout: .seconds(30)) { messages, _ in messages.count >= 16 }
        #expect(assignments == [[0, 1]])
        #expect(consumer.assignedPartitions.sorted() == [0, 1])
        expectContiguous(messages.filter { $0.partition == 0 }, partitions: [0: 10])
        expectContiguous(messages.filter { $0.partition == 1 }, partitions: [1: 6], from: 4)
    }

    @Test func secondGroupMemberTakesPartitionsAwayThroughRevocation() throws {
        let broker = try KafkaTestBroker.start(topics: ["shared": 2])
        // Short group timeouts: the mock coordinator waits up to them for members to rejoin.
        let fastGroup: (inout KafkaConsumerConfiguration) -> Void = {
            $0.clientProperties = [("session.timeout.ms", "6000"), ("max.poll.interval.ms", "6000"), ("heartbeat.interval.ms", "300")]
        }
        let first = try makeConsumer(broker, topic: "shared", fastGroup)
        let second = try makeConsumer(broker, topic: "shared", fastGroup)
        defer {
            first.close()
            second.close()
        }
        var firstRevoked: [[Int32]] = []
        var firstAssigned: [[Int32]] = []
        try first.subscribe(onAssign: { firstAssigned.append($0.sorted()); return [:] }, onRevoke: { firstRevoked.append($0.sorted()) })
        var deadline = ContinuousClock.now + .seconds(30)
        while first.assignedPartitions.count < 2, ContinuousClock.now < deadline {
            try first.consumeBatch(timeout: .milliseconds(50)) { _ in }
        }
        #expect(firstAssigned == [[0, 1]])
        try second.subscribe()
        // Both members must keep polling for the group to rebalance.
        deadline = ContinuousClock.now + .seconds(30)
        while first.assignedPartitions.count + second.assignedPartitions.count != 2 || second.assignedPartitions.isEmpty,
            ContinuousClock.now < deadline
        {
            try first.consumeBatch(timeout: .milliseconds(50)) { _ in }
            try second.consumeBatch(timeout: .milliseconds(50)) { _ in }
        }
        #expect(firstRevoked.first == [0, 1])
        #expect(first.assignedPartitions.count == 1 && second.assignedPartitions.count == 1)
        #expect(Set(first.assignedPartitions + second.assignedPartitions) == [0, 1])
    }

    @Test func nonJSONPayloadsPassThroughVerbatim() throws {
        let broker = try KafkaTestBroker.start(topics: ["raw": 1])
        let payloads: [[UInt8]] = [[0xFF, 0x00, 0xFE, 0x7B], Array("not json".utf8), [0x22], Array(#"{"event": "click"}"#.utf8)]
        try broker.produce(topic: "raw", messages: payloads.map { (0, $0) })
        let consumer = try makeConsumer(broker, topic: "raw")
        defer { consumer.close() }
        try consumer.assign(partitions: [0])
        let (messages, _) = try consumer.collect { messages, _ in messages.count >= payloads.count }
        #expect(messages.map(\.payload) == payloads)
    }

    @Test func brokerDownAndUpLosesAndDuplicatesNothing() throws {
        let broker = try KafkaTestBroker.start(topics: ["outage": 2])
        try broker.produce(topic: "outage", messages: (0..<400).map { (Int32($0 % 2), Array("a\($0)".utf8)) })
        let consumer = try makeConsumer(broker, topic: "outage")
        defer { consumer.close() }
        try consumer.assign(partitions: [0, 1])
        var messages = try consumer.collect { messages, _ in messages.count >= 100 }.messages
        try broker.broker.setBrokerDown(1)
        // Keep polling while the broker is down, until the client notices it.
        let downDeadline = ContinuousClock.now + .seconds(10)
        while consumer.lastClientError == nil, ContinuousClock.now < downDeadline {
            messages += try consumer.collect(timeout: .milliseconds(100)) { _, _ in false }.messages
        }
        #expect(consumer.lastClientError != nil)
        try broker.broker.setBrokerUp(1)
        try broker.produce(topic: "outage", messages: (400..<600).map { (Int32($0 % 2), Array("a\($0)".utf8)) })
        let before = messages.count
        messages += try consumer.collect(timeout: .seconds(30)) { more, _ in before + more.count >= 600 }.messages
        #expect(messages.count == 600)
        expectContiguous(messages, partitions: [0: 300, 1: 300])
    }

    @Test func storedOffsetBeyondThePartitionIsATypedErrorWithTheGap() throws {
        let broker = try KafkaTestBroker.start(topics: ["gap": 1])
        try broker.produce(topic: "gap", messages: (0..<10).map { (0, Array("m\($0)".utf8)) })
        let consumer = try makeConsumer(broker, topic: "gap")
        defer { consumer.close() }
        try consumer.assign(partitions: [0], startOffsets: [0: 1000])
        let (messages, errors) = try consumer.collect { _, errors in !errors.isEmpty }
        #expect(messages.isEmpty)
        #expect(errors.first == .offsetOutOfRange(partition: 0, requested: 1000, low: 0, high: 10))
        // The caller's policy decides; here: restart from the oldest kept message.
        try consumer.seek(partition: 0, to: 0)
        let after = try consumer.collect { messages, _ in messages.count >= 10 }
        expectContiguous(after.messages, partitions: [0: 10])
    }

    @Test func messagesDroppedByRetentionAreReportedAsAGap() throws {
        let broker = try KafkaTestBroker.start(topics: ["retention": 1])
        // The mock keeps about 5 MB per partition: 8 MB of 200 kB messages pushes the oldest out.
        let payload = [UInt8](repeating: UInt8(ascii: "x"), count: 200_000)
        try broker.produce(topic: "retention", messages: (0..<40).map { _ in (0, payload) })
        let consumer = try makeConsumer(broker, topic: "retention")
        defer { consumer.close() }
        let (low, high) = try consumer.watermarks(partition: 0)
        #expect(low > 0 && high == 40)
        try consumer.assign(partitions: [0], startOffsets: [0: 0])
        let (messages, errors) = try consumer.collect { _, errors in !errors.isEmpty }
        #expect(messages.isEmpty)
        #expect(errors.first == .offsetOutOfRange(partition: 0, requested: 0, low: low, high: 40))
    }

    @Test func outOfRangeAnsweredForAnOffsetThePartitionHoldsIsRetriedWithNothingSkippedOrReadTwice() throws {
        let broker = try KafkaTestBroker.start(topics: ["spurious": 2])
        try broker.produce(topic: "spurious", messages: (0..<200).map { (Int32($0 % 2), Array("m\($0)".utf8)) })
        let consumer = try makeConsumer(broker, topic: "spurious")
        defer { consumer.close() }
        try consumer.assign(partitions: [0, 1])
        var messages = try consumer.collect { messages, _ in messages.count >= 200 }.messages
        #expect(messages.count == 200)

        // The next fetch of every partition is answered OFFSET_OUT_OF_RANGE although the offset is inside.
        broker.failNextFetchesWithOffsetOutOfRange(2)
        try broker.produce(topic: "spurious", messages: (200..<400).map { (Int32($0 % 2), Array("m\($0)".utf8)) })
        var errors: [KafkaMessageError] = []
        var next: [Int32: Int64] = [0: 100, 1: 100]
        let deadline = ContinuousClock.now + .seconds(20)
        while messages.count < 400, ContinuousClock.now < deadline {
            let batch = try consumer.collect(timeout: .milliseconds(200)) { _, errors in !errors.isEmpty }
            messages += batch.messages
            for message in batch.messages { next[message.partition] = message.offset + 1 }
            for error in batch.errors {
                errors.append(error)
                guard case .offsetOutOfRange(let partition, let requested, let low, let high) = error else { continue }
                let expected = next[partition] ?? -1
                // The report names the offset the failed fetch asked for, with the partition's real watermarks.
                #expect(requested == expected && low == 0 && high >= expected)
                let recovery = OffsetOutOfRangeRecovery(expected: expected, low: low, high: high)
                #expect(recovery == .retry(at: expected))
                try consumer.seek(partition: partition, to: recovery.nextOffset)
            }
        }
        #expect(!errors.isEmpty, "the injected fetch errors never reached the consumer")
        #expect(errors.allSatisfy { if case .offsetOutOfRange = $0 { true } else { false } }, "\(errors)")
        #expect(messages.count == 400)
        expectContiguous(messages, partitions: [0: 200, 1: 200])
    }

    @Test func authenticationFailureIsNamedAtErrorLevelAndInTheStartupError() throws {
        // The mock cluster has no SASL: it answers "SASL Handshake not supported by broker", an
        // authentication failure, as a broker with other mechanisms would.
        let broker = try KafkaTestBroker.start(topics: ["secured": 1])
        let logs = RecordedLogs(level: .info)
        var configuration = KafkaConsumerConfiguration(bootstrapServers: broker.bootstrapServers, topic: "secured")
        configuration.connectTimeout = .seconds(3)
        configuration.security.securityProtocol = "SASL_PLAINTEXT"
        configuration.security.saslMechanism = "PLAIN"
        configuration.security.saslUsername = "eddy"
        configuration.security.saslPassword = "hunter2-secret"
        let error = try #require(throws: KafkaError.self) { try KafkaConsumer.make(configuration: configuration, logger: logs.logger()) }
        #expect(error.code == .brokersUnreachable)
        #expect(error.reason.contains("SASL"), "\(error.reason)")
        let errorLines = logs.lines(atLeast: .error)
        // Once: librdkafka repeats the failure at every reconnect.
        #expect(errorLines.filter { $0.text.contains("SASL Handshake not supported") }.count == 1, "\(logs.lines)")
        let everything = logs.lines.map(\.text).joined(separator: "\n") + error.reason
        #expect(!everything.contains("hunter2-secret"))
    }

    @Test func tlsFailureIsNamedAtErrorLevelAndInTheStartupError() throws {
        // The mock cluster speaks plaintext only: a TLS client's handshake is broken off.
        let broker = try KafkaTestBroker.start(topics: ["tls": 1])
        let logs = RecordedLogs(level: .info)
        var configuration = KafkaConsumerConfiguration(bootstrapServers: broker.bootstrapServers, topic: "tls")
        configuration.connectTimeout = .seconds(2)
        configuration.security.securityProtocol = "SSL"
        let error = try #require(throws: KafkaError.self) { try KafkaConsumer.make(configuration: configuration, logger: logs.logger()) }
        #expect(error.code == .brokersUnreachable)
        #expect(error.reason.contains("SSL handshake failed"), "\(error.reason)")
        #expect(logs.lines(atLeast: .error).filter { $0.text.contains("SSL handshake failed") }.count == 1, "\(logs.lines)")
    }

    @Test func brokerSilenceShowsWithinSecondsAndEndsWhenTheBrokerReturns() throws {
        let broker = try KafkaTestBroker.start(topics: ["silence": 2])
        let consumer = try makeConsumer(broker, topic: "silence") { $0.statisticsInterval = .milliseconds(200) }
        defer { consumer.close() }
        try consumer.assign(partitions: [0, 1])
        func silence() -> Duration { ContinuousClock.now - consumer.lastBrokerAnswer }
        func pollUntil(_ condition: () -> Bool) throws -> Bool {
            let deadline = ContinuousClock.now + .seconds(15)
            while !condition(), ContinuousClock.now < deadline { _ = try consumer.collect(timeout: .milliseconds(100)) { _, _ in false } }
            return condition()
        }
        // Fetching from a live broker: it answers at least every fetch wait.
        #expect(try pollUntil { silence() < .seconds(1) })
        try broker.setAllBrokers(up: false)
        #expect(try pollUntil { silence() > .seconds(2) }, "still answering \(silence()) ago with the broker down")
        try broker.setAllBrokers(up: true)
        #expect(try pollUntil { silence() < .seconds(1) }, "silent for \(silence()) after the broker came back")
        try broker.produce(topic: "silence", messages: (0..<10).map { (Int32($0 % 2), Array("m\($0)".utf8)) })
        #expect(try consumer.collect { messages, _ in messages.count >= 10 }.messages.count == 10)
    }

    @Test func wrongBootstrapAddressFailsFastWithOneClearError() throws {
        var configuration = KafkaConsumerConfiguration(bootstrapServers: "127.0.0.1:\(KafkaTestBroker.unusedLoopbackPort())", topic: "t")
        configuration.connectTimeout = .seconds(2)
        let started = ContinuousClock.now
        let error = try #require(throws: KafkaError.self) { try KafkaConsumer.make(configuration: configuration) }
        #expect(error.code == .brokersUnreachable)
        #expect(error.reason.contains(configuration.bootstrapServers))
        #expect(ContinuousClock.now - started < .seconds(6))
    }

    @Test func missingTopicNamesTheTopicsThatExist() throws {
        let broker = try KafkaTestBroker.start(topics: ["present": 1, "other": 2])
        let error = try #require(throws: KafkaError.self) {
            try KafkaConsumer.make(configuration: KafkaConsumerConfiguration(bootstrapServers: broker.bootstrapServers, topic: "absent"))
        }
        #expect(error.code == .topicNotFound)
        #expect(error.reason.contains("'absent'") && error.reason.contains("'present'") && error.reason.contains("'other'"))
    }

    @Test func statisticsReachTheHandler() throws {
        let broker = try KafkaTestBroker.start(topics: ["stats": 1])
        let received = LatestStatistics()
        var configuration = KafkaConsumerConfiguration(bootstrapServers: broker.bootstrapServers, topic: "stats")
        configuration.statisticsInterval = .milliseconds(100)
        let consumer = try KafkaConsumer.make(configuration: configuration) { json in received.value.withLock { $0 = json } }
        defer { consumer.close() }
        try consumer.assign(partitions: [0])
        _ = try consumer.collect(timeout: .seconds(10)) { _, _ in received.value.withLock { $0 != nil } }
        let json = try #require(received.value.withLock { $0 })
        #expect(json.contains("\"type\"") && json.contains("consumer"))
    }
}

private final class LatestStatistics: Sendable {
    let value = Mutex<String?>(nil)
}
