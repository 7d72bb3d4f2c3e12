import EddySQL

/// A temporal filter (`WHERE ts > now() - INTERVAL '1 hour'`, RisingWave's) over a stream of changes: a row is in
/// the output while the epoch's time `now` satisfies every bound, so as the clock advances rows whose time falls
/// behind a lower bound leave (a delete downstream) and rows ahead of an upper bound (`ts <= now()`) enter.
///
/// `now` only moves forward (the engine checkpoints it with the offsets), so a row is visible over one interval of
/// time, `[appearsAt, expiresAt)`: a row past its interval is dropped for good, one before it is held until the
/// clock reaches it. The output at a time is a function of the input rows and that time alone, whatever the
/// epochs were, which is what makes a checkpoint's offsets and time one state (the fence compares both).
///
/// State: every input row that is visible or will be (`prefilter`, the view's other conditions, keeps out rows
/// that never pass), keyed by its input key, and a heap of the times at which one changes. `drainChangedState`
/// hands what changed to the store (the row, or nil once it is gone); `restore` brings rows back at the
/// checkpoint's time, emitting nothing.
public struct TemporalFilterOperator: Sendable {
    public let bounds: [View.TemporalBound]
    /// The view's other conditions (`WHERE` without the temporal ones): a row that fails them is never held.
    public let prefilter: BoundExpression?
    public let keyWidth: Int
    public let rowWidth: Int
    /// The time the output stands at: the last `apply`'s, or the restored checkpoint's.
    public private(set) var now: Int64

    private struct Held: Sendable {
        var row: [SQLValue]
        var appearsAt: Int64
        var expiresAt: Int64
        /// Whether the row is in the output now.
        var isVisible: Bool
        /// When the row next enters or leaves the output.
        var nextChange: Int64 { isVisible ? expiresAt : appearsAt }
    }

    private var held: [[SQLValue]: Held] = [:]
    /// (time, key) of each held row's next change; an entry whose row has gone or changed since is skipped.
    private var changeTimes = TimeHeap()
    /// Keys whose held row changed since the last `drainChangedState`.
    private var changedKeys: Set<[SQLValue]> = []
    private var hasStarted = false

    /// - Parameter now: the time a restored state stands at (`Int64.min` when there is none).
    /// - Throws: `invalidDefinition` when an expression reads a column the input does not have.
    public init(bounds: [View.TemporalBound], prefilter: BoundExpression?, keyWidth: Int, rowWidth: Int, now: Int64 = .min) throws(DataflowError) {
        precondition(!bounds.isEmpty, "a temporal filter has at least one bound")
        let place = ExpressionPlace.input(width: rowWidth)
        try place.check(prefilter, as: "WHERE")
        for bound in bounds { try place.check(bound.time, as: "the temporal filter \(bound)") }
        self.bounds = bounds
        self.prefilter = prefilter
        self.keyWidth = keyWidth
        self.rowWidth = rowWidth
        self.now = now
    }

    /// Rows held (visible now or later).
    public var heldCount: Int { held.count }

    /// The earliest time at which the output changes with no new input (`Int64.max`: never).
    public var nextChange: Int64 {
        mutating get {
            while let (time, key) = changeTimes.peek() {
                if let row = held[key], row.nextChange == time { return time }
                _ = changeTimes.pop()
            }
            return .max
        }
    }

    /// Advances the time to `now` (never backwards) and applies `input`: appends to `output` (whose widths are the
    /// input's) the output's changes. Input is applied at the new time, so a key appears at most once per call.
    public mutating func apply(_ input: ChangeBatch, now: Int64, into output: inout ChangeBatch) {
        precondition(input.keyWidth == keyWidth && input.rowWidth == rowWidth && output.keyWidth == keyWidth && output.rowWidth == rowWidth,
            "batches of widths \(input.keyWidth)/\(input.rowWidth) → \(output.keyWidth)/\(output.rowWidth), the filter has \(keyWidth)/\(rowWidth)")
        hasStarted = true
        self.now = max(self.now, now)
        for index in 0..<input.count {
            let key = Array(input.key(at: index))
            let before = held[key]
            if before != nil {
                held[key] = nil
                changedKeys.insert(key)
            }
            var after: Held?
            if let new = input.newRow(at: index), let interval = visibleInterval(of: new), interval.expiresAt > self.now {
                let row = Held(row: Array(new), appearsAt: interval.appearsAt, expiresAt: interval.expiresAt, isVisible: interval.appearsAt <= self.now)
                held[key] = row
                changedKeys.insert(key)
                changeTimes.push(row.nextChange, key)
                after = row
            }
            switch (before.flatMap { $0.isVisible ? $0.row : nil }, after.flatMap { $0.isVisible ? $0.row : nil }) {
            case (let old?, let new?): if old != new { output.appendUpdate(key: key, old: old, new: new) }
            case (let old?, nil): output.appendDelete(key: key, row: old)
            case (nil, let new?): output.appendInsert(key: key, row: new)
            case (nil, nil): break
            }
        }
        // Rows the clock moved past an edge of (those input touched were placed at the new time already).
        while let (time, key) = changeTimes.peek(), time <= self.now {
            _ = changeTimes.pop()
            guard var row = held[key], row.nextChange == time else { continue }
            if row.expiresAt <= self.now {
                if row.isVisible { output.appendDelete(key: key, row: row.row) }
                held[key] = nil
                changedKeys.insert(key)
            } else {
                row.isVisible = true
                held[key] = row
                changeTimes.push(row.expiresAt, key)
                output.appendInsert(key: key, row: row.row)
            }
        }
    }

    /// When the row is in the output: from `appearsAt` (included) to `expiresAt` (excluded); nil when never (its
    /// time is NULL, or `prefilter` rejects it).
    private func visibleInterval(of row: ArraySlice<SQLValue>) -> (appearsAt: Int64, expiresAt: Int64)? {
        let base = row.startIndex
        if let prefilter, prefilter.evaluate(column: { row[base + $0] }) != .bool(true) { return nil }
        var appearsAt = Int64.min
        var expiresAt = Int64.max
        for bound in bounds {
            guard case .string(let text) = bound.time.evaluate(column: { row[base + $0] }), let time = CivilTime.microseconds(of: text) else {
                return nil
            }
            // time > now + offset ⇔ now < time - offset: the row leaves once now reaches time - offset.
            let edge = time.subtractingClamped(bound.offsetMicroseconds)
            switch bound.comparison {
            case .greater: expiresAt = min(expiresAt, edge)
            case .greaterOrEqual: expiresAt = min(expiresAt, edge.addingClamped(1))
            case .less: appearsAt = max(appearsAt, edge.addingClamped(1))
            case .lessOrEqual: appearsAt = max(appearsAt, edge)
            }
        }
        return appearsAt < expiresAt ? (appearsAt, expiresAt) : nil
    }

    // MARK: State

    /// Hands every held row changed since the last call to `write`: its key and row values, or nil for one gone.
    public mutating func drainChangedState<Failure: Error>(
        _ write: (_ key: [SQLValue], _ row: [SQLValue]?) throws(Failure) -> Void
    ) throws(Failure) {
        for key in changedKeys { try write(key, held[key]?.row) }
        changedKeys.removeAll(keepingCapacity: true)
    }

    /// Holds a row from a checkpoint (as `drainChangedState` wrote it), placed at the restored time: call for each
    /// stored row before any input. A row the restored time has passed is not held (it left the output then).
    ///
    /// - Throws: `corruptState` for a key or row of the wrong width; `invalidUse` after input.
    public mutating func restore(key: [SQLValue], row: [SQLValue]) throws(DataflowError) {
        guard !hasStarted else { throw DataflowError(.invalidUse, "restoring a row after the temporal filter has taken input") }
        guard key.count == keyWidth, row.count == rowWidth else {
            throw DataflowError(.corruptState, "a stored row of a temporal filter has \(key.count)/\(row.count) key/row values, expected \(keyWidth)/\(rowWidth)")
        }
        guard let interval = visibleInterval(of: row[...]), interval.expiresAt > now else { return }
        let held = Held(row: row, appearsAt: interval.appearsAt, expiresAt: interval.expiresAt, isVisible: interval.appearsAt <= now)
        self.held[key] = held
        changeTimes.push(held.nextChange, key)
    }

    /// Calls `body` with the key and row of every row in the output now.
    public func forEachVisibleRow(_ body: (_ key: [SQLValue], _ row: [SQLValue]) -> Void) {
        for (key, row) in held where row.isVisible { body(key, row.row) }
    }
}

/// A binary min-heap of (time, key).
private struct TimeHeap: Sendable {
    private var times: [Int64] = []
    private var keys: [[SQLValue]] = []

    func peek() -> (Int64, [SQLValue])? { times.isEmpty ? nil : (times[0], keys[0]) }

    mutating func push(_ time: Int64, _ key: [SQLValue]) {
        guard time != .max else { return }
        times.append(time)
        keys.append(key)
        var child = times.count - 1
        while child > 0 {
            let parent = (child - 1) / 2
            guard times[child] < times[parent] else { break }
            times.swapAt(child, parent)
            keys.swapAt(child, parent)
            child = parent
        }
    }

    mutating func pop() -> (Int64, [SQLValue])? {
        guard !times.isEmpty else { return nil }
        let top = (times[0], keys[0])
        times.swapAt(0, times.count - 1)
        keys.swapAt(0, keys.count - 1)
        times.removeLast()
        keys.removeLast()
        var parent = 0
        while true {
            let left = 2 * parent + 1
            guard left < times.count else { break }
            let right = left + 1
            let smaller = right < times.count && times[right] < times[left] ? right : left
            guard times[smaller] < times[parent] else { break }
            times.swapAt(smaller, parent)
            keys.swapAt(smaller, parent)
            parent = smaller
        }
        return top
    }
}

extension Int64 {
    fileprivate func addingClamped(_ other: Int64) -> Int64 {
        let (sum, overflow) = addingReportingOverflow(other)
        return overflow ? (other > 0 ? .max : .min) : sum
    }

    fileprivate func subtractingClamped(_ other: Int64) -> Int64 {
        let (difference, overflow) = subtractingReportingOverflow(other)
        return overflow ? (other < 0 ? .max : .min) : difference
    }
}
