#if canImport(Glibc)
import Glibc
#endif
import ArgumentParser
import EddyEngine
import EddyRedis
import Foundation
import Logging

/// `eddy drill [PIPELINE.sql]`: a self-contained crash-recovery drill that checks the exactly-once claim (DESIGN §3)
/// on this machine: its own broker, Redis, load and daemon, faults on a seeded schedule, and checks throughout and
/// at the end.
struct DrillCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "drill",
        abstract: "Run a crash-recovery drill: own broker, Redis, load and faults; exit 0 only when exact.",
        discussion: """
            Starts, in a scratch directory under $TMPDIR (removed at the end unless --keep): an `eddy dev-broker` of 3 \
            brokers with the pipeline's topic (--partitions partitions) and its control channel on stdin (`eddy help \
            dev-broker`), a `redis-server` on a free loopback port without \
            persistence (Debian's redis-server package), the load generator (`eddy produce --manifest`, in chunks of \
            one second at --rate, paced so that the dev broker, which keeps about 5 MB per partition, never drops a \
            message the daemon has not read) and the daemon (`eddy run PIPELINE --http off --checkpoint-interval \
            0.2`), with KAFKA_BROKERS and REDIS_URL set for the pipeline's ${…} variables. Default pipeline: \
            examples/seed_pipeline.sql, looked for in the current directory and above the eddy binary.

            Faults, one at a time, each after the pipeline recovered from the previous one, at random moments drawn \
            from --seed (printed, so that a schedule can be replayed):
              daemon-kill-9            kill -9 of the daemon, restarted at once
              daemon-sigstop           SIGSTOP of the daemon, SIGCONT 0.05-1.5 s later
              daemon-stale-state       the daemon dies at crash point after-commit (N 1-5), its state is copied \
            (a checkpoint ahead of its acknowledgement), it runs on; 1-3 s later it is killed and started on the copy, \
            behind Redis (a state directory restored from a backup), which re-sends its whole view at start
              crash-after-commit       the daemon dies (as kill -9) after a checkpoint's LMDB commit, before the \
            Redis write (the Nth commit, N 1-15)
              crash-after-exec         ... after Redis' EXEC of an epoch, before its acknowledgement is recorded \
            (N 1-15)
              crash-mid-consumption    ... after a batch of messages was applied in memory, mid-epoch (N 1-40)
              crash-whole-view-resend  ... with the whole view rendered for a re-send (Redis is emptied with \
            FLUSHALL to cause one)
              crash-startup-restore    ... at start, with the state directory open and the views not yet restored
              redis-restart-empty      Redis SHUTDOWN NOSAVE, started again empty on the same port 0-0.5 s later
              redis-pause-writes       Redis CLIENT PAUSE WRITE for 0.05-1.5 s
              redis-out-of-memory      Redis CONFIG SET maxmemory 1 (noeviction: every write refused) for \
            0.05-1.5 s, then no limit again
              broker-down              one of the 3 brokers down for 0.05-1.5 s (no load is produced meanwhile: \
            librdkafka's mock cluster can append a produce request twice when a broker goes down mid-request, even for \
            an idempotent producer; the drill also checks at the end that the topic holds exactly the messages the \
            producers were acknowledged for, and exits 2 if not)
              broker-leader-moved      a partition's leader moved to a broker drawn at random
              broker-fetch-errors      the next 1-20 fetches fail with retriable Kafka errors (NOT_LEADER, \
            LEADER_NOT_AVAILABLE, REQUEST_TIMED_OUT, NOT_ENOUGH_REPLICAS, KAFKA_STORAGE_ERROR)
            --kinds limits the drill to some of them. A crash point is armed through the environment \
            (EDDY_CRASH_POINT=NAME:N, read once when eddy run starts; only the drill sets it): the daemon is stopped \
            with SIGTERM, started armed, dies at the point's Nth pass, and is started again unarmed. \
            Not covered yet: a second writer.

            Checks: a monitor polls Redis every 2 ms (MGET of the counts, for a pipeline of the seed's shape, and of \
            every sink's marker eddy:<sink>:epoch) and records any count that moves backwards and any marker whose \
            offsets do on some partition (values and marker are written in one transaction, so this covers views \
            whose values are not monotone); after Redis is emptied on purpose, only what was seen since counts. At the \
            end, once production is done, the drill waits (up to 60 s) until Redis equals the expected result, then \
            checks that `eddy query --format csv` agrees. Expected result: for the seed's shape (one view SELECT \
            event, COUNT(*) … GROUP BY event, one sink keyed by event with the count as value), the producer's \
            manifests; for other pipelines, SQLite (python3's sqlite3 module) evaluating every view's SELECT over every \
            message produced, regenerated from the load's seeds, rendered through each sink's templates \
            (examples/several_views.sql is one). Shapes checked: one Kafka source read from 'earliest'; views with \
            WHERE, GROUP BY, COUNT/SUM/MIN/MAX over user, page and event, views over views, integer or text \
            outputs; ENCODE TEMPLATE sinks. Refused with exit 2: views reading event_timestamp (messages are \
            regenerated without their times), HAVING, subqueries, real or time-typed outputs.

            Recovery time of a fault: from its end (restart, SIGCONT, Redis back, pause over, limit lifted, broker \
            up) until the messages Redis stands for (the sum of every sink marker's offsets) pass what they were \
            when the fault ended. The report gives faults by kind, recovery p50/p99/max, messages, decreases seen \
            and the result, EXACT or NOT EXACT with the differences; --json prints it as one JSON object. A live \
            progress line goes to stderr on a terminal.

            Exit status: 0 when exact and no value moved backwards, 1 otherwise (or when the daemon exits by \
            itself), 2 when the drill could not run. Ctrl-C or SIGTERM stops every child and exits 2.
            """
    )

    @Argument(help: "The pipeline file (default: examples/seed_pipeline.sql).", completion: .file(extensions: ["sql"]))
    var pipeline: String?

    @Option(help: "Seed of the fault schedule and the load (default: random, printed).")
    var seed: UInt64?

    @Option(help: "Number of faults to inject (default 24, about a minute, unless --duration is given).")
    var faults: Int?

    @Option(help: "Stop injecting faults after this many seconds (default: no bound but --faults).")
    var duration: Double?

    @Option(help: "The fault kinds to drill, comma-separated (default: every kind above).")
    var kinds: String?

    @Option(name: .customLong("max-delay"), help: "The longest wait, in seconds, before each fault (drawn from 0.1 to this).")
    var maximumDelay: Double = 2.5

    @Option(help: "Messages per second from the load generator.")
    var rate: Int = 5_000

    @Option(help: "Partitions of the drill's topic.")
    var partitions: Int = 8

    @Flag(help: ArgumentHelp(
        "UNSAFE, debug builds only: run the daemon with its sink's progress fence disabled (EDDY_UNSAFE_DISABLE_FENCE=1), to show that the drill then fails."))
    var unsafeDisableFence = false

    @Flag(help: "Print the report as one JSON object.")
    var json = false

    @Flag(help: "Keep the scratch directory (logs, state, manifests) and print where it is.")
    var keep = false

    func validate() throws {
        if let faults, faults < 0 { throw ValidationError("--faults must be 0 or more, not \(faults)") }
        if let duration { guard duration > 0, duration <= 86_400 else { throw ValidationError("--duration must be in (0, 86400] seconds") } }
        guard (100...1_000_000).contains(rate) else { throw ValidationError("--rate must be from 100 to 1000000 messages per second") }
        guard (1...256).contains(partitions) else { throw ValidationError("--partitions must be from 1 to 256") }
        _ = try faultKinds()
        guard (0.1...60).contains(maximumDelay) else { throw ValidationError("--max-delay must be from 0.1 to 60 seconds") }
        if unsafeDisableFence && !UnsafeFenceSwitch.isHonoured {
            throw ValidationError("--unsafe-disable-fence works only with a debug build of eddy (swift build); this one is a release build")
        }
    }

    /// `--kinds`, parsed; every kind by default.
    func faultKinds() throws -> [DrillFaultKind] {
        guard let kinds else { return DrillFaultKind.allCases }
        let names = kinds.split(separator: ",").map { $0.trimmingCharacters(in: .whitespaces) }
        let parsed = names.compactMap(DrillFaultKind.init(rawValue:))
        guard !names.isEmpty, parsed.count == names.count else {
            let unknown = names.filter { DrillFaultKind(rawValue: $0) == nil }
            throw ValidationError(
                "--kinds: unknown fault kind(s) \(unknown.joined(separator: ", ")); the kinds are \(DrillFaultKind.allCases.map(\.rawValue).joined(separator: ", "))")
        }
        return parsed
    }

    func run() throws {
        do {
            let report = try drill()
            print(json ? report.json : report.text)
            if !report.passed { throw ExitCode(1) }
        } catch let error as DrillError {
            printToStandardError("eddy drill: \(error.reason)")
            throw ExitCode(error.status)
        } catch let error as ChildProcessError {
            printToStandardError("eddy drill: \(error.reason)")
            throw ExitCode(2)
        }
    }

    /// The file to drill: the argument, else the example pipeline found where ops/run.sh and the tests find it (the
    /// repository's examples/), from the current directory or from the binary's place in the repository's .build.
    private func pipelinePath(eddy: String) throws -> String {
        if let pipeline { return pipeline }
        let example = "examples/seed_pipeline.sql"
        var candidates = [FileManager.default.currentDirectoryPath]
        var directory = URL(fileURLWithPath: eddy).resolvingSymlinksInPath().deletingLastPathComponent()
        while directory.path != "/" && !directory.path.isEmpty {
            candidates.append(directory.path)
            directory.deleteLastPathComponent()
        }
        guard let found = candidates.map({ $0 + "/" + example }).first(where: { FileManager.default.fileExists(atPath: $0) }) else {
            throw DrillError(reason: "no pipeline given, and \(example) is neither in the current directory nor above the eddy binary (\(eddy)); name one: eddy drill PIPELINE.sql")
        }
        return found
    }

    private func drill() throws -> DrillReport {
        let scratch = try ChildProcesses.makeScratchDirectory(prefix: "eddy-drill")
        let processes = ChildProcesses(directory: scratch)
        let interrupted = StopFlag()
        let signals = handleTerminationSignals { interrupted.flag.store(true, ordering: .relaxed) }
        defer {
            withExtendedLifetime(signals) {}
            processes.stopAll()
            if keep {
                printToStandardError("eddy drill: logs, state and manifests kept in \(scratch)")
            } else {
                try? FileManager.default.removeItem(atPath: scratch)
            }
        }
        let path = try pipelinePath(eddy: processes.eddy)
        let target = try DrillTarget(pipelineAt: path)
        _ = try ChildProcesses.redisServerExecutable()
        let seed = self.seed ?? UInt64.random(in: 0...UInt64.max)
        printToStandardError("eddy drill: \(path), seed \(seed) (replay with --seed \(seed))")
        var loop = try DrillLoop(
            command: self, target: target, pipelinePath: path, processes: processes, schedule: DrillSchedule(seed: seed, kinds: try faultKinds(), brokers: DrillLoop.brokerCount, partitions: partitions, maximumDelay: .milliseconds(Int64(maximumDelay * 1000))), interrupted: interrupted)
        return try loop.run()
    }
}

/// Why the drill could not run (exit status 2), or found the daemon gone (1), printed as one message.
struct DrillError: Error, CustomStringConvertible {
    let reason: String
    var status: Int32 = 2
    var description: String { reason }
}
