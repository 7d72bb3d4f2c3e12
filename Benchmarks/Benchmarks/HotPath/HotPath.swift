import Benchmark
import HotPathSupport

// Decode + aggregate of the example view (`SELECT event, COUNT(*) FROM user_events GROUP BY event`)
// over 100k generated messages held in memory, beside simdjson On-Demand extracting the same four
// fields from the same bytes and counting per `event`.
//
// - "Eddy" and "simdjson" run 1000 messages per inner iteration, so their scaled (`*`) figures are
//   per message: time, instructions (where the machine exposes the counter; not in VMs), and mallocs
//   (which must be 0 once warm).
// - "Eddy vs simdjson" runs both over the whole batch per iteration, alternating, and reports
//   picoseconds per record for each and the ratio (per mille: 500 = Eddy takes half simdjson's time).
//
// `swift run -c release HotPathRatio` prints the same comparison from one plain run (and is what to
// give to `valgrind --tool=callgrind`).

let benchmarks: @Sendable () -> Void = {
    let state = HotPathState()
    let perMessage = Benchmark.Configuration(
        metrics: [.wallClock, .instructions, .mallocCountTotal, .throughput], timeUnits: .nanoseconds,
        scalingFactor: .kilo, maxDuration: .seconds(3))

    Benchmark("Eddy decode+aggregate", configuration: perMessage) { benchmark in
        let first = state.nextSlice(1000)
        benchmark.startMeasurement()
        state.applyEddy(first, 1000)
        benchmark.stopMeasurement()
    }

    Benchmark("simdjson On-Demand decode+count", configuration: perMessage) { benchmark in
        let first = state.nextSlice(1000)
        benchmark.startMeasurement()
        state.applySimdjson(first, 1000)
        benchmark.stopMeasurement()
    }

    let eddyPicoseconds = BenchmarkMetric.custom("Eddy ps/record", useScalingFactor: false)
    let simdjsonPicoseconds = BenchmarkMetric.custom("simdjson ps/record", useScalingFactor: false)
    let ratio = BenchmarkMetric.custom("Eddy/simdjson time (per mille)", useScalingFactor: false)
    Benchmark(
        "Eddy vs simdjson (same run, 100k records)",
        configuration: .init(metrics: [eddyPicoseconds, simdjsonPicoseconds, ratio], maxDuration: .seconds(5), maxIterations: 40)
    ) { benchmark in
        let clock = ContinuousClock()
        let records = state.batch.count
        let eddy = clock.measure { state.applyEddy(0, records) }
        let simdjson = clock.measure { state.applySimdjson(0, records) }
        let eddyPs = Int(eddy / .nanoseconds(1) * 1000 / Double(records))
        let simdjsonPs = Int(simdjson / .nanoseconds(1) * 1000 / Double(records))
        benchmark.measurement(eddyPicoseconds, eddyPs)
        benchmark.measurement(simdjsonPicoseconds, simdjsonPs)
        benchmark.measurement(ratio, eddyPs * 1000 / max(simdjsonPs, 1))
    }
}
