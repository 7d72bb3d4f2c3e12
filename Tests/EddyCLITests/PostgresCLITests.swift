#if canImport(Glibc)
import Glibc
#endif
import EddyTestSupport
import Foundation
import Testing

// Acceptance tests of the PostgreSQL side (issue 12) against a real `eddy run --pg` of the example pipeline
// (librdkafka's mock cluster as the source, a real redis-server as the sink), with real clients: Debian's
// psql, Python's psycopg and asyncpg (from the venv ops/install-deps.sh makes), and raw sockets for the fuzz.

private let packageRoot = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent()
private let examplePipeline = packageRoot.appendingPathComponent("examples/seed_pipeline.sql").path
private let exampleView = "events_statisics_mv"

/// `/usr/bin/psql` or the first `psql` on PATH.
private let psqlPath: String? = {
    let directories = ["/usr/bin"] + (ProcessInfo.processInfo.environment["PATH"] ?? "").split(separator: ":").map(String.init)
    return directories.map { $0 + "/psql" }.first { FileManager.default.isExecutableFile(atPath: $0) }
}()

/// The Python of the test venv (`EDDY_TEST_VENV`, default ~/.cache/eddy/test-venv), when it exists.
private let venvPython: String? = {
    let environment = ProcessInfo.processInfo.environment
    let venv = environment["EDDY_TEST_VENV"] ?? ((environment["HOME"] ?? "/root") + "/.cache/eddy/test-venv")
    let python = venv + "/bin/python"
    return FileManager.default.isExecutableFile(atPath: python) ? python : nil
}()

@Suite("eddy run --pg: psql, psycopg, asyncpg, password, limits, fuzz", .serialized)
struct PostgresCLITests {
    @Test("psql -c SELECT and \\d answer what eddy query answers on the same checkpoint", .enabled(if: psqlPath != nil, "psql is not installed: ops/install-deps.sh test installs postgresql-client"))
    func psqlAnswersLikeEddyQuery() async throws {
        let rig = try PostgresRig()
        try rig.produce(1_200)
        try await rig.launch()
        let expected = try await rig.awaitCheckpointHolding(1_200)

        let select = try rig.psql(["-A", "-t", "-F", "|", "-c", "SELECT * FROM \(exampleView)"])
        #expect(select.status == 0, "\(select.standardError)")
        #expect(PostgresRig.counts(fromPipeSeparated: select.standardOutput) == expected)

        let list = try rig.psql(["-c", "\\d"])
        #expect(list.standardOutput.contains(exampleView) && list.standardOutput.contains("materialized view"), "\(list.standardOutput)\(list.standardError)")
        let describe = try rig.psql(["-c", "\\d \(exampleView)"])
        #expect(describe.status == 0, "\(describe.standardError)")
        #expect(describe.standardOutput.contains("Materialized view \"public.\(exampleView)\""))
        #expect(describe.standardOutput.contains("event  | character varying"))
        #expect(describe.standardOutput.contains("count  | bigint"))
        let views = try rig.psql(["-A", "-t", "-c", "SHOW MATERIALIZED VIEWS"])
        #expect(views.standardOutput.trimmingCharacters(in: .whitespacesAndNewlines) == exampleView)

        let wrong = try rig.psql(["-v", "VERBOSITY=verbose", "-c", "SELECT nope FROM \(exampleView)"])
        #expect(wrong.status != 0)
        #expect(wrong.standardError.contains("42703") && wrong.standardError.contains("LINE 1"), "\(wrong.standardError)")
        try rig.stopDaemon()
    }

    @Test("psycopg (extended protocol, parameters) and asyncpg (binary results) answer what eddy query answers",
          .enabled(if: venvPython != nil, "no test venv with psycopg and asyncpg: ops/install-deps.sh test makes one"))
    func pythonClientsAnswerLikeEddyQuery() async throws {
        let rig = try PostgresRig()
        try rig.produce(900)
        try await rig.launch()
        let expected = try await rig.awaitCheckpointHolding(900)
        let threshold = expected.values.sorted()[expected.count / 2]

        let output = try rig.python("""
            import asyncio, json, sys, psycopg, asyncpg
            port = int(sys.argv[1]); threshold = int(sys.argv[2]); result = {}
            with psycopg.connect(f"host=127.0.0.1 port={port} user=analyst dbname=eddy", connect_timeout=5) as conn:
                result["psycopg_all"] = dict(conn.execute("SELECT event, count FROM \(exampleView) ORDER BY event").fetchall())
                result["psycopg_over"] = dict(conn.execute("SELECT event, count FROM \(exampleView) WHERE count >= %s", [threshold]).fetchall())
                result["psycopg_click"] = conn.execute("SELECT count FROM \(exampleView) WHERE event = %s", ["click"]).fetchone()[0]
            async def main():
                conn = await asyncpg.connect(host="127.0.0.1", port=port, user="analyst", database="eddy", timeout=5)
                rows = await conn.fetch("SELECT event, count FROM \(exampleView) WHERE count >= $1 ORDER BY count DESC LIMIT $2", threshold, 100)
                result["asyncpg_over"] = {r["event"]: r["count"] for r in rows}
                result["asyncpg_types"] = sorted({type(r["count"]).__name__ for r in rows})
                result["asyncpg_version"] = await conn.fetchval("SELECT version()")
                await conn.close()
            asyncio.run(main())
            print(json.dumps(result))
            """, arguments: [String(rig.pgPort), String(threshold)])
        let result = try #require(try JSONSerialization.jsonObject(with: Data(output.utf8)) as? [String: Any], "\(output)")
        let over = expected.filter { $0.value >= threshold }
        #expect(result["psycopg_all"] as? [String: Int] == expected)
        #expect(result["psycopg_over"] as? [String: Int] == over)
        #expect(result["psycopg_click"] as? Int == expected["click"])
        #expect(result["asyncpg_over"] as? [String: Int] == over)
        // asyncpg decoded the count column from binary int8 as a Python int.
        #expect(result["asyncpg_types"] as? [String] == ["int"])
        #expect((result["asyncpg_version"] as? String)?.contains("Eddy") == true)
        try rig.stopDaemon()
    }

    @Test("EDDY_PG_PASSWORD: psql gets in with it (SCRAM-SHA-256); a wrong one is refused with 28P01",
          .enabled(if: psqlPath != nil && venvPython != nil, "needs psql and the test venv: ops/install-deps.sh test"))
    func passwordAuthentication() async throws {
        let rig = try PostgresRig()
        try rig.produce(300)
        let password = "correct horse \(UInt32.random(in: 0...UInt32.max))"
        try await rig.launch(environment: ["EDDY_PG_PASSWORD": password])
        let expected = try await rig.awaitCheckpointHolding(300)

        let accepted = try rig.psql(["-A", "-t", "-F", "|", "-c", "SELECT * FROM \(exampleView)"], environment: ["PGPASSWORD": password])
        #expect(accepted.status == 0, "\(accepted.standardError)")
        #expect(PostgresRig.counts(fromPipeSeparated: accepted.standardOutput) == expected)
        let refused = try rig.psql(["-c", "SELECT 1"], environment: ["PGPASSWORD": "wrong"])
        #expect(refused.status != 0)
        #expect(refused.standardError.contains("password authentication failed"), "\(refused.standardError)")
        let sqlState = try rig.python("""
            import asyncio, sys, asyncpg
            async def main():
                try:
                    await asyncpg.connect(host="127.0.0.1", port=int(sys.argv[1]), user="analyst", password="wrong", timeout=5)
                    print("connected")
                except asyncpg.PostgresError as error:
                    print(error.sqlstate)
            asyncio.run(main())
            """, arguments: [String(rig.pgPort)])
        #expect(sqlState.trimmingCharacters(in: .whitespacesAndNewlines) == "28P01")
        // The password never shows in the daemon's output.
        #expect(!rig.daemonOutput.contains(password))
        try rig.stopDaemon()
    }

    @Test("limits: connections over --pg-max-connections get 53300; idle ones are closed with 57P05")
    func connectionLimits() async throws {
        let rig = try PostgresRig()
        try rig.produce(50)
        try await rig.launch(["--pg-max-connections", "2", "--pg-idle-timeout", "1", "--pg-query-timeout", "1"])
        _ = try await rig.awaitCheckpointHolding(50)
        let first = try WireClient(port: rig.pgPort)
        let second = try WireClient(port: rig.pgPort)
        for client in [first, second] {
            client.send(WireClient.startup(user: "analyst"))
            #expect(client.read(until: { $0.contains(UInt8(ascii: "Z")) }).contains(UInt8(ascii: "Z")), "no ReadyForQuery")
        }
        let third = try WireClient(port: rig.pgPort)
        third.send(WireClient.startup(user: "analyst"))
        let refusal = String(decoding: third.readUntilClosed(), as: UTF8.self)
        #expect(refusal.contains("53300"), "\(refusal)")
        // Nothing sent for a second: both are told why and closed.
        for client in [first, second] {
            let goodbye = String(decoding: client.readUntilClosed(timeout: .seconds(10)), as: UTF8.self)
            #expect(goodbye.contains("57P05"), "\(goodbye)")
        }
        let metrics = try await rig.metricsText()
        #expect(metrics.contains("eddy_pg_connections_refused_total{reason=\"limit\"} 1"), "\(metrics)")
        #expect(metrics.contains("eddy_pg_connections_closed_total{reason=\"idle\"} 2"))
        try rig.stopDaemon()
    }

    @Test("fuzz: random and truncated messages close only their connection; the daemon answers and keeps counting")
    func fuzz() async throws {
        let rig = try PostgresRig()
        try rig.produce(400)
        try await rig.launch()
        _ = try await rig.awaitCheckpointHolding(400)
        var generator = SeededGenerator(seed: 12)
        let valid = WireClient.startup(user: "fuzz") + WireClient.typed("Q", Array("SELECT * FROM \(exampleView)".utf8) + [0])
        var unanswered = 0
        for round in 0..<60 {
            let client = try WireClient(port: rig.pgPort)
            var bytes: [UInt8]
            switch round % 4 {
            case 0:  // random bytes from the first one
                bytes = (0..<Int.random(in: 1...200, using: &generator)).map { _ in UInt8.random(in: 0...255, using: &generator) }
            case 1:  // a valid start-up, then a random typed message
                bytes = WireClient.startup(user: "fuzz") + WireClient.typed(
                    Character(Unicode.Scalar(UInt8.random(in: 0x21...0x7A, using: &generator))),
                    (0..<Int.random(in: 0...40, using: &generator)).map { _ in UInt8.random(in: 0...255, using: &generator) })
            case 2:  // valid bytes cut short, then the client closes its side
                bytes = Array(valid.prefix(Int.random(in: 1..<valid.count, using: &generator)))
            default:  // valid bytes with one byte flipped (lengths included)
                bytes = valid
                bytes[Int.random(in: 0..<bytes.count, using: &generator)] ^= UInt8.random(in: 1...255, using: &generator)
            }
            client.send(bytes)
            client.shutdownWrite()
            let answer = client.readUntilClosed(timeout: .seconds(5))
            if !client.wasClosed { unanswered += 1 }
            _ = answer
            #expect(rig.daemonIsRunning, "the daemon died at fuzz round \(round): \(rig.daemonOutput)")
        }
        #expect(unanswered == 0, "\(unanswered) connections neither answered to the end nor closed")

        // The pipeline keeps counting, and the PostgreSQL side still answers exactly.
        try rig.produce(500)
        let expected = try await rig.awaitCheckpointHolding(900)
        let select = try WireClient(port: rig.pgPort)
        select.send(valid)
        // Up to the ReadyForQuery after the CommandComplete (the one after start-up comes first).
        let reply = select.read(until: { String(decoding: $0, as: UTF8.self).contains("SELECT ") && $0.suffix(6).first == UInt8(ascii: "Z") })
        let total = WireClient.dataRows(in: reply).compactMap { Int($0[1]) }.reduce(0, +)
        #expect(total == expected.values.reduce(0, +))
        let metrics = try await rig.metricsText()
        #expect(metrics.contains("eddy_pg_connections_closed_total{reason=\"protocol\"}"))
        #expect(!metrics.contains("eddy_pg_connections_closed_total{reason=\"protocol\"} 0"), "no malformed message was counted")
        #expect(!metrics.contains("eddy_pg_queries_total{outcome=\"ok\"} 0"))
        try rig.stopDaemon()
    }
}

// MARK: - The rig

/// The mock cluster with the example's topic, a real redis-server, a state directory, and one `eddy run
/// --pg` of the example pipeline at a time.
private final class PostgresRig: @unchecked Sendable {
    let broker: KafkaTestBroker
    let redis: RedisTestServer
    let directory: ScratchDirectory
    var stateDirectory: String { directory.path + "/state" }
    private(set) var daemon: EddyProcess?
    private(set) var httpPort = 0
    private(set) var pgPort = 0
    private var seed: UInt64 = 100

    init() throws {
        broker = try KafkaTestBroker.start(topics: ["test": 3])
        redis = try RedisTestServer()
        try redis.start()
        directory = try ScratchDirectory(prefix: "eddy-pg")
    }

    deinit {
        if daemon?.isRunning == true { daemon?.kill() }
        directory.remove()
    }

    func produce(_ count: Int) throws {
        seed += 1
        let result = try broker.produceEvents(topic: "test", count: count, partitions: 3, seed: seed)
        guard result.total == count else { throw ProcessError("the broker acknowledged \(result.total) of \(count) events") }
    }

    func launch(_ extraArguments: [String] = [], environment extra: [String: String] = [:]) async throws {
        let environment = ["KAFKA_BROKERS": broker.bootstrapServers, "REDIS_URL": "redis://127.0.0.1:\(redis.port)"].merging(extra) { $1 }
        let pgPort = LoopbackPort.unused()
        let (process, port) = try await EddyProcess.launchServingHTTP(environment: environment, outputDirectory: directory.path, name: "eddy-run") {
            ["run", examplePipeline, "--state-dir", self.stateDirectory, "--http", "127.0.0.1:\($0)", "--pg", "127.0.0.1:\(pgPort)"] + extraArguments
        }
        daemon = process
        httpPort = port
        self.pgPort = pgPort
        guard eventually(timeout: .seconds(10), { (try? WireClient(port: pgPort)) != nil }) else {
            throw ProcessError("eddy run does not listen on --pg 127.0.0.1:\(pgPort): \(process.standardError)")
        }
    }

    func stopDaemon() throws { try daemon?.stopGracefully() }

    var daemonIsRunning: Bool { daemon?.isRunning == true }
    var daemonOutput: String { (daemon?.standardOutput ?? "") + (daemon?.standardError ?? "") }

    /// Waits until `eddy query` on the state directory counts `total` events; returns its counts per event.
    func awaitCheckpointHolding(_ total: Int, timeout: Duration = .seconds(30)) async throws -> [String: Int] {
        var counts: [String: Int] = [:]
        _ = await awaitCondition(timeout: timeout) {
            counts = (try? self.queryCounts()) ?? [:]
            return counts.values.reduce(0, +) >= total
        }
        guard counts.values.reduce(0, +) == total else {
            throw ProcessError("the checkpoint counts \(counts.values.reduce(0, +)) events, expected \(total): \(daemonOutput)")
        }
        return counts
    }

    /// `eddy query --format json`: the view's counts in the last checkpoint.
    func queryCounts() throws -> [String: Int] {
        let run = try EddyProcess.run(["query", "--state-dir", stateDirectory, "--format", "json", "SELECT * FROM \(exampleView)"])
        guard run.status == 0 else { throw ProcessError("eddy query failed: \(run.standardError)") }
        guard let rows = try JSONSerialization.jsonObject(with: Data(run.standardOutput.utf8)) as? [[String: Any]] else {
            throw ProcessError("eddy query printed no JSON rows: \(run.standardOutput)")
        }
        return Dictionary(uniqueKeysWithValues: rows.compactMap { row in (row["event"] as? String).flatMap { event in (row["count"] as? Int).map { (event, $0) } } })
    }

    /// `psql -h 127.0.0.1 -p PORT -U analyst eddy ARGS`, to completion.
    func psql(_ arguments: [String], environment: [String: String] = [:]) throws -> ClientRun {
        try runToCompletion(URL(fileURLWithPath: psqlPath!), ["-X", "-h", "127.0.0.1", "-p", String(pgPort), "-U", "analyst", "eddy"] + arguments,
                            environment: ["PGCONNECT_TIMEOUT": "5"].merging(environment) { $1 })
    }

    /// Runs a Python script with the venv's interpreter; its standard output, or an error with its standard error.
    func python(_ script: String, arguments: [String]) throws -> String {
        let path = directory.path + "/script-\(UUID().uuidString.prefix(8)).py"
        try script.write(toFile: path, atomically: true, encoding: .utf8)
        let finished = try runToCompletion(URL(fileURLWithPath: venvPython!), [path] + arguments, environment: [:])
        guard finished.status == 0 else { throw ProcessError("python failed (\(finished.status)): \(finished.standardError)") }
        return finished.standardOutput
    }

    private func runToCompletion(_ executable: URL, _ arguments: [String], environment: [String: String]) throws -> ClientRun {
        let process = try EddyProcess.launch(arguments, executable: executable, environment: environment, outputDirectory: directory.path, name: executable.lastPathComponent)
        if process.waitForExit(timeout: .seconds(30)) == nil {
            process.kill()
            _ = process.waitForExit(timeout: .seconds(5))
        }
        return ClientRun(status: process.exitStatus ?? -1, standardOutput: process.standardOutput, standardError: process.standardError)
    }

    func metricsText() async throws -> String {
        let response = try await HTTPTestClient.get("http://127.0.0.1:\(httpPort)/metrics")
        return response.text
    }

    /// `event|count` lines (psql -A -t -F '|') as counts per event.
    static func counts(fromPipeSeparated text: String) -> [String: Int] {
        var counts: [String: Int] = [:]
        for line in text.split(separator: "\n") {
            let fields = line.split(separator: "|")
            if fields.count == 2, let count = Int(fields[1]) { counts[String(fields[0])] = count }
        }
        return counts
    }
}

/// What a client program printed and returned.
private struct ClientRun {
    let status: Int32
    let standardOutput: String
    let standardError: String
}

/// A raw TCP client of the PostgreSQL protocol: exact bytes out, whatever comes back.
private final class WireClient {
    private let descriptor: Int32
    private(set) var wasClosed = false

    init(port: Int) throws {
        descriptor = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
        var address = sockaddr_in()
        address.sin_family = sa_family_t(AF_INET)
        address.sin_port = in_port_t(UInt16(port).bigEndian)
        address.sin_addr.s_addr = in_addr_t(0x7F00_0001).bigEndian
        let connected = withUnsafePointer(to: &address) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { connect(descriptor, $0, socklen_t(MemoryLayout<sockaddr_in>.size)) }
        }
        guard connected == 0 else {
            close(descriptor)
            throw ProcessError("cannot connect to 127.0.0.1:\(port): errno \(errno)")
        }
    }

    deinit { close(descriptor) }

    func send(_ bytes: [UInt8]) {
        var offset = 0
        while offset < bytes.count {
            let sent = bytes[offset...].withUnsafeBytes { Glibc.send(descriptor, $0.baseAddress, $0.count, Int32(MSG_NOSIGNAL)) }
            if sent <= 0 { return }
            offset += sent
        }
    }

    func shutdownWrite() { shutdown(descriptor, Int32(SHUT_WR)) }

    /// Reads until `done` holds for what was read, the peer closes, or `timeout` passes.
    func read(until done: ([UInt8]) -> Bool, timeout: Duration = .seconds(10)) -> [UInt8] {
        var received: [UInt8] = []
        let deadline = ContinuousClock.now + timeout
        var buffer = [UInt8](repeating: 0, count: 65_536)
        while !done(received), ContinuousClock.now < deadline {
            var poller = pollfd(fd: descriptor, events: Int16(POLLIN), revents: 0)
            guard poll(&poller, 1, 50) > 0 else { continue }
            let count = buffer.withUnsafeMutableBytes { recv(descriptor, $0.baseAddress, $0.count, 0) }
            if count <= 0 {
                wasClosed = true
                break
            }
            received += buffer[0..<count]
        }
        return received
    }

    func readUntilClosed(timeout: Duration = .seconds(10)) -> [UInt8] { read(until: { _ in false }, timeout: timeout) }

    static func startup(user: String) -> [UInt8] {
        var body: [UInt8] = [0, 3, 0, 0]
        for text in ["user", user, "database", "eddy"] { body += Array(text.utf8) + [0] }
        body.append(0)
        return int32(body.count + 4) + body
    }

    static func typed(_ type: Character, _ body: [UInt8]) -> [UInt8] { [type.asciiValue!] + int32(body.count + 4) + body }

    static func int32(_ value: Int) -> [UInt8] { (0..<4).map { UInt8(truncatingIfNeeded: value >> (24 - 8 * $0)) } }

    /// The text cells of each DataRow in a reply.
    static func dataRows(in bytes: [UInt8]) -> [[String]] {
        var rows: [[String]] = []
        var index = 0
        func int(_ at: Int, _ size: Int) -> Int { (0..<size).reduce(0) { $0 << 8 | Int(bytes[at + $1]) } }
        while index + 5 <= bytes.count {
            let length = int(index + 1, 4)
            if bytes[index] == UInt8(ascii: "D"), index + 1 + length <= bytes.count {
                var cursor = index + 7
                var cells: [String] = []
                for _ in 0..<int(index + 5, 2) {
                    let size = Int(Int32(truncatingIfNeeded: int(cursor, 4)))
                    cursor += 4
                    cells.append(size < 0 ? "" : String(decoding: bytes[cursor..<(cursor + size)], as: UTF8.self))
                    cursor += max(0, size)
                }
                rows.append(cells)
            }
            index += 1 + length
        }
        return rows
    }
}

/// SplitMix64: the same fuzz every run.
private struct SeededGenerator: RandomNumberGenerator {
    var state: UInt64
    init(seed: UInt64) { state = seed }
    mutating func next() -> UInt64 {
        state &+= 0x9E37_79B9_7F4A_7C15
        var z = state
        z = (z ^ (z >> 30)) &* 0xBF58_476D_1CE4_E5B9
        z = (z ^ (z >> 27)) &* 0x94D0_49BB_1331_11EB
        return z ^ (z >> 31)
    }
}
