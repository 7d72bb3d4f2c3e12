import EddySQL

/// `EMIT ON WINDOW CLOSE` after an aggregate keyed by window: holds each group's latest row while its window is
/// open and, when the watermark passes the window's end, emits the group's final row once (an insert) and
/// forgets it. Downstream thus sees an append-only stream of final rows.
///
/// The group key holds the window (`window_start` or `window_end`, at `windowKey`); a group's window closes at
/// that time plus `endOffsetMicroseconds` (the size for `window_start`, 0 for `window_end`): no row with an
/// earlier time can arrive once the watermark is there. A change to a group whose window has already closed is
/// late: it is dropped and counted (`lateChangeCount`), and so is a change to a group whose window time is NULL
/// (`nullWindowChangeCount`), which no watermark closes.
///
/// At a barrier: feed the aggregate's `emitChanges` output to `apply`, then `emitClosed(watermark:into:)`, then
/// drop the closed groups' state from the aggregate (`AggregateOperator.removeGroups(where: isClosed)`), so state
/// stays bounded by the open windows. The buffer's own state is the watermark it has closed through (which the
/// runtime checkpoints) and rows the aggregate also holds: on restart, restore the aggregate, create the buffer
/// with the checkpointed watermark, and `restore` each of the aggregate's rows.
public struct WindowCloseBuffer: Sendable {
    public let keyWidth: Int
    public let rowWidth: Int
    /// The group key position holding the window's time.
    public let windowKey: Int
    public let endOffsetMicroseconds: Int64
    /// Windows that end at or before it have closed and been emitted; nil before the first watermark.
    public private(set) var watermark: Int64?
    /// Changes dropped because their window had already closed.
    public private(set) var lateChangeCount = 0
    /// Changes dropped because their window time was NULL.
    public private(set) var nullWindowChangeCount = 0

    /// Pending rows by group key, with when each one's window closes.
    private var pending: [[SQLValue]: (closesAt: Int64, row: [SQLValue])] = [:]
    /// The group keys pending per closing time.
    private var keysByClose: [Int64: Set<[SQLValue]>] = [:]
    private var keyScratch: [SQLValue] = []

    public init(keyWidth: Int, rowWidth: Int, windowKey: Int, endOffsetMicroseconds: Int64, watermark: Int64? = nil) throws(DataflowError) {
        guard windowKey >= 0 && windowKey < keyWidth else {
            throw DataflowError(.invalidDefinition, "the window is group key \(windowKey), but the key has \(keyWidth) values")
        }
        self.keyWidth = keyWidth
        self.rowWidth = rowWidth
        self.windowKey = windowKey
        self.endOffsetMicroseconds = endOffsetMicroseconds
        self.watermark = watermark
    }

    /// The buffer of a bound view's `EMIT ON WINDOW CLOSE`.
    public init(_ close: View.WindowClose, keyWidth: Int, rowWidth: Int, watermark: Int64? = nil) throws(DataflowError) {
        try self.init(keyWidth: keyWidth, rowWidth: rowWidth, windowKey: close.windowKey, endOffsetMicroseconds: close.endOffsetMicroseconds, watermark: watermark)
    }

    /// Groups whose final row is still to come.
    public var pendingCount: Int { pending.count }

    /// When the window of a group key closes; nil for a NULL (or unreadable) window time.
    public func closingTime(of key: ArraySlice<SQLValue>) -> Int64? {
        guard case .string(let text) = key[key.startIndex + windowKey], let time = CivilTime.microseconds(of: text) else { return nil }
        return time &+ endOffsetMicroseconds
    }

    /// Whether the group's window has closed (a NULL window never closes).
    public func isClosed(_ key: ArraySlice<SQLValue>) -> Bool {
        guard let watermark, let closesAt = closingTime(of: key) else { return false }
        return closesAt <= watermark
    }

    /// Takes the aggregate's changes of a barrier (keyed by group key).
    public mutating func apply(_ changes: ChangeBatch) {
        precondition(changes.keyWidth == keyWidth && changes.rowWidth == rowWidth,
            "changes of widths \(changes.keyWidth)/\(changes.rowWidth) for a buffer of \(keyWidth)/\(rowWidth)")
        for index in 0..<changes.count {
            let key = changes.key(at: index)
            guard let closesAt = closingTime(of: key) else {
                nullWindowChangeCount += 1
                continue
            }
            if let watermark, closesAt <= watermark {
                lateChangeCount += 1
                continue
            }
            keyScratch.removeAll(keepingCapacity: true)
            keyScratch.append(contentsOf: key)
            if let row = changes.newRow(at: index) {
                hold(keyScratch, row: Array(row), closesAt: closesAt)
            } else if pending.removeValue(forKey: keyScratch) != nil {
                keysByClose[closesAt]?.remove(keyScratch)
                if keysByClose[closesAt]?.isEmpty == true { keysByClose[closesAt] = nil }
            }
        }
    }

    /// Holds a row of the aggregate after a restart (its window still open at the checkpointed watermark).
    public mutating func restore(key: ArraySlice<SQLValue>, row: [SQLValue]) {
        guard let closesAt = closingTime(of: key), !(watermark.map { closesAt <= $0 } ?? false) else { return }
        hold(Array(key), row: row, closesAt: closesAt)
    }

    private mutating func hold(_ key: [SQLValue], row: [SQLValue], closesAt: Int64) {
        if pending.updateValue((closesAt, row), forKey: key) == nil {
            keysByClose[closesAt, default: []].insert(key)
        }
    }

    /// Advances the watermark (it never moves back) and appends to `output` an insert of the final row of every
    /// group whose window it closes, by closing time, then key. Returns how many rows it emitted.
    @discardableResult
    public mutating func emitClosed(watermark newWatermark: Int64, into output: inout ChangeBatch) -> Int {
        precondition(output.keyWidth == keyWidth && output.rowWidth == rowWidth,
            "an output batch of widths \(output.keyWidth)/\(output.rowWidth) for a buffer of \(keyWidth)/\(rowWidth)")
        guard watermark.map({ newWatermark > $0 }) ?? true else { return 0 }
        watermark = newWatermark
        let closing = keysByClose.keys.filter { $0 <= newWatermark }.sorted()
        var emitted = 0
        for closesAt in closing {
            let keys = keysByClose.removeValue(forKey: closesAt) ?? []
            for key in keys.sorted(by: Self.precedes) {
                guard let entry = pending.removeValue(forKey: key) else { continue }
                output.appendInsert(key: key, row: entry.row)
                emitted += 1
            }
        }
        return emitted
    }

    /// A total order on keys, for a deterministic output: value by value, NULL first.
    private static func precedes(_ left: [SQLValue], _ right: [SQLValue]) -> Bool {
        for (a, b) in zip(left, right) where a != b {
            if a.isNull || b.isNull { return a.isNull }
            if let order = SQLValue.compare(a, b), order != 0 { return order < 0 }
            return a.description < b.description
        }
        return false
    }
}
