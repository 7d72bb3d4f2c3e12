/// The syntax tree of a pipeline file, as written (names folded, nothing resolved yet).

/// A name with where it was written.
public struct Identifier: Sendable, Hashable, CustomStringConvertible {
    /// Folded to lower case unless it was quoted.
    public var name: String
    public var isQuoted: Bool
    /// Byte offsets in the file.
    var start: Int
    var end: Int

    public var description: String { name }
}

/// A `key = 'value'` entry of `WITH (...)` or of a `FORMAT ... ENCODE ... (...)` clause.
struct OptionEntry: Sendable {
    /// Dotted keys are joined with `.`, folded to lower case (`properties.bootstrap.server`).
    var key: String
    var keyStart: Int
    var keyEnd: Int
    var value: String
    var valueStart: Int
    var valueEnd: Int
    /// Whether `${NAME}` substitution produced part of the value.
    var isSubstituted: Bool
    /// A `${NAME}` in the value was not set (already reported): the value must not be checked further.
    var hasFailedSubstitution = false
}

/// `FORMAT <format> ENCODE <encode> [( options )]`.
struct FormatClause: Sendable {
    var format: Identifier
    var encode: Identifier
    var options: [OptionEntry]
    /// `KEY ENCODE <encode>` after the options (sinks).
    var keyEncode: Identifier? = nil
}

/// A column of `CREATE SOURCE` / `CREATE TABLE`.
struct ColumnDefinition: Sendable {
    var name: Identifier
    /// For a `STRUCT<…>`, a placeholder: `fields` says what it holds.
    var type: SQLType
    var typeStart: Int
    var typeEnd: Int
    /// The fields of a `STRUCT<name type, …>` column (each may be a STRUCT again); nil for other types.
    var fields: [ColumnDefinition]? = nil
}

/// `WATERMARK FOR column AS expression` in a source's column list.
struct WatermarkDefinition: Sendable {
    var column: Identifier
    var expression: Expression
    var start: Int
}

/// `INCLUDE timestamp|partition|offset|key [AS name]` after a source's column list.
struct IncludeDefinition: Sendable {
    /// The Kafka metadata named (`timestamp`, `partition`, …), as written.
    var what: Identifier
    var alias: Identifier?
    var start: Int
}

enum UnaryOperator: String, Sendable { case minus = "-", plus = "+", not = "NOT" }

enum BinaryOperator: String, Sendable {
    case or = "OR", and = "AND"
    case equal = "=", notEqual = "<>", less = "<", lessOrEqual = "<=", greater = ">", greaterOrEqual = ">="
    case add = "+", subtract = "-", multiply = "*", divide = "/", modulo = "%", concatenate = "||"

    var isComparison: Bool {
        switch self {
        case .equal, .notEqual, .less, .lessOrEqual, .greater, .greaterOrEqual: true
        default: false
        }
    }

    var isArithmetic: Bool {
        switch self {
        case .add, .subtract, .multiply, .divide, .modulo: true
        default: false
        }
    }
}

/// A literal as written.
enum Literal: Sendable, Equatable {
    case null
    case bool(Bool)
    case integer(Int64)
    /// A number with a fraction or exponent, or an integer too large for BIGINT.
    case decimal(Double, text: String)
    case string(String)
}

/// The type of a typed literal (`INTERVAL '5 minutes'`, `TIMESTAMP '2026-01-01 00:00:00'`).
enum TypedLiteralType: String, Sendable {
    case interval = "INTERVAL", timestamp = "TIMESTAMP", timestamptz = "TIMESTAMPTZ", date = "DATE"
}

/// An expression as written. Every node knows its byte range, for errors.
indirect enum Expression: Sendable {
    case literal(Literal, start: Int, end: Int)
    /// `TYPE 'text'`; an interval may carry a qualifier (`INTERVAL '5' SECOND`, `INTERVAL '1:30' HOUR TO MINUTE`).
    case typedLiteral(TypedLiteralType, text: String, qualifier: SQLInterval.Qualifier?, start: Int, end: Int)
    case column(qualifier: Identifier?, name: Identifier)
    /// `*` as a function argument (`COUNT(*)`) or a select item.
    case star(start: Int, end: Int)
    /// A function or aggregate call; `filter` is an aggregate's `FILTER (WHERE …)`.
    case call(name: Identifier, arguments: [Expression], isDistinct: Bool, filter: Expression?, start: Int, end: Int)
    /// `CASE [operand] WHEN … THEN … [ELSE …] END`; with an operand, each `WHEN` is a value compared to it.
    case caseWhen(operand: Expression?, branches: [CaseBranch], otherwise: Expression?, start: Int, end: Int)
    /// `base[index]` (PostgreSQL arrays are 1-based).
    case element(Expression, index: Expression, start: Int, end: Int)
    case unary(UnaryOperator, Expression, start: Int, end: Int)
    case binary(BinaryOperator, Expression, Expression, operatorStart: Int, operatorEnd: Int)
    case isNull(Expression, negated: Bool, start: Int, end: Int)
    case inList(Expression, [Expression], negated: Bool, start: Int, end: Int)
    case like(Expression, pattern: Expression, negated: Bool, caseInsensitive: Bool, start: Int, end: Int)
    case between(Expression, low: Expression, high: Expression, negated: Bool, start: Int, end: Int)
    /// `(base).field`: a field of a STRUCT column (`start`: the opening parenthesis).
    case field(Expression, name: Identifier, start: Int)
    /// `base -> key` (JSONB) or `base ->> key` (`asText`: text); the key a string (field) or an integer (element).
    case arrow(Expression, key: Expression, asText: Bool, operatorStart: Int, operatorEnd: Int)
    /// `expression::type` or `CAST(expression AS type)`.
    case cast(Expression, SQLType, typeStart: Int, typeEnd: Int, start: Int, end: Int)

    /// The byte range the expression spans.
    var span: (start: Int, end: Int) {
        switch self {
        case .literal(_, let start, let end), .star(let start, let end), .typedLiteral(_, _, _, let start, let end): (start, end)
        case .column(let qualifier, let name): (qualifier?.start ?? name.start, name.end)
        case .call(_, _, _, _, let start, let end), .unary(_, _, let start, let end): (start, end)
        case .caseWhen(_, _, _, let start, let end), .element(_, _, let start, let end): (start, end)
        case .binary(_, let left, let right, _, _): (left.span.start, right.span.end)
        case .isNull(let operand, _, _, let end): (operand.span.start, end)
        case .inList(let operand, _, _, _, let end): (operand.span.start, end)
        case .like(let operand, _, _, _, _, let end): (operand.span.start, end)
        case .between(let operand, _, _, _, _, let end): (operand.span.start, end)
        case .field(_, let name, let start): (start, name.end)
        case .arrow(let base, let key, _, _, _): (base.span.start, key.span.end)
        case .cast(_, _, _, _, let start, let end): (start, end)
        }
    }

    /// The expressions directly inside this one.
    var children: [Expression] {
        switch self {
        case .literal, .typedLiteral, .column, .star: []
        case .call(_, let arguments, _, let filter, _, _): arguments + (filter.map { [$0] } ?? [])
        case .caseWhen(let operand, let branches, let otherwise, _, _):
            (operand.map { [$0] } ?? []) + branches.flatMap { [$0.condition, $0.result] } + (otherwise.map { [$0] } ?? [])
        case .element(let base, let index, _, _): [base, index]
        case .unary(_, let operand, _, _), .isNull(let operand, _, _, _): [operand]
        case .binary(_, let left, let right, _, _), .like(let left, let right, _, _, _, _): [left, right]
        case .inList(let operand, let items, _, _, _): [operand] + items
        case .between(let operand, let low, let high, _, _, _): [operand, low, high]
        case .field(let base, _, _), .cast(let base, _, _, _, _, _): [base]
        case .arrow(let base, let key, _, _, _): [base, key]
        }
    }
}

/// One `WHEN condition THEN result` of a CASE.
struct CaseBranch: Sendable {
    var condition: Expression
    var result: Expression
}

struct SelectItem: Sendable {
    /// nil for `*`.
    var expression: Expression?
    var alias: Identifier?
    var start: Int
    var end: Int
}

struct OrderItem: Sendable {
    var expression: Expression
    var ascending: Bool
    var nullsFirst: Bool?
}

/// `TUMBLE(relation, time_column, size[, offset])` or `HOP(relation, time_column, hop, size[, offset])` in FROM.
struct WindowCall: Sendable {
    enum Kind: String, Sendable { case tumble = "TUMBLE", hop = "HOP" }

    var kind: Kind
    /// Where `TUMBLE`/`HOP` is written.
    var name: Identifier
    var relation: Identifier
    var timeColumn: Expression
    /// The interval arguments after the time column, as written.
    var intervals: [Expression]
    var end: Int
}

/// What a `SELECT` reads: a named relation, a window over one, or a subquery, each with an optional alias.
indirect enum FromItem: Sendable {
    /// `name [[AS] alias]`.
    case relation(Identifier, alias: Identifier?)
    /// `(SELECT …) [AS] alias`: a derived table (RisingWave requires no alias; Eddy names it after the alias).
    case derived(SelectStatement, alias: Identifier, start: Int)
    /// `TUMBLE(…)` / `HOP(…) [[AS] alias]`: the relation's rows with `window_start` and `window_end` added.
    case window(WindowCall, alias: Identifier?)

    /// The name the query's columns are qualified with (`alias.column`).
    var qualifier: Identifier {
        switch self {
        case .relation(let name, let alias): alias ?? name
        case .derived(_, let alias, _): alias
        case .window(let call, let alias): alias ?? call.relation
        }
    }

    /// Where the item is written, for errors.
    var span: (start: Int, end: Int) {
        switch self {
        case .relation(let name, let alias): (name.start, alias?.end ?? name.end)
        case .derived(_, let alias, let start): (start, alias.end)
        case .window(let call, let alias): (call.name.start, alias?.end ?? call.end)
        }
    }
}

/// `SELECT ... FROM item [WHERE] [GROUP BY] [HAVING] [ORDER BY] [LIMIT]`.
struct SelectStatement: Sendable {
    var items: [SelectItem]
    var from: FromItem
    var filter: Expression?
    var groupBy: [Expression]
    var having: Expression?
    var orderBy: [OrderItem]
    var limit: (value: Int, start: Int, end: Int)?
    var start: Int
    var end: Int
}

/// One statement of a pipeline file.
enum Statement: Sendable {
    case createSource(CreateSource)
    case createView(CreateView)
    case createSink(CreateSink)
    case select(SelectStatement)
    /// Parsed well enough to name, but not something Eddy runs (DROP, SHOW, …).
    case unsupported(what: String, hint: String, start: Int, end: Int)
}

struct CreateSource: Sendable {
    /// `CREATE TABLE` with a connector rather than `CREATE SOURCE`.
    var isTable: Bool
    var ifNotExists: Bool
    var name: Identifier
    var columns: [ColumnDefinition]
    var watermarks: [WatermarkDefinition] = []
    var includes: [IncludeDefinition] = []
    var options: [OptionEntry]
    var withStart: Int
    var format: FormatClause?
    var start: Int
    var end: Int
}

struct CreateView: Sendable {
    var ifNotExists: Bool
    var name: Identifier
    var query: SelectStatement
    /// Where `EMIT ON WINDOW CLOSE` is written, if it is.
    var emitOnWindowClose: (start: Int, end: Int)?
    var start: Int
    var end: Int
}

struct CreateSink: Sendable {
    var ifNotExists: Bool
    var name: Identifier
    var from: Identifier
    var options: [OptionEntry]
    var withStart: Int
    var format: FormatClause?
    var start: Int
    var end: Int
}
