import EddyRedis
import Foundation
import Logging

/// The I/O a sink needs, performed only on the sink's own thread.
public protocol SinkTransport: AnyObject {
    /// (Re)connect and check Redis against `probe` (`SinkStateMachine.probe`): what the fence says of Redis'
    /// marker (a single Redis) or of every slot's marker against its own record (a Redis Cluster).
    func connectAndCheck(_ probe: SinkStateMachine.Write) throws -> SinkStateMachine.Refusal?
    /// The same check on the current connection.
    func check(_ probe: SinkStateMachine.Write) throws -> SinkStateMachine.Refusal?
    /// The fenced write (`SinkStateMachine.fence(marker:write:)` against the marker, all at once); nil when
    /// it was applied.
    func write(_ write: SinkStateMachine.Write) throws -> SinkStateMachine.Refusal?
    /// The Redis Cluster hash slots the last write touched, when it returned nil or `.alreadyApplied`: recorded
    /// with the acknowledgement (the per-slot fence's record). Empty for a single Redis.
    var writtenSlots: [UInt16] { get }
    /// Compares a repair chunk with Redis under its marker check, rewriting what differs when `repair`
    /// (`RedisKeyRepairer.compare`).
    func compare(_ chunk: SinkRepairPass.Chunk, repair: Bool) throws -> RedisChunkComparison
    /// Drop the connection (after a failure: a request sent to a paused Redis may still run later).
    func disconnect()
}

/// Why a sink operation failed, as the driver needs to know it.
public protocol SinkTransportError: Error {
    /// The connection is unusable and must be re-established.
    var connectionLost: Bool { get }
}

/// Runs one sink on its own thread: performs `SinkStateMachine` actions, retries with capped exponential
/// backoff and jitter, and lets the pipeline observe backpressure and wait for a flush.
///
/// While caught up and idle, it also runs the background repair (`SinkRepairSchedule`, `SinkRepairPass`) on
/// the same connection, a chunk at a time, so an epoch to write never waits for more than one chunk.
///
/// Thread contract: `checkpointCommitted`, `unacknowledgedEpochs`, `flush` and `stop` may be called from any
/// thread; all Redis I/O and rendering of the full view run on the driver's thread. Acknowledgements are handed
/// to `Hooks.recordAcknowledged` there; in a pipeline that queues them for the checkpoint coordinator, the
/// store's only writer.
public final class SinkDriver: @unchecked Sendable {
    public struct Hooks: Sendable {
        /// Renders the whole view from the latest committed checkpoint: its progress and pairs.
        public var renderFullView: @Sendable () throws -> (progress: SinkProgress, pairs: SinkPairBatch)
        /// Records the acknowledged epoch and its progress, and the Redis Cluster slots the write touched (in a
        /// pipeline: hands them to the checkpoint coordinator, which writes them to the store between checkpoints).
        public var recordAcknowledged: @Sendable (SinkProgress, _ slots: [UInt16]) throws -> Void
        /// Called when a write is applied (for metrics): epoch, keys, duration.
        public var didWrite: @Sendable (UInt64, Int, Duration) -> Void
        /// Called on every failed attempt (for metrics and readiness).
        public var didFail: @Sendable (any Error) -> Void
        /// Called when the sink finds another writer ahead of it (`true`) and when it has caught up with that
        /// writer's marker (`false`), for metrics and status.
        public var otherWriterAhead: @Sendable (Bool) -> Void
        /// Renders the whole view for the repair (as `renderFullView`, without counting key collisions again).
        public var renderForRepair: (@Sendable () throws -> (progress: SinkProgress, pairs: SinkPairBatch))?
        /// Called after each repair chunk (for metrics): keys compared, keys repaired; and when a pass ends.
        public var didRepair: @Sendable (_ compared: Int, _ repaired: Int, _ passFinished: Bool) -> Void

        public init(
            renderFullView: @escaping @Sendable () throws -> (progress: SinkProgress, pairs: SinkPairBatch),
            recordAcknowledged: @escaping @Sendable (SinkProgress, _ slots: [UInt16]) throws -> Void,
            didWrite: @escaping @Sendable (UInt64, Int, Duration) -> Void = { _, _, _ in },
            didFail: @escaping @Sendable (any Error) -> Void = { _ in },
            otherWriterAhead: @escaping @Sendable (Bool) -> Void = { _ in },
            renderForRepair: (@Sendable () throws -> (progress: SinkProgress, pairs: SinkPairBatch))? = nil,
            didRepair: @escaping @Sendable (_ compared: Int, _ repaired: Int, _ passFinished: Bool) -> Void = { _, _, _ in }
        ) {
            self.renderFullView = renderFullView
            self.recordAcknowledged = recordAcknowledged
            self.didWrite = didWrite
            self.didFail = didFail
            self.otherWriterAhead = otherWriterAhead
            self.renderForRepair = renderForRepair
            self.didRepair = didRepair
        }
    }

    public let name: String
    /// The sink's output form (`SinkProgress.form`), the same in every progress it is handed.
    public let form: UInt64
    private let transport: SinkTransport
    private let hooks: Hooks
    private let backoff: Backoff
    private let logger: Logger
    private let condition = NSCondition()
    // Guarded by `condition`:
    private var machine: SinkStateMachine
    private var nextAction: SinkStateMachine.Action = .none
    private var stopRequested = false
    private var stoppedReason: String?
    private var isHealthy = false
    private var thread: JoinableThread?
    private var finished = false
    /// The background repair (nil when off).
    private var repair: SinkRepairSchedule?

    private let probeInterval: Duration

    /// - Parameters:
    ///   - probeInterval: how often an idle sink reads Redis' marker, to notice lost data (and an unreachable
    ///     Redis, for readiness) while no epoch is being written.
    ///   - repair: how often and how fast an idle, caught-up sink compares Redis with the checkpoint and
    ///     rewrites keys someone else changed (`SinkRepairSchedule`); nil: never.
    public init(
        name: String, transport: SinkTransport, acknowledgedEpoch: UInt64, acknowledged: SinkProgress?, committed: SinkProgress,
        backoff: Backoff = Backoff(), probeInterval: Duration = .seconds(5), repair: SinkRepairSettings? = nil, hooks: Hooks, logger: Logger
    ) {
        self.name = name
        self.form = committed.form
        self.transport = transport
        self.hooks = hooks
        self.backoff = backoff
        self.probeInterval = probeInterval
        self.logger = logger
        self.machine = SinkStateMachine(acknowledgedEpoch: acknowledgedEpoch, acknowledged: acknowledged, committed: committed)
        self.repair = repair.map { SinkRepairSchedule(settings: $0, now: .now) }
    }

    /// Starts the sink's thread.
    public func start() {
        condition.lock()
        nextAction = machine.start()
        condition.unlock()
        thread = JoinableThread(name: "eddy-sink") { [self] in run() }
    }

    /// Checkpoint `progress` is durable; `pairs` are its dirty keys rendered from it.
    public func checkpointCommitted(_ progress: SinkProgress, pairs: SinkPairBatch) {
        condition.lock()
        let action = machine.checkpointCommitted(progress, pairs: pairs)
        repair?.checkpointCommitted(progress, pairs: pairs)
        if action != .none {
            nextAction = action
            condition.broadcast()
        }
        let waitChange = noteWaiting()
        condition.unlock()
        waitChange?()
    }

    /// Epochs committed but not yet in Redis.
    public var unacknowledgedEpochs: UInt64 {
        condition.lock()
        defer { condition.unlock() }
        return machine.unacknowledgedEpochs
    }

    /// Epochs that hold consumption back: the pipeline pauses consumption above its limit (none while
    /// waiting to reach another writer's marker, which only consuming can do).
    public var backpressureEpochs: UInt64 {
        condition.lock()
        defer { condition.unlock() }
        return machine.backpressureEpochs
    }

    /// Connected and the last attempt succeeded.
    public var healthy: Bool {
        condition.lock()
        defer { condition.unlock() }
        return isHealthy
    }

    /// Why the sink stopped for good, if it did (the pipeline must stop too).
    public var failure: String? {
        condition.lock()
        defer { condition.unlock() }
        return stoppedReason
    }

    /// Waits until everything committed is acknowledged, the sink stopped, or `timeout` passed.
    /// Returns whether the sink caught up.
    @discardableResult
    public func flush(timeout: Duration) -> Bool {
        let deadline = Date().addingTimeInterval(timeout / .seconds(1))
        condition.lock()
        defer { condition.unlock() }
        while !machine.isCaughtUp && stoppedReason == nil {
            if !condition.wait(until: deadline) { break }
        }
        return machine.isCaughtUp
    }

    /// Stops the thread (after the action in progress) and waits for it.
    public func stop() {
        condition.lock()
        stopRequested = true
        condition.broadcast()
        while thread != nil && !finished { condition.wait() }
        condition.unlock()
        thread?.join()
        thread = nil
        transport.disconnect()
    }

    private func run() {
        condition.lock()
        while true {
            var probeDue = ContinuousClock.now + probeInterval
            while nextAction == .none && !stopRequested {
                // Idle: wait for an action, the next probe, or the next repair step (only while caught up).
                var wake = probeDue
                if let repairDue = repair?.wakeTime(caughtUp: machine.isCaughtUp, committed: machine.committed) { wake = min(wake, repairDue) }
                if condition.wait(until: Date(timeIntervalSinceNow: (wake - .now) / .seconds(1))) { continue }
                guard nextAction == .none && !stopRequested && machine.isIdle else { continue }
                let event: (inout SinkStateMachine) -> SinkStateMachine.Action
                if ContinuousClock.now >= probeDue {
                    probeDue = ContinuousClock.now + probeInterval
                    let probe = machine.probe
                    condition.unlock()
                    event = check(probe)
                    condition.lock()
                } else if let task = repair?.task(now: .now, caughtUp: machine.isCaughtUp, committed: machine.committed) {
                    condition.unlock()
                    event = performRepair(task)
                    condition.lock()
                } else {
                    continue
                }
                let followUp = event(&machine)
                if followUp != .none { nextAction = followUp }
                condition.broadcast()
                if let waitChange = noteWaiting() {
                    condition.unlock()
                    waitChange()
                    condition.lock()
                }
            }
            if stopRequested { break }
            let action = nextAction
            nextAction = .none
            let probe = machine.probe
            condition.unlock()
            let event = perform(action, probe: probe)
            condition.lock()
            let followUp = event(&machine)
            if followUp != .none { nextAction = followUp }
            condition.broadcast()
            if let waitChange = noteWaiting() {
                condition.unlock()
                waitChange()
                condition.lock()
            }
        }
        finished = true
        condition.broadcast()
        condition.unlock()
    }

    /// Performs one action outside the lock and returns how to feed its outcome to the machine.
    private func perform(_ action: SinkStateMachine.Action, probe: SinkStateMachine.Write) -> (inout SinkStateMachine) -> SinkStateMachine.Action {
        switch action {
        case .none:
            return { _ in .none }

        case .connectAndReadMarker:
            do {
                let check = try transport.connectAndCheck(probe)
                logger.debug("sink connected", metadata: ["eddy.sink": "\(name)", "eddy.check": "\(check.map { "\($0)" } ?? "ready")"])
                setHealthy(true)
                return { $0.connected(check: check) }
            } catch {
                return failed(error) { $0.connectFailed() }
            }

        case .write(let write):
            let started = ContinuousClock.now
            // Recording an acknowledgement is a local store write: when it fails (disk full, I/O error) retrying
            // Redis cannot help, so the sink stops and the pipeline with it (its checkpoints would fail too).
            func acknowledge() -> String? {
                do {
                    try hooks.recordAcknowledged(write.progress, transport.writtenSlots)
                    return nil
                } catch {
                    return "cannot record epoch \(write.progress.epoch) as acknowledged in the checkpoint store: \(error)"
                }
            }
            CrashPoint.wholeViewResend.reach(when: write.isWholeView)
            do {
                switch try transport.write(write) {
                case nil:
                    CrashPoint.afterExec.reach()
                    if let failure = acknowledge() { return stopping(failure) }
                    hooks.didWrite(write.progress.epoch, write.pairs.count, ContinuousClock.now - started)
                    setHealthy(true)
                    return { $0.writeSucceeded() }
                case .alreadyApplied:
                    if let failure = acknowledge() { return stopping(failure) }
                    logger.debug("Redis already holds this checkpoint's values", metadata: ["eddy.sink": "\(name)", "eddy.epoch": "\(write.progress.epoch)"])
                    setHealthy(true)
                    return { $0.writeRefused(.alreadyApplied) }
                case .markerAhead(let marker):
                    setHealthy(true)
                    return { $0.writeRefused(.markerAhead(marker)) }
                case .wholeViewNeeded(let reason):
                    logger.warning(
                        "\(reason); re-sending the whole view",
                        metadata: ["eddy.sink": "\(name)", "eddy.acknowledged": "\(write.base?.markerText ?? "nothing")"])
                    setHealthy(true)
                    return { $0.writeRefused(.wholeViewNeeded(reason)) }
                }
            } catch {
                let lost = (error as? any SinkTransportError)?.connectionLost ?? true
                if lost { transport.disconnect() }
                return failed(error) { $0.writeFailed(connectionLost: lost) }
            }

        case .renderFullView:
            do {
                let (progress, pairs) = try hooks.renderFullView()
                logger.info("re-sending the whole view to Redis", metadata: ["eddy.sink": "\(name)", "eddy.epoch": "\(progress.epoch)", "eddy.keys": "\(pairs.count)"])
                return { $0.fullViewRendered(progress, pairs: pairs) }
            } catch {
                return stopping("cannot read the view from the checkpoint store: \(error)")
            }

        case .retryAfterBackoff(let attempt):
            let delay = backoff.delay(attempt: attempt)
            condition.lock()
            let deadline = Date().addingTimeInterval(delay / .seconds(1))
            while !stopRequested && condition.wait(until: deadline) {}
            condition.unlock()
            return { $0.retryTimerFired() }
        }
    }

    /// Checks Redis against `probe` while idle, outside the lock.
    private func check(_ probe: SinkStateMachine.Write) -> (inout SinkStateMachine) -> SinkStateMachine.Action {
        do {
            let check = try transport.check(probe)
            setHealthy(true)
            return { $0.probed(check: check) }
        } catch {
            if (error as? any SinkTransportError)?.connectionLost ?? true { transport.disconnect() }
            return failed(error) { $0.probeFailed() }
        }
    }

    /// Performs a repair task outside the lock: renders the view, or compares (and repairs) a chunk. A Redis
    /// failure is handled like a failed probe (reconnect after a backoff).
    private func performRepair(_ task: SinkRepairSchedule.Task) -> (inout SinkStateMachine) -> SinkStateMachine.Action {
        switch task {
        case .renderView:
            do {
                let (progress, pairs) = try (hooks.renderForRepair ?? hooks.renderFullView)()
                logger.debug("repair pass started", metadata: ["eddy.sink": "\(name)", "eddy.epoch": "\(progress.epoch)", "eddy.keys": "\(pairs.count)"])
                let report = withRepair { $0.rendered(progress, pairs: pairs, now: .now) }
                if let report { reportRepair(report) }
            } catch {
                withRepair { $0.renderFailed(now: .now) }
                logger.warning("cannot read the view for the repair; trying again later", metadata: ["eddy.sink": "\(name)", "eddy.error": "\(error)"])
            }
            return { _ in .none }

        case .compare(let chunk):
            do {
                let comparison = try transport.compare(chunk, repair: true)
                setHealthy(true)
                if let report = withRepair({ $0.compared(comparison, of: chunk, now: .now) }) { reportRepair(report) }
                return { _ in .none }
            } catch {
                withRepair { $0.compareFailed(of: chunk, now: .now) }
                if (error as? any SinkTransportError)?.connectionLost ?? true { transport.disconnect() }
                return failed(error) { $0.probeFailed() }
            }
        }
    }

    /// Runs `body` on the repair schedule under the lock.
    @discardableResult
    private func withRepair<Result>(_ body: (inout SinkRepairSchedule) -> Result) -> Result? {
        condition.lock()
        defer { condition.unlock() }
        guard repair != nil else { return nil }
        return body(&repair!)
    }

    /// Logs and counts what a repair step did: the first repaired keys of a pass by name (never their values),
    /// and a summary when a pass that repaired anything ends.
    private func reportRepair(_ report: SinkRepairSchedule.Report) {
        if !report.keysToLog.isEmpty {
            let keys = report.keysToLog.map { String(decoding: $0.prefix(200), as: UTF8.self) }
            logger.warning(
                "rewrote keys whose value in Redis differed from the checkpoint (changed or deleted by another program)",
                metadata: ["eddy.sink": "\(name)", "eddy.keys": "\(keys)", "eddy.keys_repaired": "\(report.repairedKeys)"])
        }
        let finished: Bool
        switch report.ending {
        case .finished(let keys, let repaired)?:
            finished = true
            if repaired > 0 {
                logger.warning(
                    "repair pass done: keys that differed from the checkpoint were rewritten",
                    metadata: ["eddy.sink": "\(name)", "eddy.keys_compared": "\(keys)", "eddy.keys_repaired": "\(repaired)"])
            } else {
                logger.debug("repair pass done: Redis equals the checkpoint", metadata: ["eddy.sink": "\(name)", "eddy.keys_compared": "\(keys)"])
            }
        case .abandoned(let marker)?:
            finished = false
            logger.info(
                "repair pass given up: Redis' marker does not stand for the newest checkpoint (another writer?); next pass after the interval",
                metadata: ["eddy.sink": "\(name)", "eddy.redis_marker": "\(marker.map { String(decoding: $0.prefix(200), as: UTF8.self) } ?? "none")"])
        case nil:
            finished = false
        }
        if report.comparedKeys > 0 || finished { hooks.didRepair(report.comparedKeys, report.repairedKeys, finished) }
    }

    private func failed(_ error: any Error, _ event: @escaping (inout SinkStateMachine) -> SinkStateMachine.Action)
        -> (inout SinkStateMachine) -> SinkStateMachine.Action
    {
        setHealthy(false)
        hooks.didFail(error)
        logger.warning("Redis sink failed; retrying with backoff", metadata: ["eddy.sink": "\(name)", "eddy.error": "\(error)"])
        return event
    }

    private func stopping(_ reason: String) -> (inout SinkStateMachine) -> SinkStateMachine.Action {
        logger.error("sink stopped", metadata: ["eddy.sink": "\(name)", "eddy.reason": "\(reason)"])
        condition.lock()
        stoppedReason = reason
        stopRequested = true
        isHealthy = false
        condition.unlock()
        return { _ in .none }
    }

    /// Whether the machine waits for another writer's marker, as last reported.
    private var reportedWaiting: SinkProgress?

    /// Call with `condition` held after feeding the machine: when it started or stopped waiting for another
    /// writer's marker, returns the report to make (log and hook) once the lock is released.
    private func noteWaiting() -> (() -> Void)? {
        let waiting = machine.waitingFor
        defer { reportedWaiting = waiting }
        guard (waiting == nil) != (reportedWaiting == nil) else { return nil }
        let committed = machine.committed
        return { [self] in
            if let waiting {
                logger.warning(
                    """
                    another writer is active on this sink: Redis holds values from further along the source than this \
                    daemon's checkpoints (a second daemon, or a state directory restored from an older copy). Nothing is \
                    written until this daemon has consumed as far; consumption goes on. Stop one of the two daemons.
                    """,
                    metadata: ["eddy.sink": "\(name)", "eddy.redis_marker": "\(waiting.markerText)", "eddy.checkpoint": "\(committed.markerText)"])
            } else {
                logger.warning("caught up with the other writer's progress; writing to Redis again", metadata: ["eddy.sink": "\(name)", "eddy.checkpoint": "\(committed.markerText)"])
            }
            hooks.otherWriterAhead(waiting != nil)
        }
    }

    private func setHealthy(_ value: Bool) {
        condition.lock()
        isHealthy = value
        condition.unlock()
    }
}

/// Capped exponential backoff with full jitter: attempt n waits a uniform random time in
/// [0, min(cap, base·2^(n-1))]. Full jitter spreads reconnecting writers apart.
public struct Backoff: Sendable {
    public var base: Duration
    public var cap: Duration

    public init(base: Duration = .milliseconds(50), cap: Duration = .seconds(5)) {
        self.base = base
        self.cap = cap
    }

    /// The ceiling for `attempt` (1-based), before jitter.
    public func ceiling(attempt: Int) -> Duration {
        let exponent = min(max(attempt - 1, 0), 30)
        let grown = base * (1 << exponent)
        return grown > cap ? cap : grown
    }

    public func delay<R: RandomNumberGenerator>(attempt: Int, using random: inout R) -> Duration {
        let ceiling = ceiling(attempt: attempt) / .seconds(1)
        return .seconds(Double.random(in: 0...ceiling, using: &random))
    }

    public func delay(attempt: Int) -> Duration {
        var random = SystemRandomNumberGenerator()
        return delay(attempt: attempt, using: &random)
    }
}
