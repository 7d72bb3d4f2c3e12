import EddySecrets
import Testing

@Suite struct SecretsTests {
    @Test func secretSettingsAreKnownByName() {
        for key in [
            "sasl.password", "properties.sasl.password", "ssl.key.password", "SSL.Keystore.Password", "sasl.oauthbearer.client.secret",
            "ssl.key.pem", "properties.ssl.certificate.pem", "ssl_key", "sasl.oauthbearer.config", "sasl.oauthbearer.extensions",
            "eddy.redis.password", "client_secret", "redis.ssl.key.location",
        ] {
            #expect(Secrets.isSecretSetting(key), "\(key)")
        }
        for key in ["sasl.username", "sasl.mechanism", "security.protocol", "bootstrap.servers", "ssl.ca.location", "redis.ssl.ca.location", "redis.ssl.certificate.location", "eddy.sink"] {
            #expect(!Secrets.isSecretSetting(key), "\(key)")
        }
    }

    @Test func secretValuesAreStarredWherever() {
        let text = "SASL authentication failed for user u with hunter2 (hunter2 again); empty ignored"
        #expect(Secrets.maskingValues(["hunter2", ""], in: text) == "SASL authentication failed for user u with *** (*** again); empty ignored")
        #expect(Secrets.maskingValues([], in: text) == text)
    }

    @Test func urlPasswordsAreStarredToTheLastAt() {
        #expect(Secrets.maskingURLPasswords("redis://app:pw@cache:6380/1 down") == "redis://app:***@cache:6380/1 down")
        #expect(Secrets.maskingURLPasswords("rediss://:p@ss/w?rd@host:1") == "rediss://:***@host:1")
        #expect(Secrets.maskingURLPasswords("redis://cache:6380 and user@example.org") == "redis://cache:6380 and user@example.org")
    }
}
