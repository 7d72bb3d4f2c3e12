import EddySQL

/// `FROM TUMBLE(input, time, size)` / `HOP(input, time, hop, size)` over a stream of changes: stateless, so it
/// maps each change as it comes. Each output row is its input row with `window_start` and `window_end`
/// appended (times, carried as canonical text like every time value).
///
/// Windows are half-open, `[start, start + size)`, and start at `offset` plus a multiple of the hop (of the size
/// for a tumble), as RisingWave aligns them. A tumble puts a row in exactly one window and keeps the row's key;
/// a NULL time gives NULL window columns (RisingWave's `tumble_start(NULL)`). A hop puts a row in `size / hop`
/// windows, keyed by the input key and `window_start` so that the keys stay unique; a NULL time is in no window.
/// An update maps to an update of each window both rows are in, a delete of each only the old row is in and an
/// insert of each only the new row is in.
public struct WindowAssigner: Sendable {
    public enum Kind: Sendable, Hashable {
        case tumble(sizeMicroseconds: Int64)
        /// `size` must be a multiple of `hop`.
        case hop(hopMicroseconds: Int64, sizeMicroseconds: Int64)
    }

    public let kind: Kind
    /// The time column, in the input's columns.
    public let timeColumn: Int
    public let offsetMicroseconds: Int64
    public let inputKeyWidth: Int
    public let inputWidth: Int

    /// Values per output key: the input key, and `window_start` for a hop.
    public var outputKeyWidth: Int { isHop ? inputKeyWidth + 1 : inputKeyWidth }
    /// Values per output row: the input row, `window_start`, `window_end`.
    public var outputRowWidth: Int { inputWidth + 2 }

    private var isHop: Bool { if case .hop = kind { true } else { false } }
    private let step: Int64
    private let size: Int64

    // The last window rendered: rows of a batch mostly share windows, and rendering allocates.
    private var renderedStart: Int64?
    private var renderedStartText: SQLValue = .null
    private var renderedEndText: SQLValue = .null
    // Reused per change.
    private var oldWindows: [Int64] = []
    private var newWindows: [Int64] = []
    private var rowScratch: [SQLValue] = []
    private var otherRowScratch: [SQLValue] = []
    private var keyScratch: [SQLValue] = []

    /// - Throws: `invalidDefinition` for a size or hop that is not positive, a size that is not a multiple of
    ///   the hop, or a time column the input does not have.
    public init(kind: Kind, timeColumn: Int, offsetMicroseconds: Int64 = 0, inputKeyWidth: Int, inputWidth: Int) throws(DataflowError) {
        switch kind {
        case .tumble(let size):
            guard size > 0 else { throw DataflowError(.invalidDefinition, "a tumbling window of \(size) µs: the size must be positive") }
            step = size
            self.size = size
        case .hop(let hop, let size):
            guard hop > 0, size > 0, size % hop == 0 else {
                throw DataflowError(.invalidDefinition, "a hopping window of hop \(hop) µs and size \(size) µs: both must be positive and the size a multiple of the hop")
            }
            step = hop
            self.size = size
        }
        guard timeColumn >= 0 && timeColumn < inputWidth else {
            throw DataflowError(.invalidDefinition, "the time column \(timeColumn) of a window is not among the input's \(inputWidth) columns")
        }
        self.kind = kind
        self.timeColumn = timeColumn
        self.offsetMicroseconds = offsetMicroseconds
        self.inputKeyWidth = inputKeyWidth
        self.inputWidth = inputWidth
    }

    /// The windows of a bound view's `TUMBLE` / `HOP`.
    public init(_ window: View.TimeWindow, inputKeyWidth: Int, inputWidth: Int) throws(DataflowError) {
        let kind: Kind = switch window.kind {
        case .tumble(let size): .tumble(sizeMicroseconds: size)
        case .hop(let hop, let size): .hop(hopMicroseconds: hop, sizeMicroseconds: size)
        }
        try self.init(kind: kind, timeColumn: window.timeColumn, offsetMicroseconds: window.offsetMicroseconds, inputKeyWidth: inputKeyWidth, inputWidth: inputWidth)
    }

    /// An empty batch of this operator's output widths.
    public func makeOutputBatch() -> ChangeBatch { ChangeBatch(keyWidth: outputKeyWidth, rowWidth: outputRowWidth) }

    /// The start of the last window that holds `time` (the only one for a tumble); windows that hold it start at
    /// this, this - hop, …, for `size / hop` windows.
    public func lastWindowStart(containing time: Int64) -> Int64 {
        Self.windowStart(containing: time, step: step, offsetMicroseconds: offsetMicroseconds)
    }

    /// The start of the window of windows `step` long, aligned at `offsetMicroseconds`, that holds `time` (the
    /// hot path's `TUMBLE` computes its `window_start` with this too).
    @inline(always)
    public static func windowStart(containing time: Int64, step: Int64, offsetMicroseconds: Int64) -> Int64 {
        let remainder = (time &- offsetMicroseconds) % step
        return time &- (remainder < 0 ? remainder &+ step : remainder)
    }

    /// Appends to `output` the changes of the windowed rows that `input` makes.
    public mutating func apply(_ input: ChangeBatch, into output: inout ChangeBatch) {
        precondition(input.rowWidth == inputWidth && input.keyWidth == inputKeyWidth,
            "input of widths \(input.keyWidth)/\(input.rowWidth), the window reads \(inputKeyWidth)/\(inputWidth)")
        precondition(output.keyWidth == outputKeyWidth && output.rowWidth == outputRowWidth,
            "an output batch of widths \(output.keyWidth)/\(output.rowWidth), expected \(outputKeyWidth)/\(outputRowWidth)")
        for index in 0..<input.count {
            let key = input.key(at: index)
            let old = input.oldRow(at: index)
            let new = input.newRow(at: index)
            if isHop {
                applyHop(key: key, old: old, new: new, into: &output)
            } else {
                applyTumble(key: key, old: old, new: new, into: &output)
            }
        }
    }

    private mutating func applyTumble(key: ArraySlice<SQLValue>, old: ArraySlice<SQLValue>?, new: ArraySlice<SQLValue>?, into output: inout ChangeBatch) {
        switch (old, new) {
        case (let old?, let new?):
            let oldWindow = window(time(of: old).map(lastWindowStart))
            Self.windowed(old, oldWindow, into: &otherRowScratch)
            let newWindow = window(time(of: new).map(lastWindowStart))
            Self.windowed(new, newWindow, into: &rowScratch)
            if otherRowScratch != rowScratch { output.appendUpdate(key: key, old: otherRowScratch, new: rowScratch) }
        case (let old?, nil):
            let oldWindow = window(time(of: old).map(lastWindowStart))
            Self.windowed(old, oldWindow, into: &rowScratch)
            output.appendDelete(key: key, row: rowScratch)
        case (nil, let new?):
            let newWindow = window(time(of: new).map(lastWindowStart))
            Self.windowed(new, newWindow, into: &rowScratch)
            output.appendInsert(key: key, row: rowScratch)
        case (nil, nil):
            break
        }
    }

    private mutating func applyHop(key: ArraySlice<SQLValue>, old: ArraySlice<SQLValue>?, new: ArraySlice<SQLValue>?, into output: inout ChangeBatch) {
        var starts = (old: [Int64](), new: [Int64]())
        swap(&starts.old, &oldWindows)
        swap(&starts.new, &newWindows)
        defer {
            swap(&starts.old, &oldWindows)
            swap(&starts.new, &newWindows)
        }
        windows(of: old, into: &starts.old)
        windows(of: new, into: &starts.new)
        let oldWindows = starts.old
        let newWindows = starts.new
        // Both lists ascend: merge them, pairing the windows both rows are in.
        var o = 0
        var n = 0
        while o < oldWindows.count || n < newWindows.count {
            let oldStart = o < oldWindows.count ? oldWindows[o] : Int64.max
            let newStart = n < newWindows.count ? newWindows[n] : Int64.max
            let start = min(oldStart, newStart)
            let texts = window(start)
            keyScratch.removeAll(keepingCapacity: true)
            keyScratch.append(contentsOf: key)
            keyScratch.append(texts.start)
            if oldStart == newStart, let old, let new {
                Self.windowed(old, texts, into: &otherRowScratch)
                Self.windowed(new, texts, into: &rowScratch)
                if otherRowScratch != rowScratch { output.appendUpdate(key: keyScratch, old: otherRowScratch, new: rowScratch) }
                o += 1
                n += 1
            } else if oldStart < newStart, let old {
                Self.windowed(old, texts, into: &rowScratch)
                output.appendDelete(key: keyScratch, row: rowScratch)
                o += 1
            } else if let new {
                Self.windowed(new, texts, into: &rowScratch)
                output.appendInsert(key: keyScratch, row: rowScratch)
                n += 1
            }
        }
    }

    /// The starts of the windows holding `row`'s time, ascending; none for no row or a NULL time.
    private func windows(of row: ArraySlice<SQLValue>?, into starts: inout [Int64]) {
        starts.removeAll(keepingCapacity: true)
        guard let row, let time = time(of: row) else { return }
        let last = lastWindowStart(containing: time)
        var start = last &- (size &- step)
        while start <= last {
            starts.append(start)
            start &+= step
        }
    }

    /// The row's time in microseconds; nil when NULL or not a time.
    private func time(of row: ArraySlice<SQLValue>) -> Int64? {
        guard case .string(let text) = row[row.startIndex + timeColumn] else { return nil }
        return CivilTime.microseconds(of: text)
    }

    /// `row` with `window` appended.
    private static func windowed(_ row: ArraySlice<SQLValue>, _ window: (start: SQLValue, end: SQLValue), into result: inout [SQLValue]) {
        result.removeAll(keepingCapacity: true)
        result.append(contentsOf: row)
        result.append(window.start)
        result.append(window.end)
    }

    /// The window starting at `start` as values (NULLs for none).
    private mutating func window(_ start: Int64?) -> (start: SQLValue, end: SQLValue) {
        guard let start else { return (.null, .null) }
        if renderedStart != start {
            renderedStart = start
            renderedStartText = .string(CivilTime.timestampText(microseconds: start))
            renderedEndText = .string(CivilTime.timestampText(microseconds: start &+ size))
        }
        return (renderedStartText, renderedEndText)
    }
}
