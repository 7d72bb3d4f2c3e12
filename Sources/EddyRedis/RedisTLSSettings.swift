/// How a `rediss://` connection checks the server's certificate and, when the server asks, proves its own.
///
/// Verification is never off: the server's certificate must chain to a trusted CA and carry the expected
/// name, or the connection fails (`tlsCertificateRejected`) instead of going on in plain text.
public struct RedisTLSSettings: Sendable, Equatable {
    /// PEM file of the CA certificates to trust (`redis.ssl.ca.location`); `nil` trusts the system store
    /// (OpenSSL's default paths: Debian's `/etc/ssl/certs`, kept by `ca-certificates`).
    public var caFile: String?
    /// PEM client certificate, or chain, for servers that ask for one (`tls-auth-clients yes`;
    /// `redis.ssl.certificate.location`). Needs `keyFile`.
    public var certificateFile: String?
    /// PEM private key of `certificateFile` (`redis.ssl.key.location`). Its path is never printed.
    public var keyFile: String?
    /// The name the server's certificate must carry, also sent as SNI (`redis.ssl.server.name`); `nil` means
    /// the URL's host. An IP address is matched against the certificate's IP address entries.
    public var serverName: String?

    public init(caFile: String? = nil, certificateFile: String? = nil, keyFile: String? = nil, serverName: String? = nil) {
        self.caFile = caFile
        self.certificateFile = certificateFile
        self.keyFile = keyFile
        self.serverName = serverName
    }
}
