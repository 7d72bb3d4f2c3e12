import EddyState
import EddyWorkload
import Testing

@testable import EddyEngine

private typealias Pair = SinkStateMachine.Pair
private typealias Write = SinkStateMachine.Write

private let partition0 = TopicPartition(topic: "t", partition: 0)
private let partition1 = TopicPartition(topic: "t", partition: 1)

private func pair(_ key: String, _ value: Int) -> Pair { Pair(key: Array(key.utf8), value: Array(String(value).utf8)) }

/// A checkpoint of a one-partition source at `offset`.
private func at(_ epoch: UInt64, _ offset: Int64, form: UInt64 = 7) -> SinkProgress {
    SinkProgress(epoch: epoch, form: form, offsets: [partition0: offset])
}

private func pairs(of action: SinkStateMachine.Action) -> [String: String]? {
    guard case .write(let write) = action else { return nil }
    return Dictionary(uniqueKeysWithValues: write.pairs.map { (String(decoding: $0.key, as: UTF8.self), String(decoding: $0.value ?? [], as: UTF8.self)) })
}

private func written(_ action: SinkStateMachine.Action) -> Write? {
    guard case .write(let write) = action else { return nil }
    return write
}

@Suite struct SinkStateMachineTests {
    @Test func freshStartConnectsThenWritesEachCommittedEpoch() {
        var machine = SinkStateMachine(acknowledgedEpoch: 0, acknowledged: nil, committed: at(0, 0))
        #expect(machine.start() == .connectAndReadMarker)
        #expect(machine.connected(marker: .absent) == .none)
        let write = machine.checkpointCommitted(at(1, 10), pairs: [pair("click", 3)])
        #expect(write == .write(Write(progress: at(1, 10), pairs: [pair("click", 3)], isWholeView: false, base: nil)))
        #expect(machine.unacknowledgedEpochs == 1)
        #expect(machine.writeSucceeded() == .none)
        #expect(machine.isCaughtUp)
        #expect(machine.unacknowledgedEpochs == 0)
        #expect(machine.acknowledged == at(1, 10))
    }

    @Test func epochsCommittedDuringAWriteCoalesceToTheNewestValue() {
        var machine = SinkStateMachine(acknowledgedEpoch: 0, acknowledged: nil, committed: at(0, 0))
        _ = machine.connected(marker: .absent)
        _ = machine.checkpointCommitted(at(1, 1), pairs: [pair("click", 1)])
        #expect(machine.checkpointCommitted(at(2, 3), pairs: [pair("click", 2), pair("scroll", 1)]) == .none)
        #expect(machine.checkpointCommitted(at(3, 6), pairs: [pair("click", 5)]) == .none)
        #expect(machine.pendingKeyCount == 2)
        #expect(machine.unacknowledgedEpochs == 3)
        let next = machine.writeSucceeded()
        #expect(written(next)?.progress == at(3, 6))
        #expect(written(next)?.base == at(1, 1))
        #expect(pairs(of: next) == ["click": "5", "scroll": "1"])
    }

    @Test func failedWriteIsRetriedWithNewerValuesWinning() {
        var machine = SinkStateMachine(acknowledgedEpoch: 0, acknowledged: nil, committed: at(0, 0))
        _ = machine.connected(marker: .absent)
        _ = machine.checkpointCommitted(at(1, 2), pairs: [pair("click", 1), pair("focus", 7)])
        _ = machine.checkpointCommitted(at(2, 5), pairs: [pair("click", 4)])
        #expect(machine.writeFailed(connectionLost: true) == .retryAfterBackoff(attempt: 1))
        #expect(machine.retryTimerFired() == .connectAndReadMarker)
        #expect(machine.connectFailed() == .retryAfterBackoff(attempt: 2))
        #expect(machine.retryTimerFired() == .connectAndReadMarker)
        let retry = machine.connected(marker: .absent)
        #expect(pairs(of: retry) == ["click": "4", "focus": "7"])
        #expect(written(retry)?.progress == at(2, 5))
        #expect(machine.writeSucceeded() == .none)
        #expect(machine.isCaughtUp)
    }

    @Test func aRetryOfAnAppliedWriteCountsAsAcknowledged() {
        var machine = SinkStateMachine(acknowledgedEpoch: 0, acknowledged: nil, committed: at(0, 0))
        _ = machine.connected(marker: .absent)
        let first = written(machine.checkpointCommitted(at(1, 4), pairs: [pair("click", 1)]))!
        _ = machine.writeFailed(connectionLost: true)  // applied, but the reply was lost
        _ = machine.retryTimerFired()
        let retry = written(machine.connected(marker: .progress(at(1, 4))))!
        #expect(retry == first)
        #expect(SinkStateMachine.fence(marker: .progress(at(1, 4)), write: retry) == .alreadyApplied)
        #expect(machine.writeRefused(.alreadyApplied) == .none)
        #expect(machine.isCaughtUp)
    }

    /// The drill that broke the epoch fence: a copy of the state directory (same epoch numbers, older
    /// offsets) meets Redis written by the live daemon. It must neither write nor stop: it waits, consuming.
    @Test func aMarkerAheadMakesTheSinkWaitAndWriteOnceItHasCaughtUp() {
        var machine = SinkStateMachine(acknowledgedEpoch: 3, acknowledged: at(3, 30), committed: at(3, 30))
        // The other daemon wrote epoch 3 too, but at offset 90.
        #expect(machine.connected(marker: .progress(at(3, 90))) == .none)
        #expect(machine.waitingFor == at(3, 90))
        #expect(machine.checkpointCommitted(at(4, 60), pairs: [pair("click", 6)]) == .none)
        #expect(machine.unacknowledgedEpochs == 1)
        #expect(machine.backpressureEpochs == 0)  // consuming is the only way forward
        let caughtUp = machine.checkpointCommitted(at(5, 95), pairs: [pair("scroll", 2)])
        #expect(machine.waitingFor == nil)
        #expect(pairs(of: caughtUp) == ["click": "6", "scroll": "2"])
        #expect(written(caughtUp)?.progress == at(5, 95))
    }

    @Test func aWriteRefusedAsBehindTheMarkerPutsItsValuesBackAndWaits() {
        var machine = SinkStateMachine(acknowledgedEpoch: 1, acknowledged: at(1, 10), committed: at(1, 10))
        _ = machine.connected(marker: .progress(at(1, 10)))
        let write = written(machine.checkpointCommitted(at(2, 20), pairs: [pair("a", 2)]))!
        #expect(SinkStateMachine.fence(marker: .progress(at(9, 25)), write: write) == .markerAhead(at(9, 25)))
        #expect(machine.writeRefused(.markerAhead(at(9, 25))) == .none)
        #expect(machine.pendingKeyCount == 1)
        let next = machine.checkpointCommitted(at(3, 25), pairs: [pair("b", 1)])
        #expect(pairs(of: next) == ["a": "2", "b": "1"])
        #expect(written(next)?.base == at(1, 10))
    }

    @Test func anIdleCheckFindingRedisEmptySendsTheWholeView() {
        var machine = SinkStateMachine(acknowledgedEpoch: 0, acknowledged: nil, committed: at(0, 0))
        _ = machine.start()
        _ = machine.connected(marker: .absent)
        #expect(written(machine.checkpointCommitted(at(1, 5), pairs: [pair("click", 3)])) != nil)
        #expect(machine.writeSucceeded() == .none)
        #expect(machine.isIdle)
        #expect(machine.probed(marker: .progress(at(1, 5))) == .none)
        #expect(machine.probed(marker: .absent) == .renderFullView)
        #expect(!machine.isIdle)
    }

    @Test func anIdleCheckThatFailsReconnectsAfterABackoff() {
        var machine = SinkStateMachine(acknowledgedEpoch: 0, acknowledged: nil, committed: at(0, 0))
        _ = machine.start()
        _ = machine.connected(marker: .absent)
        #expect(machine.probeFailed() == .retryAfterBackoff(attempt: 1))
        #expect(machine.probed(marker: .absent) == .none)  // no longer idle: ignored
        #expect(machine.retryTimerFired() == .connectAndReadMarker)
    }

    @Test func redisBehindTheAcknowledgedProgressGetsTheWholeView() {
        var machine = SinkStateMachine(acknowledgedEpoch: 5, acknowledged: at(5, 50), committed: at(5, 50))
        #expect(machine.connected(marker: .progress(at(4, 40))) == .renderFullView)
        _ = machine.checkpointCommitted(at(6, 60), pairs: [pair("click", 10), pair("scroll", 2)])
        // The snapshot is of epoch 5: the pending values of epoch 6 are newer and must follow it.
        let whole = machine.fullViewRendered(at(5, 50), pairs: [pair("click", 9)])
        #expect(whole == .write(Write(progress: at(5, 50), pairs: [pair("click", 9)], isWholeView: true, base: at(5, 50))))
        #expect(SinkStateMachine.fence(marker: .progress(at(4, 40)), write: written(whole)!) == nil)
        #expect(pairs(of: machine.writeSucceeded()) == ["click": "10", "scroll": "2"])
    }

    @Test func aSnapshotSupersedesOlderPendingValues() {
        var machine = SinkStateMachine(acknowledgedEpoch: 5, acknowledged: at(5, 50), committed: at(5, 50))
        _ = machine.connected(marker: .absent)
        _ = machine.checkpointCommitted(at(6, 60), pairs: [pair("click", 10)])
        #expect(written(machine.fullViewRendered(at(6, 60), pairs: [pair("click", 10)]))?.isWholeView == true)
        #expect(machine.writeSucceeded() == .none)
        #expect(machine.isCaughtUp)
    }

    @Test func redisFlushedUnderAnOpenConnectionIsCaughtByTheFence() {
        var machine = SinkStateMachine(acknowledgedEpoch: 0, acknowledged: nil, committed: at(0, 0))
        _ = machine.connected(marker: .absent)
        _ = machine.checkpointCommitted(at(1, 2), pairs: [pair("click", 1), pair("scroll", 1)])
        _ = machine.writeSucceeded()
        let delta = written(machine.checkpointCommitted(at(2, 3), pairs: [pair("click", 2)]))!
        #expect(SinkStateMachine.fence(marker: .absent, write: delta) == .wholeViewNeeded(.redisLostData))
        #expect(machine.writeRefused(.wholeViewNeeded(.redisLostData)) == .renderFullView)
        let snapshot: SinkPairBatch = [pair("click", 2), pair("scroll", 1)]
        let whole = written(machine.fullViewRendered(at(2, 3), pairs: snapshot))!
        #expect(SinkStateMachine.fence(marker: .absent, write: whole) == nil)
        #expect(machine.writeSucceeded() == .none)
        #expect(machine.isCaughtUp)
    }

    @Test func restartWithUnacknowledgedEpochsResendsTheView() {
        var machine = SinkStateMachine(acknowledgedEpoch: 2, acknowledged: at(2, 20), committed: at(4, 40))
        #expect(machine.connected(marker: .progress(at(2, 20))) == .renderFullView)
    }

    @Test func aStoreFromBeforeTheProgressFenceResendsTheViewOnce() {
        // Acknowledged epoch 4, but not where in the stream: the dirty keys since Redis' values are unknown.
        var machine = SinkStateMachine(acknowledgedEpoch: 4, acknowledged: nil, committed: at(4, 40))
        #expect(machine.connected(marker: .epochOnly(4)) == .renderFullView)
        let whole = written(machine.fullViewRendered(at(4, 40), pairs: [pair("a", 1)]))!
        #expect(SinkStateMachine.fence(marker: .epochOnly(4), write: whole) == nil)
        #expect(machine.writeSucceeded() == .none)
        #expect(machine.isCaughtUp)
    }

    @Test func anEpochWithNoDirtyKeysStillMovesTheMarker() {
        var machine = SinkStateMachine(acknowledgedEpoch: 0, acknowledged: nil, committed: at(0, 0))
        _ = machine.connected(marker: .absent)
        #expect(machine.checkpointCommitted(at(1, 3), pairs: []) == .write(Write(progress: at(1, 3), pairs: [], isWholeView: false, base: nil)))
        #expect(machine.writeSucceeded() == .none)
        #expect(machine.unacknowledgedEpochs == 0)
    }

    @Test func theFenceComparesProgressPartitionByPartition() {
        func two(_ first: Int64, _ second: Int64, form: UInt64 = 7) -> SinkProgress {
            SinkProgress(epoch: 1, form: form, offsets: [partition0: first, partition1: second])
        }
        func delta(_ progress: SinkProgress, base: SinkProgress?) -> Write { Write(progress: progress, pairs: [], isWholeView: false, base: base) }
        func whole(_ progress: SinkProgress) -> Write { Write(progress: progress, pairs: [], isWholeView: true, base: nil) }

        #expect(SinkStateMachine.fence(marker: .progress(two(5, 5)), write: delta(two(6, 5), base: two(5, 5))) == nil)
        #expect(SinkStateMachine.fence(marker: .progress(two(5, 5)), write: delta(two(5, 5), base: two(4, 4))) == .alreadyApplied)
        // Ahead on one partition, behind on the other: not at or past Redis' values.
        #expect(SinkStateMachine.fence(marker: .progress(two(5, 5)), write: delta(two(9, 4), base: two(4, 4))) == .markerAhead(two(5, 5)))
        #expect(SinkStateMachine.fence(marker: .progress(two(5, 5)), write: whole(two(9, 4))) == .markerAhead(two(5, 5)))
        // A partition Redis' writer had not started counts as behind everything.
        #expect(SinkStateMachine.fence(marker: .progress(at(1, 5)), write: delta(two(5, 0), base: at(1, 5))) == nil)
        // Behind what Redis acknowledged to this writer: Redis lost data.
        #expect(SinkStateMachine.fence(marker: .progress(two(3, 5)), write: delta(two(6, 6), base: two(4, 5))) == .wholeViewNeeded(.redisLostData))
        #expect(SinkStateMachine.fence(marker: .absent, write: delta(two(6, 6), base: two(4, 5))) == .wholeViewNeeded(.redisLostData))
        #expect(SinkStateMachine.fence(marker: .absent, write: delta(two(6, 6), base: nil)) == nil)
        // Another output form: only a whole view replaces it, even at the same offsets.
        #expect(SinkStateMachine.fence(marker: .progress(two(5, 5, form: 1)), write: delta(two(6, 6), base: two(5, 5))) == .wholeViewNeeded(.otherOutputForm))
        #expect(SinkStateMachine.fence(marker: .progress(two(5, 5, form: 1)), write: whole(two(5, 5))) == nil)
        #expect(SinkStateMachine.fence(marker: .progress(two(6, 5, form: 1)), write: whole(two(5, 5))) == .markerAhead(two(6, 5, form: 1)))
        #expect(SinkStateMachine.fence(marker: .epochOnly(9), write: delta(two(6, 6), base: nil)) == .wholeViewNeeded(.epochOnlyMarker))
    }

    @Test func theMarkerTextRoundTripsAndIsReadStrictly() {
        let progress = SinkProgress(
            epoch: 42, form: 0x00ab_cdef_0123_4567,
            offsets: [TopicPartition(topic: "user.events-1", partition: 11): 9_000_000_000, partition0: 0])
        #expect(progress.markerText == "v1 42 00abcdef01234567 t/0=0 user.events-1/11=9000000000")
        #expect(SinkProgress.parseMarker(Array(progress.markerText.utf8)) == .progress(progress))
        #expect(SinkProgress.parseMarker(Array("v1 3 00abcdef01234567".utf8)) == .progress(SinkProgress(epoch: 3, form: 0xab_cdef_0123_4567, offsets: [:])))
        #expect(SinkProgress.parseMarker(Array("0042".utf8)) == .epochOnly(42))
        for bad in ["", "v2 1 00abcdef01234567", "v1 1 abc", "v1 x 00abcdef01234567", "v1 1 00abcdef01234567 t/0", "v1 1 00abcdef01234567 /0=1",
            "v1 1 00abcdef01234567 t/a=1", "v1 1 00abcdef01234567 t/0=1 ", "18446744073709551616", "hello"]
        {
            #expect(SinkProgress.parseMarker(Array(bad.utf8)) == nil, "\(bad)")
        }
        #expect(SinkProgress.form(ofFingerprint: "json") == SinkProgress.form(ofFingerprint: "json"))
        #expect(SinkProgress.form(ofFingerprint: "json") != SinkProgress.form(ofFingerprint: "jsoN"))
    }

    // MARK: Randomized: Redis, the fence and daemons with their stores, under faults

    /// A source of `messages` messages on one partition, message `i` adding 1 to key `k(i % keys)`: the state at
    /// offset `o` is the counts of the first `o` messages, the same in every copy (deterministic processing).
    private struct Simulation {
        var random: SplitMix64
        let keys = 6
        let messages: Int64 = 400
        var redis: [String: Int] = [:]
        var marker: SinkProgress.Marker = .absent
        /// The largest value each key has shown since Redis last lost its data.
        var seen: [String: Int] = [:]
        var decreases: [String] = []

        init(seed: UInt64) { random = SplitMix64(seed: seed) }

        mutating func chance(_ percent: UInt64) -> Bool { random.next() % 100 < percent }

        func key(_ message: Int64) -> String { "k\(message % Int64(keys))" }

        func view(at offset: Int64) -> [String: Int] {
            var counts: [String: Int] = [:]
            for message in 0..<offset { counts[key(message), default: 0] += 1 }
            return counts
        }

        /// The fenced write as `RedisSinkTransport` and `RedisEpochWriter` do it: read, decide, apply at once.
        mutating func apply(_ write: Write) -> SinkStateMachine.Refusal? {
            if let refusal = SinkStateMachine.fence(marker: marker, write: write) { return refusal }
            for pair in write.pairs {
                let key = String(decoding: pair.key, as: UTF8.self)
                let value = Int(String(decoding: pair.value ?? [], as: UTF8.self))!
                if value < seen[key, default: 0] { decreases.append("\(key): \(seen[key]!) → \(value)") }
                seen[key] = max(seen[key, default: 0], value)
                redis[key] = value
            }
            marker = .progress(write.progress)
            return nil
        }

        mutating func flush() {
            redis = [:]
            marker = .absent
            seen = [:]
        }
    }

    /// One daemon: its durable store and, while running, its sink's machine.
    private struct Daemon {
        var offset: Int64 = 0  // committed
        var epoch: UInt64 = 0
        var acknowledgedEpoch: UInt64 = 0
        var acknowledged: SinkProgress?
        var machine: SinkStateMachine
        var action: SinkStateMachine.Action

        init() {
            machine = SinkStateMachine(acknowledgedEpoch: 0, acknowledged: nil, committed: at(0, 0))
            action = machine.start()
        }

        mutating func restart() {
            machine = SinkStateMachine(acknowledgedEpoch: acknowledgedEpoch, acknowledged: acknowledged, committed: at(epoch, offset))
            action = machine.start()
        }

        var settled: Bool { action == .none && machine.isCaughtUp }
    }

    /// Consumes up to a few messages and commits a checkpoint of them.
    private static func consume(_ daemon: inout Daemon, _ simulation: inout Simulation) {
        guard daemon.offset < simulation.messages else { return }
        let next = min(simulation.messages, daemon.offset + Int64(simulation.random.next() % 4))
        let counts = simulation.view(at: next)
        let dirty = Set((daemon.offset..<next).map { simulation.key($0) }).sorted().map { pair($0, counts[$0]!) }
        daemon.offset = next
        daemon.epoch += 1
        let action = daemon.machine.checkpointCommitted(at(daemon.epoch, next), pairs: SinkPairBatch(dirty))
        if action != .none { daemon.action = action }
    }

    /// Performs the daemon's pending action against Redis, with connection failures and lost replies.
    private static func step(_ daemon: inout Daemon, _ simulation: inout Simulation, faults: Bool) {
        switch daemon.action {
        case .none:
            // The driver's idle probe, which notices Redis losing its data while nothing is written.
            if daemon.machine.isIdle && simulation.chance(5) { daemon.action = daemon.machine.probed(marker: simulation.marker) }
        case .connectAndReadMarker:
            daemon.action = faults && simulation.chance(15) ? daemon.machine.connectFailed() : daemon.machine.connected(marker: simulation.marker)
        case .renderFullView:
            let counts = simulation.view(at: daemon.offset)
            daemon.action = daemon.machine.fullViewRendered(at(daemon.epoch, daemon.offset), pairs: SinkPairBatch(counts.sorted { $0.key < $1.key }.map { pair($0.key, $0.value) }))
        case .retryAfterBackoff:
            daemon.action = daemon.machine.retryTimerFired()
        case .write(let write):
            if faults && simulation.chance(10) {
                daemon.action = daemon.machine.writeFailed(connectionLost: simulation.chance(50))
                return
            }
            let refusal = simulation.apply(write)
            if faults && simulation.chance(8) {  // applied or not, the reply is lost
                daemon.action = daemon.machine.writeFailed(connectionLost: true)
                return
            }
            if refusal == nil || refusal == .alreadyApplied, write.progress.epoch >= daemon.acknowledgedEpoch {
                (daemon.acknowledgedEpoch, daemon.acknowledged) = (write.progress.epoch, write.progress)
            }
            daemon.action = refusal.map { daemon.machine.writeRefused($0) } ?? daemon.machine.writeSucceeded()
        }
    }

    /// One writer through failed connections, lost replies, Redis flushes and restarts: no value read from
    /// Redis decreases (since its last flush), and Redis ends equal to the view.
    @Test(arguments: 0..<40)
    func randomFailuresNeverMoveValuesBackwardsAndEndExact(seed: UInt64) {
        var simulation = Simulation(seed: seed)
        var daemon = Daemon()
        for round in 0..<6000 {
            let faults = round < 3000
            if simulation.chance(30) { Self.consume(&daemon, &simulation) }
            if faults && simulation.chance(1) { simulation.flush() }
            if faults && simulation.chance(1) { daemon.restart() }
            Self.step(&daemon, &simulation, faults: faults)
        }
        #expect(simulation.decreases.isEmpty, "seed \(seed): \(simulation.decreases)")
        #expect(daemon.settled, "seed \(seed): not settled, last action \(daemon.action)")
        #expect(simulation.redis == simulation.view(at: simulation.messages), "seed \(seed)")
        #expect(simulation.marker == .progress(at(daemon.epoch, simulation.messages)))
    }

    /// The zombie drill: a second daemon starts from a copy of the first one's store taken at a random moment
    /// (its epochs numbered like the first's, its offsets older), and both keep running, interleaved at
    /// random, with crashes. No value read from Redis ever decreases, neither daemon stops, and Redis ends exact.
    @Test(arguments: 0..<40)
    func aSecondWriterFromACopiedStoreNeverMovesValuesBackwards(seed: UInt64) {
        var simulation = Simulation(seed: seed)
        var first = Daemon()
        var copy: Daemon?
        var second: Daemon?
        let startSecondAt = 200 + Int(simulation.random.next() % 1500)
        for round in 0..<8000 {
            let faults = round < 4000
            if copy == nil && simulation.chance(2) { copy = first }  // the operator's backup
            if round == startSecondAt, var started = copy ?? Optional(first) {
                started.restart()
                second = started
            }
            // Either daemon may be paused (SIGSTOP) for a while: it just is not scheduled.
            if simulation.chance(50) {
                if simulation.chance(30) { Self.consume(&first, &simulation) }
                if faults && simulation.chance(1) { first.restart() }
                Self.step(&first, &simulation, faults: faults)
            } else if var running = second {
                if simulation.chance(30) { Self.consume(&running, &simulation) }
                if faults && simulation.chance(1) { running.restart() }
                Self.step(&running, &simulation, faults: faults)
                second = running
            }
        }
        #expect(simulation.decreases.isEmpty, "seed \(seed): \(simulation.decreases)")
        #expect(first.settled, "seed \(seed): first not settled, last action \(first.action)")
        #expect(second?.settled ?? false, "seed \(seed): second not settled, last action \(String(describing: second?.action))")
        #expect(simulation.redis == simulation.view(at: simulation.messages), "seed \(seed)")
    }
}
