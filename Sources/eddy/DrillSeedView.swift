import EddySQL
import EddyWorkload
import Foundation

/// The pipelines of the seed's shape — one Kafka source read from the earliest offset, one view `SELECT event,
/// COUNT(*) … GROUP BY event` with no WHERE or HAVING, one Redis sink whose key is a template over `event` and whose
/// value is the count: the producer's manifests give the expected Redis keys and values, and the monitor checks
/// each count never moves backwards. Other pipelines are checked through `DrillViews`.
struct DrillSeedView {
    /// What the drill puts in the pipeline's `${…}` variables.
    static let brokersVariable = "KAFKA_BROKERS"
    static let redisVariable = "REDIS_URL"

    var topic: String
    var viewName: String
    var eventColumn: String
    var countColumn: String
    var markerKey: String
    private var keyTemplate: Template
    private var eventIndex: Int

    /// Compiles the pipeline at `path` with stand-in addresses, and checks that the drill can give it its own broker
    /// and Redis.
    static func compile(pipelineAt path: String) throws -> Pipeline {
        guard let data = FileManager.default.contents(atPath: path) else { throw DrillError(reason: "cannot read the pipeline file \(path)") }
        let brokers = "127.0.0.1:1"
        let redisPort = 2
        var environment = ProcessInfo.processInfo.environment
        environment[Self.brokersVariable] = brokers
        environment[Self.redisVariable] = "redis://127.0.0.1:\(redisPort)"
        let result = PipelineCompiler.compile(bytes: Array(data), file: path, environment: environment)
        guard let pipeline = result.pipeline else {
            throw DrillError(reason: "\(path) does not compile:\n" + result.errors.map(\.description).joined(separator: "\n"))
        }
        guard pipeline.sources.allSatisfy({ $0.kafka.bootstrapServers == brokers }),
            pipeline.sinks.allSatisfy({ $0.redis.endpoint.host == "127.0.0.1" && $0.redis.endpoint.port == redisPort })
        else {
            throw DrillError(
                reason: "\(path): the drill runs its own broker and Redis, so the pipeline must take the source's bootstrap servers from "
                    + "${\(Self.brokersVariable)} and the sink's redis.url from ${\(Self.redisVariable)} (as examples/seed_pipeline.sql does)")
        }
        return pipeline
    }

    /// Checks that `pipeline` (compiled from `path`) has the seed's shape.
    init(pipeline: Pipeline, path: String) throws {
        func unsupported(_ what: String) -> DrillError {
            DrillError(
                reason: "\(path): \(what). The drill (v1) checks only the seed pipeline's shape (examples/seed_pipeline.sql: one Kafka source "
                    + "read from the earliest offset, one view SELECT event, COUNT(*) … GROUP BY event, one Redis sink keyed by event "
                    + "with the count as value), whose expected result the load generator's manifest gives; computing the expected view of "
                    + "any pipeline from the messages produced is the next step.")
        }
        guard pipeline.sources.count == 1, pipeline.views.count == 1, pipeline.sinks.count == 1 else {
            throw unsupported("it has \(pipeline.sources.count) source(s), \(pipeline.views.count) view(s) and \(pipeline.sinks.count) sink(s), not one of each")
        }
        let source = pipeline.sources[0], view = pipeline.views[0], sink = pipeline.sinks[0]
        guard source.kafka.startupMode == .earliest else { throw unsupported("the source does not read from scan.startup.mode='earliest'") }
        guard let event = source.columnIndex(named: "event"), view.input == .source(source.name), view.isAggregating, view.constructs.isEmpty,
            view.filter == nil, view.having == nil, view.groupBy == [event],
            view.aggregates.count == 1, view.aggregates[0].function == .count, view.aggregates[0].argument == nil,
            view.aggregates[0].filter == nil, !view.aggregates[0].isDistinct,
            let eventOutput = view.outputColumns.firstIndex(where: { if case .groupKey(0, _) = $0.expression { true } else { false } }),
            let countOutput = view.outputColumns.firstIndex(where: { if case .aggregate(0, _) = $0.expression { true } else { false } })
        else { throw unsupported("its view is not SELECT event, COUNT(*) FROM the source GROUP BY event") }
        guard case .template(let key, let value) = sink.redis.encoding, key.columns == [eventOutput], value.parts.count == 1,
            case .column(countOutput, _) = value.parts[0]
        else { throw unsupported("its sink is not ENCODE TEMPLATE with key_format over the event and value_format '{count}'") }
        topic = source.kafka.topic
        viewName = view.name
        eventColumn = view.outputColumns[eventOutput].name
        countColumn = view.outputColumns[countOutput].name
        keyTemplate = key
        markerKey = sink.markerKey
        eventIndex = eventOutput
    }

    /// The Redis key of an event's count.
    func key(for event: String) -> String {
        keyTemplate.render { $0 == eventIndex ? .string(event) : .null }
    }

    /// The keys of every event the load generator produces.
    var keys: [String] { UserEventGenerator.eventNames.map(key(for:)) }

    /// The query whose CSV `eddy query` prints for the end check.
    var query: String { "SELECT \(eventColumn), \(countColumn) FROM \(viewName) ORDER BY \(eventColumn)" }
}
