import EddySQL

/// One connection's protocol, from start-up to Terminate: SSL refusal, SCRAM-SHA-256, the simple and the
/// extended query protocol. It does no I/O: each frontend message goes in, the backend messages to send
/// (and whether to close) come out. Only running a query over a view awaits (the checkpoint read).
struct PostgresSession {
    /// What one message produced.
    struct Output {
        var messages: [BackendMessage] = []
        /// Close the connection after sending `messages`.
        var close = false
        var closeReason: PostgresMetrics.CloseReason?
    }

    struct Configuration: Sendable {
        /// When set, clients must prove the password with SCRAM-SHA-256; else every client is let in.
        var verifier: SCRAMVerifier?
        /// The longest a statement may run (the checkpoint read and the query); then `57014`.
        var queryTimeLimit: Duration
    }

    private enum Phase {
        case awaitingStartup
        case awaitingSASLInitial
        case awaitingSASLFinal(SCRAMServerExchange)
        case ready
        case closed
    }

    private struct PreparedStatement {
        var statement: StatementText
        /// One per parameter: declared by Parse, else inferred from where `$n` stands.
        var parameterTypes: [PostgresType]
    }

    private struct Portal {
        var planned: PlannedStatement
        var resultFormats: [Int16]
        /// Rows computed by the first Execute; later ones continue from `sent`.
        var rows: [[SQLValue]]?
        var sent = 0
    }

    let configuration: Configuration
    let dataSource: any PostgresDataSource
    let metrics: PostgresMetrics
    let processID: Int32
    let secretKey: Int32
    private var phase = Phase.awaitingStartup
    private var planner: StatementPlanner?
    private var statements: [String: PreparedStatement] = [:]
    private var portals: [String: Portal] = [:]
    /// After an error in the extended protocol, messages up to Sync are skipped.
    private var skippingUntilSync = false
    /// `I`, `T` or `E`, as ReadyForQuery reports it.
    private var transactionStatus = UInt8(ascii: "I")
    /// Set for a connection over the limit: it is refused once its start-up packet has come.
    private var refusal: PostgresError?

    init(configuration: Configuration, dataSource: any PostgresDataSource, metrics: PostgresMetrics, processID: Int32, secretKey: Int32) {
        self.configuration = configuration
        self.dataSource = dataSource
        self.metrics = metrics
        self.processID = processID
        self.secretKey = secretKey
    }

    /// Refuses the connection with `error` (FATAL) when its start-up packet comes; SSL is still answered first,
    /// so that libpq reads the refusal where it expects an answer.
    mutating func refuse(with error: PostgresError) { refusal = error }

    var isClosed: Bool { if case .closed = phase { true } else { false } }

    /// Handles one message.
    mutating func receive(_ message: FrontendMessage) async -> Output {
        if case .terminate = message {
            phase = .closed
            return Output(messages: [], close: true, closeReason: .client)
        }
        switch phase {
        case .awaitingStartup: return startup(message)
        case .awaitingSASLInitial, .awaitingSASLFinal: return authenticate(message)
        case .ready: return await ready(message)
        case .closed: return Output(close: true)
        }
    }

    /// The answer to a frame that did not decode: FATAL 08P01, then close.
    mutating func protocolViolation(_ violation: PostgresProtocolViolation) -> Output {
        let wasStarting = if case .awaitingStartup = phase { true } else { false }
        phase = .closed
        // Before start-up the client may not even speak the protocol: no framed answer, just close.
        return Output(messages: wasStarting ? [] : [.error(.protocolViolation(violation))], close: true, closeReason: .protocol)
    }

    // MARK: Start-up and authentication

    private mutating func startup(_ message: FrontendMessage) -> Output {
        switch message {
        case .sslRequest, .gssEncryptionRequest:
            return Output(messages: [.encryptionRefused])
        case .cancelRequest:
            // Accepted and closed: queries are bounded by the time limit, and a read of a checkpoint
            // has nothing to undo.
            phase = .closed
            return Output(close: true, closeReason: .client)
        case .startup(let parameters):
            if let refusal {
                phase = .closed
                return Output(messages: [.error(refusal)], close: true)
            }
            planner = StatementPlanner(pipeline: dataSource.pipeline, settings: SessionSettings(startup: parameters), processID: processID)
            guard configuration.verifier != nil else { return Output(messages: welcome()) }
            phase = .awaitingSASLInitial
            return Output(messages: [.authenticationSASL(mechanisms: [SCRAMServerExchange.mechanism])])
        default:
            return protocolViolation(PostgresProtocolViolation("expected a start-up message first"))
        }
    }

    private mutating func authenticate(_ message: FrontendMessage) -> Output {
        guard case .authenticationResponse(let bytes) = message, let verifier = configuration.verifier else {
            return protocolViolation(PostgresProtocolViolation("expected a SASL response during authentication"))
        }
        do throws(SCRAMServerExchange.Failure) {
            switch phase {
            case .awaitingSASLInitial:
                let exchange = try SCRAMServerExchange(verifier: verifier, initialResponse: bytes, serverNonce: SCRAMServerExchange.makeNonce())
                phase = .awaitingSASLFinal(exchange)
                return Output(messages: [.authenticationSASLContinue(Array(exchange.serverFirst.utf8))])
            case .awaitingSASLFinal(let exchange):
                let serverFinal = try exchange.finish(clientFinal: bytes)
                return Output(messages: [.authenticationSASLFinal(Array(serverFinal.utf8))] + welcome())
            default:
                preconditionFailure("authenticate(_:) called in phase \(phase)")
            }
        } catch {
            switch error {
            case .wrongPassword:
                phase = .closed
                let user = planner?.settings.user ?? ""
                return Output(
                    messages: [.error(PostgresError("28P01", "password authentication failed for user \"\(user)\"", severity: .fatal))],
                    close: true, closeReason: .authentication)
            case .malformed(let reason):
                return protocolViolation(PostgresProtocolViolation("SCRAM: \(reason)"))
            }
        }
    }

    private mutating func welcome() -> [BackendMessage] {
        phase = .ready
        let settings = planner!.settings
        return [.authenticationOk]
            + SessionSettings.reported.map { .parameterStatus(name: $0, value: settings.reportedValue($0)) }
            + [.backendKeyData(processID: processID, secretKey: secretKey), .readyForQuery(status: transactionStatus)]
    }

    // MARK: Queries

    private mutating func ready(_ message: FrontendMessage) async -> Output {
        switch message {
        case .query(let text):
            return Output(messages: await simpleQuery(text))
        case .sync:
            skippingUntilSync = false
            if transactionStatus == UInt8(ascii: "I") { portals.removeAll() }
            return Output(messages: [.readyForQuery(status: transactionStatus)])
        case .flush:
            return Output()
        case .parse, .bind, .describe, .execute, .close:
            guard !skippingUntilSync else { return Output() }
            switch await extended(message) {
            case .success(let messages): return Output(messages: messages)
            case .failure(let error):
                skippingUntilSync = true
                failTransaction()
                return Output(messages: [.error(error)])
            }
        case .startup, .sslRequest, .gssEncryptionRequest, .cancelRequest, .authenticationResponse:
            return protocolViolation(PostgresProtocolViolation("unexpected start-up or authentication message after start-up"))
        case .terminate:
            preconditionFailure("terminate is handled before the phase")
        }
    }

    private mutating func simpleQuery(_ text: String) async -> [BackendMessage] {
        var messages: [BackendMessage] = []
        let pieces = StatementText.split(text)
        if pieces.isEmpty { messages.append(.emptyQueryResponse) }
        for piece in pieces {
            let statement = StatementText(piece.text)
            let base = StatementText(text).position(ofOffset: piece.offset) - 1
            let planned: PlannedStatement
            switch plan(statement, basePosition: base) {
            case .success(let value): planned = value
            case .failure(let error):
                messages.append(.error(error))
                failTransaction()
                return messages + [.readyForQuery(status: transactionStatus)]
            }
            switch await run(planned) {
            case .success(let (rows, tag)):
                if let columns = planned.columns {
                    messages.append(.rowDescription(columns, formats: []))
                    let types = columns.map(\.type)
                    messages += rows.map { .dataRow($0, types: types, formats: []) }
                }
                messages.append(tag.map { .commandComplete(tag: $0) } ?? .emptyQueryResponse)
            case .failure(let error):
                messages.append(.error(error))
                failTransaction()
                return messages + [.readyForQuery(status: transactionStatus)]
            }
        }
        return messages + [.readyForQuery(status: transactionStatus)]
    }

    private mutating func extended(_ message: FrontendMessage) async -> Result<[BackendMessage], PostgresError> {
        switch message {
        case .parse(let name, let query, let declared):
            if !name.isEmpty, statements[name] != nil {
                return .failure(PostgresError("42P05", "prepared statement \"\(name)\" already exists"))
            }
            let statement = StatementText(query)
            let types = ParameterTypes.effective(declared: declared, statement: statement, views: dataSource.pipeline.views)
            // Bound now with stand-in values, so that a statement that cannot bind fails at Parse, as in PostgreSQL.
            if case .failure(let error) = plan(StatementText(ParameterTypes.standIns(statement, types: types))) { return .failure(error) }
            statements[name] = PreparedStatement(statement: statement, parameterTypes: types)
            return .success([.parseComplete])

        case .bind(let bind):
            guard let prepared = statements[bind.statement] else {
                return .failure(PostgresError("26000", "prepared statement \"\(bind.statement)\" does not exist"))
            }
            guard bind.parameters.count == prepared.parameterTypes.count else {
                return .failure(PostgresError("08P01", "bind message supplies \(bind.parameters.count) parameters, but prepared statement \"\(bind.statement)\" requires \(prepared.parameterTypes.count)"))
            }
            guard [0, 1, bind.parameters.count].contains(bind.parameterFormats.count) else {
                return .failure(PostgresError("08P01", "bind message has \(bind.parameterFormats.count) parameter formats but \(bind.parameters.count) parameters"))
            }
            var literals: [String] = []
            for (index, value) in bind.parameters.enumerated() {
                switch ParameterTypes.literal(value, type: prepared.parameterTypes[index], binary: BackendMessage.format(bind.parameterFormats, index) == 1, number: index + 1) {
                case .success(let literal): literals.append(literal)
                case .failure(let error): return .failure(error)
                }
            }
            let text = prepared.statement.substitutingPlaceholders { literals[$0 - 1] }
            switch plan(StatementText(text)) {
            case .failure(let error): return .failure(error)
            case .success(let planned):
                let columnCount = planned.columns?.count ?? 0
                guard [0, 1, columnCount].contains(bind.resultFormats.count) else {
                    return .failure(PostgresError("08P01", "bind message has \(bind.resultFormats.count) result formats but the query has \(columnCount) columns"))
                }
                portals[bind.portal] = Portal(planned: planned, resultFormats: bind.resultFormats)
                return .success([.bindComplete])
            }

        case .describe(.statement, let name):
            guard let prepared = statements[name] else { return .failure(PostgresError("26000", "prepared statement \"\(name)\" does not exist")) }
            let parameters = BackendMessage.parameterDescription(prepared.parameterTypes.map(\.oid))
            switch plan(StatementText(ParameterTypes.standIns(prepared.statement, types: prepared.parameterTypes))) {
            case .failure(let error): return .failure(error)
            case .success(let planned):
                return .success([parameters, planned.columns.map { .rowDescription($0, formats: []) } ?? .noData])
            }

        case .describe(.portal, let name):
            guard let portal = portals[name] else { return .failure(PostgresError("34000", "portal \"\(name)\" does not exist")) }
            return .success([portal.planned.columns.map { .rowDescription($0, formats: portal.resultFormats) } ?? .noData])

        case .execute(let name, let maxRows):
            guard var portal = portals[name] else { return .failure(PostgresError("34000", "portal \"\(name)\" does not exist")) }
            var tag: String?
            if portal.rows == nil {
                switch await run(portal.planned) {
                case .failure(let error): return .failure(error)
                case .success(let (rows, resultTag)):
                    portal.rows = rows
                    tag = resultTag
                }
            }
            guard let columns = portal.planned.columns else {
                portals[name] = portal
                return .success([tag.map { .commandComplete(tag: $0) } ?? .emptyQueryResponse])
            }
            let rows = portal.rows ?? []
            let end = maxRows > 0 ? min(rows.count, portal.sent + Int(maxRows)) : rows.count
            let types = columns.map(\.type)
            var messages: [BackendMessage] = rows[portal.sent..<end].map { .dataRow($0, types: types, formats: portal.resultFormats) }
            portal.sent = end
            messages.append(end < rows.count ? .portalSuspended : .commandComplete(tag: "SELECT \(rows.count)"))
            portals[name] = portal
            return .success(messages)

        case .close(.statement, let name):
            statements[name] = nil
            return .success([.closeComplete])
        case .close(.portal, let name):
            portals[name] = nil
            return .success([.closeComplete])
        default:
            preconditionFailure("extended(_:) called with \(message)")
        }
    }

    /// Plans a statement; in a failed transaction block only its end is accepted.
    private mutating func plan(_ statement: StatementText, basePosition: Int = 0) -> Result<PlannedStatement, PostgresError> {
        if transactionStatus == UInt8(ascii: "E"), let first = statement.firstWord, !["rollback", "abort", "commit", "end"].contains(first) {
            return .failure(PostgresError("25P02", "current transaction is aborted, commands ignored until end of transaction block"))
        }
        return planner!.plan(statement, basePosition: basePosition)
    }

    /// Runs a planned statement: its rows and command tag (nil for an empty statement), or an error.
    private mutating func run(_ planned: PlannedStatement) async -> Result<([[SQLValue]], String?), PostgresError> {
        switch planned {
        case .empty:
            return .success(([], nil))
        case .command(let tag, let effect):
            metrics.recordQuery(.ok)
            switch effect {
            case .none: break
            case .begin: transactionStatus = UInt8(ascii: "T")
            case .end:
                let failed = transactionStatus == UInt8(ascii: "E")
                transactionStatus = UInt8(ascii: "I")
                if failed { return .success(([], "ROLLBACK")) }
            }
            return .success(([], tag))
        case .rows(_, let rows):
            metrics.recordQuery(.ok)
            return .success((rows, "SELECT \(rows.count)"))
        case .viewQuery(let query, let offset, _):
            let dataSource = dataSource
            let outcome = await TimeLimit.run(configuration.queryTimeLimit) { () async throws -> [[SQLValue]] in
                let viewRows = try await dataSource.checkpointedRows(of: query.viewName) ?? []
                try Task.checkCancellation()
                return query.run(on: viewRows)
            }
            switch outcome {
            case .success(let rows):
                metrics.recordQuery(.ok)
                let visible = Array(rows.dropFirst(offset))
                return .success((visible, "SELECT \(visible.count)"))
            case .failure(let error) where error is TimeLimit.Exceeded:
                metrics.recordQuery(.timeout)
                return .failure(PostgresError("57014", "canceling statement due to statement timeout (\(configuration.queryTimeLimit))"))
            case .failure(let error):
                metrics.recordQuery(.error)
                return .failure(PostgresError("58000", "reading view \(query.viewName) from the last checkpoint failed: \(error)"))
            }
        }
    }

    private mutating func failTransaction() {
        if transactionStatus == UInt8(ascii: "T") { transactionStatus = UInt8(ascii: "E") }
    }
}
