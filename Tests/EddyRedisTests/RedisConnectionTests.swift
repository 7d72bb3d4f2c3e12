import EddyRedis
import EddyTestSupport
import Foundation
import Testing

@Suite struct RedisURLTests {
    @Test func descriptionMasksThePassword() {
        let url = RedisURL(host: "cache.local", port: 6380, user: "eddy", password: "hunter2", database: 3)
        #expect(url.description == "redis://eddy:***@cache.local:6380/3")
        #expect(RedisURL(host: "h", password: "hunter2").description == "redis://:***@h:6379/0")
        #expect(RedisURL(host: "::1").description == "redis://[::1]:6379/0")
        #expect(RedisURL(host: "h", user: "u").description == "redis://u@h:6379/0")
    }
}

@Suite struct RedisConnectionTests {
    @Test func connectsAndRunsBinarySafeCommands() throws {
        let server = try startedServer()
        let connection = try connect(server.url)
        let key: [UInt8] = [0, 255, 13, 10, 32, 0x24]
        let value: [UInt8] = Array(0...255)
        #expect(try connection.command([bytes("SET"), key, value]) == .status("OK"))
        #expect(try connection.command([bytes("GET"), key]) == .string(value))
        #expect(try connection.command("GET", "absent") == .null)
        #expect(try connection.command("INCRBY", "n", "41") == .integer(41))
        #expect(try connection.command("RPUSH", "list", "a", "b") == .integer(2))
        #expect(try connection.command("LRANGE", "list", "0", "-1") == .array([.string(bytes("a")), .string(bytes("b"))]))
        #expect(try connection.command([bytes("SET"), bytes("empty"), []]) == .status("OK"))
        #expect(try connection.command("GET", "empty") == .string([]))
    }

    @Test func logsInWithRequirepass() throws {
        let server = try startedServer(password: "s3cret pass")
        let connection = try connect(server.url)
        #expect(try connection.command("SET", "k", "v") == .status("OK"))
    }

    @Test func logsInAsAnACLUser() throws {
        let server = try startedServer()
        try server.command("ACL", "SETUSER", "sink", "on", ">sink-secret", "~eddy:*", "~view:*", "+@all", "-config")
        var url = server.url
        url.user = "sink"
        url.password = "sink-secret"
        let connection = try connect(url)
        #expect(try connection.command("SET", "view:1", "v") == .status("OK"))
        let denied = #expect(throws: RedisError.self) { try connection.command("SET", "other", "v") }
        #expect(denied?.code == .permissionDenied)
        // CONFIG is not permitted to this user: the policy is unknown, not an error.
        let policy = try connection.memoryPolicy()
        #expect(!policy.isKnown)
        #expect(!policy.mayEvictSinkKeys)
        #expect(policy.unavailableReason?.hasPrefix("NOPERM") == true)
        #expect(connection.isOpen)

        // A user without a password logs in only if the server made it `nopass`.
        try server.command("ACL", "SETUSER", "open", "on", "nopass", "~*", "+@all")
        #expect(try connect(RedisURL(host: "127.0.0.1", port: server.port, user: "open")).command("PING") == .status("PONG"))
        let noPassword = #expect(throws: RedisError.self) { try connect(RedisURL(host: "127.0.0.1", port: server.port, user: "sink")) }
        #expect(noPassword?.code == .authenticationFailed)

        url.password = "wrong-secret"
        let error = #expect(throws: RedisError.self) { try connect(url) }
        #expect(error?.code == .authenticationFailed)
        #expect(error?.reason == "Redis at 127.0.0.1:\(server.port) refused the user name or password (WRONGPASS)")
        #expect(error?.isRetriable == false)
    }

    @Test func selectsTheDatabase() throws {
        let server = try startedServer()
        var url = server.url
        url.database = 3
        let connection = try connect(url)
        _ = try connection.command("SET", "k", "in-3")
        #expect(try server.get("k") == nil)
        #expect(try connection.command("GET", "k").text == "in-3")
        #expect(try server.command("SELECT", "3") == .status("OK"))
    }

    @Test func refusedConnectionNamesTheServer() throws {
        let port = LoopbackPort.unused()
        let error = #expect(throws: RedisError.self) {
            try connect(RedisURL(host: "127.0.0.1", port: port, password: "topsecret"))
        }
        #expect(error?.code == .connectionRefused)
        #expect(error?.reason == "cannot connect to Redis at 127.0.0.1:\(port): connection refused (is redis-server running on that port?)")
        #expect(error?.isRetriable == true)
        #expect(error?.breaksConnection == true)
    }

    @Test func unknownHostIsNamed() throws {
        let error = #expect(throws: RedisError.self) { try connect(RedisURL(host: "no-such-host.invalid", port: 6379)) }
        #expect(error?.code == .unknownHost)
        #expect(error?.reason.hasPrefix("cannot connect to Redis at no-such-host.invalid:6379: unknown host (") == true)
    }

    @Test func wrongPasswordAndMissingPasswordAreTold() throws {
        let server = try startedServer(password: "right-password")
        var url = server.url
        url.password = "wrong-password"
        let wrong = #expect(throws: RedisError.self) { try connect(url) }
        #expect(wrong?.code == .authenticationFailed)
        #expect(wrong?.reason == "Redis at 127.0.0.1:\(server.port) refused the password (WRONGPASS)")

        url.password = nil
        let missing = #expect(throws: RedisError.self) { try connect(url) }
        #expect(missing?.code == .authenticationRequired)
        #expect(missing?.reason == "Redis at 127.0.0.1:\(server.port) requires a password (NOAUTH): add it to redis.url")
        #expect(missing?.isRetriable == false)
    }

    @Test func passwordForAServerWithoutOneIsRefused() throws {
        let server = try startedServer()
        var url = server.url
        url.password = "not-needed"
        let error = #expect(throws: RedisError.self) { try connect(url) }
        #expect(error?.code == .authenticationFailed)
        #expect(error?.reason.hasPrefix("Redis at 127.0.0.1:\(server.port) refused AUTH: ERR AUTH") == true)
        #expect(error?.reason.contains("not-needed") == false)
    }

    @Test func badDatabaseIndexIsNamed() throws {
        let server = try startedServer()
        var url = server.url
        url.database = 99
        let error = #expect(throws: RedisError.self) { try connect(url) }
        #expect(error?.code == .invalidDatabase)
        #expect(error?.reason == "Redis at 127.0.0.1:\(server.port) refused database 99 (ERR DB index is out of range)")
    }

    @Test func silentServerTimesOutDuringTheHandshake() throws {
        let listener = SilentListener()
        let error = #expect(throws: RedisError.self) {
            try connect(RedisURL(host: "127.0.0.1", port: listener.port), connectTimeout: .milliseconds(200))
        }
        #expect(error?.code == .timeout)
        #expect(error?.breaksConnection == true)
        #expect(error?.reason == "Redis at 127.0.0.1:\(listener.port) did not answer PING within 0.2 seconds; the connection was closed")
    }

    @Test func commandTimeoutClosesTheConnection() throws {
        let server = try startedServer()
        let connection = try connect(server.url, commandTimeout: .milliseconds(200))
        try server.pause(writesFor: .seconds(30))
        defer { try? server.unpause() }
        let error = #expect(throws: RedisError.self) { try connection.command("SET", "k", "late") }
        #expect(error?.code == .timeout)
        #expect(error?.breaksConnection == true)
        #expect(error?.reason == "Redis at 127.0.0.1:\(server.port) did not answer SET within 0.2 seconds; the connection was closed")
        #expect(!connection.isOpen)
        #expect(try eventually { try server.connectedClients() == 0 })
        try server.unpause()
        #expect(try server.get("k") == nil)
        let after = #expect(throws: RedisError.self) { try connection.command("PING") }
        #expect(after?.code == .connectionBroken)
        #expect(after?.reason.hasPrefix("cannot send PING to Redis at 127.0.0.1:\(server.port): the connection is closed (Redis at") == true)
    }

    @Test func connectionKilledByTheServerIsBroken() throws {
        let server = try startedServer()
        let connection = try connect(server.url)
        guard case .integer(let id) = try connection.command("CLIENT", "ID") else {
            Issue.record("CLIENT ID is not an integer")
            return
        }
        try server.command("CLIENT", "KILL", "ID", String(id))
        let error = #expect(throws: RedisError.self) { try connection.command("GET", "k") }
        #expect(error?.code == .connectionBroken)
        #expect(error?.breaksConnection == true)
        #expect(error?.reason == "Redis at 127.0.0.1:\(server.port) closed the connection during GET")
        #expect(!connection.isOpen)
    }

    @Test func aWriteToAConnectionTheServerClosedIsAnErrorNotSIGPIPE() throws {
        let server = try startedServer()
        let connection = try connect(server.url)
        guard case .integer(let id) = try connection.command("CLIENT", "ID") else {
            Issue.record("CLIENT ID is not an integer")
            return
        }
        try server.command("CLIENT", "KILL", "ID", String(id))
        // More than the socket buffers hold: the writes after the server's reset fail with EPIPE.
        let large = [UInt8](repeating: 120, count: 16 << 20)
        let error = #expect(throws: RedisError.self) { try connection.command([bytes("SET"), bytes("k"), large]) }
        #expect(error?.code == .connectionBroken)
        #expect(error?.reason.hasPrefix("connection to Redis at 127.0.0.1:\(server.port) failed during SET: ") == true
            || error?.reason == "Redis at 127.0.0.1:\(server.port) closed the connection during SET", "\(error?.reason ?? "")")
        #expect(!connection.isOpen)
    }

    @Test func pipelineReadsEveryReplyThenThrowsTheFirstError() throws {
        let server = try startedServer()
        let connection = try connect(server.url)
        let replies = try connection.pipeline([[bytes("SET"), bytes("a"), bytes("1")], [bytes("INCR"), bytes("a")], [bytes("GET"), bytes("a")]])
        #expect(replies == [.status("OK"), .integer(2), .string(bytes("2"))])

        let error = #expect(throws: RedisError.self) {
            try connection.pipeline([
                [bytes("SET"), bytes("k"), bytes("v")], [bytes("LPUSH"), bytes("k"), bytes("x")], [bytes("SET"), bytes("after"), bytes("ran")],
            ])
        }
        #expect(error?.code == .wrongType)
        #expect(error?.breaksConnection == false)
        #expect(error?.reason.hasPrefix("Redis at 127.0.0.1:\(server.port) refused LPUSH (command 2 of 3 in a pipeline): WRONGTYPE") == true)
        // Still in step: the next reply is the next command's.
        #expect(try connection.command("GET", "after").text == "ran")
        #expect(try connection.pipeline([]) == [])
    }

    @Test func memoryPolicyIsReadAndEvictionIsFlagged() throws {
        let server = try startedServer(["--maxmemory", "64mb", "--maxmemory-policy", "allkeys-lru"])
        let connection = try connect(server.url)
        let policy = try connection.memoryPolicy()
        #expect(policy == RedisMemoryPolicy(policy: "allkeys-lru", maxMemoryBytes: 64 << 20))
        #expect(policy.mayEvictSinkKeys)

        _ = try connection.command("CONFIG", "SET", "maxmemory-policy", "volatile-lru")
        #expect(try connection.memoryPolicy().mayEvictSinkKeys == false)
        _ = try connection.command("CONFIG", "SET", "maxmemory-policy", "noeviction")
        #expect(try connection.memoryPolicy().policy == "noeviction")
    }

    @Test func memoryPolicyIsUnknownWhenConfigIsDisabled() throws {
        let server = try startedServer(["--rename-command", "CONFIG", ""])
        let connection = try connect(server.url)
        let policy = try connection.memoryPolicy()
        #expect(policy.policy == nil)
        #expect(policy.unavailableReason?.hasPrefix("ERR unknown command") == true)
        #expect(try connection.command("PING") == .status("PONG"))
    }

    @Test func reconnectsAfterTheServerRestartsWithItsData() throws {
        let server = try startedServer(persistent: true)
        let connection = try connect(server.url)
        _ = try connection.command("SET", "kept", "yes")
        server.stop()
        #expect(!server.isRunning)
        let down = #expect(throws: RedisError.self) { try connection.command("GET", "kept") }
        #expect(down?.code == .connectionBroken)
        let refused = #expect(throws: RedisError.self) { try connect(server.url) }
        #expect(refused?.code == .connectionRefused)

        try server.start(persistent: true)
        let again = try connect(server.url)
        #expect(try again.command("GET", "kept").text == "yes")

        // SIGKILL: the append-only file was fsynced on every write.
        _ = try again.command("SET", "after-kill", "kept too")
        server.kill()
        try server.start(persistent: true)
        #expect(try server.get("after-kill") == "kept too")

        // Restarted without persistence: empty.
        server.stop()
        try server.start(persistent: false)
        #expect(try server.get("kept") == nil)
    }

    @Test func invalidSettingsAreRefusedBeforeConnecting() throws {
        let error = #expect(throws: RedisError.self) { try connect(RedisURL(host: "127.0.0.1", port: 70000)) }
        #expect(error?.code == .invalidConfiguration)
        #expect(error?.reason == "Redis at 127.0.0.1:70000: port 70000 is not between 1 and 65535")
    }
}

/// Connection hygiene: the connection's name in `CLIENT LIST`, and TCP keepalive as the kernel reports it.
@Suite struct RedisConnectionHygieneTests {
    @Test func theConnectionCarriesItsNameWithRefusedCharactersReplaced() throws {
        let server = try startedServer()
        let connection = try RedisConnection.connect(
            url: server.url, connectTimeout: .seconds(5), commandTimeout: .seconds(5), clientName: "eddy:my sink\nä", logger: testLogger)
        #expect(try connection.command("CLIENT", "GETNAME").text == "eddy:my_sink__")
        #expect(try server.command("CLIENT", "LIST").text?.contains(" name=eddy:my_sink__ ") == true)
    }

    @Test func aUserWhoMayNotNameConnectionsStillConnects() throws {
        let server = try startedServer()
        try server.command("ACL", "SETUSER", "limited", "on", ">pw", "~*", "+@all", "-client|setname")
        let url = RedisURL(host: "127.0.0.1", port: server.port, user: "limited", password: "pw")
        let connection = try RedisConnection.connect(url: url, connectTimeout: .seconds(5), commandTimeout: .seconds(5), clientName: "eddy:s", logger: testLogger)
        #expect(try connection.command("CLIENT", "GETNAME") == .null)
        #expect(try connection.command("SET", "k", "v") == .status("OK"))
    }

    @Test func keepAliveProbesAnIdleConnectionWithinSeconds() throws {
        let server = try startedServer()
        let connection = try connect(server.url)
        let info = try #require(try connection.command("CLIENT", "INFO").text)
        let address = try #require(info.split(separator: " ").first { $0.hasPrefix("addr=") })
        let localPort = try #require(address.split(separator: ":").last.flatMap { Int($0) })
        // The kernel's own view of the socket: timer 2 is keepalive; when it fires, in USER_HZ (100/s) ticks.
        // Without keepalive no timer runs on an idle socket; with the kernel's default it would be 2 hours away.
        var seen: (timer: Int, ticks: Int)?
        let armed = eventually {
            seen = Self.timer(localPort: localPort, remotePort: server.port)
            return seen?.timer == 2
        }
        #expect(armed, "socket timer \(String(describing: seen))")
        #expect((seen?.ticks ?? .max) <= 15 * 100)
    }

    /// The `tr` and `tm->when` columns of the IPv4 loopback socket between the two ports, from /proc/net/tcp.
    private static func timer(localPort: Int, remotePort: Int) -> (timer: Int, ticks: Int)? {
        // Read to the end: /proc files report a size of 0, which a whole-file read would trust.
        guard let data = FileHandle(forReadingAtPath: "/proc/net/tcp")?.readDataToEndOfFile() else { return nil }
        let table = String(decoding: data, as: UTF8.self)
        let local = String(format: "0100007F:%04X", localPort)
        let remote = String(format: "0100007F:%04X", remotePort)
        for line in table.split(separator: "\n") {
            let fields = line.split(separator: " ")
            guard fields.count > 5, fields[1] == local, fields[2] == remote else { continue }
            let parts = fields[5].split(separator: ":")
            guard parts.count == 2, let timer = Int(parts[0], radix: 16), let ticks = Int(parts[1], radix: 16) else { return nil }
            return (timer, ticks)
        }
        return nil
    }
}
