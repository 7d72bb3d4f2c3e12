import EddySQL

/// A bound SQL view compiled for the engine: the decoder's schema, the aggregator's shape, and how to turn a
/// group's state back into the view's output row.
public struct ViewPlan: Sendable {
    public let view: View
    public let source: Source
    public let schema: RowSchema
    public let aggregates: [AggregateSpec]
    /// The kind of each aggregate's argument column (nil for `COUNT(*)`), to show MIN/MAX of times as times.
    private let argumentKinds: [ColumnKind?]

    /// - Throws: `.unsupported` when the hot path cannot aggregate the view as bound: it does not aggregate, or
    ///   uses `FILTER` (each refused at `file:line:column` of the construct).
    public init(view: View, source: Source) throws(EngineError) {
        try Self.refuseWhatTheHotPathCannotRun(view)
        precondition(view.sourceName == source.name, "view \(view.name) reads \(view.sourceName), not \(source.name)")
        self.view = view
        self.source = source
        let schema = RowSchema(source: source, window: view.window)
        self.schema = schema
        aggregates = view.aggregates.map { AggregateSpec(AggregateSpec.Function($0.function), argument: $0.argument, isDistinct: $0.isDistinct) }
        argumentKinds = view.aggregates.map { call in call.argument.map { schema.columns[$0].kind } }
        do {
            try GroupTable.validate(schema: schema, groupBy: view.groupBy, aggregates: aggregates)
        } catch {
            throw EngineError(.unsupported, "view \(view.name): \(error.reason)")
        }
    }

    /// Whether the hot path runs `window` of `view` over `source`: a `TUMBLE` is one more group-key column computed
    /// per message, so it does, unless the source has a watermark (whose late-event filter, like `EMIT ON WINDOW
    /// CLOSE`, runs on the row path). A `HOP` makes several rows of a message: the row path.
    public static func runsOnHotPath(_ window: View.TimeWindow, of view: View, over source: Source) -> Bool {
        guard case .tumble = window.kind, source.watermark == nil, view.emitOnWindowClose == nil else { return false }
        // The window's columns follow the source's row, as the schema appends them.
        return window.windowStartColumn == source.rowColumns.count
    }

    /// The hot path aggregates source rows by columns: a view over a source that does not aggregate, or uses
    /// `FILTER`, is not run on it (views over views are: the dataflow operators run them).
    private static func refuseWhatTheHotPathCannotRun(_ view: View) throws(EngineError) {
        guard let first = view.constructs.first(where: { $0.kind != .viewInput }) else { return }
        let name = view.isDerivedTable ? "subquery \(view.name)" : "view \(view.name)"
        let reason: String
        switch first.kind {
        case .rowsWithoutAggregation:
            reason = "\(name) reads source \(view.sourceName) without aggregating: views that only filter and project a source's rows are not run yet; add GROUP BY, or filter a view instead"
        case .aggregateFilter:
            reason = "\(name): FILTER (WHERE ...) on an aggregate over a source is not run yet; move the condition to WHERE, or aggregate a view with FILTER"
        case .viewInput:
            reason = "\(name) reads a view"
        }
        throw EngineError(.unsupported, "\(first.location): \(reason)")
    }

    /// What the view's stored state means: a change to it makes stored state unusable.
    public var fingerprint: String { view.canonicalText }

    /// A fresh aggregator for this view.
    public func makeAggregator(limits: DecoderLimits = DecoderLimits()) -> Aggregator {
        // `init` validated the shape, which `Aggregator` requires.
        Aggregator(
            schema: schema, groupBy: view.groupBy, aggregates: aggregates, limits: limits,
            filter: view.filter.map { filter in
                CompiledPredicate.make(filter, schema: schema) ?? ReferencePredicate(expression: filter, schema: schema) as any RowPredicate
            })
    }

    /// An empty table shaped for this view (for restoring a checkpoint).
    public func makeTable() -> GroupTable {
        GroupTable(schema: schema, groupBy: view.groupBy, aggregates: aggregates)
    }

    /// The view's output row for `group`, or nil when `HAVING` excludes it.
    public func outputRow(of group: Int, in table: GroupTable) throws(EngineError) -> [SQLValue]? {
        let keys = try table.keyValues(ofGroup: group)
        let groupKey: (Int) -> SQLValue = { [schema, view] index in
            SQLValue(keys[index], kind: schema.columns[view.groupBy[index]].kind)
        }
        let aggregate: (Int) -> SQLValue = { [argumentKinds, view] index in
            let kind: ColumnKind? = switch view.aggregates[index].function {
            case .min, .max: argumentKinds[index]
            default: nil
            }
            return SQLValue(table.value(ofAggregate: index, group: group), kind: kind)
        }
        let noColumn: (Int) -> SQLValue = { _ in .null }
        if let having = view.having, having.evaluate(column: noColumn, groupKey: groupKey, aggregate: aggregate) != .bool(true) {
            return nil
        }
        return view.outputColumns.map { $0.expression.evaluate(column: noColumn, groupKey: groupKey, aggregate: aggregate) }
    }

    /// Every output row of the view, in no particular order. A view with no GROUP BY has its one row even
    /// before any message (COUNT 0, other aggregates NULL), as SQL answers an aggregate over no rows.
    public func outputRows(of table: GroupTable) throws(EngineError) -> [[SQLValue]] {
        if view.groupBy.isEmpty && table.groupCount == 0 { return emptyGlobalRow().map { [$0] } ?? [] }
        var rows: [[SQLValue]] = []
        rows.reserveCapacity(table.groupCount)
        for group in 0..<table.groupCount {
            if let row = try outputRow(of: group, in: table) { rows.append(row) }
        }
        return rows
    }

    private func emptyGlobalRow() -> [SQLValue]? {
        let aggregate: (Int) -> SQLValue = { [view] index in view.aggregates[index].function == .count ? .int(0) : .null }
        let none: (Int) -> SQLValue = { _ in .null }
        if let having = view.having, having.evaluate(column: none, groupKey: none, aggregate: aggregate) != .bool(true) { return nil }
        return view.outputColumns.map { $0.expression.evaluate(column: none, groupKey: none, aggregate: aggregate) }
    }

    /// A table holding a checkpoint's entries; `entries` calls its body with each (key, state) pair.
    public func table(
        fromEntries entries: (_ body: (UnsafeRawBufferPointer, UnsafeRawBufferPointer) throws -> Void) throws -> Void
    ) throws -> GroupTable {
        var table = makeTable()
        try entries { key, state in _ = try table.restoreGroup(key: key, state: state) }
        _ = table.takeDirty()
        return table
    }
}

extension RowSchema {
    /// The decoder's schema of a source: the columns of its JSON, then its `INCLUDE` columns (as
    /// `Source.rowColumns` orders them, which is how views refer to them).
    public init(source: Source) {
        let included = source.includedColumns.map { column in
            let field: MessageField = switch column.kind {
            case .timestamp: .timestamp
            case .partition: .partition
            case .offset: .offset
            case .key: .key
            }
            return Column(name: column.name, kind: ColumnKind(column.type), origin: .metadata(field))
        }
        let timeNumbers: TimeNumberUnit = switch source.json.timeNumbers {
        case .guessNumberUnit: .guess
        case .second: .seconds
        case .milli: .milliseconds
        case .micro: .microseconds
        case .utcString, .utcWithoutSuffix: .none
        }
        self.init(
            columns: source.columns.map(Self.column) + included + source.pathColumns.map(Self.column), timeNumbers: timeNumbers,
            ignoresKeyCase: source.json.ignoresKeyCase)
    }

    /// The decoder's schema of a source read through `window` (a `TUMBLE` the hot path runs): the source's
    /// columns, then `window_start` and `window_end` of the time column's kind.
    public init(source: Source, window: View.TimeWindow?) {
        self.init(source: source)
        guard let window, case .tumble(let size) = window.kind else { return }
        let kind = columns[window.timeColumn].kind
        for (name, isEnd) in [("window_start", false), ("window_end", true)] {
            columns.append(Column(
                name: name, kind: kind,
                origin: .tumble(timeColumn: window.timeColumn, sizeMicroseconds: size, offsetMicroseconds: window.offsetMicroseconds, isEnd: isEnd)))
        }
    }

    /// A JSON column of a source: a top-level field, or a path into one (a STRUCT's field, a JSONB path).
    private static func column(_ column: EddySQL.Column) -> Column {
        guard let path = column.path else {
            return Column(name: column.name, kind: ColumnKind(column.type), reading: column.type == .jsonb ? .json : .typed)
        }
        let reading: ValueReading = switch path.reading {
        case .typed: .typed
        case .json: .json
        case .text: .text
        case .castText: .castText
        }
        let steps = path.steps.map { step -> PathStep in
            switch step {
            case .field(let name): .field(name)
            case .index(let index): .index(index)
            }
        }
        return Column(name: column.name, kind: ColumnKind(column.type), origin: .path(root: path.root, steps: steps), reading: reading)
    }
}

extension ColumnKind {
    /// How the decoder holds a SQL column type.
    public init(_ type: SQLType) {
        switch type {
        case .varchar, .jsonb: self = .string
        case .smallint, .integer, .bigint: self = .int64
        case .real, .double: self = .double
        case .decimal: self = .decimal
        case .boolean: self = .bool
        case .timestamp: self = .timestamp
        case .timestamptz: self = .timestamptz
        case .date: self = .date
        }
    }
}

extension AggregateSpec.Function {
    init(_ function: AggregateCall.Function) {
        switch function {
        case .count: self = .count
        case .sum: self = .sum
        case .min: self = .min
        case .max: self = .max
        case .avg: self = .avg
        }
    }
}

extension SQLValue {
    /// A stored or aggregated value as SQL sees it: times become the canonical text SQL compares.
    init(_ value: ScalarValue, kind: ColumnKind?) {
        switch value {
        case .null: self = .null
        case .bool(let flag): self = .bool(flag)
        case .double(let number): self = .double(number)
        case .string(let text): self = .string(text)
        case .int64(let number):
            switch kind {
            case .timestamp?, .timestamptz?: self = .string(CivilTime.timestampText(microseconds: number))
            case .date?: self = .string(CivilTime.dateText(days: number))
            default: self = .int(number)
            }
        }
    }
}

/// A view's `WHERE` evaluated with the SQL front end's evaluator: the fallback for what `CompiledPredicate`
/// does not compile (ILIKE, `||`). It builds a `SQLValue` per referenced column per row (a `String` for text
/// columns), so it allocates per message.
struct ReferencePredicate: RowPredicate {
    let expression: BoundExpression
    let kinds: [ColumnKind]

    init(expression: BoundExpression, schema: RowSchema) {
        self.expression = expression
        kinds = schema.columns.map(\.kind)
    }

    func accepts(_ row: DecodedRow) -> Bool {
        expression.evaluate(column: { column in SQLValue(row: row, column: column, kind: kinds[column]) }) == .bool(true)
    }
}

extension SQLValue {
    init(row: DecodedRow, column: Int, kind: ColumnKind) {
        if row.isNull(column) {
            self = .null
            return
        }
        switch kind {
        case .string: self = row.string(column).map(SQLValue.string) ?? .null
        case .int64: self = row.int64(column).map(SQLValue.int) ?? .null
        case .double, .decimal: self = row.double(column).map(SQLValue.double) ?? .null
        case .bool: self = row.bool(column).map(SQLValue.bool) ?? .null
        case .timestamp, .timestamptz: self = row.int64(column).map { .string(CivilTime.timestampText(microseconds: $0)) } ?? .null
        case .date: self = row.int64(column).map { .string(CivilTime.dateText(days: $0)) } ?? .null
        }
    }
}

extension View.TimeWindow {
    /// Whether `other` makes the same windows of the same column (wherever each is written).
    func isSameWindow(as other: View.TimeWindow) -> Bool {
        kind == other.kind && timeColumn == other.timeColumn && offsetMicroseconds == other.offsetMicroseconds
            && windowStartColumn == other.windowStartColumn
    }
}
