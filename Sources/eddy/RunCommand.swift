#if canImport(Glibc)
import CPlatform
import Glibc
#endif
import ArgumentParser
import EddyEngine
import EddyHTTP
import EddyPostgres
import EddySQL
import Foundation
import Logging
import Metrics
import Prometheus
import ServiceLifecycle
import Synchronization

/// `eddy run FILE.sql`: the pipeline daemon, with its HTTP side.
struct RunCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "run",
        abstract: "Run a pipeline file as a daemon until SIGTERM/SIGINT.",
        discussion: """
            Reads the Kafka source, maintains the materialized views, checkpoints them together with the Kafka \
            offsets to the state directory (LMDB) every --checkpoint-interval, and writes each checkpoint to the \
            Redis sinks, so that Redis values are exactly right after any crash or restart. ${NAME} inside quoted \
            strings is replaced from the environment.

            The file's SELECT statements are answered on stdout once the pipeline has caught up with the source.

            HTTP (--http, default 127.0.0.1:9187): / dashboard, /metrics (Prometheus), /healthz, /readyz, \
            /api/status, /api/views[/NAME].

            PostgreSQL (--pg, default off; e.g. --pg 127.0.0.1:4566): psql, psycopg, asyncpg and other PostgreSQL \
            clients query the views of the last checkpoint (SELECT … FROM view [WHERE] [ORDER BY] [LIMIT/OFFSET], \
            SHOW MATERIALIZED VIEWS, DESCRIBE view, psql's \\d). When EDDY_PG_PASSWORD is set, clients must give \
            that password (SCRAM-SHA-256); otherwise every client that can connect is let in.

            SIGTERM or SIGINT stops consuming, takes a final checkpoint, waits (bounded) for the sinks, and exits 0. \
            A second signal exits at once; the last checkpoint keeps the state safe.
            """
    )

    @Argument(help: "The pipeline file (RisingWave-dialect SQL).", completion: .file(extensions: ["sql"]))
    var file: String

    @Option(name: .customLong("state-dir"), help: "Where checkpoints live (LMDB). One daemon per directory.")
    var stateDirectory: String = ".eddy/state"

    @Option(help: "Address of the HTTP side: host:port, [::1]:port or :port (loopback); 'off' to serve none. Binding beyond loopback exposes the dashboard and metrics.")
    var http: String = "127.0.0.1:9187"

    @Option(help: "Address of the PostgreSQL side: host:port, [::1]:port or :port (loopback), e.g. 127.0.0.1:4566; 'off' (the default) to serve none. The password, if any, comes from EDDY_PG_PASSWORD.")
    var pg: String = "off"

    @Option(name: .customLong("pg-max-connections"), help: "PostgreSQL connections open at once; more are refused (SQLSTATE 53300).")
    var pgMaxConnections: Int = 64

    @Option(name: .customLong("pg-idle-timeout"), help: "Seconds a PostgreSQL connection may send nothing before it is closed.")
    var pgIdleTimeout: Double = 600

    @Option(name: .customLong("pg-query-timeout"), help: "Seconds a PostgreSQL statement may run before it fails (SQLSTATE 57014).")
    var pgQueryTimeout: Double = 30

    @Option(name: .customLong("checkpoint-interval"), help: "Seconds between checkpoints (durable LMDB commit, then Redis).")
    var checkpointInterval: Double = 1

    @Option(name: .customLong("max-checkpoint-interval"), help: "Seconds one checkpoint may cover at most while eddy is catching up with a backlog (default 10 × --checkpoint-interval): a key touched throughout the backlog is then written once per long checkpoint, not every interval. Once caught up --checkpoint-interval holds.")
    var maxCheckpointInterval: Double?

    @Option(name: .customLong("max-pending-epochs"), help: "Pause consuming while a sink is more than this many checkpoints behind (a sink's sink.max_pending_epochs overrides it).")
    var maxPendingEpochs: Int = 8

    @Option(name: .customLong("max-state-size"), help: "Largest the state store may grow, in MiB; past it eddy stops with a clear error.")
    var maximumStateMiB: Int = 64 << 10

    @Option(name: .customLong("max-message-size"), help: "Messages larger than this many bytes are skipped and counted.")
    var maximumMessageBytes: Int = 1 << 20

    @Flag(name: .customLong("allow-new-views"), help: "Start a view the state directory has never seen although it already holds Kafka offsets; it then counts only messages from those offsets on (by default eddy refuses and says how to rebuild).")
    var allowNewViews = false

    @Option(name: .customLong("shutdown-timeout"), help: "Seconds to wait for the sinks to acknowledge the final checkpoint at shutdown.")
    var shutdownTimeout: Double = 10

    @Option(name: .customLong("repair-interval"), help: "Seconds between passes of the background repair, which compares Redis with the checkpoint while a sink is caught up and rewrites keys someone else changed or deleted; 0 turns it off.")
    var repairInterval: Double = 60

    @Option(name: .customLong("repair-rate"), help: "Keys per second the background repair compares at most.")
    var repairRate: Int = 10_000

    @OptionGroup var logging: LoggingOptions

    func validate() throws {
        guard checkpointInterval > 0, checkpointInterval <= 3600 else { throw ValidationError("--checkpoint-interval must be in (0, 3600] seconds") }
        if let maxCheckpointInterval, !(maxCheckpointInterval >= checkpointInterval && maxCheckpointInterval <= 3600) {
            throw ValidationError("--max-checkpoint-interval must be from --checkpoint-interval (\(checkpointInterval)) to 3600 seconds")
        }
        guard maxPendingEpochs >= 1 else { throw ValidationError("--max-pending-epochs must be at least 1") }
        guard maximumStateMiB >= 1 else { throw ValidationError("--max-state-size must be at least 1 MiB") }
        guard maximumMessageBytes >= 64 else { throw ValidationError("--max-message-size must be at least 64 bytes") }
        guard shutdownTimeout >= 0, shutdownTimeout <= 600 else { throw ValidationError("--shutdown-timeout must be in [0, 600] seconds") }
        guard repairInterval == 0 || (repairInterval >= 0.01 && repairInterval <= 86_400) else {
            throw ValidationError("--repair-interval must be 0 (off) or from 0.01 to 86400 seconds")
        }
        guard repairRate >= 1 else { throw ValidationError("--repair-rate must be at least 1 key per second") }
        if http != "off" { _ = try HTTPBindAddress(parsing: http) }
        if pg != "off", (try? HTTPBindAddress(parsing: pg)) == nil {
            throw ValidationError("invalid --pg address '\(pg)' (expected HOST:PORT, [IPV6]:PORT or :PORT, or 'off')")
        }
        guard pgMaxConnections >= 1 else { throw ValidationError("--pg-max-connections must be at least 1") }
        guard pgQueryTimeout > 0, pgQueryTimeout <= 3600 else { throw ValidationError("--pg-query-timeout must be in (0, 3600] seconds") }
        guard pgIdleTimeout >= pgQueryTimeout, pgIdleTimeout <= 86_400 else {
            throw ValidationError("--pg-idle-timeout must be from --pg-query-timeout (\(pgQueryTimeout)) to 86400 seconds")
        }
        if ProcessInfo.processInfo.environment["EDDY_PG_PASSWORD"] == "" { throw ValidationError("EDDY_PG_PASSWORD is set but empty; unset it to let every client in") }
    }

    func run() async throws {
        // From the first moment: a SIGTERM during start-up (restoring a large state can take seconds) must stop the
        // daemon gracefully once it runs, not kill it with the signal's default action.
        let stopSignals = StopSignals()
        let escalation = handleTerminationSignals { stopSignals.received() }
        defer { withExtendedLifetime(escalation) {} }
        bootstrapLogging(format: logging.format, level: try logging.resolvedLevel())
        let logger = Logger(label: "eddy.run")
        // A fixed mmap threshold: glibc otherwise raises it to the largest buffer freed so far, after which epoch-sized
        // buffers come from the heap and fragment it (resident memory crept up over a long EMIT ON WINDOW CLOSE run,
        // Benchmarks/eowc-rss.sh: 113 → 160 MB). 32 MiB, not smaller: below it librdkafka's fetch buffers (up to
        // `fetch.max.bytes`, 8–16 MiB) were mapped and unmapped per fetch, their pages zeroed by the kernel each time
        // (at 128 KiB, ~0.06 CPU-s per million messages, a sixth of librdkafka's floor). What the heap keeps free is
        // given back every 10 s by the checkpoint thread (`malloc_trim`): with both, the same run stayed at 94–118 MB
        // over 200 s.
        mallopt(M_MMAP_THRESHOLD, 32 << 20)
        // Test switches only eddy drill sets (see CrashPoint, UnsafeFenceSwitch).
        if UnsafeFenceSwitch.arm(from: ProcessInfo.processInfo.environment) {
            logger.critical("UNSAFE: the sink's progress fence is disabled (\(UnsafeFenceSwitch.environmentVariable)=1, a debug build's test switch): Redis may move backwards or lose keys")
        }
        if let armed = try CrashPoint.arm(from: ProcessInfo.processInfo.environment) {
            logger.warning("crash point armed by eddy drill: dies when it is reached (pass \(armed.nth))", metadata: ["eddy.crash_point": "\(armed.point.name)"])
        }
        let registry = PrometheusCollectorRegistry()
        MetricsSystem.bootstrap(PrometheusMetricsFactory(registry: registry))

        let pipeline = try loadPipeline(file)
        var options = PipelineOptions(stateDirectory: stateDirectory)
        options.checkpointInterval = .milliseconds(Int64(checkpointInterval * 1000))
        options.maxCheckpointInterval = maxCheckpointInterval.map { .milliseconds(Int64($0 * 1000)) }
        options.maxPendingEpochs = UInt64(maxPendingEpochs)
        options.maximumStateBytes = maximumStateMiB << 20
        options.decoderLimits.maxMessageBytes = maximumMessageBytes
        options.shutdownFlushTimeout = .milliseconds(Int64(shutdownTimeout * 1000))
        options.allowNewViews = allowNewViews
        options.sinkRepair = repairInterval > 0 ? SinkRepairSettings(interval: .milliseconds(Int64(repairInterval * 1000)), keysPerSecond: repairRate) : nil
        let runner: PipelineRunner
        do {
            runner = try PipelineRunner(pipeline: pipeline, options: options, logger: logger)
        } catch {
            throw RunError(reason: error.description)
        }

        let queries = pipeline.queries
        var services: [any Service] = [
            PipelineService(runner: runner) { runner in
                for query in queries {
                    let rows = query.run(on: runner.rowsWhenCaughtUp[query.viewName] ?? [])
                    // Unbuffered: a script reading the daemon's output sees the answer now, not at exit.
                    FileHandle.standardOutput.write(Data(ResultTable(columns: query.columns.map(\.name), rows: rows).rendered(as: .table).utf8))
                }
            },
        ]
        if http != "off" {
            let server = EddyHTTPServer(
                address: try HTTPBindAddress(parsing: http), registry: registry,
                dataSource: RunnerDataSource(runner: runner, pipelineName: URL(fileURLWithPath: file).deletingPathExtension().lastPathComponent), logger: logger)
            if !server.address.isLoopback {
                logger.notice("HTTP side listens beyond loopback: the dashboard and metrics are reachable from the network", metadata: ["eddy.http.address": "\(server.address)"])
            }
            services.append(server)
        }

        if pg != "off" {
            services.append(try postgresServer(runner: runner, logger: logger))
        }

        // The service group handles the first SIGTERM/SIGINT (graceful stop); a second one exits at once.
        let group = ServiceGroup(configuration: .init(
            services: services.map { .init(service: $0, successTerminationBehavior: .gracefullyShutdownGroup, failureTerminationBehavior: .gracefullyShutdownGroup) },
            gracefulShutdownSignals: [.sigterm, .sigint],
            logger: logger))
        stopSignals.attach(group)
        do {
            try await group.run()
        } catch let error as EddyHTTPError {
            throw RunError(reason: error.reason)
        } catch let error as PostgresServerError {
            throw RunError(reason: error.description)
        } catch {
            throw RunError(reason: "\(error)")
        }
    }
}

extension RunCommand {
    /// The PostgreSQL side for `--pg`, its password from `EDDY_PG_PASSWORD` (never a flag: flags show in `ps`).
    private func postgresServer(runner: PipelineRunner, logger: Logger) throws -> PostgresServer {
        let address = try HTTPBindAddress(parsing: pg)
        var configuration = PostgresServer.Configuration(host: address.host, port: address.port)
        configuration.maximumConnections = pgMaxConnections
        configuration.idleTimeout = .milliseconds(Int64(pgIdleTimeout * 1000))
        configuration.queryTimeLimit = .milliseconds(Int64(pgQueryTimeout * 1000))
        let password = ProcessInfo.processInfo.environment["EDDY_PG_PASSWORD"]
        if !address.isLoopback && password == nil {
            logger.warning("the PostgreSQL side listens beyond loopback without a password: anyone who can connect reads the views; set EDDY_PG_PASSWORD", metadata: ["eddy.pg.address": "\(address)"])
        }
        return PostgresServer(configuration: configuration, password: password, dataSource: RunnerPostgresDataSource(runner: runner), metrics: PostgresMetrics(), logger: logger)
    }
}

/// A run-time failure of `eddy run`, printed as one line.
struct RunError: Error, CustomStringConvertible {
    let reason: String
    var description: String { "eddy run: \(reason)" }
}

/// SIGTERM/SIGINT as `eddy run` counts them: the first stops the daemon gracefully — the service group does it once
/// it runs; one that came during start-up is handed to the group when it exists, which starts its services and
/// stops them at once — and a second exits at once.
private final class StopSignals: Sendable {
    private let state = Mutex<(count: Int, group: ServiceGroup?)>((0, nil))

    func received() {
        let (count, group) = state.withLock { state in
            state.count += 1
            return (state.count, state.group)
        }
        if count > 1 {
            printToStandardError("eddy run: exiting at once; the last checkpoint keeps the state safe")
            Glibc.exit(130)
        }
        if let group { Task { await group.triggerGracefulShutdown() } }
    }

    func attach(_ group: ServiceGroup) {
        let early = state.withLock { state in
            state.group = group
            return state.count > 0
        }
        if early { Task { await group.triggerGracefulShutdown() } }
    }
}
