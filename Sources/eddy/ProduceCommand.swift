#if canImport(Glibc)
import Glibc
#endif
import ArgumentParser
import EddyKafka
import EddyWorkload
import Foundation
import Synchronization

/// `eddy produce`: the load generator, the original's fake user events into a Kafka topic.
struct ProduceCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "produce",
        abstract: "Generate user-behaviour events into a Kafka topic.",
        discussion: """
            One JSON object per message, {"event_timestamp": "YYYY-MM-DD HH:MM:SS", "user": "...", "page": "...", "event": "..."}, with about 1000 fake logins (--users), about 100 pages and one of click, scroll, submit, download, focus.

            Messages have no key; they go round-robin over the partitions. Stops after --count messages, or on SIGINT/SIGTERM; then waits for the broker to acknowledge everything sent (up to 30 s, but only 1 s more after SIGINT/SIGTERM), gives up on what is still unacknowledged, writes the manifest, and fails if any message was not delivered or was given up. Prints progress on stderr every 5 seconds and a summary at the end.
            """
    )

    @Option(help: "Kafka bootstrap servers, host:port[,host:port...].")
    var brokers: String

    @Option(help: "Topic to write to (must exist).")
    var topic: String

    @Option(help: "Number of messages to send (default: until SIGINT/SIGTERM).")
    var count: Int?

    @Option(help: "Messages per second; 0 = as fast as possible. Default 0.333: one every 3 seconds, as the original.")
    var rate: Double?

    /// One message every 3 seconds, as the original generator.
    private var messagesPerSecond: Double { rate ?? 1.0 / 3.0 }

    @Option(help: "Seed of the users, pages and events (default: from the clock). The same seed gives the same stream.")
    var seed: UInt64?

    @Option(help: "Distinct user logins to draw from (default 1000, as the original). Benchmarks use it to vary the number of groups of a view grouped by user.")
    var users: Int = 1000

    @Option(help: "Pad each message with a \"pad\" field of x's to at least this many bytes (default 0: no padding; the messages are about 130 bytes). Benchmarks use it to vary the message size.")
    var pad: Int = 0

    @Option(help: "Write round-robin to partitions 0..<P of the topic (P at most its partition count). Default: round-robin over all of its partitions, so each gets the same share (librdkafka's sticky partitioner would fill one partition at a time, and the dev broker drops the oldest messages of an overfull partition).")
    var partitions: Int?

    @Option(help: "Write JSON here at the end: {\"topic\": ..., \"total\": N, \"events\": {\"click\": n, ...}, \"failed\": f, \"unacknowledged\": u}, counting in total and events only messages the broker acknowledged.")
    var manifest: String?

    @Flag(help: "Idempotent producer (enable.idempotence): a retry after a lost acknowledgement (a broker going down) never writes a message twice. eddy drill uses it, so that its manifests count what the topic holds.")
    var idempotent = false

    @Option(name: .customLong("connect-timeout"), help: "Seconds to wait for a broker at start.")
    var connectTimeout: Double = 5

    @Option(name: .customLong("exit-with-parent"), help: ArgumentHelp(exitWithParentHelp, valueName: "pid"))
    var exitWithParent: Int32?

    func validate() throws {
        if let count, count < 0 { throw ValidationError("--count must be 0 or more, not \(count)") }
        guard messagesPerSecond.isFinite, messagesPerSecond >= 0 else { throw ValidationError("--rate must be a number of messages per second, 0 or more") }
        guard users >= 1, users <= 10_000_000 else { throw ValidationError("--users must be in 1...10000000, not \(users)") }
        guard (0...1_000_000).contains(pad) else { throw ValidationError("--pad must be from 0 to 1000000 bytes, not \(pad)") }
        if let partitions, partitions < 1 { throw ValidationError("--partitions must be at least 1, not \(partitions)") }
        guard connectTimeout > 0, connectTimeout <= 600 else { throw ValidationError("--connect-timeout must be in (0, 600] seconds") }
        guard !topic.isEmpty else { throw ValidationError("--topic must not be empty") }
        if let exitWithParent, exitWithParent < 1 { throw ValidationError("--exit-with-parent must be a process id, not \(exitWithParent)") }
    }

    func run() throws {
        let logger = makeCLILogger(label: "eddy.produce")
        // Before connecting: a stop requested meanwhile ends the run as soon as the broker has answered.
        let stopRequested = StopFlag()
        let signals = handleTerminationSignals { stopRequested.flag.store(true, ordering: .relaxed) }
        let parentWatch = exitWithParent.map { parent in
            watchParentProcess(parent) {
                printToStandardError("eddy produce: parent process \(parent) exited; stopping")
                stopRequested.flag.store(true, ordering: .relaxed)
            }
        }
        defer { withExtendedLifetime((signals, parentWatch)) {} }

        var configuration = KafkaProducerConfiguration(bootstrapServers: brokers)
        configuration.connectTimeout = .milliseconds(Int64(connectTimeout * 1000))
        if idempotent { configuration.clientProperties.append(("enable.idempotence", "true")) }
        let producer = try KafkaProducer.make(configuration: configuration, logger: logger)
        let topicPartitions = try producer.partitionCount(of: topic)
        if let partitions, partitions > topicPartitions {
            throw ProduceError(reason: "--partitions \(partitions): topic '\(topic)' has only \(topicPartitions) partition(s)")
        }

        let seed = self.seed ?? UInt64(truncatingIfNeeded: DispatchTime.now().uptimeNanoseconds ^ UInt64(getpid()))
        var generator = UserEventGenerator(seed: seed, userCount: users)
        var loop = ProduceLoop(rate: messagesPerSecond, count: count, partitions: Int32(partitions ?? topicPartitions), padding: pad)
        let started = ContinuousClock.now
        var runError: Error?
        do {
            try loop.run(producer: producer, topic: topic, generator: &generator, stop: stopRequested)
        } catch {
            runError = error
        }
        let unacknowledged = loop.drain(
            producer: producer, stop: stopRequested, timeout: Self.acknowledgementTimeout, graceAfterStop: Self.acknowledgementGraceAfterStop)
        let elapsed = ContinuousClock.now - started
        let seconds = Double(elapsed.components.seconds) + Double(elapsed.components.attoseconds) / 1e18

        var events: [String: Int] = [:]
        for (index, name) in UserEventGenerator.eventNames.enumerated() { events[name] = producer.deliveredCount(tag: index) }
        if let manifest {
            try writeManifest(
                ProduceManifest(topic: topic, total: producer.deliveredCount, events: events, failed: producer.failedCount, unacknowledged: unacknowledged),
                to: manifest)
        }
        let throughput = seconds > 0 ? Double(producer.deliveredCount) / seconds : 0
        printToStandardError(
            "eddy produce: \(producer.deliveredCount) message(s) acknowledged by \(brokers) in "
                + String(format: "%.2f s (%.0f msg/s)", seconds, throughput)
                + (producer.failedCount > 0 ? ", \(producer.failedCount) failed" : "")
                + (unacknowledged > 0 ? ", \(unacknowledged) unacknowledged" : "")
        )
        if let runError { throw runError }
        if let error = producer.firstDeliveryError {
            throw ProduceError(reason: "\(producer.failedCount) message(s) not delivered; first: \(error.reason)")
        }
        if unacknowledged > 0 {
            let inFlight = producer.abandonedInFlightCount
            throw ProduceError(
                reason: "\(unacknowledged) message(s) still unacknowledged "
                    + (stopRequested.isSet ? "\(Self.acknowledgementGraceAfterStop) after the stop request" : "after \(Self.acknowledgementTimeout)")
                    + "; given up"
                    + (inFlight > 0 ? " (\(inFlight) of them were sent and may be in the topic)" : "")
                    + (manifest == nil ? "" : "; the manifest counts only acknowledged messages"))
        }
    }

    /// How long the end of a run waits for acknowledgements: librdkafka fails a message after 30 s anyway
    /// (`message.timeout.ms`).
    static let acknowledgementTimeout: Duration = .seconds(30)
    /// How long it waits once a stop is requested: a stop must not wait for a slow or gone broker (the demo
    /// script and service managers give a few seconds before they kill).
    static let acknowledgementGraceAfterStop: Duration = .seconds(1)

    private func writeManifest(_ manifest: ProduceManifest, to path: String) throws {
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.sortedKeys, .prettyPrinted]
        do {
            try encoder.encode(manifest).write(to: URL(fileURLWithPath: path), options: .atomic)
        } catch {
            throw ProduceError(reason: "cannot write manifest '\(path)': \(error.localizedDescription)")
        }
    }
}

/// The manifest `--manifest` writes: only messages the broker acknowledged are counted.
struct ProduceManifest: Codable, Equatable {
    var topic: String
    var total: Int
    var events: [String: Int]
    var failed: Int
    /// Messages given up when the run ended (stopped, or the broker too slow): not counted in `total`.
    var unacknowledged: Int
}

/// Set once from another thread (a signal handler, the parent watch), read by the produce loop.
final class StopFlag: Sendable {
    let flag = Atomic<Bool>(false)
    var isSet: Bool { flag.load(ordering: .relaxed) }
}

/// A run-time failure of `eddy produce`, printed as one line (no usage text: the arguments were fine).
struct ProduceError: Error, CustomStringConvertible {
    let reason: String
    var description: String { reason }
}
