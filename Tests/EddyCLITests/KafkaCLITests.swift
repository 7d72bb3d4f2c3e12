import EddyKafka
import EddyTestSupport
import Foundation
import Testing

private func runEddy(_ arguments: [String], timeout: Duration = .seconds(60)) throws -> EddyProcess.Finished {
    try EddyProcess.run(arguments, timeout: timeout)
}

private func temporaryDirectory() throws -> URL {
    let directory = FileManager.default.temporaryDirectory.appendingPathComponent("eddy-kafka-cli-\(UUID().uuidString)")
    try FileManager.default.createDirectory(at: directory, withIntermediateDirectories: true)
    return directory
}

private func countEvents(in text: Substring) -> [String: Int] {
    var counts: [String: Int] = [:]
    for line in text.split(separator: "\n") {
        guard let range = line.range(of: #""event": ""#) else { continue }
        let rest = line[range.upperBound...]
        counts[String(rest.prefix { $0 != "\"" }), default: 0] += 1
    }
    return counts
}

private struct Manifest: Decodable {
    let topic: String
    let total: Int
    let events: [String: Int]
    let failed: Int
}

@Suite struct KafkaCLITests {
    @Test func devBrokerThenProduceWithManifestThenEveryMessageIsReadable() throws {
        let broker = try DevBrokerProcess(topics: ["cli:4"])
        #expect(broker.firstLine.hasPrefix("bootstrap=127.0.0.1:"))
        let directory = try temporaryDirectory()
        defer { try? FileManager.default.removeItem(at: directory) }
        let manifestPath = directory.appendingPathComponent("m.json").path

        let produced = try runEddy([
            "produce", "--brokers", broker.bootstrapServers, "--topic", "cli", "--count", "100000", "--rate", "0",
            "--seed", "5", "--manifest", manifestPath,
        ])
        #expect(produced.status == 0, "\(produced.standardError)")
        let manifest = try JSONDecoder().decode(Manifest.self, from: Data(contentsOf: URL(fileURLWithPath: manifestPath)))
        #expect(manifest.topic == "cli" && manifest.total == 100_000 && manifest.failed == 0)
        #expect(manifest.events.values.reduce(0, +) == manifest.total)
        #expect(Set(manifest.events.keys) == ["click", "scroll", "submit", "download", "focus"])

        // Read it all back with Eddy's consumer.
        var configuration = KafkaConsumerConfiguration(bootstrapServers: broker.bootstrapServers, topic: "cli")
        configuration.startupMode = .earliest
        let consumer = try KafkaConsumer.make(configuration: configuration)
        #expect(try (0..<4).map { try consumer.watermarks(partition: $0).low } == [0, 0, 0, 0])
        try consumer.assign(partitions: [0, 1, 2, 3])
        let consumed = try consumer.collect(timeout: .seconds(30)) { messages, _ in messages.count >= manifest.total }.messages
        consumer.close()
        #expect(consumed.count == manifest.total)
        let text = consumed.map { String(decoding: $0.payload, as: UTF8.self) }.joined(separator: "\n")
        #expect(countEvents(in: Substring(text)) == manifest.events)

        // And with kcat, where installed.
        let kcat = ["/usr/bin/kcat", "/usr/local/bin/kcat"].first { FileManager.default.isExecutableFile(atPath: $0) }
        if let kcat {
            let process = Process()
            process.executableURL = URL(fileURLWithPath: kcat)
            process.arguments = ["-C", "-b", broker.bootstrapServers, "-t", "cli", "-o", "beginning", "-e", "-q"]
            let output = Pipe()
            process.standardOutput = output
            try process.run()
            let data = output.fileHandleForReading.readDataToEndOfFile()
            process.waitUntilExit()
            let lines = String(decoding: data, as: UTF8.self)
            #expect(lines.split(separator: "\n").count == manifest.total)
            #expect(countEvents(in: Substring(lines)) == manifest.events)
        }
        #expect(broker.stop() == 0)
    }

    @Test func sameSeedSameStream() throws {
        let broker = try KafkaTestBroker.start(topics: ["first": 1, "second": 1])
        for topic in ["first", "second"] {
            let run = try runEddy(["produce", "--brokers", broker.bootstrapServers, "--topic", topic, "--count", "300", "--rate", "0", "--seed", "77"])
            #expect(run.status == 0, "\(run.standardError)")
        }
        func stream(_ topic: String) throws -> [String] {
            var configuration = KafkaConsumerConfiguration(bootstrapServers: broker.bootstrapServers, topic: topic)
            configuration.startupMode = .earliest
            let consumer = try KafkaConsumer.make(configuration: configuration)
            defer { consumer.close() }
            try consumer.assign(partitions: [0])
            // Drop the timestamp: it follows the clock.
            return try consumer.collect { messages, _ in messages.count >= 300 }.messages.map {
                String(String(decoding: $0.payload, as: UTF8.self).drop { $0 != "," })
            }
        }
        let first = try stream("first")
        #expect(first.count == 300)
        #expect(first == (try stream("second")))
    }

    @Test func rateIsHonouredAndSIGTERMStopsWithAnExactManifest() throws {
        let broker = try KafkaTestBroker.start(topics: ["paced": 2])
        let directory = try temporaryDirectory()
        defer { try? FileManager.default.removeItem(at: directory) }
        let manifestPath = directory.appendingPathComponent("m.json").path
        let started = ContinuousClock.now
        let process = try EddyProcess.launch(
            ["produce", "--brokers", broker.bootstrapServers, "--topic", "paced", "--rate", "50", "--manifest", manifestPath],
            outputDirectory: directory.path)
        // Wait until the broker holds at least 10 messages, then stop the generator.
        var configuration = KafkaConsumerConfiguration(bootstrapServers: broker.bootstrapServers, topic: "paced")
        configuration.startupMode = .earliest
        let consumer = try KafkaConsumer.make(configuration: configuration)
        defer { consumer.close() }
        func held() throws -> Int64 { try (0..<2).map { try consumer.watermarks(partition: $0).high }.reduce(0, +) }
        let deadline = ContinuousClock.now + .seconds(20)
        while try held() < 10, ContinuousClock.now < deadline {}
        let elapsedAtTen = ContinuousClock.now - started
        process.send(SIGTERM)
        #expect(process.waitForExit(timeout: .seconds(20)) == 0)
        // 50 messages/s: the 10th cannot be sent before 180 ms.
        #expect(elapsedAtTen >= .milliseconds(180))
        let manifest = try JSONDecoder().decode(Manifest.self, from: Data(contentsOf: URL(fileURLWithPath: manifestPath)))
        #expect(manifest.total >= 10 && manifest.failed == 0)
        #expect(Int64(manifest.total) == (try held()))
        #expect(manifest.events.values.reduce(0, +) == manifest.total)
    }

    @Test func wrongBootstrapAddressIsOneErrorLine() throws {
        let address = "127.0.0.1:\(KafkaTestBroker.unusedLoopbackPort())"
        let started = ContinuousClock.now
        let run = try runEddy(["produce", "--brokers", address, "--topic", "t", "--count", "1", "--connect-timeout", "1"], timeout: .seconds(20))
        #expect(run.status != 0)
        #expect(ContinuousClock.now - started < .seconds(10))
        let lines = run.standardError.split(separator: "\n")
        #expect(lines.count == 1)
        #expect(lines.first?.hasPrefix("Error: ") == true && lines.first?.contains(address) == true)
    }

    @Test func missingTopicIsOneErrorLineNamingTheTopics() throws {
        let broker = try KafkaTestBroker.start(topics: ["exists": 2])
        let run = try runEddy(["produce", "--brokers", broker.bootstrapServers, "--topic", "missing", "--count", "1"])
        #expect(run.status != 0)
        let lines = run.standardError.split(separator: "\n")
        #expect(lines.count == 1)
        #expect(lines.first?.contains("topic 'missing' does not exist") == true && lines.first?.contains("'exists'") == true)
    }

    @Test(arguments: [
        ["produce", "--brokers", "127.0.0.1:1", "--topic", "t", "--count=-5"],
        ["produce", "--brokers", "127.0.0.1:1", "--topic", "t", "--rate", "fast"],
        ["dev-broker", "--topic", "bad:zero"],
        ["dev-broker", "--port", "70000"],
    ])
    func badOptionValueIsAClearErrorAndNoBroker(arguments: [String]) throws {
        let run = try runEddy(arguments, timeout: .seconds(20))
        #expect(run.status != 0)
        let first = run.standardError.split(separator: "\n").first ?? ""
        #expect(first.hasPrefix("Error: "))
        #expect(run.standardOutput.isEmpty)
    }
}
