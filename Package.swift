// swift-tools-version:6.1
// Eddy: a durable, stateful stream processor. See README.md and ../shared/DESIGN.md.
import PackageDescription

let argumentParser = Target.Dependency.product(name: "ArgumentParser", package: "swift-argument-parser")
let logging = Target.Dependency.product(name: "Logging", package: "swift-log")
let hummingbird = Target.Dependency.product(name: "Hummingbird", package: "hummingbird")
let metrics = Target.Dependency.product(name: "Metrics", package: "swift-metrics")
let prometheus = Target.Dependency.product(name: "Prometheus", package: "swift-prometheus")
let nioCore = Target.Dependency.product(name: "NIOCore", package: "swift-nio")
let nioPosix = Target.Dependency.product(name: "NIOPosix", package: "swift-nio")
let serviceLifecycle = Target.Dependency.product(name: "ServiceLifecycle", package: "swift-service-lifecycle")

let package = Package(
    name: "eddy",
    products: [
        .executable(name: "eddy", targets: ["eddy"]),
        // Libraries are products so that Benchmarks/ (its own package) can depend on them by path.
        .library(name: "EddySQL", targets: ["EddySQL"]),
        .library(name: "EddyKafka", targets: ["EddyKafka"]),
        .library(name: "EddyRedis", targets: ["EddyRedis"]),
        .library(name: "EddyState", targets: ["EddyState"]),
        .library(name: "EddyEngine", targets: ["EddyEngine"]),
        .library(name: "EddyWorkload", targets: ["EddyWorkload"]),
        .library(name: "EddyHTTP", targets: ["EddyHTTP"]),
        .library(name: "EddyPostgres", targets: ["EddyPostgres"]),
        .library(name: "EddyTestSupport", targets: ["EddyTestSupport"]),
    ],
    dependencies: [
        .package(url: "https://github.com/apple/swift-argument-parser", from: "1.5.0"),
        // 1.16: `LogHandler.log(event:)`, which eddy's JSON log handler implements.
        .package(url: "https://github.com/apple/swift-log", from: "1.16.0"),
        // No traits: Eddy needs neither swift-configuration support nor Hummingbird's FullFoundation codecs.
        .package(url: "https://github.com/hummingbird-project/hummingbird", from: "2.28.1", traits: []),
        .package(url: "https://github.com/apple/swift-metrics", from: "2.13.0"),
        .package(url: "https://github.com/swift-server/swift-prometheus", from: "2.4.1"),
        .package(url: "https://github.com/swift-server/swift-service-lifecycle", from: "2.13.0"),
        // Already resolved through Hummingbird; named here because EddyPostgres serves with it directly.
        .package(url: "https://github.com/apple/swift-nio", from: "2.81.0"),
    ],
    targets: [
        // C libraries: modulemap and shim header only. Only the matching wrapper module imports each.
        .systemLibrary(name: "CRdKafka", pkgConfig: "rdkafka", providers: [.apt(["librdkafka-dev"])]),
        .systemLibrary(name: "CHiredis", pkgConfig: "hiredis", providers: [.apt(["libhiredis-dev"])]),
        .systemLibrary(name: "CLMDB", pkgConfig: "lmdb", providers: [.apt(["liblmdb-dev"])]),
        // glibc and compiler built-ins Swift has no word for (prefetch, mallopt).
        .systemLibrary(name: "CPlatform"),
        // TLS for `rediss://`: Debian's hiredis 0.14 has none, so EddyRedis runs OpenSSL on hiredis's socket.
        .systemLibrary(name: "COpenSSL", pkgConfig: "openssl", providers: [.apt(["libssl-dev"])]),

        // What is never printed (secret settings, URL passwords): one rule for the SQL, Kafka and log sides.
        .target(name: "EddySecrets"),
        // Pure Swift: lexer, parser, AST, binder, catalog, errors with line:column.
        .target(name: "EddySQL", dependencies: ["EddySecrets"]),
        // librdkafka: consumer, producer, dev broker (mock cluster), configuration.
        .target(name: "EddyKafka", dependencies: ["CRdKafka", "EddySecrets", logging]),
        // hiredis (+ OpenSSL for rediss://): connections, pipelined commands, fenced epoch writes (the SQL
        // binder parses redis:// URLs).
        .target(name: "EddyRedis", dependencies: ["CHiredis", "COpenSSL", logging]),
        // LMDB: state, offsets, epochs, format version, pipeline fingerprint.
        .target(name: "EddyState", dependencies: ["CLMDB", logging]),
        // The load generator's fake user-behaviour events (pure Swift): `eddy produce`, tests, benchmarks.
        .target(name: "EddyWorkload"),
        // The dataflow's pure core (DESIGN §2): batches of changes, operators over them, their state encodings.
        // No I/O, no threads.
        .target(name: "EddyDataflow", dependencies: ["EddySQL"]),
        // Row decoding, aggregation on the hot path, the dataflow graph, epochs, sink coordination, the pipeline runner.
        .target(name: "EddyEngine", dependencies: ["CPlatform", "EddySQL", "EddyDataflow", "EddyKafka", "EddyRedis", "EddyState", logging, metrics]),
        // HTTP side (Hummingbird): /metrics, /healthz, /readyz, views and status as JSON, the dashboard.
        // Sees only plain Codable documents through `EddyHTTPDataSource`, never the engine.
        .target(name: "EddyHTTP", dependencies: [hummingbird, prometheus, serviceLifecycle, logging]),
        // PostgreSQL wire protocol (v3) side: psql, psycopg, asyncpg read views of the last checkpoint.
        // Sees the pipeline's definitions (EddySQL) and checkpointed rows through `PostgresDataSource`, never the engine.
        .target(name: "EddyPostgres", dependencies: ["EddySQL", nioCore, nioPosix, logging, metrics, serviceLifecycle]),
        // Helpers that start real servers (redis-server, the Kafka mock cluster) for tests and benchmarks,
        // a strict Prometheus text parser and a headless-Chromium driver.
        .target(name: "EddyTestSupport", dependencies: ["EddyKafka", "EddyRedis", "EddyWorkload", logging]),

        .executableTarget(
            name: "eddy",
            dependencies: [
                "CPlatform", "EddySQL", "EddySecrets", "EddyKafka", "EddyRedis", "EddyState", "EddyEngine", "EddyWorkload", "EddyHTTP", "EddyPostgres", argumentParser, logging,
                metrics, prometheus, serviceLifecycle,
            ]
        ),

        .testTarget(name: "EddySecretsTests", dependencies: ["EddySecrets"]),
        .testTarget(name: "EddySQLTests", dependencies: ["EddySQL", "EddyWorkload"]),
        .testTarget(name: "EddyKafkaTests", dependencies: ["EddyKafka", "EddyTestSupport"]),
        .testTarget(name: "EddyRedisTests", dependencies: ["EddyRedis", "EddyTestSupport"]),
        .testTarget(name: "EddyWorkloadTests", dependencies: ["EddyWorkload"]),
        .testTarget(name: "EddyDataflowTests", dependencies: ["EddyDataflow", "EddySQL", "EddyWorkload"]),
        .testTarget(name: "EddyStateTests", dependencies: ["EddyState", "EddyTestSupport"]),
        .testTarget(name: "EddyHTTPTests", dependencies: ["EddyHTTP", "EddyTestSupport", "EddyWorkload", metrics, prometheus, serviceLifecycle, logging]),
        .testTarget(name: "EddyPostgresTests", dependencies: ["EddyPostgres", "EddySQL", "EddyTestSupport", nioCore, logging, metrics]),
        .testTarget(name: "EddyEngineTests", dependencies: ["EddyEngine", "EddySQL", "EddyKafka", "EddyRedis", "EddyState", "EddyWorkload", "EddyTestSupport", logging]),
        // Unit tests of the command line's own helpers (log formats), through `@testable import eddy`.
        .testTarget(name: "EddyCommandTests", dependencies: ["eddy", "EddySecrets", logging]),
        // Runs the built `eddy` binary as a user would.
        .testTarget(name: "EddyCLITests", dependencies: ["EddyTestSupport", "EddyKafka", "EddyRedis", "EddyWorkload", logging]),
    ],
    swiftLanguageModes: [.v6]
)
