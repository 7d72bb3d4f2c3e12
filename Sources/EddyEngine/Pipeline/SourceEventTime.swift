import EddyDataflow
import EddySQL
import EddyState

/// A source's event time under its `WATERMARK FOR col AS col - INTERVAL …`: per partition the largest `col`
/// seen, and the source's watermark, the least of those over the partitions minus the delay. It never moves
/// back. A partition that has sent nothing for `idleTimeout` (by the clock of the barriers) does not hold it
/// back, so that a quiet partition cannot stop every window from closing (when all are idle, the largest time
/// seen counts); one that has sent nothing yet holds it back until then, so that a partition read later in a
/// catch-up does not find its events late.
///
/// The watermark moves only at a barrier that carries new offsets (rows arrived): the sink's progress fence
/// takes equal offsets for the same state, so an epoch that closed windows at the offsets of the one before
/// would never reach Redis. As in RisingWave and Flink, event time advances with events: windows close when
/// some partition delivers a later one.
///
/// It runs on the checkpoint thread, over the epoch's rows of the source (keyed by partition and offset): a
/// row whose time is behind the watermark the last checkpoint holds is late and dropped (for every view of
/// the source, as RisingWave's watermark filter does), then the rows move the partitions' maxima and the
/// watermark. What is late thus depends only on the checkpoint and the rows after it, and the maxima and
/// watermark go into the same LMDB transaction as the offsets (`stateWrites`), so a restart resumes with them.
struct SourceEventTime: Sendable {
    /// The time column, in the source's rows.
    let column: Int
    let delayMicroseconds: Int64
    let idleTimeout: Duration
    /// The watermark: rows with an earlier time are late; nil until every partition has sent a time or idled.
    private(set) var watermark: Int64?
    /// Per partition, the largest time seen.
    private var maxima: [Int32: Int64] = [:]
    /// Per partition, when a row of it last arrived (or when it was first known).
    private var lastActivity: [Int32: ContinuousClock.Instant] = [:]
    private var changedPartitions: Set<Int32> = []
    private var watermarkChanged = false

    init(watermark: Watermark, idleTimeout: Duration) {
        column = watermark.column
        delayMicroseconds = watermark.delayMicroseconds ?? 0
        self.idleTimeout = idleTimeout
    }

    /// The rows of `rows` whose time is not behind the watermark (a NULL time is never late: it is in no
    /// window), and how many were late. Then advances the maxima of the rows' partitions (all of `partitions`
    /// are the source's: one without rows since `idleTimeout` before `now` is idle) and the watermark.
    mutating func advance(
        over rows: ChangeBatch, partitions: some Sequence<Int32>, now: ContinuousClock.Instant
    ) -> (accepted: ChangeBatch, late: Int) {
        for partition in partitions where lastActivity[partition] == nil { lastActivity[partition] = now }
        // The rows are copied only when some are late (rare once caught up).
        let times = (0..<rows.count).map { index in rows.newRow(at: index).flatMap { Self.time($0[$0.startIndex + column]) } }
        var accepted = rows
        var late = 0
        if let watermark, times.contains(where: { $0.map { $0 < watermark } ?? false }) {
            accepted = ChangeBatch(keyWidth: rows.keyWidth, rowWidth: rows.rowWidth)
            for index in 0..<rows.count {
                guard let row = rows.newRow(at: index) else { continue }
                if let time = times[index], time < watermark {
                    late += 1
                } else {
                    accepted.appendInsert(key: rows.key(at: index), row: row)
                }
            }
        }
        for index in 0..<rows.count {
            guard let time = times[index], time >= watermark ?? .min else { continue }
            let key = rows.key(at: index)
            guard case .int(let number) = key[key.startIndex] else { continue }
            let partition = Int32(truncatingIfNeeded: number)
            lastActivity[partition] = now
            if time > maxima[partition] ?? .min {
                maxima[partition] = time
                changedPartitions.insert(partition)
            }
        }
        // The least over the active partitions; when every partition is idle, none holds it back: the
        // largest time seen is where event time stands.
        var least: Int64?
        var holdsBack = false
        for (partition, seen) in lastActivity where now - seen < idleTimeout {
            guard let maximum = maxima[partition] else {
                holdsBack = true
                break
            }
            least = min(least ?? .max, maximum)
        }
        if !holdsBack && least == nil { least = maxima.values.max() }
        if !holdsBack, let least {
            let candidate = least &- delayMicroseconds
            if candidate > watermark ?? .min {
                watermark = candidate
                watermarkChanged = true
            }
        }
        return (accepted, late)
    }

    /// Takes what changed since the last call, as entries of the source's event-time database.
    mutating func drainChangedState(_ write: (_ key: [UInt8], _ value: [UInt8]) -> Void) {
        for partition in changedPartitions.sorted() {
            write(Self.partitionKey(partition), Self.encode(maxima[partition]!))
        }
        changedPartitions.removeAll(keepingCapacity: true)
        if watermarkChanged, let watermark { write(Self.watermarkKey, Self.encode(watermark)) }
        watermarkChanged = false
    }

    /// Restores an entry `drainChangedState` wrote.
    mutating func restore(key: UnsafeRawBufferPointer, value: UnsafeRawBufferPointer, source: String) throws(EngineError) {
        guard value.count == 8 else {
            throw EngineError(.corruptState, "the event time of source \(source): a stored value of \(value.count) bytes, expected 8")
        }
        let number = Int64(bitPattern: value.loadUnaligned(as: UInt64.self).bigEndian)
        if key.elementsEqual(Self.watermarkKey) {
            watermark = number
        } else if key.count == 5, key[0] == Self.partitionMarker {
            maxima[Int32(bitPattern: UInt32(bigEndian: UnsafeRawBufferPointer(rebasing: key[1...]).loadUnaligned(as: UInt32.self)))] = number
        } else {
            throw EngineError(.corruptState, "the event time of source \(source): a stored key of \(key.count) bytes is not one it writes")
        }
    }

    /// The name of the store database holding a source's event time (a name no view can have).
    static func databaseName(source: String) -> String { "event time of source \(source)" }

    /// What the stored event time means: a change of the time column or delay starts it over.
    static func fingerprint(_ source: Source) -> String {
        guard let watermark = source.watermark else { return "" }
        return "topic \(source.kafka.topic); watermark for \(watermark.columnName) as \(watermark.expression)"
    }

    private static let partitionMarker: UInt8 = 0x01
    private static let watermarkKey: [UInt8] = [0x02]

    private static func partitionKey(_ partition: Int32) -> [UInt8] {
        [partitionMarker] + withUnsafeBytes(of: UInt32(bitPattern: partition).bigEndian, Array.init)
    }

    private static func encode(_ number: Int64) -> [UInt8] { withUnsafeBytes(of: UInt64(bitPattern: number).bigEndian, Array.init) }

    /// A row's time in microseconds (times travel as their canonical text); nil for NULL.
    static func time(_ value: SQLValue) -> Int64? {
        guard case .string(let text) = value else { return nil }
        return CivilTime.microseconds(of: text)
    }
}
