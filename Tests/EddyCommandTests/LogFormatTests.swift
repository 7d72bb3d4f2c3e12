import EddySecrets
import Foundation
import Logging
import Testing

@testable import eddy

/// Collects the lines a handler writes.
private final class Lines: @unchecked Sendable {
    private let lock = NSLock()
    private var lines: [String] = []
    func append(_ line: String) { lock.withLock { lines.append(line) } }
    var all: [String] { lock.withLock { lines } }
}

private func jsonLogger(level: Logger.Level = .info, into lines: Lines) -> Logger {
    Logger(label: "eddy.test") { label in makeLogHandler(label: label, format: .json, level: level, write: lines.append) }
}

private func object(_ line: String) throws -> [String: Any] {
    try #require(try JSONSerialization.jsonObject(with: Data(line.utf8)) as? [String: Any])
}

@Suite("Log formats")
struct LogFormatTests {
    @Test("json: one object per line with timestamp, level, label, message, source and flattened metadata")
    func jsonLine() throws {
        let lines = Lines()
        var logger = jsonLogger(into: lines)
        logger[metadataKey: "eddy.pipeline"] = "seed_pipeline"
        logger.info(
            "checkpoint committed\nin two lines",
            metadata: [
                "eddy.epoch": .stringConvertible(42),
                "eddy.sink": .dictionary(["name": "redis_sink", "retry": .dictionary(["attempt": "3"])]),
                "eddy.partitions": .array(["0", "1"]),
                "level": "shadowing",
            ]
        )
        let written = lines.all
        #expect(written.count == 1)
        let line = try #require(written.first)
        #expect(line.hasSuffix("}\n"))
        #expect(line.dropLast().contains("\n") == false, "a message with a line feed must stay on one line")
        let fields = try object(line)
        #expect(fields["level"] as? String == "info")
        #expect(fields["label"] as? String == "eddy.test")
        #expect(fields["message"] as? String == "checkpoint committed\nin two lines")
        #expect(fields["source"] as? String == "EddyCommandTests")
        #expect(fields["eddy.pipeline"] as? String == "seed_pipeline")
        #expect(fields["eddy.epoch"] as? String == "42")
        #expect(fields["eddy.sink.name"] as? String == "redis_sink")
        #expect(fields["eddy.sink.retry.attempt"] as? String == "3")
        #expect(fields["eddy.partitions"] as? [String] == ["0", "1"])
        #expect(fields["metadata.level"] as? String == "shadowing")
        let timestamp = try #require(fields["timestamp"] as? String)
        #expect(timestamp.wholeMatch(of: /\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}\.\d{3}Z/) != nil, "\(timestamp)")
        let parser = ISO8601DateFormatter()
        parser.formatOptions = [.withInternetDateTime, .withFractionalSeconds]
        let parsed = try #require(parser.date(from: timestamp))
        #expect(abs(parsed.timeIntervalSinceNow) < 3600, "the timestamp is not now in UTC: \(timestamp)")
    }

    @Test("timestamps are UTC with milliseconds")
    func timestamps() {
        #expect(utcTimestamp(timespec(tv_sec: 0, tv_nsec: 0)) == "1970-01-01T00:00:00.000Z")
        #expect(utcTimestamp(timespec(tv_sec: 951_782_400 + 3_723, tv_nsec: 45_999_999)) == "2000-02-29T01:02:03.045Z")
    }

    @Test("levels below the chosen one are not written")
    func levels() {
        let lines = Lines()
        let logger = jsonLogger(level: .warning, into: lines)
        logger.info("quiet")
        logger.debug("quieter")
        logger.warning("loud")
        logger.error("louder")
        #expect(lines.all.count == 2)
    }

    @Test("json: values under password or secret keys, and passwords inside URLs, are masked")
    func jsonMasking() throws {
        let lines = Lines()
        var logger = jsonLogger(into: lines)
        logger[metadataKey: "eddy.kafka.sasl.password"] = "hunter2"
        logger.error(
            "cannot reach redis://u:hunter2@redis.internal:6379/0",
            metadata: [
                "eddy.redis.url": "redis://eddy:hunter2@redis.internal:6379",
                "eddy.config": .dictionary(["clientSecret": "hunter2", "brokers": "kafka:9092"]),
                "eddy.urls": .array(["https://a:hunter2@x.example/"]),
            ]
        )
        let line = try #require(lines.all.first)
        #expect(!line.contains("hunter2"), "\(line)")
        let fields = try object(line)
        #expect(fields["eddy.kafka.sasl.password"] as? String == "***")
        #expect(fields["eddy.config.clientSecret"] as? String == "***")
        #expect(fields["eddy.config.brokers"] as? String == "kafka:9092")
        #expect(fields["eddy.redis.url"] as? String == "redis://eddy:***@redis.internal:6379")
        #expect(fields["message"] as? String == "cannot reach redis://u:***@redis.internal:6379/0")
    }

    @Test("URL passwords are masked whatever they hold: '/', '?', ':' or '@'", arguments: [
        ("redis://u:pa/ss@h:1/0", "redis://u:***@h:1/0"),
        ("redis://u:p?a:s/s@h:1", "redis://u:***@h:1"),
        ("redis://:p@ss/w@h", "redis://:***@h"),
        ("to redis://u:a/b@h:1 and amqp://g:c/d@mq now", "to redis://u:***@h:1 and amqp://g:***@mq now"),
        ("http://h:8080/path and mail@example.com", "http://h:8080/path and mail@example.com"),
        ("redis://h:6379/0", "redis://h:6379/0"),
    ])
    func urlPasswordsWithSlashes(_ text: String, _ expected: String) {
        #expect(Secrets.maskingURLPasswords(text) == expected)
    }

    @Test("text: the wrapped handler only ever sees masked metadata")
    func textMasking() {
        let recorder = RecordingHandler()
        var handler = MaskingLogHandler(wrapping: recorder)
        handler[metadataKey: "db_password"] = "hunter2"
        var logger = Logger(label: "eddy.test") { _ in handler }
        logger.logLevel = .info
        logger.info("login to amqp://guest:hunter2@mq", metadata: ["eddy.secretToken": "hunter2", "eddy.view": "events_statisics_mv"])
        let events = recorder.events.all
        #expect(events.count == 1)
        #expect(events.first?.metadata?["db_password"] == "***")
        #expect(events.first?.metadata?["eddy.secretToken"] == "***")
        #expect(events.first?.metadata?["eddy.view"] == "events_statisics_mv")
        #expect(events.first?.message.description == "login to amqp://guest:***@mq")
    }

    @Test("JSON strings escape quotes, backslashes and control characters")
    func escaping() throws {
        let text = "a \"quote\", a \\ backslash, a tab\t, a bell \u{07} and ü"
        let encoded = jsonString(text)
        #expect(encoded.contains("\\u0007"))
        let decoded = try JSONSerialization.jsonObject(with: Data(encoded.utf8), options: .fragmentsAllowed) as? String
        #expect(decoded == text)
    }

    @Test("--log-format and --log-level parse; the level falls back to EDDY_LOG_LEVEL, then info")
    func options() throws {
        let parsed = try LoggingOptions.parse(["--log-format", "json", "--log-level", "DEBUG"])
        #expect(parsed.format == .json)
        #expect(try parsed.resolvedLevel(environment: ["EDDY_LOG_LEVEL": "error"]) == .debug)
        let defaults = try LoggingOptions.parse([])
        #expect(defaults.format == .text)
        #expect(try defaults.resolvedLevel(environment: ["EDDY_LOG_LEVEL": "Warning"]) == .warning)
        #expect(try defaults.resolvedLevel(environment: [:]) == .info)
        #expect(throws: (any Error).self) { try LoggingOptions.parse(["--log-level", "loud"]) }
        #expect(throws: (any Error).self) { try LoggingOptions.parse(["--log-format", "xml"]) }
        let error = #expect(throws: (any Error).self) { try defaults.resolvedLevel(environment: ["EDDY_LOG_LEVEL": "verbose"]) }
        #expect("\(error.map { String(describing: $0) } ?? "")".contains("EDDY_LOG_LEVEL 'verbose'"))
    }
}

/// A handler that keeps the events it is given.
private struct RecordingHandler: LogHandler {
    final class Events: @unchecked Sendable {
        private let lock = NSLock()
        private var events: [LogEvent] = []
        func append(_ event: LogEvent) { lock.withLock { events.append(event) } }
        var all: [LogEvent] { lock.withLock { events } }
    }

    let events = Events()
    var logLevel: Logger.Level = .trace
    var metadata: Logger.Metadata = [:]
    var metadataProvider: Logger.MetadataProvider?

    subscript(metadataKey key: String) -> Logger.Metadata.Value? {
        get { metadata[key] }
        set { metadata[key] = newValue }
    }

    func log(event: LogEvent) { events.append(event) }
}
