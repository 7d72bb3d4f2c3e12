#if canImport(Glibc)
import Glibc
#endif
@testable import EddyRedis
import EddyTestSupport
import Foundation
import Logging
import Synchronization
import Testing

private let events = ["click", "scroll", "submit", "download", "focus"]

/// One way of writing the example view's counts to Redis, and how to read them back.
struct ValueTypeCase: CustomTestStringConvertible, Sendable {
    enum Kind: Sendable { case string, json, hash, stream, pubsub }
    let kind: Kind
    /// The sink's `WITH` options after `redis.url`, and its `FORMAT ...` clause.
    let with: String
    let format: String
    /// The keys that must carry a TTL, when the sink sets one.
    var ttlKeys: [String] = []

    var testDescription: String { "\(kind)\(ttlKeys.isEmpty ? "" : " with TTL")" }
}

private let valueTypeCases: [ValueTypeCase] = [
    ValueTypeCase(kind: .string, with: ", redis.ttl_seconds='3600'", format: "FORMAT PLAIN ENCODE TEMPLATE (key_format='{event}', value_format='{count}')", ttlKeys: events),
    ValueTypeCase(kind: .json, with: "", format: "FORMAT UPSERT ENCODE JSON KEY ENCODE TEXT"),
    ValueTypeCase(kind: .hash, with: ", redis.ttl_seconds='3600'", format: "FORMAT PLAIN ENCODE TEMPLATE (key_format='h:{event}', redis_value_type='hash')", ttlKeys: events.map { "h:" + $0 }),
    ValueTypeCase(kind: .stream, with: ", redis.ttl_seconds='3600'", format: "FORMAT PLAIN ENCODE TEMPLATE (key_format='{event}', value_format='{count}', redis_value_type='stream', stream='changes')", ttlKeys: ["changes"]),
    ValueTypeCase(kind: .pubsub, with: "", format: "FORMAT PLAIN ENCODE TEMPLATE (key_format='{event}', value_format='{event}={count}', redis_value_type='pubsub', channel='counts')"),
]

/// Receives a channel's messages on its own thread until the text `end` arrives.
private final class ChannelListener: @unchecked Sendable {
    private let messages = Mutex<[String]>([])
    private let done = DispatchSemaphore(value: 0)

    init(url: RedisURL, channel: String) throws {
        let connection = try RedisConnection.connect(url: url, connectTimeout: .seconds(5), commandTimeout: .seconds(300), logger: Logger(label: "listener"))
        guard case .array = try connection.command("SUBSCRIBE", channel) else { throw ProcessError("SUBSCRIBE \(channel) failed") }
        Thread.detachNewThread { [self] in
            defer { connection.close(); done.signal() }
            while true {
                // A subscribed connection answers nothing else: every reply after SUBSCRIBE's is a message.
                guard case .array(let parts)? = try? connection.receive(commandName: "message"), parts.count == 3, let text = parts[2].text else { return }
                if text == "end" { return }
                messages.withLock { $0.append(text) }
            }
        }
    }

    var received: [String] { messages.withLock { $0 } }

    func finish(_ redis: RedisTestServer, channel: String) -> [String] {
        _ = try? redis.command("PUBLISH", channel, "end")
        _ = done.wait(timeout: .now() + 10)
        return received
    }
}

/// The example pipeline sunk in each Redis value type, run by the `eddy` binary through SIGKILLs: once caught up,
/// Redis holds the producer's exact counts in that form (a hash per event, the last stream entry per event, the
/// last message per event), stream entries and messages never repeat a value for an event, and the TTL is on every
/// key after the run and again after a whole-view re-send (Redis lost the marker).
@Suite(.serialized) struct RedisValueTypeRunTests {
    @Test(arguments: valueTypeCases)
    func eachValueTypeIsExactAfterKillNineRestarts(_ form: ValueTypeCase) throws {
        let directory = try ScratchDirectory(prefix: "eddy-values")
        defer { directory.remove() }
        let broker = try DevBrokerProcess(topics: ["test:4"])
        defer { _ = broker.stop() }
        let redis = try RedisTestServer(password: "s3cret-pw")
        try redis.start(persistent: false)
        let pipeline = directory.path + "/values.sql"
        try """
            CREATE SOURCE user_events (event_timestamp TIMESTAMP, user VARCHAR, page VARCHAR, event VARCHAR) WITH (connector='kafka', \
            topic='test', properties.bootstrap.server='${KAFKA_BROKERS}', scan.startup.mode='earliest') FORMAT PLAIN ENCODE JSON;
            CREATE MATERIALIZED VIEW events_statisics_mv AS SELECT event, COUNT(*) FROM user_events GROUP BY event;
            CREATE SINK values_sink FROM events_statisics_mv WITH (connector='redis', primary_key='event', redis.url='${REDIS_URL}'\(form.with)) \
            \(form.format);
            """.write(toFile: pipeline, atomically: true, encoding: .utf8)
        let environment = ["KAFKA_BROKERS": broker.bootstrapServers, "REDIS_URL": "redis://:s3cret-pw@127.0.0.1:\(redis.port)"]
        let connection = try redis.connect()
        defer { connection.close() }
        func command(_ arguments: String...) -> RedisReply? { try? connection.command(arguments.map { Array($0.utf8) }) }

        // `eddy check` describes the sink without the password; a pubsub sink says it is at-most-once.
        let check = try EddyProcess.run(["check", pipeline], environment: environment)
        #expect(check.status == 0, "\(check.standardError)")
        #expect(!(check.standardOutput + check.standardError).contains("s3cret-pw"))
        #expect(check.standardOutput.contains("at-most-once") == (form.kind == .pubsub), "\(check.standardOutput)")

        let listener = form.kind == .pubsub
            ? try ChannelListener(url: redis.url, channel: "counts") : nil

        /// What Redis (or the channel) says of each event: its values in order (one for a key, every entry or message
        /// for a stream or channel).
        func history() -> [String: [Int]] {
            var history: [String: [Int]] = [:]
            switch form.kind {
            case .string, .json, .hash:
                for event in events {
                    let text: String?
                    switch form.kind {
                    case .string: text = command("GET", event)?.text
                    case .hash: text = command("HGET", "h:" + event, "count")?.text
                    default:
                        // {"event":"click","count":12}
                        text = command("GET", event)?.text.flatMap { json in
                            json.range(of: "\"count\":").map { String(json[$0.upperBound...].prefix { $0.isNumber }) }
                        }
                    }
                    if let value = text.flatMap({ Int($0) }) { history[event] = [value] }
                }
            case .stream:
                guard case .array(let entries)? = command("XRANGE", "changes", "-", "+") else { return [:] }
                for entry in entries {
                    guard case .array(let parts) = entry, parts.count == 2, case .array(let fields) = parts[1], fields.count == 2,
                        let event = fields[0].text, let value = fields[1].text.flatMap({ Int($0) })
                    else { continue }
                    history[event, default: []].append(value)
                }
            case .pubsub:
                for message in listener!.received {
                    let parts = message.split(separator: "=")
                    if parts.count == 2, let value = Int(parts[1]) { history[String(parts[0]), default: []].append(value) }
                }
            }
            return history
        }
        func counts() -> [String: Int] { history().compactMapValues(\.last) }
        func total() -> Int { counts().values.reduce(0, +) }

        let stateDirectory = directory.path + "/state"
        func launchDaemon() throws -> EddyProcess {
            try EddyProcess.launch(
                ["run", pipeline, "--state-dir", stateDirectory, "--http", "off", "--checkpoint-interval", "0.05"],
                environment: environment, outputDirectory: directory.path, name: "run")
        }
        var daemon = try launchDaemon()
        var daemons = [daemon]
        var expected: [String: Int] = [:]
        var produced = 0
        var random = SystemRandomNumberGenerator()
        let chunks = 3
        let chunkSize = 15_000
        for chunk in 0..<chunks {
            let manifestPath = directory.path + "/manifest-\(chunk).json"
            let producer = try EddyProcess.run([
                "produce", "--brokers", broker.bootstrapServers, "--topic", "test", "--count", String(chunkSize), "--rate", "0",
                "--seed", String(31 + chunk), "--manifest", manifestPath,
            ])
            #expect(producer.status == 0, "\(producer.standardError)")
            let manifest = try JSONDecoder().decode(Manifest.self, from: Data(contentsOf: URL(fileURLWithPath: manifestPath)))
            produced += manifest.total
            expected.merge(manifest.events, uniquingKeysWith: +)
            if chunk < chunks - 1 {
                // SIGKILL at a random moment while the daemon works through this chunk.
                let target = produced - chunkSize + Int.random(in: 1..<chunkSize, using: &random)
                _ = eventually(timeout: .seconds(60), every: .milliseconds(2)) { total() >= target }
                daemon.kill()
                #expect(daemon.waitForExit(timeout: .seconds(10)) != nil)
                daemon = try launchDaemon()
                daemons.append(daemon)
            }
        }

        let exact = eventually(timeout: .seconds(90), every: .milliseconds(20)) { counts() == expected }
        #expect(exact, "Redis \(counts()) vs produced \(expected); daemon: \(daemon.standardError.suffix(2000))")
        // Entries and messages: each event's values only grow (none written twice, none out of order).
        for (event, values) in history() {
            #expect(zip(values, values.dropFirst()).allSatisfy { $0 < $1 }, "\(event): \(values)")
        }
        func ttlsSet() -> Bool {
            form.ttlKeys.allSatisfy { key in
                if case .integer(let ttl)? = command("TTL", key) { ttl > 0 && ttl <= 3600 } else { false }
            }
        }
        #expect(ttlsSet())

        // Redis loses the marker (and the TTLs): the daemon re-sends the whole view, which sets them again and adds
        // no stream entry (the stream holds this point of the source already).
        #expect(daemon.waitForOutput(containing: "consuming", timeout: .seconds(60)), "\(daemon.standardError.suffix(2000))")
        let entriesBefore = history().values.map(\.count).reduce(0, +)
        for key in form.ttlKeys { _ = command("PERSIST", key) }
        _ = command("DEL", "eddy:values_sink:epoch")
        let resent = eventually(timeout: .seconds(30), every: .milliseconds(20)) { command("GET", "eddy:values_sink:epoch")?.text != nil }
        #expect(resent, "\(daemon.standardError.suffix(2000))")
        #expect(daemon.standardError.contains("re-sending the whole view"))
        #expect(ttlsSet(), "TTLs after the whole-view re-send")
        #expect(counts() == expected)
        if form.kind == .stream { #expect(history().values.map(\.count).reduce(0, +) == entriesBefore) }

        // And the sink goes on: a last chunk arrives exact, stream entries still never repeat a value.
        let producer = try EddyProcess.run([
            "produce", "--brokers", broker.bootstrapServers, "--topic", "test", "--count", "2000", "--rate", "0", "--seed", "97",
            "--manifest", directory.path + "/manifest-last.json",
        ])
        #expect(producer.status == 0, "\(producer.standardError)")
        let last = try JSONDecoder().decode(Manifest.self, from: Data(contentsOf: URL(fileURLWithPath: directory.path + "/manifest-last.json")))
        expected.merge(last.events, uniquingKeysWith: +)
        #expect(eventually(timeout: .seconds(60), every: .milliseconds(20)) { counts() == expected }, "\(counts()) vs \(expected): \(daemon.standardError.suffix(2000))")
        if form.kind == .stream {
            for (event, values) in history() { #expect(zip(values, values.dropFirst()).allSatisfy { $0 < $1 }, "\(event): \(values)") }
        }
        #expect(!daemons.contains { $0.standardError.contains("only in part") || $0.standardError.contains("sink stopped") })

        daemon.send(SIGTERM)
        #expect(daemon.waitForExit(timeout: .seconds(15)) == 0, "\(daemon.standardError.suffix(2000))")
        #expect(!daemons.contains { $0.standardError.contains("s3cret-pw") })
        if let listener {
            let messages = listener.finish(redis, channel: "counts")
            #expect(!messages.isEmpty)
        }
    }

    private struct Manifest: Decodable {
        let total: Int
        let events: [String: Int]
    }
}
