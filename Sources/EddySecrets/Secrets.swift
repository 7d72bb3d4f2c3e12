/// What Eddy never prints, as one rule for every place that shows settings, echoes SQL, or writes logs: the
/// SQL front end (`properties.*` options and the source lines its errors quote), the Kafka client (its
/// configuration dump and librdkafka's free-text errors) and the log formats (metadata keys and messages).
/// Pure Swift with no dependencies, so that each of those modules can share it (STYLE 17).
public enum Secrets {
    /// What a secret is replaced by.
    public static let mask = "***"

    /// Whether a setting carries a secret inline, by its name (a librdkafka property with or without the SQL's
    /// `properties.` prefix, a `WITH` option, a log metadata key). From librdkafka 2.0.2's CONFIGURATION.md:
    /// anything named `…password…` or `…secret…` (`sasl.password`, `ssl.key.password`,
    /// `ssl.keystore.password`, `sasl.oauthbearer.client.secret`), PEM strings (`ssl.key.pem` is a private key;
    /// `ssl.certificate.pem` and `ssl.ca.pem` are public but hidden alike), `ssl_key…`, and the OAUTHBEARER
    /// settings that may hold a token or credentials (`sasl.oauthbearer.config`, `sasl.oauthbearer.extensions`).
    /// Also the Redis sink's client key path (`redis.ssl.key.location`; issue 10 asks for TLS key paths to be
    /// masked). The Kafka source's `ssl.key.location` is shown, as decided before (ExamplePipelineTests).
    public static func isSecretSetting(_ key: String) -> Bool {
        let key = key.lowercased()
        return key.contains("password") || key.contains("secret") || key.contains(".pem") || key.contains("ssl_key")
            || key == "redis.ssl.key.location"
            || key.contains("oauthbearer.config") || key.contains("oauthbearer.extensions")
    }

    /// `text` with every occurrence of a secret value starred out: librdkafka's error and log lines are free
    /// text that could echo a setting.
    public static func maskingValues(_ secrets: [String], in text: String) -> String {
        secrets.reduce(text) { masked, secret in secret.isEmpty ? masked : masked.replacing(secret, with: mask) }
    }

    /// `scheme://user:password@host` → `scheme://user:***@host`, for every URL in `text`. The password runs to
    /// the last '@' before whitespace, as Eddy's `redis.url` parser reads it: a password may hold '/', '?', ':'
    /// or '@' unescaped. Masking too much (a later '@' in the same word) is the safe way to be wrong.
    public static func maskingURLPasswords(_ text: String) -> String {
        guard text.contains("://"), text.contains("@") else { return text }
        return text.replacing(/(?<scheme>[A-Za-z][A-Za-z0-9+.\-]*:\/\/)(?<user>[^:@\/\s]*):(?<password>\S+)@/) { match in
            "\(match.output.scheme)\(match.output.user):\(mask)@"
        }
    }
}
