/// Where a Redis server is and how to log in: the fields of a `redis://` or `rediss://` URL.
///
/// Parsing belongs to the SQL binder (`redis.url` and the `redis.ssl.*` options).
public struct RedisURL: Sendable, Equatable, CustomStringConvertible {
    /// Host name or IP address (IPv6 without brackets).
    public var host: String
    /// TCP port; 6379 by default.
    public var port: Int
    /// ACL user name (Redis 6+); `nil` logs in as the default user.
    public var user: String?
    /// Password for `AUTH`; `nil` sends no `AUTH`. Never printed.
    public var password: String?
    /// Database index for `SELECT`; 0 by default.
    public var database: Int
    /// TLS (`rediss://`) and how to verify the server; `nil` is plain TCP (`redis://`).
    public var tls: RedisTLSSettings?

    public init(host: String, port: Int = 6379, user: String? = nil, password: String? = nil, database: Int = 0, tls: RedisTLSSettings? = nil) {
        self.host = host
        self.port = port
        self.user = user
        self.password = password
        self.database = database
        self.tls = tls
    }

    /// `host:port` (`[v6]:port` for IPv6), as error reasons name the server.
    public var address: String { host.contains(":") ? "[\(host)]:\(port)" : "\(host):\(port)" }

    /// `redis://user:***@host:port/db` (`rediss://` with TLS): the password is masked, so this is safe to log.
    public var description: String {
        var credentials = ""
        if user != nil || password != nil {
            credentials = (user ?? "") + (password == nil ? "" : ":***") + "@"
        }
        return "\(tls == nil ? "redis" : "rediss")://\(credentials)\(address)/\(database)"
    }
}
