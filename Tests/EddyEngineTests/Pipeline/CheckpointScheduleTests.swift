import Testing

@testable import EddyEngine

@Suite struct CheckpointScheduleTests {
    let schedule = CheckpointSchedule(interval: .seconds(1), dirtyGroupLimit: 1_000, catchUpBacklog: 10_000)

    @Test func caughtUpTheConfiguredIntervalHolds() {
        #expect(!schedule.isDue(elapsed: .milliseconds(999), dirtyGroups: 10, backlog: 0))
        #expect(schedule.isDue(elapsed: .seconds(1), dirtyGroups: 10, backlog: 0))
        // A backlog up to the bound is a live stream's ordinary lag, not catching up.
        #expect(schedule.isDue(elapsed: .seconds(1), dirtyGroups: 10, backlog: 10_000))
    }

    @Test func catchingUpAnEpochRunsUpToTenIntervalsByDefault() {
        #expect(schedule.catchUpInterval == .seconds(10))
        #expect(!schedule.isDue(elapsed: .seconds(1), dirtyGroups: 10, backlog: 10_001))
        #expect(!schedule.isDue(elapsed: .milliseconds(9_999), dirtyGroups: 10, backlog: 5_000_000))
        #expect(schedule.isDue(elapsed: .seconds(10), dirtyGroups: 10, backlog: 5_000_000))
    }

    @Test func theDirtyGroupBoundClosesAnEpochEitherWay() {
        #expect(schedule.isDue(elapsed: .zero, dirtyGroups: 1_000, backlog: 0))
        #expect(schedule.isDue(elapsed: .zero, dirtyGroups: 1_000, backlog: 5_000_000))
        #expect(!schedule.isDue(elapsed: .zero, dirtyGroups: 999, backlog: 5_000_000))
    }

    @Test func catchingUpTheLargerDirtyGroupBoundHolds() {
        let schedule = CheckpointSchedule(interval: .seconds(1), dirtyGroupLimit: 1_000, catchUpDirtyGroupLimit: 50_000, catchUpBacklog: 10_000)
        #expect(!schedule.isDue(elapsed: .zero, dirtyGroups: 49_999, backlog: 5_000_000))
        #expect(schedule.isDue(elapsed: .zero, dirtyGroups: 50_000, backlog: 5_000_000))
        // Caught up (or a backlog within the bound): the ordinary bound.
        #expect(schedule.isDue(elapsed: .zero, dirtyGroups: 1_000, backlog: 10_000))
        #expect(!schedule.isDue(elapsed: .zero, dirtyGroups: 999, backlog: 0))
        // Never below the ordinary bound.
        #expect(CheckpointSchedule(interval: .seconds(1), dirtyGroupLimit: 1_000, catchUpDirtyGroupLimit: 10, catchUpBacklog: 0).catchUpDirtyGroupLimit == 1_000)
    }

    @Test func onceCaughtUpALongEpochClosesAtOnce() {
        // Five seconds into a catch-up epoch the backlog is gone: the configured interval is long past.
        #expect(!schedule.isDue(elapsed: .seconds(5), dirtyGroups: 10, backlog: 20_000))
        #expect(schedule.isDue(elapsed: .seconds(5), dirtyGroups: 10, backlog: 3))
    }

    @Test func anExplicitCatchUpIntervalIsNeverShorterThanTheInterval() {
        #expect(CheckpointSchedule(interval: .seconds(2), catchUpInterval: .seconds(30), dirtyGroupLimit: 1, catchUpBacklog: 0).catchUpInterval == .seconds(30))
        #expect(CheckpointSchedule(interval: .seconds(2), catchUpInterval: .seconds(1), dirtyGroupLimit: 1, catchUpBacklog: 0).catchUpInterval == .seconds(2))
    }

    @Test func backlogCountsEachPartitionToItsFurthestKnownEnd() {
        // Partition 0: high watermark 500 beyond its start-time end 400; partition 1: watermark unknown, end at start
        // 300; partition 2: nothing read yet, counts from where it was assigned (200); partition 3: past its end,
        // counts 0; partition 4: neither position nor start known, counts nothing.
        let backlog = CheckpointSchedule.backlog(
            nextOffsets: [100, 250, -1, 90, -1], starts: [0, 0, 200, 0, -1], highWatermarks: [500, -1, 1_000, 80, 900],
            targets: [400, 300, 1_000, 80, 900])
        #expect(backlog == 400 + 50 + 800)
    }
}
