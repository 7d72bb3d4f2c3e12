/// One aggregate call of a view, over a source column.
public struct AggregateSpec: Sendable, Hashable {
    public enum Function: Sendable, Hashable {
        case count, sum, min, max, avg
    }

    public var function: Function
    /// The source column index; nil only for `COUNT(*)`.
    public var argument: Int?
    public var isDistinct: Bool

    public init(_ function: Function, argument: Int?, isDistinct: Bool = false) {
        self.function = function
        self.argument = argument
        self.isDistinct = isDistinct
    }
}

/// A SQL value as the hot path reports it: a group key or an aggregate's result. Times are `int64`
/// (microseconds or days since 1970, by the column's kind); decimals are `double`.
public enum ScalarValue: Sendable, Hashable {
    case null
    case bool(Bool)
    case int64(Int64)
    case double(Double)
    case string(String)
}

/// An aggregate compiled against the schema: what to do per row, and where its state lives.
struct CompiledAggregate: Sendable {
    /// Stored in encoded state: never renumber.
    enum Operation: UInt8, Sendable {
        case countRows = 1
        case countValues = 2
        case sumInt = 3
        case sumDouble = 4
        case averageInt = 5
        case averageDouble = 6
        case minInt = 7
        case maxInt = 8
        case minDouble = 9
        case maxDouble = 10
        case minString = 11
        case maxString = 12
    }

    let operation: Operation
    /// The argument column, or -1 for `COUNT(*)`.
    let column: Int
    let argumentKind: ColumnKind?
    /// The index of this aggregate's set of seen values (DISTINCT), or -1.
    let distinctSet: Int
    /// The first of this aggregate's state words (`wordCount` of them) within a group's words. Word 0
    /// counts the (non-NULL, and for DISTINCT distinct) values taken in; the words after it hold the
    /// running value: a 128-bit integer sum (low, high), a Double's bits, an Int64 / bool extreme, or the
    /// index + 1 of a string extreme in `GroupTable.stringValues`.
    let wordOffset: Int

    /// State words per group: 1 for `COUNT`, 2 for a Double sum or average and for MIN / MAX, 3 for an
    /// integer sum or average (128 bits). Per group in memory that is 8 bytes a word, plus (see
    /// `GroupTable`) a heap array for a string MIN / MAX (its bytes and about 48 more) and, for DISTINCT,
    /// 45 to 90 bytes per distinct value beyond the value's own bytes.
    var wordCount: Int { Self.wordCount(of: operation) }

    static func wordCount(of operation: Operation) -> Int {
        switch operation {
        case .countRows, .countValues: 1
        case .sumInt, .averageInt: 3
        case .sumDouble, .averageDouble, .minInt, .maxInt, .minDouble, .maxDouble, .minString, .maxString: 2
        }
    }

    /// Compiles `spec`, its state words starting at `wordOffset`, or says why the view cannot be aggregated
    /// this way.
    static func compile(
        _ spec: AggregateSpec, index: Int, schema: RowSchema, distinctSet: Int, wordOffset: Int
    ) throws(EngineError) -> CompiledAggregate {
        let name = "aggregate \(index + 1) (\(spec.function))"
        guard let column = spec.argument else {
            guard spec.function == .count else {
                throw EngineError(.unsupported, "\(name) needs a column argument; only COUNT takes *")
            }
            guard !spec.isDistinct else { throw EngineError(.unsupported, "\(name): COUNT(DISTINCT *) is not SQL") }
            return CompiledAggregate(operation: .countRows, column: -1, argumentKind: nil, distinctSet: -1, wordOffset: wordOffset)
        }
        guard column >= 0 && column < schema.columns.count else {
            throw EngineError(.invalidArgument, "\(name) reads column \(column), but the source has \(schema.columns.count) columns")
        }
        let kind = schema.columns[column].kind
        let columnName = schema.columns[column].name
        let operation: Operation
        switch (spec.function, kind) {
        case (.count, _): operation = .countValues
        case (.sum, .int64): operation = .sumInt
        case (.sum, .double), (.sum, .decimal): operation = .sumDouble
        case (.avg, .int64): operation = .averageInt
        case (.avg, .double), (.avg, .decimal): operation = .averageDouble
        case (.min, .int64), (.min, .timestamp), (.min, .timestamptz), (.min, .date), (.min, .bool): operation = .minInt
        case (.max, .int64), (.max, .timestamp), (.max, .timestamptz), (.max, .date), (.max, .bool): operation = .maxInt
        case (.min, .double), (.min, .decimal): operation = .minDouble
        case (.max, .double), (.max, .decimal): operation = .maxDouble
        case (.min, .string): operation = .minString
        case (.max, .string): operation = .maxString
        case (.sum, _), (.avg, _):
            throw EngineError(.unsupported, "\(name): \(spec.function) of \(columnName) (\(kind)) is not supported; it needs a number column")
        }
        return CompiledAggregate(
            operation: operation, column: column, argumentKind: kind, distinctSet: spec.isDistinct ? distinctSet : -1,
            wordOffset: wordOffset)
    }
}
