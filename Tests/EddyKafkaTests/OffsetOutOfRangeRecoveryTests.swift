import EddyKafka
import Testing

/// The decision after an offset-out-of-range answer, without a broker: the expected offset against the
/// partition's real watermarks.
@Suite struct OffsetOutOfRangeRecoveryTests {
    @Test func belowTheLowWatermarkIsARetentionGapContinuedAtTheLowWatermark() {
        let recovery = OffsetOutOfRangeRecovery(expected: 100, low: 1_517, high: 9_000)
        #expect(recovery == .retentionGap(continueAt: 1_517, missing: 1_417))
        #expect(recovery.nextOffset == 1_517)
    }

    @Test func pastTheHighWatermarkContinuesAtTheEnd() {
        let recovery = OffsetOutOfRangeRecovery(expected: 12_000, low: 0, high: 9_000)
        #expect(recovery == .pastEnd(continueAt: 9_000, beyondBy: 3_000))
        #expect(recovery.nextOffset == 9_000)
    }

    @Test func insideThePartitionIsFetchedAgainAtTheSameOffset() {
        // The drill's case: an offset the partition holds, which the old code took for retention.
        #expect(OffsetOutOfRangeRecovery(expected: 1_417, low: 0, high: 9_000) == .retry(at: 1_417))
        // Both bounds are inside: the oldest kept message, and the end (the fetch waits for the next one).
        #expect(OffsetOutOfRangeRecovery(expected: 0, low: 0, high: 9_000) == .retry(at: 0))
        #expect(OffsetOutOfRangeRecovery(expected: 9_000, low: 0, high: 9_000) == .retry(at: 9_000))
        #expect(OffsetOutOfRangeRecovery(expected: 5, low: 5, high: 5) == .retry(at: 5))
    }

    @Test func unknownOrInconsistentWatermarksNeverSkip() {
        #expect(OffsetOutOfRangeRecovery(expected: 40, low: -1, high: -1) == .retry(at: 40))
        #expect(OffsetOutOfRangeRecovery(expected: 40, low: 100, high: -1) == .retry(at: 40))
        #expect(OffsetOutOfRangeRecovery(expected: 40, low: 100, high: 50) == .retry(at: 40))
        // A logical offset (librdkafka's "end") is not compared with real ones.
        #expect(OffsetOutOfRangeRecovery(expected: -1, low: 10, high: 20) == .retry(at: -1))
    }

    @Test func everyOutcomeMovesForwardOrStays() {
        // Never backwards: seeking below the expected offset would count messages twice.
        for expected: Int64 in [0, 1, 99, 100, 101, 199, 200, 201, 5_000] {
            for (low, high): (Int64, Int64) in [(0, 0), (0, 200), (100, 200), (200, 200), (150, 4_000)] {
                let recovery = OffsetOutOfRangeRecovery(expected: expected, low: low, high: high)
                switch recovery {
                case .retentionGap(let next, let missing):
                    #expect(next > expected && missing == next - expected && missing > 0)
                case .pastEnd(let next, let beyond):
                    #expect(next < expected && beyond == expected - next)
                case .retry(let next):
                    #expect(next == expected && (low...high).contains(expected))
                }
            }
        }
    }
}
