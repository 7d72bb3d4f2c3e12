import EddyEngine
import EddyKafka
import EddySQL
import EddyTestSupport
import Foundation
import Testing

/// `INCLUDE timestamp | partition | offset | key`: Kafka metadata as columns, on the hot path (GROUP BY,
/// WHERE) and on the row path (every row kept), checked against what the test produced.
@Suite("Kafka metadata columns", .serialized)
struct SourceMetadataTests {
    static let pipelineText = """
        CREATE SOURCE user_events (user VARCHAR, event VARCHAR)
          INCLUDE timestamp AS ts INCLUDE partition INCLUDE offset AS kafka_offset INCLUDE key AS k
          WITH (connector='kafka', topic='${TOPIC}', properties.bootstrap.server='${KAFKA_BROKERS}', scan.startup.mode='earliest') FORMAT PLAIN ENCODE JSON;
        CREATE MATERIALIZED VIEW per_partition AS
          SELECT _rw_kafka_partition AS p, COUNT(*) AS n, MAX(ts) AS newest FROM user_events WHERE kafka_offset <> '0' GROUP BY _rw_kafka_partition;
        CREATE MATERIALIZED VIEW per_key AS SELECT k, COUNT(*) AS n FROM user_events GROUP BY k;
        CREATE MATERIALIZED VIEW kept AS SELECT k, _rw_kafka_partition AS p, kafka_offset AS o, ts, event FROM user_events WHERE event <> 'skip';
        """

    struct Produced {
        var key: String?
        var partition: Int32
        var event: String
    }

    @Test("partition, offset, key and timestamp hold what was produced, in GROUP BY, WHERE and kept rows")
    func metadataColumnsHoldWhatWasProduced() throws {
        let harness = try PipelineHarness(partitions: 3)
        try harness.start(Self.pipelineText)
        var messages: [Produced] = []
        for index in 0..<90 {
            let key: String? = index % 7 == 0 ? nil : "key-\(index % 5)"
            let event = index % 11 == 0 ? "skip" : "click"
            messages.append(Produced(key: key, partition: Int32(index % 3), event: event))
        }
        let before = Int64(Date().timeIntervalSince1970 * 1000) - 1
        let producer = try KafkaProducer.make(configuration: KafkaProducerConfiguration(bootstrapServers: harness.broker.bootstrapServers))
        for (index, message) in messages.enumerated() {
            let payload = Array(#"{"user": "u\#(index)", "event": "\#(message.event)"}"#.utf8)
            try payload.withUnsafeBytes { payload in
                if let key = message.key {
                    try Array(key.utf8).withUnsafeBytes { try producer.send(topic: harness.topic, partition: message.partition, key: $0, payload: payload) }
                } else {
                    try producer.send(topic: harness.topic, partition: message.partition, payload: payload)
                }
            }
        }
        try producer.flush(timeout: .seconds(20))
        let after = Int64(Date().timeIntervalSince1970 * 1000) + 1

        // Offsets: each partition's messages in production order, from 0 (a fresh topic).
        var nextOffset: [Int32: Int] = [:]
        var expectedKept: [[String]] = []
        var perKey: [String: Int] = [:]
        var perPartition: [String: Int] = [:]
        for message in messages {
            let offset = nextOffset[message.partition, default: 0]
            nextOffset[message.partition] = offset + 1
            perKey[message.key ?? "NULL", default: 0] += 1
            if offset != 0 { perPartition[String(message.partition), default: 0] += 1 }
            if message.event != "skip" { expectedKept.append([message.key ?? "NULL", String(message.partition), String(offset), message.event]) }
        }
        let earliest = CivilTime.timestampText(microseconds: before * 1000)
        let latest = CivilTime.timestampText(microseconds: after * 1000)

        var last = ""
        let agreed = try eventually(timeout: .seconds(60), every: .milliseconds(50)) {
            if let ended = harness.endedWith { try ended.get() }
            guard let runner = harness.runner,
                let kept = try runner.checkpointedRows(view: "kept")?.rows.map({ $0.map(CascadeTests.text) }),
                let keys = try runner.checkpointedRows(view: "per_key")?.rows.map({ $0.map(CascadeTests.text) }),
                let partitions = try runner.checkpointedRows(view: "per_partition")?.rows.map({ $0.map(CascadeTests.text) })
            else { return false }
            // The broker's timestamp: the producer's create time, within the production window.
            let times = kept.map { $0[3] }
            guard times.allSatisfy({ $0 >= earliest && $0 <= latest }) else {
                last = "timestamps \(times.prefix(3)) outside \(earliest) ... \(latest)"
                return false
            }
            let keptWithoutTime = kept.map { [$0[0], $0[1], $0[2], $0[4]] }
            last = "kept \(CascadeTests.sorted(keptWithoutTime).prefix(5)) vs \(CascadeTests.sorted(expectedKept).prefix(5)); per_key \(keys); per_partition \(partitions)"
            return CascadeTests.sorted(keptWithoutTime) == CascadeTests.sorted(expectedKept)
                && Dictionary(uniqueKeysWithValues: keys.map { ($0[0], Int($0[1])!) }) == perKey
                && Dictionary(uniqueKeysWithValues: partitions.map { ($0[0], Int($0[1])!) }) == perPartition
                && partitions.allSatisfy { $0[2] >= earliest && $0[2] <= latest }
        }
        #expect(agreed, "\(last)")
        try harness.stopPipeline()
    }

    @Test("INCLUDE columns survive into the view definition that eddy query compiles on its own")
    func includeColumnsRoundTripThroughTheSchemaDefinition() throws {
        let harness = try PipelineHarness(partitions: 1)
        let pipeline = try harness.compile(Self.pipelineText)
        let source = pipeline.sources[0]
        let again = PipelineCompiler.compile(text: source.schemaDefinition, file: "again.sql", environment: [:])
        #expect(again.errors.isEmpty, "\(again.errors)")
        #expect(again.pipeline?.sources.first?.rowColumns == source.rowColumns)
    }
}
