// swift-tools-version:6.1
// Benchmarks live in their own package so the harness (ordo-one/benchmark, simdjson) stays out of the
// main build and CI. Run from this folder: `swift package benchmark` (hot path, with malloc counts),
// `swift run -c release ConsumerBenchmark` (consumer vs kcat) and `swift run -c release KeysCurve` (the daemon at 5…1M group keys vs the floor),
// `swift run -c release RedisSinkBenchmark`
// (fenced epoch writes vs redis-benchmark). Every speed is reported as a ratio against a reference
// measured in the same run.
import Foundation
import PackageDescription

// SwiftPM names a path dependency after its folder, and a clone's folder name is not fixed.
let eddy = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent().lastPathComponent

let package = Package(
    name: "eddy-benchmarks",
    platforms: [.macOS(.v13)],
    dependencies: [
        .package(path: ".."),
        .package(url: "https://github.com/apple/swift-log", from: "1.6.0"),
        .package(url: "https://github.com/ordo-one/benchmark", from: "1.38.1", traits: ["MallocInterposer"]),
    ],
    targets: [
        // Consumer alone against kcat on the same topic of the same broker (a separate `eddy dev-broker`).
        .executableTarget(
            name: "ConsumerBenchmark",
            dependencies: [
                .product(name: "EddyKafka", package: eddy),
                .product(name: "EddyTestSupport", package: eddy),
            ],
            path: "ConsumerBenchmark"
        ),
        // The keys curve (issue 13): `eddy run` on a view grouped by user at 5…1M distinct users, against the floor.
        .executableTarget(
            name: "KeysCurve",
            dependencies: [
                .product(name: "EddyKafka", package: eddy),
                .product(name: "EddyRedis", package: eddy),
                .product(name: "EddyTestSupport", package: eddy),
                .product(name: "EddyWorkload", package: eddy),
            ],
            path: "KeysCurve"
        ),
        // RedisEpochWriter's fenced epochs against redis-benchmark's pipelined SETs on one redis-server.
        .executableTarget(
            name: "RedisSinkBenchmark",
            dependencies: [
                .product(name: "EddyEngine", package: eddy),
                .product(name: "EddyRedis", package: eddy),
                .product(name: "EddyState", package: eddy),
                .product(name: "EddyTestSupport", package: eddy),
                .product(name: "Logging", package: "swift-log"),
            ],
            path: "RedisSinkBenchmark"
        ),
        // Decode + aggregate over generated messages in memory, beside simdjson On-Demand on the same bytes.
        .executableTarget(
            name: "HotPath",
            dependencies: [
                .product(name: "Benchmark", package: "benchmark"),
                "HotPathSupport",
            ],
            path: "Benchmarks/HotPath",
            plugins: [.plugin(name: "BenchmarkPlugin", package: "benchmark")]
        ),
        // The same comparison from one plain run, printing ns/record of both and the ratio; callgrind-friendly.
        .executableTarget(name: "HotPathRatio", dependencies: ["HotPathSupport", "SimdjsonReference"], path: "HotPathRatio"),
        // The batch of generated messages, the example view's aggregator and the simdjson reference, shared
        // by HotPath and HotPathRatio.
        .target(
            name: "HotPathSupport",
            dependencies: [
                .product(name: "EddyEngine", package: eddy),
                .product(name: "EddyWorkload", package: eddy),
                "SimdjsonReference",
            ],
            path: "HotPathSupport"
        ),
        // C++ reference decoder: simdjson On-Demand (libsimdjson-dev) behind a C interface. On-Demand's kernel
        // is chosen at compile time from the target flags (without them it is the scalar "fallback"):
        // haswell (AVX2) is the fastest that valgrind can run; icelake (AVX-512) measured no faster here.
        .target(
            name: "SimdjsonReference",
            path: "SimdjsonReference",
            cxxSettings: [.unsafeFlags(["-O3", "-std=c++17", "-march=haswell"])],
            linkerSettings: [.linkedLibrary("simdjson")]
        ),
    ],
    cxxLanguageStandard: .cxx17
)
