import EddyWorkload
import Testing

@testable import EddyEngine

private typealias Pair = SinkStateMachine.Pair

private func pair(_ key: String, _ value: Int) -> Pair { Pair(key: Array(key.utf8), value: Array(String(value).utf8)) }

private func pairs(of action: SinkStateMachine.Action) -> [String: String]? {
    guard case .write(_, let pairs, _) = action else { return nil }
    return Dictionary(uniqueKeysWithValues: pairs.map { (String(decoding: $0.key, as: UTF8.self), String(decoding: $0.value ?? [], as: UTF8.self)) })
}

@Suite struct SinkStateMachineTests {
    @Test func anIdleCheckFindingRedisBehindSendsTheWholeView() {
        var machine = SinkStateMachine(acknowledgedEpoch: 0, committedEpoch: 0)
        _ = machine.start()
        _ = machine.connected(marker: nil)
        guard case .write(let epoch, _, _) = machine.checkpointCommitted(epoch: 1, pairs: [pair("click", 3)]) else {
            Issue.record("expected a write")
            return
        }
        #expect(machine.writeSucceeded(epoch: epoch) == .none)
        #expect(machine.isIdle)
        #expect(machine.probed(marker: 1) == .none)
        #expect(machine.probed(marker: nil) == .renderFullView)
        #expect(!machine.isIdle)
    }

    @Test func anIdleCheckThatFailsReconnectsAfterABackoff() {
        var machine = SinkStateMachine(acknowledgedEpoch: 0, committedEpoch: 0)
        _ = machine.start()
        _ = machine.connected(marker: nil)
        #expect(machine.probeFailed() == .retryAfterBackoff(attempt: 1))
        #expect(machine.probed(marker: 0) == .none)  // no longer idle: ignored
        #expect(machine.retryTimerFired() == .connectAndReadMarker)
    }

    @Test func anIdleCheckFindingANewerWriterStops() {
        var machine = SinkStateMachine(acknowledgedEpoch: 2, committedEpoch: 2)
        _ = machine.start()
        _ = machine.connected(marker: 2)
        guard case .stop = machine.probed(marker: 9) else {
            Issue.record("expected a stop")
            return
        }
        #expect(machine.isStopped)
    }

    @Test func freshStartConnectsThenWritesEachCommittedEpoch() {
        var machine = SinkStateMachine(acknowledgedEpoch: 0, committedEpoch: 0)
        #expect(machine.start() == .connectAndReadMarker)
        #expect(machine.connected(marker: nil) == .none)
        let write = machine.checkpointCommitted(epoch: 1, pairs: [pair("click", 3)])
        #expect(write == .write(epoch: 1, pairs: [pair("click", 3)], minimumMarker: 0))
        #expect(machine.unacknowledgedEpochs == 1)
        #expect(machine.writeSucceeded(epoch: 1) == .none)
        #expect(machine.isCaughtUp)
        #expect(machine.unacknowledgedEpochs == 0)
    }

    @Test func epochsCommittedDuringAWriteCoalesceToTheNewestValue() {
        var machine = SinkStateMachine(acknowledgedEpoch: 0, committedEpoch: 0)
        _ = machine.connected(marker: nil)
        _ = machine.checkpointCommitted(epoch: 1, pairs: [pair("click", 1)])
        #expect(machine.checkpointCommitted(epoch: 2, pairs: [pair("click", 2), pair("scroll", 1)]) == .none)
        #expect(machine.checkpointCommitted(epoch: 3, pairs: [pair("click", 5)]) == .none)
        #expect(machine.pendingKeyCount == 2)
        #expect(machine.unacknowledgedEpochs == 3)
        let next = machine.writeSucceeded(epoch: 1)
        guard case .write(let epoch, _, _) = next else { Issue.record("expected a write, got \(next)"); return }
        #expect(epoch == 3)
        #expect(pairs(of: next) == ["click": "5", "scroll": "1"])
    }

    @Test func failedWriteIsRetriedWithNewerValuesWinning() {
        var machine = SinkStateMachine(acknowledgedEpoch: 0, committedEpoch: 0)
        _ = machine.connected(marker: nil)
        _ = machine.checkpointCommitted(epoch: 1, pairs: [pair("click", 1), pair("focus", 7)])
        _ = machine.checkpointCommitted(epoch: 2, pairs: [pair("click", 4)])
        #expect(machine.writeFailed(epoch: 1, connectionLost: true) == .retryAfterBackoff(attempt: 1))
        #expect(machine.retryTimerFired() == .connectAndReadMarker)
        #expect(machine.connectFailed() == .retryAfterBackoff(attempt: 2))
        #expect(machine.retryTimerFired() == .connectAndReadMarker)
        let retry = machine.connected(marker: nil)
        #expect(pairs(of: retry) == ["click": "4", "focus": "7"])
        guard case .write(2, _, _) = retry else { Issue.record("expected epoch 2, got \(retry)"); return }
        #expect(machine.writeSucceeded(epoch: 2) == .none)
        #expect(machine.isCaughtUp)
    }

    @Test func aRetryOfAnAppliedEpochCountsAsAcknowledged() {
        var machine = SinkStateMachine(acknowledgedEpoch: 0, committedEpoch: 0)
        _ = machine.connected(marker: nil)
        _ = machine.checkpointCommitted(epoch: 1, pairs: [pair("click", 1)])
        _ = machine.writeFailed(epoch: 1, connectionLost: true)  // applied, but the reply was lost
        _ = machine.retryTimerFired()
        #expect(machine.connected(marker: 1) == .write(epoch: 1, pairs: [pair("click", 1)], minimumMarker: 0))
        #expect(machine.writeRefusedAsStale(epoch: 1, marker: 1) == .none)
        #expect(machine.isCaughtUp)
    }

    @Test func aMarkerFromAnotherWriterStopsTheSink() {
        var machine = SinkStateMachine(acknowledgedEpoch: 3, committedEpoch: 3)
        guard case .stop(let reason) = machine.connected(marker: 9) else { Issue.record("expected stop"); return }
        #expect(reason.contains("epoch 9"))
        #expect(machine.isStopped)

        var writing = SinkStateMachine(acknowledgedEpoch: 0, committedEpoch: 0)
        _ = writing.connected(marker: nil)
        _ = writing.checkpointCommitted(epoch: 1, pairs: [pair("a", 1)])
        guard case .stop = writing.writeRefusedAsStale(epoch: 1, marker: 2) else { Issue.record("expected stop"); return }
    }

    @Test func redisBehindTheAcknowledgedEpochGetsTheWholeView() {
        var machine = SinkStateMachine(acknowledgedEpoch: 5, committedEpoch: 5)
        #expect(machine.connected(marker: nil) == .renderFullView)
        _ = machine.checkpointCommitted(epoch: 6, pairs: [pair("click", 10), pair("scroll", 2)])
        // The snapshot is of epoch 5: the pending values of epoch 6 are newer and must follow it.
        #expect(machine.fullViewRendered(epoch: 5, pairs: [pair("click", 9)]) == .write(epoch: 5, pairs: [pair("click", 9)], minimumMarker: 0))
        #expect(pairs(of: machine.writeSucceeded(epoch: 5)) == ["click": "10", "scroll": "2"])
    }

    @Test func aSnapshotSupersedesOlderPendingValues() {
        var machine = SinkStateMachine(acknowledgedEpoch: 5, committedEpoch: 5)
        _ = machine.connected(marker: nil)
        _ = machine.checkpointCommitted(epoch: 6, pairs: [pair("click", 10)])
        #expect(machine.fullViewRendered(epoch: 6, pairs: [pair("click", 10)]) == .write(epoch: 6, pairs: [pair("click", 10)], minimumMarker: 0))
        #expect(machine.writeSucceeded(epoch: 6) == .none)
        #expect(machine.isCaughtUp)
    }

    @Test func redisFlushedUnderAnOpenConnectionIsCaughtByTheFence() {
        var machine = SinkStateMachine(acknowledgedEpoch: 0, committedEpoch: 0)
        _ = machine.connected(marker: nil)
        _ = machine.checkpointCommitted(epoch: 1, pairs: [pair("click", 1), pair("scroll", 1)])
        _ = machine.writeSucceeded(epoch: 1)
        #expect(machine.checkpointCommitted(epoch: 2, pairs: [pair("click", 2)]) == .write(epoch: 2, pairs: [pair("click", 2)], minimumMarker: 1))
        #expect(machine.writeFoundRedisBehind(epoch: 2, marker: nil) == .renderFullView)
        let snapshot = [pair("click", 2), pair("scroll", 1)]
        #expect(machine.fullViewRendered(epoch: 2, pairs: snapshot) == .write(epoch: 2, pairs: snapshot, minimumMarker: 0))
        #expect(machine.writeSucceeded(epoch: 2) == .none)
        #expect(machine.isCaughtUp)
    }

    @Test func restartWithUnacknowledgedEpochsResendsTheView() {
        var machine = SinkStateMachine(acknowledgedEpoch: 2, committedEpoch: 4)
        #expect(machine.connected(marker: 2) == .renderFullView)
    }

    @Test func anEpochWithNoDirtyKeysStillMovesTheMarker() {
        var machine = SinkStateMachine(acknowledgedEpoch: 0, committedEpoch: 0)
        _ = machine.connected(marker: nil)
        #expect(machine.checkpointCommitted(epoch: 1, pairs: []) == .write(epoch: 1, pairs: [], minimumMarker: 0))
        #expect(machine.writeSucceeded(epoch: 1) == .none)
        #expect(machine.unacknowledgedEpochs == 0)
    }

    /// A simulated Redis with the fence and a checkpoint store, driven through random failures, lost
    /// replies, data loss and restarts: Redis values never move backwards and end equal to the view.
    @Test(arguments: 0..<40)
    func randomFailuresNeverMoveValuesBackwardsAndEndExact(seed: UInt64) {
        var random = SplitMix64(seed: seed)
        func chance(_ percent: UInt64) -> Bool { random.next() % 100 < percent }
        let keys = (0..<12).map { "k\($0)" }

        var view: [String: Int] = [:]  // the committed checkpoint (values only grow: they are counts)
        var epoch: UInt64 = 0
        var redis: [String: Int] = [:]
        var marker: UInt64? = nil
        var acknowledged: UInt64 = 0
        var machine = SinkStateMachine(acknowledgedEpoch: 0, committedEpoch: 0)
        var action = machine.start()

        enum Outcome { case applied, stale, behind }
        /// The fenced write as RedisEpochWriter does it.
        func apply(_ writeEpoch: UInt64, _ pairs: [Pair], expecting: UInt64) -> Outcome {
            guard (marker ?? 0) >= expecting else { return .behind }
            guard (marker ?? 0) < writeEpoch else { return .stale }
            for pair in pairs {
                let key = String(decoding: pair.key, as: UTF8.self)
                let value = Int(String(decoding: pair.value ?? [], as: UTF8.self))!
                if let old = redis[key] { #expect(value >= old, "seed \(seed): \(key) moved back from \(old) to \(value)") }
                redis[key] = value
            }
            marker = writeEpoch
            return .applied
        }

        var steps = 0
        while steps < 3000 {
            steps += 1
            let producing = steps < 2000
            if producing && chance(30) {
                epoch += 1
                var dirty: [Pair] = []
                for key in keys where chance(25) {
                    view[key, default: 0] += Int(random.next() % 5) + 1
                    dirty.append(pair(key, view[key]!))
                }
                let next = machine.checkpointCommitted(epoch: epoch, pairs: dirty)
                if next != .none { action = next }
            }
            if producing && chance(1) { redis = [:]; marker = nil }  // Redis flushed or restarted empty; the connection may survive
            if producing && chance(1) {  // the daemon restarts from its checkpoint store
                machine = SinkStateMachine(acknowledgedEpoch: acknowledged, committedEpoch: epoch)
                action = machine.start()
            }
            switch action {
            case .none:
                continue
            case .connectAndReadMarker:
                action = producing && chance(20) ? machine.connectFailed() : machine.connected(marker: marker)
            case .renderFullView:
                action = machine.fullViewRendered(epoch: epoch, pairs: view.map { pair($0.key, $0.value) })
            case .retryAfterBackoff:
                action = machine.retryTimerFired()
            case .write(let writeEpoch, let writePairs, let expecting):
                if producing && chance(15) {
                    action = machine.writeFailed(epoch: writeEpoch, connectionLost: chance(50))
                    continue
                }
                let lostReply = producing && chance(10)
                switch apply(writeEpoch, writePairs, expecting: expecting) {
                case _ where lostReply:
                    action = machine.writeFailed(epoch: writeEpoch, connectionLost: true)
                case .applied:
                    acknowledged = writeEpoch
                    action = machine.writeSucceeded(epoch: writeEpoch)
                case .behind:
                    action = machine.writeFoundRedisBehind(epoch: writeEpoch, marker: marker)
                case .stale:
                    if SinkStateMachine.isOwnEarlierWrite(epoch: writeEpoch, marker: marker!) { acknowledged = writeEpoch }
                    action = machine.writeRefusedAsStale(epoch: writeEpoch, marker: marker!)
                }
            case .stop(let reason):
                Issue.record("seed \(seed): stopped: \(reason)")
                return
            }
        }
        #expect(machine.isCaughtUp, "seed \(seed): not caught up, last action \(action)")
        #expect(redis == view, "seed \(seed)")
        #expect(marker == epoch)
    }
}
