extension Pipeline {
    /// A human-readable plan of the pipeline, as `eddy check` prints it. Secrets (passwords in Kafka
    /// properties and in `redis.url`) are masked.
    public var planDescription: String {
        var lines: [String] = []
        for source in sources {
            lines.append("\(source.isTable ? "table" : "source") \(source.name): Kafka topic '\(source.kafka.topic)', FORMAT PLAIN ENCODE JSON")
            lines.append("  columns: " + source.columns.map { "\($0.name) \($0.type)" }.joined(separator: ", "))
            if source.json != JSONSourceSettings() {
                lines.append("  json:    timestamptz.handling.mode=\(source.json.timeNumbers.rawValue), ignore_key_case=\(source.json.ignoresKeyCase)")
            }
            if !source.pathColumns.isEmpty {
                lines.append("  JSONB paths read (decoded as columns): " + source.pathColumns.map { "\($0.name) \($0.type)" }.joined(separator: ", "))
            }
            for included in source.includedColumns {
                lines.append("  include: \(included.kind.rawValue) AS \(included.name) \(included.type) (from the Kafka message)")
            }
            if let watermark = source.watermark {
                let delay = watermark.delayMicroseconds.map { " (trails the largest \(watermark.columnName) seen by \(SQLInterval(microseconds: $0)))" } ?? ""
                lines.append("  watermark: for \(watermark.columnName) as \(watermark.expression)\(delay); later rows behind it are late")
            }
            lines.append("  kafka:   bootstrap.servers=\(source.kafka.bootstrapServers)")
            lines.append("           start: \(source.kafka.startupMode) (for partitions without a checkpointed offset)")
            if let groupID = source.kafka.groupID { lines.append("           group.id=\(groupID)") }
            for property in source.kafka.maskedClientProperties {
                lines.append("           \(property.key)=\(property.value)")
            }
        }
        for view in views {
            let kind = view.isDerivedTable ? "subquery" : "materialized view"
            lines.append("\(kind) \(view.name): from \(view.input)")
            if let window = view.window { lines.append("  window:     \(window) adds window_start, window_end") }
            lines.append("  columns:    " + view.outputColumns.map { "\($0.name) \($0.type)" }.joined(separator: ", "))
            if let filter = view.filter { lines.append("  where:      \(filter)") }
            for bound in view.temporalFilter { lines.append("  temporal:   \(bound) (rows leave or enter as the epoch's clock passes it)") }
            guard view.isAggregating else {
                lines.append("  rows:       every input row that passes WHERE (no aggregation)")
                for column in view.outputColumns {
                    if case .column(_, let name) = column.expression, name == column.name { continue }
                    lines.append("  \(column.name) = \(column.expression)")
                }
                continue
            }
            lines.append("  group by:   " + (view.groupByNames.isEmpty ? "(one global group)" : view.groupByNames.joined(separator: ", ")))
            lines.append("  aggregates: " + (view.aggregates.isEmpty ? "(none)" : view.aggregates.map(\.description).joined(separator: ", ")))
            if let having = view.having { lines.append("  having:     \(having)") }
            if let close = view.emitOnWindowClose {
                let key = view.groupByNames[close.windowKey]
                let end = close.endOffsetMicroseconds == 0 ? key : "\(key) + \(SQLInterval(microseconds: close.endOffsetMicroseconds))"
                lines.append("  emit:       on window close (each group once, when the watermark passes \(end); its state then dropped)")
            }
            for column in view.outputColumns {
                if case .groupKey(_, let name) = column.expression, name == column.name { continue }
                if case .aggregate(_, let text) = column.expression, text.hasPrefix(column.name + "(") { continue }
                lines.append("  \(column.name) = \(column.expression)")
            }
        }
        for sink in sinks {
            let view = self.view(named: sink.viewName)
            let names = view.map { view in sink.redis.primaryKeyColumns.map { view.outputColumns[$0].name } } ?? []
            lines.append("sink \(sink.name): from \(sink.viewName) to Redis \(sink.redis.clusterNodes.isEmpty ? "\(sink.redis.endpoint)" : "Cluster \(sink.redis.clusterNodes.map(\.description).joined(separator: ", "))")")
            lines.append("  primary key: \(names.joined(separator: ", "))")
            let redis = sink.redis
            let format = redis.isUpsert ? "UPSERT " : ""
            let appendOnly = redis.forceAppendOnly ? " (force_append_only)" : ""
            switch redis.encoding {
            case .template(let key, _) where redis.valueType == .hash:
                lines.append("  encode:      \(format)TEMPLATE key '\(key)'\(appendOnly)")
            case .template(let key, let value):
                lines.append("  encode:      \(format)TEMPLATE key '\(key)' value '\(value)'\(appendOnly)")
            case .json:
                lines.append("  encode:      \(format)JSON\(redis.keyAsText ? ", KEY ENCODE TEXT" : "")\(appendOnly)")
            }
            switch redis.valueType {
            case .string: break
            case .hash: lines.append("  value type:  hash (a field per column: \(view?.outputColumns.map(\.name).joined(separator: ", ") ?? ""))")
            case .stream(let name): lines.append("  value type:  stream '\(name)' (XADD of each written change; entry IDs from the source offsets, never added twice)")
            case .pubsub(let channel):
                lines.append("  value type:  pubsub channel '\(channel)' (PUBLISH of each written change)")
                lines.append("  delivery:    at-most-once: PUBLISH keeps nothing, so a subscriber that is not connected when an epoch is written misses its messages for good (epochs are published once each; only a whole-view re-send after Redis lost its data publishes every row again)")
            }
            if let ttl = redis.ttlSeconds { lines.append("  redis.ttl_seconds: \(ttl) (set in the epoch's transaction)") }
            lines.append("  epoch marker key: \(sink.markerKey)")
            if let pending = redis.maxPendingEpochs { lines.append("  sink.max_pending_epochs: \(pending)") }
        }
        if views.contains(where: { if case .view = $0.input { true } else { false } }) {
            // The graph in dependency order (a view is defined after what it reads), then who reads each sink.
            lines.append("graph (dependency order):")
            for view in views { lines.append("  \(view.input) -> \(view.isDerivedTable ? "subquery" : "view") \(view.name)") }
            for sink in sinks { lines.append("  view \(sink.viewName) -> sink \(sink.name)") }
        }
        for query in queries {
            lines.append("query: \(query.text)")
            lines.append("  columns: " + query.columns.map { "\($0.name) \($0.type)" }.joined(separator: ", "))
        }
        return lines.joined(separator: "\n")
    }
}
