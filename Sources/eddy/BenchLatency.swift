#if canImport(Glibc)
import Glibc
#endif
import EddyEngine
import EddyKafka
import EddyRedis
import EddyState
import EddyWorkload
import Foundation
import Logging
import Synchronization

/// `eddy bench`'s end-to-end latency phase: while the daemon runs caught up, this process produces messages at a
/// fixed rate (the load generator's own loop) and a poller reads the sink's epoch marker in Redis every
/// millisecond. The marker holds, per partition, the next offset of the checkpoint whose values Redis holds (DESIGN
/// §3) and changes in the same `MULTI`/`EXEC` as the values, so a message is visible in Redis from the first poll
/// whose marker is past its offset. Latency: from the moment the message was queued in the producer to that poll.
struct BenchLatencyProbe {
    var brokers: String
    var partitions: Int
    /// The next offset of each partition before the phase: message `i` lands at `startOffsets[i % P] + i / P`.
    var startOffsets: [Int64]
    var redisPort: Int
    var sink: String
    var rate: Double
    var count: Int
    var seed: UInt64
    var users: Int
    var padding: Int

    struct Result {
        /// Seconds from queued to visible, sorted.
        var latencies: [Double]
        /// Messages the broker acknowledged (every one of them is in `latencies`).
        var sent: Int
        var seconds: Double
    }

    func run(stop: StopFlag) throws -> Result {
        var configuration = KafkaProducerConfiguration(bootstrapServers: brokers)
        configuration.connectTimeout = .seconds(5)
        let producer = try KafkaProducer.make(configuration: configuration, logger: Logger(label: "eddy.bench.producer"))
        _ = try producer.partitionCount(of: BenchScenario.topic)
        let poller = BenchMarkerPoller(url: RedisURL(host: "127.0.0.1", port: redisPort), sink: sink, topic: BenchScenario.topic, partitions: partitions)
        defer { poller.stop() }

        var generator = UserEventGenerator(seed: seed, userCount: users)
        var loop = ProduceLoop(rate: rate, count: count, partitions: Int32(partitions), padding: padding)
        var queuedAt: [ContinuousClock.Instant] = []
        queuedAt.reserveCapacity(count)
        let started = ContinuousClock.now
        try loop.run(producer: producer, topic: BenchScenario.topic, generator: &generator, stop: stop) { _ in queuedAt.append(.now) }
        let seconds = (ContinuousClock.now - started) / .seconds(1)
        let unacknowledged = loop.drain(producer: producer, stop: stop, timeout: .seconds(30), graceAfterStop: .seconds(1))
        if stop.isSet { throw BenchError(reason: "interrupted") }
        guard unacknowledged == 0, producer.failedCount == 0, producer.deliveredCount == queuedAt.count else {
            throw BenchError(
                reason: "the latency phase's producer lost messages: \(producer.deliveredCount) of \(queuedAt.count) acknowledged, "
                    + "\(producer.failedCount) failed" + (producer.firstDeliveryError.map { " (\($0.reason))" } ?? ""))
        }

        // Every message visible: the marker past the last offset of every partition.
        let ends = (0..<partitions).map { partition in
            startOffsets[partition] + Int64(queuedAt.count / partitions + (partition < queuedAt.count % partitions ? 1 : 0))
        }
        let deadline = ContinuousClock.now + .seconds(60)
        while !poller.hasReached(ends) {
            if stop.isSet { throw BenchError(reason: "interrupted") }
            guard ContinuousClock.now < deadline else {
                throw BenchError(reason: "the sink \(sink) did not show the latency phase's \(queuedAt.count) messages in Redis within 60 s of the last one")
            }
            usleep(2_000)
        }
        poller.stop()
        return Result(latencies: latencies(queuedAt: queuedAt, samples: poller.samples), sent: queuedAt.count, seconds: seconds)
    }

    /// Per partition, messages in offset order against marker samples in time order (both monotone): one walk.
    private func latencies(queuedAt: [ContinuousClock.Instant], samples: [BenchMarkerPoller.Sample]) -> [Double] {
        var result: [Double] = []
        result.reserveCapacity(queuedAt.count)
        for partition in 0..<partitions {
            var sample = 0
            for index in stride(from: partition, to: queuedAt.count, by: partitions) {
                let offset = startOffsets[partition] + Int64(index / partitions)
                while sample < samples.count && samples[sample].offsets[partition] <= offset { sample += 1 }
                guard sample < samples.count else { break }
                result.append(max(0, (samples[sample].at - queuedAt[index]) / .seconds(1)))
            }
        }
        return result.sorted()
    }
}

/// Reads a sink's epoch marker (`GET eddy:<sink>:epoch`) every millisecond on a thread of its own and keeps every
/// change with the instant it was first seen.
final class BenchMarkerPoller: Sendable {
    struct Sample: Sendable {
        var at: ContinuousClock.Instant
        /// Next offset per partition of the checkpoint Redis holds (-1: none yet).
        var offsets: [Int64]
    }

    private let url: RedisURL
    private let key: String
    private let topic: String
    private let partitions: Int
    private let recorded = Mutex<[Sample]>([])
    private let stopped = Atomic<Bool>(false)
    private let finished = DispatchSemaphore(value: 0)
    private let isFinished = Atomic<Bool>(false)

    init(url: RedisURL, sink: String, topic: String, partitions: Int) {
        self.url = url
        key = RedisEpochWriter.markerKey(sink: sink)
        self.topic = topic
        self.partitions = partitions
        Thread.detachNewThread { [self] in poll() }
    }

    var samples: [Sample] { recorded.withLock { $0 } }

    func hasReached(_ ends: [Int64]) -> Bool {
        guard let last = recorded.withLock({ $0.last }) else { return false }
        return zip(last.offsets, ends).allSatisfy { $0 >= $1 }
    }

    /// Stops polling (once; later calls return at once).
    func stop() {
        stopped.store(true, ordering: .relaxed)
        if !isFinished.exchange(true, ordering: .relaxed) { finished.wait() }
    }

    private func poll() {
        defer { finished.signal() }
        let command = [Array("GET".utf8), Array(key.utf8)]
        var connection: RedisConnection?
        var last: [UInt8]?
        while !stopped.load(ordering: .relaxed) {
            do {
                if connection == nil {
                    connection = try RedisConnection.connect(
                        url: url, connectTimeout: .milliseconds(200), commandTimeout: .milliseconds(500), logger: Logger(label: "eddy.bench.poller"))
                }
                let reply = try connection!.command(command)
                let seenAt = ContinuousClock.now
                if case .string(let bytes) = reply, bytes != last {
                    last = bytes
                    if case .progress(let progress)? = SinkProgress.parseMarker(bytes) {
                        let offsets = (0..<partitions).map { progress.offsets[TopicPartition(topic: topic, partition: Int32($0))] ?? -1 }
                        recorded.withLock { $0.append(Sample(at: seenAt, offsets: offsets)) }
                    }
                }
            } catch {
                connection = nil
            }
            usleep(1_000)
        }
    }
}
