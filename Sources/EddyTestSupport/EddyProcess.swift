#if canImport(Glibc)
import Glibc
#endif
import EddyKafka
import Foundation

/// The built `eddy` binary run as a user would, for command-line tests: to completion (`run`), or as a
/// long-lived process (`launch`) that can be signalled, killed and waited for.
///
/// A launched process writes stdout and stderr to files in a directory of the test's, so a chatty daemon
/// never blocks on a full pipe and the output survives a `kill -9`.
public final class EddyProcess: @unchecked Sendable {
    /// `EDDY_BINARY`, else `eddy` next to the test bundle (`swift build` puts both in one folder).
    public static var executable: URL {
        if let path = ProcessInfo.processInfo.environment["EDDY_BINARY"], !path.isEmpty { return URL(fileURLWithPath: path) }
        return URL(fileURLWithPath: CommandLine.arguments[0]).deletingLastPathComponent().appendingPathComponent("eddy")
    }

    /// What a finished run printed and returned.
    public struct Finished: Sendable {
        public let status: Int32
        public let standardOutput: String
        public let standardError: String
    }

    /// Runs `eddy arguments` to completion; terminates it if it outlives `timeout`.
    public static func run(_ arguments: [String], environment: [String: String] = [:], timeout: Duration = .seconds(60)) throws -> Finished {
        let directory = try ScratchDirectory(prefix: "eddy-run")
        defer { directory.remove() }
        let process = try launch(arguments, environment: environment, outputDirectory: directory.path)
        if process.waitForExit(timeout: timeout) == nil {
            process.kill()
            _ = process.waitForExit(timeout: .seconds(10))
        }
        return Finished(status: process.exitStatus ?? -1, standardOutput: process.standardOutput, standardError: process.standardError)
    }

    /// Starts `eddy arguments` (or another `executable`, such as a script of ops/ run by bash) with
    /// `environment` added to the test's own.
    public static func launch(
        _ arguments: [String], executable: URL = executable, environment: [String: String] = [:], outputDirectory: String, name: String = "eddy"
    ) throws -> EddyProcess {
        let process = Process()
        process.executableURL = executable
        process.arguments = arguments
        process.environment = ProcessInfo.processInfo.environment.merging(environment) { $1 }
        let outputPath = outputDirectory + "/\(name).\(UUID().uuidString.prefix(8)).out"
        let errorPath = outputPath.replacingOccurrences(of: ".out", with: ".err")
        _ = FileManager.default.createFile(atPath: outputPath, contents: nil)
        _ = FileManager.default.createFile(atPath: errorPath, contents: nil)
        process.standardOutput = try FileHandle(forWritingTo: URL(fileURLWithPath: outputPath))
        process.standardError = try FileHandle(forWritingTo: URL(fileURLWithPath: errorPath))
        process.standardInput = FileHandle.nullDevice
        try process.run()
        return EddyProcess(process: process, outputPath: outputPath, errorPath: errorPath)
    }

    private let process: Process
    public let outputPath: String
    public let errorPath: String

    private init(process: Process, outputPath: String, errorPath: String) {
        self.process = process
        self.outputPath = outputPath
        self.errorPath = errorPath
    }

    deinit {
        if process.isRunning { kill() }
    }

    public var pid: Int32 { process.processIdentifier }
    public var isRunning: Bool { process.isRunning }

    /// Everything written to stdout so far.
    public var standardOutput: String { (try? String(contentsOfFile: outputPath, encoding: .utf8)) ?? "" }
    /// Everything written to stderr so far.
    public var standardError: String { (try? String(contentsOfFile: errorPath, encoding: .utf8)) ?? "" }

    /// Sends `signal` (SIGTERM, SIGINT, ...).
    public func send(_ signal: Int32) { Glibc.kill(process.processIdentifier, signal) }

    /// `kill -9`: no chance to clean up.
    public func kill() { Glibc.kill(process.processIdentifier, SIGKILL) }

    /// Waits for the process to exit; its status, or nil if it still runs after `timeout`.
    @discardableResult
    public func waitForExit(timeout: Duration) -> Int32? {
        let deadline = ContinuousClock.now + timeout
        while process.isRunning {
            if ContinuousClock.now >= deadline { return nil }
            usleep(5_000)
        }
        return process.terminationStatus
    }

    /// The exit status once exited (the signal number for a process killed by one).
    public var exitStatus: Int32? { process.isRunning ? nil : process.terminationStatus }

    /// Waits until stdout or stderr holds `text`.
    public func waitForOutput(containing text: String, timeout: Duration = .seconds(30)) -> Bool {
        eventually(timeout: timeout) { standardOutput.contains(text) || standardError.contains(text) }
    }
}

/// A running `eddy dev-broker` process, stopped with SIGTERM by `stop`.
public final class DevBrokerProcess: @unchecked Sendable {
    public let process: EddyProcess
    public let bootstrapServers: String
    public let firstLine: String
    private let directory: ScratchDirectory

    public init(topics: [String], port: Int? = nil) throws {
        let directory = try ScratchDirectory(prefix: "eddy-dev-broker")
        let process = try EddyProcess.launch(
            ["dev-broker"] + topics.flatMap { ["--topic", $0] } + (port.map { ["--port", String($0)] } ?? []),
            outputDirectory: directory.path, name: "dev-broker")
        guard eventually(timeout: .seconds(20), { process.standardOutput.contains("\n") || !process.isRunning }) else {
            throw ProcessError("eddy dev-broker printed nothing in 20 s")
        }
        let firstLine = String(process.standardOutput.prefix { $0 != "\n" })
        guard firstLine.hasPrefix("bootstrap=") else { throw ProcessError("eddy dev-broker: \(process.standardError)") }
        self.directory = directory
        self.process = process
        self.firstLine = firstLine
        bootstrapServers = String(firstLine.dropFirst("bootstrap=".count))
    }

    deinit { directory.remove() }

    /// SIGTERM, then the exit status.
    public func stop() -> Int32 {
        process.send(SIGTERM)
        return process.waitForExit(timeout: .seconds(20)) ?? -1
    }

    /// Produces `messages` to `topic`, the i-th to partition i mod `partitions`, and returns once the broker has
    /// them all.
    public func produce(_ messages: [String], topic: String, partitions: Int32 = 1) throws {
        let producer = try KafkaProducer.make(configuration: KafkaProducerConfiguration(bootstrapServers: bootstrapServers))
        for (index, message) in messages.enumerated() {
            try Array(message.utf8).withUnsafeBytes { try producer.send(topic: topic, partition: Int32(index) % partitions, payload: $0) }
        }
        try producer.flush(timeout: .seconds(20))
    }
}

public struct ProcessError: Error, CustomStringConvertible {
    public let description: String
    public init(_ description: String) { self.description = description }
}

extension EddyProcess {
    /// The rows of `sql` over the last committed checkpoint in `stateDirectory` (`eddy query --format csv`), header
    /// dropped and each line trimmed; nil when the query failed. `output` is everything it printed, for messages.
    public static func queryCheckpoint(_ sql: String, stateDirectory: String) throws -> (rows: [String]?, output: String) {
        let query = try run(["query", "--state-dir", stateDirectory, "--format", "csv", sql])
        let output = query.standardOutput + query.standardError
        guard query.status == 0 else { return (nil, output) }
        return (query.standardOutput.split(whereSeparator: \.isNewline).dropFirst().map { $0.trimmingCharacters(in: .whitespaces) }, output)
    }

    /// SIGTERM, and a clean exit (status 0) within `timeout`; else an error with the process's standard error.
    public func stopGracefully(timeout: Duration = .seconds(20)) throws {
        send(SIGTERM)
        guard waitForExit(timeout: timeout) == 0 else {
            throw ProcessError("eddy exited with \(exitStatus.map(String.init) ?? "nothing (still running)"): \(standardError)")
        }
    }

    /// Launches `eddy` with the arguments `arguments(port)` builds around a free loopback port (for `--http`), and
    /// waits until `/healthz` answers there. A port free a moment ago may be taken by the time the daemon binds
    /// it: then another is tried (three in all).
    public static func launchServingHTTP(
        environment: [String: String], outputDirectory: String, name: String, _ arguments: (Int) -> [String]
    ) async throws -> (process: EddyProcess, port: Int) {
        for attempt in 1...3 {
            let port = LoopbackPort.unused()
            let process = try EddyProcess.launch(arguments(port), environment: environment, outputDirectory: outputDirectory, name: name)
            let answered = await awaitCondition(timeout: .seconds(30)) {
                guard process.isRunning else { return true }
                return (try? await HTTPTestClient.get("http://127.0.0.1:\(port)/healthz"))?.status == 200
            }
            if answered && process.isRunning { return (process, port) }
            process.kill()
            process.waitForExit(timeout: .seconds(10))
            if attempt < 3 && process.standardError.localizedCaseInsensitiveContains("in use") { continue }
            throw ProcessError("eddy did not serve HTTP on 127.0.0.1:\(port): \(process.standardError)")
        }
        preconditionFailure("unreachable")
    }
}
