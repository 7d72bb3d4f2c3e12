import EddyHTTP
import Logging
import Prometheus
import ServiceLifecycle

/// A server under test, listening on a port the system chose.
struct RunningServer {
    let port: Int
    var baseURL: String { "http://127.0.0.1:\(port)" }
}

let quietLogger = Logger(label: "eddy.http.test") { _ in SwiftLogNoOpLogHandler() }

/// Runs an `EddyHTTPServer` on 127.0.0.1 port 0 inside a `ServiceGroup` (as `eddy run` will), hands its
/// port to `body`, then shuts it down gracefully and waits for `run()` to return.
func withRunningServer<Result>(
    _ source: TestPipeline = TestPipeline(),
    registry: PrometheusCollectorRegistry = PrometheusCollectorRegistry(),
    _ body: (RunningServer) async throws -> Result
) async throws -> Result {
    let server = EddyHTTPServer(address: HTTPBindAddress(host: "127.0.0.1", port: 0), registry: registry, dataSource: source, logger: quietLogger)
    let group = ServiceGroup(services: [server], gracefulShutdownSignals: [], logger: quietLogger)
    return try await withThrowingTaskGroup(of: Void.self) { tasks in
        tasks.addTask { try await group.run() }
        let outcome: Swift.Result<Result, any Error>
        do {
            let port = try await server.waitUntilListening()
            outcome = .success(try await body(RunningServer(port: port)))
        } catch {
            outcome = .failure(error)
        }
        await group.triggerGracefulShutdown()
        try await tasks.waitForAll()
        return try outcome.get()
    }
}
