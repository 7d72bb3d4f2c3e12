/// The one error type of `EddyRedis`: every failure to connect, to run a command or to write an epoch.
///
/// `reason` is one line that names the server as `host:port` (never the password) and what to do where
/// that is clear. `breaksConnection` tells the caller that the connection is unusable (the socket may
/// still hold a command that Redis will run later, e.g. under `CLIENT PAUSE WRITE`), so it must be closed
/// and a new one made before any retry; `RedisConnection` already closed its socket when it threw one.
public struct RedisError: Error, Sendable, Equatable, CustomStringConvertible {
    /// What went wrong, independent of hiredis's and Redis's own codes.
    public struct Code: Hashable, Sendable, CustomStringConvertible {
        public let name: String
        init(_ name: String) { self.name = name }
        public var description: String { name }

        /// The URL or a timeout cannot be used (empty host, port out of range, negative database, …).
        public static let invalidConfiguration = Code("invalidConfiguration")
        /// Nothing listens on the port (`ECONNREFUSED`).
        public static let connectionRefused = Code("connectionRefused")
        /// The host name does not resolve.
        public static let unknownHost = Code("unknownHost")
        /// Connecting or any other network step failed (unreachable network, …).
        public static let connectionFailed = Code("connectionFailed")
        /// No answer within the connect or command timeout.
        public static let timeout = Code("timeout")
        /// The server's TLS certificate failed verification (untrusted CA, expired, another name): a
        /// `rediss://` connection never goes on without it.
        public static let tlsCertificateRejected = Code("tlsCertificateRejected")
        /// The TLS handshake failed for another reason (not a TLS port, no common protocol, a client
        /// certificate the server refused).
        public static let tlsHandshakeFailed = Code("tlsHandshakeFailed")
        /// The server closed or reset the connection, or the connection was closed after an earlier error.
        public static let connectionBroken = Code("connectionBroken")
        /// The server requires a password and none was given (`NOAUTH`).
        public static let authenticationRequired = Code("authenticationRequired")
        /// The user name or password was refused (`WRONGPASS`, or a password sent to a server without one).
        public static let authenticationFailed = Code("authenticationFailed")
        /// The user may not run a command (`NOPERM`).
        public static let permissionDenied = Code("permissionDenied")
        /// `SELECT` refused the database index.
        public static let invalidDatabase = Code("invalidDatabase")
        /// The server is over `maxmemory` and refuses writes (`OOM`).
        public static let outOfMemory = Code("outOfMemory")
        /// The server is busy running a script, loading its data set or is a read-only replica: it may accept
        /// the same command later.
        public static let serverUnavailable = Code("serverUnavailable")
        /// A key holds a value of another type than the command needs (`WRONGTYPE`).
        public static let wrongType = Code("wrongType")
        /// The epoch marker key holds something that is not a decimal epoch number.
        public static let invalidMarker = Code("invalidMarker")
        /// A command is refused or unknown on this server (too old, renamed, disabled).
        public static let unsupported = Code("unsupported")
        /// A Redis Cluster node answered `MOVED` or `ASK`: the key's slot is served by another node
        /// (`clusterRedirect` says which).
        public static let clusterRedirect = Code("clusterRedirect")
        /// Any other error reply from the server.
        public static let serverError = Code("serverError")
        /// hiredis could not parse what the server sent, or a reply had an unexpected shape.
        public static let protocolError = Code("protocolError")
        /// hiredis could not allocate memory in this process.
        public static let clientOutOfMemory = Code("clientOutOfMemory")
    }

    public var code: Code
    /// hiredis's `redisContext.err` (`REDIS_ERR_IO`, `REDIS_ERR_EOF`, …) where the failure came from hiredis.
    /// (OpenSSL's failures are named in `reason`.)
    public var hiredisCode: Int32?
    /// A human explanation, one line, naming `host:port`. Never contains a password.
    public var reason: String
    /// Whether the same call may succeed later without any change to the configuration.
    public var isRetriable: Bool
    /// Whether the connection must be closed and re-made before retrying (it was closed already).
    public var breaksConnection: Bool
    /// Where a cluster node sent the command (`clusterRedirect` errors).
    public var clusterRedirect: RedisClusterRedirect?

    public init(code: Code, hiredisCode: Int32? = nil, reason: String, isRetriable: Bool, breaksConnection: Bool) {
        self.code = code
        self.hiredisCode = hiredisCode
        self.reason = reason
        self.isRetriable = isRetriable
        self.breaksConnection = breaksConnection
    }

    public var description: String { reason }
}
