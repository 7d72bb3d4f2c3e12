#if canImport(Glibc)
import Glibc
#endif
import ArgumentParser
import EddyEngine
import EddySQL
import Foundation
import Logging
import Synchronization

/// `eddy run FILE.sql`: the pipeline daemon.
struct RunCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "run",
        abstract: "Run a pipeline file as a daemon until SIGTERM/SIGINT.",
        discussion: """
            Reads the Kafka source, maintains the materialized views, checkpoints them with the Kafka offsets to \
            the state directory (LMDB) every --checkpoint-interval, and writes each checkpoint to the Redis sinks, \
            so that Redis values are exactly right after any crash or restart. ${NAME} inside quoted strings is \
            replaced from the environment.

            The file's SELECT statements are answered once the pipeline has caught up with the source.

            SIGTERM or SIGINT stops consuming, takes a final checkpoint, waits (bounded) for the sinks, and exits 0. \
            A second signal exits at once; the last checkpoint keeps the state safe.
            """
    )

    @Argument(help: "The pipeline file (RisingWave-dialect SQL).", completion: .file(extensions: ["sql"]))
    var file: String

    @Option(name: .customLong("state-dir"), help: "Where checkpoints live (LMDB). One daemon per directory.")
    var stateDirectory: String = ".eddy/state"

    @Option(name: .customLong("checkpoint-interval"), help: "Seconds between checkpoints (durable LMDB commit, then Redis).")
    var checkpointInterval: Double = 1

    @Option(name: .customLong("max-pending-epochs"), help: "Pause consuming while a sink is more than this many checkpoints behind (a sink's sink.max_pending_epochs overrides it).")
    var maxPendingEpochs: Int = 8

    @Option(name: .customLong("max-state-size"), help: "Largest the state store may grow, in MiB; past it eddy stops with a clear error.")
    var maximumStateMiB: Int = 64 << 10

    @Option(name: .customLong("max-message-size"), help: "Messages larger than this many bytes are skipped and counted.")
    var maximumMessageBytes: Int = 1 << 20

    @Option(name: .customLong("log-level"), help: "trace, debug, info, notice, warning, error or critical (default: EDDY_LOG_LEVEL, else info).")
    var logLevel: String?

    func validate() throws {
        guard checkpointInterval > 0, checkpointInterval <= 3600 else { throw ValidationError("--checkpoint-interval must be in (0, 3600] seconds") }
        guard maxPendingEpochs >= 1 else { throw ValidationError("--max-pending-epochs must be at least 1") }
        guard maximumStateMiB >= 1 else { throw ValidationError("--max-state-size must be at least 1 MiB") }
        guard maximumMessageBytes >= 64 else { throw ValidationError("--max-message-size must be at least 64 bytes") }
        if let logLevel, Logger.Level(rawValue: logLevel.lowercased()) == nil { throw ValidationError("--log-level '\(logLevel)' is not one of trace, debug, info, notice, warning, error, critical") }
    }

    func run() throws {
        var logger = makeCLILogger(label: "eddy.run", defaultLevel: .info)
        if let logLevel { logger.logLevel = Logger.Level(rawValue: logLevel.lowercased()) ?? logger.logLevel }
        let pipeline = try loadPipeline(file)
        var options = PipelineOptions(stateDirectory: stateDirectory)
        options.checkpointInterval = .milliseconds(Int64(checkpointInterval * 1000))
        options.maxPendingEpochs = UInt64(maxPendingEpochs)
        options.maximumStateBytes = maximumStateMiB << 20
        options.decoderLimits.maxMessageBytes = maximumMessageBytes
        let runner: PipelineRunner
        do {
            runner = try PipelineRunner(pipeline: pipeline, options: options, logger: logger)
        } catch {
            throw RunError(reason: error.description)
        }

        let stop = StopSignal()
        let signals = Atomic<Int>(0)
        let handlers = handleTerminationSignals {
            if signals.add(1, ordering: .relaxed).newValue == 1 {
                printToStandardError("eddy run: stopping (final checkpoint, sink flush); signal again to exit at once")
                stop.request()
            } else {
                printToStandardError("eddy run: exiting at once; the last checkpoint keeps the state safe")
                Glibc.exit(130)
            }
        }
        defer { withExtendedLifetime(handlers) {} }

        let queries = pipeline.queries
        let outcome = runOnOwnThread(name: "eddy-hot-path") {
            try runner.run(until: stop) { runner in
                for query in queries {
                    let rows = query.run(on: runner.rowsWhenCaughtUp[query.viewName] ?? [])
                    // Unbuffered: a script reading the daemon's output sees the answer now, not at exit.
                    FileHandle.standardOutput.write(Data(ResultTable(columns: query.columns.map(\.name), rows: rows).rendered(as: .table).utf8))
                }
            }
        }
        if case .failure(let error) = outcome {
            throw RunError(reason: "\(error)")
        }
    }
}

/// Runs `body` on a dedicated thread (blocking C calls never run on the cooperative pool) and waits for it.
func runOnOwnThread<T: Sendable>(name: String, _ body: @escaping @Sendable () throws -> T) -> Result<T, any Error> {
    let done = DispatchSemaphore(value: 0)
    let result = Mutex<Result<T, any Error>?>(nil)
    let thread = Thread {
        let outcome = Result { try body() }
        result.withLock { $0 = outcome }
        done.signal()
    }
    thread.name = name
    thread.stackSize = 8 << 20
    thread.start()
    done.wait()
    return result.withLock { $0! }
}

/// A run-time failure of `eddy run`, printed as one line.
struct RunError: Error, CustomStringConvertible {
    let reason: String
    var description: String { "eddy run: \(reason)" }
}
