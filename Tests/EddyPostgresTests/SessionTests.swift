import Foundation
import EddySQL
import Testing

@testable import EddyPostgres

@Suite("PostgreSQL session: start-up, queries, extended protocol, errors (no I/O)")
struct SessionTests {
    @Test("start-up without a password: AuthenticationOk, settings, key, ReadyForQuery")
    func startupWithoutPassword() async {
        var driver = SessionDriver()
        #expect(await driver.send(.sslRequest).messages == [.encryptionRefused])
        let messages = await driver.start()
        #expect(messages.first == .authenticationOk)
        #expect(messages.contains(.parameterStatus(name: "server_version", value: SessionSettings.serverVersion)))
        #expect(messages.contains(.parameterStatus(name: "client_encoding", value: "UTF8")))
        #expect(messages.suffix(2) == [.backendKeyData(processID: 7, secretKey: 11), .readyForQuery(status: UInt8(ascii: "I"))])
    }

    @Test("a query over a view: the rows eddy query's evaluator gives, ORDER BY, LIMIT and OFFSET")
    func viewQuery() async {
        var driver = SessionDriver()
        _ = await driver.start()
        let all = await driver.query("SELECT * FROM events_statisics_mv")
        #expect(all.columnNames == ["event", "count"])
        #expect(all.rows == exampleRows["events_statisics_mv"])
        #expect(all.contains(.commandComplete(tag: "SELECT 4")))
        let paged = await driver.query("SELECT event, count FROM public.events_statisics_mv WHERE count > 5 ORDER BY count DESC LIMIT 2 OFFSET 1;")
        #expect(paged.rows == [[.string("submit"), .int(19)], [.string("scroll"), .int(7)]])
        #expect(paged.last == .readyForQuery(status: UInt8(ascii: "I")))
    }

    @Test("errors carry SQLSTATE and the position of the offending token")
    func errors() async {
        var driver = SessionDriver()
        _ = await driver.start()
        let missing = await driver.query("SELECT * FROM events_statistics_mv")
        #expect(missing.error?.sqlState == "42P01")
        #expect(missing.error?.position == 15)
        #expect(missing.error?.message.contains("did you mean 'events_statisics_mv'") == true)
        let column = await driver.query("SELECT 1; SELECT nope FROM events_statisics_mv")
        #expect(column.error?.sqlState == "42703")
        #expect(column.error?.position == 18)
        #expect(column.rows == [[.int(1)]])
        #expect(await driver.query("DROP TABLE x").error?.sqlState == "0A000")
        #expect(await driver.query("SHOW nonsense").error?.sqlState == "42704")
        // The session goes on after errors.
        #expect(await driver.query("SELECT count FROM events_statisics_mv WHERE event = 'click'").rows == [[.int(48)]])
    }

    @Test("SHOW MATERIALIZED VIEWS, SHOW SOURCES, SHOW SINKS, DESCRIBE, SET and SHOW, version()")
    func catalogueStatements() async {
        var driver = SessionDriver()
        _ = await driver.start()
        #expect(await driver.query("SHOW MATERIALIZED VIEWS").rows == [[.string("events_statisics_mv")], [.string("latest")]])
        #expect(await driver.query("show sources").rows == [[.string("user_events")]])
        #expect(await driver.query("SHOW SINKS").rows == [[.string("redis_sink")]])
        let described = await driver.query("DESCRIBE events_statisics_mv")
        #expect(described.columnNames == ["Name", "Type", "Is Hidden", "Description"])
        #expect(described.rows.map { $0.prefix(2).map(\.text) } == [["event", "character varying"], ["count", "bigint"], ["primary key", "event"]])
        _ = await driver.query("SET application_name = 'grafana'")
        #expect(await driver.query("SHOW application_name").rows == [[.string("grafana")]])
        let version = await driver.query("SELECT pg_catalog.version(), current_schema(), current_user AS who")
        #expect(version.columnNames == ["version", "current_schema", "who"])
        #expect(version.rows.first?[1] == .string("public"))
        #expect(version.rows.first?[2] == .string("analyst"))
    }

    @Test("psql's \\d catalogue queries are answered from the views")
    func psqlCatalogue() async {
        var driver = SessionDriver()
        _ = await driver.start()
        let list = await driver.query("""
            SELECT n.nspname as "Schema", c.relname as "Name",
              CASE c.relkind WHEN 'r' THEN 'table' WHEN 'm' THEN 'materialized view' END as "Type",
              pg_catalog.pg_get_userbyid(c.relowner) as "Owner"
            FROM pg_catalog.pg_class c LEFT JOIN pg_catalog.pg_namespace n ON n.oid = c.relnamespace
            WHERE c.relkind IN ('r','p','v','m','S','f','') AND n.nspname <> 'pg_catalog' ORDER BY 1,2;
            """)
        #expect(list.rows == [
            [.string("public"), .string("events_statisics_mv"), .string("materialized view"), .string("analyst")],
            [.string("public"), .string("latest"), .string("materialized view"), .string("analyst")],
        ])
        let views = await driver.query("SELECT n.nspname as \"Schema\", c.relname as \"Name\", 'x' as \"Type\" FROM pg_catalog.pg_class c WHERE c.relkind IN ('v','') ORDER BY 1,2;")
        #expect(views.rows.isEmpty)
        #expect(views.error == nil)
        let found = await driver.query("""
            SELECT c.oid, n.nspname, c.relname FROM pg_catalog.pg_class c LEFT JOIN pg_catalog.pg_namespace n ON n.oid = c.relnamespace
            WHERE c.relname OPERATOR(pg_catalog.~) '^(latest)$' COLLATE pg_catalog.default AND pg_catalog.pg_table_is_visible(c.oid) ORDER BY 2, 3;
            """)
        #expect(found.rows == [[.int(16_385), .string("public"), .string("latest")]])
        let columns = await driver.query("""
            SELECT a.attname, pg_catalog.format_type(a.atttypid, a.atttypmod), a.attnotnull FROM pg_catalog.pg_attribute a
            WHERE a.attrelid = '16385' AND a.attnum > 0 AND NOT a.attisdropped ORDER BY a.attnum;
            """)
        #expect(columns.rows == [[.string("event"), .string("character varying"), .bool(false)], [.string("last_seen"), .string("timestamp without time zone"), .bool(false)]])
        let unknown = await driver.query("SELECT t.oid, t.typname AS name FROM pg_catalog.pg_type t WHERE t.oid = 99999")
        #expect(unknown.columnNames == ["oid", "name"])
        #expect(unknown.rows.isEmpty)
    }

    @Test("extended protocol: Parse/Bind/Describe/Execute/Sync with parameters, binary results, suspension")
    func extendedProtocol() async {
        var driver = SessionDriver()
        _ = await driver.start()
        var messages: [BackendMessage] = []
        for message: FrontendMessage in [
            .parse(statement: "s1", query: "SELECT event, count FROM events_statisics_mv WHERE count >= $1 ORDER BY count LIMIT $2", parameterTypes: []),
            .describe(.statement, name: "s1"),
            .bind(.init(portal: "p", statement: "s1", parameterFormats: [1, 0], parameters: [[0, 0, 0, 0, 0, 0, 0, 7], Array("10".utf8)], resultFormats: [1])),
            .describe(.portal, name: "p"),
            .execute(portal: "p", maxRows: 2),
            .execute(portal: "p", maxRows: 2),
            .sync,
        ] {
            messages += await driver.send(message).messages
        }
        #expect(messages.first == .parseComplete)
        // Parameter types inferred from the column compared (count: bigint) and from LIMIT.
        #expect(messages[1] == .parameterDescription([20, 20]))
        #expect(messages.contains(.rowDescription([ResultColumn(name: "event", type: .varchar), ResultColumn(name: "count", type: .int8)], formats: [1])))
        #expect(messages.rows == [[.string("scroll"), .int(7)], [.string("submit"), .int(19)], [.string("click"), .int(48)]])
        #expect(messages.contains(.portalSuspended))
        #expect(messages.contains(.commandComplete(tag: "SELECT 3")))
        #expect(messages.last == .readyForQuery(status: UInt8(ascii: "I")))
    }

    @Test("an error in the extended protocol skips to Sync; a transaction block reports T and E")
    func extendedErrorsAndTransactions() async {
        var driver = SessionDriver()
        _ = await driver.start()
        #expect(await driver.query("BEGIN").last == .readyForQuery(status: UInt8(ascii: "T")))
        let failed = await driver.send(.parse(statement: "", query: "SELECT nope FROM events_statisics_mv", parameterTypes: [])).messages
        #expect(failed.error?.sqlState == "42703")
        #expect(await driver.send(.bind(.init(portal: "", statement: "", parameterFormats: [], parameters: [], resultFormats: []))).messages.isEmpty)
        #expect(await driver.send(.sync).messages == [.readyForQuery(status: UInt8(ascii: "E"))])
        #expect(await driver.query("SELECT 1").error?.sqlState == "25P02")
        #expect(await driver.query("ROLLBACK").last == .readyForQuery(status: UInt8(ascii: "I")))
        let text = await driver.send(.parse(statement: "", query: "SELECT count FROM events_statisics_mv WHERE event = $1", parameterTypes: [])).messages
        #expect(text == [.parseComplete])
        let bound = await driver.send(.bind(.init(portal: "", statement: "", parameterFormats: [], parameters: [Array("it's".utf8)], resultFormats: []))).messages
        #expect(bound == [.bindComplete])
        #expect(await driver.send(.execute(portal: "", maxRows: 0)).messages == [.commandComplete(tag: "SELECT 0")])
    }

    @Test("SCRAM-SHA-256: the right password is let in, a wrong one refused with 28P01")
    func passwordAuthentication() async throws {
        for (password, accepted) in [("s3cret", true), ("wrong", false)] {
            var driver = SessionDriver(password: "s3cret")
            #expect(await driver.start() == [.authenticationSASL(mechanisms: ["SCRAM-SHA-256"])])
            let clientNonce = "abcdefghijklmnop"
            let clientFirst = "n,,n=,r=\(clientNonce)"
            var initial = Array("SCRAM-SHA-256".utf8) + [0, 0, 0, 0, UInt8(clientFirst.utf8.count)]
            initial += Array(clientFirst.utf8)
            let continued = await driver.send(.authenticationResponse(initial)).messages
            guard case .authenticationSASLContinue(let serverFirstBytes) = continued.first else {
                Issue.record("expected SASLContinue, got \(continued)")
                return
            }
            let serverFirst = String(decoding: serverFirstBytes, as: UTF8.self)
            let fields = Dictionary(uniqueKeysWithValues: serverFirst.split(separator: ",").map { ($0.prefix(1), String($0.dropFirst(2))) })
            let salt = Array(Data(base64Encoded: fields["s"]!)!)
            let salted = SHA256.pbkdf2(password: Array(password.utf8), salt: salt, iterations: Int(fields["i"]!)!)
            let clientKey = SHA256.hmac(key: salted, message: Array("Client Key".utf8))
            let withoutProof = "c=biws,r=\(fields["r"]!)"
            let authMessage = Array("n=,r=\(clientNonce),\(serverFirst),\(withoutProof)".utf8)
            let signature = SHA256.hmac(key: SHA256.hash(clientKey), message: authMessage)
            let proof = Data(zip(clientKey, signature).map { $0 ^ $1 }).base64EncodedString()
            let final = await driver.send(.authenticationResponse(Array("\(withoutProof),p=\(proof)".utf8)))
            if accepted {
                #expect(final.messages.contains(.authenticationOk))
                #expect(final.messages.last == .readyForQuery(status: UInt8(ascii: "I")))
                #expect(!final.close)
            } else {
                #expect(final.messages.error?.sqlState == "28P01")
                #expect(final.close)
            }
        }
    }

    @Test("a statement over its time limit fails with 57014 and the session goes on")
    func queryTimeLimit() async {
        var driver = SessionDriver(queryTimeLimit: .milliseconds(50), delay: .seconds(2))
        _ = await driver.start()
        let started = ContinuousClock.now
        let answer = await driver.query("SELECT * FROM events_statisics_mv")
        #expect(answer.error?.sqlState == "57014")
        #expect(ContinuousClock.now - started < .seconds(1))
        #expect(await driver.query("SELECT 2").rows == [[.int(2)]])
    }
}


