import EddyRedis
import EddyTestSupport
import Foundation
import Testing

/// `rediss://` against Debian's redis-server listening with `--tls-port`, with certificates made by `openssl`.
@Suite struct RedisTLSSessionTests {
    private let certificates: TestCertificates

    init() throws { certificates = try TestCertificates.make() }

    private func tlsServer(
        password: String? = nil, server: CertificateFiles? = nil, requireClientCertificate: Bool = false
    ) throws -> RedisTestServer {
        let redis = try RedisTestServer(
            password: password, tls: .init(certificates: certificates, server: server, requireClientCertificate: requireClientCertificate))
        try redis.start(persistent: false)
        return redis
    }

    private func tlsURL(_ server: RedisTestServer, _ settings: RedisTLSSettings) -> RedisURL {
        var url = server.url
        url.tls = settings
        return url
    }

    @Test func commandsPipelinesAndLargeValuesGoThroughTLS() throws {
        defer { certificates.remove() }
        let server = try tlsServer(password: "tls secret")
        let connection = try connect(server.url)
        #expect(server.url.description == "rediss://:***@127.0.0.1:\(server.port)/0")
        // A value much larger than a TLS record (16 KiB) and than the read buffer, both ways.
        let large = (0..<3_000_000).map { UInt8(truncatingIfNeeded: $0 &* 31) }
        #expect(try connection.command([bytes("SET"), bytes("large"), large]) == .status("OK"))
        #expect(try connection.command([bytes("GET"), bytes("large")]) == .string(large))
        let replies = try connection.pipeline((0..<2_000).map { [bytes("SET"), bytes("k\($0)"), bytes("v\($0)")] })
        #expect(replies.count == 2_000 && replies.allSatisfy { $0 == .status("OK") })
        // Seen from the plain-text side door: the writes are there.
        #expect(try server.get("k1999") == "v1999")
        #expect(try server.command("STRLEN", "large") == .integer(3_000_000))
        // The epoch writer's transaction runs over TLS too.
        let writer = RedisEpochWriter(connection: connection, logger: testLogger)
        let refused: Never? = try writer.write(
            sink: "s", marker: bytes("7"), pairs: [(key: bytes("a"), value: bytes("1")), (key: bytes("k0"), value: nil)]
        ) { _ in .write }
        #expect(refused == nil)
        #expect(try server.get("eddy:s:epoch") == "7" && server.get("a") == "1" && server.get("k0") == nil)
    }

    @Test func theSystemStoreDoesNotTrustAPrivateCA() throws {
        defer { certificates.remove() }
        let server = try tlsServer()
        let error = #expect(throws: RedisError.self) { try connect(tlsURL(server, RedisTLSSettings())) }
        #expect(error?.code == .tlsCertificateRejected)
        #expect(error?.isRetriable == false)
        // redis-server sends its CA with its certificate: a self-signed root that the store does not hold.
        #expect(error?.reason == """
            cannot connect to Redis at 127.0.0.1:\(server.port) over TLS: its certificate failed verification: self-signed certificate \
            in certificate chain (trusting the system CA store, expecting the name 127.0.0.1)
            """)
    }

    @Test func aWrongCAIsRejectedAndNothingIsSentInPlainText() throws {
        defer { certificates.remove() }
        // The server has no password: were the client to go on in plain text, its AUTH would be counted.
        let server = try tlsServer()
        var url = tlsURL(server, RedisTLSSettings(caFile: certificates.otherCAFile))
        url.password = "pw"
        let error = #expect(throws: RedisError.self) { try connect(url) }
        #expect(error?.code == .tlsCertificateRejected)
        #expect(error?.reason == """
            cannot connect to Redis at 127.0.0.1:\(server.port) over TLS: its certificate failed verification: self-signed certificate \
            in certificate chain (trusting the CA file \(certificates.otherCAFile), expecting the name 127.0.0.1)
            """)
        // The password was never sent: no AUTH reached the server, and no connection stays open.
        #expect(try server.command("INFO", "commandstats").text?.contains("cmdstat_auth") == false)
        #expect(try eventually { try server.connectedClients() == 0 })
    }

    @Test func anExpiredCertificateIsRejected() throws {
        defer { certificates.remove() }
        let server = try tlsServer(server: certificates.expiredServer)
        let error = #expect(throws: RedisError.self) { try connect(server.url) }
        #expect(error?.code == .tlsCertificateRejected)
        #expect(error?.reason.hasPrefix("cannot connect to Redis at 127.0.0.1:\(server.port) over TLS: its certificate failed verification: certificate has expired (") == true)
    }

    @Test func theCertificateMustCarryTheExpectedName() throws {
        defer { certificates.remove() }
        let server = try tlsServer(server: certificates.namedServer)
        let byAddress = #expect(throws: RedisError.self) { try connect(server.url) }
        #expect(byAddress?.code == .tlsCertificateRejected)
        #expect(byAddress?.reason.contains("IP address mismatch") == true)

        var url = server.url
        url.tls?.serverName = "other.test"
        let otherName = #expect(throws: RedisError.self) { try connect(url) }
        #expect(otherName?.code == .tlsCertificateRejected)
        #expect(otherName?.reason.contains("hostname mismatch (trusting the CA file \(certificates.caFile), expecting the name other.test)") == true)

        url.tls?.serverName = "redis.test"
        #expect(try connect(url).command("PING") == .status("PONG"))
    }

    @Test func aServerThatAsksForAClientCertificateGetsOne() throws {
        defer { certificates.remove() }
        let server = try tlsServer(requireClientCertificate: true)
        #expect(try connect(server.url).command("SET", "k", "v") == .status("OK"))

        let anonymous = #expect(throws: RedisError.self) { try connect(tlsURL(server, RedisTLSSettings(caFile: certificates.caFile))) }
        #expect(anonymous?.breaksConnection == true)
        #expect(anonymous?.reason.contains("127.0.0.1:\(server.port)") == true)
        // The server drops the connection at the first command; its alert may or may not be read first.
        #expect(anonymous?.reason.hasSuffix(
            "(if the server requires client certificates, set redis.ssl.certificate.location and redis.ssl.key.location)") == true,
            "\(anonymous?.reason ?? "")")
    }

    @Test func unusableFilesAreNamedButTheKeyPathIsNot() throws {
        defer { certificates.remove() }
        let server = try tlsServer()
        let missingCA = #expect(throws: RedisError.self) { try connect(tlsURL(server, RedisTLSSettings(caFile: "/nonexistent/ca.pem"))) }
        #expect(missingCA?.code == .invalidConfiguration)
        #expect(missingCA?.isRetriable == false)
        #expect(missingCA?.reason.hasPrefix("cannot connect to Redis at 127.0.0.1:\(server.port) over TLS: cannot use the CA file /nonexistent/ca.pem (redis.ssl.ca.location): ") == true)

        let secretPath = "/nonexistent/secret-place/client.key"
        let missingKey = #expect(throws: RedisError.self) {
            try connect(tlsURL(server, RedisTLSSettings(caFile: certificates.caFile, certificateFile: certificates.client.certificate, keyFile: secretPath)))
        }
        #expect(missingKey?.code == .invalidConfiguration)
        #expect(missingKey?.reason.hasPrefix("cannot connect to Redis at 127.0.0.1:\(server.port) over TLS: cannot use the client key (redis.ssl.key.location): ") == true)
        #expect(missingKey?.reason.contains("secret-place") == false)

        // A key that is not the certificate's.
        let mismatched = #expect(throws: RedisError.self) {
            try connect(tlsURL(server, RedisTLSSettings(caFile: certificates.caFile, certificateFile: certificates.client.certificate, keyFile: certificates.server.key)))
        }
        #expect(mismatched?.code == .invalidConfiguration)
        #expect(mismatched?.reason == "cannot connect to Redis at 127.0.0.1:\(server.port) over TLS: cannot use the client key (redis.ssl.key.location): key values mismatch")
        #expect(mismatched?.reason.contains(certificates.server.key) == false)
    }

    @Test func aPlainTextPortIsNotSpokenToInPlainText() throws {
        defer { certificates.remove() }
        let plain = try startedServer()
        let url = RedisURL(host: "127.0.0.1", port: plain.port, password: "pw", tls: RedisTLSSettings(caFile: certificates.caFile))
        let error = #expect(throws: RedisError.self) { try connect(url, connectTimeout: .milliseconds(300)) }
        // Redis waits for the end of an inline command, or answers one with an error line if the hello holds a
        // newline: a timeout or a failed handshake, both saying what to check.
        #expect(error?.code == .timeout || error?.code == .tlsHandshakeFailed)
        #expect(error?.reason.hasPrefix("cannot connect to Redis at 127.0.0.1:\(plain.port) over TLS: ") == true)
        #expect(error?.reason.hasSuffix("(is TLS enabled on that port?)") == true, "\(error?.reason ?? "")")
        #expect(try plain.command("INFO", "commandstats").text?.contains("cmdstat_auth") == false)
    }

    @Test func aSilentServerTimesOutDuringTheTLSHandshake() throws {
        defer { certificates.remove() }
        let listener = SilentListener()
        let url = RedisURL(host: "127.0.0.1", port: listener.port, tls: RedisTLSSettings(caFile: certificates.caFile))
        let error = #expect(throws: RedisError.self) { try connect(url, connectTimeout: .milliseconds(200)) }
        #expect(error?.code == .timeout)
        #expect(error?.reason == "cannot connect to Redis at 127.0.0.1:\(listener.port) over TLS: no TLS handshake within 0.2 seconds (is TLS enabled on that port?)")
    }

    @Test func aCommandTimeoutOrAServerGoneClosesTheTLSConnection() throws {
        defer { certificates.remove() }
        let server = try tlsServer()
        let connection = try connect(server.url, commandTimeout: .milliseconds(200))
        try server.pause(writesFor: .seconds(30))
        defer { try? server.unpause() }
        let timedOut = #expect(throws: RedisError.self) { try connection.command("SET", "k", "late") }
        #expect(timedOut?.code == .timeout)
        #expect(timedOut?.reason == "Redis at 127.0.0.1:\(server.port) did not answer SET within 0.2 seconds; the connection was closed")
        #expect(!connection.isOpen)
        // The SET queued in the paused server died with the closed socket: it never runs.
        #expect(try eventually { try server.connectedClients() == 0 })
        try server.unpause()
        #expect(try server.get("k") == nil)

        // A write to a connection the server has closed fails (EPIPE), and does not end the process (SIGPIPE).
        let killed = try connect(server.url)
        guard case .integer(let id) = try killed.command("CLIENT", "ID") else {
            Issue.record("CLIENT ID is not an integer")
            return
        }
        try server.command("CLIENT", "KILL", "ID", String(id))
        let large = [UInt8](repeating: 120, count: 16 << 20)
        let broken = #expect(throws: RedisError.self) { try killed.command([bytes("SET"), bytes("k"), large]) }
        #expect(broken?.code == .connectionBroken)

        let second = try connect(server.url)
        server.kill()
        let gone = #expect(throws: RedisError.self) { try second.command("PING") }
        #expect(gone?.code == .connectionBroken)
        #expect(gone?.breaksConnection == true)
        #expect(gone?.reason == "Redis at 127.0.0.1:\(server.port) closed the connection during PING")
    }
}
