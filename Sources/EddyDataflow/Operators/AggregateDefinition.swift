import EddySQL

/// One aggregate of a `GROUP BY`: `COUNT(*)`, `COUNT([DISTINCT] x)`, `SUM`, `AVG`, `MIN`, `MAX`, each with
/// an optional `FILTER (WHERE …)`.
///
/// Results follow PostgreSQL: `COUNT` skips NULL; `SUM`, `AVG`, `MIN`, `MAX` ignore NULL and are NULL over no
/// non-NULL value; `SUM` of integers is an integer (a double once it leaves Int64), `AVG` a double.
public struct AggregateFunction: Sendable, Hashable, CustomStringConvertible {
    /// Stored in operator state (a mismatch means the state belongs to another definition): never renumber.
    public enum Kind: UInt8, Sendable, Hashable {
        case countRows = 1
        case count = 2
        case sum = 3
        case average = 4
        case minimum = 5
        case maximum = 6
    }

    public let kind: Kind
    /// The aggregated expression over the input's columns; nil only for `COUNT(*)`.
    public let argument: BoundExpression?
    public let isDistinct: Bool
    /// `FILTER (WHERE …)` over the input's columns: a row counts only where it is true.
    public let filter: BoundExpression?

    /// - Throws: `invalidDefinition` for `COUNT(*)` with an argument or DISTINCT, or another function without one.
    public init(_ kind: Kind, argument: BoundExpression?, isDistinct: Bool = false, filter: BoundExpression? = nil) throws(DataflowError) {
        if kind == .countRows {
            guard argument == nil, !isDistinct else {
                throw DataflowError(.invalidDefinition, "COUNT(*) takes neither an argument nor DISTINCT")
            }
        } else if argument == nil {
            throw DataflowError(.invalidDefinition, "\(kind) needs an argument")
        }
        self.kind = kind
        self.argument = argument
        self.isDistinct = isDistinct
        self.filter = filter
    }

    /// The aggregate of a bound view (whose arguments and `FILTER` read the view's input columns).
    public init(_ call: AggregateCall) throws(DataflowError) {
        let argument = call.argument.map { BoundExpression.column($0, name: call.argumentName ?? "column \($0 + 1)") }
        let kind: Kind =
            switch call.function {
            case .count: argument == nil ? .countRows : .count
            case .sum: .sum
            case .avg: .average
            case .min: .minimum
            case .max: .maximum
            }
        try self.init(kind, argument: argument, isDistinct: call.isDistinct, filter: call.filter)
    }

    /// Whether the aggregate keeps its values (with a count each): `MIN`/`MAX` to find the next extreme after
    /// a delete, `DISTINCT` to know when a value enters or leaves the set.
    var keepsValues: Bool { isDistinct || kind == .minimum || kind == .maximum }
    var sums: Bool { kind == .sum || kind == .average }

    public var description: String {
        let name =
            switch kind {
            case .countRows, .count: "count"
            case .sum: "sum"
            case .average: "avg"
            case .minimum: "min"
            case .maximum: "max"
            }
        let call = "\(name)(\(isDistinct ? "DISTINCT " : "")\(argument?.description ?? "*"))"
        return filter.map { "\(call) FILTER (WHERE \($0))" } ?? call
    }
}

/// What an `AggregateOperator` computes: `SELECT output FROM input [WHERE filter] GROUP BY groupBy [HAVING having]`.
public struct AggregateDefinition: Sendable, Hashable {
    /// Values per input row.
    public let inputWidth: Int
    /// `WHERE`, over the input's columns (fused here so that no batch sits between a filter and its aggregate).
    public let filter: BoundExpression?
    /// `GROUP BY` expressions over the input's columns; empty for one global group.
    public let groupBy: [BoundExpression]
    public let aggregates: [AggregateFunction]
    /// The output row, over `.groupKey(i)` and `.aggregate(i)`.
    public let output: [BoundExpression]
    /// `HAVING`, over `.groupKey(i)` and `.aggregate(i)`: a group is a row of the output only while true.
    public let having: BoundExpression?

    /// - Throws: `invalidDefinition` when an expression reads what its place does not offer (an input column
    ///   out of range, a group key or aggregate in an input expression, an input column in the output).
    public init(
        inputWidth: Int, filter: BoundExpression? = nil, groupBy: [BoundExpression], aggregates: [AggregateFunction],
        output: [BoundExpression], having: BoundExpression? = nil
    ) throws(DataflowError) {
        let inputPlace = ExpressionPlace.input(width: inputWidth)
        let outputPlace = ExpressionPlace.output(groupKeys: groupBy.count, aggregates: aggregates.count)
        try inputPlace.check(filter, as: "WHERE")
        for (index, expression) in groupBy.enumerated() { try inputPlace.check(expression, as: "GROUP BY item \(index + 1)") }
        for (index, aggregate) in aggregates.enumerated() {
            try inputPlace.check(aggregate.argument, as: "the argument of aggregate \(index + 1) (\(aggregate))")
            try inputPlace.check(aggregate.filter, as: "the FILTER of aggregate \(index + 1) (\(aggregate))")
        }
        for (index, expression) in output.enumerated() { try outputPlace.check(expression, as: "output column \(index + 1)") }
        try outputPlace.check(having, as: "HAVING")
        self.inputWidth = inputWidth
        self.filter = filter
        self.groupBy = groupBy
        self.aggregates = aggregates
        self.output = output
        self.having = having
    }

    /// The definition of a bound `GROUP BY` view over a source of `inputWidth` columns: its WHERE, grouping,
    /// aggregates, output columns and HAVING.
    public init(view: View, inputWidth: Int) throws(DataflowError) {
        guard view.isAggregating else {
            throw DataflowError(.invalidDefinition, "view \(view.name) does not aggregate: it is a filter and projection, not an aggregate")
        }
        var aggregates: [AggregateFunction] = []
        for call in view.aggregates { aggregates.append(try AggregateFunction(call)) }
        try self.init(
            inputWidth: inputWidth, filter: view.filter,
            groupBy: zip(view.groupBy, view.groupByNames).map { BoundExpression.column($0, name: $1) },
            aggregates: aggregates, output: view.outputColumns.map(\.expression), having: view.having)
    }
}

/// Where an expression is evaluated, and so what it may read.
enum ExpressionPlace {
    /// Over an input row: `.column(i)` with `i < width`.
    case input(width: Int)
    /// Over a group: `.groupKey(i)` and `.aggregate(i)`.
    case output(groupKeys: Int, aggregates: Int)

    func check(_ expression: BoundExpression?, as what: String) throws(DataflowError) {
        guard let expression else { return }
        if let problem = firstProblem(in: expression) {
            throw DataflowError(.invalidDefinition, "\(what) (\(expression)) \(problem)")
        }
    }

    private func firstProblem(in expression: BoundExpression) -> String? {
        switch expression {
        case .literal: return nil
        case .column(let index, let name):
            guard case .input(let width) = self else { return "reads input column \(name), but an output reads only group keys and aggregates" }
            return index >= 0 && index < width ? nil : "reads column \(name) at \(index), but the input has \(width) columns"
        case .groupKey(let index, let name):
            guard case .output(let groupKeys, _) = self else { return "reads group key \(name) where only input columns exist" }
            return index >= 0 && index < groupKeys ? nil : "reads group key \(name) at \(index), but there are \(groupKeys)"
        case .aggregate(let index, let text):
            guard case .output(_, let aggregates) = self else { return "reads aggregate \(text) where only input columns exist" }
            return index >= 0 && index < aggregates ? nil : "reads aggregate \(text) at \(index), but there are \(aggregates)"
        case .unary(_, let operand), .isNull(let operand, _):
            return firstProblem(in: operand)
        case .binary(_, let left, let right), .like(let left, let right, _, _):
            return firstProblem(in: left) ?? firstProblem(in: right)
        case .inList, .caseWhen, .function:
            return expression.children.lazy.compactMap(firstProblem(in:)).first
        }
    }
}
