#if canImport(Glibc)
import Glibc
#endif
import EddyKafka
import EddyRedis
import EddyTestSupport
import EddyWorkload
import Foundation
import Logging
import Synchronization
import Testing

/// The pipeline file users start from, run as written by the built binary.
private let examplePipeline = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent()
    .deletingLastPathComponent().appendingPathComponent("examples/seed_pipeline.sql").path

private let events = ["click", "scroll", "submit", "download", "focus"]

/// The example pipeline with a cascade on top: counts per user and event (a view of about five thousand
/// groups), and a view over it that totals them per event, sunk to Redis as `cascade:<event>`: the second
/// level must equal the first level's counts, and never move backwards either.
private let cascadeStatements = """

    CREATE MATERIALIZED VIEW per_user_event AS SELECT user, event, COUNT(*) AS n FROM user_events GROUP BY user, event;
    CREATE MATERIALIZED VIEW event_totals AS SELECT event, SUM(n) AS total, COUNT(*) AS users, MAX(n) AS top FROM per_user_event GROUP BY event;
    CREATE SINK totals_sink FROM event_totals WITH (connector='redis', primary_key='event', redis.url='${REDIS_URL}')
      FORMAT PLAIN ENCODE TEMPLATE (key_format='cascade:{event}', value_format='{total}');
    """

/// A monitor of Redis' values of `keys` (MGET on a connection of its own), for "no value ever moves backwards".
private func redisMonitor(port: Int, keys: [String] = events) -> MonotonicityMonitor {
    MonotonicityMonitor(keys: keys) {
        var connection: RedisConnection?
        return { keys in
            do {
                if connection == nil {
                    connection = try RedisConnection.connect(
                        url: RedisURL(host: "127.0.0.1", port: port), connectTimeout: .seconds(1), commandTimeout: .seconds(1), logger: Logger(label: "monitor"))
                }
                guard case .array(let values) = try connection!.command((["MGET"] + keys).map { Array($0.utf8) }) else { return keys.map { _ in nil } }
                return values.map { value in
                    guard case .string(let bytes) = value else { return nil }
                    return Int(String(decoding: bytes, as: UTF8.self))
                }
            } catch {
                connection = nil
                throw error
            }
        }
    }
}

/// `eddy run` on the example pipeline while `eddy produce` writes a million events, optionally killed with
/// SIGKILL at random moments and restarted: once caught up, Redis must equal the producer's manifest exactly,
/// and no value may ever have moved backwards.
@Suite(.serialized) struct CrashRecoveryTests {
    @Test func aMillionEventsEndToEndEqualTheManifestAndEddyQueryAgrees() throws {
        try scenario(messages: 1_000_000, kills: 0)
    }

    /// With a cascade: a view over a view, sunk like the first level, comes back exact too.
    @Test func tenKillNineRestartsLoseAndDoubleNothingInACascade() throws {
        try scenario(messages: 1_000_000, kills: 10, cascade: true)
    }

    /// The drill that broke the epoch fence: a second daemon restored from a copy of the first one's state
    /// directory (what a failover from a backup does) while the first is stopped with SIGSTOP, then the first
    /// resumed. Both number their epochs alike; the progress fence keeps every value from moving backwards,
    /// neither daemon stops, and Redis ends exact. The copy is taken once the first daemon has acknowledged
    /// everything, or mid-run (older than what Redis then holds).
    @Test(arguments: [true, false])
    func aSecondDaemonFromACopiedStateDirectoryNeverMovesValuesBackwards(copyFullyAcknowledged: Bool) throws {
        let directory = try ScratchDirectory(prefix: "eddy-zombie")
        defer { directory.remove() }
        let broker = try DevBrokerProcess(topics: ["test:8"])
        defer { _ = broker.stop() }
        let redis = try RedisTestServer()
        try redis.start(persistent: false)
        let environment = ["KAFKA_BROKERS": broker.bootstrapServers, "REDIS_URL": "redis://127.0.0.1:\(redis.port)"]
        func launchDaemon(_ name: String) throws -> EddyProcess {
            try EddyProcess.launch(
                ["run", examplePipeline, "--state-dir", directory.path + "/" + name, "--http", "off", "--checkpoint-interval", "0.1"],
                environment: environment, outputDirectory: directory.path, name: name)
        }
        func redisTotal() -> Int { events.compactMap { (try? redis.get($0)).flatMap { $0.flatMap { Int($0) } } }.reduce(0, +) }
        var expected: [String: Int] = [:]
        var produced = 0
        func produce(_ count: Int, seed: Int) throws {
            let manifestPath = directory.path + "/manifest-\(seed).json"
            let producer = try EddyProcess.run([
                "produce", "--brokers", broker.bootstrapServers, "--topic", "test", "--count", String(count), "--rate", "0",
                "--seed", String(seed), "--manifest", manifestPath,
            ])
            #expect(producer.status == 0, "\(producer.standardError)")
            let manifest = try JSONDecoder().decode(Manifest.self, from: Data(contentsOf: URL(fileURLWithPath: manifestPath)))
            produced += manifest.total
            expected.merge(manifest.events, uniquingKeysWith: +)
        }
        /// A consistent copy of a running daemon's state directory, as a backup tool takes it (before the daemon is
        /// stopped: a process stopped inside LMDB may hold the lock a reader needs).
        func copyState(of name: String, to copy: String) throws {
            try FileManager.default.createDirectory(atPath: directory.path + "/" + copy, withIntermediateDirectories: true)
            let process = Process()
            process.executableURL = URL(fileURLWithPath: "/usr/bin/mdb_copy")
            process.arguments = [directory.path + "/" + name, directory.path + "/" + copy]
            try process.run()
            let finished = eventually(timeout: .seconds(30)) { !process.isRunning }
            if !finished { process.terminate() }
            #expect(finished && process.terminationStatus == 0)
        }

        let monitor = redisMonitor(port: redis.port)
        let first = try launchDaemon("first")
        try produce(20_000, seed: 1)
        if copyFullyAcknowledged {
            #expect(eventually(timeout: .seconds(60)) { redisTotal() == produced })
            try copyState(of: "first", to: "second")
            first.send(SIGSTOP)
        } else {
            // Mid-run: Redis shows part of the messages; the copy is older than what Redis holds once the first
            // daemon has gone on.
            #expect(eventually(timeout: .seconds(60), every: .milliseconds(5)) { redisTotal() >= 5_000 })
            try copyState(of: "first", to: "second")
            #expect(eventually(timeout: .seconds(60)) { redisTotal() == produced })
            first.send(SIGSTOP)
        }
        let second = try launchDaemon("second")
        try produce(10_000, seed: 2)
        if copyFullyAcknowledged {
            // The copy writes ahead of the stopped daemon's last write.
            #expect(eventually(timeout: .seconds(60)) { redisTotal() == produced }, "\(second.standardError.suffix(1500))")
        }
        // (A copy behind Redis waits until it has consumed as far, and says so, when its sink reads the marker before
        // its checkpoints have passed it: a race with consumption, so not asserted here; SinkStateMachineTests do.)
        first.send(SIGCONT)
        try produce(10_000, seed: 3)

        let exact = eventually(timeout: .seconds(90), every: .milliseconds(20)) {
            events.allSatisfy { event in (try? redis.get(event)).flatMap { $0.flatMap { Int($0) } } == expected[event] }
        }
        #expect(exact, "Redis total \(redisTotal()) vs \(produced); first: \(first.standardError.suffix(1500)); second: \(second.standardError.suffix(1500))")
        let (decreases, polls) = monitor.finish()
        #expect(decreases.isEmpty, "values moved backwards: \(decreases.prefix(10))")
        #expect(polls > 100)
        // Neither stopped: both are still running and stop cleanly.
        for daemon in [first, second] {
            daemon.send(SIGTERM)
            #expect(daemon.waitForExit(timeout: .seconds(15)) == 0, "\(daemon.standardError.suffix(2000))")
        }
    }

    /// A view of more than 100,000 groups (`COUNT(*)` per user) through two SIGKILLs at random moments, each
    /// while the daemon works through a chunk of new users: the restarted daemons restore every group from
    /// LMDB, and Redis ends with every user's exact count (replayed from the generator) and nothing else.
    @Test func aViewOfMoreThanAHundredThousandKeysSurvivesKillNine() throws {
        let directory = try ScratchDirectory(prefix: "eddy-crash-keys")
        defer { directory.remove() }
        let broker = try DevBrokerProcess(topics: ["test:16"])
        defer { _ = broker.stop() }
        let redis = try RedisTestServer()
        try redis.start(persistent: false)
        let pipeline = directory.path + "/users.sql"
        try """
            CREATE SOURCE user_events (event_timestamp TIMESTAMP, user VARCHAR, page VARCHAR, event VARCHAR) WITH (connector='kafka', \
            topic='test', properties.bootstrap.server='${KAFKA_BROKERS}', scan.startup.mode='earliest') FORMAT PLAIN ENCODE JSON;
            CREATE MATERIALIZED VIEW user_counts AS SELECT user, COUNT(*) FROM user_events GROUP BY user;
            CREATE SINK redis_sink FROM user_counts WITH (connector='redis', primary_key='user', redis.url='${REDIS_URL}') \
            FORMAT PLAIN ENCODE TEMPLATE (force_append_only='true', key_format='{user}', value_format='{count}');
            """.write(toFile: pipeline, atomically: true, encoding: .utf8)
        let environment = ["KAFKA_BROKERS": broker.bootstrapServers, "REDIS_URL": "redis://127.0.0.1:\(redis.port)"]
        let stateDirectory = directory.path + "/state"
        func launchDaemon() throws -> EddyProcess {
            try EddyProcess.launch(
                ["run", pipeline, "--state-dir", stateDirectory, "--http", "off", "--checkpoint-interval", "0.2"],
                environment: environment, outputDirectory: directory.path, name: "run")
        }
        let connection = try redis.connect()
        defer { connection.close() }
        func keysInRedis() -> Int {
            guard case .integer(let size)? = try? connection.command([Array("DBSIZE".utf8)]) else { return 0 }
            return Int(size)
        }

        // Three chunks, each of 60,000 messages over 60,000 users of its own seed (a population of its own): about
        // 38,000 users a chunk appear, 114,000 in all. Each user's count is replayed from the generator.
        let chunks = 3
        let chunkSize = 60_000
        var expected: [String: Int] = [:]
        var daemon = try launchDaemon()
        var daemons = [daemon]
        var random = SystemRandomNumberGenerator()
        for chunk in 0..<chunks {
            let seed = UInt64(101 + chunk)
            let producer = try EddyProcess.run([
                "produce", "--brokers", broker.bootstrapServers, "--topic", "test", "--count", String(chunkSize), "--rate", "0",
                "--seed", String(seed), "--users", String(chunkSize),
            ])
            #expect(producer.status == 0, "\(producer.standardError)")
            let keysBefore = keysInRedis()
            var generator = UserEventGenerator(seed: seed, userCount: chunkSize)
            var message: [UInt8] = []
            let marker = Array(#""user": ""#.utf8)
            for _ in 0..<chunkSize {
                message.removeAll(keepingCapacity: true)
                _ = generator.appendMessage(timestamp: EventTimestamp(epochSeconds: 0), to: &message)
                let start = message.indices.first { message[$0...].starts(with: marker) }! + marker.count
                let end = message[start...].firstIndex(of: UInt8(ascii: "\""))!
                expected[String(decoding: message[start..<end], as: UTF8.self), default: 0] += 1
            }
            if chunk < chunks - 1 {
                // A random moment while the daemon works through this chunk: once Redis holds a random part of its new users.
                let target = keysBefore + Int.random(in: 1..<(expected.count + 1 - keysBefore), using: &random)
                _ = eventually(timeout: .seconds(60), every: .milliseconds(5)) { keysInRedis() >= target }
                daemon.kill()
                #expect(daemon.waitForExit(timeout: .seconds(10)) != nil)
                daemon = try launchDaemon()
                daemons.append(daemon)
            }
        }
        #expect(expected.count >= 100_000)

        // Exact: every user's count (checked in batches once all are there), and no other key but the sink's marker.
        let users = Array(expected.keys)
        func mismatch() -> String? {
            for start in stride(from: 0, to: users.count, by: 10_000) {
                let batch = users[start..<min(users.count, start + 10_000)]
                guard case .array(let values)? = try? connection.command([Array("MGET".utf8)] + batch.map { Array($0.utf8) }) else {
                    return "MGET failed"
                }
                for (user, value) in zip(batch, values) {
                    guard case .string(let bytes) = value, Int(String(decoding: bytes, as: UTF8.self)) == expected[user] else {
                        return "\(user): Redis holds \(value), expected \(expected[user]!)"
                    }
                }
            }
            return nil
        }
        let exact = eventually(timeout: .seconds(60), every: .milliseconds(100)) { keysInRedis() >= users.count && mismatch() == nil }
        #expect(exact, "\(mismatch() ?? "") (\(keysInRedis()) keys); daemon: \(daemon.standardError.suffix(2000))")
        #expect(keysInRedis() <= users.count + 1)
        // The restarts restored the groups checkpointed before each kill.
        let restoredGroups = daemons.dropFirst().compactMap { daemon in
            daemon.standardError.split(separator: "\n").first { $0.contains("state restored") }.flatMap { line in
                line.split(separator: " ").first { $0.hasPrefix("eddy.groups=") }.flatMap { Int($0.dropFirst("eddy.groups=[".count).dropLast()) }
            }
        }
        #expect(restoredGroups.count == chunks - 1 && restoredGroups.allSatisfy { $0 > 0 }, "groups restored: \(restoredGroups)")

        #expect(daemon.waitForOutput(containing: "consuming", timeout: .seconds(60)), "\(daemon.standardError.suffix(2000))")
        daemon.send(SIGTERM)
        #expect(daemon.waitForExit(timeout: .seconds(15)) == 0, "\(daemon.standardError.suffix(2000))")
    }

    private struct Manifest: Decodable {
        let total: Int
        let events: [String: Int]
        let failed: Int
    }

    private func scenario(messages: Int, kills: Int, cascade: Bool = false) throws {
        let directory = try ScratchDirectory(prefix: "eddy-crash")
        defer { directory.remove() }
        let pipeline = cascade ? directory.path + "/cascade.sql" : examplePipeline
        if cascade { try (String(contentsOfFile: examplePipeline, encoding: .utf8) + cascadeStatements).write(toFile: pipeline, atomically: true, encoding: .utf8) }
        let broker = try DevBrokerProcess(topics: ["test:8"])
        defer { _ = broker.stop() }
        let redis = try RedisTestServer()
        try redis.start(persistent: false)
        let environment = ["KAFKA_BROKERS": broker.bootstrapServers, "REDIS_URL": "redis://127.0.0.1:\(redis.port)"]
        let stateDirectory = directory.path + "/state"
        func launchDaemon() throws -> EddyProcess {
            try EddyProcess.launch(
                ["run", pipeline, "--state-dir", stateDirectory, "--http", "off", "--checkpoint-interval", "0.2"],
                environment: environment, outputDirectory: directory.path, name: "run")
        }
        let cascadeKeys = cascade ? events.map { "cascade:" + $0 } : []
        let monitor = redisMonitor(port: redis.port, keys: events + cascadeKeys)
        var daemon = try launchDaemon()
        var daemons = [daemon]

        func redisCounts() throws -> [String: Int] {
            var counts: [String: Int] = [:]
            for event in events { if let value = try redis.get(event) { counts[event] = Int(value) } }
            return counts
        }

        // Produced in chunks by `eddy produce`, each with its manifest. Before a chunk, the daemon must be within
        // `maximumLag` of what was produced: the dev broker keeps only about 5 MB per partition (about 35 000
        // of these messages), and a daemon slowed by a loaded machine, or down between a kill and its restart,
        // must never let unread messages fall out of it.
        let chunks = 10
        let chunkSize = messages / chunks
        let maximumLag = 100_000
        var produced = 0
        var expected: [String: Int] = [:]
        var random = SystemRandomNumberGenerator()
        for chunk in 0..<chunks {
            let drained = eventually(timeout: .seconds(120), every: .milliseconds(20)) {
                ((try? redisCounts()) ?? [:]).values.reduce(0, +) >= produced - maximumLag
            }
            #expect(drained, "the daemon fell more than \(maximumLag) behind: \(daemon.standardError.suffix(1500))")
            let manifestPath = directory.path + "/manifest-\(chunk).json"
            let producer = try EddyProcess.run([
                "produce", "--brokers", broker.bootstrapServers, "--topic", "test", "--count", String(chunkSize), "--rate", "0",
                "--seed", String(11 + chunk), "--manifest", manifestPath,
            ])
            #expect(producer.status == 0, "\(producer.standardError)")
            let manifest = try JSONDecoder().decode(Manifest.self, from: Data(contentsOf: URL(fileURLWithPath: manifestPath)))
            #expect(manifest.total == chunkSize && manifest.failed == 0)
            produced += manifest.total
            expected.merge(manifest.events, uniquingKeysWith: +)

            if chunk < kills {
                // A random moment while the daemon works through this chunk: once Redis shows a random part of it.
                let target = produced - chunkSize + Int.random(in: 1..<chunkSize, using: &random)
                _ = eventually(timeout: .seconds(60), every: .milliseconds(5)) { ((try? redisCounts()) ?? [:]).values.reduce(0, +) >= target }
                daemon.kill()
                #expect(daemon.waitForExit(timeout: .seconds(10)) != nil)
                daemon = try launchDaemon()
                daemons.append(daemon)
            }
        }
        #expect(produced == messages)
        let manifest = Manifest(total: produced, events: expected, failed: 0)

        // Caught up: Redis holds the manifests' counts.
        let caughtUp = eventually(timeout: .seconds(120), every: .milliseconds(50)) { (try? redisCounts()) == manifest.events }
        #expect(caughtUp, "Redis \((try? redisCounts()) ?? [:]) vs manifest \(manifest.events); daemon: \(daemon.standardError.suffix(2000))")
        if cascade {
            // The second level sums the counts of the first: exact once the first level is.
            func totals() -> [String: Int] {
                Dictionary(uniqueKeysWithValues: events.compactMap { event in (try? redis.get("cascade:" + event))?.flatMap(Int.init).map { (event, $0) } })
            }
            let totalled = eventually(timeout: .seconds(60), every: .milliseconds(50)) { totals() == manifest.events }
            #expect(totalled, "cascade totals \(totals()) vs manifest \(manifest.events)")
        }
        let (decreases, polls) = monitor.finish()
        #expect(decreases.isEmpty, "values moved backwards: \(decreases.prefix(10))")
        #expect(polls > 100)

        // No daemon found a stored offset gone from the broker (the dev broker drops a partition's oldest
        // messages past about 5 MB; paced production keeps that behind the readers).
        let logs = daemons.map(\.standardError)
        #expect(!logs.contains { $0.contains("no longer in Kafka") })
        // Restarts resumed from checkpoints (a kill may come before a daemon's first checkpoint, so not all).
        let restoredEpochs = logs.dropFirst().compactMap { log in
            log.split(separator: "\n").first { $0.contains("state restored") }.flatMap { line in
                line.split(separator: " ").first { $0.hasPrefix("eddy.epoch=") }.flatMap { UInt64($0.dropFirst("eddy.epoch=".count)) }
            }
        }
        // A kill can land before a daemon has even restored (Redis may reach the kill's target from the previous
        // daemon's writes), so not every restart logs it.
        #expect(restoredEpochs.count <= kills && restoredEpochs.count >= kills / 2, "epochs restored: \(restoredEpochs)")
        #expect(restoredEpochs == restoredEpochs.sorted())
        #expect(restoredEpochs.filter { $0 > 0 }.count >= kills / 2, "epochs restored: \(restoredEpochs)")

        // eddy query reads the same counts from the last checkpoint while the daemon runs...
        let query = try EddyProcess.run(["query", "--state-dir", stateDirectory, "--format", "csv", "SELECT event, count FROM events_statisics_mv ORDER BY event"])
        #expect(query.status == 0, "\(query.standardError)")
        let expectedCSV = "event,count\r\n" + manifest.events.sorted { $0.key < $1.key }.map { "\($0.key),\($0.value)\r\n" }.joined()
        #expect(query.standardOutput == expectedCSV)
        if cascade {
            let totals = try EddyProcess.run(["query", "--state-dir", stateDirectory, "--format", "csv", "SELECT event, total FROM event_totals ORDER BY event"])
            #expect(totals.standardOutput == expectedCSV.replacingOccurrences(of: "event,count", with: "event,total"), "\(totals.standardError)")
        }

        // ...and the daemon stops cleanly on SIGTERM, once it runs (Redis may have been exact since before it started:
        // the previous daemon can have written everything before its kill).
        #expect(daemon.waitForOutput(containing: "consuming", timeout: .seconds(60)), "\(daemon.standardError.suffix(2000))")
        daemon.send(SIGTERM)
        #expect(daemon.waitForExit(timeout: .seconds(15)) == 0, "\(daemon.standardError.suffix(2000))")
        #expect(daemon.standardError.contains("stopped"))
    }
}
