// Shared by the HotPath benchmark and HotPathRatio: the generated batch, the example view's
// aggregator, and the simdjson reference, all over the same bytes.
import EddyEngine
import EddyWorkload
import SimdjsonReference

/// The generated messages, back to back; message `i` is `bytes[offsets[i] ..< offsets[i + 1]]`.
public final class MessageBatch: @unchecked Sendable {
    public let bytes: [UInt8]
    public let offsets: [Int]
    /// Messages per event, indexed like `UserEventGenerator.eventNames`.
    public let eventCounts: [Int]
    public var count: Int { offsets.count - 1 }

    /// - Parameter userCount: distinct users the messages pick from (the generator's default: 1,000).
    public init(count: Int, seed: UInt64, userCount: Int = 1000) {
        var generator = UserEventGenerator(seed: seed, userCount: userCount)
        var bytes: [UInt8] = []
        var offsets: [Int] = []
        var eventCounts = [Int](repeating: 0, count: UserEventGenerator.eventNames.count)
        bytes.reserveCapacity(count * 140)
        let start: Int64 = 1_795_539_603  // 2026-11-24 17:00:03 UTC
        for index in 0..<count {
            offsets.append(bytes.count)
            eventCounts[generator.appendMessage(timestamp: EventTimestamp(epochSeconds: start + Int64(index / 50)), to: &bytes)] += 1
        }
        offsets.append(bytes.count)
        self.bytes = bytes
        self.offsets = offsets
        self.eventCounts = eventCounts
    }

    public var maxMessageBytes: Int { zip(offsets, offsets.dropFirst()).map { $1 - $0 }.max() ?? 0 }
}

/// The example view's aggregator and the simdjson reference over one batch, warmed up and checked
/// against each other and the generator's own counts; used from one thread.
public final class HotPathState: @unchecked Sendable {
    public let batch: MessageBatch
    public var aggregator = Aggregator(
        schema: RowSchema(columns: HotPathState.columns),
        groupBy: [3], aggregates: [AggregateSpec(.count, argument: nil)], limits: DecoderLimits(), filter: nil)
    /// `SELECT event, window_start, COUNT(*) FROM TUMBLE(user_events, event_timestamp, INTERVAL '1 MINUTE')
    /// GROUP BY event, window_start`, as the hot path runs it: the window computed per message.
    public var tumbleAggregator = Aggregator(
        schema: RowSchema(columns: HotPathState.columns + [false, true].map { isEnd in
            .init(
                name: isEnd ? "window_end" : "window_start", kind: .timestamp,
                origin: .tumble(timeColumn: 0, sizeMicroseconds: 60_000_000, offsetMicroseconds: 0, isEnd: isEnd))
        }),
        groupBy: [3, 4], aggregates: [AggregateSpec(.count, argument: nil)], limits: DecoderLimits(), filter: nil)

    static let columns: [RowSchema.Column] = [
        .init(name: "event_timestamp", kind: .timestamp), .init(name: "user", kind: .string),
        .init(name: "page", kind: .string), .init(name: "event", kind: .string),
    ]
    public let reference: OpaquePointer
    var next = 0

    public init(records: Int = 100_000) {
        batch = MessageBatch(count: records, seed: 7)
        reference = simdjson_reference_create(batch.maxMessageBytes)!
        // Warm both (tables, buffers) and check that they agree.
        applyEddy(0, batch.count)
        applyTumble(0, batch.count)
        // One minute is 3,000 messages of the batch (50 a second): every event in every minute.
        let minutes = (batch.count + 50 * 3 + 2_999) / 3_000
        precondition(tumbleAggregator.counters.rows == batch.count, "Eddy skipped messages in windows: \(tumbleAggregator.counters)")
        precondition(
            (minutes - 1) * 5...minutes * 5 ~= tumbleAggregator.table.groupCount,
            "\(tumbleAggregator.table.groupCount) groups of (event, minute) for about \(minutes) minutes")
        precondition(simdjson_reference_decode(reference, batch.bytes, batch.offsets, 0, batch.count) == 0, "simdjson failed a record")
        precondition(aggregator.counters.rows == batch.count, "Eddy skipped messages: \(aggregator.counters)")
        for group in 0..<aggregator.table.groupCount {
            guard case .string(let event)? = try? aggregator.table.keyValues(ofGroup: group).first,
                let index = UserEventGenerator.eventNames.firstIndex(of: event),
                aggregator.table.value(ofAggregate: 0, group: group) == .int64(Int64(batch.eventCounts[index]))
            else { preconditionFailure("Eddy's count of group \(group) is wrong") }
        }
        for group in 0..<simdjson_reference_group_count(reference) {
            var key: UnsafePointer<UInt8>?
            var length = 0
            let count = simdjson_reference_group(reference, group, &key, &length)
            let event = String(decoding: UnsafeBufferPointer(start: key, count: length), as: UTF8.self)
            precondition(count == batch.eventCounts[UserEventGenerator.eventNames.firstIndex(of: event)!], "simdjson's count of \(event) is wrong")
        }
    }

    @inline(never)
    public func applyEddy(_ first: Int, _ count: Int) {
        batch.bytes.withUnsafeBytes { bytes in
            batch.offsets.withUnsafeBufferPointer { offsets in
                for index in first..<(first + count) {
                    aggregator.apply(UnsafeRawBufferPointer(rebasing: bytes[offsets[index]..<offsets[index + 1]]))
                }
            }
        }
    }

    @inline(never)
    public func applyTumble(_ first: Int, _ count: Int) {
        batch.bytes.withUnsafeBytes { bytes in
            batch.offsets.withUnsafeBufferPointer { offsets in
                for index in first..<(first + count) {
                    tumbleAggregator.apply(UnsafeRawBufferPointer(rebasing: bytes[offsets[index]..<offsets[index + 1]]))
                }
            }
        }
    }

    @inline(never)
    public func applySimdjson(_ first: Int, _ count: Int) {
        let failures = batch.bytes.withUnsafeBufferPointer { bytes in
            batch.offsets.withUnsafeBufferPointer { offsets in
                simdjson_reference_decode(reference, bytes.baseAddress, offsets.baseAddress, first, count)
            }
        }
        precondition(failures == 0)
    }

    /// The next `count` messages' first index, cycling through the batch.
    public func nextSlice(_ count: Int) -> Int {
        if next + count > batch.count { next = 0 }
        defer { next += count }
        return next
    }
}

/// `SELECT user, COUNT(*) … GROUP BY user` over messages of `keys` distinct users (issue 13's keys curve, in
/// memory): the group lookup at 5…1M groups, for callgrind and timings.
public final class KeysState: @unchecked Sendable {
    public let batch: MessageBatch
    public let keys: Int
    /// The warm-up pass, per record: every group inserted and the table grown on the way (the daemon's catch-up
    /// from an empty state), where the timed rounds only find groups.
    public private(set) var coldNanosecondsPerRecord = 0.0
    public var aggregator = Aggregator(
        schema: RowSchema(columns: HotPathState.columns), groupBy: [1], aggregates: [AggregateSpec(.count, argument: nil)],
        limits: DecoderLimits(), filter: nil)

    /// Warms the table with one pass and checks that every message was counted in a group of its user.
    public init(records: Int, keys: Int) {
        self.keys = keys
        batch = MessageBatch(count: records, seed: 7, userCount: keys)
        let clock = ContinuousClock()
        coldNanosecondsPerRecord = clock.measure { applyEddy(0, batch.count) } / .nanoseconds(1) / Double(records)
        precondition(aggregator.counters.rows == batch.count, "Eddy skipped messages: \(aggregator.counters)")
        precondition(aggregator.table.groupCount <= keys, "\(aggregator.table.groupCount) groups of \(keys) users")
        var total: Int64 = 0
        for group in 0..<aggregator.table.groupCount {
            guard case .int64(let count) = aggregator.table.value(ofAggregate: 0, group: group) else { preconditionFailure("no count") }
            total += count
        }
        precondition(total == Int64(batch.count), "the groups count \(total) messages of \(batch.count)")
    }

    @inline(never)
    public func applyEddy(_ first: Int, _ count: Int) {
        batch.bytes.withUnsafeBytes { bytes in
            batch.offsets.withUnsafeBufferPointer { offsets in
                // As the hot loop does: lookups batched over a run of messages (a Kafka batch there).
                for index in first..<(first + count) {
                    aggregator.applyInBatch(UnsafeRawBufferPointer(rebasing: bytes[offsets[index]..<offsets[index + 1]]))
                }
                aggregator.finishBatch()
            }
        }
    }
}
