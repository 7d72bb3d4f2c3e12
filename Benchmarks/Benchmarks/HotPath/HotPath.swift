import Benchmark

// Filled in by the decoder work: decode + aggregate vs simdjson On-Demand on the same bytes.
let benchmarks: @Sendable () -> Void = {}
