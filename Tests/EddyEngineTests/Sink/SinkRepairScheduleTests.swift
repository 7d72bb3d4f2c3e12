import EddyRedis
import EddyState
import Testing

@testable import EddyEngine

private typealias Pair = SinkStateMachine.Pair

private func pair(_ key: String, _ value: String?) -> Pair { Pair(key: Array(key.utf8), value: value.map { Array($0.utf8) }) }
private func progress(_ epoch: UInt64) -> SinkProgress {
    SinkProgress(epoch: epoch, form: 1, offsets: [TopicPartition(topic: "t", partition: 0): Int64(epoch) * 10])
}

private func view(_ count: Int) -> SinkPairBatch { SinkPairBatch((0..<count).map { pair("k\($0)", "\($0)") }) }

@Suite struct SinkRepairScheduleTests {
    /// 10 keys per chunk (a tenth of a second at 100 keys/s), one pass per 10 s.
    private let settings = SinkRepairSettings(interval: .seconds(10), keysPerSecond: 100)
    private let start = ContinuousClock.now

    private func chunk(of task: SinkRepairSchedule.Task?) -> SinkRepairPass.Chunk? {
        if case .compare(let chunk)? = task { return chunk }
        return nil
    }

    @Test func aPassStartsAnIntervalAfterStartAndOnlyWhileCaughtUp() {
        var schedule = SinkRepairSchedule(settings: settings, now: start)
        #expect(schedule.wakeTime(caughtUp: true, committed: progress(1)) == start + .seconds(10))
        #expect(schedule.task(now: start + .seconds(9), caughtUp: true, committed: progress(1)) == nil)
        #expect(schedule.wakeTime(caughtUp: false, committed: progress(1)) == nil)
        #expect(schedule.task(now: start + .seconds(10), caughtUp: false, committed: progress(1)) == nil)
        guard case .renderView? = schedule.task(now: start + .seconds(10), caughtUp: true, committed: progress(1)) else {
            Issue.record("expected the view to be rendered")
            return
        }
        // Nothing more while it renders.
        #expect(schedule.wakeTime(caughtUp: true, committed: progress(1)) == nil)
        #expect(schedule.task(now: start + .seconds(11), caughtUp: true, committed: progress(1)) == nil)
    }

    @Test func chunksFollowAtTheRateAndTheNextPassWaitsForTheInterval() throws {
        var schedule = SinkRepairSchedule(settings: settings, now: start)
        var now = start + .seconds(10)
        _ = schedule.task(now: now, caughtUp: true, committed: progress(1))
        #expect(schedule.rendered(progress(1), pairs: view(25), now: now) == .init())
        var chunks: [Int] = []
        var reports: [SinkRepairSchedule.Report] = []
        while let chunk = chunk(of: schedule.task(now: now, caughtUp: true, committed: progress(1))) {
            chunks.append(chunk.pairs.count)
            // The first key of each chunk differed and was repaired.
            reports.append(schedule.compared(.compared(differences: [RedisKeyMismatch(index: 0, difference: .different)], repaired: true), of: chunk, now: now))
            // Not before a chunk's time at the rate: 10 keys at 100 keys/s.
            #expect(schedule.task(now: now + .milliseconds(99), caughtUp: true, committed: progress(1)) == nil)
            if reports.last?.ending != nil { break }
            #expect(schedule.due == now + .milliseconds(100))
            now = schedule.due
        }
        #expect(chunks == [10, 10, 5])
        #expect(reports.map(\.comparedKeys) == [10, 10, 5])
        #expect(reports.map(\.repairedKeys) == [1, 1, 1])
        #expect(reports.map(\.keysToLog) == [[Array("k0".utf8)], [Array("k10".utf8)], [Array("k20".utf8)]])
        #expect(reports.last?.ending == .finished(keys: 25, repaired: 3))
        #expect(!schedule.isPassActive)
        // The next pass starts an interval after this one started.
        #expect(schedule.due == start + .seconds(20))
    }

    @Test func onlyTheFirstRepairedKeysOfAPassAreLogged() throws {
        var schedule = SinkRepairSchedule(settings: SinkRepairSettings(interval: .seconds(1), keysPerSecond: 80), now: start)
        let now = start + .seconds(1)
        _ = schedule.task(now: now, caughtUp: true, committed: progress(1))
        _ = schedule.rendered(progress(1), pairs: view(16), now: now)
        var logged = 0
        var repaired = 0
        while let chunk = chunk(of: schedule.task(now: schedule.due, caughtUp: true, committed: progress(1))) {
            let all = chunk.pairs.indices.map { RedisKeyMismatch(index: $0, difference: .missing) }
            let report = schedule.compared(.compared(differences: all, repaired: true), of: chunk, now: schedule.due)
            logged += report.keysToLog.count
            repaired += report.repairedKeys
            if report.ending != nil { break }
        }
        #expect(repaired == 16)
        #expect(logged == SinkRepairSchedule.loggedKeysPerPass)
    }

    @Test func epochsCommittedWhileRenderingOrDuringThePassAreFoldedIn() throws {
        var schedule = SinkRepairSchedule(settings: settings, now: start)
        let now = start + .seconds(10)
        _ = schedule.task(now: now, caughtUp: true, committed: progress(1))
        // Epoch 2 is committed while the view (of epoch 1) is rendered.
        schedule.checkpointCommitted(progress(2), pairs: [pair("k1", "changed")])
        _ = schedule.rendered(progress(1), pairs: view(3), now: now)
        let first = try #require(chunk(of: schedule.task(now: now, caughtUp: true, committed: progress(2))))
        #expect(first.progress == progress(2))
        #expect(first.pairs.map(\.value) == [Array("0".utf8), Array("changed".utf8), Array("2".utf8)])
        // The same again for an epoch committed during the pass.
        schedule.checkpointCommitted(progress(3), pairs: [pair("k2", nil)])
        let second = try #require(chunk(of: schedule.task(now: now, caughtUp: true, committed: progress(3))))
        #expect(second.progress == progress(3))
        #expect(second.pairs[2].value == nil)
    }

    @Test func aViewRenderedAheadOfTheSinkWaitsUntilTheSinkHasItsEpoch() {
        var schedule = SinkRepairSchedule(settings: settings, now: start)
        let now = start + .seconds(10)
        _ = schedule.task(now: now, caughtUp: true, committed: progress(1))
        // Epoch 2 was committed to the store, not yet handed to the sink, when the view was read.
        _ = schedule.rendered(progress(2), pairs: view(3), now: now)
        #expect(schedule.wakeTime(caughtUp: true, committed: progress(1)) == nil)
        #expect(schedule.task(now: now, caughtUp: true, committed: progress(1)) == nil)
        schedule.checkpointCommitted(progress(2), pairs: [])
        #expect(chunk(of: schedule.task(now: now, caughtUp: true, committed: progress(2))) != nil)
    }

    @Test func aMovedMarkerRetriesTheChunkAndAForeignMarkerAbandonsThePass() throws {
        var schedule = SinkRepairSchedule(settings: settings, now: start)
        let now = start + .seconds(10)
        _ = schedule.task(now: now, caughtUp: true, committed: progress(1))
        _ = schedule.rendered(progress(1), pairs: view(15), now: now)
        let first = try #require(chunk(of: schedule.task(now: now, caughtUp: true, committed: progress(1))))
        #expect(schedule.compared(.markerMoved, of: first, now: now) == .init())
        let again = try #require(chunk(of: schedule.task(now: schedule.due, caughtUp: true, committed: progress(1))))
        #expect(again.start == first.start)

        let foreign = Array(progress(7).markerText.utf8)
        #expect(schedule.compared(.markerMismatch(marker: foreign), of: again, now: now) == .init(ending: .abandoned(marker: foreign)))
        #expect(!schedule.isPassActive)
        #expect(schedule.due == now + .seconds(10))
        // The next pass renders the view again.
        guard case .renderView? = schedule.task(now: schedule.due, caughtUp: true, committed: progress(1)) else {
            Issue.record("expected a new pass")
            return
        }
    }

    @Test func anEmptyViewFinishesAtOnce() {
        var schedule = SinkRepairSchedule(settings: settings, now: start)
        let now = start + .seconds(10)
        _ = schedule.task(now: now, caughtUp: true, committed: progress(1))
        #expect(schedule.rendered(progress(1), pairs: [], now: now) == .init(ending: .finished(keys: 0, repaired: 0)))
        #expect(schedule.due == now + .seconds(10))
    }

    @Test func chunksAreATenthOfASecondAtTheRateAndAtMostAThousandKeys() {
        #expect(SinkRepairSettings().chunkKeys == 1_000)
        #expect(SinkRepairSettings(keysPerSecond: 100).chunkKeys == 10)
        #expect(SinkRepairSettings(keysPerSecond: 5).chunkKeys == 1)
        #expect(SinkRepairSettings(keysPerSecond: 1_000_000).chunkKeys == 1_000)
        #expect(SinkRepairSettings().interval == .seconds(60))
    }
}
