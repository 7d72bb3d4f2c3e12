import EddySQL

/// `SELECT projection FROM input WHERE filter` over a stream of changes: stateless, so it maps each change
/// as it comes and owes nothing at the barrier.
///
/// A row is in the output while its input row passes `filter`; its key is its input row's key. So an
/// insert or delete passes through when its row passes; an update whose old and new rows both pass is an
/// update (nothing when the projected rows are equal), one whose old row passed and new row does not is a
/// delete, the reverse an insert, neither nothing.
public struct FilterProjectOperator: Sendable {
    /// Values per input row.
    public let inputWidth: Int
    /// `WHERE`, over the input's columns.
    public let filter: BoundExpression?
    /// The output row, over the input's columns.
    public let projection: [BoundExpression]

    private var oldScratch: [SQLValue] = []
    private var newScratch: [SQLValue] = []

    /// - Throws: `invalidDefinition` when an expression reads a column the input does not have, or a group
    ///   key or aggregate.
    public init(inputWidth: Int, filter: BoundExpression?, projection: [BoundExpression]) throws(DataflowError) {
        let place = ExpressionPlace.input(width: inputWidth)
        try place.check(filter, as: "WHERE")
        for (index, expression) in projection.enumerated() { try place.check(expression, as: "output column \(index + 1)") }
        self.inputWidth = inputWidth
        self.filter = filter
        self.projection = projection
    }

    /// Values per output row.
    public var outputRowWidth: Int { projection.count }

    /// Appends to `output` (whose key width is the input's) the changes of the output that `input` makes.
    public mutating func apply(_ input: ChangeBatch, into output: inout ChangeBatch) {
        precondition(input.rowWidth == inputWidth, "input rows have \(input.rowWidth) values, the operator reads \(inputWidth)")
        precondition(output.keyWidth == input.keyWidth && output.rowWidth == outputRowWidth,
            "an output batch of widths \(output.keyWidth)/\(output.rowWidth), expected \(input.keyWidth)/\(outputRowWidth)")
        for index in 0..<input.count {
            let key = input.key(at: index)
            var oldPasses = false
            var newPasses = false
            if let old = input.oldRow(at: index) { oldPasses = Self.project(old, filter, projection, into: &oldScratch) }
            if let new = input.newRow(at: index) { newPasses = Self.project(new, filter, projection, into: &newScratch) }
            switch (oldPasses, newPasses) {
            case (true, true):
                if oldScratch != newScratch { output.appendUpdate(key: key, old: oldScratch, new: newScratch) }
            case (true, false): output.appendDelete(key: key, row: oldScratch)
            case (false, true): output.appendInsert(key: key, row: newScratch)
            case (false, false): break
            }
        }
    }

    /// Whether `row` passes the filter; if so, its projection is in `projected`.
    private static func project(
        _ row: ArraySlice<SQLValue>, _ filter: BoundExpression?, _ projection: [BoundExpression], into projected: inout [SQLValue]
    ) -> Bool {
        let base = row.startIndex
        if let filter, filter.evaluate(column: { row[base + $0] }) != .bool(true) { return false }
        projected.removeAll(keepingCapacity: true)
        for expression in projection {
            projected.append(expression.evaluate(column: { row[base + $0] }))
        }
        return true
    }
}
