import Testing

@testable import EddyEngine

/// `schedule.noteBacklog(backlog)` (the expectation macro cannot call a mutating method).
private func note(_ schedule: inout CheckpointSchedule, _ backlog: Int64) -> Bool { schedule.noteBacklog(backlog) }

@Suite struct CheckpointScheduleTests {
    let schedule = CheckpointSchedule(interval: .seconds(1), dirtyGroupLimit: 1_000, catchUpBacklog: 10_000)

    /// `schedule` with its open epoch turned catch-up by a backlog past the bound.
    var catchingUp: CheckpointSchedule {
        var schedule = schedule
        #expect(note(&schedule, 5_000_000))
        return schedule
    }

    @Test func caughtUpTheConfiguredIntervalHolds() {
        var schedule = schedule
        // A backlog up to the bound is a live stream's ordinary lag, not catching up.
        #expect(!note(&schedule, 10_000))
        #expect(!schedule.epochCatchesUp)
        #expect(!schedule.isDue(elapsed: .milliseconds(999), dirtyGroups: 10, reachedCatchUpEnds: false))
        #expect(schedule.isDue(elapsed: .seconds(1), dirtyGroups: 10, reachedCatchUpEnds: false))
    }

    @Test func catchingUpAnEpochRunsUpToTenIntervalsByDefault() {
        #expect(schedule.catchUpInterval == .seconds(10))
        #expect(!catchingUp.isDue(elapsed: .seconds(1), dirtyGroups: 10, reachedCatchUpEnds: false))
        #expect(!catchingUp.isDue(elapsed: .milliseconds(9_999), dirtyGroups: 10, reachedCatchUpEnds: false))
        #expect(catchingUp.isDue(elapsed: .seconds(10), dirtyGroups: 10, reachedCatchUpEnds: false))
    }

    @Test func theDirtyGroupBoundClosesAnEpochEitherWay() {
        #expect(schedule.isDue(elapsed: .zero, dirtyGroups: 1_000, reachedCatchUpEnds: false))
        #expect(catchingUp.isDue(elapsed: .zero, dirtyGroups: 1_000, reachedCatchUpEnds: false))
        #expect(!catchingUp.isDue(elapsed: .zero, dirtyGroups: 999, reachedCatchUpEnds: false))
    }

    @Test func catchingUpTheLargerDirtyGroupBoundHolds() {
        var schedule = CheckpointSchedule(interval: .seconds(1), dirtyGroupLimit: 1_000, catchUpDirtyGroupLimit: 50_000, catchUpBacklog: 10_000)
        // Caught up (or a backlog within the bound): the ordinary bound.
        #expect(schedule.isDue(elapsed: .zero, dirtyGroups: 1_000, reachedCatchUpEnds: false))
        #expect(!schedule.isDue(elapsed: .zero, dirtyGroups: 999, reachedCatchUpEnds: false))
        #expect(note(&schedule, 5_000_000))
        #expect(!schedule.isDue(elapsed: .zero, dirtyGroups: 49_999, reachedCatchUpEnds: false))
        #expect(schedule.isDue(elapsed: .zero, dirtyGroups: 50_000, reachedCatchUpEnds: false))
        // Never below the ordinary bound.
        #expect(CheckpointSchedule(interval: .seconds(1), dirtyGroupLimit: 1_000, catchUpDirtyGroupLimit: 10, catchUpBacklog: 0).catchUpDirtyGroupLimit == 1_000)
    }

    @Test func aCatchUpEpochRunsPastTheBacklogBoundToTheEndsItNoted() {
        var schedule = catchingUp
        // The backlog is back within the bound, the configured interval long past: the epoch stays open, since what
        // is left takes moments to read, and as an epoch of its own would rewrite most of the view's LMDB pages.
        #expect(!note(&schedule, 20_000))
        #expect(!note(&schedule, 3))
        #expect(!schedule.isDue(elapsed: .seconds(5), dirtyGroups: 10, reachedCatchUpEnds: false))
        #expect(schedule.isDue(elapsed: .seconds(5), dirtyGroups: 10, reachedCatchUpEnds: true))
        // Closed: the next epoch is an ordinary one unless the backlog is still past the bound.
        schedule.epochClosed()
        #expect(!schedule.epochCatchesUp)
        #expect(schedule.isDue(elapsed: .seconds(1), dirtyGroups: 10, reachedCatchUpEnds: false))
        #expect(!note(&schedule, 10_000))
        #expect(note(&schedule, 10_001))
        #expect(!schedule.isDue(elapsed: .seconds(1), dirtyGroups: 10, reachedCatchUpEnds: false))
    }

    @Test func anOrdinaryEpochDoesNotWaitForEnds() {
        // Only a catch-up epoch asks whether the noted ends are reached (the runner's answer walks every partition).
        var asked = false
        // (Outside the expectation macro, which evaluates a call's arguments itself.)
        let due = schedule.isDue(elapsed: .seconds(1), dirtyGroups: 0, reachedCatchUpEnds: { asked = true; return false }())
        #expect(due)
        #expect(!asked)
    }

    @Test func anExplicitCatchUpIntervalIsNeverShorterThanTheInterval() {
        #expect(CheckpointSchedule(interval: .seconds(2), catchUpInterval: .seconds(30), dirtyGroupLimit: 1, catchUpBacklog: 0).catchUpInterval == .seconds(30))
        #expect(CheckpointSchedule(interval: .seconds(2), catchUpInterval: .seconds(1), dirtyGroupLimit: 1, catchUpBacklog: 0).catchUpInterval == .seconds(2))
    }

    @Test func backlogCountsEachPartitionToItsFurthestKnownEnd() {
        // Partition 0: high watermark 500 beyond its start-time end 400; partition 1: watermark unknown, end at start
        // 300; partition 2: nothing read yet, counts from where it was assigned (200); partition 3: past its end,
        // counts 0; partition 4: neither position nor start known, counts nothing.
        let highWatermarks: [Int64] = [500, -1, 1_000, 80, 900]
        let targets: [Int64] = [400, 300, 1_000, 80, 900]
        let ends = (0..<5).map { CheckpointSchedule.end(ofPartition: $0, highWatermarks: highWatermarks, targets: targets) }
        #expect(ends == [500, 300, 1_000, 80, 900])
        let backlog = CheckpointSchedule.backlog(nextOffsets: [100, 250, -1, 90, -1], starts: [0, 0, 200, 0, -1]) { ends[$0] }
        #expect(backlog == 400 + 50 + 800)
        // Read up to the noted ends: nothing left, although the partitions may have grown since.
        #expect(CheckpointSchedule.backlog(nextOffsets: [500, 300, 1_000, 90, -1], starts: [0, 0, 200, 0, -1]) { ends[$0] } == 0)
        // An empty partition never read (its position is its start) has nothing left either.
        #expect(CheckpointSchedule.backlog(nextOffsets: [-1], starts: [0]) { _ in 0 } == 0)
    }
}
