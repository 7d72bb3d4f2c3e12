import EddySQL

/// `GROUP BY` over a stream of changes, exact under deletes: a view over a view.
///
/// Input rows are a multiset: an insert adds a row, a delete retracts one, an update retracts the old row and
/// adds the new one. Each group keeps, per aggregate, what retracting needs (`AggregateAccumulator`). The
/// output is keyed by the group key; `emitChanges(into:)`, called at the barrier, appends the **net change of
/// each group touched since the last barrier**: one insert, update or delete per group however often it was
/// hit, nothing for a group whose output row came back to what it was. A group is a row of the output while
/// it holds rows and `HAVING` is true, so a group whose last row leaves, or whose `HAVING` turns false, is a
/// delete, and one that comes back an insert. With no `GROUP BY` there is one group and always one row (as
/// `SELECT COUNT(*) FROM t` answers 0 on an empty `t`), inserted at the first barrier.
///
/// Group state encodes per group, key bytes → state bytes; `drainChangedState(_:)` hands out only the groups
/// changed since its last call, and a group emptied since as a deletion. Per change the operator evaluates
/// the bound expressions into reused buffers and looks the group up by its encoded key without allocating;
/// memory is allocated per new group and per new distinct value of a `MIN`/`MAX`/`DISTINCT`, not per row.
///
/// Contract: input is consistent (a retracted row was added before); violating it stops the process with
/// the group named, since state that went wrong must not reach a checkpoint. At a barrier call
/// `emitChanges(into:)` before `drainChangedState(_:)`, so that the stored state matches what was emitted.
public struct AggregateOperator: Sendable {
    public let definition: AggregateDefinition
    /// Values per output key: the group key.
    public var outputKeyWidth: Int { definition.groupBy.count }
    /// Values per output row.
    public var outputRowWidth: Int { definition.output.count }
    /// Groups held (those holding rows, and emptied ones not yet drained and emitted).
    public var groupCount: Int { slotByKey.count }

    /// The version byte that starts every group's state.
    static let stateVersion: UInt8 = 1

    private struct SlotFlags: OptionSet, Sendable {
        let rawValue: UInt8
        static let inUse = SlotFlags(rawValue: 1)
        /// In `touched`: its output as of the last barrier is stashed.
        static let touched = SlotFlags(rawValue: 2)
        /// In `dirty`: changed since the last `drainChangedState`.
        static let dirty = SlotFlags(rawValue: 4)
        /// Its state is in the checkpoint (written by a drain, or restored).
        static let stored = SlotFlags(rawValue: 8)
    }

    private let aggregateCount: Int
    private let keyWidth: Int
    private var isGlobal: Bool { keyWidth == 0 }

    // Groups live in slots; a slot is reused once its group is empty, emitted and drained.
    private var slotByKey: [[UInt8]: Int] = [:]
    private var keyBytes: [[UInt8]] = []
    /// `keyWidth` values per slot.
    private var keyValues: [SQLValue] = []
    /// Input rows per slot (after `WHERE`).
    private var rowCounts: [Int64] = []
    /// `aggregateCount` accumulators per slot.
    private var accumulators: [AggregateAccumulator] = []
    private var flags: [SlotFlags] = []
    private var freeSlots: [Int] = []
    /// Whether the one row of a global aggregate has been emitted (or restored): until then it is not a row
    /// downstream knows.
    private var globalRowPublished = false
    private var hasStarted = false

    // The epoch: groups touched since the last barrier, each with its output row as of that barrier.
    private var touched: [Int] = []
    /// Per touched group, where its old output row starts in `oldRows`; -1 when it was not a row.
    private var touchedOldRowStarts: [Int] = []
    private var oldRows: [SQLValue] = []
    private var dirty: [Int] = []

    // Reused per change.
    private var keyScratch: [SQLValue] = []
    private var keyBytesScratch: [UInt8] = []
    private var resultScratch: [SQLValue] = []
    private var rowScratch: [SQLValue] = []
    private var stateScratch: [UInt8] = []

    public init(_ definition: AggregateDefinition) {
        self.definition = definition
        aggregateCount = definition.aggregates.count
        keyWidth = definition.groupBy.count
        if isGlobal {
            let slot = addSlot()
            markTouched(slot)
            markDirty(slot)
        }
    }

    /// An empty batch of this operator's output widths.
    public func makeOutputBatch() -> ChangeBatch {
        ChangeBatch(keyWidth: outputKeyWidth, rowWidth: outputRowWidth)
    }

    // MARK: Input

    /// Takes in a batch of changes to the input rows (of `definition.inputWidth` values each).
    public mutating func apply(_ input: ChangeBatch) {
        precondition(input.rowWidth == definition.inputWidth,
            "input rows have \(input.rowWidth) values, the definition reads \(definition.inputWidth)")
        hasStarted = true
        for index in 0..<input.count {
            switch input.kind(at: index) {
            case .insert:
                take(input.newRow(at: index).unsafelyUnwrapped, sign: 1)
            case .delete:
                take(input.oldRow(at: index).unsafelyUnwrapped, sign: -1)
            case .update:
                take(input.oldRow(at: index).unsafelyUnwrapped, sign: -1)
                take(input.newRow(at: index).unsafelyUnwrapped, sign: 1)
            }
        }
    }

    private mutating func take(_ row: ArraySlice<SQLValue>, sign: Int64) {
        let base = row.startIndex
        if let filter = definition.filter, filter.evaluate(column: { row[base + $0] }) != .bool(true) { return }
        let slot = group(of: row, adding: sign > 0)
        markTouched(slot)
        markDirty(slot)
        rowCounts[slot] += sign
        precondition(rowCounts[slot] >= 0, "retracting a row from group \(keyScratch), which holds none")
        let first = slot * aggregateCount
        for (index, function) in definition.aggregates.enumerated() {
            if let filter = function.filter, filter.evaluate(column: { row[base + $0] }) != .bool(true) { continue }
            let value = function.argument?.evaluate(column: { row[base + $0] })
            accumulators[first + index].add(value, sign: sign, function: function)
        }
    }

    /// The slot of the group `row` belongs to; a new one only when adding.
    private mutating func group(of row: ArraySlice<SQLValue>, adding: Bool) -> Int {
        let base = row.startIndex
        keyScratch.removeAll(keepingCapacity: true)
        for expression in definition.groupBy {
            let value = expression.evaluate(column: { row[base + $0] })
            keyScratch.append(value)
        }
        keyBytesScratch.removeAll(keepingCapacity: true)
        ValueCodec.append(contentsOf: keyScratch, to: &keyBytesScratch)
        if let slot = slotByKey[keyBytesScratch] { return slot }
        precondition(adding, "retracting a row from group \(keyScratch), which holds none")
        return addSlot()
    }

    /// A slot for the group in `keyScratch` / `keyBytesScratch`.
    private mutating func addSlot() -> Int {
        let slot: Int
        if let free = freeSlots.popLast() {
            slot = free
            keyBytes[slot] = keyBytesScratch
            keyValues.replaceSubrange(slot * keyWidth..<(slot + 1) * keyWidth, with: keyScratch)
            rowCounts[slot] = 0
            for index in slot * aggregateCount..<(slot + 1) * aggregateCount { accumulators[index] = AggregateAccumulator() }
            flags[slot] = .inUse
        } else {
            slot = keyBytes.count
            keyBytes.append(keyBytesScratch)
            keyValues.append(contentsOf: keyScratch)
            rowCounts.append(0)
            accumulators.append(contentsOf: repeatElement(AggregateAccumulator(), count: aggregateCount))
            flags.append(.inUse)
        }
        slotByKey[keyBytesScratch] = slot
        return slot
    }

    private mutating func markTouched(_ slot: Int) {
        guard !flags[slot].contains(.touched) else { return }
        flags[slot].insert(.touched)
        touched.append(slot)
        if evaluateGroup(slot, globalRowPresent: globalRowPublished) {
            touchedOldRowStarts.append(oldRows.count)
            oldRows.append(contentsOf: rowScratch)
        } else {
            touchedOldRowStarts.append(-1)
        }
    }

    private mutating func markDirty(_ slot: Int) {
        guard !flags[slot].contains(.dirty) else { return }
        flags[slot].insert(.dirty)
        dirty.append(slot)
    }

    /// Whether the group is a row of the output (it holds rows, or is the global group and present, and
    /// `HAVING` holds); if so, its row is in `rowScratch`.
    private mutating func evaluateGroup(_ slot: Int, globalRowPresent: Bool) -> Bool {
        guard isGlobal ? globalRowPresent : rowCounts[slot] > 0 else { return false }
        resultScratch.removeAll(keepingCapacity: true)
        for (index, function) in definition.aggregates.enumerated() {
            let value = accumulators[slot * aggregateCount + index].result(function)
            resultScratch.append(value)
        }
        let keyStart = slot * keyWidth
        if let having = definition.having,
            having.evaluate(column: { _ in .null }, groupKey: { self.keyValues[keyStart + $0] }, aggregate: { self.resultScratch[$0] })
                != .bool(true)
        {
            return false
        }
        rowScratch.removeAll(keepingCapacity: true)
        for expression in definition.output {
            let value = expression.evaluate(
                column: { _ in .null }, groupKey: { self.keyValues[keyStart + $0] }, aggregate: { self.resultScratch[$0] })
            rowScratch.append(value)
        }
        return true
    }

    // MARK: The barrier

    /// Appends to `output` the net change of every group touched since the last barrier, in the order the
    /// groups were first touched: at most one change per group.
    public mutating func emitChanges(into output: inout ChangeBatch) {
        precondition(output.keyWidth == outputKeyWidth && output.rowWidth == outputRowWidth,
            "an output batch of widths \(output.keyWidth)/\(output.rowWidth) for an operator of \(outputKeyWidth)/\(outputRowWidth)")
        hasStarted = true
        let width = outputRowWidth
        for (position, slot) in touched.enumerated() {
            let oldStart = touchedOldRowStarts[position]
            let isRow = evaluateGroup(slot, globalRowPresent: true)
            let key = keyValues[slot * keyWidth..<(slot + 1) * keyWidth]
            if oldStart >= 0 {
                let old = oldRows[oldStart..<oldStart + width]
                if !isRow {
                    output.appendDelete(key: key, row: old)
                } else if !old.elementsEqual(rowScratch) {
                    output.appendUpdate(key: key, old: old, new: rowScratch)
                }
            } else if isRow {
                output.appendInsert(key: key, row: rowScratch)
            }
            flags[slot].remove(.touched)
            releaseIfEmpty(slot)
        }
        if isGlobal { globalRowPublished = true }
        touched.removeAll(keepingCapacity: true)
        touchedOldRowStarts.removeAll(keepingCapacity: true)
        oldRows.removeAll(keepingCapacity: true)
    }

    /// Drops the state of every group whose key `shouldRemove` picks, emitting nothing: for groups whose final
    /// row went downstream another way (`WindowCloseBuffer` after their window closed). A removed group that
    /// was stored leaves the checkpoint at the next `drainChangedState`; a row that arrives for it later starts
    /// it afresh. Call after `emitChanges(into:)`, with nothing touched since. Returns how many were removed.
    @discardableResult
    public mutating func removeGroups(where shouldRemove: (ArraySlice<SQLValue>) -> Bool) -> Int {
        precondition(touched.isEmpty, "removing groups with changes not yet emitted: call emitChanges(into:) first")
        guard !isGlobal else { return 0 }
        var removed = 0
        for slot in flags.indices where flags[slot].contains(.inUse) && rowCounts[slot] > 0 {
            guard shouldRemove(keyValues[slot * keyWidth..<(slot + 1) * keyWidth]) else { continue }
            rowCounts[slot] = 0
            for index in slot * aggregateCount..<(slot + 1) * aggregateCount { accumulators[index] = AggregateAccumulator() }
            markDirty(slot)
            removed += 1
        }
        return removed
    }

    /// Frees the slot of a group that holds no rows once nothing refers to it any more.
    private mutating func releaseIfEmpty(_ slot: Int) {
        guard !isGlobal, rowCounts[slot] == 0, flags[slot].isDisjoint(with: [.touched, .dirty]) else { return }
        slotByKey.removeValue(forKey: keyBytes[slot])
        keyBytes[slot] = []
        for index in slot * keyWidth..<(slot + 1) * keyWidth { keyValues[index] = .null }
        for index in slot * aggregateCount..<(slot + 1) * aggregateCount { accumulators[index] = AggregateAccumulator() }
        flags[slot] = []
        freeSlots.append(slot)
    }

    // MARK: State

    /// Hands every group changed since the last call to `write`: its key bytes and its state bytes, or nil
    /// for a group that has left (holds no rows) and whose state was stored before. The buffers are reused:
    /// copy what must outlive the call. Key bytes are as long as the group key needs: a store with a key
    /// size limit (LMDB's 511 bytes) must map long keys itself, as `GroupTable` does with a hash.
    public mutating func drainChangedState<Failure: Error>(
        _ write: (_ key: [UInt8], _ state: [UInt8]?) throws(Failure) -> Void
    ) throws(Failure) {
        var position = 0
        while position < dirty.count {
            let slot = dirty[position]
            position += 1
            if !isGlobal && rowCounts[slot] == 0 {
                if flags[slot].contains(.stored) {
                    try write(keyBytes[slot], nil)
                    flags[slot].remove(.stored)
                }
            } else {
                encodeState(ofSlot: slot)
                try write(keyBytes[slot], stateScratch)
                flags[slot].insert(.stored)
            }
            flags[slot].remove(.dirty)
            releaseIfEmpty(slot)
        }
        dirty.removeAll(keepingCapacity: true)
    }

    /// Layout: the version byte, the group's row count (LEB128), then each aggregate's state in definition
    /// order (`AggregateAccumulator.encode`).
    private mutating func encodeState(ofSlot slot: Int) {
        var bytes = [UInt8]()
        swap(&bytes, &stateScratch)
        bytes.removeAll(keepingCapacity: true)
        bytes.append(Self.stateVersion)
        ValueCodec.appendVarint(UInt64(rowCounts[slot]), to: &bytes)
        for (index, function) in definition.aggregates.enumerated() {
            accumulators[slot * aggregateCount + index].encode(function, into: &bytes)
        }
        swap(&bytes, &stateScratch)
    }

    /// Adds a group from a checkpoint (as `drainChangedState` wrote it): call for each stored group before
    /// any input or barrier. Restored groups are not dirty and emit nothing until touched again.
    ///
    /// - Throws: `corruptState` when the key or state cannot be decoded or does not fit the definition;
    ///   `invalidUse` after input or a barrier, or for a key restored twice.
    public mutating func restore(key: [UInt8], state: [UInt8]) throws(DataflowError) {
        guard !hasStarted else {
            throw DataflowError(.invalidUse, "restoring a group after the operator has taken input or passed a barrier")
        }
        let values = try ValueCodec.decodeValues(key, count: keyWidth, what: "key of a group")
        var reader = ByteReader(state, what: "state of group \(values)")
        let version = try reader.byte()
        guard version == Self.stateVersion else { throw reader.corrupt("has format version \(version), expected \(Self.stateVersion)") }
        let rowCount = Int64(try reader.count(atMost: Int(Int64.max)))
        guard isGlobal || rowCount > 0 else { throw reader.corrupt("holds no rows; an empty group is deleted, not stored") }
        var restored: [AggregateAccumulator] = []
        for (index, function) in definition.aggregates.enumerated() {
            restored.append(try AggregateAccumulator.decode(function, from: &reader, index: index))
        }
        guard reader.isAtEnd else { throw reader.corrupt("has \(reader.remaining) bytes after its \(aggregateCount) aggregates") }

        let slot: Int
        if isGlobal {
            slot = 0
            guard !flags[slot].contains(.stored) else { throw DataflowError(.invalidUse, "the global group is restored twice") }
            // The row was published before the checkpoint: nothing is owed downstream.
            touched.removeAll()
            touchedOldRowStarts.removeAll()
            oldRows.removeAll()
            dirty.removeAll()
            flags[slot] = .inUse
            globalRowPublished = true
        } else {
            guard slotByKey[key] == nil else { throw DataflowError(.invalidUse, "group \(values) is restored twice") }
            keyScratch = values
            keyBytesScratch = key
            slot = addSlot()
        }
        flags[slot].insert(.stored)
        rowCounts[slot] = rowCount
        accumulators.replaceSubrange(slot * aggregateCount..<(slot + 1) * aggregateCount, with: restored)
    }

    // MARK: Reading

    /// Calls `body` with the key and row of every row the output holds now (input applied so far, emitted or
    /// not), in no particular order: for a whole-view re-send or a query.
    public mutating func forEachRow(_ body: (_ key: ArraySlice<SQLValue>, _ row: [SQLValue]) -> Void) {
        for slot in flags.indices where flags[slot].contains(.inUse) {
            if evaluateGroup(slot, globalRowPresent: true) {
                body(keyValues[slot * keyWidth..<(slot + 1) * keyWidth], rowScratch)
            }
        }
    }
}
