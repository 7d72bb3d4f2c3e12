/// A value inside a source's nested JSON, read by the decoder as a column of its own: a field of a
/// `STRUCT<…>` column (`(device).os`), or a `->` / `->>` path into a `JSONB` column (`payload->'a'->>'b'`),
/// optionally cast (`(payload->>'n')::INT`). Resolving paths in the decoder (each message's bytes scanned once
/// for every path) keeps the hot path free of JSON trees: a path is a column like any other there.
public struct JSONPath: Sendable, Hashable {
    public enum Step: Sendable, Hashable {
        /// An object's field, by name.
        case field(String)
        /// An array's element, from 0 (PostgreSQL's `->` index).
        case index(Int)
    }

    /// How the value at the path is read.
    public enum Reading: Sendable, Hashable {
        /// As the column's type, like a top-level field (a STRUCT's field).
        case typed
        /// As JSON text, exactly as written in the message (`->`, and JSONB fields); JSON null is SQL NULL.
        case json
        /// As `->>` reads it: a string's contents, other values' JSON text; JSON null is SQL NULL.
        case text
        /// As `->>` reads it, then cast to the column's type: `(payload->>'n')::INT` reads `5` and `"5"` alike;
        /// text that is not a value of the type is a wrong type (NULL, counted).
        case castText
    }

    /// The top-level JSON field, a column declared on the source.
    public var root: String
    public var steps: [Step]
    public var reading: Reading

    public init(root: String, steps: [Step], reading: Reading) {
        self.root = root
        self.steps = steps
        self.reading = reading
    }
}

extension Column {
    /// `(root).a.b`: the name of a STRUCT field's column (PostgreSQL's spelling of the access).
    static func structFieldName(root: String, fields: [String]) -> String {
        "(\(BoundExpression.quoteIfNeeded(root)))." + fields.map(BoundExpression.quoteIfNeeded).joined(separator: ".")
    }
}

/// Recognises the expressions that name a path column: `(column).field…`, `column->key…[->>key]`, and a cast
/// of an arrow path.
enum JSONPathSyntax {
    /// A path expression taken apart: its root column as written, the steps, and the column name it reads.
    struct Parsed {
        var qualifier: Identifier?
        var root: Identifier
        var steps: [JSONPath.Step]
        var isStruct: Bool
        /// `->>` last (text), or `->` (JSON).
        var asText: Bool
        var cast: SQLType?
        var columnName: String
    }

    /// Nil when `expression` is not a path rooted at a column, or a key is not a literal (reported by the binder).
    static func parse(_ expression: Expression) -> Parsed? {
        switch expression {
        case .field:
            var fields: [String] = []
            var current = expression
            while case .field(let base, let name, _) = current {
                fields.insert(name.name, at: 0)
                current = base
            }
            guard case .column(let qualifier, let root) = current else { return nil }
            return Parsed(
                qualifier: qualifier, root: root, steps: fields.map(JSONPath.Step.field), isStruct: true, asText: false, cast: nil,
                columnName: Column.structFieldName(root: root.name, fields: fields))
        case .arrow(_, _, let asText, _, _):
            var steps: [(JSONPath.Step, Bool)] = []
            var current = expression
            while case .arrow(let base, let key, let text, _, _) = current {
                switch key {
                case .literal(.string(let name), _, _): steps.insert((.field(name), text), at: 0)
                case .literal(.integer(let index), _, _) where index >= 0 && index <= Int64(Int32.max): steps.insert((.index(Int(index)), text), at: 0)
                default: return nil
                }
                current = base
            }
            guard case .column(let qualifier, let root) = current else { return nil }
            // Only the last step may be `->>` (its result is text, not JSONB).
            guard !steps.dropLast().contains(where: \.1) else { return nil }
            var name = BoundExpression.quoteIfNeeded(root.name)
            for (step, text) in steps {
                name += text ? "->>" : "->"
                switch step {
                case .field(let field): name += "'" + field.split(separator: "'", omittingEmptySubsequences: false).joined(separator: "''") + "'"
                case .index(let index): name += String(index)
                }
            }
            return Parsed(qualifier: qualifier, root: root, steps: steps.map(\.0), isStruct: false, asText: asText, cast: nil, columnName: name)
        case .cast(let inner, let type, _, _, _, _):
            guard case .arrow = inner, var parsed = parse(inner), parsed.asText, type != .varchar, type != .jsonb else { return nil }
            parsed.cast = type
            parsed.columnName = "(\(parsed.columnName))::\(type)"
            return parsed
        default:
            return nil
        }
    }

    /// The path columns `expression` and everything inside it read from JSONB columns named in `jsonb`.
    static func arrowPaths(in expression: Expression, jsonb: Set<String>, into found: inout [Column]) {
        // A whole path is one column: the steps inside it (`payload->'a'` of `payload->'a'->>'b'`, the text under a
        // cast) are not read on their own.
        switch expression {
        case .arrow, .cast:
            if let parsed = parse(expression), jsonb.contains(parsed.root.name) {
                add(parsed, into: &found)
                return
            }
        default:
            break
        }
        for child in expression.children { arrowPaths(in: child, jsonb: jsonb, into: &found) }
    }

    private static func add(_ parsed: Parsed, into found: inout [Column]) {
        guard !found.contains(where: { $0.name == parsed.columnName }) else { return }
        let reading: JSONPath.Reading = parsed.cast != nil ? .castText : parsed.asText ? .text : .json
        let type = parsed.cast ?? (parsed.asText ? .varchar : .jsonb)
        found.append(Column(name: parsed.columnName, type: type, path: JSONPath(root: parsed.root.name, steps: parsed.steps, reading: reading)))
    }

    /// Every expression of a statement's queries (subqueries in FROM included).
    static func expressions(of query: SelectStatement) -> [Expression] {
        var all = query.items.compactMap(\.expression) + query.groupBy + query.orderBy.map(\.expression)
        if let filter = query.filter { all.append(filter) }
        if let having = query.having { all.append(having) }
        switch query.from {
        case .derived(let inner, _, _): all += expressions(of: inner)
        case .window(let call, _): all += [call.timeColumn]
        case .relation: break
        }
        return all
    }
}
