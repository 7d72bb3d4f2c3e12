#if canImport(Glibc)
import Glibc
#endif
import EddyRedis
import EddyTestSupport
import Logging

let testLogger = Logger(label: "eddy.test.redis")

/// A running server for one test (killed with the value).
func startedServer(password: String? = nil, persistent: Bool = false, _ extraArguments: [String] = []) throws -> RedisTestServer {
    let server = try RedisTestServer(password: password)
    try server.start(persistent: persistent, extraArguments: extraArguments)
    return server
}

func connect(
    _ url: RedisURL,
    connectTimeout: Duration = .seconds(5),
    commandTimeout: Duration = .seconds(10)
) throws(RedisError) -> RedisConnection {
    try RedisConnection.connect(url: url, connectTimeout: connectTimeout, commandTimeout: commandTimeout, logger: testLogger)
}

func bytes(_ text: String) -> [UInt8] { Array(text.utf8) }
