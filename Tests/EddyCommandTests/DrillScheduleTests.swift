import Testing

@testable import eddy

/// `eddy drill`'s fault schedule: replayable from its seed, in rounds of every kind drilled, targets in range.
struct DrillScheduleTests {
    @Test func theSameSeedGivesTheSameFaults() {
        let first = Array(DrillSchedule(seed: 42).prefix(60))
        let again = Array(DrillSchedule(seed: 42).prefix(60))
        let other = Array(DrillSchedule(seed: 43).prefix(60))
        #expect(first == again)
        #expect(first != other)
    }

    @Test func eachRoundInjectsEveryKindOnce() {
        let kinds = DrillFaultKind.allCases
        let faults = Array(DrillSchedule(seed: 7).prefix(kinds.count * 3))
        for round in 0..<3 {
            let slice = faults[(round * kinds.count)..<((round + 1) * kinds.count)]
            #expect(Set(slice.map(\.kind)) == Set(kinds))
        }
    }

    @Test func onlyTheKindsAskedForAreDrilled() {
        let kinds: [DrillFaultKind] = [.crashAfterExec, .brokerDown]
        let faults = Array(DrillSchedule(seed: 9, kinds: kinds).prefix(20))
        #expect(Set(faults.map(\.kind)) == Set(kinds))
    }

    @Test func targetsAndCountsStayInRange() {
        for fault in DrillSchedule(seed: 11, brokers: 3, partitions: 8).prefix(500) {
            #expect((1...3).contains(fault.broker) && (0..<8).contains(fault.partition))
            #expect(fault.delay >= .milliseconds(100) && fault.delay <= .milliseconds(2_500))
            switch fault.kind {
            case .crashAfterCommit, .crashAfterExec: #expect((1...15).contains(fault.nth))
            case .crashMidConsumption: #expect((1...40).contains(fault.nth))
            case .brokerFetchErrors:
                #expect((1...20).contains(fault.errorCodes.count))
                #expect(fault.errorCodes.allSatisfy(DrillSchedule.retriableFetchErrors.contains))
            case .daemonKill, .crashWholeViewResend, .crashStartupRestore, .brokerLeaderMoved: #expect(fault.length == .zero)
            default: #expect(fault.length > .zero || fault.kind == .redisRestartEmpty)
            }
            #expect((fault.kind.crashPoint != nil) == fault.kind.rawValue.hasPrefix("crash-"))
        }
    }
}
