import Foundation

/// What `eddy drill` found: printed as text, or as one JSON object with `--json`.
struct DrillReport: Codable, Sendable {
    /// One injected fault and how long the pipeline took to recover from it.
    struct Fault: Codable, Sendable {
        var kind: DrillFaultKind
        /// Seconds from the drill's start to the injection.
        var atSeconds: Double
        /// Seconds the fault lasted (stopped, paused, down); 0 for a kill.
        var lengthSeconds: Double
        /// Seconds from the fault's end until Redis's total passed what it was before the fault (the pipeline
        /// caught up and moved on); nil if that did not happen within the drill's recovery bound.
        var recoverySeconds: Double?
        /// The fault's target: the crash point armed, the broker, the partition moved, the Kafka errors.
        var detail: String?
        /// For a crash point: whether the armed daemon reached it (false: killed after the drill's bound).
        var crashPointReached: Bool?
    }

    /// Recovery times of a set of faults, in seconds.
    struct RecoveryTimes: Codable, Sendable, Equatable {
        var count: Int
        var p50: Double
        var p99: Double
        var max: Double

        /// Nearest-rank percentiles; nil for no times.
        init?(_ seconds: [Double]) {
            guard !seconds.isEmpty else { return nil }
            let sorted = seconds.sorted()
            count = sorted.count
            p50 = nearestRank(sorted, 0.5)
            p99 = nearestRank(sorted, 0.99)
            max = sorted[sorted.count - 1]
        }
    }

    /// A Redis key whose end value is not the expected one (nil: absent), or a view row `eddy query` printed
    /// differently.
    struct Difference: Codable, Sendable, Equatable {
        var place: String
        var key: String
        var expected: String?
        var found: String?
    }

    var seed: UInt64
    var pipeline: String
    var seconds: Double
    var faults: [Fault]
    var faultsByKind: [String: Int]
    var recovery: RecoveryTimes?
    var recoveryByKind: [String: RecoveryTimes]
    var messagesProduced: Int
    /// The sum of the view's values in Redis at the end.
    var messagesCounted: Int
    /// Every time a value moved backwards (or vanished) in Redis, outside a restart of Redis.
    var decreases: [String]
    var monitorPolls: Int
    var differences: [Difference]
    var exact: Bool
    /// What the drill does not inject yet.
    var notCovered: [String]

    /// Whether the drill passed: Redis and `eddy query` exact, and no value ever went backwards.
    var passed: Bool { exact && decreases.isEmpty }

    init(
        seed: UInt64, pipeline: String, seconds: Double, faults: [Fault], messagesProduced: Int, messagesCounted: Int,
        decreases: [String], monitorPolls: Int, differences: [Difference], notCovered: [String]
    ) {
        self.seed = seed
        self.pipeline = pipeline
        self.seconds = seconds
        self.faults = faults
        faultsByKind = Dictionary(grouping: faults, by: \.kind.rawValue).mapValues(\.count)
        recovery = RecoveryTimes(faults.compactMap(\.recoverySeconds))
        recoveryByKind = Dictionary(grouping: faults, by: \.kind.rawValue).compactMapValues { RecoveryTimes($0.compactMap(\.recoverySeconds)) }
        self.messagesProduced = messagesProduced
        self.messagesCounted = messagesCounted
        self.decreases = decreases
        self.monitorPolls = monitorPolls
        self.differences = differences
        exact = differences.isEmpty
        self.notCovered = notCovered
    }

    var json: String {
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.sortedKeys]
        return String(decoding: (try? encoder.encode(self)) ?? Data("{}".utf8), as: UTF8.self)
    }

    var text: String {
        func seconds(_ value: Double) -> String { String(format: "%.3f s", value) }
        func times(_ times: RecoveryTimes?) -> String {
            times.map { "p50 \(seconds($0.p50)), p99 \(seconds($0.p99)), max \(seconds($0.max))" } ?? "none measured"
        }
        var lines = ["eddy drill: \(pipeline), seed \(seed) (replay with --seed \(seed)), \(String(format: "%.1f", self.seconds)) s"]
        lines.append("  faults injected: \(faults.count)")
        for kind in DrillFaultKind.allCases {
            let unrecovered = faults.filter { $0.kind == kind && $0.recoverySeconds == nil }.count
            let unreached = faults.filter { $0.kind == kind && $0.crashPointReached == false }.count
            lines.append(
                "    \(kind.rawValue.padding(toLength: 24, withPad: " ", startingAt: 0)) \(faultsByKind[kind.rawValue] ?? 0)"
                    + "  recovery \(times(recoveryByKind[kind.rawValue]))" + (unrecovered > 0 ? "; \(unrecovered) not recovered in time" : "")
                    + (unreached > 0 ? "; crash point not reached \(unreached) time(s)" : ""))
        }
        lines.append("  recovery, all faults: \(times(recovery))")
        lines.append("  messages: \(messagesProduced) produced, \(messagesCounted) counted in Redis")
        lines.append("  values moved backwards: \(decreases.count) (\(monitorPolls) polls of Redis)")
        for decrease in decreases.prefix(20) { lines.append("    \(decrease)") }
        lines.append("  not covered yet: \(notCovered.joined(separator: "; "))")
        lines.append("  result: \(exact ? "EXACT" : "NOT EXACT")" + (decreases.isEmpty ? "" : ", with decreases"))
        for difference in differences.prefix(50) {
            lines.append(
                "    \(difference.place) \(difference.key): expected \(difference.expected ?? "absent"), found \(difference.found ?? "absent")")
        }
        return lines.joined(separator: "\n")
    }
}
