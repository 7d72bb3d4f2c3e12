#if canImport(FoundationEssentials)
import FoundationEssentials
#else
import Foundation
#endif
#if canImport(Glibc)
import Glibc
#endif
import Hummingbird
import Logging
import NIOCore
import Prometheus
import ServiceLifecycle
import Synchronization

/// Eddy's HTTP side, as a `Service` for the daemon's `ServiceGroup`:
///
/// | path | answer |
/// |---|---|
/// | `/healthz` | 200 `ok` while the process serves |
/// | `/readyz` | 200 `ready`, or 503 with the reasons (text; JSON with `Accept: application/json` or `?format=json`) |
/// | `/metrics` | the registry in Prometheus text format, plus `process_*` metrics (RSS, CPU, fds) |
/// | `/api/status` | `PipelineStatus` as JSON |
/// | `/api/views` | `[ViewRows]` as JSON; `?limit=N` keeps the N rows with the largest values per view |
/// | `/api/views/NAME` | `ViewRows` as JSON (same `limit`), or 404 with a JSON error naming the known views |
/// | `/` | the dashboard: one self-contained page compiled into the binary, polling the API every second |
///
/// `run()` binds, serves until graceful shutdown (then finishes requests in flight and returns), and
/// throws `EddyHTTPError` when it cannot bind (`portInUse`, `bindFailed`). The `process_*` metric names
/// belong to this server: do not register them in the registry.
public struct EddyHTTPServer: Service {
    /// Where to listen.
    public let address: HTTPBindAddress
    private let registry: PrometheusCollectorRegistry
    private let dataSource: any EddyHTTPDataSource
    private let logger: Logger
    private let listening = ListeningState()

    /// A server for `address` serving `registry` and `dataSource`. Nothing binds until `run()`.
    public init(address: HTTPBindAddress, registry: PrometheusCollectorRegistry, dataSource: some EddyHTTPDataSource, logger: Logger) {
        self.address = address
        self.registry = registry
        self.dataSource = dataSource
        self.logger = logger
    }

    /// A server for the `--http` text (`host:port`, `[::1]:port`, `:port`); throws `invalidBindAddress`.
    public init(address: String, registry: PrometheusCollectorRegistry, dataSource: some EddyHTTPDataSource, logger: Logger) throws {
        self.init(address: try HTTPBindAddress(parsing: address), registry: registry, dataSource: dataSource, logger: logger)
    }

    /// The port the server listens on, once it does (the system's choice when `address.port` is 0).
    public var boundPort: Int? { listening.port }

    /// Waits until `run()` listens and returns the port; throws the error `run()` failed with before
    /// listening. Call it only alongside a `run()` (it waits for one).
    public func waitUntilListening() async throws -> Int {
        try await listening.wait()
    }

    /// Binds, serves until the service group shuts down gracefully, then lets requests in flight finish
    /// and returns. Throws `EddyHTTPError` (`portInUse`, `bindFailed`, `serverFailed`).
    public func run() async throws {
        logger.debug("HTTP server starting", metadata: ["eddy.http.address": "\(address)", "eddy.http.loopback": "\(address.isLoopback)"])
        let routes = Routes(registry: registry, dataSource: dataSource)
        let application = Application(
            router: routes.makeRouter(),
            configuration: ApplicationConfiguration(address: .hostname(address.host, port: address.port), serverName: "eddy"),
            onServerRunning: { [listening, address] channel in
                listening.didBind(port: channel.localAddress?.port ?? address.port)
            },
            logger: logger
        )
        do {
            try await application.run()
            listening.didStop(error: CancellationError())
        } catch {
            let mapped = Self.describe(error, address: address, wasListening: listening.port != nil)
            listening.didStop(error: mapped)
            throw mapped
        }
    }

    /// Turns NIO's socket errors into an `EddyHTTPError` that names the address and what to do.
    static func describe(_ error: any Error, address: HTTPBindAddress, wasListening: Bool) -> any Error {
        if error is CancellationError || error is EddyHTTPError { return error }
        if wasListening {
            return EddyHTTPError(.serverFailed, reason: "HTTP server on \(address) stopped: \(error)")
        }
        if let ioError = error as? IOError {
            let errnoCode = ioError.errnoCode
            if errnoCode == EADDRINUSE {
                return EddyHTTPError(
                    .portInUse,
                    systemErrno: errnoCode,
                    reason: "cannot listen on \(address): port \(address.port) is already in use; stop the other process or pass another --http address"
                )
            }
            if errnoCode == EADDRNOTAVAIL {
                return EddyHTTPError(.bindFailed, systemErrno: errnoCode, reason: "cannot listen on \(address): that address is not one of this machine's", isRetriable: false)
            }
            if errnoCode == EACCES {
                return EddyHTTPError(.bindFailed, systemErrno: errnoCode, reason: "cannot listen on \(address): permission denied (ports below 1024 need privileges)", isRetriable: false)
            }
            return EddyHTTPError(.bindFailed, systemErrno: errnoCode, reason: "cannot listen on \(address): \(ioError)", isRetriable: false)
        }
        if error is SocketAddressError {
            return EddyHTTPError(.bindFailed, reason: "cannot listen on \(address): host '\(address.host)' does not resolve", isRetriable: false)
        }
        return EddyHTTPError(.bindFailed, reason: "cannot listen on \(address): \(error)", isRetriable: false)
    }
}

/// The bound port, or why there will be none, and the tasks waiting to learn which.
private final class ListeningState: Sendable {
    private struct State {
        var port: Int?
        var failure: (any Error)?
        var waiters: [CheckedContinuation<Int, any Error>] = []
    }

    private let state = Mutex(State())

    var port: Int? { state.withLock { $0.port } }

    func didBind(port: Int) {
        let waiters = state.withLock { state in
            state.port = port
            defer { state.waiters.removeAll() }
            return state.waiters
        }
        for waiter in waiters { waiter.resume(returning: port) }
    }

    func didStop(error: any Error) {
        let waiters = state.withLock { state in
            if state.port == nil { state.failure = error }
            defer { state.waiters.removeAll() }
            return state.waiters
        }
        for waiter in waiters { waiter.resume(throwing: error) }
    }

    func wait() async throws -> Int {
        try await withCheckedThrowingContinuation { continuation in
            let ready: Result<Int, any Error>? = state.withLock { state in
                if let port = state.port { return .success(port) }
                if let failure = state.failure { return .failure(failure) }
                state.waiters.append(continuation)
                return nil
            }
            if let ready { continuation.resume(with: ready) }
        }
    }
}
