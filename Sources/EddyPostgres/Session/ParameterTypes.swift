import EddySQL

/// `$n` parameters of the extended protocol. Eddy's SQL front end has no placeholders, so a bound
/// parameter becomes a SQL literal in the statement's text before it binds; its type decides the literal.
enum ParameterTypes {
    /// One type per parameter: the type Parse declared, else one inferred from where the placeholder
    /// stands (`column = $1` takes the view column's type; `LIMIT $1` a bigint), else text. Clients such
    /// as asyncpg read these to encode their arguments.
    static func effective(declared: [Int32], statement: StatementText, views: [View]) -> [PostgresType] {
        let count = max(statement.parameterCount, declared.count)
        var columnTypes: [String: PostgresType] = [:]
        for view in views { for column in view.outputColumns { columnTypes[column.name] = PostgresType(column.type) } }
        let tokens = statement.tokens
        let comparisons: Set<String> = ["=", "<", ">", "<=", ">=", "<>", "!="]
        var inferred: [Int: PostgresType] = [:]
        for (index, token) in tokens.enumerated() {
            guard case .placeholder(let number) = token.kind else { continue }
            if index > 0, tokens[index - 1].isWord("limit") || tokens[index - 1].isWord("offset") {
                inferred[number] = .int8
            } else if index >= 2, comparisons.contains(tokens[index - 1].text), let type = columnTypes[tokens[index - 2].text] {
                inferred[number] = type
            } else if index + 2 < tokens.count, comparisons.contains(tokens[index + 1].text), let type = columnTypes[tokens[index + 2].text] {
                inferred[number] = type
            }
        }
        return (1...max(count, 1)).prefix(count).map { number in
            if number <= declared.count, declared[number - 1] != 0 { return PostgresType.named(oid: declared[number - 1]) ?? .text }
            return inferred[number] ?? .text
        }
    }

    /// The statement with every `$n` replaced by a value of its type, for binding before values are known.
    static func standIns(_ statement: StatementText, types: [PostgresType]) -> String {
        statement.substitutingPlaceholders { number in
            let type = number <= types.count ? types[number - 1] : .text
            if type.isNumber { return "0" }
            if type == .bool { return "TRUE" }
            return "''"
        }
    }

    /// A parameter's value as a SQL literal; `22P02` when it is not a value of its type.
    static func literal(_ value: [UInt8]?, type: PostgresType, binary: Bool, number: Int) -> Result<String, PostgresError> {
        guard let value else { return .success("NULL") }
        if binary {
            func integer<T: FixedWidthInteger>(_: T.Type) -> T? {
                guard value.count == MemoryLayout<T>.size else { return nil }
                return value.reduce(T.zero) { $0 << 8 | T(truncatingIfNeeded: $1) }
            }
            let text: String?
            switch type {
            case .int2: text = integer(Int16.self).map { String($0) }
            case .int4: text = integer(Int32.self).map { String($0) }
            case .int8: text = integer(Int64.self).map { String($0) }
            case .oid: text = integer(UInt32.self).map { String($0) }
            case .float4: text = integer(UInt32.self).map { SQLValue.text(of: Double(Float(bitPattern: $0))) }
            case .float8: text = integer(UInt64.self).map { SQLValue.text(of: Double(bitPattern: $0)) }
            case .bool: text = value.count == 1 ? (value[0] != 0 ? "TRUE" : "FALSE") : nil
            case .text, .varchar, .unknown: text = String(validating: value, as: UTF8.self).map(quoted)
            default:
                return .failure(PostgresError("22P03", "binary format of parameter $\(number) of type \(type.name) is not supported; send it as text"))
            }
            guard let text else { return .failure(PostgresError("22P03", "parameter $\(number) is not a binary \(type.name) (\(value.count) bytes)")) }
            if type.isNumber, text.contains("n") || text.contains("N") { return .success("'\(text)'") }  // NaN, Infinity
            return .success(text)
        }
        guard let text = String(validating: value, as: UTF8.self) else {
            return .failure(PostgresError("22021", "parameter $\(number) is not valid UTF-8"))
        }
        if type.isNumber {
            let trimmed = text.trimmingCharacters(in: .whitespaces)
            guard !trimmed.isEmpty, trimmed.allSatisfy({ $0.isASCIIDigit || "+-.eE".contains($0) }), Double(trimmed) != nil else {
                return .failure(PostgresError("22P02", "invalid input syntax for type \(type.name): \"\(text)\" (parameter $\(number))"))
            }
            return .success(trimmed)
        }
        if type == .bool {
            switch text.lowercased() {
            case "t", "true", "on", "yes", "y", "1": return .success("TRUE")
            case "f", "false", "off", "no", "n", "0": return .success("FALSE")
            default: return .failure(PostgresError("22P02", "invalid input syntax for type boolean: \"\(text)\" (parameter $\(number))"))
            }
        }
        return .success(quoted(text))
    }

    private static func quoted(_ text: String) -> String { "'" + text.replacingOccurrences(of: "'", with: "''") + "'" }
}

extension String {
    fileprivate func trimmingCharacters(in set: Set<Character>) -> String {
        String(drop { set.contains($0) }.reversed().drop { set.contains($0) }.reversed())
    }
}

extension Set<Character> {
    fileprivate static var whitespaces: Set<Character> { [" ", "\t", "\n", "\r"] }
}
