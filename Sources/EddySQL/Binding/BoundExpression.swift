import Foundation

/// The static type of an expression, for checking operators and naming output types.
public enum ValueType: Sendable, Hashable, CustomStringConvertible {
    case boolean, integer, double, numeric, text, timestamp, date
    /// TIMESTAMP WITH TIME ZONE: carried, like TIMESTAMP, as its UTC time's canonical text.
    case timestamptz
    /// A span of time (`INTERVAL '5 minutes'`), carried as PostgreSQL's text of it (see `SQLInterval`).
    case interval
    /// The type of a bare `NULL`: fits anywhere.
    case unknown

    init(_ type: SQLType) {
        switch type {
        // JSONB is carried as its JSON text; `->` and `->>` read into it where a source decodes it.
        case .varchar, .jsonb: self = .text
        case .smallint, .integer, .bigint: self = .integer
        case .real, .double: self = .double
        case .decimal: self = .numeric
        case .boolean: self = .boolean
        case .timestamp: self = .timestamp
        case .timestamptz: self = .timestamptz
        case .date: self = .date
        }
    }

    var isNumeric: Bool { self == .integer || self == .double || self == .numeric }
    /// Text and the times, which are carried as their canonical text.
    var isTextual: Bool { self == .text || isTime || self == .interval }
    /// TIMESTAMP or TIMESTAMPTZ.
    var isTimestamp: Bool { self == .timestamp || self == .timestamptz }
    /// A point in time: TIMESTAMP, TIMESTAMPTZ or DATE.
    var isTime: Bool { isTimestamp || self == .date }

    /// The SQL name of the type, as `eddy check` and query headers show it.
    public var description: String {
        switch self {
        case .boolean: "BOOLEAN"
        case .integer: "BIGINT"
        case .double: "DOUBLE PRECISION"
        case .numeric: "NUMERIC"
        case .text: "VARCHAR"
        case .timestamp: "TIMESTAMP"
        case .timestamptz: "TIMESTAMPTZ"
        case .interval: "INTERVAL"
        case .date: "DATE"
        case .unknown: "UNKNOWN"
        }
    }
}

/// An expression with every name resolved.
///
/// What `column(i)` refers to depends on where the expression lives: a source's columns in a view's
/// `WHERE` and aggregate arguments, a view's output columns in a query. `groupKey(i)` and `aggregate(i)`
/// appear in a view's output columns and `HAVING`.
public indirect enum BoundExpression: Sendable, Hashable, CustomStringConvertible {
    public enum UnaryOperator: String, Sendable, Hashable { case negate = "-", not = "NOT " }
    public enum BinaryOperator: String, Sendable, Hashable {
        case and = "AND", or = "OR"
        case equal = "=", notEqual = "<>", less = "<", lessOrEqual = "<=", greater = ">", greaterOrEqual = ">="
        case add = "+", subtract = "-", multiply = "*", divide = "/", modulo = "%", concatenate = "||"
    }

    case literal(SQLValue)
    case column(Int, name: String)
    /// The i-th `GROUP BY` column of a view.
    case groupKey(Int, name: String)
    /// The i-th aggregate of a view (`View.aggregates`).
    case aggregate(Int, text: String)
    case unary(UnaryOperator, BoundExpression)
    case binary(BinaryOperator, BoundExpression, BoundExpression)
    case isNull(BoundExpression, negated: Bool)
    case inList(BoundExpression, [BoundExpression], negated: Bool)
    case like(BoundExpression, pattern: BoundExpression, negated: Bool, caseInsensitive: Bool)
    /// `CASE WHEN c THEN r … [ELSE e] END` (the simple form `CASE x WHEN v …` is bound as `WHEN x = v`):
    /// the result of the first branch whose condition is true, else `otherwise`, else NULL.
    case caseWhen([CaseBranch], otherwise: BoundExpression?)
    /// A scalar function over its arguments (see `ScalarFunction` for each one's meaning).
    case function(ScalarFunction, [BoundExpression])

    /// `WHEN condition THEN result`.
    public struct CaseBranch: Sendable, Hashable {
        public var condition: BoundExpression
        public var result: BoundExpression

        public init(condition: BoundExpression, result: BoundExpression) {
            self.condition = condition
            self.result = result
        }
    }

    /// Canonical SQL text (names, not positions): used in plans and in view fingerprints.
    public var description: String {
        switch self {
        case .literal(let value): value.description
        case .column(_, let name), .groupKey(_, let name): Self.quoteIfNeeded(name)
        case .aggregate(_, let text): text
        case .unary(let op, let operand): "(\(op.rawValue)\(operand))"
        case .binary(let op, let left, let right): "(\(left) \(op.rawValue) \(right))"
        case .isNull(let operand, let negated): "(\(operand) IS \(negated ? "NOT " : "")NULL)"
        case .inList(let operand, let items, let negated):
            "(\(operand) \(negated ? "NOT " : "")IN (\(items.map(\.description).joined(separator: ", "))))"
        case .like(let operand, let pattern, let negated, let caseInsensitive):
            "(\(operand) \(negated ? "NOT " : "")\(caseInsensitive ? "ILIKE" : "LIKE") \(pattern))"
        case .caseWhen(let branches, let otherwise):
            "(CASE" + branches.map { " WHEN \($0.condition) THEN \($0.result)" }.joined()
                + (otherwise.map { " ELSE \($0)" } ?? "") + " END)"
        case .function(.regexpMatchElement, let arguments) where arguments.count == 3:
            "(regexp_match(\(arguments[0]), \(arguments[1])))[\(arguments[2])]"
        case .function(.extract, let arguments) where arguments.count == 2:
            if case .literal(.string(let unit)) = arguments[0] { "EXTRACT(\(unit.uppercased()) FROM \(arguments[1]))" } else { "extract(\(arguments[0]), \(arguments[1]))" }
        case .function(let function, let arguments) where (function == .timestampPlusInterval || function == .timestampMinusInterval) && arguments.count == 2:
            "(\(arguments[0]) \(function == .timestampPlusInterval ? "+" : "-") \(Self.intervalText(arguments[1])))"
        case .function(let function, let arguments) where function.castTarget != nil && arguments.count == 1:
            "CAST(\(arguments[0]) AS \(function.castTarget!))"
        case .function(let function, let arguments):
            "\(function.rawValue)(\(arguments.map(\.description).joined(separator: ", ")))"
        }
    }

    /// The direct operands, for walks over the tree.
    public var children: [BoundExpression] {
        switch self {
        case .literal, .column, .groupKey, .aggregate: []
        case .unary(_, let operand), .isNull(let operand, _): [operand]
        case .binary(_, let left, let right), .like(let left, let right, _, _): [left, right]
        case .inList(let operand, let items, _): [operand] + items
        case .caseWhen(let branches, let otherwise): branches.flatMap { [$0.condition, $0.result] } + (otherwise.map { [$0] } ?? [])
        case .function(_, let arguments): arguments
        }
    }

    /// An interval operand as SQL writes it: a constant as `INTERVAL '…'`.
    private static func intervalText(_ expression: BoundExpression) -> String {
        if case .literal(.string(let text)) = expression { return "INTERVAL " + SQLValue.string(text).description }
        return expression.description
    }

    static func quoteIfNeeded(_ name: String) -> String {
        let plain = name.unicodeScalars.allSatisfy { ($0 >= "a" && $0 <= "z") || ($0 >= "0" && $0 <= "9") || $0 == "_" }
            && !(name.first?.isNumber ?? true)
        return plain ? name : "\"" + name.replacingOccurrences(of: "\"", with: "\"\"") + "\""
    }

    /// Evaluates with SQL's three-valued logic. Errors PostgreSQL would raise at run time (division by zero,
    /// integer overflow) give NULL instead: a streaming view cannot stop for one row.
    public func evaluate(
        column: (Int) -> SQLValue,
        groupKey: (Int) -> SQLValue = { _ in .null },
        aggregate: (Int) -> SQLValue = { _ in .null }
    ) -> SQLValue {
        func eval(_ expression: BoundExpression) -> SQLValue {
            expression.evaluate(column: column, groupKey: groupKey, aggregate: aggregate)
        }
        switch self {
        case .literal(let value): return value
        case .column(let index, _): return column(index)
        case .groupKey(let index, _): return groupKey(index)
        case .aggregate(let index, _): return aggregate(index)
        case .unary(.not, let operand):
            if case .bool(let flag) = eval(operand) { return .bool(!flag) }
            return .null
        case .unary(.negate, let operand):
            switch eval(operand) {
            case .int(let value): return value == .min ? .null : .int(-value)
            case .double(let value): return .double(-value)
            default: return .null
            }
        case .binary(.and, let left, let right):
            let lhs = eval(left)
            if lhs == .bool(false) { return .bool(false) }
            let rhs = eval(right)
            if rhs == .bool(false) { return .bool(false) }
            return lhs == .bool(true) && rhs == .bool(true) ? .bool(true) : .null
        case .binary(.or, let left, let right):
            let lhs = eval(left)
            if lhs == .bool(true) { return .bool(true) }
            let rhs = eval(right)
            if rhs == .bool(true) { return .bool(true) }
            return lhs == .bool(false) && rhs == .bool(false) ? .bool(false) : .null
        case .binary(let op, let left, let right):
            return Self.apply(op, eval(left), eval(right))
        case .isNull(let operand, let negated):
            return .bool(eval(operand).isNull != negated)
        case .inList(let operand, let items, let negated):
            let value = eval(operand)
            if value.isNull { return .null }
            var sawNull = false
            for item in items {
                let candidate = eval(item)
                if candidate.isNull {
                    sawNull = true
                } else if SQLValue.compare(value, candidate) == 0 {
                    return .bool(!negated)
                }
            }
            return sawNull ? .null : .bool(negated)
        case .like(let operand, let pattern, let negated, let caseInsensitive):
            guard case .string(let text) = eval(operand), case .string(let patternText) = eval(pattern) else { return .null }
            let matched = caseInsensitive
                ? LikePattern.matches(text.lowercased(), pattern: patternText.lowercased())
                : LikePattern.matches(text, pattern: patternText)
            return .bool(matched != negated)
        case .caseWhen(let branches, let otherwise):
            for branch in branches where eval(branch.condition) == .bool(true) { return eval(branch.result) }
            return otherwise.map(eval) ?? .null
        case .function(.coalesce, let arguments):
            for argument in arguments {
                let value = eval(argument)
                if !value.isNull { return value }
            }
            return .null
        case .function(let function, let arguments):
            return function.apply(arguments.map(eval))
        }
    }

    private static func apply(_ op: BinaryOperator, _ lhs: SQLValue, _ rhs: SQLValue) -> SQLValue {
        if lhs.isNull || rhs.isNull { return .null }
        switch op {
        case .equal, .notEqual, .less, .lessOrEqual, .greater, .greaterOrEqual:
            guard let order = SQLValue.compare(lhs, rhs) else { return .null }
            let result = switch op {
            case .equal: order == 0
            case .notEqual: order != 0
            case .less: order < 0
            case .lessOrEqual: order <= 0
            case .greater: order > 0
            default: order >= 0
            }
            return .bool(result)
        case .concatenate:
            return .string(lhs.text + rhs.text)
        case .add, .subtract, .multiply, .divide, .modulo:
            if case .int(let a) = lhs, case .int(let b) = rhs { return SQLArithmetic.integer(op, a, b).map(SQLValue.int) ?? .null }
            guard let a = lhs.doubleValue, let b = rhs.doubleValue else { return .null }
            return SQLArithmetic.double(op, a, b).map(SQLValue.double) ?? .null
        case .and, .or:
            preconditionFailure("AND/OR are evaluated with short-circuit above")
        }
    }
}

/// Arithmetic as SQL evaluates it here: nil (SQL NULL) where PostgreSQL would raise an error at run time
/// (integer overflow, division by zero), since a streaming view cannot stop for one row. Shared by the
/// evaluator and the engine's compiled predicates, which must agree to the bit.
public enum SQLArithmetic {
    /// `+ - * / %` of two integers (`/` truncates, as PostgreSQL's integer division).
    public static func integer(_ op: BoundExpression.BinaryOperator, _ a: Int64, _ b: Int64) -> Int64? {
        let (value, overflow): (Int64, Bool)
        switch op {
        case .add: (value, overflow) = a.addingReportingOverflow(b)
        case .subtract: (value, overflow) = a.subtractingReportingOverflow(b)
        case .multiply: (value, overflow) = a.multipliedReportingOverflow(by: b)
        case .divide:
            guard b != 0 else { return nil }
            (value, overflow) = a.dividedReportingOverflow(by: b)
        case .modulo:
            guard b != 0 else { return nil }
            (value, overflow) = a.remainderReportingOverflow(dividingBy: b)
        default: preconditionFailure("\(op) is not arithmetic")
        }
        return overflow ? nil : value
    }

    /// `+ - * / %` of two doubles.
    public static func double(_ op: BoundExpression.BinaryOperator, _ a: Double, _ b: Double) -> Double? {
        switch op {
        case .add: a + b
        case .subtract: a - b
        case .multiply: a * b
        case .divide: b == 0 ? nil : a / b
        case .modulo: b == 0 ? nil : a.truncatingRemainder(dividingBy: b)
        default: preconditionFailure("\(op) is not arithmetic")
        }
    }
}

extension SQLValue {
    var doubleValue: Double? {
        switch self {
        case .int(let value): Double(value)
        case .double(let value): value
        default: nil
        }
    }

    /// Orders two non-null values of comparable kinds (numbers numerically, text by UTF-8 bytes as the
    /// C collation does, false before true); nil when they cannot be compared.
    public static func compare(_ lhs: SQLValue, _ rhs: SQLValue) -> Int? {
        switch (lhs, rhs) {
        case (.int(let a), .int(let b)): return a < b ? -1 : a == b ? 0 : 1
        case (.string(let a), .string(let b)):
            if a == b { return 0 }
            return a.utf8.lexicographicallyPrecedes(b.utf8) ? -1 : 1
        case (.bool(let a), .bool(let b)): return a == b ? 0 : (!a ? -1 : 1)
        default:
            guard let a = lhs.doubleValue, let b = rhs.doubleValue else { return nil }
            if a.isNaN || b.isNaN { return a.isNaN && b.isNaN ? 0 : (a.isNaN ? 1 : -1) }  // NaN sorts last, as in PostgreSQL
            return a < b ? -1 : a == b ? 0 : 1
        }
    }
}

/// SQL `LIKE`: `%` any run, `_` one character, `\` escapes the next character.
enum LikePattern {
    static func matches(_ text: String, pattern: String) -> Bool {
        let characters = Array(text.unicodeScalars)
        let patternScalars = Array(pattern.unicodeScalars)
        // Iterative matching with backtracking to the last `%` (linear for typical patterns).
        var textIndex = 0
        var patternIndex = 0
        var starPattern = -1
        var starText = 0
        while textIndex < characters.count {
            if patternIndex < patternScalars.count {
                let symbol = patternScalars[patternIndex]
                if symbol == "%" {
                    starPattern = patternIndex
                    starText = textIndex
                    patternIndex += 1
                    continue
                }
                if symbol == "_" {
                    textIndex += 1
                    patternIndex += 1
                    continue
                }
                var literal = symbol
                var width = 1
                if symbol == "\\" && patternIndex + 1 < patternScalars.count {
                    literal = patternScalars[patternIndex + 1]
                    width = 2
                }
                if literal == characters[textIndex] {
                    textIndex += 1
                    patternIndex += width
                    continue
                }
            }
            guard starPattern >= 0 else { return false }
            patternIndex = starPattern + 1
            starText += 1
            textIndex = starText
        }
        while patternIndex < patternScalars.count && patternScalars[patternIndex] == "%" { patternIndex += 1 }
        return patternIndex == patternScalars.count
    }
}
