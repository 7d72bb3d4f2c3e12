import EddyPostgres
import EddySQL
import NIOCore
import Testing

@testable import EddyPostgres

/// The example's pipeline (one view: event, count), compiled by Eddy's SQL front end.
let examplePipeline: Pipeline = {
    let text = """
        CREATE SOURCE user_events (event_timestamp TIMESTAMP, user VARCHAR, page VARCHAR, event VARCHAR)
          WITH (connector='kafka', topic='test', properties.bootstrap.server='127.0.0.1:9092') FORMAT PLAIN ENCODE JSON;
        CREATE MATERIALIZED VIEW events_statisics_mv AS SELECT event, COUNT(*) FROM user_events GROUP BY event;
        CREATE MATERIALIZED VIEW latest AS SELECT event, MAX(event_timestamp) AS last_seen FROM user_events GROUP BY event;
        CREATE SINK redis_sink FROM events_statisics_mv WITH (connector='redis', primary_key='event', redis.url='redis://127.0.0.1:6379')
          FORMAT PLAIN ENCODE TEMPLATE (key_format='{event}', value_format='{count}');
        """
    let result = PipelineCompiler.compile(text: text, file: "test.sql", environment: [:])
    precondition(result.errors.isEmpty, "\(result.errors)")
    return result.pipeline!
}()

/// Rows handed over as a checkpoint's (the server's own view of a checkpoint is tested against a real
/// daemon in EddyCLITests); counts how often it was read.
struct FixedRows: PostgresDataSource {
    let pipeline: Pipeline
    let rows: [String: [[SQLValue]]]
    var delay: Duration = .zero

    func checkpointedRows(of view: String) async throws -> [[SQLValue]]? {
        if delay > .zero { try? await Task.sleep(for: delay) }
        return rows[view]
    }
}

let exampleRows: [String: [[SQLValue]]] = [
    "events_statisics_mv": [[.string("click"), .int(48)], [.string("scroll"), .int(7)], [.string("submit"), .int(19)], [.null, .int(2)]],
    "latest": [[.string("click"), .string("2026-11-24 17:00:03.25")]],
]

/// Encodes frontend messages as a client would (the inverse of the decoder, for tests).
enum ClientFrames {
    static func startup(_ parameters: [String: String]) -> ByteBuffer {
        var body = ByteBuffer()
        body.writeInteger(Int32(196_608))
        for (name, value) in parameters.sorted(by: { $0.key < $1.key }) {
            body.writeNullTerminatedString(name)
            body.writeNullTerminatedString(value)
        }
        body.writeInteger(UInt8(0))
        var frame = ByteBuffer()
        frame.writeInteger(Int32(body.readableBytes + 4))
        frame.writeBuffer(&body)
        return frame
    }

    static func typed(_ type: Character, _ body: (inout ByteBuffer) -> Void) -> ByteBuffer {
        var content = ByteBuffer()
        body(&content)
        var frame = ByteBuffer()
        frame.writeInteger(type.asciiValue!)
        frame.writeInteger(Int32(content.readableBytes + 4))
        frame.writeBuffer(&content)
        return frame
    }

    static func query(_ text: String) -> ByteBuffer { typed("Q") { $0.writeNullTerminatedString(text) } }
}

/// Runs messages through a session and collects what it answers.
struct SessionDriver {
    var session: PostgresSession

    init(password: String? = nil, rows: [String: [[SQLValue]]] = exampleRows, queryTimeLimit: Duration = .seconds(5), delay: Duration = .zero) {
        session = PostgresSession(
            configuration: .init(verifier: password.map { SCRAMVerifier(password: $0, salt: Array("fixed-salt-16byt".utf8), iterations: 16) }, queryTimeLimit: queryTimeLimit),
            dataSource: FixedRows(pipeline: examplePipeline, rows: rows, delay: delay), metrics: PostgresMetrics(), processID: 7, secretKey: 11)
    }

    mutating func send(_ message: FrontendMessage) async -> PostgresSession.Output { await session.receive(message) }

    /// Start-up without a password; returns the messages.
    mutating func start(user: String = "analyst") async -> [BackendMessage] {
        await send(.startup(parameters: ["user": user, "database": "eddy"])).messages
    }

    mutating func query(_ text: String) async -> [BackendMessage] { await send(.query(text)).messages }
}

extension BackendMessage {
    var dataRowValues: [SQLValue]? { if case .dataRow(let values, _, _) = self { values } else { nil } }
    var errorValue: PostgresError? { if case .error(let error) = self { error } else { nil } }
    var rowDescriptionColumns: [ResultColumn]? { if case .rowDescription(let columns, _) = self { columns } else { nil } }
}

extension [BackendMessage] {
    var rows: [[SQLValue]] { compactMap(\.dataRowValues) }
    var error: PostgresError? { lazy.compactMap(\.errorValue).first }
    var columnNames: [String]? { lazy.compactMap(\.rowDescriptionColumns).first?.map(\.name) }
}
