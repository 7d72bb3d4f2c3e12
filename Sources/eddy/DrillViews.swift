import EddySQL
import EddyWorkload
import Foundation

/// What `eddy drill` checks a pipeline of any shape against, other than the seed's (`DrillSeedView`): every view
/// evaluated by SQLite (`SQLiteOracle`, through Debian's python3) over every message the load generator produced,
/// regenerated from the chunks' seeds; each sink's rows rendered through its templates give the expected Redis keys
/// and values, and each view's rows what `eddy query` must print.
///
/// Supported shapes: one Kafka source read from the earliest offset (its bootstrap servers from ${KAFKA_BROKERS}),
/// any number of views SQLite evaluates alike — `SELECT … FROM` the source or another view, `WHERE`, `GROUP BY`,
/// `COUNT`, `SUM`, `MIN`, `MAX` over the text columns user, page and event — with output columns of integer or text
/// type; every sink `ENCODE TEMPLATE` to ${REDIS_URL}. Not supported (refused before anything starts): views that
/// read `event_timestamp` (the drill regenerates the messages from their seeds, not their times), `HAVING` (a row
/// leaving a view stays in Redis under force_append_only), subqueries, and real or time-typed outputs.
struct DrillViews {
    /// One sink's expected rendering.
    struct SinkCheck {
        var name: String
        var view: String
        var key: Template
        var value: Template
        var types: [ValueType]
        var markerKey: String
    }

    var topic: String
    private var table: String
    private var columns: [String]
    /// Each view's name and `SELECT`, in definition order (a view may read those before it).
    var views: [(name: String, select: String)]
    var sinks: [SinkCheck]
    var markerKeys: [String] { sinks.map(\.markerKey) }

    init(pipeline: Pipeline, path: String) throws {
        func unsupported(_ what: String) -> DrillError {
            DrillError(reason: "\(path): \(what). `eddy help drill` lists the pipeline shapes the drill can check.")
        }
        guard pipeline.sources.count == 1, !pipeline.sinks.isEmpty else {
            throw unsupported("it has \(pipeline.sources.count) source(s) and \(pipeline.sinks.count) sink(s); the drill needs one source and at least one sink")
        }
        let source = pipeline.sources[0]
        guard source.kafka.startupMode == .earliest else { throw unsupported("the source does not read from scan.startup.mode='earliest'") }
        topic = source.kafka.topic
        table = source.name
        columns = source.columns.map(\.name)
        views = []
        for view in pipeline.views {
            guard !view.isDerivedTable else { throw unsupported("view \(view.name) has a subquery") }
            guard view.having == nil else { throw unsupported("view \(view.name) has HAVING") }
            guard !view.definitionText.lowercased().contains("event_timestamp") else {
                throw unsupported("view \(view.name) reads event_timestamp (the drill regenerates messages from their seeds, without their times)")
            }
            for column in view.outputColumns where column.type != .integer && column.type != .text {
                throw unsupported("view \(view.name)'s column \(column.name) is of type \(column.type), not an integer or text")
            }
            guard let select = Self.select(ofDefinition: view.definitionText) else {
                throw unsupported("cannot find the SELECT of view \(view.name) in '\(view.definitionText)'")
            }
            views.append((view.name, select))
        }
        sinks = []
        for sink in pipeline.sinks {
            guard case .template(let key, let value) = sink.redis.encoding else { throw unsupported("sink \(sink.name) is not ENCODE TEMPLATE") }
            guard let view = pipeline.views.first(where: { $0.name == sink.viewName }) else { throw unsupported("sink \(sink.name) reads no view") }
            sinks.append(SinkCheck(name: sink.name, view: view.name, key: key, value: value, types: view.outputColumns.map(\.type), markerKey: sink.markerKey))
        }
    }

    /// `SELECT …` of `CREATE MATERIALIZED VIEW [IF NOT EXISTS] name AS SELECT …`.
    static func select(ofDefinition text: String) -> String? {
        guard let range = text.range(of: #"^\s*CREATE\s+MATERIALIZED\s+VIEW\s+(IF\s+NOT\s+EXISTS\s+)?\S+\s+AS\s+"#, options: [.regularExpression, .caseInsensitive])
        else { return nil }
        return String(text[range.upperBound...])
    }

    /// The messages of a chunk `eddy produce --seed seed --count count` sent (its default users and pages), without
    /// their times.
    static func messages(seed: UInt64, count: Int) -> [String] {
        var generator = UserEventGenerator(seed: seed)
        var buffer: [UInt8] = []
        let time = EventTimestamp(epochSeconds: 0)
        return (0..<count).map { _ in
            buffer.removeAll(keepingCapacity: true)
            _ = generator.appendMessage(timestamp: time, to: &buffer)
            return String(decoding: buffer, as: UTF8.self)
        }
    }

    /// The expected result over `messages`: each view's rows (as `SQLiteOracle` normalises them), and the Redis
    /// keys and values of every sink.
    func expected(messages: [String]) throws -> (rows: [String: [SQLiteOracle.Row]], redis: [String: String]) {
        let rows: [String: [SQLiteOracle.Row]]
        do {
            rows = try SQLiteOracle.evaluate(table: table, columns: columns, jsonRows: messages, views: views)
        } catch {
            throw DrillError(reason: "cannot compute the expected views with SQLite (python3's sqlite3 module): \(error)")
        }
        var redis: [String: String] = [:]
        for sink in sinks {
            for row in rows[sink.view] ?? [] {
                func value(_ index: Int) -> SQLValue {
                    let text = row[index]
                    if text == "NULL" { return .null }
                    if sink.types[index] == .integer, let number = Int64(text) { return .int(number) }
                    return .string(text)
                }
                redis[sink.key.render(value)] = sink.value.render(value)
            }
        }
        return (rows, redis)
    }
}

/// What a drill checks: a pipeline of the seed's shape (manifest counts, counts monitored) or any other
/// (`DrillViews`, markers monitored).
enum DrillTarget {
    case seed(DrillSeedView)
    case views(DrillViews)

    init(pipelineAt path: String) throws {
        let pipeline = try DrillSeedView.compile(pipelineAt: path)
        if let seed = try? DrillSeedView(pipeline: pipeline, path: path) {
            self = .seed(seed)
        } else {
            self = .views(try DrillViews(pipeline: pipeline, path: path))
        }
    }

    var topic: String {
        switch self {
        case .seed(let view): view.topic
        case .views(let views): views.topic
        }
    }

    /// Keys whose values the monitor checks never decrease.
    var countKeys: [String] {
        if case .seed(let view) = self { view.keys } else { [] }
    }

    var markerKeys: [String] {
        switch self {
        case .seed(let view): [view.markerKey]
        case .views(let views): views.markerKeys
        }
    }
}
