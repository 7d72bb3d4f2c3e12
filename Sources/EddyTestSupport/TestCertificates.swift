import Foundation

/// A certificate and its private key, as PEM files.
public struct CertificateFiles: Sendable, Equatable {
    public let certificate: String
    public let key: String
}

/// Certificates for TLS tests, made with the `openssl` command in their own directory (removed with
/// `remove()`): a CA, and signed by it a server certificate for `127.0.0.1` and `localhost`, the same
/// expired, one for the name `redis.test` only, and a client certificate; plus a second, unrelated CA
/// (what a wrong `redis.ssl.ca.location` names). EC P-256 keys: quick to make.
public struct TestCertificates: Sendable {
    public let directory: String
    /// The CA that signed every certificate below.
    public let caFile: String
    /// Another CA, which signed none of them.
    public let otherCAFile: String
    /// For `IP:127.0.0.1` and `DNS:localhost`, valid for two days.
    public let server: CertificateFiles
    /// As `server`, but it expired a day before it was made.
    public let expiredServer: CertificateFiles
    /// For `DNS:redis.test` only: connecting to 127.0.0.1 needs `redis.ssl.server.name='redis.test'`.
    public let namedServer: CertificateFiles
    /// A client certificate, for servers started with `tls-auth-clients yes`.
    public let client: CertificateFiles

    /// Makes every file; throws with `openssl`'s error output when a step fails.
    public static func make() throws -> TestCertificates {
        let scratch = try ScratchDirectory(prefix: "eddy-certificates")
        let directory = scratch.path
        let config = directory + "/openssl.cnf"
        try """
            [req]
            distinguished_name = dn
            prompt = no
            [dn]
            CN = unused
            [ca]
            basicConstraints = critical, CA:TRUE
            keyUsage = critical, keyCertSign, cRLSign
            subjectKeyIdentifier = hash
            [server]
            basicConstraints = CA:FALSE
            subjectAltName = IP:127.0.0.1, DNS:localhost
            extendedKeyUsage = serverAuth, clientAuth
            [named]
            basicConstraints = CA:FALSE
            subjectAltName = DNS:redis.test
            extendedKeyUsage = serverAuth
            [client]
            basicConstraints = CA:FALSE
            extendedKeyUsage = clientAuth

            """.write(toFile: config, atomically: true, encoding: .utf8)
        let newKey = ["-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes"]

        func makeCA(_ name: String, subject: String) throws -> String {
            try openssl(["req", "-x509", "-config", config, "-extensions", "ca"] + newKey + [
                "-keyout", "\(directory)/\(name).key", "-out", "\(directory)/\(name).crt", "-subj", "/CN=\(subject)", "-days", "2",
            ])
            return "\(directory)/\(name).crt"
        }
        func makeSigned(_ name: String, subject: String, extensions: String, days: Int) throws -> CertificateFiles {
            let files = CertificateFiles(certificate: "\(directory)/\(name).crt", key: "\(directory)/\(name).key")
            try openssl(["req", "-new", "-config", config] + newKey + ["-keyout", files.key, "-out", "\(directory)/\(name).csr", "-subj", "/CN=\(subject)"])
            try openssl([
                "x509", "-req", "-in", "\(directory)/\(name).csr", "-CA", "\(directory)/ca.crt", "-CAkey", "\(directory)/ca.key",
                "-CAcreateserial", "-days", String(days), "-extfile", config, "-extensions", extensions, "-out", files.certificate,
            ])
            return files
        }
        let caFile = try makeCA("ca", subject: "Eddy test CA")
        let otherCAFile = try makeCA("other-ca", subject: "Eddy other test CA")
        return TestCertificates(
            directory: directory, caFile: caFile, otherCAFile: otherCAFile,
            server: try makeSigned("server", subject: "127.0.0.1", extensions: "server", days: 2),
            // Valid from now until a day ago: verification says "certificate has expired".
            expiredServer: try makeSigned("expired", subject: "127.0.0.1", extensions: "server", days: -1),
            namedServer: try makeSigned("named", subject: "redis.test", extensions: "named", days: 2),
            client: try makeSigned("client", subject: "eddy-client", extensions: "client", days: 2))
    }

    /// Removes the directory.
    public func remove() { try? FileManager.default.removeItem(atPath: directory) }

    private static func openssl(_ arguments: [String]) throws {
        let (status, output) = try runTool("/usr/bin/openssl", arguments)
        guard status == 0 else {
            throw TestCertificatesError("openssl \(arguments.prefix(2).joined(separator: " ")) failed: \(output)")
        }
    }
}

/// Runs a command-line tool to its end; its exit status and what it wrote (stdout and stderr together).
func runTool(_ path: String, _ arguments: [String]) throws -> (status: Int32, output: String) {
    let process = Process()
    process.executableURL = URL(fileURLWithPath: path)
    process.arguments = arguments
    let output = Pipe()
    process.standardOutput = output
    process.standardError = output
    try process.run()
    let text = output.fileHandleForReading.readDataToEndOfFile()
    process.waitUntilExit()
    return (process.terminationStatus, String(decoding: text, as: UTF8.self))
}

/// Why `TestCertificates.make` failed.
public struct TestCertificatesError: Error, CustomStringConvertible {
    public let description: String
    init(_ description: String) { self.description = description }
}
