#if canImport(Glibc)
import Glibc
#endif
import EddyKafka
import EddyWorkload

/// The sending loop of `eddy produce` (and of `eddy bench`'s paced latency phase): one reused buffer, a timestamp
/// rendered once per second, pacing by waiting in the producer's poll (which serves delivery reports meanwhile).
struct ProduceLoop {
    let rate: Double
    let count: Int?
    let partitions: Int32
    /// Pad each message with a `"pad"` field to at least this many bytes (0: no padding).
    let padding: Int
    private(set) var sent = 0

    init(rate: Double, count: Int?, partitions: Int32, padding: Int = 0) {
        self.rate = rate
        self.count = count
        self.partitions = partitions
        self.padding = padding
    }

    /// Sends until `count` messages are queued or `stop` is set. `queued`, if given, is called right after each
    /// message is queued with its index (0, 1, …); message `i` goes to partition `i % partitions`.
    mutating func run(
        producer: KafkaProducer, topic: String, generator: inout UserEventGenerator, stop: StopFlag, queued: ((Int) -> Void)? = nil
    ) throws {
        let clock = ContinuousClock()
        let started = clock.now
        let interval: Duration? = rate > 0 ? .nanoseconds(Int64(1e9 / rate)) : nil
        var timestamp = EventTimestamp.now()
        var buffer: [UInt8] = []
        buffer.reserveCapacity(512 + padding)
        var nextProgress = started + .seconds(5)
        var lastProgressCount = 0
        var lastProgressTime = started

        while count.map({ sent < $0 }) ?? true, !stop.isSet {
            if let interval {
                let due = started + interval * sent
                while !stop.isSet {
                    let now = clock.now
                    if now >= due { break }
                    // At least 1 ms: a shorter wait would spin (librdkafka's poll counts whole milliseconds), taking
                    // a core from the broker and consumer beside it; the messages then due go out together.
                    producer.poll(timeout: min(max(due - now, .milliseconds(1)), .milliseconds(100)))
                }
                if stop.isSet { break }
            }
            if interval != nil || sent & 1023 == 0 {
                var spec = timespec()
                clock_gettime(CLOCK_REALTIME_COARSE, &spec)
                if Int64(spec.tv_sec) != timestamp.epochSeconds { timestamp = EventTimestamp(epochSeconds: Int64(spec.tv_sec)) }
            }
            buffer.removeAll(keepingCapacity: true)
            let event = generator.appendMessage(timestamp: timestamp, to: &buffer)
            if buffer.count < padding { Self.pad(&buffer, to: padding) }
            let partition = Int32(truncatingIfNeeded: sent % Int(partitions))
            // A full queue (a broker slower than --rate 0, or gone) waits in slices, so a stop is seen.
            let isQueued = try buffer.withUnsafeBytes { payload in
                while !stop.isSet {
                    if try producer.trySend(topic: topic, partition: partition, payload: payload, tag: event, waitingIfFull: .milliseconds(10)) { return true }
                }
                return false
            }
            guard isQueued else { break }
            queued?(sent)
            sent += 1
            if sent & 1023 == 0 || interval != nil {
                producer.poll()
                let now = clock.now
                if now >= nextProgress {
                    let window = now - lastProgressTime
                    let perSecond = Double(sent - lastProgressCount) / (Double(window.components.seconds) + Double(window.components.attoseconds) / 1e18)
                    printToStandardError("eddy produce: sent \(sent), acknowledged \(producer.deliveredCount), \(Int(perSecond)) msg/s")
                    nextProgress = now + .seconds(5)
                    lastProgressCount = sent
                    lastProgressTime = now
                }
            }
        }
    }

    private static let padOpening = Array(#", "pad": ""#.utf8)

    /// Turns `{…}` into `{…, "pad": "xxx…"}` of at least `length` bytes; the buffer's capacity is reserved, so
    /// nothing is allocated.
    static func pad(_ buffer: inout [UInt8], to length: Int) {
        guard buffer.last == UInt8(ascii: "}") else { return }
        buffer.removeLast()
        let filler = max(0, length - buffer.count - padOpening.count - 2)
        buffer.append(contentsOf: padOpening)
        buffer.append(contentsOf: repeatElement(UInt8(ascii: "x"), count: filler))
        buffer.append(UInt8(ascii: "\""))
        buffer.append(UInt8(ascii: "}"))
    }

    /// After `run`: waits for the broker to acknowledge what was sent, for up to `timeout` — but once a stop
    /// is requested (before or during the wait) for only `graceAfterStop` more, so that SIGTERM ends the
    /// process within about a second even when the broker is slow or gone — then gives up on the rest.
    /// Returns how many messages were given up unacknowledged.
    func drain(producer: KafkaProducer, stop: StopFlag, timeout: Duration, graceAfterStop: Duration) -> Int {
        let clock = ContinuousClock()
        var deadline = clock.now + timeout
        var stopSeen = false
        while producer.outstandingCount > 0 {
            let now = clock.now
            if !stopSeen, stop.isSet {
                stopSeen = true
                deadline = min(deadline, now + graceAfterStop)
            }
            if now >= deadline { break }
            producer.awaitAcknowledgements(timeout: min(deadline - now, .milliseconds(100)))
        }
        return producer.abandonOutstanding()
    }
}
