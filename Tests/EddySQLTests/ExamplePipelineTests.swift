import Foundation
import Testing
@testable import EddySQL

/// The pipeline users start from (shared/examples/seed_pipeline.sql, copied to examples/) must run as written.
@Suite struct ExamplePipelineTests {
    static let examplePath = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent()
        .deletingLastPathComponent().appendingPathComponent("examples/seed_pipeline.sql").path

    static let environment = ["KAFKA_BROKERS": "broker-1:9092,broker-2:9092", "REDIS_URL": "redis://app:s3cret@cache:6380/3"]

    @Test func theExampleFileCompilesAsWritten() throws {
        let bytes = try #require(FileManager.default.contents(atPath: Self.examplePath))
        let result = PipelineCompiler.compile(bytes: Array(bytes), file: "seed_pipeline.sql", environment: Self.environment)
        #expect(result.errors.isEmpty, "\(result.errors.map(\.description).joined(separator: "\n"))")
        let pipeline = try #require(result.pipeline)
        #expect(pipeline.sources.count == 1 && pipeline.views.count == 1 && pipeline.sinks.count == 1 && pipeline.queries.count == 1)

        let source = pipeline.sources[0]
        #expect(source.name == "user_events")
        #expect(source.columns == [
            Column(name: "event_timestamp", type: .timestamp), Column(name: "user", type: .varchar),
            Column(name: "page", type: .varchar), Column(name: "event", type: .varchar),
        ])
        #expect(source.kafka.bootstrapServers == "broker-1:9092,broker-2:9092")
        #expect(source.kafka.topic == "test")
        #expect(source.kafka.startupMode == .earliest)

        let view = pipeline.views[0]
        #expect(view.name == "events_statisics_mv")
        #expect(view.outputColumns.map(\.name) == ["event", "count"])
        #expect(view.outputColumns.map(\.type) == [.text, .integer])
        #expect(view.groupBy == [3])
        #expect(view.aggregates == [AggregateCall(function: .count, argument: nil, argumentName: nil, isDistinct: false, resultType: .integer)])

        let sink = pipeline.sinks[0]
        #expect(sink.viewName == "events_statisics_mv")
        #expect(sink.redis.endpoint == RedisEndpoint(host: "cache", port: 6380, username: "app", password: "s3cret", database: 3))
        #expect(sink.redis.primaryKeyColumns == [0])
        #expect(sink.redis.forceAppendOnly)
        guard case .template(let key, let value) = sink.redis.encoding else { Issue.record("expected a template sink"); return }
        #expect(key.render { [SQLValue.string("click"), .int(48213)][$0] } == "click")
        #expect(value.render { [SQLValue.string("click"), .int(48213)][$0] } == "48213")
        #expect(sink.markerKey == "eddy:redis_sink:epoch")

        #expect(pipeline.queries[0].viewName == "events_statisics_mv")
        #expect(pipeline.queries[0].columns.map(\.name) == ["event", "count"])
    }

    @Test func theCommentedSASLVariantCompilesAndMapsToLibrdkafkaSettings() throws {
        let data = try #require(FileManager.default.contents(atPath: Self.examplePath))
        let text = String(decoding: data, as: UTF8.self)
        let variant = try #require(text.split(separator: "\n").first { $0.hasPrefix("-- CREATE SOURCE") }).dropFirst(3)
        let compiled = try #require(compiledPipeline(String(variant)))
        let kafka = compiled.sources[0].kafka
        #expect(kafka.bootstrapServers == "your-host:your-port")
        #expect(kafka.startupMode == .latest)
        let properties = Dictionary(uniqueKeysWithValues: kafka.clientProperties.map { ($0.key, $0.value) })
        #expect(properties == [
            "sasl.mechanism": "SCRAM-SHA-256", "security.protocol": "sasl_ssl", "sasl.username": "your-username",
            "sasl.password": "your-password",
        ])
        #expect(kafka.maskedClientProperties.first { $0.key == "sasl.password" }?.value == "***")
    }

    @Test func thePlanShowsEveryPartAndNoSecret() throws {
        let bytes = try #require(FileManager.default.contents(atPath: Self.examplePath))
        var environment = Self.environment
        environment["REDIS_URL"] = "redis://app:hunter2hunter2@cache:6380/3"
        let result = PipelineCompiler.compile(bytes: Array(bytes), file: "seed_pipeline.sql", environment: environment)
        let plan = try #require(result.pipeline).planDescription
        #expect(plan.contains("source user_events"))
        #expect(plan.contains("materialized view events_statisics_mv"))
        #expect(plan.contains("columns:    event VARCHAR, count BIGINT"))
        #expect(plan.contains("sink redis_sink"))
        #expect(plan.contains("redis://app:***@cache:6380/3"))
        #expect(!plan.contains("hunter2"))

        let sasl = try #require(compiledPipeline(exampleSource.replacingOccurrences(
            of: "scan.startup.mode='earliest'",
            with: "scan.startup.mode='earliest', properties.security.protocol='SASL_SSL', properties.sasl.mechanism='PLAIN', properties.sasl.username='u', properties.sasl.password='topsecret-kafka', properties.ssl.key.password='topsecret-key'")))
        #expect(!sasl.planDescription.contains("topsecret"))
        #expect(sasl.planDescription.contains("sasl.password=***"))
    }

    @Test func secretsWrittenInTheFileAreMaskedInTheLinesErrorsShow() throws {
        let text = exampleSource.replacingOccurrences(of: "scan.startup.mode='earliest'", with: "scan.startup.mode='sometimes', properties.sasl.password='pässwörd'")
        let error = try #require(compile(text).errors.first)
        #expect(error.message.contains("scan.startup.mode"))
        #expect(!error.description.contains("pässwörd"))
        #expect(error.description.contains("properties.sasl.password='********'"))
        // Masking keeps columns: the caret still sits under the bad value.
        let lines = error.description.split(separator: "\n", omittingEmptySubsequences: false)
        let caretColumn = try #require(lines[2].firstIndex(of: "^")).utf16Offset(in: lines[2])
        let valueColumn = try #require(lines[1].range(of: "'sometimes'")?.lowerBound).utf16Offset(in: lines[1])
        #expect(caretColumn == valueColumn)
    }

    /// librdkafka settings that carry key material or tokens inline (librdkafka 2.0.2 CONFIGURATION.md) are
    /// masked like passwords, in the plan and in the line an error shows; ordinary settings are not.
    @Test func inlineKeyMaterialAndTokensAreSecrets() throws {
        let secrets = [
            "ssl.key.pem": "-----BEGIN PRIVATE KEY----- KEYBYTES",
            "ssl.certificate.pem": "-----BEGIN CERTIFICATE----- CERTBYTES",
            "ssl.ca.pem": "-----BEGIN CERTIFICATE----- CABYTES",
            "ssl.keystore.password": "KEYSTOREPW",
            "ssl_key.pem": "OTHERKEYBYTES",
            "sasl.oauthbearer.config": "principal=admin scope=all TOKENBYTES",
            "sasl.oauthbearer.client.secret": "CLIENTSECRET",
            "sasl.oauthbearer.extensions": "traceId=EXTTOKEN",
        ]
        for key in secrets.keys + ["SSL.Key.PEM", "properties.ssl.key.pem"] { #expect(KafkaSourceSettings.Property.isSecret(key: key), "\(key)") }
        for key in ["sasl.username", "ssl.key.location", "ssl.keystore.location", "sasl.oauthbearer.client.id", "sasl.oauthbearer.token.endpoint.url", "client.id"] {
            #expect(!KafkaSourceSettings.Property.isSecret(key: key), "\(key)")
        }

        let options = secrets.sorted { $0.key < $1.key }.map { "properties.\($0.key)='\($0.value)'" }.joined(separator: ", ")
        let text = exampleSource.replacingOccurrences(of: "scan.startup.mode='earliest'", with: "scan.startup.mode='earliest', properties.sasl.username='visible-user', " + options)
        let plan = try #require(compiledPipeline(text)).planDescription
        for value in secrets.values { #expect(!plan.contains(value), "\(plan)") }
        #expect(plan.contains("visible-user"))

        // The same keys are starred in the source line of an error (here a bad startup mode on that line).
        let error = try #require(compile(text.replacingOccurrences(of: "scan.startup.mode='earliest'", with: "scan.startup.mode='sometimes'")).errors.first)
        #expect(error.message.contains("scan.startup.mode"))
        for value in secrets.values { #expect(!error.description.contains(value), "\(error.description)") }
        #expect(error.description.contains("properties.sasl.oauthbearer.config='" + String(repeating: "*", count: secrets["sasl.oauthbearer.config"]!.count) + "'"))
        #expect(error.description.contains("visible-user"))
    }

    @Test func secretsInErrorsAreNeverEchoed() {
        let result = compile(exampleSource + exampleView + exampleSink.replacingOccurrences(of: "redis://127.0.0.1:6379", with: "redis://u:topsecret@host:notaport"))
        #expect(!result.errors.isEmpty)
        #expect(result.errors.allSatisfy { !$0.description.contains("topsecret") })
    }
}
