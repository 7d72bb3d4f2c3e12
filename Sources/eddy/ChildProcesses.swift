#if canImport(Glibc)
import Glibc
#endif
import EddyRedis
import Foundation
import Logging

/// The processes `eddy drill` and `eddy bench` run — `eddy dev-broker`, `redis-server`, `eddy produce`, `eddy run`,
/// `eddy query`, `kcat` — each in a session of its own (so a Ctrl-C at the terminal reaches only the command, which
/// stops them in order), with its output in a log file of the command's scratch directory.
///
/// Not thread-safe: the command's main loop alone starts, signals and reaps them.
final class ChildProcesses {
    /// A child that exited on its own or by a signal, with `waitpid`'s status decoded.
    enum Exit: Equatable, CustomStringConvertible {
        case status(Int32)
        case signal(Int32)

        var description: String {
            switch self {
            case .status(let code): "status \(code)"
            case .signal(let number): "signal \(number)"
            }
        }
    }

    /// The scratch directory: logs, the daemon's state, manifests, Redis's working directory.
    let directory: String
    /// This binary, run again for the `eddy` children.
    let eddy: String
    /// Children not yet reaped, in start order, with their names.
    private var running: [(pid: pid_t, name: String)] = []
    private var exits: [pid_t: Exit] = [:]
    /// CPU seconds (user + system, all threads) of each reaped child, from `wait4`.
    private var cpuSecondsAtExit: [pid_t: Double] = [:]

    init(directory: String) {
        self.directory = directory
        // /proc/self/exe rather than argv[0]: the command may have been started through PATH or a relative path.
        eddy = (try? FileManager.default.destinationOfSymbolicLink(atPath: "/proc/self/exe")) ?? CommandLine.arguments[0]
    }

    func logPath(_ name: String) -> String { directory + "/" + name + ".log" }

    /// Starts `executable arguments` with `environment` added to the command's own; stdout goes to `output` (or
    /// the log), stderr is appended to `logPath(name)`; stdin is `input` (a descriptor this command keeps open for
    /// the child to read) or /dev/null.
    func spawn(
        _ name: String, executable: String? = nil, _ arguments: [String], environment: [String: String] = [:], output: String? = nil, input: Int32? = nil
    ) throws -> pid_t {
        let executable = executable ?? eddy
        let argv = ([executable] + arguments).map { strdup($0) } + [nil]
        let variables = ProcessInfo.processInfo.environment.merging(environment) { $1 }.map { strdup("\($0.key)=\($0.value)") } + [nil]
        defer { (argv + variables).forEach { free($0) } }
        var actions = posix_spawn_file_actions_t()
        posix_spawn_file_actions_init(&actions)
        defer { posix_spawn_file_actions_destroy(&actions) }
        if let input {
            posix_spawn_file_actions_adddup2(&actions, input, 0)
        } else {
            posix_spawn_file_actions_addopen(&actions, 0, "/dev/null", O_RDONLY, 0)
        }
        posix_spawn_file_actions_addopen(&actions, 1, output ?? logPath(name), O_WRONLY | O_CREAT | O_APPEND, 0o644)
        posix_spawn_file_actions_addopen(&actions, 2, logPath(name), O_WRONLY | O_CREAT | O_APPEND, 0o644)
        // The command ignores SIGINT/SIGTERM (it handles them) and an ignored signal survives exec: children start
        // with every signal at its default and none blocked, so that SIGTERM stops them.
        var attributes = posix_spawnattr_t()
        posix_spawnattr_init(&attributes)
        defer { posix_spawnattr_destroy(&attributes) }
        var noSignals = sigset_t()
        sigemptyset(&noSignals)
        var allSignals = sigset_t()
        sigfillset(&allSignals)
        posix_spawnattr_setsigmask(&attributes, &noSignals)
        posix_spawnattr_setsigdefault(&attributes, &allSignals)
        // POSIX_SPAWN_SETSID (glibc's 0x80, not imported into Swift): a session of its own.
        posix_spawnattr_setflags(&attributes, Int16(POSIX_SPAWN_SETSIGMASK | POSIX_SPAWN_SETSIGDEF | 0x80))
        var pid: pid_t = 0
        let status = posix_spawn(&pid, executable, &actions, &attributes, argv, variables)
        guard status == 0 else { throw ChildProcessError(reason: "cannot start \(name) (\(executable)): \(String(cString: strerror(status)))") }
        running.append((pid, name))
        // Pids are reused (32768 by default): what an earlier child of this pid left must not answer for this one.
        exits[pid] = nil
        cpuSecondsAtExit[pid] = nil
        return pid
    }

    /// How `pid` exited, or nil while it runs (reaps it when it has exited).
    func exit(of pid: pid_t) -> Exit? {
        if let exit = exits[pid] { return exit }
        var status: Int32 = 0
        var usage = rusage()
        guard wait4(pid, &status, WNOHANG, &usage) == pid else { return nil }
        let exit: Exit = status & 0x7F == 0 ? .status((status >> 8) & 0xFF) : .signal(status & 0x7F)
        exits[pid] = exit
        cpuSecondsAtExit[pid] = Self.seconds(usage.ru_utime) + Self.seconds(usage.ru_stime)
        running.removeAll { $0.pid == pid }
        return exit
    }

    /// Waits up to `timeout` for `pid` to exit.
    func waitForExit(_ pid: pid_t, timeout: Duration) -> Exit? {
        let deadline = ContinuousClock.now + timeout
        while true {
            if let exit = exit(of: pid) { return exit }
            if ContinuousClock.now >= deadline { return nil }
            usleep(2_000)
        }
    }

    /// The CPU seconds (user + system, all threads) a reaped child used; nil while it runs.
    func cpuSeconds(ofExited pid: pid_t) -> Double? { cpuSecondsAtExit[pid] }

    private static func seconds(_ value: timeval) -> Double { Double(value.tv_sec) + Double(value.tv_usec) / 1e6 }

    func send(_ signal: Int32, to pid: pid_t) { _ = kill(pid, signal) }

    /// SIGTERM (and SIGCONT, in case it is stopped), then SIGKILL if it has not exited within `grace`.
    @discardableResult
    func stop(_ pid: pid_t, grace: Duration) -> Exit? {
        guard exit(of: pid) == nil else { return exits[pid] }
        send(SIGTERM, to: pid)
        send(SIGCONT, to: pid)
        if let exit = waitForExit(pid, timeout: grace) { return exit }
        send(SIGKILL, to: pid)
        return waitForExit(pid, timeout: .seconds(10))
    }

    /// Stops every child still running, the last started first (the daemon before Redis and the broker, so that
    /// its final checkpoint still finds them).
    func stopAll() {
        for child in running.reversed() { stop(child.pid, grace: .seconds(child.name == "run" ? 15 : 5)) }
    }

    /// The last lines of a child's log, for error messages.
    func logTail(_ name: String, lines: Int = 15) -> String {
        let text = (try? String(contentsOfFile: logPath(name), encoding: .utf8)) ?? ""
        return text.split(separator: "\n").suffix(lines).map { "  | " + $0 }.joined(separator: "\n")
    }

    // MARK: - The children

    /// `eddy dev-broker` with `topic` of `partitions` partitions on `brokers` brokers; returns its pid, bootstrap
    /// address and, with `control`, the channel to its `--control` stdin.
    func startBroker(topic: String, partitions: Int, brokers: Int = 1, control: Bool = false) throws -> (pid: pid_t, bootstrap: String, control: DevBrokerChannel?) {
        let output = directory + "/dev-broker.out"
        var arguments = ["dev-broker", "--topic", "\(topic):\(partitions)", "--brokers", String(brokers), "--exit-with-parent", String(getpid())]
        var channel: DevBrokerChannel?
        var pipeEnds: [Int32] = [-1, -1]
        if control {
            // Close-on-exec on both ends: dup2 onto the child's stdin clears it there, and no other child inherits them.
            guard pipe(&pipeEnds) == 0, fcntl(pipeEnds[0], F_SETFD, FD_CLOEXEC) == 0, fcntl(pipeEnds[1], F_SETFD, FD_CLOEXEC) == 0 else { throw ChildProcessError(reason: "cannot make a pipe for the dev broker's control: \(String(cString: strerror(errno)))") }
            arguments.append("--control")
            channel = DevBrokerChannel(descriptor: pipeEnds[1], output: output)
        }
        let pid: pid_t
        do {
            pid = try spawn("dev-broker", arguments, output: output, input: control ? pipeEnds[0] : nil)
            if control { close(pipeEnds[0]) }
        } catch {
            if control { close(pipeEnds[0]) }
            throw error
        }
        let deadline = ContinuousClock.now + .seconds(20)
        while ContinuousClock.now < deadline, exit(of: pid) == nil {
            let text = (try? String(contentsOfFile: output, encoding: .utf8)) ?? ""
            if let line = text.split(separator: "\n").first, text.contains("\n"), line.hasPrefix("bootstrap=") {
                return (pid, String(line.dropFirst("bootstrap=".count)), channel)
            }
            usleep(10_000)
        }
        throw ChildProcessError(reason: "eddy dev-broker did not print its address:\n\(logTail("dev-broker"))")
    }

    /// An executable found on PATH or in /usr/bin, /usr/sbin; nil when not installed.
    static func executable(named name: String) -> String? {
        let path = (ProcessInfo.processInfo.environment["PATH"] ?? "").split(separator: ":").map(String.init) + ["/usr/bin", "/usr/sbin"]
        return path.map { $0 + "/" + name }.first { access($0, X_OK) == 0 }
    }

    /// Debian's `redis-server`, found on PATH or in /usr/bin, /usr/sbin.
    static func redisServerExecutable() throws -> String {
        guard let found = executable(named: "redis-server") else {
            throw ChildProcessError(reason: "redis-server is not installed: eddy drill and eddy bench run a Redis of their own (apt-get install redis-server)")
        }
        return found
    }

    /// `redis-server` on 127.0.0.1:`port`, without persistence (every start is empty); returns once it answers.
    func startRedis(port: Int) throws -> pid_t {
        let redisDirectory = directory + "/redis"
        try FileManager.default.createDirectory(atPath: redisDirectory, withIntermediateDirectories: true)
        let pid = try spawn(
            "redis", executable: try Self.redisServerExecutable(),
            ["--port", String(port), "--bind", "127.0.0.1", "--dir", redisDirectory, "--save", "", "--appendonly", "no", "--daemonize", "no"])
        let url = RedisURL(host: "127.0.0.1", port: port)
        let deadline = ContinuousClock.now + .seconds(10)
        while ContinuousClock.now < deadline, exit(of: pid) == nil {
            if let connection = try? RedisConnection.connect(url: url, connectTimeout: .milliseconds(200), commandTimeout: .seconds(1), logger: Logger(label: "eddy.children")) {
                connection.close()
                return pid
            }
            usleep(10_000)
        }
        stop(pid, grace: .seconds(1))
        throw ChildProcessError(reason: "redis-server did not answer on 127.0.0.1:\(port):\n\(logTail("redis"))")
    }

    /// Waits until `name`'s log holds `text` (read as it grows); the instant it was seen, or nil if `pid` exited
    /// first, `timeout` passed or `stop` was set.
    func waitForLog(_ name: String, containing text: String, while pid: pid_t, timeout: Duration, until stop: StopFlag? = nil) -> ContinuousClock.Instant? {
        let deadline = ContinuousClock.now + timeout
        let needle = Array(text.utf8)
        var seen: [UInt8] = []
        var offset: UInt64 = 0
        while ContinuousClock.now < deadline, !(stop?.isSet ?? false) {
            if let handle = FileHandle(forReadingAtPath: logPath(name)) {
                try? handle.seek(toOffset: offset)
                let data = handle.readDataToEndOfFile()
                try? handle.close()
                offset += UInt64(data.count)
                // Keep only what a match could still start in: the unfinished tail.
                seen.append(contentsOf: data)
                if seen.count >= needle.count, seen.indices.dropLast(needle.count - 1).contains(where: { seen[$0...].starts(with: needle) }) {
                    return .now
                }
                seen = Array(seen.suffix(needle.count - 1))
            }
            if exit(of: pid) != nil { return nil }
            usleep(1_000)
        }
        return nil
    }

    /// What a running child uses, from /proc: CPU seconds (user + system, all threads) and resident memory.
    struct Usage {
        var cpuSeconds = 0.0
        /// VmRSS, VmHWM (the peak so far), RssAnon (heap and stacks, not file pages such as LMDB's map), in bytes.
        var residentBytes = 0
        var peakResidentBytes = 0
        var anonymousResidentBytes = 0
    }

    static func usage(of pid: pid_t) -> Usage {
        var usage = Usage()
        if let stat = try? String(contentsOfFile: "/proc/\(pid)/stat", encoding: .utf8), let seconds = cpuSeconds(fromStat: stat) {
            usage.cpuSeconds = seconds
        }
        if let status = try? String(contentsOfFile: "/proc/\(pid)/status", encoding: .utf8) {
            func bytes(_ field: String) -> Int {
                guard let line = status.split(separator: "\n").first(where: { $0.hasPrefix(field) }) else { return 0 }
                return (Int(line.split(separator: " ", omittingEmptySubsequences: true).dropFirst().first ?? "0") ?? 0) * 1024
            }
            usage.residentBytes = bytes("VmRSS:")
            usage.peakResidentBytes = bytes("VmHWM:")
            usage.anonymousResidentBytes = bytes("RssAnon:")
        }
        return usage
    }

    /// CPU seconds (user + system) of a running child's threads, summed by thread name (`/proc/PID/task/*/comm`,
    /// where the daemon names its own threads `eddy-…` and librdkafka its `rdk:…`).
    static func cpuSecondsByThread(of pid: pid_t) -> [String: Double] {
        var byName: [String: Double] = [:]
        let tasks = "/proc/\(pid)/task"
        for task in (try? FileManager.default.contentsOfDirectory(atPath: tasks)) ?? [] {
            guard let comm = try? String(contentsOfFile: "\(tasks)/\(task)/comm", encoding: .utf8),
                let stat = try? String(contentsOfFile: "\(tasks)/\(task)/stat", encoding: .utf8),
                let seconds = cpuSeconds(fromStat: stat)
            else { continue }
            byName[comm.trimmingCharacters(in: .whitespacesAndNewlines), default: 0] += seconds
        }
        return byName
    }

    /// utime + stime of a `/proc/…/stat` line: the 12th and 13th fields after the command's closing parenthesis.
    private static func cpuSeconds(fromStat stat: String) -> Double? {
        guard let close = stat.lastIndex(of: ")") else { return nil }
        let fields = stat[stat.index(after: close)...].split(separator: " ")
        guard fields.count > 12 else { return nil }
        return ((Double(fields[11]) ?? 0) + (Double(fields[12]) ?? 0)) / Double(sysconf(Int32(_SC_CLK_TCK)))
    }

    /// A new directory under $TMPDIR (or /tmp) named `prefix-XXXXXX`.
    static func makeScratchDirectory(prefix: String) throws -> String {
        var base = ProcessInfo.processInfo.environment["TMPDIR"] ?? "/tmp"
        if base.isEmpty { base = "/tmp" }
        var template = Array((base + "/\(prefix)-XXXXXX").utf8CString)
        guard let made = template.withUnsafeMutableBufferPointer({ mkdtemp($0.baseAddress!) }) else {
            throw ChildProcessError(reason: "cannot create a scratch directory under \(base): \(String(cString: strerror(errno)))")
        }
        return String(cString: made)
    }

    /// Runs `eddy arguments` to completion (killed after `timeout`); its exit and stdout.
    func run(_ name: String, _ arguments: [String], timeout: Duration) throws -> (exit: Exit?, output: String) {
        let output = directory + "/\(name).out"
        let pid = try spawn(name, arguments, output: output)
        let exit = waitForExit(pid, timeout: timeout) ?? stop(pid, grace: .seconds(1))
        return (exit, (try? String(contentsOfFile: output, encoding: .utf8)) ?? "")
    }
}

/// The write end of `eddy dev-broker --control`'s stdin, and where its answers land (its stdout file, after the
/// bootstrap line). Used by the command's main loop only.
final class DevBrokerChannel {
    private let descriptor: Int32
    private let output: String
    /// Answers read so far.
    private var answers = 0

    init(descriptor: Int32, output: String) {
        self.descriptor = descriptor
        self.output = output
    }

    deinit { close(descriptor) }

    /// Sends `command` and waits (up to 5 s) for its answer.
    /// - Throws: when the broker answers `error: …`, or does not answer.
    func send(_ command: DevBrokerControl) throws {
        let bytes = Array((command.line + "\n").utf8)
        guard bytes.withUnsafeBytes({ write(descriptor, $0.baseAddress, $0.count) }) == bytes.count else {
            throw ChildProcessError(reason: "cannot send '\(command.line)' to the dev broker: \(String(cString: strerror(errno)))")
        }
        let deadline = ContinuousClock.now + .seconds(5)
        while ContinuousClock.now < deadline {
            // Line 1 is the bootstrap address; answers follow in order.
            let lines = ((try? String(contentsOfFile: output, encoding: .utf8)) ?? "").split(separator: "\n", omittingEmptySubsequences: false).dropLast()
            if lines.count > answers + 1 {
                let answer = lines[lines.startIndex + answers + 1]
                answers += 1
                guard answer == "ok" else { throw ChildProcessError(reason: "the dev broker refused '\(command.line)': \(answer)") }
                return
            }
            usleep(1_000)
        }
        throw ChildProcessError(reason: "the dev broker did not answer '\(command.line)' within 5 s")
    }
}

/// A child that could not be started or did not come up, said in one message (the commands exit 2 on it).
struct ChildProcessError: Error, CustomStringConvertible {
    let reason: String
    var description: String { reason }
}
