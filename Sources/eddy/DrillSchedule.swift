import EddyWorkload

/// A fault `eddy drill` injects.
enum DrillFaultKind: String, CaseIterable, Codable, Sendable {
    /// `kill -9` of the daemon, restarted at once.
    case daemonKill = "daemon-kill-9"
    /// `SIGSTOP` of the daemon, `SIGCONT` after the fault's length.
    case daemonStop = "daemon-sigstop"
    /// Redis `SHUTDOWN NOSAVE`, started again empty on the same port after the fault's length.
    case redisRestartEmpty = "redis-restart-empty"
    /// Redis `CLIENT PAUSE <length> WRITE`.
    case redisPauseWrites = "redis-pause-writes"
}

/// One scheduled fault: wait `delay` (counted from the previous fault's recovery), then inject it for `length`
/// (zero for a kill).
struct DrillFault: Sendable, Equatable {
    var kind: DrillFaultKind
    var delay: Duration
    var length: Duration
}

/// The faults of a drill, drawn from a seed: the same seed gives the same kinds, delays and lengths (the
/// moments they land on still depend on how fast the machine runs). Kinds come in shuffled rounds of every
/// kind, so a drill of N faults injects each kind N/4 times, give or take one.
struct DrillSchedule: Sequence, IteratorProtocol, Sendable {
    let seed: UInt64
    private var random: SplitMix64
    private var round: [DrillFaultKind] = []

    init(seed: UInt64) {
        self.seed = seed
        random = SplitMix64(seed: seed ^ 0xD2_11_5C_4E_D0_1E)
    }

    /// A seed for chunk `index` of the load generator, so that a replayed drill produces the same messages.
    func producerSeed(chunk index: Int) -> UInt64 { seed &+ 0x9E37_79B9_7F4A_7C15 &* UInt64(index + 1) }

    mutating func next() -> DrillFault? {
        if round.isEmpty { round = DrillFaultKind.allCases.shuffled(using: &random) }
        let kind = round.removeLast()
        // Random moments: anywhere from a fraction of a checkpoint interval to a dozen of them after the last recovery.
        let delay = milliseconds(in: 100...2_500)
        let length: Duration =
            switch kind {
            case .daemonKill: .zero
            case .daemonStop, .redisPauseWrites: milliseconds(in: 50...1_500)
            case .redisRestartEmpty: milliseconds(in: 0...500)
            }
        return DrillFault(kind: kind, delay: delay, length: length)
    }

    private mutating func milliseconds(in range: ClosedRange<Int>) -> Duration {
        .milliseconds(Int.random(in: range, using: &random))
    }
}
