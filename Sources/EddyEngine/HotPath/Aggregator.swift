/// One view's hot path: decodes each message, applies the view's `WHERE`, finds the message's group
/// and folds it into the group's aggregates, marking the group dirty. One per view, used from one
/// thread; allocates nothing per message once its buffers and tables have grown (for views without
/// DISTINCT or string MIN / MAX, and a filter that does not allocate).
public struct Aggregator: Sendable {
    public let schema: RowSchema
    public let groupBy: [Int]
    public let filter: (any RowPredicate)?
    let hasFilter: Bool
    /// The view's groups and aggregate states.
    public var table: GroupTable
    /// What happened to the messages so far.
    public private(set) var counters = HotPathCounters()
    var decoder: RowDecoder

    /// - Precondition: `GroupTable.validate(schema:groupBy:aggregates:)` does not throw.
    public init(
        schema: RowSchema, groupBy: [Int], aggregates: [AggregateSpec], limits: DecoderLimits = DecoderLimits(),
        filter: (any RowPredicate)?
    ) {
        self.schema = schema
        self.groupBy = groupBy
        self.filter = filter
        hasFilter = filter != nil
        table = GroupTable(schema: schema, groupBy: groupBy, aggregates: aggregates)
        decoder = RowDecoder(schema: schema, limits: limits)
    }

    /// Decodes, filters, groups and aggregates one message, and counts what happened to it. The
    /// payload is only read during the call. (A pipeline decodes each message once for all its views:
    /// `HotLoop` decodes, then calls `apply(_:decodedBy:)` per view.)
    public mutating func apply(_ payload: UnsafeRawBufferPointer) {
        decodeAndFold(payload, deferringLookup: false)
    }

    @inline(__always)
    private mutating func decodeAndFold(_ payload: UnsafeRawBufferPointer, deferringLookup: Bool) {
        if let reason = decoder.decodeMessage(payload) {
            counters[reason] &+= 1
            return
        }
        decoder.fillWindows()
        let wrongTypes = decoder.wrongTypeCount()
        if wrongTypes > 0 { counters.wrongTypeFields &+= wrongTypes }
        fold(decoder.currentRow(payload), buffers: decoder.buffers.pointer, deferringLookup: deferringLookup)
    }

    /// Filters, groups and aggregates one row that `decoder` (of this view's schema) decoded.
    @inline(__always)
    mutating func apply(_ row: DecodedRow, decodedBy decoder: borrowing RowDecoder) {
        fold(row, buffers: decoder.buffers.pointer, deferringLookup: false)
    }

    /// `apply(_:decodedBy:)` for a run of messages: the row's group lookup may wait for later rows (see
    /// `GroupTable.accumulateDeferred`), so that the lookups' cache misses overlap. Call `finishBatch()` after the
    /// run, before reading `table` or `counters`.
    @inline(__always)
    mutating func applyInBatch(_ row: DecodedRow, decodedBy decoder: borrowing RowDecoder) {
        fold(row, buffers: decoder.buffers.pointer, deferringLookup: true)
    }

    /// `apply(_:)` for a run of messages (`applyInBatch(_:decodedBy:)`); call `finishBatch()` after the run.
    public mutating func applyInBatch(_ payload: UnsafeRawBufferPointer) {
        decodeAndFold(payload, deferringLookup: true)
    }

    /// Folds the rows whose lookup still waits (`applyInBatch`): the table is then complete.
    public mutating func finishBatch() {
        table.finishPending()
    }

    /// Filters and folds one decoded row; `deferringLookup` (a constant at each inlined call) lets the group lookup
    /// wait for later rows (`GroupTable.accumulateDeferred`).
    @inline(__always)
    private mutating func fold(_ row: DecodedRow, buffers: UnsafeMutablePointer<RowBuffers>, deferringLookup: Bool) {
        // Tested through a flag: binding the optional existential would copy it (and retain) per message.
        if hasFilter && !filter.unsafelyUnwrapped.accepts(row) {
            counters.filteredOut &+= 1
            return
        }
        let folded = deferringLookup ? table.accumulateDeferred(row, buffers: buffers) : table.accumulate(row, buffers: buffers)
        if folded {
            counters.rows &+= 1
        } else {
            counters[.groupKeyCollision] &+= 1
        }
    }

}
