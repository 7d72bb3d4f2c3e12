import EddySQL

/// What a statement turned into before any row is read: a fixed answer, or a query over a view whose rows
/// come from the last checkpoint when it runs.
enum PlannedStatement: Sendable {
    /// How a statement moves the (nominal) transaction block: Eddy is read-only, but clients such as psycopg
    /// open one and watch `ReadyForQuery`'s status.
    enum TransactionEffect: Sendable { case none, begin, end }

    /// Nothing but whitespace and comments.
    case empty
    case command(tag: String, effect: TransactionEffect)
    /// Rows known already (settings, catalogue, `SHOW`, `DESCRIBE`, `SELECT version()`).
    case rows(columns: [ResultColumn], rows: [[SQLValue]])
    /// A `SELECT` over a view, bound by Eddy's SQL front end. `offset` rows are skipped after `query` ran
    /// (its `limit` already counts them).
    case viewQuery(Query, offset: Int, columns: [ResultColumn])

    /// The result columns; nil for a statement that returns no rows.
    var columns: [ResultColumn]? {
        switch self {
        case .empty, .command: nil
        case .rows(let columns, _), .viewQuery(_, _, let columns): columns
        }
    }
}

/// The session's settings, as `SET`, `SHOW` and `current_setting()` see them and `ParameterStatus` reports them.
struct SessionSettings: Sendable {
    /// The version clients are told (`server_version`): PostgreSQL 13's catalogue is what the answers mimic.
    static let serverVersion = "13.0"
    static let versionText = "PostgreSQL 13.0 on x86_64-pc-linux-gnu (Eddy streaming SQL: read-only views over committed checkpoints)"

    var user: String
    var database: String
    /// Lower-cased name → value.
    private(set) var values: [String: String]

    /// The ones sent as `ParameterStatus` after start-up, in this order (what libpq and drivers read).
    static let reported = [
        "server_version", "server_encoding", "client_encoding", "application_name", "DateStyle", "IntervalStyle", "TimeZone",
        "integer_datetimes", "standard_conforming_strings", "is_superuser", "session_authorization",
    ]

    init(startup: [String: String]) {
        user = startup["user"] ?? "eddy"
        database = startup["database"] ?? user
        values = [
            "server_version": Self.serverVersion, "server_version_num": "130000", "server_encoding": "UTF8", "client_encoding": "UTF8",
            "application_name": startup["application_name"] ?? "", "datestyle": "ISO, MDY", "intervalstyle": "postgres", "timezone": "UTC",
            "integer_datetimes": "on", "standard_conforming_strings": "on", "is_superuser": "off", "session_authorization": user,
            "search_path": "\"$user\", public", "transaction_isolation": "read committed", "default_transaction_isolation": "read committed",
            "transaction_read_only": "on", "default_transaction_read_only": "on", "max_identifier_length": "63", "lc_collate": "C",
            "lc_ctype": "C", "extra_float_digits": "1", "statement_timeout": "0", "lock_timeout": "0", "idle_in_transaction_session_timeout": "0",
        ]
        if let encoding = startup["client_encoding"] { values["client_encoding"] = encoding }
    }

    func value(_ name: String) -> String? { values[name.lowercased()] }

    /// The reported name's current value, for `ParameterStatus`.
    func reportedValue(_ name: String) -> String { values[name.lowercased()] ?? "" }

    mutating func set(_ name: String, _ value: String) { values[name.lowercased()] = value }

    mutating func reset(_ name: String) {
        let fresh = SessionSettings(startup: ["user": user, "database": database])
        if name == "all" { values = fresh.values } else { values[name] = fresh.values[name] }
    }

    var all: [(String, String)] { values.sorted { $0.key < $1.key }.map { ($0.key, $0.value) } }
}

/// Turns one statement's text into a `PlannedStatement`, or an `ErrorResponse` with SQLSTATE and position.
///
/// Queries over views go through Eddy's SQL front end (`PipelineCompiler.compileQuery`), exactly as
/// `eddy query` binds them; everything else a client says on its own (`SET`, `SHOW`, transaction
/// statements, `version()`, catalogue reads) is answered here or by `CatalogueAnswers`.
struct StatementPlanner {
    let pipeline: Pipeline
    var settings: SessionSettings
    let processID: Int32

    /// The views a query may name: derived tables (subqueries of other views) have no name of their own.
    var queryableViews: [View] { pipeline.views.filter { !$0.isDerivedTable } }

    /// Plans `statement`; `basePosition` is its first character's position in the text the client sent
    /// (0 for a whole message), so that error positions point into what the client sent.
    mutating func plan(_ statement: StatementText, basePosition: Int = 0) -> Result<PlannedStatement, PostgresError> {
        guard let first = statement.tokens.first else { return .success(.empty) }
        guard first.kind == .word else {
            return .failure(PostgresError("42601", "syntax error at or near \"\(first.text)\"", position: basePosition + 1))
        }
        switch first.text {
        case "select", "with", "table", "values":
            return planSelect(statement, basePosition: basePosition)
        case "set":
            return planSet(statement)
        case "reset":
            settings.reset(statement.tokens.dropFirst().first?.text.lowercased() ?? "all")
            return .success(.command(tag: "RESET", effect: .none))
        case "show":
            return planShow(statement, basePosition: basePosition)
        case "describe", "desc":
            return describe(statement, basePosition: basePosition)
        case "begin", "start":
            return .success(.command(tag: "BEGIN", effect: .begin))
        case "commit", "end":
            return .success(.command(tag: "COMMIT", effect: .end))
        case "rollback", "abort":
            return .success(.command(tag: "ROLLBACK", effect: .end))
        case "discard":
            return .success(.command(tag: "DISCARD ALL", effect: .none))
        case "deallocate":
            return .success(.command(tag: "DEALLOCATE", effect: .none))
        case "unlisten":
            return .success(.command(tag: "UNLISTEN", effect: .none))
        case "close":
            return .success(.command(tag: "CLOSE CURSOR", effect: .none))
        default:
            return .failure(PostgresError(
                "0A000", "\(first.text.uppercased()) is not supported: Eddy's PostgreSQL side only reads views",
                position: basePosition + statement.position(ofOffset: first.start),
                hint: "define sources, views and sinks in the pipeline file; query views with SELECT"))
        }
    }

    // MARK: SELECT

    private func planSelect(_ statement: StatementText, basePosition: Int) -> Result<PlannedStatement, PostgresError> {
        let list = SelectList(statement)
        if !list.hasFrom {
            let answer = ScalarSelect.answer(list, settings: settings, processID: processID, basePosition: basePosition)
            // `SELECT pg_catalog.pg_get_viewdef(…)` and the like: catalogue functions without a FROM.
            if case .failure = answer, CatalogueAnswers.isCatalogueQuery(statement) {
                return .success(CatalogueAnswers(views: queryableViews, user: settings.user).answer(statement, list: list))
            }
            return answer
        }
        if CatalogueAnswers.isCatalogueQuery(statement) {
            return .success(CatalogueAnswers(views: queryableViews, user: settings.user).answer(statement, list: list))
        }
        return planViewQuery(statement, basePosition: basePosition)
    }

    /// Binds a SELECT over a view with Eddy's SQL front end. Removes what that front end does not read yet,
    /// keeping every other character where it was so that its error positions stay right: `OFFSET n` (applied
    /// here after the query ran) and a `public.` qualifier (Eddy has one schema).
    private func planViewQuery(_ statement: StatementText, basePosition: Int) -> Result<PlannedStatement, PostgresError> {
        let tokens = statement.tokens
        var blanked: [Range<Int>] = []
        var offset = 0
        for (index, token) in tokens.enumerated() {
            if token.isWord("offset") {
                guard index + 1 < tokens.count, tokens[index + 1].kind == .number, let count = Int(tokens[index + 1].text), count >= 0 else {
                    return .failure(PostgresError("42601", "OFFSET needs a non-negative whole number", position: basePosition + statement.position(ofOffset: token.start)))
                }
                var end = tokens[index + 1].end
                if index + 2 < tokens.count, tokens[index + 2].isWord("row") || tokens[index + 2].isWord("rows") { end = tokens[index + 2].end }
                blanked.append(token.start..<end)
                offset = count
            }
            if (token.isWord("public") || (token.kind == .quotedName && token.text == "public")) && index + 1 < tokens.count && tokens[index + 1].text == "."
                && index > 0 && (tokens[index - 1].isWord("from") || tokens[index - 1].isWord("join"))
            {
                blanked.append(token.start..<tokens[index + 1].end)
            }
        }
        let text = statement.blanking(blanked)
        let (compiled, errors) = PipelineCompiler.compileQuery(text, views: queryableViews)
        guard var query = compiled, errors.isEmpty else {
            let error = errors.first
            return .failure(PostgresError(
                error.map(Self.sqlState) ?? "42601", error?.message ?? "the query does not bind",
                position: error.map { basePosition + statement.position(ofOffset: $0.range.start.offset) }))
        }
        if offset > 0, let limit = query.limit { query.limit = limit + offset }
        let columns = query.columns.map { ResultColumn(name: $0.name, type: PostgresType($0.type)) }
        return .success(.viewQuery(query, offset: offset, columns: columns))
    }

    /// The SQLSTATE of an error of Eddy's SQL front end.
    static func sqlState(_ error: SQLError) -> String {
        switch error.code {
        case .lexical, .syntax: "42601"
        case .unknownName: error.message.contains("view") || error.message.contains("source") ? "42P01" : "42703"
        case .unsupported: "0A000"
        case .typeMismatch: "42804"
        case .grouping: "42803"
        case .duplicateName: "42710"
        case .missingEnvironmentVariable, .invalidOption, .invalidTemplate: "22023"
        }
    }

    // MARK: SET and SHOW

    private mutating func planSet(_ statement: StatementText) -> Result<PlannedStatement, PostgresError> {
        var tokens = Array(statement.tokens.dropFirst())
        if let first = tokens.first, first.isWord("session") || first.isWord("local") { tokens.removeFirst() }
        // SET TIME ZONE x, SET SESSION CHARACTERISTICS …, SET TRANSACTION …: accepted, nothing to keep.
        guard tokens.count >= 2, tokens[0].kind == .word || tokens[0].kind == .quotedName else { return .success(.command(tag: "SET", effect: .none)) }
        var name = tokens[0].text
        var rest = tokens.dropFirst()
        while rest.count >= 2, rest.first?.text == "." {
            name += "." + rest.dropFirst().first!.text
            rest = rest.dropFirst(2)
        }
        if let equals = rest.first, equals.text == "=" || equals.isWord("to") { rest = rest.dropFirst() }
        let value = rest.map(\.text).filter { $0 != "," }.joined(separator: ", ")
        if name == "time" {
            settings.set("timezone", value.replacingOccurrences(of: "zone, ", with: ""))
        } else if value.lowercased() == "default" {
            settings.reset(name.lowercased())
        } else {
            settings.set(name, value)
        }
        return .success(.command(tag: "SET", effect: .none))
    }

    private func planShow(_ statement: StatementText, basePosition: Int) -> Result<PlannedStatement, PostgresError> {
        let words = statement.tokens.dropFirst().map { $0.text.lowercased() }
        let nameColumn = [ResultColumn(name: "Name", type: .varchar)]
        func names(_ list: [String]) -> PlannedStatement { .rows(columns: nameColumn, rows: list.map { [.string($0)] }) }
        switch words.joined(separator: " ") {
        case "materialized views":
            return .success(names(queryableViews.map(\.name)))
        case "sources":
            return .success(names(pipeline.sources.filter { !$0.isTable }.map(\.name)))
        case "tables":
            return .success(names(pipeline.sources.filter(\.isTable).map(\.name)))
        case "sinks":
            return .success(names(pipeline.sinks.map(\.name)))
        case "views", "indexes", "connections", "functions":
            return .success(names([]))
        case "databases":
            return .success(names([settings.database]))
        case "schemas":
            return .success(names(["public"]))
        case "all":
            let columns = [ResultColumn(name: "name", type: .text), ResultColumn(name: "setting", type: .text), ResultColumn(name: "description", type: .text)]
            return .success(.rows(columns: columns, rows: settings.all.map { [.string($0.0), .string($0.1), .string("")] }))
        default:
            let name = statement.tokens.dropFirst().map(\.text).joined()
            let key = name == "timezone" || words == ["time", "zone"] ? "timezone" : name
            guard let value = settings.value(key) else {
                let position = statement.tokens.dropFirst().first.map { basePosition + statement.position(ofOffset: $0.start) }
                return .failure(PostgresError("42704", "unrecognized configuration parameter \"\(name)\"", position: position))
            }
            return .success(.rows(columns: [ResultColumn(name: key, type: .text)], rows: [[.string(value)]]))
        }
    }

    /// `DESCRIBE view` as RisingWave answers it: a row per column (name, type, hidden, description), then
    /// the primary key (the view's GROUP BY columns).
    private func describe(_ statement: StatementText, basePosition: Int) -> Result<PlannedStatement, PostgresError> {
        let nameTokens = statement.tokens.dropFirst().filter { $0.kind == .word || $0.kind == .quotedName }
        guard let nameToken = nameTokens.last else {
            return .failure(PostgresError("42601", "DESCRIBE needs a view name", position: basePosition + statement.text.count + 1))
        }
        let columns = ["Name", "Type", "Is Hidden", "Description"].map { ResultColumn(name: $0, type: .varchar) }
        if let view = queryableViews.first(where: { $0.name == nameToken.text }) {
            var rows: [[SQLValue]] = view.outputColumns.map { [.string($0.name), .string(PostgresType($0.type).name), .string("false"), .null] }
            let keys = view.outputColumns.filter { if case .groupKey = $0.expression { true } else { false } }.map(\.name)
            if !keys.isEmpty { rows.append([.string("primary key"), .string(keys.joined(separator: ", ")), .null, .null]) }
            return .success(.rows(columns: columns, rows: rows))
        }
        if let source = pipeline.source(named: nameToken.text) {
            let rows: [[SQLValue]] = source.columns.map { [.string($0.name), .string(PostgresType(declared: $0.type).name), .string("false"), .null] }
            return .success(.rows(columns: columns, rows: rows))
        }
        return .failure(PostgresError(
            "42P01", "relation \"\(nameToken.text)\" does not exist",
            position: basePosition + statement.position(ofOffset: nameToken.start)))
    }
}

extension PostgresType {
    /// The wire type of a declared source column.
    init(declared type: SQLType) {
        switch type {
        case .varchar, .jsonb: self = .varchar
        case .smallint: self = .int2
        case .integer: self = .int4
        case .bigint: self = .int8
        case .real: self = .float4
        case .double: self = .float8
        case .decimal: self = .numeric
        case .boolean: self = .bool
        case .timestamp, .timestamptz: self = .timestamp
        case .date: self = .date
        }
    }
}
