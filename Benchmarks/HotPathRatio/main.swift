// Decode + aggregate of the example view against simdjson On-Demand on the same bytes, from one plain
// run: ns per record of both (median of alternating rounds over the whole batch) and their ratio.
//
//   swift run -c release HotPathRatio [records] [rounds] [eddy|simdjson|both|tumble|tumble-only|keys] [keys]
//
// `tumble` times the one-minute TUMBLE count by event against the flat count by event instead (issue 9's
// target: at most 1.2× per record); `tumble-only` runs just the TUMBLE side, for callgrind. `keys N` (default
// 100000) runs only `SELECT user, COUNT(*) … GROUP BY user` over messages of N distinct users (issue 13): the
// group lookup at many groups, for callgrind (instructions and, with --cache-sim=yes, misses per record), after
// the time of the first pass, which inserts every group.
//
// With `eddy` or `simdjson` only that side runs after the shared warm-up, which suits
// `valgrind --tool=callgrind` (instruction counts per record do not drift with machine load; strip
// the binary's debug info first, `strip -g`, which this valgrind cannot read). Per record:
// (count with 3 rounds - count with 1 round) / (2 × records).
//
// SwiftPM does not always rebuild this package's targets when EddyEngine's struct layouts change
// (seen as a crash or heap corruption at start): `swift package clean`, or touch these sources.
import HotPathSupport
import SimdjsonReference

#if canImport(Glibc)
import Glibc
#else
import Darwin
#endif

let arguments = Array(CommandLine.arguments.dropFirst())
let records = arguments.count > 0 ? Int(arguments[0]) ?? 100_000 : 100_000
let rounds = arguments.count > 1 ? Int(arguments[1]) ?? 15 : 15
let sides = arguments.count > 2 ? arguments[2] : "both"
precondition(
    ["both", "eddy", "simdjson", "tumble", "tumble-only", "keys"].contains(sides),
    "the third argument is eddy, simdjson, both, tumble, tumble-only or keys")

if sides == "keys" {
    let keys = arguments.count > 3 ? Int(arguments[3]) ?? 100_000 : 100_000
    let state = KeysState(records: records, keys: keys)
    let clock = ContinuousClock()
    var times: [Double] = []
    for _ in 0..<rounds { times.append(clock.measure { state.applyEddy(0, records) } / .nanoseconds(1) / Double(records)) }
    let sorted = times.sorted()
    print("first pass, inserting every group: \(Int(state.coldNanosecondsPerRecord.rounded())) ns/record")
    print("records: \(records), rounds: \(rounds), users: \(keys), groups: \(state.aggregator.table.groupCount)")
    print("Eddy decode+aggregate by user: \(Int(sorted[sorted.count / 2].rounded())) ns/record (median; best \(Int(sorted[0].rounded())))")
    exit(0)
}

let state = HotPathState(records: records)
let clock = ContinuousClock()
var eddyTimes: [Double] = []
var simdjsonTimes: [Double] = []
var tumbleTimes: [Double] = []
for _ in 0..<rounds {
    if sides.hasPrefix("tumble") {
        if sides == "tumble" { eddyTimes.append(clock.measure { state.applyEddy(0, records) } / .nanoseconds(1) / Double(records)) }
        tumbleTimes.append(clock.measure { state.applyTumble(0, records) } / .nanoseconds(1) / Double(records))
        continue
    }
    if sides != "simdjson" {
        eddyTimes.append(clock.measure { state.applyEddy(0, records) } / .nanoseconds(1) / Double(records))
    }
    if sides != "eddy" {
        simdjsonTimes.append(clock.measure { state.applySimdjson(0, records) } / .nanoseconds(1) / Double(records))
    }
}

func median(_ values: [Double]) -> Double { values.sorted()[values.count / 2] }
func text(_ value: Double) -> String { String(Int((value * 10).rounded())).inserting(".", beforeLast: 1) }

extension String {
    func inserting(_ mark: Character, beforeLast count: Int) -> String {
        var copy = self
        while copy.count <= count { copy = "0" + copy }
        copy.insert(mark, at: copy.index(copy.endIndex, offsetBy: -count))
        return copy
    }
}

let averageBytes = Double(state.batch.bytes.count) / Double(records)
print("records: \(records) (average \(text(averageBytes)) bytes), rounds: \(rounds), simdjson kernel: \(String(cString: simdjson_reference_implementation()))")
if !eddyTimes.isEmpty {
    print("Eddy decode+aggregate:      \(text(median(eddyTimes))) ns/record (median; best \(text(eddyTimes.min()!)))")
}
if !simdjsonTimes.isEmpty {
    print("simdjson On-Demand + count: \(text(median(simdjsonTimes))) ns/record (median; best \(text(simdjsonTimes.min()!)))")
}
if !tumbleTimes.isEmpty {
    print("Eddy TUMBLE 1 minute:       \(text(median(tumbleTimes))) ns/record (median; best \(text(tumbleTimes.min()!)); \(state.tumbleAggregator.table.groupCount) groups)")
}
if !eddyTimes.isEmpty && !tumbleTimes.isEmpty {
    let ratios = zip(tumbleTimes, eddyTimes).map { $0 / $1 }
    print("TUMBLE/flat time ratio:     \(String(Int((median(ratios) * 100).rounded())).inserting(".", beforeLast: 2)) (median of per-round ratios; target <= 1.20)")
}
if !eddyTimes.isEmpty && !simdjsonTimes.isEmpty {
    let ratios = zip(eddyTimes, simdjsonTimes).map { $0 / $1 }
    print("Eddy/simdjson time ratio:   \(String(Int((median(ratios) * 100).rounded())).inserting(".", beforeLast: 2)) (median of per-round ratios; target <= 1.00, aim 0.50)")
}
print("Eddy counters: \(state.aggregator.counters.rows) rows, \(state.aggregator.counters.skipped) skipped, \(state.aggregator.table.groupCount) groups")
