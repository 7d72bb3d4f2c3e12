import EddySecrets

/// A pipeline file, parsed and bound: its sources, views, sinks and queries, every name resolved and
/// every option checked. Built by `PipelineCompiler`.
public struct Pipeline: Sendable {
    /// The file name, as given to the compiler.
    public var file: String
    public var sources: [Source]
    public var views: [View]
    public var sinks: [Sink]
    /// The file's `SELECT` statements, answered once the pipeline has caught up.
    public var queries: [Query]
    /// Things worth knowing that do not stop the pipeline (a duplicate skipped by IF NOT EXISTS, …).
    public var warnings: [SQLError]

    public func source(named name: String) -> Source? { sources.first { $0.name == name } }
    public func view(named name: String) -> View? { views.first { $0.name == name } }
    public func sink(named name: String) -> Sink? { sinks.first { $0.name == name } }
}

/// A column of a source.
public struct Column: Sendable, Hashable {
    public var name: String
    public var type: SQLType
    /// Where in the message's nested JSON the value is (a STRUCT's field, a JSONB path); nil for a top-level
    /// field of the column's name.
    public var path: JSONPath? = nil
}

/// `CREATE SOURCE` (or `CREATE TABLE` with a connector): a Kafka topic of JSON objects.
public struct Source: Sendable {
    public var name: String
    /// Declared with `CREATE TABLE` rather than `CREATE SOURCE` (Eddy treats both alike).
    public var isTable: Bool
    /// The columns read from each message's JSON object, by name.
    public var columns: [Column]
    public var kafka: KafkaSourceSettings
    /// `INCLUDE …` columns: Kafka metadata of each message, after `columns` in a view's input rows.
    public var includedColumns: [IncludedColumn] = []
    /// `WATERMARK FOR column AS expression`, if declared.
    public var watermark: Watermark? = nil
    /// The `ENCODE JSON (...)` options.
    public var json = JSONSourceSettings()

    /// The `->` / `->>` paths into its JSONB columns that the pipeline's statements read, each decoded as a
    /// column of its own (`JSONPath`).
    public var pathColumns: [Column] = []

    /// The columns a view over the source reads, in order: the JSON columns (a STRUCT as one column per
    /// field), then the `INCLUDE` columns, then the JSONB paths read.
    public var rowColumns: [Column] { columns + includedColumns.map { Column(name: $0.name, type: $0.type) } + pathColumns }

    public func columnIndex(named name: String) -> Int? { columns.firstIndex { $0.name == name } }
}

/// How a source's JSON is read: its `FORMAT PLAIN ENCODE JSON (...)` options.
public struct JSONSourceSettings: Sendable, Hashable {
    /// `timestamptz.handling.mode` (RisingWave's name; Eddy applies it to TIMESTAMP columns too): what a JSON
    /// number in a time column counts since 1970-01-01 00:00:00 UTC. Strings are ISO text in every mode.
    public enum TimeNumbers: String, Sendable, Hashable, CaseIterable {
        /// By magnitude (the default, as in RisingWave): below 10^11 seconds, below 10^14 milliseconds, below
        /// 10^17 microseconds, else nanoseconds.
        case guessNumberUnit = "guess_number_unit"
        /// Seconds (Eddy's addition; RisingWave has no such mode).
        case second
        case milli
        case micro
        /// Strings only: a number is a wrong type (RisingWave's two string modes).
        case utcString = "utc_string"
        case utcWithoutSuffix = "utc_without_suffix"
    }

    public var timeNumbers: TimeNumbers = .guessNumberUnit
    /// `ignore_key_case` (default true, as RisingWave always does): a field whose name equals a column's only
    /// ignoring ASCII case fills it when no field matches exactly. 'false' matches names exactly.
    public var ignoresKeyCase = true

    public init() {}
}

/// `INCLUDE timestamp | partition | offset | key [AS name]`: a column filled from the Kafka message rather
/// than its JSON, with RisingWave's names and types (`_rw_kafka_timestamp` TIMESTAMPTZ, `_rw_kafka_partition`
/// and `_rw_kafka_offset` VARCHAR, `_rw_key` VARCHAR for RisingWave's BYTEA, which Eddy does not have).
public struct IncludedColumn: Sendable, Hashable {
    public enum Kind: String, Sendable, Hashable, CaseIterable {
        /// The broker's timestamp of the message.
        case timestamp
        case partition
        case offset
        /// The message key, as text.
        case key

        /// RisingWave's column name when no `AS` is given.
        public var defaultName: String {
            switch self {
            case .timestamp: "_rw_kafka_timestamp"
            case .partition: "_rw_kafka_partition"
            case .offset: "_rw_kafka_offset"
            case .key: "_rw_key"
            }
        }

        public var type: SQLType { self == .timestamp ? .timestamptz : .varchar }
    }

    public var kind: Kind
    public var name: String
    public var type: SQLType { kind.type }
    /// `file:line:column` of the `INCLUDE`, for a runtime that refuses it.
    public var location: String
}

/// `WATERMARK FOR column AS expression` of a source: event time has advanced to at least the largest value
/// of `expression` seen; a row whose `column` is behind the watermark is late.
public struct Watermark: Sendable, Hashable {
    /// The watermarked column, in the source's row columns (`Source.rowColumns`).
    public var column: Int
    public var columnName: String
    /// Over the source's row columns; of the column's type.
    public var expression: BoundExpression
    /// How far the watermark trails the largest `column` seen, in microseconds, when `expression` is
    /// `column - INTERVAL '…'` (`column` alone: 0); nil for another expression.
    public var delayMicroseconds: Int64?
    /// `file:line:column` of the `WATERMARK`.
    public var location: String
}

/// Where and how a source reads Kafka, compiled from its `WITH (...)` options.
public struct KafkaSourceSettings: Sendable, Equatable {
    /// Where a partition with no stored offset starts (`scan.startup.mode`; RisingWave's default is latest).
    public enum StartupMode: Sendable, Equatable, CustomStringConvertible {
        case earliest
        case latest
        /// `scan.startup.mode='timestamp'` with `scan.startup.timestamp.millis`.
        case timestamp(millisecondsSinceEpoch: Int64)

        public var description: String {
            switch self {
            case .earliest: "earliest"
            case .latest: "latest"
            case .timestamp(let milliseconds): "timestamp \(milliseconds) ms"
            }
        }
    }

    /// A librdkafka property (`properties.X` of the SQL becomes `X`).
    public struct Property: Sendable, Equatable {
        public var key: String
        public var value: String
        /// Whether the value must never be shown (passwords, secrets, key material): see `isSecret(key:)`.
        public var isSecret: Bool { Self.isSecret(key: key) }

        /// Whether a librdkafka property (with or without the SQL's `properties.` prefix) carries a secret
        /// inline (`Secrets.isSecretSetting`). `SecretRanges` masks the same keys in the source lines errors show.
        public static func isSecret(key: String) -> Bool { Secrets.isSecretSetting(key) }
    }

    /// `properties.bootstrap.server`: `host:port[,host:port…]`.
    public var bootstrapServers: String
    public var topic: String
    public var startupMode: StartupMode
    /// `properties.group.id`, if given; the engine picks one otherwise.
    public var groupID: String?
    /// Every other `properties.X`, as librdkafka's `X`, in the order written: security, SASL, SSL and any
    /// pass-through setting.
    public var clientProperties: [Property]
    /// `watermark.idle.timeout`: a partition that has sent nothing for this long does not hold the source's
    /// watermark back (default 30 seconds).
    public var watermarkIdleTimeout: Duration = Self.defaultWatermarkIdleTimeout

    public static let defaultWatermarkIdleTimeout = Duration.seconds(30)

    /// The properties with secrets replaced by `***`.
    public var maskedClientProperties: [Property] {
        clientProperties.map { $0.isSecret ? Property(key: $0.key, value: Secrets.mask) : $0 }
    }
}

/// An aggregate of a view: `COUNT(*)`, `COUNT([DISTINCT] col)`, `SUM(col)`, `MIN`, `MAX`, `AVG`.
public struct AggregateCall: Sendable, Hashable, CustomStringConvertible {
    public enum Function: String, Sendable, Hashable, CaseIterable { case count, sum, min, max, avg }

    public var function: Function
    /// The source column aggregated; nil for `COUNT(*)`.
    public var argument: Int?
    public var argumentName: String?
    public var isDistinct: Bool
    /// The SQL type of the result.
    public var resultType: ValueType
    /// `FILTER (WHERE …)`, over the same columns as `argument`: only rows where it is true are aggregated.
    public var filter: BoundExpression? = nil

    public var description: String {
        let argument = argumentName.map(BoundExpression.quoteIfNeeded) ?? "*"
        let call = "\(function.rawValue)(\(isDistinct ? "DISTINCT " : "")\(argument))"
        return filter.map { "\(call) FILTER (WHERE \($0))" } ?? call
    }
}

/// An output column of a view or a query.
public struct OutputColumn: Sendable, Hashable {
    public var name: String
    public var type: ValueType
    public var expression: BoundExpression
}

/// `CREATE MATERIALIZED VIEW name AS SELECT … FROM input [WHERE] [GROUP BY] [HAVING]`, where the input is a
/// source, another view, or a subquery (bound as a view of its own, `isDerivedTable`).
///
/// An aggregating view keeps, per group (the values of `groupBy`), the state of each of `aggregates`; the
/// output columns and `HAVING` are computed from those. A view that does not aggregate (`isAggregating`
/// false) holds every input row that passes `filter`, its output columns computed from the row's columns.
///
/// "Input columns" below are the source's columns, or the input view's output columns, in order.
public struct View: Sendable {
    /// What a view reads directly.
    public enum Input: Sendable, Hashable, CustomStringConvertible {
        case source(String)
        case view(String)

        public var name: String {
            switch self {
            case .source(let name), .view(let name): name
            }
        }

        public var description: String {
            switch self {
            case .source(let name): "source \(name)"
            case .view(let name): "view \(name)"
            }
        }
    }

    /// A construct of the definition that a runtime may not run yet, with where it is written, so that a
    /// refusal can point at it (`file:line:column`).
    public struct Construct: Sendable, Hashable {
        public enum Kind: String, Sendable, Hashable {
            /// The view reads another view (or a subquery).
            case viewInput = "a view over a view"
            /// The view does not aggregate: it holds filtered, projected input rows.
            case rowsWithoutAggregation = "a view that does not aggregate"
            /// An aggregate has `FILTER (WHERE …)`.
            case aggregateFilter = "FILTER (WHERE ...) on an aggregate"
        }

        public var kind: Kind
        /// `file:line:column` of the construct.
        public var location: String
    }

    /// `TUMBLE(…)` / `HOP(…)` in FROM: the input's rows, each in the windows that hold its time.
    public struct TimeWindow: Sendable, Hashable, CustomStringConvertible {
        public enum Kind: Sendable, Hashable {
            /// One window per row: `[start, start + size)` with `start` a multiple of `size` (after `offset`).
            case tumble(sizeMicroseconds: Int64)
            /// `size / hop` windows per row, starting every `hop`.
            case hop(hopMicroseconds: Int64, sizeMicroseconds: Int64)
        }

        public var kind: Kind
        /// The time column, in the input's columns.
        public var timeColumn: Int
        public var timeColumnName: String
        /// Windows start at `offset` plus a multiple of the hop (or size), in microseconds.
        public var offsetMicroseconds: Int64
        /// `window_start`'s index in the view's input columns (the input's own columns, then `window_start`, then
        /// `window_end`).
        public var windowStartColumn: Int
        /// `file:line:column` of `TUMBLE` / `HOP`.
        public var location: String

        public var sizeMicroseconds: Int64 {
            switch kind {
            case .tumble(let size), .hop(_, let size): size
            }
        }

        public var description: String {
            let offset = offsetMicroseconds == 0 ? "" : ", INTERVAL '\(SQLInterval(microseconds: offsetMicroseconds))'"
            switch kind {
            case .tumble(let size):
                return "TUMBLE(\(BoundExpression.quoteIfNeeded(timeColumnName)), INTERVAL '\(SQLInterval(microseconds: size))'\(offset))"
            case .hop(let hop, let size):
                return "HOP(\(BoundExpression.quoteIfNeeded(timeColumnName)), INTERVAL '\(SQLInterval(microseconds: hop))', INTERVAL '\(SQLInterval(microseconds: size))'\(offset))"
            }
        }
    }

    /// `EMIT ON WINDOW CLOSE`: a group's row is emitted once, when the watermark passes the end of its window,
    /// and its state is then dropped.
    public struct WindowClose: Sendable, Hashable {
        /// The group key position (in `groupBy`) holding `window_start` or `window_end`.
        public var windowKey: Int
        /// What to add to that key's time for the window's end: the size for `window_start`, 0 for `window_end`.
        public var endOffsetMicroseconds: Int64
        /// `file:line:column` of `EMIT`.
        public var location: String
    }

    /// A temporal filter's condition, `time op now() + offset` (RisingWave's temporal filter: `WHERE ts > now() -
    /// INTERVAL '1 hour'`): as the clock advances, a row whose time falls behind a lower bound leaves the view, and
    /// one ahead of an upper bound enters it once the clock reaches it. `now()` is the epoch's time: monotone,
    /// checkpointed with the offsets, so a view's rows are a function of the offsets and that time.
    public struct TemporalBound: Sendable, Hashable, CustomStringConvertible {
        public enum Comparison: String, Sendable, Hashable {
            case greater = ">", greaterOrEqual = ">=", less = "<", lessOrEqual = "<="

            /// The same condition with its sides swapped (`now() < ts` is `ts > now()`).
            public var flipped: Comparison {
                switch self {
                case .greater: .less
                case .greaterOrEqual: .lessOrEqual
                case .less: .greater
                case .lessOrEqual: .greaterOrEqual
                }
            }

            /// Whether it bounds the time from below: it then expires rows as the clock advances.
            public var isLowerBound: Bool { self == .greater || self == .greaterOrEqual }
        }

        /// The row's time, over the view's input columns.
        public var time: BoundExpression
        public var comparison: Comparison
        /// What is added to `now()`, in microseconds (negative for `now() - INTERVAL ...`).
        public var offsetMicroseconds: Int64
        /// `file:line:column` of the condition.
        public var location: String

        public init(time: BoundExpression, comparison: Comparison, offsetMicroseconds: Int64, location: String) {
            self.time = time
            self.comparison = comparison
            self.offsetMicroseconds = offsetMicroseconds
            self.location = location
        }

        public var description: String {
            let offset = offsetMicroseconds == 0 ? "" : offsetMicroseconds < 0
                ? " - INTERVAL '\(SQLInterval(microseconds: -offsetMicroseconds))'" : " + INTERVAL '\(SQLInterval(microseconds: offsetMicroseconds))'"
            return "\(time) \(comparison.rawValue) now()\(offset)"
        }
    }

    public var name: String
    /// What the view reads: a source, or a view earlier in `Pipeline.views`.
    public var input: Input
    /// `TUMBLE` / `HOP` over the input, if the view reads one: its columns then end with `window_start`, `window_end`.
    public var window: TimeWindow? = nil
    /// `EMIT ON WINDOW CLOSE`, if given.
    public var emitOnWindowClose: WindowClose? = nil
    /// The source at the root of the view's inputs (its own input when that is a source).
    public var sourceName: String
    /// A subquery in `FROM` of another view, named `outer.alias`: no statement may name it.
    public var isDerivedTable: Bool = false
    /// Whether the view groups and aggregates; false for a filter and projection of its input's rows.
    public var isAggregating: Bool = true
    /// Constructs a runtime may refuse, in the order written.
    public var constructs: [Construct] = []
    public var outputColumns: [OutputColumn]
    /// Input column indices, in `GROUP BY` order. Empty for a view with one global group, or one that does not
    /// aggregate.
    public var groupBy: [Int]
    public var groupByNames: [String]
    /// Every aggregate the output columns and `HAVING` use, each once.
    public var aggregates: [AggregateCall]
    /// `WHERE`, over the input's columns.
    public var filter: BoundExpression?
    /// The conditions of `WHERE` that compare a time with `now()` (joined to `filter` by AND).
    public var temporalFilter: [TemporalBound] = []
    /// `HAVING`, over group keys and aggregates.
    public var having: BoundExpression?
    /// The definition as written (whitespace collapsed), for plans and logs.
    public var definitionText: String
    /// What the view's stored state depends on: the source's topic (or the input view's own canonical text),
    /// the columns it reads and their types, the filter, the grouping and the aggregates with their FILTERs. Output expressions and `HAVING` are left out: changing them
    /// does not invalidate stored state.
    public var canonicalText: String

    public func outputColumnIndex(named name: String) -> Int? { outputColumns.firstIndex { $0.name == name } }
}

/// `CREATE SINK name FROM view WITH (connector='redis', …) FORMAT PLAIN ENCODE TEMPLATE|JSON (…)`.
public struct Sink: Sendable {
    public var name: String
    public var viewName: String
    public var redis: RedisSinkSettings

    /// The Redis key holding the last epoch this sink wrote (DESIGN §3).
    public var markerKey: String { "eddy:\(name):epoch" }
}

/// A Redis server address from `redis.url` (`redis://[user[:password]@]host[:port][/db]`, `rediss://` for
/// TLS) and the `redis.ssl.*` options.
public struct RedisEndpoint: Sendable, Equatable, CustomStringConvertible {
    /// How a `rediss://` connection verifies the server (and, if asked, proves itself). Every field is
    /// optional: none means the system CA store and the URL's host as the expected name.
    public struct TLS: Sendable, Equatable {
        /// `redis.ssl.ca.location`: PEM file of the CAs to trust instead of the system store.
        public var caLocation: String?
        /// `redis.ssl.certificate.location`: PEM client certificate (with `keyLocation`).
        public var certificateLocation: String?
        /// `redis.ssl.key.location`: its private key. The path is never printed.
        public var keyLocation: String?
        /// `redis.ssl.server.name`: the name the server's certificate must carry, when not the URL's host.
        public var serverName: String?

        public init(caLocation: String? = nil, certificateLocation: String? = nil, keyLocation: String? = nil, serverName: String? = nil) {
            self.caLocation = caLocation
            self.certificateLocation = certificateLocation
            self.keyLocation = keyLocation
            self.serverName = serverName
        }
    }

    public var host: String
    public var port: Int
    public var username: String?
    public var password: String?
    public var database: Int
    /// TLS settings for `rediss://`; nil for `redis://`.
    public var tls: TLS?

    public init(host: String, port: Int, username: String? = nil, password: String? = nil, database: Int = 0, tls: TLS? = nil) {
        self.host = host
        self.port = port
        self.username = username
        self.password = password
        self.database = database
        self.tls = tls
    }

    /// The URL with the password masked, and the TLS settings given (the key's path masked).
    public var description: String {
        var credentials = ""
        if username != nil || password != nil {
            credentials = (username ?? "") + (password != nil ? ":***" : "") + "@"
        }
        let shownHost = host.contains(":") ? "[\(host)]" : host
        let url = "\(tls == nil ? "redis" : "rediss")://\(credentials)\(shownHost):\(port)/\(database)"
        guard let tls else { return url }
        var settings = ["CA \(tls.caLocation ?? "system store")"]
        if let certificate = tls.certificateLocation { settings.append("client certificate \(certificate)") }
        if tls.keyLocation != nil { settings.append("client key \(Secrets.mask)") }
        if let name = tls.serverName { settings.append("server name \(name)") }
        return "\(url) (TLS: \(settings.joined(separator: ", ")))"
    }
}

/// How a view's rows become Redis keys and values.
public struct RedisSinkSettings: Sendable {
    public enum Encoding: Sendable {
        /// `ENCODE TEMPLATE (key_format='…{col}…', value_format='…{col}…')`.
        case template(key: Template, value: Template)
        /// `ENCODE JSON`: the key is a JSON object of the primary key columns, the value of the whole row.
        case json
    }

    /// The Redis server (a Redis Cluster: its first listed node).
    public var endpoint: RedisEndpoint
    /// `redis.url` as a JSON array: the nodes of a Redis Cluster, any of which serves as a seed (their credentials
    /// and TLS settings are alike); empty for one Redis server.
    public var clusterNodes: [RedisEndpoint] = []
    public var encoding: Encoding
    /// `primary_key`: output column indices of the view.
    public var primaryKeyColumns: [Int]
    /// `force_append_only='true'`: a row that leaves the view (HAVING) keeps its last value in Redis
    /// instead of being deleted.
    public var forceAppendOnly: Bool
    /// `sink.max_pending_epochs`: consumption pauses while more epochs than this await Redis.
    public var maxPendingEpochs: Int?
    /// `redis_value_type`: what Redis type a row becomes.
    public var valueType: ValueType = .string
    /// `redis.ttl_seconds`: every key written (a stream: the stream) expires this long after its last write.
    public var ttlSeconds: Int?
    /// `FORMAT UPSERT` (else `PLAIN`): rows that leave the view are always deleted.
    public var isUpsert = false
    /// `KEY ENCODE TEXT` (with `ENCODE JSON`): the key is the primary key column's text, not a JSON object.
    public var keyAsText = false

    /// `redis_value_type` (RisingWave's option; `hash` is Eddy's own).
    public enum ValueType: Sendable, Equatable, CustomStringConvertible {
        /// `SET key value` (the default).
        case string
        /// One hash per key (`HSET`), a field per output column of the view.
        case hash
        /// `XADD stream` of each written change: the key as field, the value as its value.
        case stream(name: String)
        /// `PUBLISH channel value` of each written change: at most once (a subscriber that is away misses it).
        case pubsub(channel: String)

        public var description: String {
            switch self {
            case .string: "string"
            case .hash: "hash"
            case .stream(let name): "stream '\(name)'"
            case .pubsub(let channel): "pubsub channel '\(channel)'"
            }
        }
    }
}

/// A `key_format` or `value_format`: text with `{column}` placeholders.
public struct Template: Sendable, Hashable, CustomStringConvertible {
    public enum Part: Sendable, Hashable {
        case text(String)
        /// An output column of the view, by index.
        case column(Int, name: String)
    }

    public var parts: [Part]

    /// The columns the template uses.
    public var columns: [Int] {
        parts.compactMap { if case .column(let index, _) = $0 { index } else { nil } }
    }

    /// The rendered text, with each `{column}` replaced by the value's SQL text (`NULL` for null, as
    /// RisingWave's template encoder renders it).
    public func render(_ value: (Int) -> SQLValue) -> String {
        var result = ""
        for part in parts {
            switch part {
            case .text(let text): result += text
            case .column(let index, _): result += value(index).text
            }
        }
        return result
    }

    public var description: String {
        parts.map { part in
            switch part {
            case .text(let text): text
            case .column(_, let name): "{\(name)}"
            }
        }.joined()
    }
}

/// A `SELECT` of the pipeline file (or of `eddy query`) over a view.
public struct Query: Sendable {
    public struct OrderKey: Sendable {
        /// Over the view's output columns.
        public var expression: BoundExpression
        public var ascending: Bool
        /// PostgreSQL's default: NULLs last when ascending, first when descending.
        public var nullsFirst: Bool
    }

    public var viewName: String
    /// The result columns, as expressions over the view's output columns.
    public var columns: [OutputColumn]
    public var filter: BoundExpression?
    public var orderBy: [OrderKey]
    public var limit: Int?
    /// The statement as written (whitespace collapsed).
    public var text: String

    /// Answers the query from the view's rows (in the view's output column order).
    public func run(on viewRows: [[SQLValue]]) -> [[SQLValue]] {
        var selected: [(source: [SQLValue], output: [SQLValue])] = []
        for row in viewRows {
            if let filter, filter.evaluate(column: { row[$0] }) != .bool(true) { continue }
            selected.append((row, columns.map { column in column.expression.evaluate(column: { row[$0] }) }))
        }
        if !orderBy.isEmpty {
            let keys = selected.map { entry in orderBy.map { $0.expression.evaluate(column: { entry.source[$0] }) } }
            let order = selected.indices.sorted { left, right in
                for (position, key) in orderBy.enumerated() {
                    let a = keys[left][position]
                    let b = keys[right][position]
                    if a.isNull || b.isNull {
                        if a.isNull && b.isNull { continue }
                        return a.isNull == key.nullsFirst
                    }
                    guard let comparison = SQLValue.compare(a, b), comparison != 0 else { continue }
                    return key.ascending ? comparison < 0 : comparison > 0
                }
                return left < right
            }
            selected = order.map { selected[$0] }
        }
        var rows = selected.map(\.output)
        if let limit, rows.count > limit { rows.removeLast(rows.count - limit) }
        return rows
    }
}
