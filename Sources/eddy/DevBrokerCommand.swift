#if canImport(Glibc)
import Glibc
#endif
import ArgumentParser
import Dispatch
import EddyKafka
import Foundation

/// `eddy dev-broker`: hosts librdkafka's mock cluster on 127.0.0.1 until SIGTERM/SIGINT.
struct DevBrokerCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "dev-broker",
        abstract: "Host a Kafka-protocol broker (librdkafka's mock cluster) on 127.0.0.1.",
        discussion: """
            Prints `bootstrap=127.0.0.1:PORT` as its first line on stdout, then serves until SIGTERM or SIGINT (or, with --exit-with-parent, until its parent exits). Any Kafka client (kcat included) can use it.

            With --control, commands on stdin, one a line, change the cluster (each answered on stdout by `ok` or `error: REASON`; EOF ends the channel, not the broker): `broker-down ID`, `broker-up ID` (ids 1 to --brokers), `leader TOPIC PARTITION ID`, `request-errors API_KEY CODE…` (fail the next requests of that Kafka API, e.g. 1 = Fetch, with these Kafka error codes, one request each). eddy drill uses it for broker faults.

            Limits: for development and tests only. Data is kept in memory and lost on exit. The mock drops a partition's oldest messages once the partition holds more than 5 MiB (librdkafka 2.0.2; about 35 000 messages of ~140 bytes). To keep every message of a large run, use enough partitions (`eddy produce` spreads evenly) or consume while producing, and check that the low watermark is still 0.
            """
    )

    @Option(help: "Port to listen on (default: an ephemeral port). Clients bootstrap through it and then talk to the mock's own broker port.")
    var port: Int?

    @Option(name: .customLong("topic"), help: "A topic to create, as NAME or NAME:PARTITIONS (default 1 partition). Repeatable.")
    var topics: [String] = []

    @Option(help: "Number of brokers in the mock cluster.")
    var brokers: Int = 1

    @Flag(help: "Read control commands on stdin (see above) and answer each on stdout.")
    var control = false

    @Option(name: .customLong("exit-with-parent"), help: ArgumentHelp(exitWithParentHelp, valueName: "pid"))
    var exitWithParent: Int32?

    func validate() throws {
        if let port, !(1...65_535).contains(port) { throw ValidationError("--port \(port) is not a TCP port (1-65535)") }
        guard (1...16).contains(brokers) else { throw ValidationError("--brokers must be between 1 and 16") }
        if let exitWithParent, exitWithParent < 1 { throw ValidationError("--exit-with-parent must be a process id, not \(exitWithParent)") }
        _ = try parsedTopics()
    }

    private func parsedTopics() throws -> [String: Int] {
        var result: [String: Int] = [:]
        for text in topics {
            let parts = text.split(separator: ":", omittingEmptySubsequences: false)
            guard (1...2).contains(parts.count), !parts[0].isEmpty,
                let partitions = parts.count == 2 ? Int(parts[1]) : 1, (1...1000).contains(partitions)
            else { throw ValidationError("--topic '\(text)' is not NAME or NAME:PARTITIONS (1-1000 partitions)") }
            result[String(parts[0])] = partitions
        }
        return result
    }

    func run() throws {
        let logger = makeCLILogger(label: "eddy.dev-broker")
        let stop = DispatchSemaphore(value: 0)
        let signals = handleTerminationSignals { stop.signal() }
        let parentWatch = exitWithParent.map { parent in
            watchParentProcess(parent) {
                printToStandardError("eddy dev-broker: parent process \(parent) exited; stopping")
                stop.signal()
            }
        }
        let broker = try KafkaDevBroker.make(partitionsByTopic: try parsedTopics(), brokers: brokers, port: port, logger: logger)
        // Written unbuffered: scripts read this line while the broker keeps running.
        FileHandle.standardOutput.write(Data("bootstrap=\(broker.bootstrapServers)\n".utf8))
        let topicList = try parsedTopics().sorted { $0.key < $1.key }.map { "\($0.key):\($0.value)" }.joined(separator: ", ")
        printToStandardError(
            "eddy dev-broker: librdkafka \(librdkafkaVersion) mock cluster, topics: \(topicList.isEmpty ? "none" : topicList). "
                + "In memory only; drops a partition's oldest messages past a few MB. Stop with Ctrl-C or SIGTERM."
        )
        if control { Thread.detachNewThread { Self.serveControl(broker) } }
        stop.wait()
        withExtendedLifetime((broker, signals, parentWatch)) {}
        printToStandardError("eddy dev-broker: stopped")
    }

    /// Applies stdin's control commands until EOF, answering each on stdout.
    private static func serveControl(_ broker: KafkaDevBroker) {
        while let line = readLine() {
            var answer = "ok"
            do {
                switch try DevBrokerControl(parsing: Substring(line)) {
                case .brokerDown(let id): try broker.setBrokerDown(id)
                case .brokerUp(let id): try broker.setBrokerUp(id)
                case .leader(let topic, let partition, let id): try broker.setPartitionLeader(topic: topic, partition: partition, broker: id)
                case .requestErrors(let apiKey, let codes): broker.pushRequestErrors(apiKey: apiKey, codes: codes)
                }
            } catch {
                answer = "error: \(error)"
            }
            FileHandle.standardOutput.write(Data((answer + "\n").utf8))
        }
    }
}
