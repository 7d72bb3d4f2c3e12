#if canImport(Glibc)
import Glibc
#endif
import EddyRedis
import Logging
import Synchronization

/// A real `redis-server` for tests and benchmarks, on a free loopback port with its own temporary
/// directory, that can be stopped, killed and started again on the same port and directory.
///
/// The process is killed and the directory removed in `deinit`. Every method may be called from any
/// thread; the helper's own commands use a fresh connection each time, so they work across restarts.
///
/// With `tls`, `port` speaks TLS only (`--tls-port`, with the given certificates) and `url` says so; the
/// helper's own commands (`connect`, `command`, `get`, …) go through a second, plain-text port on loopback,
/// so that they observe the server whatever the TLS side under test does (an expired certificate, say).
public final class RedisTestServer: Sendable {
    /// How a TLS server is set up.
    public struct TLS: Sendable {
        public var certificates: TestCertificates
        /// The certificate the server presents; `certificates.server` by default.
        public var server: CertificateFiles
        /// `tls-auth-clients yes`: only clients with a certificate signed by the CA are let in.
        public var requireClientCertificate: Bool

        public init(certificates: TestCertificates, server: CertificateFiles? = nil, requireClientCertificate: Bool = false) {
            self.certificates = certificates
            self.server = server ?? certificates.server
            self.requireClientCertificate = requireClientCertificate
        }
    }

    private struct State {
        var port: Int
        /// The plain-text port of a TLS server (its `port` otherwise).
        var controlPort: Int
        var process: pid_t?
        var everStarted = false
    }

    /// The directory holding the server's data files and `redis.log`.
    public let directory: String
    /// The password of the default user (`requirepass`), if any.
    public let password: String?
    /// The TLS set-up, if the server speaks TLS.
    public let tls: TLS?
    private let executable: String
    private let state: Mutex<State>
    private let logger = Logger(label: "eddy.test.redis-server")

    /// Prepares a server (not started): finds `redis-server` on `PATH` or in `/usr/bin`, makes a
    /// temporary directory and picks a port.
    public init(password: String? = nil, tls: TLS? = nil) throws(RedisTestServerError) {
        let searchPath = (getenv("PATH").map { String(cString: $0) } ?? "").split(separator: ":").map(String.init) + ["/usr/bin"]
        guard let executable = searchPath.map({ $0 + "/redis-server" }).first(where: { access($0, X_OK) == 0 }) else {
            throw RedisTestServerError("redis-server is not installed (apt-get install redis-server)")
        }
        var template = Array("/tmp/eddy-redis-XXXXXX".utf8CString)
        guard let made = template.withUnsafeMutableBufferPointer({ mkdtemp($0.baseAddress!) }) else {
            throw RedisTestServerError("cannot create a temporary directory: \(String(cString: strerror(errno)))")
        }
        self.directory = String(cString: made)
        self.executable = executable
        self.password = password
        self.tls = tls
        self.state = Mutex(Self.freshPorts(tls: tls))
    }

    deinit { destroy() }

    /// Kills the server and removes its directory; nothing works after this. For programs that end
    /// without releasing the server (a benchmark's globals are never deinitialised).
    public func destroy() {
        kill()
        removeDirectory()
    }

    /// The loopback port, the same across restarts.
    public var port: Int { state.withLock { $0.port } }

    /// Where clients connect, with the password if there is one; for a TLS server `rediss://` trusting the
    /// test CA, with the client certificate.
    public var url: RedisURL {
        RedisURL(
            host: "127.0.0.1", port: port, password: password,
            tls: tls.map {
                RedisTLSSettings(caFile: $0.certificates.caFile, certificateFile: $0.certificates.client.certificate, keyFile: $0.certificates.client.key)
            })
    }

    /// Where the helper's own commands go: plain text, even for a TLS server.
    public var controlURL: RedisURL { RedisURL(host: "127.0.0.1", port: state.withLock { $0.controlPort }, password: password) }

    /// Whether the process is running (started and not yet stopped or killed).
    public var isRunning: Bool { state.withLock { $0.process != nil } }

    /// Starts `redis-server` and returns once it answers `PING`.
    ///
    /// - Parameters:
    ///   - persistent: `true` keeps data across `stop`/`start` and `kill`/`start` (append-only file,
    ///     fsync on every write); `false` starts empty (the directory's data files are removed) and keeps
    ///     nothing.
    ///   - extraArguments: more `redis-server` options, e.g. `["--maxmemory", "2mb"]`.
    public func start(persistent: Bool = true, extraArguments: [String] = [], timeout: Duration = .seconds(10)) throws(RedisTestServerError) {
        guard !isRunning else { throw RedisTestServerError("redis-server on port \(port) is already running") }
        if !persistent { removeDataFiles() }
        // The port was only free a moment ago: on the first start another process may have taken it.
        let attempts = state.withLock { $0.everStarted } ? 1 : 3
        for attempt in 1...attempts {
            let pid = try spawn(persistent: persistent, extraArguments: extraArguments)
            state.withLock {
                $0.process = pid
                $0.everStarted = true
            }
            do {
                try waitUntilAnswering(pid: pid, timeout: timeout)
                return
            } catch {
                kill()
                let log = logTail()
                guard attempt < attempts, log.contains("Address already in use") else {
                    throw RedisTestServerError("\(error.message); redis.log ends with: \(log)")
                }
                state.withLock {
                    let fresh = Self.freshPorts(tls: tls)
                    ($0.port, $0.controlPort) = (fresh.port, fresh.controlPort)
                }
            }
        }
    }

    /// Stops the server gracefully (`SIGTERM`: Redis finishes the append-only file) and waits until the
    /// process has exited. Kills it if it has not exited within `timeout`.
    public func stop(timeout: Duration = .seconds(10)) {
        guard let pid = state.withLock({ $0.process }) else { return }
        Glibc.kill(pid, SIGTERM)
        if !waitForExit(pid: pid, timeout: timeout) {
            Glibc.kill(pid, SIGKILL)
            _ = waitForExit(pid: pid, timeout: .seconds(10))
        }
        state.withLock { $0.process = nil }
    }

    /// Kills the server with `SIGKILL`, as a crash or power loss would; waits until it is gone.
    public func kill() {
        guard let pid = state.withLock({ $0.process }) else { return }
        Glibc.kill(pid, SIGKILL)
        _ = waitForExit(pid: pid, timeout: .seconds(10))
        state.withLock { $0.process = nil }
    }

    /// A new connection to the server (closed when released), on the plain-text port.
    public func connect(timeout: Duration = .seconds(5)) throws(RedisError) -> RedisConnection {
        try RedisConnection.connect(url: controlURL, connectTimeout: timeout, commandTimeout: timeout, logger: logger)
    }

    /// Runs one command on a fresh connection.
    @discardableResult
    public func command(_ arguments: String...) throws(RedisError) -> RedisReply {
        let connection = try connect()
        defer { connection.close() }
        return try connection.command(arguments.map { Array($0.utf8) })
    }

    /// `FLUSHALL`: Redis loses everything, as after a restart without persistence.
    public func flushAll() throws(RedisError) { try command("FLUSHALL") }

    /// The value of `key` as UTF-8 text, `nil` when absent.
    public func get(_ key: String) throws(RedisError) -> String? {
        try command("GET", key).text
    }

    /// `CLIENT PAUSE <ms> WRITE`: write commands (and scripts) from every client wait until `duration`
    /// passes or `unpause` is called; reads go on.
    public func pause(writesFor duration: Duration) throws(RedisError) {
        let milliseconds = duration.components.seconds * 1000 + duration.components.attoseconds / 1_000_000_000_000_000
        try command("CLIENT", "PAUSE", String(max(1, milliseconds)), "WRITE")
    }

    /// `CLIENT UNPAUSE`.
    public func unpause() throws(RedisError) { try command("CLIENT", "UNPAUSE") }

    /// The number of client connections the server holds, not counting the one asking.
    public func connectedClients() throws(RedisError) -> Int {
        guard let info = try command("INFO", "clients").text,
            let line = info.split(whereSeparator: \.isNewline).first(where: { $0.hasPrefix("connected_clients:") }),
            let count = Int(line.dropFirst("connected_clients:".count))
        else { return -1 }
        return count - 1
    }

    // MARK: - Private

    private static func freshPorts(tls: TLS?) -> State {
        let port = LoopbackPort.unused()
        guard tls != nil else { return State(port: port, controlPort: port) }
        var controlPort = LoopbackPort.unused()
        while controlPort == port { controlPort = LoopbackPort.unused() }
        return State(port: port, controlPort: controlPort)
    }

    private func spawn(persistent: Bool, extraArguments: [String]) throws(RedisTestServerError) -> pid_t {
        let (port, controlPort) = state.withLock { ($0.port, $0.controlPort) }
        var arguments = [
            executable,
            "--port", String(controlPort), "--bind", "127.0.0.1", "--dir", directory, "--logfile", directory + "/redis.log",
            "--daemonize", "no", "--save", "", "--appendonly", persistent ? "yes" : "no", "--appendfsync", "always",
        ]
        if let password { arguments += ["--requirepass", password] }
        if let tls {
            arguments += [
                "--tls-port", String(port), "--tls-cert-file", tls.server.certificate, "--tls-key-file", tls.server.key,
                "--tls-ca-cert-file", tls.certificates.caFile, "--tls-auth-clients", tls.requireClientCertificate ? "yes" : "no",
            ]
        }
        arguments += extraArguments
        let argv = arguments.map { strdup($0) } + [nil]
        defer { argv.forEach { free($0) } }
        var actions = posix_spawn_file_actions_t()
        posix_spawn_file_actions_init(&actions)
        defer { posix_spawn_file_actions_destroy(&actions) }
        posix_spawn_file_actions_addopen(&actions, 0, "/dev/null", O_RDONLY, 0)
        posix_spawn_file_actions_addopen(&actions, 1, "/dev/null", O_WRONLY, 0)
        posix_spawn_file_actions_addopen(&actions, 2, "/dev/null", O_WRONLY, 0)
        // The test runner's threads may block or ignore signals (SIGTERM among them): the child starts
        // with none blocked and every handler at its default, so that `stop` is graceful.
        var attributes = posix_spawnattr_t()
        posix_spawnattr_init(&attributes)
        defer { posix_spawnattr_destroy(&attributes) }
        var noSignals = sigset_t()
        sigemptyset(&noSignals)
        var allSignals = sigset_t()
        sigfillset(&allSignals)
        posix_spawnattr_setsigmask(&attributes, &noSignals)
        posix_spawnattr_setsigdefault(&attributes, &allSignals)
        posix_spawnattr_setflags(&attributes, Int16(POSIX_SPAWN_SETSIGMASK | POSIX_SPAWN_SETSIGDEF))
        var pid: pid_t = 0
        let status = posix_spawn(&pid, executable, &actions, &attributes, argv, environ)
        guard status == 0 else {
            throw RedisTestServerError("cannot start \(executable): \(String(cString: strerror(status)))")
        }
        return pid
    }

    private func waitUntilAnswering(pid: pid_t, timeout: Duration) throws(RedisTestServerError) {
        let deadline = ContinuousClock.now + timeout
        var lastError = "no answer"
        while ContinuousClock.now < deadline {
            var status: Int32 = 0
            if waitpid(pid, &status, WNOHANG) == pid {
                state.withLock { $0.process = nil }
                throw RedisTestServerError("redis-server on port \(port) exited during start-up (status \(status))")
            }
            do {
                let connection = try connect(timeout: .milliseconds(500))
                connection.close()
                return
            } catch {
                lastError = error.reason
            }
            usleep(10_000)
        }
        throw RedisTestServerError("redis-server on port \(port) did not answer PING within \(timeout): \(lastError)")
    }

    private func waitForExit(pid: pid_t, timeout: Duration) -> Bool {
        let deadline = ContinuousClock.now + timeout
        repeat {
            var status: Int32 = 0
            let result = waitpid(pid, &status, WNOHANG)
            if result == pid || (result == -1 && errno == ECHILD) { return true }
            usleep(5_000)
        } while ContinuousClock.now < deadline
        return false
    }

    private func logTail() -> String {
        guard let file = fopen(directory + "/redis.log", "r") else { return "(no log)" }
        defer { fclose(file) }
        var lines: [String] = []
        var buffer = [CChar](repeating: 0, count: 4096)
        while fgets(&buffer, Int32(buffer.count), file) != nil {
            lines.append(String(decoding: buffer.prefix { $0 != 0 }.map { UInt8(bitPattern: $0) }, as: UTF8.self).trimmingSuffix())
            if lines.count > 5 { lines.removeFirst() }
        }
        return lines.joined(separator: " | ")
    }

    /// Removes the append-only files and any dump, so that the next start is empty.
    private func removeDataFiles() {
        runRemove(["/bin/rm", "-rf", directory + "/appendonlydir", directory + "/dump.rdb"])
    }

    private func removeDirectory() {
        runRemove(["/bin/rm", "-rf", directory])
    }

    private func runRemove(_ arguments: [String]) {
        let argv = arguments.map { strdup($0) } + [nil]
        defer { argv.forEach { free($0) } }
        var pid: pid_t = 0
        guard posix_spawn(&pid, arguments[0], nil, nil, argv, environ) == 0 else { return }
        var status: Int32 = 0
        waitpid(pid, &status, 0)
    }
}

/// Why `RedisTestServer` could not do what it was asked.
public struct RedisTestServerError: Error, Sendable, CustomStringConvertible {
    public let message: String
    init(_ message: String) { self.message = message }
    public var description: String { message }
}

extension String {
    fileprivate func trimmingSuffix() -> String {
        var result = self
        while let last = result.last, last.isNewline || last == " " { result.removeLast() }
        return result
    }
}
