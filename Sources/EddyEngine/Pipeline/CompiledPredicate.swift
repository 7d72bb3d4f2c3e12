import EddySQL
#if canImport(Glibc)
import Glibc
#endif

/// A view's `WHERE` compiled to work on the decoded row's bytes and numbers: no `String`, no allocation per
/// message. Built by `make(_:schema:)` for the forms it knows (literals, columns, arithmetic, comparisons,
/// AND/OR/NOT, IS NULL, IN, LIKE); anything else (ILIKE, `||`, CASE, function calls) falls back to
/// `ReferencePredicate`.
///
/// It follows `BoundExpression.evaluate` exactly — three-valued logic, NULL on overflow and division by
/// zero, text compared as UTF-8 bytes, times compared as times (a time literal is compiled to the column's
/// microseconds or days) — and a test holds the two to the same answers on random rows.
final class CompiledPredicate: RowPredicate, @unchecked Sendable {
    /// A value while evaluating: text is borrowed from the row or from a literal's storage.
    enum Value {
        case null
        case bool(Bool)
        case int(Int64)
        case double(Double)
        case bytes(UnsafeRawBufferPointer)
    }

    indirect enum Node {
        case constant(Value)
        case column(Int, ColumnKind)
        case not(Node)
        case negate(Node)
        case and(Node, Node)
        case or(Node, Node)
        case arithmetic(BoundExpression.BinaryOperator, Node, Node)
        case comparison(BoundExpression.BinaryOperator, Node, Node)
        case isNull(Node, negated: Bool)
        case inList(Node, [Node], negated: Bool)
        case like(Node, pattern: Node, negated: Bool)
    }

    private let root: Node
    /// Storage of text literals, freed with the predicate.
    private let literals: [UnsafeMutableRawBufferPointer]

    private init(root: Node, literals: [UnsafeMutableRawBufferPointer]) {
        self.root = root
        self.literals = literals
    }

    deinit { literals.forEach { $0.deallocate() } }

    /// The compiled form of `expression`, or nil when it uses something this compiler does not handle.
    static func make(_ expression: BoundExpression, schema: RowSchema) -> CompiledPredicate? {
        var compiler = Compiler(kinds: schema.columns.map(\.kind))
        guard let root = compiler.compile(expression) else {
            compiler.literals.forEach { $0.deallocate() }
            return nil
        }
        return CompiledPredicate(root: root, literals: compiler.literals)
    }

    func accepts(_ row: DecodedRow) -> Bool {
        if case .bool(true) = Self.evaluate(root, row) { return true }
        return false
    }

    // MARK: Evaluation

    private static func evaluate(_ node: Node, _ row: DecodedRow) -> Value {
        switch node {
        case .constant(let value):
            return value
        case .column(let index, let kind):
            let slot = row.slot(index)
            guard slot.state == ColumnSlot.value else { return .null }
            switch kind {
            case .string: return .bytes(UnsafeRawBufferPointer(start: row.stringBytes(of: slot), count: slot.count))
            case .int64, .timestamp, .timestamptz, .date: return .int(Int64(bitPattern: slot.bits))
            case .double, .decimal: return .double(Double(bitPattern: slot.bits))
            case .bool: return .bool(slot.bits != 0)
            }
        case .not(let operand):
            if case .bool(let flag) = evaluate(operand, row) { return .bool(!flag) }
            return .null
        case .negate(let operand):
            switch evaluate(operand, row) {
            case .int(let value): return value == .min ? .null : .int(-value)
            case .double(let value): return .double(-value)
            default: return .null
            }
        case .and(let left, let right):
            let lhs = evaluate(left, row)
            if case .bool(false) = lhs { return .bool(false) }
            let rhs = evaluate(right, row)
            if case .bool(false) = rhs { return .bool(false) }
            if case .bool(true) = lhs, case .bool(true) = rhs { return .bool(true) }
            return .null
        case .or(let left, let right):
            let lhs = evaluate(left, row)
            if case .bool(true) = lhs { return .bool(true) }
            let rhs = evaluate(right, row)
            if case .bool(true) = rhs { return .bool(true) }
            if case .bool(false) = lhs, case .bool(false) = rhs { return .bool(false) }
            return .null
        case .arithmetic(let op, let left, let right):
            return arithmetic(op, evaluate(left, row), evaluate(right, row))
        case .comparison(let op, let left, let right):
            guard let order = compare(evaluate(left, row), evaluate(right, row)) else { return .null }
            switch op {
            case .equal: return .bool(order == 0)
            case .notEqual: return .bool(order != 0)
            case .less: return .bool(order < 0)
            case .lessOrEqual: return .bool(order <= 0)
            case .greater: return .bool(order > 0)
            default: return .bool(order >= 0)
            }
        case .isNull(let operand, let negated):
            if case .null = evaluate(operand, row) { return .bool(!negated) }
            return .bool(negated)
        case .inList(let operand, let items, let negated):
            let value = evaluate(operand, row)
            if case .null = value { return .null }
            var sawNull = false
            for item in items {
                let candidate = evaluate(item, row)
                if case .null = candidate {
                    sawNull = true
                } else if compare(value, candidate) == 0 {
                    return .bool(!negated)
                }
            }
            return sawNull ? .null : .bool(negated)
        case .like(let operand, let pattern, let negated):
            guard case .bytes(let text) = evaluate(operand, row), case .bytes(let patternBytes) = evaluate(pattern, row) else { return .null }
            return .bool(likeMatches(text, patternBytes) != negated)
        }
    }

    /// As `SQLValue.compare`: numbers numerically (NaN last), text by bytes, false before true; nil when
    /// either side is NULL or the kinds do not compare.
    private static func compare(_ lhs: Value, _ rhs: Value) -> Int? {
        switch (lhs, rhs) {
        case (.int(let a), .int(let b)): return a < b ? -1 : a == b ? 0 : 1
        case (.bytes(let a), .bytes(let b)):
            let common = min(a.count, b.count)
            let order = common == 0 ? 0 : memcmp(a.baseAddress!, b.baseAddress!, common)
            if order != 0 { return order < 0 ? -1 : 1 }
            return a.count < b.count ? -1 : a.count == b.count ? 0 : 1
        case (.bool(let a), .bool(let b)): return a == b ? 0 : (!a ? -1 : 1)
        default:
            guard let a = double(lhs), let b = double(rhs) else { return nil }
            if a.isNaN || b.isNaN { return a.isNaN && b.isNaN ? 0 : (a.isNaN ? 1 : -1) }
            return a < b ? -1 : a == b ? 0 : 1
        }
    }

    private static func double(_ value: Value) -> Double? {
        switch value {
        case .int(let number): Double(number)
        case .double(let number): number
        default: nil
        }
    }

    private static func arithmetic(_ op: BoundExpression.BinaryOperator, _ lhs: Value, _ rhs: Value) -> Value {
        if case .int(let a) = lhs, case .int(let b) = rhs { return SQLArithmetic.integer(op, a, b).map(Value.int) ?? .null }
        guard let a = double(lhs), let b = double(rhs) else { return .null }
        return SQLArithmetic.double(op, a, b).map(Value.double) ?? .null
    }

    /// SQL `LIKE` over UTF-8: `%` any run, `_` one character (a lead byte and its continuation bytes), `\`
    /// escapes the next character. Backtracks to the last `%`, as `LikePattern` does on scalars.
    private static func likeMatches(_ text: UnsafeRawBufferPointer, _ pattern: UnsafeRawBufferPointer) -> Bool {
        func scalarEnd(_ bytes: UnsafeRawBufferPointer, _ index: Int) -> Int {
            var end = index + 1
            while end < bytes.count && bytes[end] & 0xC0 == 0x80 { end += 1 }
            return end
        }
        var textIndex = 0
        var patternIndex = 0
        var starPattern = -1
        var starText = 0
        while textIndex < text.count {
            if patternIndex < pattern.count {
                let symbol = pattern[patternIndex]
                if symbol == UInt8(ascii: "%") {
                    starPattern = patternIndex
                    starText = textIndex
                    patternIndex += 1
                    continue
                }
                if symbol == UInt8(ascii: "_") {
                    textIndex = scalarEnd(text, textIndex)
                    patternIndex += 1
                    continue
                }
                var literalStart = patternIndex
                if symbol == UInt8(ascii: "\\") && patternIndex + 1 < pattern.count { literalStart += 1 }
                let literalEnd = scalarEnd(pattern, literalStart)
                let width = literalEnd - literalStart
                let textEnd = scalarEnd(text, textIndex)
                if textEnd - textIndex == width && memcmp(text.baseAddress! + textIndex, pattern.baseAddress! + literalStart, width) == 0 {
                    textIndex = textEnd
                    patternIndex = literalEnd
                    continue
                }
            }
            guard starPattern >= 0 else { return false }
            patternIndex = starPattern + 1
            starText = scalarEnd(text, starText)
            textIndex = starText
        }
        while patternIndex < pattern.count && pattern[patternIndex] == UInt8(ascii: "%") { patternIndex += 1 }
        return patternIndex == pattern.count
    }

    // MARK: Compiling

    private struct Compiler {
        let kinds: [ColumnKind]
        var literals: [UnsafeMutableRawBufferPointer] = []

        /// What a compiled node yields, for the time-literal conversions.
        enum Produces { case text, time(ColumnKind), other }

        mutating func compile(_ expression: BoundExpression) -> Node? {
            compileTyped(expression)?.0
        }

        private mutating func compileTyped(_ expression: BoundExpression) -> (Node, Produces)? {
            switch expression {
            case .literal(let value):
                return (.constant(literal(value)), value.isText ? .text : .other)
            case .column(let index, _):
                guard index < kinds.count else { return nil }
                let kind = kinds[index]
                switch kind {
                case .string: return (.column(index, kind), .text)
                case .timestamp, .timestamptz, .date: return (.column(index, kind), .time(kind))
                default: return (.column(index, kind), .other)
                }
            case .groupKey, .aggregate:
                return nil
            case .caseWhen, .function:
                return nil  // CASE and functions (strings, regexp_match, to_char) are left to the reference evaluator
            case .unary(.not, let operand):
                return compile(operand).map { (.not($0), .other) }
            case .unary(.negate, let operand):
                return compile(operand).map { (.negate($0), .other) }
            case .binary(.and, let left, let right):
                guard let lhs = compile(left), let rhs = compile(right) else { return nil }
                return (.and(lhs, rhs), .other)
            case .binary(.or, let left, let right):
                guard let lhs = compile(left), let rhs = compile(right) else { return nil }
                return (.or(lhs, rhs), .other)
            case .binary(.concatenate, _, _):
                return nil
            case .binary(let op, let left, let right) where [.add, .subtract, .multiply, .divide, .modulo].contains(op):
                guard let lhs = compile(left), let rhs = compile(right) else { return nil }
                return (.arithmetic(op, lhs, rhs), .other)
            case .binary(let op, let left, let right):
                guard let (lhs, rhs) = comparable(left, right) else { return nil }
                return (.comparison(op, lhs, rhs), .other)
            case .isNull(let operand, let negated):
                return compile(operand).map { (.isNull($0, negated: negated), .other) }
            case .inList(let operand, let items, let negated):
                var compiledOperand: Node?
                var compiledItems: [Node] = []
                for item in items {
                    guard let (lhs, rhs) = comparable(operand, item) else { return nil }
                    compiledOperand = lhs
                    compiledItems.append(rhs)
                }
                guard let compiledOperand = compiledOperand ?? compile(operand) else { return nil }
                return (.inList(compiledOperand, compiledItems, negated: negated), .other)
            case .like(let operand, let pattern, let negated, let caseInsensitive):
                // ILIKE lowercases with Unicode rules, which can change a text's length: left to the reference.
                guard !caseInsensitive, let text = compile(operand), let patternNode = compile(pattern) else { return nil }
                return (.like(text, pattern: patternNode, negated: negated), .other)
            }
        }

        /// Both sides of a comparison; a text literal against a time column becomes the column's number.
        private mutating func comparable(_ left: BoundExpression, _ right: BoundExpression) -> (Node, Node)? {
            guard let (lhs, leftProduces) = compileTyped(left), let (rhs, rightProduces) = compileTyped(right) else { return nil }
            switch (leftProduces, rightProduces) {
            case (.time(let kind), .text):
                guard case .literal(.string(let text)) = right, let number = Self.timeNumber(text, kind: kind) else { return nil }
                return (lhs, .constant(.int(number)))
            case (.text, .time(let kind)):
                guard case .literal(.string(let text)) = left, let number = Self.timeNumber(text, kind: kind) else { return nil }
                return (.constant(.int(number)), rhs)
            case (.time(let a), .time(let b)) where (a == .date) != (b == .date):
                return nil  // a date against a timestamp: different units
            default:
                return (lhs, rhs)
            }
        }

        private mutating func literal(_ value: SQLValue) -> Value {
            switch value {
            case .null: return .null
            case .bool(let flag): return .bool(flag)
            case .int(let number): return .int(number)
            case .double(let number): return .double(number)
            case .string(let text):
                let bytes = Array(text.utf8)
                let storage = UnsafeMutableRawBufferPointer.allocate(byteCount: max(1, bytes.count), alignment: 1)
                bytes.withUnsafeBytes { storage.copyMemory(from: $0) }
                literals.append(storage)
                return .bytes(UnsafeRawBufferPointer(rebasing: storage[0..<bytes.count]))
            }
        }

        /// A time literal (the binder writes them as `YYYY-MM-DD[ HH:MM:SS[.ffffff]]`) as the column holds it:
        /// microseconds since 1970 UTC, or days for a date column; parsed as the decoder parses the column.
        static func timeNumber(_ text: String, kind: ColumnKind) -> Int64? {
            let bytes = Array(text.utf8)
            return bytes.withUnsafeBufferPointer { buffer in
                guard let base = buffer.baseAddress else { return nil }
                return kind == .date
                    ? ValueParsing.date(base, count: buffer.count) : ValueParsing.timestamp(base, count: buffer.count, withZone: false)
            }
        }
    }
}

extension SQLValue {
    fileprivate var isText: Bool { if case .string = self { true } else { false } }
}
