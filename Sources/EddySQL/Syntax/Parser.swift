/// Recursive-descent parser for the pipeline dialect (RisingWave's `CREATE SOURCE/TABLE/MATERIALIZED
/// VIEW/SINK` and `SELECT`).
///
/// A statement with a syntax error is reported and skipped up to the next `;`, so one run reports the
/// errors of every statement. Nesting depth is bounded, so no input can exhaust the stack.
struct Parser {
    private let source: SourceText
    private let tokens: [Token]
    private var index = 0
    private var depth = 0
    private(set) var errors: [SQLError] = []

    /// Deeper nesting than this is refused (a pipeline never needs it; 1 MB of `(` must not crash).
    static let maximumDepth = 200

    init(source: SourceText, tokens: [Token]) {
        self.source = source
        self.tokens = tokens
    }

    /// A syntax error: parsing of the current statement stops.
    private struct Failure: Error {}

    // MARK: Token access

    private var current: Token { tokens[index] }
    private func lookahead(_ offset: Int) -> Token { tokens[min(max(index + offset, 0), tokens.count - 1)] }

    @discardableResult
    private mutating func advance() -> Token {
        let token = tokens[index]
        if index < tokens.count - 1 { index += 1 }
        return token
    }

    private mutating func accept(keyword: String) -> Bool {
        guard current.isKeyword(keyword) else { return false }
        advance()
        return true
    }

    private mutating func accept(symbol: String) -> Bool {
        guard current.isSymbol(symbol) else { return false }
        advance()
        return true
    }

    private mutating func expect(keyword: String, _ context: String) throws(Failure) {
        guard accept(keyword: keyword) else { throw fail("expected \(keyword) \(context), found \(describe(current))") }
    }

    private mutating func expect(symbol: String, _ context: String) throws(Failure) {
        guard accept(symbol: symbol) else { throw fail("expected '\(symbol)' \(context), found \(describe(current))") }
    }

    private func describe(_ token: Token) -> String {
        switch token.kind {
        case .end: "end of file"
        case .word: "'\(token.text)'"
        case .quotedIdentifier: "\"\(token.text)\""
        case .string: "a string"
        case .number: "the number \(token.text)"
        case .symbol: "'\(token.text)'"
        }
    }

    private mutating func fail(_ message: String, at token: Token? = nil, code: SQLError.Code = .syntax) -> Failure {
        let token = token ?? current
        errors.append(source.error(code, message, from: token.start, to: token.end))
        return Failure()
    }

    private mutating func fail(_ message: String, from start: Int, to end: Int, code: SQLError.Code) -> Failure {
        errors.append(source.error(code, message, from: start, to: end))
        return Failure()
    }

    // MARK: Statements

    /// Every statement of the file; statements with errors are left out (their errors are in `errors`).
    mutating func parseFile() -> [Statement] {
        var statements: [Statement] = []
        while current.kind != .end {
            if accept(symbol: ";") { continue }
            let start = index
            do {
                let statement = try parseStatement()
                if !accept(symbol: ";") && current.kind != .end {
                    throw fail("expected ';' after the statement, found \(describe(current))")
                }
                statements.append(statement)
            } catch {
                skipToStatementEnd(from: start)
            }
        }
        return statements
    }

    private mutating func skipToStatementEnd(from start: Int) {
        if index == start { advance() }
        while current.kind != .end && !current.isSymbol(";") { advance() }
        _ = accept(symbol: ";")
    }

    private mutating func parseStatement() throws(Failure) -> Statement {
        let first = current
        if accept(keyword: "CREATE") {
            if accept(keyword: "SOURCE") { return .createSource(try parseCreateSource(isTable: false, start: first.start)) }
            if accept(keyword: "TABLE") { return .createSource(try parseCreateSource(isTable: true, start: first.start)) }
            if accept(keyword: "MATERIALIZED") {
                try expect(keyword: "VIEW", "after CREATE MATERIALIZED")
                return .createView(try parseCreateView(start: first.start))
            }
            if current.isKeyword("VIEW") {
                throw fail("CREATE VIEW (a plain view) is not supported: Eddy maintains materialized views; write CREATE MATERIALIZED VIEW", code: .unsupported)
            }
            if accept(keyword: "SINK") { return .createSink(try parseCreateSink(start: first.start)) }
            if current.isKeyword("OR") && lookahead(1).isKeyword("REPLACE") {
                throw fail("CREATE OR REPLACE is not supported: a pipeline file defines each object once", code: .unsupported)
            }
            throw fail("expected SOURCE, TABLE, MATERIALIZED VIEW or SINK after CREATE, found \(describe(current))")
        }
        if current.isKeyword("SELECT") {
            let select = try parseSelect()
            if current.isKeyword("EMIT") { throw fail("EMIT ON WINDOW CLOSE belongs to CREATE MATERIALIZED VIEW, not to a query over a view", code: .unsupported) }
            return .select(select)
        }
        for (keyword, hint) in Self.unsupportedStatements where current.isKeyword(keyword) {
            let end = skipStatementEndOffset()
            return .unsupported(what: keyword.uppercased(), hint: hint, start: first.start, end: end)
        }
        if current.isSymbol("(") { throw fail("expected a statement, found '(' (a parenthesised query is not a statement of a pipeline file)") }
        throw fail("expected CREATE SOURCE, CREATE TABLE, CREATE MATERIALIZED VIEW, CREATE SINK or SELECT, found \(describe(current))")
    }

    private static let unsupportedStatements: [(String, String)] = [
        ("drop", "a pipeline file only creates objects; to drop a view's state, stop eddy and remove its --state-dir"),
        ("show", "SHOW is not supported in a pipeline file; `eddy check FILE` prints the plan"),
        ("insert", "Eddy reads its sources from Kafka; produce messages to the topic instead"),
        ("update", "Eddy reads its sources from Kafka; views are updated from the topic"),
        ("delete", "Eddy reads its sources from Kafka; views are updated from the topic"),
        ("alter", "ALTER is not supported: edit the pipeline file and restart"),
        ("set", "SET is not supported in a pipeline file"),
        ("explain", "EXPLAIN is not supported; `eddy check FILE` prints the plan"),
        ("describe", "DESCRIBE is not supported; `eddy check FILE` prints the plan"),
        ("flush", "FLUSH is not needed: Eddy checkpoints every second"),
    ]

    /// Skips the rest of a statement (to its `;`, left for the caller) and returns where it ends.
    private mutating func skipStatementEndOffset() -> Int {
        var end = current.end
        while current.kind != .end && !current.isSymbol(";") {
            end = current.end
            advance()
        }
        return end
    }

    private mutating func parseIfNotExists() throws(Failure) -> Bool {
        guard accept(keyword: "IF") else { return false }
        try expect(keyword: "NOT", "in IF NOT EXISTS")
        try expect(keyword: "EXISTS", "in IF NOT EXISTS")
        return true
    }

    private mutating func parseCreateSource(isTable: Bool, start: Int) throws(Failure) -> CreateSource {
        let ifNotExists = try parseIfNotExists()
        let name = try parseObjectName(what: isTable ? "table" : "source")
        var columns: [ColumnDefinition] = []
        var watermarks: [WatermarkDefinition] = []
        if accept(symbol: "(") {
            repeat {
                if current.isKeyword("PRIMARY") || current.isKeyword("CONSTRAINT") {
                    throw fail("\(current.text.uppercased()) clauses are not supported in a source's column list", code: .unsupported)
                }
                if current.isKeyword("WATERMARK") && lookahead(1).isKeyword("FOR") {
                    let start = advance().start
                    advance()
                    let column = try parseIdentifier(what: "the column of the watermark after WATERMARK FOR")
                    try expect(keyword: "AS", "and the watermark's expression, e.g. WATERMARK FOR \(column.name) AS \(column.name) - INTERVAL '5' SECOND")
                    watermarks.append(WatermarkDefinition(column: column, expression: try parseExpression(), start: start))
                    continue
                }
                columns.append(try parseColumnDefinition())
            } while accept(symbol: ",")
            try expect(symbol: ")", "to close the column list")
        }
        var includes: [IncludeDefinition] = []
        while current.isKeyword("INCLUDE") {
            let start = advance().start
            let what = try parseIdentifier(what: "what to include (timestamp, partition, offset or key)")
            var alias: Identifier?
            if accept(keyword: "AS") { alias = try parseIdentifier(what: "a column name after AS") }
            includes.append(IncludeDefinition(what: what, alias: alias, start: start))
        }
        if current.isKeyword("APPEND") { throw fail("APPEND ONLY is not needed: Eddy treats every source as append-only", code: .unsupported) }
        let withStart = current.start
        try expect(keyword: "WITH", "and the connector options, e.g. WITH (connector='kafka', topic='...', ...)")
        let options = try parseOptionList()
        var format: FormatClause?
        if current.isKeyword("FORMAT") {
            format = try parseFormatClause()
        } else if current.isKeyword("ROW") {
            throw fail("ROW FORMAT is RisingWave's old syntax: write FORMAT PLAIN ENCODE JSON", code: .unsupported)
        }
        return CreateSource(
            isTable: isTable, ifNotExists: ifNotExists, name: name, columns: columns, watermarks: watermarks, includes: includes,
            options: options, withStart: withStart, format: format, start: start, end: lookahead(-1).end)
    }

    private mutating func parseColumnDefinition() throws(Failure) -> ColumnDefinition {
        let name = try parseIdentifier(what: "a column name")
        let typeStart = current.start
        let (type, fields) = try parseTypeName(for: "column '\(name.name)'", allowStruct: true)
        if current.isSymbol("[") || current.isKeyword("ARRAY") { throw fail("array types are not supported", code: .unsupported) }
        if current.isKeyword("NOT") || current.isKeyword("NULL") || current.isKeyword("DEFAULT") || current.isKeyword("AS") || current.isKeyword("PRIMARY") {
            throw fail("column constraints and generated columns (\(current.text.uppercased()) ...) are not supported", code: .unsupported)
        }
        return ColumnDefinition(name: name, type: type, typeStart: typeStart, typeEnd: lookahead(-1).end, fields: fields)
    }

    /// A type name (with its synonyms and ignored modifiers); `STRUCT<name type, …>` where `allowStruct`, which
    /// returns its fields (and a placeholder type).
    private mutating func parseTypeName(for what: String, allowStruct: Bool) throws(Failure) -> (SQLType, [ColumnDefinition]?) {
        let typeToken = current
        guard typeToken.kind == .word else { throw fail("expected a type for \(what) (\(SQLType.spellingList)), found \(describe(current))") }
        advance()
        var type: SQLType
        switch typeToken.text {
        case "struct":
            guard allowStruct else { throw fail("a cast to STRUCT is not supported; read its fields with (column).field", at: typeToken, code: .unsupported) }
            try expect(symbol: "<", "after STRUCT, e.g. STRUCT<os VARCHAR, version INT>")
            var fields: [ColumnDefinition] = []
            repeat { fields.append(try parseColumnDefinition()) } while accept(symbol: ",")
            try expect(symbol: ">", "to close STRUCT<...>")
            return (.varchar, fields)
        case "double":
            _ = accept(keyword: "PRECISION")
            type = .double
        case "character":
            _ = accept(keyword: "VARYING")
            type = .varchar
        case "timestamp", "time":
            if typeToken.text == "time" { throw fail("TIME is not supported; use TIMESTAMP", at: typeToken, code: .unsupported) }
            type = .timestamp
            if accept(keyword: "WITH") {
                try expect(keyword: "TIME", "in TIMESTAMP WITH TIME ZONE")
                try expect(keyword: "ZONE", "in TIMESTAMP WITH TIME ZONE")
                type = .timestamptz
            } else if accept(keyword: "WITHOUT") {
                try expect(keyword: "TIME", "in TIMESTAMP WITHOUT TIME ZONE")
                try expect(keyword: "ZONE", "in TIMESTAMP WITHOUT TIME ZONE")
            }
        default:
            guard let known = SQLType.spellings[typeToken.text] else {
                throw fail("unknown type '\(typeToken.text)' for \(what); supported: \(SQLType.spellingList)", at: typeToken, code: .unsupported)
            }
            type = known
        }
        // Length and precision modifiers (VARCHAR(255), DECIMAL(10, 2)) are accepted and not enforced.
        if accept(symbol: "(") {
            repeat {
                guard current.kind == .number else { throw fail("expected a number in the type modifier, found \(describe(current))") }
                advance()
            } while accept(symbol: ",")
            try expect(symbol: ")", "to close the type modifier")
        }
        return (type, nil)
    }

    private mutating func parseCreateView(start: Int) throws(Failure) -> CreateView {
        let ifNotExists = try parseIfNotExists()
        let name = try parseObjectName(what: "materialized view")
        if current.isSymbol("(") { throw fail("a column list after the view name is not supported; name the columns with AS in the SELECT", code: .unsupported) }
        if current.isKeyword("WITH") { throw fail("WITH options on a materialized view are not supported", code: .unsupported) }
        try expect(keyword: "AS", "before the view's query")
        guard current.isKeyword("SELECT") else { throw fail("expected SELECT after AS, found \(describe(current))") }
        let query = try parseSelect()
        var emitOnWindowClose: (Int, Int)?
        if current.isKeyword("EMIT") {
            let emit = advance()
            try expect(keyword: "ON", "in EMIT ON WINDOW CLOSE")
            if current.isKeyword("UPDATE") { throw fail("EMIT ON UPDATE is not a clause: a view emits on every update unless it says EMIT ON WINDOW CLOSE") }
            try expect(keyword: "WINDOW", "in EMIT ON WINDOW CLOSE")
            try expect(keyword: "CLOSE", "in EMIT ON WINDOW CLOSE")
            emitOnWindowClose = (emit.start, lookahead(-1).end)
        }
        return CreateView(
            ifNotExists: ifNotExists, name: name, query: query, emitOnWindowClose: emitOnWindowClose, start: start,
            end: emitOnWindowClose?.1 ?? query.end)
    }

    private mutating func parseCreateSink(start: Int) throws(Failure) -> CreateSink {
        let ifNotExists = try parseIfNotExists()
        let name = try parseObjectName(what: "sink")
        if current.isKeyword("AS") { throw fail("CREATE SINK ... AS SELECT is not supported: create a materialized view and sink FROM it", code: .unsupported) }
        if current.isKeyword("INTO") { throw fail("CREATE SINK INTO a table is not supported; Eddy sinks to Redis", code: .unsupported) }
        try expect(keyword: "FROM", "and the view to sink, e.g. CREATE SINK name FROM view WITH (...)")
        let from = try parseObjectName(what: "view")
        let withStart = current.start
        try expect(keyword: "WITH", "and the sink options, e.g. WITH (connector='redis', ...)")
        let options = try parseOptionList()
        var format: FormatClause?
        if current.isKeyword("FORMAT") {
            format = try parseFormatClause()
            if accept(keyword: "KEY") {
                try expect(keyword: "ENCODE", "after KEY (KEY ENCODE TEXT)")
                format?.keyEncode = try parseIdentifier(what: "a key encoding (TEXT)")
            }
        }
        return CreateSink(
            ifNotExists: ifNotExists, name: name, from: from, options: options, withStart: withStart, format: format,
            start: start, end: lookahead(-1).end)
    }

    /// `( key = 'value', ... )`; keys may be dotted (`properties.bootstrap.server`).
    private mutating func parseOptionList() throws(Failure) -> [OptionEntry] {
        try expect(symbol: "(", "to open the option list")
        var options: [OptionEntry] = []
        if accept(symbol: ")") { return options }
        repeat {
            let keyStart = current.start
            var parts: [String] = []
            repeat {
                switch current.kind {
                case .word, .quotedIdentifier: parts.append(advance().text)
                case .string: parts.append(advance().text)
                default: throw fail("expected an option name, found \(describe(current))")
                }
            } while accept(symbol: ".")
            let keyEnd = lookahead(-1).end
            try expect(symbol: "=", "after option '\(parts.joined(separator: "."))'")
            let valueToken = current
            var value: String
            switch valueToken.kind {
            case .string, .number:
                value = advance().text
            case .word where valueToken.text == "true" || valueToken.text == "false":
                value = advance().text
            case .symbol where valueToken.text == "-" && lookahead(1).kind == .number:
                advance()
                value = "-" + advance().text
            default:
                // A secret written unquoted is still a secret: never echo it (SecretRanges masks the line).
                let key = parts.joined(separator: ".")
                let found = KafkaSourceSettings.Property.isSecret(key: key) ? "an unquoted value" : describe(valueToken)
                throw fail("expected a quoted value for option '\(key)', found \(found)")
            }
            options.append(OptionEntry(
                key: parts.joined(separator: ".").lowercased(), keyStart: keyStart, keyEnd: keyEnd, value: value,
                valueStart: valueToken.start, valueEnd: lookahead(-1).end, isSubstituted: valueToken.isSubstituted,
                hasFailedSubstitution: valueToken.hasFailedSubstitution))
        } while accept(symbol: ",")
        try expect(symbol: ")", "to close the option list")
        return options
    }

    private mutating func parseFormatClause() throws(Failure) -> FormatClause {
        try expect(keyword: "FORMAT", "")
        let format = try parseIdentifier(what: "a format (PLAIN)")
        try expect(keyword: "ENCODE", "after FORMAT \(format.name.uppercased())")
        let encode = try parseIdentifier(what: "an encoding (JSON or TEMPLATE)")
        var options: [OptionEntry] = []
        if current.isSymbol("(") { options = try parseOptionList() }
        return FormatClause(format: format, encode: encode, options: options)
    }

    // MARK: SELECT

    private mutating func parseSelect() throws(Failure) -> SelectStatement {
        let start = current.start
        try expect(keyword: "SELECT", "")
        if current.isKeyword("DISTINCT") { throw fail("SELECT DISTINCT is not supported; use GROUP BY", code: .unsupported) }
        _ = accept(keyword: "ALL")
        var items: [SelectItem] = []
        repeat {
            let itemStart = current.start
            if current.isSymbol("*") {
                advance()
                items.append(SelectItem(expression: nil, alias: nil, start: itemStart, end: lookahead(-1).end))
                continue
            }
            if current.isKeyword("FROM") { throw fail("expected a column or expression before FROM") }
            let expression = try parseExpression()
            var alias: Identifier?
            if accept(keyword: "AS") {
                alias = try parseIdentifier(what: "a column alias after AS")
            } else if (current.kind == .word && !Self.reservedWords.contains(current.text)) || current.kind == .quotedIdentifier {
                alias = try parseIdentifier(what: "a column alias")
            }
            items.append(SelectItem(expression: expression, alias: alias, start: itemStart, end: lookahead(-1).end))
        } while accept(symbol: ",")
        try expect(keyword: "FROM", "after the select list (Eddy's queries read one source or view)")
        let from = try parseFromItem()
        if current.isSymbol(",") || current.isKeyword("JOIN") || current.isKeyword("INNER") || current.isKeyword("LEFT")
            || current.isKeyword("RIGHT") || current.isKeyword("FULL") || current.isKeyword("CROSS")
        {
            throw fail("joins are not supported: a query reads one source or view", code: .unsupported)
        }
        var filter: Expression?
        if accept(keyword: "WHERE") { filter = try parseExpression() }
        var groupBy: [Expression] = []
        if accept(keyword: "GROUP") {
            try expect(keyword: "BY", "after GROUP")
            repeat { groupBy.append(try parseExpression()) } while accept(symbol: ",")
        }
        var having: Expression?
        if accept(keyword: "HAVING") { having = try parseExpression() }
        if current.isKeyword("WINDOW") || current.isKeyword("UNION") || current.isKeyword("EXCEPT") || current.isKeyword("INTERSECT") {
            throw fail("\(current.text.uppercased()) is not supported", code: .unsupported)
        }
        var orderBy: [OrderItem] = []
        if accept(keyword: "ORDER") {
            try expect(keyword: "BY", "after ORDER")
            repeat {
                let expression = try parseExpression()
                var ascending = true
                if accept(keyword: "DESC") { ascending = false } else { _ = accept(keyword: "ASC") }
                var nullsFirst: Bool?
                if accept(keyword: "NULLS") {
                    if accept(keyword: "FIRST") { nullsFirst = true } else {
                        try expect(keyword: "LAST", "after NULLS")
                        nullsFirst = false
                    }
                }
                orderBy.append(OrderItem(expression: expression, ascending: ascending, nullsFirst: nullsFirst))
            } while accept(symbol: ",")
        }
        var limit: (Int, Int, Int)?
        if accept(keyword: "LIMIT") {
            let token = current
            guard token.kind == .number, let value = Int(token.text), value >= 0 else {
                throw fail("expected a non-negative whole number after LIMIT, found \(describe(token))")
            }
            advance()
            limit = (value, token.start, token.end)
        }
        if current.isKeyword("OFFSET") { throw fail("OFFSET is not supported", code: .unsupported) }
        return SelectStatement(
            items: items, from: from, filter: filter, groupBy: groupBy, having: having, orderBy: orderBy, limit: limit,
            start: start, end: lookahead(-1).end)
    }

    /// `name [[AS] alias]` or `(SELECT …) [AS] alias`.
    private mutating func parseFromItem() throws(Failure) -> FromItem {
        if current.isSymbol("(") {
            let open = advance()
            guard current.isKeyword("SELECT") else { throw fail("expected SELECT after '(' in FROM, found \(describe(current))") }
            let query = try nested { (parser: inout Parser) throws(Failure) in try parser.parseSelect() }
            try expect(symbol: ")", "to close the subquery in FROM")
            let hadAs = accept(keyword: "AS")
            guard hadAs || (current.kind == .word && !Self.reservedWords.contains(current.text)) || current.kind == .quotedIdentifier else {
                throw fail("a subquery in FROM needs an alias, e.g. (SELECT ...) AS t, found \(describe(current))")
            }
            let alias = try parseIdentifier(what: "an alias for the subquery")
            return .derived(query, alias: alias, start: open.start)
        }
        if (current.isKeyword("TUMBLE") || current.isKeyword("HOP")) && lookahead(1).isSymbol("(") {
            let call = try parseWindowCall()
            return .window(call, alias: try parseTableAlias())
        }
        let name = try parseObjectName(what: "source or view")
        if current.isSymbol("(") {
            throw fail("\(name.name)(...) in FROM is not a table function Eddy has; the windows are TUMBLE(...) and HOP(...)", from: name.start, to: name.end, code: .unsupported)
        }
        let alias = try parseTableAlias()
        if current.isSymbol("(") { throw fail("column aliases after a table alias are not supported; name the columns with AS in the SELECT", code: .unsupported) }
        return .relation(name, alias: alias)
    }

    /// `[[AS] alias]` after a relation in FROM (`EMIT ON WINDOW CLOSE` after it is no alias).
    private mutating func parseTableAlias() throws(Failure) -> Identifier? {
        if accept(keyword: "AS") { return try parseIdentifier(what: "a table alias after AS") }
        if current.isKeyword("EMIT") && lookahead(1).isKeyword("ON") { return nil }
        if (current.kind == .word && !Self.reservedWords.contains(current.text)) || current.kind == .quotedIdentifier {
            return try parseIdentifier(what: "a table alias")
        }
        return nil
    }

    /// `TUMBLE(relation, time_column, size[, offset])` / `HOP(relation, time_column, hop, size[, offset])`.
    private mutating func parseWindowCall() throws(Failure) -> WindowCall {
        let nameToken = advance()
        let name = Identifier(name: nameToken.text, isQuoted: false, start: nameToken.start, end: nameToken.end)
        let kind: WindowCall.Kind = nameToken.text == "tumble" ? .tumble : .hop
        advance()
        if current.isSymbol("(") || current.isKeyword("SELECT") {
            throw fail("\(kind.rawValue) over a subquery is not supported; define a materialized view and window that", code: .unsupported)
        }
        let relation = try parseObjectName(what: "source or view")
        try expect(symbol: ",", "after the relation of \(kind.rawValue), then the time column")
        let timeColumn = try parseExpression()
        var intervals: [Expression] = []
        while accept(symbol: ",") { intervals.append(try parseExpression()) }
        let close = current
        try expect(symbol: ")", "to close \(kind.rawValue)(")
        return WindowCall(kind: kind, name: name, relation: relation, timeColumn: timeColumn, intervals: intervals, end: close.end)
    }

    // MARK: Names

    /// Words that cannot be a column alias without AS, nor a bare column reference.
    static let reservedWords: Set<String> = [
        "select", "from", "where", "group", "having", "order", "limit", "offset", "and", "or", "not", "as", "by",
        "on", "join", "inner", "left", "right", "full", "cross", "union", "except", "intersect", "window", "with",
        "is", "in", "like", "ilike", "between", "null", "true", "false", "distinct", "all", "case", "when", "then",
        "else", "end", "create", "format", "encode", "asc", "desc", "nulls", "cast", "into",
    ]

    /// A name: a quoted identifier, or any unquoted word (keywords included, as RisingWave allows `user`).
    private mutating func parseIdentifier(what: String) throws(Failure) -> Identifier {
        let token = current
        switch token.kind {
        case .word, .quotedIdentifier:
            advance()
            return Identifier(name: token.text, isQuoted: token.kind == .quotedIdentifier, start: token.start, end: token.end)
        default:
            throw fail("expected \(what), found \(describe(token))")
        }
    }

    /// An object name; `schema.name` is accepted when the schema is `public` (RisingWave's default).
    private mutating func parseObjectName(what: String) throws(Failure) -> Identifier {
        if current.kind == .word && Self.reservedWords.contains(current.text) && !current.isKeyword("user") {
            throw fail("expected a \(what) name, found the keyword \(current.text.uppercased())")
        }
        let first = try parseIdentifier(what: "a \(what) name")
        guard accept(symbol: ".") else { return first }
        let second = try parseIdentifier(what: "a \(what) name after '\(first.name).'")
        guard first.name == "public" else {
            throw fail("schema '\(first.name)' is not supported; objects live in the default schema (public)", from: first.start, to: first.end, code: .unsupported)
        }
        return second
    }

    // MARK: Expressions (lowest precedence first)

    private mutating func nested<Result>(_ body: (inout Parser) throws(Failure) -> Result) throws(Failure) -> Result {
        depth += 1
        defer { depth -= 1 }
        guard depth <= Self.maximumDepth else {
            throw fail("expression nested too deeply (more than \(Self.maximumDepth) levels)")
        }
        return try body(&self)
    }

    private mutating func parseExpression() throws(Failure) -> Expression {
        try nested { (parser: inout Parser) throws(Failure) in try parser.parseOr() }
    }

    private mutating func parseOr() throws(Failure) -> Expression {
        var left = try parseAnd()
        while current.isKeyword("OR") {
            let token = advance()
            left = .binary(.or, left, try parseAnd(), operatorStart: token.start, operatorEnd: token.end)
        }
        return left
    }

    private mutating func parseAnd() throws(Failure) -> Expression {
        var left = try parseNot()
        while current.isKeyword("AND") {
            let token = advance()
            left = .binary(.and, left, try parseNot(), operatorStart: token.start, operatorEnd: token.end)
        }
        return left
    }

    private mutating func parseNot() throws(Failure) -> Expression {
        if current.isKeyword("NOT") {
            let token = advance()
            let operand = try nested { (parser: inout Parser) throws(Failure) in try parser.parseNot() }
            return .unary(.not, operand, start: token.start, end: operand.span.end)
        }
        return try parsePredicate()
    }

    /// Comparisons, IS [NOT] NULL, [NOT] IN, [NOT] LIKE, [NOT] BETWEEN.
    private mutating func parsePredicate() throws(Failure) -> Expression {
        let left = try parseConcatenation()
        if current.kind == .symbol, let comparison = Self.comparisons[current.text] {
            let token = advance()
            let right = try parseConcatenation()
            if current.kind == .symbol, Self.comparisons[current.text] != nil {
                throw fail("comparisons do not chain; combine them with AND")
            }
            return .binary(comparison, left, right, operatorStart: token.start, operatorEnd: token.end)
        }
        if accept(keyword: "IS") {
            let negated = accept(keyword: "NOT")
            if current.isKeyword("TRUE") || current.isKeyword("FALSE") || current.isKeyword("DISTINCT") || current.isKeyword("UNKNOWN") {
                throw fail("IS \(negated ? "NOT " : "")\(current.text.uppercased()) is not supported; use = or IS NULL", code: .unsupported)
            }
            guard current.isKeyword("NULL") else { throw fail("expected NULL after IS\(negated ? " NOT" : ""), found \(describe(current))") }
            let end = advance().end
            return .isNull(left, negated: negated, start: left.span.start, end: end)
        }
        let negated = current.isKeyword("NOT") && (lookahead(1).isKeyword("IN") || lookahead(1).isKeyword("LIKE") || lookahead(1).isKeyword("ILIKE") || lookahead(1).isKeyword("BETWEEN"))
        if negated { advance() }
        if accept(keyword: "IN") {
            try expect(symbol: "(", "after IN")
            if current.isKeyword("SELECT") { throw fail("subqueries are not supported", code: .unsupported) }
            var items: [Expression] = []
            repeat { items.append(try parseConcatenation()) } while accept(symbol: ",")
            let end = current.end
            try expect(symbol: ")", "to close the IN list")
            return .inList(left, items, negated: negated, start: left.span.start, end: end)
        }
        if current.isKeyword("LIKE") || current.isKeyword("ILIKE") {
            let caseInsensitive = advance().text == "ilike"
            let pattern = try parseConcatenation()
            if current.isKeyword("ESCAPE") { throw fail("LIKE ... ESCAPE is not supported; the escape character is \\", code: .unsupported) }
            return .like(left, pattern: pattern, negated: negated, caseInsensitive: caseInsensitive, start: left.span.start, end: pattern.span.end)
        }
        if accept(keyword: "BETWEEN") {
            let low = try parseConcatenation()
            try expect(keyword: "AND", "in BETWEEN ... AND ...")
            let high = try parseConcatenation()
            return .between(left, low: low, high: high, negated: negated, start: left.span.start, end: high.span.end)
        }
        return left
    }

    private static let comparisons: [String: BinaryOperator] = [
        "=": .equal, "<>": .notEqual, "!=": .notEqual, "<": .less, "<=": .lessOrEqual, ">": .greater, ">=": .greaterOrEqual,
    ]

    /// `||`, `->` and `->>`: PostgreSQL's "any other operator" level, left-associative, between comparisons and
    /// `+`/`-` (so `payload->>'k' = 'x'` and `payload->'a'->>'b'` read as written).
    private mutating func parseConcatenation() throws(Failure) -> Expression {
        var left = try parseAdditive()
        while current.isSymbol("||") || current.isSymbol("->") || current.isSymbol("->>") {
            let token = advance()
            let right = try parseAdditive()
            left = token.text == "||"
                ? .binary(.concatenate, left, right, operatorStart: token.start, operatorEnd: token.end)
                : .arrow(left, key: right, asText: token.text == "->>", operatorStart: token.start, operatorEnd: token.end)
        }
        return left
    }

    private mutating func parseAdditive() throws(Failure) -> Expression {
        var left = try parseMultiplicative()
        while current.isSymbol("+") || current.isSymbol("-") {
            let token = advance()
            left = .binary(token.text == "+" ? .add : .subtract, left, try parseMultiplicative(), operatorStart: token.start, operatorEnd: token.end)
        }
        return left
    }

    private mutating func parseMultiplicative() throws(Failure) -> Expression {
        var left = try parseUnary()
        while current.isSymbol("*") || current.isSymbol("/") || current.isSymbol("%") {
            let token = advance()
            let op: BinaryOperator = token.text == "*" ? .multiply : token.text == "/" ? .divide : .modulo
            left = .binary(op, left, try parseUnary(), operatorStart: token.start, operatorEnd: token.end)
        }
        return left
    }

    private mutating func parseUnary() throws(Failure) -> Expression {
        if current.isSymbol("-") || current.isSymbol("+") {
            let token = advance()
            let operand = try nested { (parser: inout Parser) throws(Failure) in try parser.parseUnary() }
            // Fold `-5` into a literal so that BIGINT's minimum is writable.
            if token.text == "-", case .literal(.integer(let value), _, let end) = operand {
                return .literal(.integer(0 &- value), start: token.start, end: end)
            }
            if token.text == "-", case .literal(.decimal(let value, let text), _, let end) = operand {
                if text == "9223372036854775808" { return .literal(.integer(Int64.min), start: token.start, end: end) }
                return .literal(.decimal(-value, text: "-" + text), start: token.start, end: end)
            }
            return .unary(token.text == "-" ? .minus : .plus, operand, start: token.start, end: operand.span.end)
        }
        var primary = try parsePrimary()
        while current.isSymbol("[") {
            advance()
            let index = try parseExpression()
            if current.isSymbol(":") { throw fail("array slices ([a:b]) are not supported", code: .unsupported) }
            guard current.isSymbol("]") else { throw fail("expected ']' to close the subscript, found \(describe(current))") }
            let close = advance()
            primary = .element(primary, index: index, start: primary.span.start, end: close.end)
        }
        while current.isSymbol("::") {
            advance()
            let typeStart = current.start
            let (type, _) = try parseTypeName(for: "the cast", allowStruct: false)
            primary = .cast(primary, type, typeStart: typeStart, typeEnd: lookahead(-1).end, start: primary.span.start, end: lookahead(-1).end)
        }
        return primary
    }

    /// `CASE [operand] WHEN … THEN … [WHEN …]… [ELSE …] END`.
    private mutating func parseCase() throws(Failure) -> Expression {
        let start = advance().start
        return try nested { (parser: inout Parser) throws(Failure) in
            var operand: Expression?
            if parser.current.isKeyword("END") || parser.current.isKeyword("ELSE") {
                throw parser.fail("expected WHEN in CASE, found \(parser.describe(parser.current))")
            }
            if !parser.current.isKeyword("WHEN") { operand = try parser.parseExpression() }
            var branches: [CaseBranch] = []
            while parser.accept(keyword: "WHEN") {
                let condition = try parser.parseExpression()
                try parser.expect(keyword: "THEN", "after the WHEN condition")
                branches.append(CaseBranch(condition: condition, result: try parser.parseExpression()))
            }
            guard !branches.isEmpty else { throw parser.fail("expected WHEN in CASE, found \(parser.describe(parser.current))") }
            var otherwise: Expression?
            if parser.accept(keyword: "ELSE") { otherwise = try parser.parseExpression() }
            guard parser.current.isKeyword("END") else { throw parser.fail("expected END to close CASE, found \(parser.describe(parser.current))") }
            let end = parser.advance().end
            return .caseWhen(operand: operand, branches: branches, otherwise: otherwise, start: start, end: end)
        }
    }

    private mutating func parsePrimary() throws(Failure) -> Expression {
        let token = current
        switch token.kind {
        case .number:
            advance()
            if let integer = Int64(token.text) { return .literal(.integer(integer), start: token.start, end: token.end) }
            guard let value = Double(token.text), value.isFinite else {
                throw fail("number \(token.text) is out of range", at: token)
            }
            return .literal(.decimal(value, text: token.text), start: token.start, end: token.end)
        case .string:
            advance()
            return .literal(.string(token.text), start: token.start, end: token.end)
        case .symbol where token.text == "(":
            advance()
            if current.isKeyword("SELECT") { throw fail("subqueries are not supported", code: .unsupported) }
            var inner = try parseExpression()
            try expect(symbol: ")", "to close '('")
            // `(column).field[.field…]`: fields of a STRUCT.
            while accept(symbol: ".") {
                inner = .field(inner, name: try parseIdentifier(what: "a field name after '.'"), start: token.start)
            }
            return inner
        case .symbol where token.text == "*":
            throw fail("'*' is only allowed as the whole select list or in COUNT(*)")
        case .quotedIdentifier:
            return try parseNameOrCall()
        case .word:
            switch token.text {
            case "null":
                advance()
                return .literal(.null, start: token.start, end: token.end)
            case "true", "false":
                advance()
                return .literal(.bool(token.text == "true"), start: token.start, end: token.end)
            case "case":
                return try parseCase()
            case "cast" where lookahead(1).isSymbol("("):
                advance()
                advance()
                let operand = try parseExpression()
                try expect(keyword: "AS", "and the type in CAST(expression AS type)")
                let typeStart = current.start
                let (type, _) = try parseTypeName(for: "the cast", allowStruct: false)
                let typeEnd = lookahead(-1).end
                try expect(symbol: ")", "to close CAST(")
                return .cast(operand, type, typeStart: typeStart, typeEnd: typeEnd, start: token.start, end: lookahead(-1).end)
            case "exists":
                throw fail("subqueries are not supported", code: .unsupported)
            case let word where ["interval", "date", "timestamp", "timestamptz"].contains(word) && lookahead(1).kind == .string:
                return try parseTypedLiteral()
            case "extract" where lookahead(1).isSymbol("("):
                return try parseExtract()
            default:
                if Self.reservedWords.contains(token.text) {
                    throw fail("expected an expression, found the keyword \(token.text.uppercased())")
                }
                return try parseNameOrCall()
            }
        case .end:
            throw fail("expected an expression, found end of file")
        default:
            throw fail("expected an expression, found \(describe(token))")
        }
    }

    /// `INTERVAL 'text' [field [TO field]]`, `TIMESTAMP 'text'`, `TIMESTAMPTZ 'text'`, `DATE 'text'`.
    private mutating func parseTypedLiteral() throws(Failure) -> Expression {
        let typeToken = advance()
        let text = advance()
        let type: TypedLiteralType = switch typeToken.text {
        case "interval": .interval
        case "date": .date
        case "timestamptz": .timestamptz
        default: .timestamp
        }
        var qualifier: SQLInterval.Qualifier?
        if type == .interval, current.kind == .word, let first = SQLInterval.Field(keyword: current.text) {
            advance()
            var last = first
            if accept(keyword: "TO") {
                guard current.kind == .word, let field = SQLInterval.Field(keyword: current.text), field > first else {
                    throw fail("expected a field after \(first) TO (smaller than \(first): ... DAY TO SECOND, HOUR TO MINUTE), found \(describe(current))")
                }
                advance()
                last = field
            }
            qualifier = SQLInterval.Qualifier(first: first, last: last)
        }
        return .typedLiteral(type, text: text.text, qualifier: qualifier, start: typeToken.start, end: lookahead(-1).end)
    }

    /// `EXTRACT(field FROM expression)`, as the call `extract('field', expression)`.
    private mutating func parseExtract() throws(Failure) -> Expression {
        let nameToken = advance()
        advance()
        let field = current
        guard field.kind == .word || field.kind == .string || field.kind == .quotedIdentifier else {
            throw fail("expected a field after EXTRACT( (YEAR, MONTH, DAY, HOUR, MINUTE, SECOND, EPOCH, ...), found \(describe(field))")
        }
        advance()
        try expect(keyword: "FROM", "in EXTRACT(field FROM time)")
        let operand = try parseExpression()
        try expect(symbol: ")", "to close EXTRACT(")
        let name = Identifier(name: "extract", isQuoted: false, start: nameToken.start, end: nameToken.end)
        return .call(
            name: name, arguments: [.literal(.string(field.text), start: field.start, end: field.end), operand], isDistinct: false, filter: nil,
            start: nameToken.start, end: lookahead(-1).end)
    }

    /// `FILTER (WHERE condition)` after an aggregate's arguments, if present.
    private mutating func parseAggregateFilter() throws(Failure) -> Expression? {
        // `count(*) filter` without a parenthesis is an alias named filter.
        guard current.isKeyword("FILTER") && lookahead(1).isSymbol("(") else { return nil }
        advance()
        try expect(symbol: "(", "after FILTER")
        try expect(keyword: "WHERE", "in FILTER (WHERE ...)")
        let condition = try parseExpression()
        try expect(symbol: ")", "to close FILTER (WHERE ...")
        return condition
    }

    /// `name`, `qualifier.name`, or `function(args)`.
    private mutating func parseNameOrCall() throws(Failure) -> Expression {
        let first = try parseIdentifier(what: "a name")
        if current.isSymbol("(") {
            advance()
            if accept(symbol: ")") {
                let end = lookahead(-1).end
                return .call(name: first, arguments: [], isDistinct: false, filter: try parseAggregateFilter(), start: first.start, end: end)
            }
            let isDistinct = accept(keyword: "DISTINCT")
            _ = !isDistinct && accept(keyword: "ALL")
            var arguments: [Expression] = []
            repeat {
                if current.isSymbol("*") {
                    let star = advance()
                    arguments.append(.star(start: star.start, end: star.end))
                } else {
                    arguments.append(try parseExpression())
                }
            } while accept(symbol: ",")
            if current.isKeyword("ORDER") || current.isKeyword("FILTER") {
                throw fail("\(current.text.uppercased()) inside an aggregate call is not supported (FILTER goes after the closing parenthesis)", code: .unsupported)
            }
            try expect(symbol: ")", "to close the arguments of \(first.name)(")
            let end = lookahead(-1).end
            let filter = try parseAggregateFilter()
            if current.isKeyword("OVER") { throw fail("window functions (OVER) are not supported", code: .unsupported) }
            return .call(name: first, arguments: arguments, isDistinct: isDistinct, filter: filter, start: first.start, end: end)
        }
        if accept(symbol: ".") {
            if current.isSymbol("*") { throw fail("qualified '*' (\(first.name).*) is not supported; write * alone", code: .unsupported) }
            let second = try parseIdentifier(what: "a column name after '\(first.name).'")
            return .column(qualifier: first, name: second)
        }
        return .column(qualifier: nil, name: first)
    }
}
