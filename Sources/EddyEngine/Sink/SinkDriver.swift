import Foundation
import Logging

/// The I/O a sink needs, performed only on the sink's own thread.
public protocol SinkTransport: AnyObject {
    /// (Re)connect and read the epoch marker (nil when absent).
    func connectAndReadMarker() throws -> UInt64?
    /// Read the epoch marker on the current connection (nil when absent).
    func readMarker() throws -> UInt64?
    /// The fenced epoch write (see `SinkStateMachine.Action.write`).
    func write(epoch: UInt64, pairs: [SinkStateMachine.Pair], minimumMarker: UInt64) throws -> SinkWriteOutcome
    /// Drop the connection (after a failure: a request sent to a paused Redis may still run later).
    func disconnect()
}

public enum SinkWriteOutcome: Sendable, Equatable {
    case applied
    /// Redis' marker is at or past the epoch: a newer writer, or our own earlier write of this epoch.
    case stale(marker: UInt64)
    /// Redis' marker is below the minimum: Redis lost data.
    case behind(marker: UInt64?)
}

/// Why a sink operation failed, as the driver needs to know it.
public protocol SinkTransportError: Error {
    /// The connection is unusable and must be re-established.
    var connectionLost: Bool { get }
}

/// Runs one sink on its own thread: performs `SinkStateMachine` actions, retries with capped exponential
/// backoff and jitter, and lets the pipeline observe backpressure and wait for a flush.
///
/// Thread contract: `checkpointCommitted`, `unacknowledgedEpochs`, `flush` and `stop` may be called from any
/// thread; all Redis I/O, rendering of the full view and recording of acknowledgements run on the driver's thread.
public final class SinkDriver: @unchecked Sendable {
    public struct Hooks: Sendable {
        /// Renders the whole view from the latest committed checkpoint: its epoch and pairs.
        public var renderFullView: @Sendable () throws -> (epoch: UInt64, pairs: [SinkStateMachine.Pair])
        /// Records the acknowledged epoch durably (the checkpoint store).
        public var recordAcknowledged: @Sendable (UInt64) throws -> Void
        /// Called when a write is applied (for metrics): epoch, keys, duration.
        public var didWrite: @Sendable (UInt64, Int, Duration) -> Void
        /// Called on every failed attempt (for metrics and readiness).
        public var didFail: @Sendable (any Error) -> Void

        public init(
            renderFullView: @escaping @Sendable () throws -> (epoch: UInt64, pairs: [SinkStateMachine.Pair]),
            recordAcknowledged: @escaping @Sendable (UInt64) throws -> Void,
            didWrite: @escaping @Sendable (UInt64, Int, Duration) -> Void = { _, _, _ in },
            didFail: @escaping @Sendable (any Error) -> Void = { _ in }
        ) {
            self.renderFullView = renderFullView
            self.recordAcknowledged = recordAcknowledged
            self.didWrite = didWrite
            self.didFail = didFail
        }
    }

    public let name: String
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

    private let probeInterval: Duration

    /// - Parameter probeInterval: how often an idle sink reads Redis' marker, to notice lost data (and an
    ///   unreachable Redis, for readiness) while no epoch is being written.
    public init(
        name: String, transport: SinkTransport, acknowledgedEpoch: UInt64, committedEpoch: UInt64,
        backoff: Backoff = Backoff(), probeInterval: Duration = .seconds(5), hooks: Hooks, logger: Logger
    ) {
        self.name = name
        self.transport = transport
        self.hooks = hooks
        self.backoff = backoff
        self.probeInterval = probeInterval
        self.logger = logger
        self.machine = SinkStateMachine(acknowledgedEpoch: acknowledgedEpoch, committedEpoch: committedEpoch)
    }

    /// Starts the sink's thread.
    public func start() {
        condition.lock()
        nextAction = machine.start()
        condition.unlock()
        thread = JoinableThread(name: "eddy-sink") { [self] in run() }
    }

    /// Checkpoint `epoch` is durable; `pairs` are its dirty keys rendered from it.
    public func checkpointCommitted(epoch: UInt64, pairs: [SinkStateMachine.Pair]) {
        condition.lock()
        defer { condition.unlock() }
        let action = machine.checkpointCommitted(epoch: epoch, pairs: pairs)
        if action != .none {
            nextAction = action
            condition.broadcast()
        }
    }

    /// Epochs committed but not yet in Redis: the pipeline pauses consumption above its limit.
    public var unacknowledgedEpochs: UInt64 {
        condition.lock()
        defer { condition.unlock() }
        return machine.unacknowledgedEpochs
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
            var probeDue = Date().addingTimeInterval(probeInterval / .seconds(1))
            while nextAction == .none && !stopRequested {
                if !condition.wait(until: probeDue) && nextAction == .none && !stopRequested && machine.isIdle {
                    condition.unlock()
                    let event = probe()
                    condition.lock()
                    let followUp = event(&machine)
                    if followUp != .none { nextAction = followUp }
                    condition.broadcast()
                    probeDue = Date().addingTimeInterval(probeInterval / .seconds(1))
                }
            }
            if stopRequested { break }
            let action = nextAction
            nextAction = .none
            condition.unlock()
            let event = perform(action)
            condition.lock()
            let followUp = event(&machine)
            if followUp != .none { nextAction = followUp }
            condition.broadcast()
        }
        finished = true
        condition.broadcast()
        condition.unlock()
    }

    /// Performs one action outside the lock and returns how to feed its outcome to the machine.
    private func perform(_ action: SinkStateMachine.Action) -> (inout SinkStateMachine) -> SinkStateMachine.Action {
        switch action {
        case .none:
            return { _ in .none }

        case .connectAndReadMarker:
            do {
                let marker = try transport.connectAndReadMarker()
                logger.debug("sink connected", metadata: ["eddy.sink": "\(name)", "eddy.marker": "\(marker.map(String.init) ?? "none")"])
                setHealthy(true)
                return { $0.connected(marker: marker) }
            } catch {
                return failed(error) { $0.connectFailed() }
            }

        case .write(let epoch, let pairs, let minimumMarker):
            let started = ContinuousClock.now
            // Recording an acknowledgement is a local store write: when it fails (disk full, I/O error) retrying
            // Redis cannot help, so the sink stops and the pipeline with it (its checkpoints would fail too).
            func acknowledge() -> String? {
                do {
                    try hooks.recordAcknowledged(epoch)
                    return nil
                } catch {
                    return "cannot record epoch \(epoch) as acknowledged in the checkpoint store: \(error)"
                }
            }
            do {
                switch try transport.write(epoch: epoch, pairs: pairs, minimumMarker: minimumMarker) {
                case .applied:
                    if let failure = acknowledge() { return stopping(failure) }
                    hooks.didWrite(epoch, pairs.count, ContinuousClock.now - started)
                    setHealthy(true)
                    return { $0.writeSucceeded(epoch: epoch) }
                case .stale(let marker):
                    if SinkStateMachine.isOwnEarlierWrite(epoch: epoch, marker: marker), let failure = acknowledge() { return stopping(failure) }
                    return { $0.writeRefusedAsStale(epoch: epoch, marker: marker) }
                case .behind(let marker):
                    logger.warning(
                        "Redis lost data (its epoch marker is behind what it acknowledged); re-sending the whole view",
                        metadata: ["eddy.sink": "\(name)", "eddy.marker": "\(marker.map(String.init) ?? "none")", "eddy.acknowledged": "\(minimumMarker)"])
                    return { $0.writeFoundRedisBehind(epoch: epoch, marker: marker) }
                }
            } catch {
                let lost = (error as? any SinkTransportError)?.connectionLost ?? true
                if lost { transport.disconnect() }
                return failed(error) { $0.writeFailed(epoch: epoch, connectionLost: lost) }
            }

        case .renderFullView:
            do {
                let (epoch, pairs) = try hooks.renderFullView()
                logger.info("re-sending the whole view to Redis", metadata: ["eddy.sink": "\(name)", "eddy.epoch": "\(epoch)", "eddy.keys": "\(pairs.count)"])
                return { $0.fullViewRendered(epoch: epoch, pairs: pairs) }
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

        case .stop(let reason):
            return stopping(reason)
        }
    }

    /// Reads the marker while idle, outside the lock.
    private func probe() -> (inout SinkStateMachine) -> SinkStateMachine.Action {
        do {
            let marker = try transport.readMarker()
            setHealthy(true)
            return { $0.probed(marker: marker) }
        } catch {
            if (error as? any SinkTransportError)?.connectionLost ?? true { transport.disconnect() }
            return failed(error) { $0.probeFailed() }
        }
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
