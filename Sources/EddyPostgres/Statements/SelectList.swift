import EddySQL

/// The items of a SELECT's top-level select list, with the name each result column gets, and whether the
/// SELECT has a FROM. Enough to answer a FROM-less SELECT and to name the columns of a catalogue answer.
struct SelectList {
    struct Item {
        /// The item's tokens, without its alias.
        var tokens: [StatementText.Token]
        /// `AS name`, or the trailing name of `t.col`, or the function's name, else `?column?` (PostgreSQL's rules).
        var name: String
        /// The item as written, lower case and without spaces, for matching (`c.relname`, `pg_catalog.version()`).
        var key: String
    }

    var items: [Item] = []
    var hasFrom = false

    init(_ statement: StatementText) {
        let tokens = statement.tokens
        guard let select = tokens.firstIndex(where: { $0.isWord("select") }) else { return }
        var depth = 0
        var current: [StatementText.Token] = []
        var index = select + 1
        if index < tokens.count, tokens[index].isWord("distinct") || tokens[index].isWord("all") { index += 1 }
        while index < tokens.count {
            let token = tokens[index]
            if token.text == "(" && token.kind == .symbol { depth += 1 }
            if token.text == ")" && token.kind == .symbol { depth -= 1 }
            if depth == 0 && token.kind == .word && ["from", "where", "order", "limit", "union", "group"].contains(token.text) {
                hasFrom = token.text == "from"
                break
            }
            if depth == 0 && token.kind == .symbol && token.text == "," {
                items.append(Self.item(current))
                current = []
            } else {
                current.append(token)
            }
            index += 1
        }
        if !current.isEmpty { items.append(Self.item(current)) }
    }

    private static func item(_ tokens: [StatementText.Token]) -> Item {
        var body = tokens
        var alias: String?
        if body.count >= 2, body[body.count - 2].isWord("as"), body.last!.kind == .word || body.last!.kind == .quotedName {
            alias = body.last!.text
            body.removeLast(2)
        } else if body.count >= 2, body.last!.kind == .quotedName, body[body.count - 2].text != "." {
            alias = body.last!.text
            body.removeLast()
        }
        let key = body.map { $0.kind == .string ? "'\($0.text)'" : $0.kind == .quotedName ? "\"\($0.text)\"" : $0.text }.joined()
        let name: String
        if let alias {
            name = alias
        } else if let last = body.last, body.count == 1 || (body.count >= 3 && body[body.count - 2].text == "."), last.kind == .word || last.kind == .quotedName {
            name = last.text
        } else if let open = body.firstIndex(where: { $0.kind == .symbol && $0.text == "(" }), open > 0, body[open - 1].kind == .word {
            name = body[open - 1].text
        } else if body.count == 1, body[0].isWord("true") || body[0].isWord("false") {
            name = "bool"
        } else {
            name = "?column?"
        }
        return Item(tokens: body, name: name, key: key)
    }
}

/// `SELECT` without `FROM`: literals and the session functions drivers call (`version()`, `current_schema()`,
/// `current_setting('x')`, `pg_backend_pid()`, …).
enum ScalarSelect {
    static func answer(_ list: SelectList, settings: SessionSettings, processID: Int32, basePosition: Int) -> Result<PlannedStatement, PostgresError> {
        var columns: [ResultColumn] = []
        var row: [SQLValue] = []
        for item in list.items {
            guard let (value, type) = evaluate(item, settings: settings, processID: processID) else {
                let start = item.tokens.first?.start ?? 0
                let text = item.tokens.map(\.text).joined(separator: " ")
                return .failure(PostgresError(
                    "0A000", "\(text) is not supported in a SELECT without FROM", position: basePosition + 1 + start,
                    hint: "Eddy answers SELECT over its materialized views, and version(), current_schema(), current_setting() and literals"))
            }
            columns.append(ResultColumn(name: item.name, type: type))
            row.append(value)
        }
        return .success(.rows(columns: columns, rows: [row]))
    }

    private static func evaluate(_ item: SelectList.Item, settings: SessionSettings, processID: Int32) -> (SQLValue, PostgresType)? {
        var key = item.key
        if key.hasPrefix("pg_catalog.") { key.removeFirst("pg_catalog.".count) }
        // A cast to text or name changes nothing Eddy shows.
        for cast in ["::text", "::name", "::varchar"] where key.hasSuffix(cast) { key.removeLast(cast.count) }
        switch key {
        case "version()": return (.string(SessionSettings.versionText), .text)
        case "current_schema()", "current_schema": return (.string("public"), .text)
        case "current_database()": return (.string(settings.database), .text)
        case "current_user", "session_user", "user", "current_role", "current_user()": return (.string(settings.user), .text)
        case "pg_backend_pid()": return (.int(Int64(processID)), .int4)
        case "current_schemas(true)", "current_schemas(false)": return (.string("{public}"), .text)
        case "pg_is_in_recovery()": return (.bool(false), .bool)
        case "null": return (.null, .text)
        case "true", "false": return (.bool(key == "true"), .bool)
        default: break
        }
        if key.hasPrefix("current_setting('"), key.hasSuffix("')") || key.hasSuffix("',true)") || key.hasSuffix("',false)") {
            let name = item.tokens.first { $0.kind == .string }?.text ?? ""
            return (settings.value(name).map(SQLValue.string) ?? .null, .text)
        }
        if item.tokens.count == 1 {
            let token = item.tokens[0]
            if token.kind == .string { return (.string(token.text), .text) }
            if token.kind == .number {
                if let value = Int64(token.text) { return (.int(value), Int32(exactly: value) != nil ? .int4 : .int8) }
                if let value = Double(token.text) { return (.double(value), .numeric) }
            }
        }
        if item.tokens.count == 2, item.tokens[0].text == "-", item.tokens[1].kind == .number, let value = Int64("-" + item.tokens[1].text) {
            return (.int(value), Int32(exactly: value) != nil ? .int4 : .int8)
        }
        return nil
    }
}
