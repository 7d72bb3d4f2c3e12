/// Resolves the statements of a pipeline file into a `Pipeline`: names defined once and before use, views
/// checked against their source, sinks against their view, queries against views.
struct Binder {
    private let source: SourceText
    private(set) var errors: [SQLError] = []
    private(set) var warnings: [SQLError] = []
    private var sources: [Source] = []
    private var views: [View] = []
    private var sinks: [Sink] = []
    private var queries: [Query] = []
    /// Where each relation (source, table, view) and each sink was defined: RisingWave keeps relations in one
    /// namespace and sinks in another.
    private var relationDefinitions: [String: (kind: String, offset: Int)] = [:]
    private var sinkDefinitions: [String: Int] = [:]
    /// Relations whose definition had errors: statements using them are skipped without more errors.
    private var failedRelations: Set<String> = []
    /// Where each view of the file is defined, to tell a view read before its definition from an unknown name.
    private var laterViews: [String: Int] = [:]

    /// The whole file, for what a statement needs to know of later ones (the JSONB paths views read).
    private var statements: [Statement] = []

    init(source: SourceText) { self.source = source }

    mutating func bind(_ statements: [Statement]) -> Pipeline {
        self.statements = statements
        for case .createView(let create) in statements where laterViews[create.name.name] == nil {
            laterViews[create.name.name] = create.name.start
        }
        for statement in statements {
            switch statement {
            case .createSource(let create): bindSource(create)
            case .createView(let create): bindView(create)
            case .createSink(let create): bindSink(create)
            case .select(let select): bindQuery(select)
            case .unsupported(let what, let hint, let start, let end):
                errors.append(source.error(.unsupported, "\(what) is not supported: \(hint)", from: start, to: min(end, start + what.utf8.count)))
            }
        }
        return Pipeline(file: source.file, sources: sources, views: views, sinks: sinks, queries: queries, warnings: warnings)
    }

    // MARK: Names

    /// Registers a relation name; false (with an error or, for IF NOT EXISTS, a warning) when it is taken.
    private mutating func define(relation name: Identifier, kind: String, ifNotExists: Bool) -> Bool {
        if let existing = relationDefinitions[name.name] {
            let location = source.location(existing.offset)
            if ifNotExists {
                warnings.append(source.error(.duplicateName, "\(existing.kind) '\(name.name)' already exists (line \(location.line)); this \(kind) is skipped (IF NOT EXISTS)", from: name.start, to: name.end, severity: .warning))
            } else {
                errors.append(source.error(.duplicateName, "\(existing.kind) '\(name.name)' already exists (defined at \(location)); names of sources, tables and views must be unique", from: name.start, to: name.end))
            }
            return false
        }
        relationDefinitions[name.name] = (kind, name.start)
        return true
    }

    private func definitionKind(_ name: String) -> String? { relationDefinitions[name]?.kind }

    // MARK: Sources

    private mutating func bindSource(_ create: CreateSource) {
        let kind = create.isTable ? "table" : "source"
        guard define(relation: create.name, kind: kind, ifNotExists: create.ifNotExists) else { return }
        var columns: [Column] = []
        var failed = false
        var seen: [String: Int] = [:]
        for column in create.columns {
            if let first = seen[column.name.name] {
                errors.append(source.error(.duplicateName, "column '\(column.name.name)' is declared twice in \(kind) '\(create.name.name)' (first at \(source.location(first)))", from: column.name.start, to: column.name.end))
                failed = true
                continue
            }
            seen[column.name.name] = column.name.start
            if let fields = column.fields {
                // A STRUCT is read as one column per field, at any depth: `(device).os`.
                guard let leaves = structLeaves(fields, root: column.name.name, steps: [], kind: kind, sourceName: create.name.name) else {
                    failed = true
                    continue
                }
                columns += leaves
            } else {
                columns.append(Column(name: column.name.name, type: column.type))
            }
        }
        if create.columns.isEmpty {
            errors.append(source.error(.invalidOption, "\(kind) '\(create.name.name)' needs a column list, e.g. (event VARCHAR, user VARCHAR): Eddy reads JSON without a schema registry", from: create.name.start, to: create.name.end))
            failed = true
        }
        var json = JSONSourceSettings()
        var options = SourceOptionsCompiler(source: source)
        let kafka = options.compile(create.options, sourceName: create.name.name, withStart: create.withStart)
        errors += options.errors
        warnings += options.warnings
        if let format = create.format {
            if format.format.name != "plain" {
                errors.append(source.error(.unsupported, "FORMAT \(format.format.name.uppercased()) is not supported; Eddy reads FORMAT PLAIN ENCODE JSON", from: format.format.start, to: format.format.end))
                failed = true
            } else if format.encode.name != "json" {
                errors.append(source.error(.unsupported, "ENCODE \(format.encode.name.uppercased()) is not supported for sources; Eddy reads ENCODE JSON", from: format.encode.start, to: format.encode.end))
                failed = true
            }
            for option in format.options {
                switch option.key {
                case "timestamptz.handling.mode":
                    if let mode = JSONSourceSettings.TimeNumbers(rawValue: option.value.lowercased()) {
                        json.timeNumbers = mode
                    } else {
                        errors.append(source.error(.invalidOption, "timestamptz.handling.mode must be one of \(JSONSourceSettings.TimeNumbers.allCases.map { "'\($0.rawValue)'" }.joined(separator: ", ")), not '\(option.value)'", from: option.valueStart, to: option.valueEnd))
                        failed = true
                    }
                case "ignore_key_case":
                    switch option.value.lowercased() {
                    case "true": json.ignoresKeyCase = true
                    case "false": json.ignoresKeyCase = false
                    default:
                        errors.append(source.error(.invalidOption, "ignore_key_case must be 'true' or 'false', not '\(option.value)'", from: option.valueStart, to: option.valueEnd))
                        failed = true
                    }
                default:
                    errors.append(source.error(.invalidOption, "unknown ENCODE JSON option '\(option.key)' for a source; accepted: timestamptz.handling.mode, ignore_key_case", from: option.keyStart, to: option.keyEnd))
                    failed = true
                }
            }
        } else {
            errors.append(source.error(.invalidOption, "\(kind) '\(create.name.name)' needs FORMAT PLAIN ENCODE JSON after its WITH options", from: create.end - 1, to: create.end))
            failed = true
        }
        var included: [IncludedColumn] = []
        for include in create.includes {
            guard let kind = IncludedColumn.Kind(rawValue: include.what.name) else {
                let hint = ["header", "headers", "payload"].contains(include.what.name) ? " (not supported yet)" : ""
                errors.append(source.error(.unsupported, "INCLUDE \(include.what.name)\(hint): a source can include \(IncludedColumn.Kind.allCases.map(\.rawValue).joined(separator: ", "))", from: include.what.start, to: include.what.end))
                failed = true
                continue
            }
            let name = include.alias ?? include.what
            let columnName = include.alias?.name ?? kind.defaultName
            if let first = seen[columnName] {
                errors.append(source.error(.duplicateName, "column '\(columnName)' of INCLUDE \(kind.rawValue) is already a column of \(create.isTable ? "table" : "source") '\(create.name.name)' (at \(source.location(first))); name it with AS", from: name.start, to: name.end))
                failed = true
                continue
            }
            if included.contains(where: { $0.kind == kind }) {
                errors.append(source.error(.duplicateName, "INCLUDE \(kind.rawValue) is given twice", from: include.what.start, to: include.what.end))
                failed = true
                continue
            }
            seen[columnName] = name.start
            included.append(IncludedColumn(kind: kind, name: columnName, location: "\(source.file):\(source.location(include.start))"))
        }
        let rowColumns = columns + included.map { Column(name: $0.name, type: $0.type) }
        var watermark: Watermark?
        for definition in create.watermarks {
            if watermark != nil {
                errors.append(source.error(.unsupported, "a source has one watermark; this is its second WATERMARK", from: definition.start, to: definition.column.end))
                failed = true
                continue
            }
            guard let bound = bindWatermark(definition, columns: rowColumns, sourceName: create.name.name) else {
                failed = true
                continue
            }
            watermark = bound
        }
        guard !failed, let kafka else {
            failedRelations.insert(create.name.name)
            return
        }
        // The `->` / `->>` paths the file reads from this source's JSONB columns (wherever they are written: a
        // path of a same-named column elsewhere only costs a column nobody reads).
        var paths: [Column] = []
        let jsonb = Set(columns.filter { $0.type == .jsonb && $0.path == nil }.map(\.name))
        if !jsonb.isEmpty {
            for statement in statements {
                let queries: [SelectStatement] = switch statement {
                case .createView(let view): [view.query]
                case .select(let select): [select]
                default: []
                }
                for query in queries {
                    for expression in JSONPathSyntax.expressions(of: query) { JSONPathSyntax.arrowPaths(in: expression, jsonb: jsonb, into: &paths) }
                }
            }
        }
        sources.append(Source(
            name: create.name.name, isTable: create.isTable, columns: columns, kafka: kafka, includedColumns: included, watermark: watermark,
            json: json, pathColumns: paths))
    }

    /// The columns of a STRUCT's fields (a nested STRUCT's fields in turn), named `(root).a.b`.
    private mutating func structLeaves(_ fields: [ColumnDefinition], root: String, steps: [String], kind: String, sourceName: String) -> [Column]? {
        var leaves: [Column] = []
        var seen: [String: Int] = [:]
        var failed = false
        for field in fields {
            if let first = seen[field.name.name] {
                errors.append(source.error(.duplicateName, "field '\(field.name.name)' is declared twice in STRUCT \(Column.structFieldName(root: root, fields: steps).dropLast(steps.isEmpty ? 1 : 0)) of \(kind) '\(sourceName)' (first at \(source.location(first)))", from: field.name.start, to: field.name.end))
                failed = true
                continue
            }
            seen[field.name.name] = field.name.start
            let path = steps + [field.name.name]
            if let inner = field.fields {
                guard let nested = structLeaves(inner, root: root, steps: path, kind: kind, sourceName: sourceName) else {
                    failed = true
                    continue
                }
                leaves += nested
            } else {
                leaves.append(Column(
                    name: Column.structFieldName(root: root, fields: path), type: field.type,
                    path: JSONPath(root: root, steps: path.map(JSONPath.Step.field), reading: field.type == .jsonb ? .json : .typed)))
            }
        }
        return failed ? nil : leaves
    }

    /// `WATERMARK FOR column AS expression`: the column a time, the expression one over the source's row of the
    /// same type, not ahead of the column.
    private mutating func bindWatermark(_ definition: WatermarkDefinition, columns: [Column], sourceName: String) -> Watermark? {
        let name = definition.column
        guard let index = columns.firstIndex(where: { $0.name == name.name }) else {
            errors.append(source.error(.unknownName, "WATERMARK FOR an unknown column: " + ExpressionBinder.unknownColumnMessage(name.name, in: sourceName, candidates: columns.map(\.name)), from: name.start, to: name.end))
            return nil
        }
        let columnType = ValueType(columns[index].type)
        guard columnType.isTimestamp else {
            errors.append(source.error(.typeMismatch, "WATERMARK FOR '\(name.name)': a watermark is on a TIMESTAMP or TIMESTAMPTZ column, and '\(name.name)' is \(columns[index].type)", from: name.start, to: name.end))
            return nil
        }
        var binder = ExpressionBinder(source: source, scope: .row(columns: columns, relation: sourceName), clause: "WATERMARK")
        let bound = binder.bind(definition.expression)
        errors += binder.errors
        guard let (expression, type) = bound else { return nil }
        let span = definition.expression.span
        guard type.isTimestamp else {
            errors.append(source.error(.typeMismatch, "the watermark of '\(name.name)' must be a time like it, e.g. \(name.name) - INTERVAL '5 seconds', not \(type)", from: span.start, to: span.end))
            return nil
        }
        var delay: Int64?
        switch expression {
        case .column(index, _):
            delay = 0
        case .function(.timestampMinusInterval, let arguments) where arguments.first == .column(index, name: name.name):
            if case .literal(.string(let text))? = arguments.last, case .success(let interval) = SQLInterval.parse(text) { delay = interval.fixedMicroseconds }
        case .function(.timestampPlusInterval, let arguments) where arguments.first == .column(index, name: name.name):
            if case .literal(.string(let text))? = arguments.last, case .success(let interval) = SQLInterval.parse(text) { delay = interval.negated.fixedMicroseconds }
        default:
            break
        }
        if let delay, delay < 0 {
            errors.append(source.error(.typeMismatch, "the watermark of '\(name.name)' runs ahead of it (every row would be late); subtract the delay: \(name.name) - INTERVAL '...'", from: span.start, to: span.end))
            return nil
        }
        return Watermark(column: index, columnName: name.name, expression: expression, delayMicroseconds: delay, location: "\(source.file):\(source.location(definition.start))")
    }

    // MARK: Views

    private mutating func bindView(_ create: CreateView) {
        guard let input = resolveInput(create.query.from, viewName: create.name) else {
            if define(relation: create.name, kind: "materialized view", ifNotExists: create.ifNotExists) {
                failedRelations.insert(create.name.name)
            }
            return
        }
        guard define(relation: create.name, kind: "materialized view", ifNotExists: create.ifNotExists) else { return }
        if bindSelect(create.query, asView: create.name.name, input: input, definitionText: text(create.start, create.end), isDerivedTable: false, emitOnWindowClose: create.emitOnWindowClose) == nil {
            failedRelations.insert(create.name.name)
        }
    }

    /// The relation a view reads, as the view sees it.
    private struct BoundInput {
        var input: View.Input
        /// The name columns may be qualified with: the alias, else the relation's name.
        var qualifier: String
        var columns: [Column]
        var rootSource: Source
        /// What a reader's stored state depends on about its input.
        var canonicalText: String
        /// Where the input is named, for constructs a runtime may refuse.
        var offset: Int
        /// `TUMBLE` / `HOP` over the relation, whose columns then end with `window_start`, `window_end`.
        var window: View.TimeWindow? = nil
        /// The input column a source's watermark is on (none for a view's columns, which carry no watermark yet).
        var watermarkedColumn: Int? = nil

        func columnIndex(named name: String) -> Int? { columns.firstIndex { $0.name == name } }
    }

    /// The source, view or subquery a view reads; nil with an error (or silently, when the relation itself
    /// failed). A subquery is bound here, as a view of its own named `view.alias`.
    private mutating func resolveInput(_ item: FromItem, viewName: Identifier) -> BoundInput? {
        switch item {
        case .derived(let query, let alias, let start):
            let name = viewName.name + "." + alias.name
            guard case let inner? = resolveInput(query.from, viewName: viewName),
                let view = bindSelect(query, asView: name, input: inner, definitionText: text(start, alias.end), isDerivedTable: true)
            else { return nil }
            return boundInput(view: view, qualifier: alias.name, offset: start)
        case .window(let call, let alias):
            guard let relation = resolveInput(.relation(call.relation, alias: nil), viewName: viewName) else { return nil }
            return bindWindow(call, alias: alias, over: relation)
        case .relation(let name, let alias):
            let qualifier = alias?.name ?? name.name
            if let input = sources.first(where: { $0.name == name.name }) {
                var canonical = "source \(BoundExpression.quoteIfNeeded(input.name)) topic \(input.kafka.topic)"
                if let watermark = input.watermark { canonical += " watermark for \(BoundExpression.quoteIfNeeded(watermark.columnName)) as \(watermark.expression)" }
                return BoundInput(
                    input: .source(input.name), qualifier: qualifier, columns: input.rowColumns, rootSource: input,
                    canonicalText: canonical, offset: name.start, watermarkedColumn: input.watermark?.column)
            }
            if let view = views.first(where: { $0.name == name.name && !$0.isDerivedTable }) {
                return boundInput(view: view, qualifier: qualifier, offset: name.start)
            }
            if failedRelations.contains(name.name) { return nil }
            if name.name == viewName.name {
                errors.append(source.error(.unknownName, "materialized view '\(name.name)' reads itself: views may not form a cycle", from: name.start, to: name.end))
            } else if let later = laterViews[name.name], later > viewName.start {
                errors.append(source.error(.unknownName, "materialized view '\(name.name)' is defined later (line \(source.location(later).line)): define a view before the views that read it, so that views never form a cycle", from: name.start, to: name.end))
            } else {
                errors.append(source.error(.unknownName, unknownRelationMessage(name.name, expected: "source or materialized view"), from: name.start, to: name.end))
            }
            return nil
        }
    }

    private func boundInput(view: View, qualifier: String, offset: Int) -> BoundInput? {
        guard let root = sources.first(where: { $0.name == view.sourceName }) else { return nil }
        return BoundInput(
            input: .view(view.name), qualifier: qualifier,
            columns: view.outputColumns.map { Column(name: $0.name, type: SQLType($0.type)) }, rootSource: root,
            canonicalText: "view \(BoundExpression.quoteIfNeeded(view.name)) (\(view.canonicalText))", offset: offset)
    }

    /// `TUMBLE(relation, time, size[, offset])` / `HOP(relation, time, hop, size[, offset])` over a bound relation:
    /// its columns with `window_start` and `window_end` (of the time column's type) added.
    private mutating func bindWindow(_ call: WindowCall, alias: Identifier?, over relation: BoundInput) -> BoundInput? {
        let function = call.kind.rawValue
        let errorCount = errors.count
        var timeColumn: Int?
        var timeType = ValueType.timestamp
        if case .column = call.timeColumn {
            var binder = ExpressionBinder(source: source, scope: .row(columns: relation.columns, relation: call.relation.name), clause: function)
            if case (.column(let index, _), let type)? = binder.bind(call.timeColumn) {
                if type.isTimestamp {
                    timeColumn = index
                    timeType = type
                } else {
                    errors.append(source.error(.typeMismatch, "\(function) needs a TIMESTAMP or TIMESTAMPTZ column for its windows; '\(relation.columns[index].name)' is \(relation.columns[index].type)", from: call.timeColumn.span.start, to: call.timeColumn.span.end))
                }
            }
            errors += binder.errors
        } else {
            errors.append(source.error(.unsupported, "the time argument of \(function) must be a column of '\(call.relation.name)'", from: call.timeColumn.span.start, to: call.timeColumn.span.end))
        }
        let names = call.kind == .tumble ? ["window size"] : ["hop", "window size"]
        guard call.intervals.count == names.count || call.intervals.count == names.count + 1 else {
            let usage = call.kind == .tumble ? "TUMBLE(relation, time_column, size[, offset])" : "HOP(relation, time_column, hop, size[, offset])"
            errors.append(source.error(.syntax, "\(function) takes \(names.count + 2) or \(names.count + 3) arguments, \(usage); got \(call.intervals.count + 2)", from: call.name.start, to: call.end))
            return nil
        }
        var lengths: [Int64] = []
        for (position, argument) in call.intervals.enumerated() {
            let what = position < names.count ? names[position] : "offset"
            var binder = ExpressionBinder(source: source, scope: .row(columns: [], relation: call.relation.name), clause: function)
            let bound = binder.bind(argument)
            let span = argument.span
            guard case (.literal(.string(let text)), .interval)? = bound, case .success(let interval) = SQLInterval.parse(text) else {
                if binder.errors.isEmpty, let (_, type) = bound {
                    errors.append(source.error(.typeMismatch, "the \(what) of \(function) must be a constant INTERVAL, e.g. INTERVAL '1 minute', not \(type)", from: span.start, to: span.end))
                } else {
                    errors.append(source.error(.typeMismatch, "the \(what) of \(function) must be a constant INTERVAL, e.g. INTERVAL '1 minute'", from: span.start, to: span.end))
                }
                continue
            }
            guard let length = interval.fixedMicroseconds else {
                errors.append(source.error(.unsupported, "the \(what) of \(function) cannot count months or years ('\(interval)'): they differ in length; use days", from: span.start, to: span.end))
                continue
            }
            if what != "offset" && length <= 0 {
                errors.append(source.error(.typeMismatch, "the \(what) of \(function) must be positive, not '\(interval)'", from: span.start, to: span.end))
                continue
            }
            lengths.append(length)
        }
        guard errors.count == errorCount, let timeColumn else { return nil }
        let offset = lengths.count > names.count ? lengths[names.count] : 0
        let kind: View.TimeWindow.Kind
        if call.kind == .tumble {
            kind = .tumble(sizeMicroseconds: lengths[0])
        } else {
            guard lengths[1] % lengths[0] == 0 else {
                let span = call.intervals[1].span
                errors.append(source.error(.typeMismatch, "the window size of HOP ('\(SQLInterval(microseconds: lengths[1]))') must be a multiple of its hop ('\(SQLInterval(microseconds: lengths[0]))'): each row is then in size/hop windows", from: span.start, to: span.end))
                return nil
            }
            kind = .hop(hopMicroseconds: lengths[0], sizeMicroseconds: lengths[1])
        }
        for added in ["window_start", "window_end"] where relation.columnIndex(named: added) != nil {
            errors.append(source.error(.duplicateName, "\(function) adds the column \(added), which '\(call.relation.name)' already has; rename that column in a view below", from: call.name.start, to: call.name.end))
            return nil
        }
        let columnType = SQLType(timeType)
        let window = View.TimeWindow(
            kind: kind, timeColumn: timeColumn, timeColumnName: relation.columns[timeColumn].name, offsetMicroseconds: offset,
            windowStartColumn: relation.columns.count, location: "\(source.file):\(source.location(call.name.start))")
        var input = relation
        input.qualifier = alias?.name ?? call.relation.name
        input.columns += [Column(name: "window_start", type: columnType), Column(name: "window_end", type: columnType)]
        input.canonicalText += "; window \(window)"
        input.window = window
        input.offset = call.name.start
        return input
    }

    /// `EMIT ON WINDOW CLOSE` of an aggregating view: it must group by `window_start` or `window_end` of a
    /// window whose time column has a watermark.
    private mutating func bindWindowClose(_ emit: (start: Int, end: Int), input: BoundInput, groupBy: [Int]) -> View.WindowClose? {
        guard let window = input.window else {
            errors.append(source.error(.unsupported, "EMIT ON WINDOW CLOSE needs windows: read FROM TUMBLE(...) or HOP(...) and GROUP BY window_start or window_end", from: emit.start, to: emit.end))
            return nil
        }
        guard let position = groupBy.firstIndex(where: { $0 == window.windowStartColumn || $0 == window.windowStartColumn + 1 }) else {
            errors.append(source.error(.grouping, "EMIT ON WINDOW CLOSE needs GROUP BY window_start or window_end: a group is emitted when its window closes", from: emit.start, to: emit.end))
            return nil
        }
        guard input.watermarkedColumn == window.timeColumn else {
            let message: String
            if case .source(let name) = input.input {
                message = "EMIT ON WINDOW CLOSE needs a watermark on '\(window.timeColumnName)' to know when a window closes: declare WATERMARK FOR \(window.timeColumnName) AS \(window.timeColumnName) - INTERVAL '5 seconds' in source '\(name)'"
            } else {
                message = "EMIT ON WINDOW CLOSE needs a watermark on '\(window.timeColumnName)', and the columns of a view carry none yet: window the source, which declares the WATERMARK"
            }
            errors.append(source.error(.unsupported, message, from: emit.start, to: emit.end))
            return nil
        }
        let endOffset = groupBy[position] == window.windowStartColumn ? window.sizeMicroseconds : 0
        return View.WindowClose(windowKey: position, endOffsetMicroseconds: endOffset, location: "\(source.file):\(source.location(emit.start))")
    }

    private func construct(_ kind: View.Construct.Kind, at offset: Int) -> View.Construct {
        View.Construct(kind: kind, location: "\(source.file):\(source.location(offset))")
    }

    /// Binds a view's query over `input` and appends the view; nil (with errors) when it does not bind.
    private mutating func bindSelect(
        _ query: SelectStatement, asView name: String, input: BoundInput, definitionText: String, isDerivedTable: Bool,
        emitOnWindowClose: (start: Int, end: Int)? = nil
    ) -> View? {
        let errorCount = errors.count
        var constructs: [View.Construct] = []
        if case .view = input.input { constructs.append(construct(.viewInput, at: input.offset)) }

        // WHERE, over the input's rows: its temporal conditions apart, the rest one filter.
        var filter: BoundExpression?
        var temporalFilter: [View.TemporalBound] = []
        if let expression = query.filter {
            var rest: [Expression] = []
            var binder = ExpressionBinder(source: source, scope: .row(columns: input.columns, relation: input.qualifier), clause: "WHERE")
            for conjunct in Self.conjuncts(of: expression) {
                if Self.isTemporalCondition(conjunct) {
                    if let bound = bindTemporalBound(conjunct, timeBinder: &binder) { temporalFilter.append(bound) }
                } else {
                    rest.append(conjunct)
                }
            }
            for conjunct in rest {
                guard let bound = binder.bindCondition(conjunct) else { continue }
                filter = filter.map { .binary(.and, $0, bound) } ?? bound
            }
            errors += binder.errors
        }

        if query.groupBy.isEmpty && !(query.items.contains { $0.expression.map(Self.callsAggregate) ?? false } || query.having.map(Self.callsAggregate) ?? false) {
            if let emit = emitOnWindowClose {
                errors.append(source.error(.grouping, "EMIT ON WINDOW CLOSE needs an aggregating view with GROUP BY window_start or window_end", from: emit.start, to: emit.end))
            }
            return bindRowView(query, asView: name, input: input, filter: filter, temporalFilter: temporalFilter, constructs: constructs, definitionText: definitionText, isDerivedTable: isDerivedTable, errorCount: errorCount)
        }

        // GROUP BY: input columns, or select-list ordinals and aliases that name one.
        var groupBy: [Int] = []
        for expression in query.groupBy {
            guard let index = groupByColumn(expression, query: query, input: input) else { continue }
            if groupBy.contains(index) {
                warnings.append(source.error(.duplicateName, "column '\(input.columns[index].name)' appears twice in GROUP BY", from: expression.span.start, to: expression.span.end, severity: .warning))
                continue
            }
            groupBy.append(index)
        }
        // Without its grouping, every select item would be reported as ungrouped: bind the select list and
        // HAVING as if every column were grouped, so that only errors of their own (an unknown column written
        // there first, a type error) are added, then stop.
        guard errors.count == errorCount else {
            var everyColumnGrouped = ExpressionBinder(
                source: source, scope: .grouped(columns: input.columns, relation: input.qualifier, groupBy: Array(input.columns.indices)),
                clause: "the select list")
            for item in query.items { if let expression = item.expression { _ = everyColumnGrouped.bind(expression) } }
            if let expression = query.having { _ = everyColumnGrouped.bindCondition(expression) }
            errors += everyColumnGrouped.errors
            keepFirstOccurrenceOfUnknownNames(since: errorCount)
            return nil
        }

        // The select list and HAVING, over groups.
        var binder = ExpressionBinder(
            source: source, scope: .grouped(columns: input.columns, relation: input.qualifier, groupBy: groupBy), clause: "the select list")
        var outputs: [OutputColumn] = []
        var outputNames: [String: Int] = [:]
        for item in query.items {
            guard let expression = item.expression else {
                // `*` in a grouped view: every input column, each of which must be grouped.
                for column in input.columns {
                    let reference = Expression.column(qualifier: nil, name: Identifier(name: column.name, isQuoted: true, start: item.start, end: item.end))
                    if let (bound, type) = binder.bind(reference) {
                        addOutput(OutputColumn(name: column.name, type: type, expression: bound), at: (item.start, item.end), &outputs, &outputNames)
                    }
                }
                continue
            }
            guard let (bound, type) = binder.bind(expression) else { continue }
            let outputName = item.alias?.name ?? Self.outputName(of: expression)
            let span = item.alias.map { ($0.start, $0.end) } ?? expression.span
            addOutput(OutputColumn(name: outputName, type: type == .unknown ? .text : type, expression: bound), at: span, &outputs, &outputNames)
        }
        var having: BoundExpression?
        var temporalHaving: [View.TemporalBound] = []
        if let expression = query.having {
            var havingBinder = ExpressionBinder(
                source: source, scope: .grouped(columns: input.columns, relation: input.qualifier, groupBy: groupBy), clause: "HAVING",
                aggregates: binder.aggregates)
            for conjunct in Self.conjuncts(of: expression) {
                if Self.isTemporalCondition(conjunct) {
                    if let bound = bindTemporalBound(conjunct, timeBinder: &havingBinder) { temporalHaving.append(bound) }
                } else if let bound = havingBinder.bindCondition(conjunct) {
                    having = having.map { .binary(.and, $0, bound) } ?? bound
                }
            }
            if let emit = emitOnWindowClose, !temporalHaving.isEmpty {
                errors.append(source.error(.unsupported, "a temporal filter in HAVING cannot be combined with EMIT ON WINDOW CLOSE (a closed window's row is final); filter the rows in WHERE", from: emit.start, to: emit.end))
            }
            errors += havingBinder.errors
            binder.aggregates = havingBinder.aggregates
            binder.aggregateFilterOffsets += havingBinder.aggregateFilterOffsets
        }
        errors += binder.errors
        let aggregates = binder.aggregates
        constructs += binder.aggregateFilterOffsets.sorted().map { construct(.aggregateFilter, at: $0) }

        checkViewTail(query)
        let windowClose = emitOnWindowClose.flatMap { bindWindowClose($0, input: input, groupBy: groupBy) }
        guard errors.count == errorCount else {
            keepFirstOccurrenceOfUnknownNames(since: errorCount)
            return nil
        }

        let groupByNames = groupBy.map { input.columns[$0].name }
        var canonical = input.canonicalText
        let used = Set(groupBy + aggregates.compactMap(\.argument) + (filter.map(Self.columnsUsed) ?? []) + aggregates.compactMap(\.filter).flatMap(Self.columnsUsed)
            + temporalFilter.flatMap { Self.columnsUsed($0.time) })
        canonical += "; columns " + used.sorted().map { "\(BoundExpression.quoteIfNeeded(input.columns[$0].name)) \(input.columns[$0].type)" }.joined(separator: ", ")
        if let filter { canonical += "; where \(filter)" }
        for bound in temporalFilter { canonical += "; temporal filter \(bound)" }
        canonical += "; group by " + groupByNames.map(BoundExpression.quoteIfNeeded).joined(separator: ", ")
        canonical += "; aggregates " + aggregates.map(\.description).joined(separator: ", ")
        if windowClose != nil { canonical += "; emit on window close" }
        guard !temporalHaving.isEmpty else {
            let view = View(
                name: name, input: input.input, window: input.window, emitOnWindowClose: windowClose, sourceName: input.rootSource.name,
                isDerivedTable: isDerivedTable, isAggregating: true, constructs: constructs, outputColumns: outputs, groupBy: groupBy,
                groupByNames: groupByNames, aggregates: aggregates, filter: filter, temporalFilter: temporalFilter, having: having, definitionText: definitionText,
                canonicalText: canonical)
            views.append(view)
            return view
        }
        // A temporal filter in HAVING: the aggregate runs as a view of its own (`name.having`) whose rows carry each
        // bound's time as a hidden column, and the view is its rows filtered by the clock on those columns.
        let hidden = temporalHaving.indices.map { OutputColumn(name: "\(Self.hiddenTimePrefix)\($0 + 1)", type: .timestamptz, expression: temporalHaving[$0].time) }
        let aggregate = View(
            name: name + ".having", input: input.input, window: input.window, sourceName: input.rootSource.name, isDerivedTable: true, isAggregating: true,
            constructs: constructs, outputColumns: outputs + hidden, groupBy: groupBy, groupByNames: groupByNames, aggregates: aggregates, filter: filter,
            temporalFilter: temporalFilter, having: having, definitionText: definitionText, canonicalText: canonical)
        views.append(aggregate)
        let bounds = temporalHaving.enumerated().map { index, bound in
            var bound = bound
            bound.time = .column(outputs.count + index, name: hidden[index].name)
            return bound
        }
        var outerCanonical = "view \(BoundExpression.quoteIfNeeded(aggregate.name)) (\(canonical)); hidden " + hidden.map { "\($0.expression)" }.joined(separator: ", ")
        for bound in bounds { outerCanonical += "; temporal filter \(bound)" }
        let view = View(
            name: name, input: .view(aggregate.name), sourceName: input.rootSource.name, isDerivedTable: isDerivedTable, isAggregating: false,
            constructs: constructs + [construct(.viewInput, at: input.offset)],
            outputColumns: outputs.enumerated().map { OutputColumn(name: $1.name, type: $1.type, expression: .column($0, name: $1.name)) },
            groupBy: [], groupByNames: [], aggregates: [], filter: nil, temporalFilter: bounds, having: nil, definitionText: definitionText,
            canonicalText: outerCanonical)
        views.append(view)
        return view
    }

    /// The hidden columns of a `HAVING` temporal filter's aggregate: `now()`'s bounds on them.
    static let hiddenTimePrefix = "_eddy_having_time_"

    /// A view that does not aggregate: every input row that passes `WHERE`, projected.
    private mutating func bindRowView(
        _ query: SelectStatement, asView name: String, input: BoundInput, filter: BoundExpression?, temporalFilter: [View.TemporalBound], constructs: [View.Construct],
        definitionText: String, isDerivedTable: Bool, errorCount: Int
    ) -> View? {
        var binder = ExpressionBinder(source: source, scope: .row(columns: input.columns, relation: input.qualifier), clause: "the select list")
        var outputs: [OutputColumn] = []
        var outputNames: [String: Int] = [:]
        for item in query.items {
            guard let expression = item.expression else {
                for (index, column) in input.columns.enumerated() {
                    addOutput(OutputColumn(name: column.name, type: ValueType(column.type), expression: .column(index, name: column.name)), at: (item.start, item.end), &outputs, &outputNames)
                }
                continue
            }
            guard let (bound, type) = binder.bind(expression) else { continue }
            let outputName = item.alias?.name ?? Self.outputName(of: expression)
            let span = item.alias.map { ($0.start, $0.end) } ?? expression.span
            addOutput(OutputColumn(name: outputName, type: type == .unknown ? .text : type, expression: bound), at: span, &outputs, &outputNames)
        }
        errors += binder.errors
        checkViewTail(query)
        guard errors.count == errorCount else {
            keepFirstOccurrenceOfUnknownNames(since: errorCount)
            return nil
        }
        var canonical = input.canonicalText
        let used = Set((filter.map(Self.columnsUsed) ?? []) + outputs.flatMap { Self.columnsUsed($0.expression) } + temporalFilter.flatMap { Self.columnsUsed($0.time) })
        canonical += "; columns " + used.sorted().map { "\(BoundExpression.quoteIfNeeded(input.columns[$0].name)) \(input.columns[$0].type)" }.joined(separator: ", ")
        if let filter { canonical += "; where \(filter)" }
        for bound in temporalFilter { canonical += "; temporal filter \(bound)" }
        canonical += "; rows " + outputs.map { "\($0.expression) AS \(BoundExpression.quoteIfNeeded($0.name))" }.joined(separator: ", ")
        let view = View(
            name: name, input: input.input, window: input.window, sourceName: input.rootSource.name, isDerivedTable: isDerivedTable, isAggregating: false,
            constructs: constructs + [construct(.rowsWithoutAggregation, at: query.start)], outputColumns: outputs, groupBy: [], groupByNames: [],
            aggregates: [], filter: filter, temporalFilter: temporalFilter, having: nil, definitionText: definitionText, canonicalText: canonical)
        views.append(view)
        return view
    }

    /// LIMIT and ORDER BY, which a view cannot keep.
    private mutating func checkViewTail(_ query: SelectStatement) {
        if let limit = query.limit {
            errors.append(source.error(.unsupported, "LIMIT in a materialized view (a streaming top-N) is not supported; use LIMIT in a query over the view", from: limit.start, to: limit.end))
        }
        if let first = query.orderBy.first {
            warnings.append(source.error(.unsupported, "ORDER BY in a materialized view has no effect (views are unordered); order in a query over the view", from: first.expression.span.start, to: first.expression.span.end, severity: .warning))
        }
    }

    /// One error per unknown name in a statement, at its first occurrence in the text (as PostgreSQL and
    /// RisingWave report it), however many clauses repeat the name: clauses are bound out of text order
    /// (WHERE and GROUP BY before the select list), and the same mistake reported three times is noise.
    private mutating func keepFirstOccurrenceOfUnknownNames(since start: Int) {
        var firstByMessage: [String: SQLError] = [:]
        for error in errors[start...] where error.code == .unknownName {
            if let first = firstByMessage[error.message], first.range.start <= error.range.start { continue }
            firstByMessage[error.message] = error
        }
        let statementErrors = errors[start...].filter { error in
            error.code != .unknownName || firstByMessage[error.message].map { $0.range.start == error.range.start } ?? true
        }
        errors.replaceSubrange(start..., with: statementErrors)
    }

    private mutating func addOutput(_ column: OutputColumn, at span: (Int, Int), _ outputs: inout [OutputColumn], _ names: inout [String: Int]) {
        if let first = names[column.name] {
            errors.append(source.error(.duplicateName, "column '\(column.name)' specified more than once in the view (first at \(source.location(first))); name one with AS", from: span.0, to: span.1))
            return
        }
        names[column.name] = span.0
        outputs.append(column)
    }

    // MARK: Temporal filters

    /// The conditions of an expression joined by AND.
    private static func conjuncts(of expression: Expression) -> [Expression] {
        if case .binary(.and, let left, let right, _, _) = expression { return conjuncts(of: left) + conjuncts(of: right) }
        return [expression]
    }

    /// Whether a condition is a comparison with `now()` on one side (how RisingWave recognises a temporal filter).
    private static func isTemporalCondition(_ expression: Expression) -> Bool {
        guard case .binary(let op, let left, let right, _, _) = expression, op.isComparison else { return false }
        return isNowTerm(left) != isNowTerm(right)
    }

    /// `now()`, `now() ± interval` or `interval + now()`: the side of a temporal filter that reads the clock.
    private static func isNowTerm(_ expression: Expression) -> Bool {
        switch expression {
        case .call(let name, let arguments, false, nil, _, _): name.name == "now" && arguments.isEmpty
        case .binary(.add, let left, let right, _, _): isNowTerm(left) || isNowTerm(right)
        case .binary(.subtract, let left, _, _, _): isNowTerm(left)
        default: false
        }
    }

    /// Binds `time op now() [± interval]` (either way round); nil with an error when the condition is not one Eddy
    /// can run as the clock advances.
    /// The time side is bound by `binder` (whose errors the caller collects): over the input's rows in `WHERE`, over
    /// groups in `HAVING`.
    private mutating func bindTemporalBound(_ condition: Expression, timeBinder binder: inout ExpressionBinder) -> View.TemporalBound? {
        guard case .binary(let op, let left, let right, let operatorStart, let operatorEnd) = condition else { return nil }
        let nowOnRight = Self.isNowTerm(right)
        let (timeSide, nowSide) = nowOnRight ? (left, right) : (right, left)
        let example = "e.g. WHERE ts > now() - INTERVAL '1 hour'"
        guard let written = View.TemporalBound.Comparison(rawValue: op.rawValue) else {
            errors.append(source.error(.unsupported, "a temporal filter compares a time with now() by <, <=, > or >=, not \(op.rawValue): rows enter or leave the view as the clock passes a bound (\(example))", from: operatorStart, to: operatorEnd))
            return nil
        }
        guard let (time, timeType) = binder.bind(timeSide) else { return nil }
        guard timeType.isTimestamp else {
            errors.append(source.error(.typeMismatch, "a temporal filter compares now() with a TIMESTAMP or TIMESTAMPTZ, and this is \(timeType) (\(example))", from: timeSide.span.start, to: timeSide.span.end))
            return nil
        }
        guard let offset = nowOffset(nowSide) else { return nil }
        return View.TemporalBound(
            time: time, comparison: nowOnRight ? written : written.flipped, offsetMicroseconds: offset,
            location: "\(source.file):\(source.location(condition.span.start))")
    }

    /// What a `now()` term adds to the clock, in microseconds; nil with an error when it is not a constant interval
    /// of fixed length.
    private mutating func nowOffset(_ term: Expression) -> Int64? {
        switch term {
        case .call: return 0
        case .binary(let op, let left, let right, _, _):
            let nowFirst = Self.isNowTerm(left)
            let intervalSide = nowFirst ? right : left
            guard nowFirst || op == .add, let base = nowOffset(nowFirst ? left : right) else {
                if !nowFirst { errors.append(source.error(.unsupported, "a temporal filter subtracts an interval from now(), not now() from something", from: term.span.start, to: term.span.end)) }
                return nil
            }
            var binder = ExpressionBinder(source: source, scope: .row(columns: [], relation: ""), clause: "WHERE")
            let bound = binder.bind(intervalSide)
            let span = intervalSide.span
            guard binder.errors.isEmpty, case (.literal(.string(let text)), .interval)? = bound, case .success(let interval) = SQLInterval.parse(text) else {
                errors.append(source.error(.typeMismatch, "a temporal filter adds to now() or subtracts from it a constant INTERVAL, e.g. now() - INTERVAL '1 hour'", from: span.start, to: span.end))
                return nil
            }
            guard let length = interval.fixedMicroseconds else {
                errors.append(source.error(.unsupported, "a temporal filter's interval cannot count months or years ('\(interval)'): they differ in length; use days", from: span.start, to: span.end))
                return nil
            }
            return op == .add ? base &+ length : base &- length
        default:
            return nil
        }
    }

    /// Whether an expression calls an aggregate function anywhere (a FILTER makes a call an aggregate too).
    private static func callsAggregate(_ expression: Expression) -> Bool {
        switch expression {
        case .literal, .typedLiteral, .column, .star: false
        case .call(let name, let arguments, _, let filter, _, _):
            ExpressionBinder.aggregateNames.contains(name.name) || filter != nil || arguments.contains(where: callsAggregate)
        case .unary(_, let operand, _, _), .isNull(let operand, _, _, _): callsAggregate(operand)
        case .binary(_, let left, let right, _, _), .like(let left, let right, _, _, _, _): callsAggregate(left) || callsAggregate(right)
        case .inList(let operand, let items, _, _, _): callsAggregate(operand) || items.contains(where: callsAggregate)
        case .between(let operand, let low, let high, _, _, _): callsAggregate(operand) || callsAggregate(low) || callsAggregate(high)
        case .caseWhen(let operand, let branches, let otherwise, _, _):
            (operand.map(callsAggregate) ?? false) || branches.contains { callsAggregate($0.condition) || callsAggregate($0.result) }
                || (otherwise.map(callsAggregate) ?? false)
        case .element(let base, let index, _, _): callsAggregate(base) || callsAggregate(index)
        case .field, .arrow, .cast: expression.children.contains(where: callsAggregate)
        }
    }

    /// PostgreSQL's output name: the column's name, the function's name, `case` for CASE, else `?column?`.
    static func outputName(of expression: Expression) -> String {
        switch expression {
        case .column(_, let name): name.name
        case .call(let name, _, _, _, _, _): name.name
        case .caseWhen: "case"
        case .typedLiteral(let type, _, _, _, _): type == .timestamptz ? "timestamptz" : type.rawValue.lowercased()
        case .element(let base, _, _, _): outputName(of: base)
        case .field(_, let name, _): name.name
        case .arrow(_, .literal(.string(let key), _, _), _, _, _): key
        case .cast(let inner, _, _, _, _, _): outputName(of: inner)
        default: "?column?"
        }
    }

    private static func columnsUsed(_ expression: BoundExpression) -> [Int] {
        if case .column(let index, _) = expression { return [index] }
        return expression.children.flatMap(columnsUsed)
    }

    private mutating func groupByColumn(_ expression: Expression, query: SelectStatement, input: BoundInput) -> Int? {
        switch expression {
        case .column(let qualifier, let name):
            if let qualifier, qualifier.name != input.qualifier {
                errors.append(source.error(.unknownName, "missing FROM-clause entry for '\(qualifier.name)': the view reads '\(input.qualifier)'", from: qualifier.start, to: qualifier.end))
                return nil
            }
            if let index = input.columnIndex(named: name.name) { return index }
            // An output alias that names a plain column (PostgreSQL allows GROUP BY alias).
            for item in query.items where item.alias?.name == name.name {
                if case .column(_, let aliased)? = item.expression, let index = input.columnIndex(named: aliased.name) { return index }
            }
            errors.append(source.error(
                .unknownName, ExpressionBinder.unknownColumnMessage(name.name, in: input.qualifier, candidates: input.columns.map(\.name)),
                from: name.start, to: name.end))
            return nil
        case .literal(.integer(let ordinal), let start, let end):
            guard ordinal >= 1, ordinal <= query.items.count else {
                errors.append(source.error(.unknownName, "GROUP BY position \(ordinal) is not in the select list (1...\(query.items.count))", from: start, to: end))
                return nil
            }
            if case .column(_, let name)? = query.items[Int(ordinal) - 1].expression, let index = input.columnIndex(named: name.name) { return index }
            errors.append(source.error(.unsupported, "GROUP BY position \(ordinal) must refer to a plain column of '\(input.qualifier)'", from: start, to: end))
            return nil
        case .field, .arrow, .cast:
            if let parsed = JSONPathSyntax.parse(expression), let index = input.columnIndex(named: parsed.columnName) {
                if let qualifier = parsed.qualifier, qualifier.name != input.qualifier {
                    errors.append(source.error(.unknownName, "missing FROM-clause entry for '\(qualifier.name)': the view reads '\(input.qualifier)'", from: qualifier.start, to: qualifier.end))
                    return nil
                }
                return index
            }
            // Not a path column: the binder explains why (unknown field, not a STRUCT or JSONB, ...).
            var binder = ExpressionBinder(source: source, scope: .row(columns: input.columns, relation: input.qualifier), clause: "GROUP BY")
            _ = binder.bind(expression)
            errors += binder.errors
            if binder.errors.isEmpty {
                errors.append(source.error(.unsupported, "GROUP BY a cast is not supported yet; group by the path itself, or cast in a view below this one", from: expression.span.start, to: expression.span.end))
            }
            return nil
        default:
            errors.append(source.error(.unsupported, "GROUP BY an expression is not supported yet; group by columns of the input (compute the expression in a view below this one)", from: expression.span.start, to: expression.span.end))
            return nil
        }
    }

    private func unknownRelationMessage(_ name: String, expected: String) -> String {
        var message: String
        if let kind = definitionKind(name) {
            message = "\(kind) '\(name)' cannot be used here: expected a \(expected)"
        } else {
            message = "\(expected) '\(name)' does not exist"
            let namedViews = views.filter { !$0.isDerivedTable }.map(\.name)
            let candidates = expected == "materialized view" ? namedViews : sources.map(\.name) + namedViews
            if let close = closestName(name, candidates) {
                message += "; did you mean '\(close)'?"
            } else if candidates.isEmpty {
                message += " (define it earlier in the file)"
            } else {
                message += " (defined so far: \(candidates.joined(separator: ", ")))"
            }
        }
        return message
    }

    // MARK: Sinks

    private mutating func bindSink(_ create: CreateSink) {
        if let existing = sinkDefinitions[create.name.name] {
            let location = source.location(existing)
            if create.ifNotExists {
                warnings.append(source.error(.duplicateName, "sink '\(create.name.name)' already exists (line \(location.line)); this one is skipped (IF NOT EXISTS)", from: create.name.start, to: create.name.end, severity: .warning))
            } else {
                errors.append(source.error(.duplicateName, "sink '\(create.name.name)' already exists (defined at \(location))", from: create.name.start, to: create.name.end))
            }
            return
        }
        sinkDefinitions[create.name.name] = create.name.start
        guard let view = views.first(where: { $0.name == create.from.name }) else {
            if failedRelations.contains(create.from.name) { return }
            if sources.contains(where: { $0.name == create.from.name }) {
                errors.append(source.error(.unsupported, "sink '\(create.name.name)' reads source '\(create.from.name)': Eddy sinks materialized views; create a view over the source", from: create.from.start, to: create.from.end))
            } else {
                errors.append(source.error(.unknownName, unknownRelationMessage(create.from.name, expected: "materialized view"), from: create.from.start, to: create.from.end))
            }
            return
        }
        var options = SinkOptionsCompiler(source: source)
        let settings = options.compile(create, view: view)
        errors += options.errors
        warnings += options.warnings
        guard let settings else { return }
        if view.having != nil && !settings.forceAppendOnly {
            warnings.append(source.error(.unsupported, "rows that HAVING removes from view '\(view.name)' are deleted from Redis (upsert); set force_append_only='true' to keep their last value", from: create.name.start, to: create.name.end, severity: .warning))
        }
        sinks.append(Sink(name: create.name.name, viewName: view.name, redis: settings))
    }

    // MARK: Queries

    private mutating func bindQuery(_ select: SelectStatement) {
        if let query = bindQuery(select, views: views) { queries.append(query) }
    }

    /// Binds a `SELECT` over one of `views` (also used by `eddy query`).
    mutating func bindQuery(_ select: SelectStatement, views: [View]) -> Query? {
        guard case .relation(let from, let alias) = select.from else {
            let span = select.from.span
            let what = if case .window(let call, _) = select.from { "\(call.kind.rawValue) in FROM of a query" } else { "a subquery in FROM of a query" }
            errors.append(source.error(.unsupported, "\(what) is not supported; define a materialized view with it and query that", from: span.start, to: span.end))
            return nil
        }
        guard let view = views.first(where: { $0.name == from.name && !$0.isDerivedTable }) else {
            if failedRelations.contains(from.name) { return nil }
            if sources.contains(where: { $0.name == from.name }) {
                errors.append(source.error(.unsupported, "'\(from.name)' is a source: Eddy answers queries over materialized views; create one over the source", from: from.start, to: from.end))
            } else {
                let named = views.filter { !$0.isDerivedTable }.map(\.name)
                var message = "materialized view '\(from.name)' does not exist"
                if let close = closestName(from.name, named) { message += "; did you mean '\(close)'?" }
                else if !named.isEmpty { message += " (views: \(named.joined(separator: ", ")))" }
                errors.append(source.error(.unknownName, message, from: from.start, to: from.end))
            }
            return nil
        }
        let qualifier = alias?.name ?? view.name
        let errorCount = errors.count
        if let first = select.groupBy.first {
            errors.append(source.error(.unsupported, "GROUP BY in a query over a view is not supported; define a materialized view for it", from: first.span.start, to: first.span.end))
        }
        if let having = select.having {
            errors.append(source.error(.unsupported, "HAVING in a query over a view is not supported", from: having.span.start, to: having.span.end))
        }
        var binder = ExpressionBinder(source: source, scope: .view(columns: view.outputColumns, relation: qualifier), clause: "the select list")
        var columns: [OutputColumn] = []
        for item in select.items {
            guard let expression = item.expression else {
                columns += view.outputColumns.indices.map { index in
                    OutputColumn(name: view.outputColumns[index].name, type: view.outputColumns[index].type, expression: .column(index, name: view.outputColumns[index].name))
                }
                continue
            }
            guard let (bound, type) = binder.bind(expression) else { continue }
            columns.append(OutputColumn(name: item.alias?.name ?? Self.outputName(of: expression), type: type, expression: bound))
        }
        var filter: BoundExpression?
        if let expression = select.filter {
            var whereBinder = ExpressionBinder(source: source, scope: .view(columns: view.outputColumns, relation: qualifier), clause: "WHERE")
            filter = whereBinder.bindCondition(expression)
            errors += whereBinder.errors
        }
        var orderBy: [Query.OrderKey] = []
        for item in select.orderBy {
            var bound: BoundExpression?
            if case .literal(.integer(let ordinal), let start, let end) = item.expression {
                if ordinal >= 1 && ordinal <= columns.count {
                    bound = columns[Int(ordinal) - 1].expression
                } else {
                    errors.append(source.error(.unknownName, "ORDER BY position \(ordinal) is not in the select list (1...\(columns.count))", from: start, to: end))
                    continue
                }
            } else if case .column(nil, let name) = item.expression, view.outputColumnIndex(named: name.name) == nil,
                let aliased = columns.first(where: { $0.name == name.name })
            {
                bound = aliased.expression
            } else {
                var orderBinder = ExpressionBinder(source: source, scope: .view(columns: view.outputColumns, relation: qualifier), clause: "ORDER BY")
                bound = orderBinder.bind(item.expression)?.0
                errors += orderBinder.errors
            }
            if let bound {
                orderBy.append(.init(expression: bound, ascending: item.ascending, nullsFirst: item.nullsFirst ?? !item.ascending))
            }
        }
        errors += binder.errors
        guard errors.count == errorCount else { return nil }
        return Query(viewName: view.name, columns: columns, filter: filter, orderBy: orderBy, limit: select.limit?.value, text: text(select.start, select.end))
    }

    /// The statement text between two offsets, whitespace collapsed.
    private func text(_ start: Int, _ end: Int) -> String {
        let raw = String(decoding: source.bytes[start..<min(end, source.bytes.count)], as: UTF8.self)
        return raw.split(whereSeparator: { $0 == " " || $0 == "\n" || $0 == "\t" || $0 == "\r" }).joined(separator: " ")
    }
}
