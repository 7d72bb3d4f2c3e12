import Testing
@testable import EddySQL

/// `redis_value_type`, `redis.ttl_seconds`, `FORMAT UPSERT` and `KEY ENCODE TEXT` of Redis sinks.
private func sinkFile(with: String = "", format: String) -> String {
    [
        exampleSource, exampleView,
        "CREATE SINK k FROM events_statisics_mv WITH (connector='redis', primary_key='event', redis.url='redis://u:s3cret@h:1'\(with)) \(format);",
    ].joined(separator: "\n")
}

private let template = "FORMAT PLAIN ENCODE TEMPLATE (key_format='{event}', value_format='{count}'"

let sinkValueBadInputs: [BadInput] = [
    BadInput(sql: sinkFile(format: template + ", redis_value_type='geospatial')"), line: 3, at: "'geospatial'", message: "redis_value_type must be 'string', 'hash', 'stream' or 'pubsub', not 'geospatial'"),
    BadInput(sql: sinkFile(format: template + ", redis_value_type='stream')"), line: 3, at: "'stream'", message: "redis_value_type 'stream' needs stream='<name>'"),
    BadInput(sql: sinkFile(format: template + ", redis_value_type='pubsub')"), line: 3, at: "'pubsub'", message: "redis_value_type 'pubsub' needs channel='<name>'"),
    BadInput(sql: sinkFile(format: template + ", redis_value_type='pubsub', channel='')"), line: 3, at: "''", message: "channel must not be empty"),
    BadInput(sql: sinkFile(format: template + ", stream='s')"), line: 3, at: "stream=", message: "stream applies to redis_value_type 'stream' only"),
    BadInput(sql: sinkFile(format: template + ", redis_value_type='stream', stream_column='event')"), line: 3, at: "stream_column", message: "stream_column (a stream per row) is not supported: name one with stream='<name>'"),
    BadInput(sql: sinkFile(format: template + ", redis_value_type='hash')"), line: 3, at: "value_format", message: "value_format does not apply to redis_value_type 'hash'"),
    BadInput(sql: sinkFile(with: ", redis.ttl_seconds='0'", format: template + ")"), line: 3, at: "'0'", message: "redis.ttl_seconds must be a whole number of seconds from 1 to"),
    BadInput(sql: sinkFile(with: ", redis.ttl_seconds='1h'", format: template + ")"), line: 3, at: "'1h'", message: "redis.ttl_seconds must be a whole number of seconds"),
    BadInput(sql: sinkFile(with: ", redis.ttl_seconds='60'", format: template + ", redis_value_type='pubsub', channel='c')"), line: 3, at: "redis.ttl_seconds", message: "redis.ttl_seconds does not apply to redis_value_type 'pubsub'"),
    BadInput(sql: sinkFile(format: "FORMAT DEBEZIUM ENCODE JSON"), line: 3, at: "DEBEZIUM", message: "use FORMAT PLAIN or FORMAT UPSERT"),
    BadInput(sql: sinkFile(format: "FORMAT UPSERT ENCODE JSON (force_append_only='true')"), line: 3, at: "'true'", message: "force_append_only='true' contradicts FORMAT UPSERT"),
    BadInput(sql: sinkFile(format: "FORMAT UPSERT ENCODE JSON KEY ENCODE BYTES"), line: 3, at: "BYTES", message: "KEY ENCODE BYTES is not supported for Redis sinks; use KEY ENCODE TEXT"),
    BadInput(sql: sinkFile(format: template + ") KEY ENCODE TEXT"), line: 3, at: "TEXT", message: "KEY ENCODE TEXT applies to ENCODE JSON"),
    BadInput(sql: sinkFile(format: "FORMAT UPSERT ENCODE JSON KEY"), line: 3, at: ";", message: "expected ENCODE after KEY"),
    BadInput(
        sql: [exampleSource, "CREATE MATERIALIZED VIEW v AS SELECT event, page, COUNT(*) FROM user_events GROUP BY event, page;",
              "CREATE SINK k FROM v WITH (connector='redis', primary_key='event,page', redis.url='redis://h:1') FORMAT UPSERT ENCODE JSON KEY ENCODE TEXT;"].joined(separator: "\n"),
        line: 3, at: "TEXT", message: "KEY ENCODE TEXT needs exactly one primary_key column"),
    // Accepted: each form compiles.
    BadInput(sql: sinkFile(with: ", redis.ttl_seconds='60'", format: "FORMAT PLAIN ENCODE TEMPLATE (key_format='{event}', redis_value_type='hash')"), line: 3, at: "", occurrence: 0, message: ""),
    BadInput(sql: sinkFile(format: "FORMAT UPSERT ENCODE JSON (redis_value_type='stream', stream='events') KEY ENCODE TEXT"), line: 3, at: "", occurrence: 0, message: ""),
]

extension BadInputTests {
    @Test(arguments: sinkValueBadInputs)
    func reportsSinkValueOptionErrorsWhereTheyAre(_ input: BadInput) throws {
        try reportsTheErrorWhereItIs(input)
    }
}

@Suite struct SinkValueTypeTests {
    @Test func compilesEachValueTypeWithItsOptions() throws {
        let hash = try #require(compiledPipeline(sinkFile(with: ", redis.ttl_seconds='90'", format: "FORMAT PLAIN ENCODE TEMPLATE (key_format='c:{event}', redis_value_type='HASH')")))
        #expect(hash.sinks[0].redis.valueType == .hash)
        #expect(hash.sinks[0].redis.ttlSeconds == 90)
        let stream = try #require(compiledPipeline(sinkFile(format: template + ", redis_value_type='stream', stream='changes')")))
        #expect(stream.sinks[0].redis.valueType == .stream(name: "changes"))
        #expect(stream.sinks[0].redis.ttlSeconds == nil)
        let upsert = try #require(compiledPipeline(sinkFile(format: "FORMAT UPSERT ENCODE JSON KEY ENCODE TEXT")))
        #expect(upsert.sinks[0].redis.isUpsert)
        #expect(upsert.sinks[0].redis.keyAsText)
        #expect(!upsert.sinks[0].redis.forceAppendOnly)
        let plain = try #require(compiledPipeline(sinkFile(format: "FORMAT PLAIN ENCODE JSON")))
        #expect(plain.sinks[0].redis.valueType == .string)
        #expect(!plain.sinks[0].redis.isUpsert && !plain.sinks[0].redis.keyAsText)
    }

    /// `eddy check` prints the plan: a pubsub sink says it is at-most-once, and the URL's password stays masked.
    @Test func thePlanSaysPubsubIsAtMostOnce() throws {
        let pipeline = try #require(compiledPipeline(sinkFile(format: template + ", redis_value_type='pubsub', channel='counts')")))
        let plan = pipeline.planDescription
        #expect(plan.contains("pubsub channel 'counts'"))
        #expect(plan.contains("at-most-once"))
        #expect(!plan.contains("s3cret"))
        let ttl = try #require(compiledPipeline(sinkFile(with: ", redis.ttl_seconds='3600'", format: template + ")")))
        #expect(ttl.planDescription.contains("redis.ttl_seconds: 3600"))
    }
}
