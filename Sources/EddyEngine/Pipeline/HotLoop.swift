import EddyDataflow
import EddyKafka
import EddySQL

/// What the hot path changes per message, held in one value so that the batch loop runs as a method on
/// `inout self`: its arrays are then accessed under Swift's static exclusivity rules. As separate local
/// variables captured by the batch closure (and by the checkpoint code), every access per message went
/// through a dynamic exclusivity check (`swift_beginAccess`, measured at several per message).
struct HotLoop {
    /// One per view aggregated on the hot path, in the pipeline's order.
    var aggregators: [Aggregator]
    /// Decodes each message once, for every view (they all read the source's schema).
    var decoder: RowDecoder
    /// Messages the decoder skipped, and fields of the wrong type, over all views.
    private(set) var decodeCounters = HotPathCounters()
    /// Messages decoded (the rows of views that read the source's rows).
    private(set) var decodedRows = 0
    /// The source's rows since the last barrier, keyed by partition and offset, when a view reads them: the
    /// row path, which makes a value (and a `String` per text column) per message, unlike the views
    /// aggregated here.
    var sourceRows: ChangeBatch?
    var rowScratch: [SQLValue] = []
    var keyScratch: [SQLValue] = [.int(0), .int(0)]
    /// Per partition: the next offset to read (-1 before its start is known).
    var nextOffsets: [Int64]
    /// Per partition: messages applied since the statistics last took them.
    var consumedPerPartition: [Int]

    /// Decodes every message of `batch` once and aggregates it into every view, and moves the partitions'
    /// next offsets (a skipped message still advances). A message below its partition's next offset was applied
    /// before and is dropped, so a re-delivery never counts twice. Per-message errors go to `handleError`, which
    /// may move the next offsets itself (an offset out of range is recovered by seeking).
    mutating func apply(
        _ batch: borrowing KafkaMessageBatch, handleError: (KafkaMessageError, inout [Int64]) throws -> Void
    ) throws {
        let readsMetadata = decoder.readsMessageMetadata
        // The views' group lookups overlap within the batch (`Aggregator.applyInBatch`); done before returning.
        defer { for view in aggregators.indices { aggregators[view].finishBatch() } }
        for index in 0..<batch.count {
            if batch.isError(at: index) {
                if let error = batch.error(at: index) { try handleError(error, &nextOffsets) }
                continue
            }
            let partition = Int(batch.partition(at: index))
            let offset = batch.offset(at: index)
            if offset < nextOffsets[partition] {
                // Already applied: a fetch answered before a seek can still hand back messages that were read
                // (a spurious offset-out-of-range retried while the partition's next messages were in flight).
                decodeCounters.redeliveredMessages &+= 1
                continue
            }
            let payload = batch.payloadBytes(at: index)
            let key = readsMetadata ? batch.key(at: index) : UnsafeRawBufferPointer(start: nil, count: 0)
            if let reason = decoder.decodeMessage(
                start: payload.start, count: payload.count, extraScratch: readsMetadata ? RowDecoder.metadataScratch(keyBytes: key.count) : 0)
            {
                decodeCounters[reason] &+= 1
            } else {
                if readsMetadata {
                    decoder.fillMetadata(
                        messageBytes: payload.count, key: key, partition: Int32(partition), offset: offset,
                        timestampMilliseconds: batch.timestampMilliseconds(at: index))
                }
                decoder.fillWindows()
                let wrongTypes = decoder.wrongTypeCount()
                let row = decoder.currentRow(start: payload.start.unsafelyUnwrapped)
                if wrongTypes > 0 {
                    decodeCounters.wrongTypeFields &+= wrongTypes
                    noteWrongField(row, partition: Int32(partition), offset: offset, count: wrongTypes)
                }
                for view in aggregators.indices { aggregators[view].applyInBatch(row, decodedBy: decoder) }
                decodedRows &+= 1
                if sourceRows != nil { appendSourceRow(row, partition: Int32(partition), offset: offset) }
            }
            nextOffsets[partition] = offset + 1
            consumedPerPartition[partition] &+= 1
        }
    }

    /// What happened to the messages: the decoder's skips and wrong-type fields, and the first view's rows,
    /// filtered-out messages and group-key collisions.
    var counters: HotPathCounters {
        guard let first = aggregators.first else {
            var counters = decodeCounters
            counters.rows = decodedRows
            return counters
        }
        return decodeCounters.with(viewCounters: first.counters)
    }

    private mutating func appendSourceRow(_ row: DecodedRow, partition: Int32, offset: Int64) {
        let kinds = decoder.schema.columns
        rowScratch.removeAll(keepingCapacity: true)
        // The source's own columns: a window the hot path computes comes after them and is not part of the row.
        for column in 0..<sourceRows!.rowWidth { rowScratch.append(SQLValue(row: row, column: column, kind: kinds[column].kind)) }
        keyScratch[0] = .int(Int64(partition))
        keyScratch[1] = .int(offset)
        sourceRows!.appendInsert(key: keyScratch, row: rowScratch)
    }

    /// A field that did not decode as its column's type (a wrong JSON type, a time that does not parse), for the
    /// log: the first such column of the last such message, and how many such fields since the log last took one.
    struct WrongField {
        var column: Int
        var partition: Int32
        var offset: Int64
        var fields: Int
    }

    private(set) var wrongField: WrongField? = nil
    private(set) var lastWrongFieldReport: ContinuousClock.Instant? = nil

    @inline(never)
    private mutating func noteWrongField(_ row: DecodedRow, partition: Int32, offset: Int64, count: Int) {
        let column = (0..<row.columnCount).first { row.isWrongType($0) } ?? 0
        wrongField = WrongField(column: column, partition: partition, offset: offset, fields: (wrongField?.fields ?? 0) &+ count)
    }

    /// The wrong field to log now, at most one per `interval` (a stream of bad values must not flood the log);
    /// its message names the column and the message's partition and offset.
    mutating func takeWrongFieldReport(every interval: Duration = .seconds(10)) -> String? {
        guard let wrong = wrongField else { return nil }
        let now = ContinuousClock.now
        if let last = lastWrongFieldReport, now - last < interval { return nil }
        lastWrongFieldReport = now
        wrongField = nil
        let column = decoder.schema.columns[wrong.column]
        return "column \(column.name) (\(column.kind)) of the message at partition \(wrong.partition) offset \(wrong.offset) did not decode: "
            + "wrong JSON type or a value out of range (a time must be ISO text or a number in the source's timestamptz.handling.mode); "
            + "read as NULL. \(wrong.fields) such field(s) since the last report (eddy_source_wrong_type_fields_total)"
    }

    /// Groups changed since the last checkpoint, over all views.
    var dirtyCount: Int { aggregators.reduce(sourceRows?.count ?? 0) { $0 + $1.table.dirtyCount } }
}
