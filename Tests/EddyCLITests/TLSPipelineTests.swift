import EddyRedis
import EddyTestSupport
import Foundation
import Testing

/// The pipeline file users start from.
private let examplePipeline = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent()
    .deletingLastPathComponent().appendingPathComponent("examples/seed_pipeline.sql").path

/// The example pipeline with its sink's TLS options taken from the environment (`REDIS_CA`, `REDIS_CERT`,
/// `REDIS_KEY`), written to `directory`.
private func tlsPipeline(in directory: String) throws -> String {
    let text = try String(contentsOfFile: examplePipeline, encoding: .utf8)
    let sinkURL = "redis.url= '${REDIS_URL}'"
    guard text.contains(sinkURL) else { throw ProcessError("examples/seed_pipeline.sql no longer holds \(sinkURL)") }
    let path = directory + "/tls_pipeline.sql"
    try text.replacingOccurrences(of: sinkURL, with: """
        \(sinkURL), redis.ssl.ca.location='${REDIS_CA}', redis.ssl.certificate.location='${REDIS_CERT}', redis.ssl.key.location='${REDIS_KEY}'
        """).write(toFile: path, atomically: true, encoding: .utf8)
    return path
}

private struct Manifest: Decodable {
    let total: Int
    let events: [String: Int]
}

/// `eddy run` writing to a redis-server that speaks only TLS (`--tls-port`, client certificates required).
@Suite("eddy run over rediss://", .serialized)
struct TLSPipelineTests {
    @Test("the example pipeline over rediss:// ends exact across two kill -9s, on the TLS port")
    func examplePipelineOverTLSEndsExactAcrossKills() throws {
        let certificates = try TestCertificates.make()
        defer { certificates.remove() }
        let directory = try ScratchDirectory(prefix: "eddy-tls")
        defer { directory.remove() }
        let broker = try DevBrokerProcess(topics: ["test:4"])
        defer { _ = broker.stop() }
        let redis = try RedisTestServer(tls: .init(certificates: certificates, requireClientCertificate: true))
        try redis.start(persistent: false)
        let environment = [
            "KAFKA_BROKERS": broker.bootstrapServers, "REDIS_URL": "rediss://127.0.0.1:\(redis.port)", "REDIS_CA": certificates.caFile,
            "REDIS_CERT": certificates.client.certificate, "REDIS_KEY": certificates.client.key,
        ]
        let pipeline = try tlsPipeline(in: directory.path)
        let stateDirectory = directory.path + "/state"
        func launchDaemon() throws -> EddyProcess {
            try EddyProcess.launch(
                ["run", pipeline, "--state-dir", stateDirectory, "--http", "off", "--checkpoint-interval", "0.2"],
                environment: environment, outputDirectory: directory.path, name: "run")
        }
        let events = ["click", "scroll", "submit", "download", "focus"]
        func redisCounts() -> [String: Int] {
            var counts: [String: Int] = [:]
            for event in events { if let value = try? redis.get(event), let count = Int(value) { counts[event] = count } }
            return counts
        }
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
            expected.merge(manifest.events, uniquingKeysWith: +)
            produced += manifest.total
        }

        // Three chunks; during each of the first two, a SIGKILL at a random moment once Redis shows part of it
        // (epochs written over TLS before the kill), then a restart from the state directory.
        var daemon = try launchDaemon()
        let chunk = 15_000
        var random = SystemRandomNumberGenerator()
        for round in 0..<3 {
            try produce(chunk, seed: round + 1)
            guard round < 2 else { break }
            let target = produced - chunk + Int.random(in: 1..<chunk, using: &random)
            let reached = eventually(timeout: .seconds(60), every: .milliseconds(5)) { redisCounts().values.reduce(0, +) >= target }
            #expect(reached, "\(daemon.standardError.suffix(2000))")
            daemon.kill()
            #expect(daemon.waitForExit(timeout: .seconds(10)) != nil)
            daemon = try launchDaemon()
        }

        let exact = eventually(timeout: .seconds(120), every: .milliseconds(50)) { redisCounts() == expected }
        #expect(exact, "Redis \(redisCounts()) vs produced \(expected); daemon: \(daemon.standardError.suffix(2000))")
        #expect(expected.values.reduce(0, +) == produced && produced == 3 * chunk)

        // The sink's connection is named, and is the one on the TLS port (which speaks nothing else).
        let clients = try #require(try redis.command("CLIENT", "LIST").text)
        let sinkClient = try #require(clients.split(separator: "\n").first { $0.contains(" name=eddy:redis_sink ") }, "\(clients)")
        #expect(sinkClient.contains(" laddr=127.0.0.1:\(redis.port) "), "\(sinkClient)")
        try daemon.stopGracefully()
        #expect(!daemon.standardError.contains(certificates.client.key))
    }

    @Test("a CA that did not sign Redis' certificate: the daemon says so at start and in /readyz, and writes nothing")
    func aWrongCAIsToldAtStartAndInReadiness() async throws {
        let certificates = try TestCertificates.make()
        defer { certificates.remove() }
        let directory = try ScratchDirectory(prefix: "eddy-tls")
        defer { directory.remove() }
        let broker = try DevBrokerProcess(topics: ["test:1"])
        defer { _ = broker.stop() }
        let redis = try RedisTestServer(tls: .init(certificates: certificates))
        try redis.start(persistent: false)
        let environment = [
            "KAFKA_BROKERS": broker.bootstrapServers, "REDIS_URL": "rediss://127.0.0.1:\(redis.port)", "REDIS_CA": certificates.otherCAFile,
            "REDIS_CERT": certificates.client.certificate, "REDIS_KEY": certificates.client.key,
        ]
        let pipeline = try tlsPipeline(in: directory.path)
        let (daemon, port) = try await EddyProcess.launchServingHTTP(environment: environment, outputDirectory: directory.path, name: "run") { port in
            ["run", pipeline, "--state-dir", directory.path + "/state", "--http", "127.0.0.1:\(port)", "--checkpoint-interval", "0.2"]
        }
        let reason = "cannot connect to Redis at 127.0.0.1:\(redis.port) over TLS: its certificate failed verification"
        #expect(daemon.waitForOutput(containing: reason), "\(daemon.standardError.suffix(2000))")
        var readiness: HTTPTestResponse?
        let notReady = await awaitCondition(timeout: .seconds(20)) {
            readiness = try? await HTTPTestClient.get("http://127.0.0.1:\(port)/readyz")
            return readiness?.status == 503 && readiness?.text.contains(reason) == true
        }
        #expect(notReady, "\(readiness?.status ?? 0): \(readiness?.text ?? "")")
        #expect(try redis.get("eddy:redis_sink:epoch") == nil)
        #expect(!daemon.standardError.contains(certificates.client.key))
        // Not stopped gracefully: its final flush would wait out its bound for a Redis it cannot reach.
        daemon.kill()
        #expect(daemon.waitForExit(timeout: .seconds(10)) != nil)
    }
}
