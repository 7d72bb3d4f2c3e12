/// Resolves names in expressions and checks their types, in one of three scopes.
struct ExpressionBinder {
    enum Scope {
        /// A source row: `WHERE` of a view, aggregate arguments. Names are the source's columns.
        case row(columns: [Column], relation: String)
        /// A view's select list and `HAVING`: names must be grouped columns; aggregates are collected.
        case grouped(columns: [Column], relation: String, groupBy: [Int])
        /// A query over a view: names are the view's output columns.
        case view(columns: [OutputColumn], relation: String)
    }

    let source: SourceText
    let scope: Scope
    /// Where the expression is, for messages ("WHERE", "the select list", …).
    let clause: String
    /// Aggregates collected in the grouped scope, each once.
    var aggregates: [AggregateCall] = []
    /// Byte offsets of the `FILTER` clauses bound, for a runtime that must point at one it cannot run.
    var aggregateFilterOffsets: [Int] = []
    var errors: [SQLError] = []

    init(source: SourceText, scope: Scope, clause: String, aggregates: [AggregateCall] = []) {
        self.source = source
        self.scope = scope
        self.clause = clause
        self.aggregates = aggregates
    }

    struct Failure: Error {}

    private mutating func fail(_ code: SQLError.Code, _ message: String, _ span: (start: Int, end: Int)) -> Failure {
        errors.append(source.error(code, message, from: span.start, to: span.end))
        return Failure()
    }

    /// The bound expression and its type, or nil with errors recorded.
    mutating func bind(_ expression: Expression) -> (BoundExpression, ValueType)? {
        try? bindChecked(expression)
    }

    /// Binds a condition (`WHERE`, `HAVING`): it must be boolean.
    mutating func bindCondition(_ expression: Expression) -> BoundExpression? {
        guard let (bound, type) = bind(expression) else { return nil }
        guard type == .boolean || type == .unknown else {
            errors.append(source.error(.typeMismatch, "argument of \(clause) must be boolean, not \(type)", from: expression.span.start, to: expression.span.end))
            return nil
        }
        return bound
    }

    private mutating func bindChecked(_ expression: Expression) throws(Failure) -> (BoundExpression, ValueType) {
        switch expression {
        case .literal(let literal, _, _):
            switch literal {
            case .null: return (.literal(.null), .unknown)
            case .bool(let value): return (.literal(.bool(value)), .boolean)
            case .integer(let value): return (.literal(.int(value)), .integer)
            case .decimal(let value, _): return (.literal(.double(value)), .numeric)
            case .string(let value): return (.literal(.string(value)), .text)
            }

        case .typedLiteral(let type, let text, let qualifier, let start, let end):
            switch type {
            case .interval:
                switch SQLInterval.parse(text, qualifier: qualifier) {
                case .success(let interval): return (.literal(.string(interval.description)), .interval)
                case .failure(let failure):
                    throw fail(.typeMismatch, "invalid input syntax for type interval: '\(text)' (\(failure.reason)); write e.g. INTERVAL '5 minutes', INTERVAL '5' MINUTE, INTERVAL '01:30:00'", (start, end))
                }
            case .timestamp: return (.literal(.string(try canonicalTime(text, as: .timestamp, span: (start, end)))), .timestamp)
            case .timestamptz: return (.literal(.string(try canonicalTime(text, as: .timestamptz, span: (start, end)))), .timestamptz)
            case .date: return (.literal(.string(try canonicalTime(text, as: .date, span: (start, end)))), .date)
            }

        case .column(let qualifier, let name):
            return try bindColumn(qualifier: qualifier, name: name)

        case .field, .arrow:
            return try bindPath(expression)

        case .cast(let inner, let type, let typeStart, let typeEnd, _, _):
            if let parsed = JSONPathSyntax.parse(expression), scopeColumnType(named: parsed.columnName) != nil {
                return try bindPath(expression)
            }
            let (bound, innerType) = try bindChecked(inner)
            let target = ValueType(type)
            let castable =
                innerType == target || innerType == .unknown || innerType == .text || target == .text
                || (innerType.isNumeric && target.isNumeric) || (innerType.isTime && target.isTime)
                || (innerType == .integer && target == .boolean) || (innerType == .boolean && target == .integer)
            guard castable, let function = ScalarFunction.cast(to: target) else {
                throw fail(.typeMismatch, "cannot cast type \(innerType) to \(type)", (typeStart, typeEnd))
            }
            if innerType == target { return (bound, target) }
            return (.function(function, [bound]), target)

        case .star(let start, let end):
            throw fail(.syntax, "'*' is only allowed as the whole select list or in COUNT(*)", (start, end))

        case .call(let name, let arguments, let isDistinct, let filter, let start, let end):
            if Self.aggregateNames.contains(name.name) {
                return try bindCall(name: name, arguments: arguments, isDistinct: isDistinct, filter: filter, span: (start, end))
            }
            if let filter {
                throw fail(.grouping, "FILTER is only allowed on aggregate functions; \(name.name)() is not one", filter.span)
            }
            if name.name == "regexp_match" {
                throw fail(.unsupported, "regexp_match returns text[], which a column cannot hold yet: take an element, e.g. (regexp_match(s, pattern))[1]", (start, end))
            }
            if isDistinct { throw fail(.syntax, "DISTINCT is only allowed in aggregate functions; \(name.name)() is not one", (start, end)) }
            return try bindScalarCall(name: name, arguments: arguments, span: (start, end))

        case .element(let base, let index, let start, let end):
            guard case .call(let name, let arguments, false, nil, _, _) = base, name.name == "regexp_match" else {
                throw fail(.unsupported, "only the result of regexp_match(...) can be subscripted (Eddy has no array columns yet)", base.span)
            }
            guard arguments.count == 2 else {
                throw fail(.syntax, "function regexp_match takes 2 arguments (text, pattern), got \(arguments.count)", base.span)
            }
            let (text, textType) = try bindChecked(arguments[0])
            let (pattern, patternType) = try bindChecked(arguments[1])
            let (position, positionType) = try bindChecked(index)
            for (argument, type) in [(arguments[0], textType), (arguments[1], patternType)] where type != .text && type != .unknown {
                throw fail(.typeMismatch, "function regexp_match(\(textType), \(patternType)) does not exist: regexp_match takes text and a text pattern", argument.span)
            }
            guard positionType == .integer || positionType == .unknown else {
                throw fail(.typeMismatch, "array subscript must be an integer, not \(positionType)", index.span)
            }
            if case .literal(.string(let literal)) = pattern, RegularExpressionCache.shared.expression(literal) == nil {
                throw fail(.typeMismatch, "invalid regular expression '\(literal)' in regexp_match", arguments[1].span)
            }
            _ = (start, end)
            return (.function(.regexpMatchElement, [text, pattern, position]), .text)

        case .caseWhen(let operand, let branches, let otherwise, _, _):
            var boundOperand: (BoundExpression, ValueType)?
            if let operand { boundOperand = try bindChecked(operand) }
            var boundBranches: [BoundExpression.CaseBranch] = []
            var results: [(Expression, ValueType)] = []
            for branch in branches {
                var condition: BoundExpression
                if let (value, valueType) = boundOperand {
                    let (candidate, candidateType) = try bindChecked(branch.condition)
                    let (left, right) = try coerceForComparison(value, valueType, candidate, candidateType, operatorSpan: branch.condition.span, operatorText: "=")
                    condition = .binary(.equal, left, right)
                } else {
                    let (bound, type) = try bindChecked(branch.condition)
                    guard type == .boolean || type == .unknown else {
                        throw fail(.typeMismatch, "argument of CASE/WHEN must be boolean, not \(type)", branch.condition.span)
                    }
                    condition = bound
                }
                let (result, resultType) = try bindChecked(branch.result)
                results.append((branch.result, resultType))
                boundBranches.append(.init(condition: condition, result: result))
            }
            var boundOtherwise: BoundExpression?
            if let otherwise {
                let (bound, type) = try bindChecked(otherwise)
                results.append((otherwise, type))
                boundOtherwise = bound
            }
            return (.caseWhen(boundBranches, otherwise: boundOtherwise), try commonType(results, construct: "CASE"))

        case .unary(let op, let operand, let start, _):
            let (bound, type) = try bindChecked(operand)
            switch op {
            case .not:
                guard type == .boolean || type == .unknown else {
                    throw fail(.typeMismatch, "argument of NOT must be boolean, not \(type)", operand.span)
                }
                return (.unary(.not, bound), .boolean)
            case .minus, .plus:
                if type == .interval, case .literal(.string(let text)) = bound, case .success(let interval) = SQLInterval.parse(text) {
                    return (.literal(.string((op == .minus ? interval.negated : interval).description)), .interval)
                }
                guard type.isNumeric || type == .unknown else {
                    throw fail(.typeMismatch, "operator does not exist: \(op.rawValue) \(type)", (start, start + 1))
                }
                return (op == .minus ? .unary(.negate, bound) : bound, type)
            }

        case .binary(let op, let left, let right, let operatorStart, let operatorEnd):
            let (lhs, leftType) = try bindChecked(left)
            let (rhs, rightType) = try bindChecked(right)
            let span = (operatorStart, operatorEnd)
            switch op {
            case .and, .or:
                for (side, type) in [(left, leftType), (right, rightType)] where type != .boolean && type != .unknown {
                    throw fail(.typeMismatch, "argument of \(op.rawValue) must be boolean, not \(type)", side.span)
                }
                return (.binary(op == .and ? .and : .or, lhs, rhs), .boolean)
            case .concatenate:
                return (.binary(.concatenate, lhs, rhs), .text)
            default:
                if op.isComparison {
                    let (left, right) = try coerceForComparison(lhs, leftType, rhs, rightType, operatorSpan: span, operatorText: op.rawValue)
                    return (.binary(Self.boundOperator(op), left, right), .boolean)
                }
                if leftType.isTime || rightType.isTime || leftType == .interval || rightType == .interval {
                    return try bindTimeArithmetic(op, lhs, leftType, rhs, rightType, span: span)
                }
                guard (leftType.isNumeric || leftType == .unknown) && (rightType.isNumeric || rightType == .unknown) else {
                    throw fail(.typeMismatch, "operator does not exist: \(leftType) \(op.rawValue) \(rightType)", span)
                }
                let type: ValueType = leftType == .integer && rightType == .integer ? .integer
                    : (leftType == .unknown ? rightType : rightType == .unknown ? leftType
                        : (leftType == .double || rightType == .double ? .double : .numeric))
                return (.binary(Self.boundOperator(op), lhs, rhs), type == .unknown ? .integer : type)
            }

        case .isNull(let operand, let negated, _, _):
            let (bound, _) = try bindChecked(operand)
            return (.isNull(bound, negated: negated), .boolean)

        case .inList(let operand, let items, let negated, _, _):
            var (bound, type) = try bindChecked(operand)
            var boundItems: [BoundExpression] = []
            for item in items {
                let (boundItem, itemType) = try bindChecked(item)
                let (left, right) = try coerceForComparison(bound, type, boundItem, itemType, operatorSpan: item.span, operatorText: "IN")
                bound = left
                if type == .unknown { type = itemType }
                boundItems.append(right)
            }
            return (.inList(bound, boundItems, negated: negated), .boolean)

        case .like(let operand, let pattern, let negated, let caseInsensitive, _, _):
            let (bound, type) = try bindChecked(operand)
            let (boundPattern, patternType) = try bindChecked(pattern)
            for (side, sideType) in [(operand, type), (pattern, patternType)] where sideType != .text && sideType != .unknown {
                throw fail(.typeMismatch, "operator does not exist: \(type) \(caseInsensitive ? "ILIKE" : "LIKE") \(patternType) (LIKE compares text)", side.span)
            }
            return (.like(bound, pattern: boundPattern, negated: negated, caseInsensitive: caseInsensitive), .boolean)

        case .between(let operand, let low, let high, let negated, _, _):
            let (bound, type) = try bindChecked(operand)
            let (boundLow, lowType) = try bindChecked(low)
            let (boundHigh, highType) = try bindChecked(high)
            let (a, l) = try coerceForComparison(bound, type, boundLow, lowType, operatorSpan: low.span, operatorText: "BETWEEN")
            let (b, h) = try coerceForComparison(bound, type, boundHigh, highType, operatorSpan: high.span, operatorText: "BETWEEN")
            let inside = BoundExpression.binary(.and, .binary(.greaterOrEqual, a, l), .binary(.lessOrEqual, b, h))
            return (negated ? .unary(.not, inside) : inside, .boolean)
        }
    }

    /// The type of a value that may come from any of `candidates` (CASE results, COALESCE arguments), as
    /// PostgreSQL resolves it: NULLs fit anything, numbers widen, anything else must match exactly.
    private mutating func commonType(_ candidates: [(Expression, ValueType)], construct: String) throws(Failure) -> ValueType {
        var result = ValueType.unknown
        for (expression, type) in candidates where type != .unknown {
            if result == .unknown || result == type {
                result = type
            } else if result.isNumeric && type.isNumeric {
                result = result == .double || type == .double ? .double : .numeric
            } else {
                throw fail(.typeMismatch, "\(construct) types \(result) and \(type) cannot be matched", expression.span)
            }
        }
        return result
    }

    private static func boundOperator(_ op: BinaryOperator) -> BoundExpression.BinaryOperator {
        switch op {
        case .or: .or
        case .and: .and
        case .equal: .equal
        case .notEqual: .notEqual
        case .less: .less
        case .lessOrEqual: .lessOrEqual
        case .greater: .greater
        case .greaterOrEqual: .greaterOrEqual
        case .add: .add
        case .subtract: .subtract
        case .multiply: .multiply
        case .divide: .divide
        case .modulo: .modulo
        case .concatenate: .concatenate
        }
    }

    /// `timestamp ± interval` (a date counts as its midnight) and `interval + timestamp`; what else mixes times
    /// and intervals is refused by name.
    private mutating func bindTimeArithmetic(
        _ op: BinaryOperator, _ lhs: BoundExpression, _ leftType: ValueType, _ rhs: BoundExpression, _ rightType: ValueType, span: (Int, Int)
    ) throws(Failure) -> (BoundExpression, ValueType) {
        func resultType(_ time: ValueType) -> ValueType { time == .timestamptz ? .timestamptz : .timestamp }
        switch (op, leftType, rightType) {
        case (.add, let time, .interval) where time.isTime || time == .unknown:
            return (.function(.timestampPlusInterval, [lhs, rhs]), resultType(time))
        case (.add, .interval, let time) where time.isTime || time == .unknown:
            return (.function(.timestampPlusInterval, [rhs, lhs]), resultType(time))
        case (.subtract, let time, .interval) where time.isTime || time == .unknown:
            return (.function(.timestampMinusInterval, [lhs, rhs]), resultType(time))
        default:
            var message = "operator does not exist: \(leftType) \(op.rawValue) \(rightType)"
            if leftType.isTime && rightType.isTime && op == .subtract {
                message += " (the difference of two times is not supported yet; compare with ts - INTERVAL '...' instead)"
            } else if leftType == .interval || rightType == .interval {
                message += " (Eddy adds an interval to or subtracts it from a time: ts + INTERVAL '5 minutes')"
            } else {
                message += " (add or subtract an INTERVAL: ts + INTERVAL '5 minutes')"
            }
            throw fail(.typeMismatch, message, span)
        }
    }

    /// Checks that two sides can be compared; a string literal compared with a time is brought to the
    /// time's canonical text (so that `ts >= '2026-01-01'` compares as times; a TIMESTAMPTZ literal's offset
    /// is brought to UTC).
    private mutating func coerceForComparison(
        _ lhs: BoundExpression, _ leftType: ValueType, _ rhs: BoundExpression, _ rightType: ValueType,
        operatorSpan: (Int, Int), operatorText: String
    ) throws(Failure) -> (BoundExpression, BoundExpression) {
        if leftType == .interval || rightType == .interval {
            throw fail(.unsupported, "comparing intervals is not supported yet: compare times, e.g. ts > other_ts + INTERVAL '5 minutes'", operatorSpan)
        }
        if leftType == .unknown || rightType == .unknown { return (lhs, rhs) }
        if leftType.isNumeric && rightType.isNumeric { return (lhs, rhs) }
        if leftType == rightType { return (lhs, rhs) }
        if leftType.isTime, rightType == .text, case .literal(.string(let text)) = rhs {
            return (lhs, .literal(.string(try canonicalTime(text, as: leftType, span: operatorSpan))))
        }
        if rightType.isTime, leftType == .text, case .literal(.string(let text)) = lhs {
            return (.literal(.string(try canonicalTime(text, as: rightType, span: operatorSpan))), rhs)
        }
        // Times of every kind carry UTC canonical text, which orders as the times do.
        if leftType.isTime && rightType.isTime { return (lhs, rhs) }
        throw fail(.typeMismatch, "operator does not exist: \(leftType) \(operatorText) \(rightType)", operatorSpan)
    }

    private mutating func canonicalTime(_ text: String, as type: ValueType, span: (Int, Int)) throws(Failure) -> String {
        guard let canonical = CanonicalTime.parse(text, dateOnly: type == .date, zone: type == .timestamptz ? .toUTC : .ignored) else {
            let expected = switch type {
            case .date: "YYYY-MM-DD"
            case .timestamptz: "YYYY-MM-DD HH:MM:SS[.ffffff][+hh[:mm]|Z]"
            default: "YYYY-MM-DD HH:MM:SS[.ffffff]"
            }
            throw fail(.typeMismatch, "invalid input syntax for type \(type): '\(text)' (expected \(expected))", span)
        }
        return canonical
    }

    // MARK: Names

    /// The declared type of a column of the scope (nil for a view's columns, which carry value types).
    private func scopeColumnType(named name: String) -> SQLType?? {
        switch scope {
        case .row(let columns, _), .grouped(let columns, _, _):
            return columns.first { $0.name == name }.map { .some($0.type) }
        case .view(let columns, _):
            return columns.contains { $0.name == name } ? .some(nil) : nil
        }
    }

    /// The names of the scope's columns.
    private var scopeColumnNames: [String] {
        switch scope {
        case .row(let columns, _), .grouped(let columns, _, _): columns.map(\.name)
        case .view(let columns, _): columns.map(\.name)
        }
    }

    /// `(column).field…` and `column->key…`: the column the source decodes for the path, or why there is none.
    private mutating func bindPath(_ expression: Expression) throws(Failure) -> (BoundExpression, ValueType) {
        let span = expression.span
        guard let parsed = JSONPathSyntax.parse(expression) else {
            var current = expression
            while true {
                switch current {
                case .field(let base, _, _): current = base
                case .arrow(let base, let key, let asText, let start, let end):
                    switch key {
                    case .literal(.string, _, _): break
                    case .literal(.integer(let index), _, _) where index >= 0: break
                    default:
                        throw fail(.unsupported, "the key of \(asText ? "->>" : "->") must be a string literal (a field) or a non-negative integer literal (an element)", key.span)
                    }
                    if asText, current.span.end != span.end || { if case .arrow = expression { false } else { true } }() {
                        throw fail(.typeMismatch, "operator does not exist: text -> ...: ->> gives text; read further with -> before the last step", (start, end))
                    }
                    current = base
                case .column:
                    throw fail(.unsupported, "-> and ->> read into a source's JSONB column; this path mixes them with STRUCT fields", span)
                default:
                    if case .field = expression {
                        throw fail(.unsupported, "(expression).field reads a field of a STRUCT column of the source; here it is applied to \(current.span.end - current.span.start > 0 ? "an expression" : "nothing")", current.span)
                    }
                    throw fail(.unsupported, "-> and ->> read a JSONB column of the source (column->'key'); they are not run on other expressions yet", current.span)
                }
            }
        }
        let rootSpan = (parsed.qualifier?.start ?? parsed.root.start, parsed.root.end)
        if scopeColumnType(named: parsed.columnName) != nil {
            return try bindColumn(qualifier: parsed.qualifier, name: Identifier(name: parsed.columnName, isQuoted: true, start: span.start, end: span.end))
        }
        let rootType = scopeColumnType(named: parsed.root.name)
        if parsed.isStruct {
            let prefix = "(" + BoundExpression.quoteIfNeeded(parsed.root.name) + ")."
            let fields = scopeColumnNames.filter { $0.hasPrefix(prefix) }
            if !fields.isEmpty {
                throw fail(.unknownName, "STRUCT '\(parsed.root.name)' has no field \(parsed.columnName.dropFirst(prefix.count)); its fields: \(fields.map { String($0.dropFirst(prefix.count)) }.joined(separator: ", "))", span)
            }
            if let rootType {
                throw fail(.typeMismatch, "column '\(parsed.root.name)' is \(rootType.map(\.description) ?? "a view's column"), not a STRUCT: (\(parsed.root.name)).field reads STRUCT columns", rootSpan)
            }
        } else if let rootType {
            guard rootType == .jsonb else {
                throw fail(.typeMismatch, "operator does not exist: \(rootType.map(\.description) ?? "a view's column") \(parsed.asText ? "->>" : "->") ...: '\(parsed.root.name)' is not JSONB (declare it JSONB in the source)", rootSpan)
            }
            throw fail(.unsupported, "-> and ->> read a source's JSONB column; '\(parsed.root.name)' here is not read from a source", span)
        }
        return try bindColumn(qualifier: parsed.qualifier, name: parsed.root)
    }

    private mutating func bindColumn(qualifier: Identifier?, name: Identifier) throws(Failure) -> (BoundExpression, ValueType) {
        let relation: String
        switch scope {
        case .row(_, let name), .grouped(_, let name, _), .view(_, let name): relation = name
        }
        if let qualifier, qualifier.name != relation {
            throw fail(.unknownName, "missing FROM-clause entry for '\(qualifier.name)': the query reads '\(relation)'", (qualifier.start, qualifier.end))
        }
        let span = (qualifier?.start ?? name.start, name.end)
        switch scope {
        case .row(let columns, _):
            guard let index = columns.firstIndex(where: { $0.name == name.name }) else {
                throw fail(.unknownName, Self.unknownColumnMessage(name.name, in: relation, candidates: columns.map(\.name)), span)
            }
            return (.column(index, name: name.name), ValueType(columns[index].type))
        case .grouped(let columns, _, let groupBy):
            guard let index = columns.firstIndex(where: { $0.name == name.name }) else {
                throw fail(.unknownName, Self.unknownColumnMessage(name.name, in: relation, candidates: columns.map(\.name)), span)
            }
            guard let position = groupBy.firstIndex(of: index) else {
                throw fail(.grouping, "column '\(name.name)' must appear in the GROUP BY clause or be used in an aggregate function", span)
            }
            return (.groupKey(position, name: name.name), ValueType(columns[index].type))
        case .view(let columns, _):
            guard let index = columns.firstIndex(where: { $0.name == name.name }) else {
                throw fail(.unknownName, Self.unknownColumnMessage(name.name, in: relation, candidates: columns.map(\.name)), span)
            }
            return (.column(index, name: name.name), columns[index].type)
        }
    }

    /// "column 'x' does not exist in 'r'", with the closest name as a hint; one wording for every clause, so
    /// that the binder can tell two reports of one unknown column apart from two different ones.
    static func unknownColumnMessage(_ name: String, in relation: String, candidates: [String]) -> String {
        var message = "column '\(name)' does not exist in '\(relation)'"
        if let close = candidates.first(where: { $0.lowercased() == name.lowercased() }) {
            message += "; did you mean \"\(close)\"? (quoted names keep their case)"
        } else if let close = closestName(name, candidates) {
            message += "; did you mean '\(close)'?"
        }
        return message + " (columns: \(candidates.joined(separator: ", ")))"
    }

    // MARK: Calls

    /// Aggregates Eddy has and those it knows by name but has not (so that both are bound as aggregates).
    static let aggregateNames = Set(AggregateCall.Function.allCases.map(\.rawValue)).union([
        "string_agg", "array_agg", "stddev", "variance", "bool_and", "bool_or", "every", "count_if", "approx_count_distinct",
    ])

    /// The scalar functions by the names a query may call them, with the argument types each takes
    /// (`nil` for any type) and its result type.
    private static let scalarFunctions: [String: (function: ScalarFunction, arguments: [[ValueType?]], result: ValueType?)] = [
        "lower": (.lower, [[.text]], .text),
        "upper": (.upper, [[.text]], .text),
        "substr": (.substr, [[.text, .integer], [.text, .integer, .integer]], .text),
        "substring": (.substr, [[.text, .integer], [.text, .integer, .integer]], .text),
        "split_part": (.splitPart, [[.text, .text, .integer]], .text),
        "length": (.length, [[.text]], .integer),
        "char_length": (.length, [[.text]], .integer),
        "character_length": (.length, [[.text]], .integer),
        "trim": (.btrim, [[.text]], .text),
        "btrim": (.btrim, [[.text], [.text, .text]], .text),
        "ltrim": (.ltrim, [[.text], [.text, .text]], .text),
        "rtrim": (.rtrim, [[.text], [.text, .text]], .text),
        "to_char": (.toChar, [[.timestamp, .text]], .text),
        "nullif": (.nullif, [[nil, nil]], nil),
    ]

    static let scalarFunctionList = "coalesce, nullif, lower, upper, substr, substring, split_part, concat, length, char_length, trim, btrim, ltrim, rtrim, regexp_match, to_char, date_trunc, date_part, EXTRACT"

    private mutating func bindScalarCall(name: Identifier, arguments: [Expression], span: (Int, Int)) throws(Failure) -> (BoundExpression, ValueType) {
        var bound: [BoundExpression] = []
        var types: [ValueType] = []
        for argument in arguments {
            if case .star(let start, let end) = argument { throw fail(.syntax, "'*' is only allowed in COUNT(*)", (start, end)) }
            let (expression, type) = try bindChecked(argument)
            bound.append(expression)
            types.append(type)
        }
        let signature = "\(name.name)(\(types.map(\.description).joined(separator: ", ")))"
        switch name.name {
        case "coalesce":
            guard !arguments.isEmpty else { throw fail(.syntax, "function coalesce takes at least one argument", span) }
            return (.function(.coalesce, bound), try commonType(Array(zip(arguments, types)), construct: "COALESCE"))
        case "concat":
            guard !arguments.isEmpty else { throw fail(.syntax, "function concat takes at least one argument", span) }
            return (.function(.concat, bound), .text)
        case "date_trunc", "date_part", "extract":
            return try bindTimeField(name: name.name, arguments: arguments, bound: bound, types: types, span: span)
        case "now":
            // A streaming view has no one "now": only a temporal filter, whose rows follow the epoch's clock, reads it.
            throw fail(.unsupported, "now() is only allowed in a temporal filter: a condition of a view's WHERE or HAVING, joined to the rest by AND, comparing a time with now() plus or minus a constant interval (e.g. WHERE ts > now() - INTERVAL '1 hour')", span)
        default:
            break
        }
        guard let (function, signatures, result) = Self.scalarFunctions[name.name] else {
            throw fail(.unsupported, "function \(name.name)() is not supported; a view may use the aggregates COUNT, SUM, MIN, MAX, AVG and the functions \(Self.scalarFunctionList)", span)
        }
        let counts = signatures.map(\.count)
        guard counts.contains(arguments.count) else {
            let expected = counts.map(String.init).joined(separator: " or ")
            throw fail(.syntax, "function \(name.name) takes \(expected) argument\(counts == [1] ? "" : "s"), got \(arguments.count)", span)
        }
        let expected = signatures.first { $0.count == arguments.count }!
        for (position, (want, have)) in zip(expected, types).enumerated() {
            guard let want, have != .unknown else { continue }
            let fits = want == have || (want == .timestamp && have.isTime) || (want == .integer && have == .integer)
            if !fits {
                throw fail(.typeMismatch, "function \(signature) does not exist: argument \(position + 1) of \(name.name) must be \(want)", arguments[position].span)
            }
        }
        if function == .nullif {
            _ = try coerceForComparison(bound[0], types[0], bound[1], types[1], operatorSpan: arguments[1].span, operatorText: "NULLIF")
            return (.function(.nullif, bound), types[0])
        }
        if function == .toChar, case .literal(.string(let format)) = bound[1], case .failure(let unsupported) = TimestampFormat.parse(format) {
            throw fail(.unsupported, "to_char pattern '\(unsupported.pattern)' is not supported (supported: \(TimestampFormat.supportedList)); put literal text in double quotes", arguments[1].span)
        }
        return (.function(function, bound), result ?? .text)
    }

    /// `date_trunc(unit, time)`, `date_part(unit, time)`, `EXTRACT(unit FROM time)`: a unit written as a literal
    /// is checked here (a unit computed per row that is not one gives NULL).
    private mutating func bindTimeField(
        name: String, arguments: [Expression], bound: [BoundExpression], types: [ValueType], span: (Int, Int)
    ) throws(Failure) -> (BoundExpression, ValueType) {
        let display = name == "extract" ? "EXTRACT" : name
        guard arguments.count == 2 else {
            throw fail(.syntax, "function \(display) takes 2 arguments (unit, time), got \(arguments.count)", span)
        }
        guard types[0] == .text || types[0] == .unknown else {
            throw fail(.typeMismatch, "the unit of \(display) must be text such as 'minute', not \(types[0])", arguments[0].span)
        }
        var time = bound[1]
        var timeType = types[1]
        if timeType == .text, case .literal(.string(let text)) = time {
            time = .literal(.string(try canonicalTime(text, as: .timestamp, span: arguments[1].span)))
            timeType = .timestamp
        }
        guard timeType.isTime || timeType == .unknown else {
            throw fail(.typeMismatch, "function \(display)(\(types[0]), \(types[1])) does not exist: \(display) reads a TIMESTAMP, TIMESTAMPTZ or DATE", arguments[1].span)
        }
        if case .literal(.string(let unitText)) = bound[0] {
            let unit = TimeFunctions.Unit(unitText)
            if name == "date_trunc", unit?.truncates != true {
                throw fail(.typeMismatch, "unit '\(unitText)' is not recognized by date_trunc (units: \(TimeFunctions.Unit.truncationList))", arguments[0].span)
            }
            if unit == nil {
                throw fail(.typeMismatch, "unit '\(unitText)' is not recognized by \(display) (units: \(TimeFunctions.Unit.extractionList))", arguments[0].span)
            }
        }
        switch name {
        case "date_trunc": return (.function(.dateTrunc, [bound[0], time]), timeType == .timestamptz ? .timestamptz : .timestamp)
        case "date_part": return (.function(.datePart, [bound[0], time]), .double)
        default: return (.function(.extract, [bound[0], time]), .numeric)
        }
    }

    private mutating func bindCall(name: Identifier, arguments: [Expression], isDistinct: Bool, filter: Expression?, span: (Int, Int)) throws(Failure) -> (BoundExpression, ValueType) {
        guard let function = AggregateCall.Function(rawValue: name.name) else {
            throw fail(.unsupported, "aggregate \(name.name)() is not supported yet; supported: COUNT, SUM, MIN, MAX, AVG", span)
        }
        let upper = function.rawValue.uppercased()
        switch scope {
        case .row:
            throw fail(.grouping, "aggregate functions are not allowed in \(clause)", span)
        case .view:
            throw fail(.unsupported, "aggregate functions are not allowed in a query over a view; define another materialized view for it", span)
        case .grouped(let columns, let relation, _):
            guard arguments.count == 1 else {
                throw fail(.syntax, "\(upper) takes exactly one argument, got \(arguments.count)", span)
            }
            var argument: Int?
            var argumentType: ValueType?
            switch arguments[0] {
            case .star(let start, let end):
                guard function == .count else { throw fail(.syntax, "\(upper)(*) is not allowed; only COUNT(*)", (start, end)) }
                guard !isDistinct else { throw fail(.syntax, "COUNT(DISTINCT *) is not allowed; name a column", (start, end)) }
            case .column, .field, .arrow, .cast:
                if case .cast = arguments[0], JSONPathSyntax.parse(arguments[0]) == nil {
                    throw fail(.unsupported, "\(upper) of an expression is not supported yet: aggregate a column (compute the expression in the source instead)", arguments[0].span)
                }
                var rowBinder = ExpressionBinder(source: source, scope: .row(columns: columns, relation: relation), clause: "an aggregate argument")
                let bound = rowBinder.bind(arguments[0])
                errors += rowBinder.errors
                guard case (.column(let index, _), let type)? = bound else { throw Failure() }
                argument = index
                argumentType = type
            case .call(let inner, _, _, _, let start, let end) where Self.aggregateNames.contains(inner.name):
                throw fail(.grouping, "aggregate function calls cannot be nested", (start, end))
            case let other:
                throw fail(.unsupported, "\(upper) of an expression is not supported yet: aggregate a column (compute the expression in the source instead)", other.span)
            }
            if isDistinct && function != .count {
                throw fail(.unsupported, "\(upper)(DISTINCT ...) is not supported; only COUNT(DISTINCT column)", span)
            }
            let resultType: ValueType
            switch function {
            case .count:
                resultType = .integer
            case .sum, .avg:
                guard let argumentType, argumentType.isNumeric else {
                    throw fail(.typeMismatch, "function \(function.rawValue)(\(argumentType?.description ?? "*")) does not exist: \(upper) needs a numeric column", span)
                }
                resultType = function == .avg ? (argumentType == .double ? .double : .numeric) : (argumentType == .integer ? .integer : argumentType)
            case .min, .max:
                guard let argumentType, argumentType != .boolean else {
                    throw fail(.typeMismatch, "function \(function.rawValue)(\(argumentType?.description ?? "*")) does not exist", span)
                }
                resultType = argumentType
            }
            var boundFilter: BoundExpression?
            if let filter {
                var rowBinder = ExpressionBinder(source: source, scope: .row(columns: columns, relation: relation), clause: "FILTER")
                boundFilter = rowBinder.bindCondition(filter)
                errors += rowBinder.errors
                guard boundFilter != nil else { throw Failure() }
                aggregateFilterOffsets.append(filter.span.start)
            }
            let call = AggregateCall(
                function: function, argument: argument, argumentName: argument.map { columns[$0].name }, isDistinct: isDistinct,
                resultType: resultType, filter: boundFilter)
            let index: Int
            if let existing = aggregates.firstIndex(of: call) {
                index = existing
            } else {
                aggregates.append(call)
                index = aggregates.count - 1
            }
            return (.aggregate(index, text: call.description), resultType)
        }
    }
}

/// The closest of `candidates` to `name` by edit distance, if close enough to be a likely typo.
func closestName(_ name: String, _ candidates: [String]) -> String? {
    let target = Array(name.lowercased().unicodeScalars)
    var best: (String, Int)?
    for candidate in candidates {
        let other = Array(candidate.lowercased().unicodeScalars)
        guard abs(other.count - target.count) <= 2 else { continue }
        var previous = Array(0...other.count)
        for (i, a) in target.enumerated() {
            var current = [i + 1] + Array(repeating: 0, count: other.count)
            for (j, b) in other.enumerated() {
                current[j + 1] = min(previous[j + 1] + 1, current[j] + 1, previous[j] + (a == b ? 0 : 1))
            }
            previous = current
        }
        let distance = previous[other.count]
        if distance <= max(1, target.count / 3), distance < (best?.1 ?? .max) { best = (candidate, distance) }
    }
    return best?.0
}
