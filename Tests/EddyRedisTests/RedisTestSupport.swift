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

/// Polls `condition` until it holds or `timeout` passes; returns whether it held.
func eventually(timeout: Duration = .seconds(10), _ condition: () throws -> Bool) rethrows -> Bool {
    let deadline = ContinuousClock.now + timeout
    while ContinuousClock.now < deadline {
        if try condition() { return true }
        usleep(5_000)
    }
    return try condition()
}

/// A TCP listener on a loopback port that accepts connections (in the kernel) and never answers.
final class SilentListener {
    let port: Int
    private let descriptor: Int32

    init() {
        let descriptor = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
        var address = sockaddr_in()
        address.sin_family = sa_family_t(AF_INET)
        address.sin_addr.s_addr = in_addr_t(0x7F00_0001).bigEndian
        var length = socklen_t(MemoryLayout<sockaddr_in>.size)
        _ = withUnsafeMutablePointer(to: &address) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { pointer in
                _ = bind(descriptor, pointer, length)
                return getsockname(descriptor, pointer, &length)
            }
        }
        listen(descriptor, 16)
        self.descriptor = descriptor
        port = Int(UInt16(bigEndian: address.sin_port))
    }

    deinit { close(descriptor) }
}
