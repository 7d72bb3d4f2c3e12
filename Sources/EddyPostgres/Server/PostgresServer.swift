#if canImport(Glibc)
import Glibc
#endif
import Logging
import NIOCore
import NIOPosix
import ServiceLifecycle
import Synchronization

/// Eddy's PostgreSQL side (`eddy run --pg ADDR`), as a `Service` of the daemon's `ServiceGroup`: protocol
/// version 3 over plain TCP, read-only queries over the views of the last committed checkpoint.
///
/// Each connection is a task reading decoded frames in order and answering through its `PostgresSession`.
/// A frame that does not decode closes that connection only (after `08P01`); an idle connection is closed
/// after `idleTimeout` (`57P05`); a statement that takes longer than `queryTimeLimit` fails with `57014`;
/// a connection over `maximumConnections` is refused with `53300` after its start-up packet.
public struct PostgresServer: Service {
    public struct Configuration: Sendable {
        /// A host name or literal address (IPv6 without brackets).
        public var host: String
        /// 0 asks the system for a free port (tests); the bound one is `boundPort`.
        public var port: Int
        /// Connections open at once; more are refused with `53300`. Default 64.
        public var maximumConnections: Int = 64
        /// A connection that sends nothing for this long is closed. Default 10 minutes.
        public var idleTimeout: Duration = .seconds(600)
        /// A statement that takes longer fails with `57014`. Default 30 s.
        public var queryTimeLimit: Duration = .seconds(30)
        /// Frames larger than this close the connection. Default 1 MiB.
        public var maximumMessageBytes: Int = 1 << 20

        public init(host: String, port: Int) {
            self.host = host
            self.port = port
        }
    }

    public let configuration: Configuration
    private let verifier: SCRAMVerifier?
    private let dataSource: any PostgresDataSource
    private let metrics: PostgresMetrics
    private let logger: Logger
    private let state = ServerState()

    /// - Parameter password: when set, clients authenticate with SCRAM-SHA-256 against it (only a salted
    ///   verifier is kept); when nil, every client is let in (trust), which suits loopback.
    public init(configuration: Configuration, password: String?, dataSource: some PostgresDataSource, metrics: PostgresMetrics, logger: Logger) {
        self.configuration = configuration
        verifier = password.map { SCRAMVerifier(password: $0) }
        self.dataSource = dataSource
        self.metrics = metrics
        self.logger = logger
    }

    /// The port the server listens on, once it does.
    public var boundPort: Int? { state.boundPort.withLock { $0 } }

    /// `host:port`, with brackets around an IPv6 host.
    public var addressDescription: String {
        configuration.host.contains(":") ? "[\(configuration.host)]:\(configuration.port)" : "\(configuration.host):\(configuration.port)"
    }

    /// Binds, serves until graceful shutdown, then closes every connection and returns. Throws
    /// `PostgresServerError` when it cannot bind.
    public func run() async throws {
        let configuration = configuration
        let serverChannel: NIOAsyncChannel<NIOAsyncChannel<FrontendMessage, ByteBuffer>, Never>
        do {
            serverChannel = try await ServerBootstrap(group: MultiThreadedEventLoopGroup.singleton)
                .serverChannelOption(.backlog, value: 256)
                .serverChannelOption(.socketOption(.so_reuseaddr), value: 1)
                .childChannelOption(.socketOption(.tcp_nodelay), value: 1)
                .bind(host: configuration.host, port: configuration.port) { channel in
                    channel.eventLoop.makeCompletedFuture {
                        let idle = TimeAmount.nanoseconds(Int64(configuration.idleTimeout / .nanoseconds(1)))
                        try channel.pipeline.syncOperations.addHandler(IdleStateHandler(readTimeout: idle))
                        try channel.pipeline.syncOperations.addHandler(ByteToMessageHandler(FrontendMessageDecoder(maximumMessageBytes: configuration.maximumMessageBytes)))
                        try channel.pipeline.syncOperations.addHandler(IdleConnectionCloser(metrics: metrics))
                        return try NIOAsyncChannel<FrontendMessage, ByteBuffer>(wrappingChannelSynchronously: channel)
                    }
                }
        } catch {
            throw PostgresServerError.describe(error, address: addressDescription)
        }
        let port = serverChannel.channel.localAddress?.port ?? configuration.port
        state.boundPort.withLock { $0 = port }
        logger.info("PostgreSQL side listening", metadata: ["eddy.pg.address": "\(configuration.host):\(port)", "eddy.pg.authentication": "\(verifier == nil ? "trust" : "scram-sha-256")"])
        try await withGracefulShutdownHandler {
            try await serverChannel.executeThenClose { inbound in
                try await withThrowingDiscardingTaskGroup { group in
                    for try await connection in inbound {
                        group.addTask { await serve(connection) }
                    }
                    // The listener closed (shutdown): open connections end too.
                    group.cancelAll()
                }
            }
        } onGracefulShutdown: {
            serverChannel.channel.close(promise: nil)
        }
    }

    private func serve(_ connection: NIOAsyncChannel<FrontendMessage, ByteBuffer>) async {
        let admitted = metrics.open(limit: configuration.maximumConnections)
        defer { if admitted { metrics.didClose() } }
        let processID = state.nextProcessID.add(1, ordering: .relaxed).newValue
        var session = PostgresSession(
            configuration: .init(verifier: verifier, queryTimeLimit: configuration.queryTimeLimit),
            dataSource: dataSource, metrics: metrics, processID: processID, secretKey: Int32.random(in: .min ... .max))
        if !admitted {
            logger.notice("PostgreSQL connection refused: too many connections", metadata: ["eddy.pg.limit": "\(configuration.maximumConnections)"])
            session.refuse(with: PostgresError("53300", "sorry, too many clients already (eddy run --pg-max-connections \(configuration.maximumConnections))", severity: .fatal))
        }
        do {
            try await connection.executeThenClose { inbound, outbound in
                do {
                    for try await message in inbound {
                        let output = await session.receive(message)
                        try await write(output, to: outbound)
                        if output.close { return }
                    }
                } catch let violation as PostgresProtocolViolation {
                    logger.debug("PostgreSQL connection closed: \(violation)", metadata: ["eddy.pg.pid": "\(processID)"])
                    try await write(session.protocolViolation(violation), to: outbound)
                }
            }
        } catch {
            // The peer went away or the server is stopping: nothing to tell anyone.
            logger.trace("PostgreSQL connection ended: \(error)", metadata: ["eddy.pg.pid": "\(processID)"])
        }
    }

    private func write(_ output: PostgresSession.Output, to outbound: NIOAsyncChannelOutboundWriter<ByteBuffer>) async throws {
        if let reason = output.closeReason { metrics.recordClose(reason) }
        guard !output.messages.isEmpty else { return }
        var buffer = ByteBuffer()
        for message in output.messages { message.encode(into: &buffer) }
        try await outbound.write(buffer)
    }
}

/// What the server shares between its connections.
private final class ServerState: Sendable {
    let boundPort = Mutex<Int?>(nil)
    let nextProcessID = Atomic<Int32>(1000)
}

/// Closes a connection that has sent nothing for the idle timeout, telling the client why (`57P05`).
private final class IdleConnectionCloser: ChannelInboundHandler, Sendable {
    typealias InboundIn = FrontendMessage
    typealias InboundOut = FrontendMessage
    let metrics: PostgresMetrics

    init(metrics: PostgresMetrics) { self.metrics = metrics }

    func userInboundEventTriggered(context: ChannelHandlerContext, event: Any) {
        guard let idle = event as? IdleStateHandler.IdleStateEvent, idle == .read else {
            context.fireUserInboundEventTriggered(event)
            return
        }
        metrics.recordClose(.idle)
        var buffer = context.channel.allocator.buffer(capacity: 128)
        BackendMessage.error(PostgresError("57P05", "terminating connection due to idle-session timeout", severity: .fatal)).encode(into: &buffer)
        let bound = NIOLoopBound(context, eventLoop: context.eventLoop)
        context.writeAndFlush(NIOAny(buffer)).whenComplete { _ in bound.value.close(promise: nil) }
    }
}

/// Why the PostgreSQL side could not start.
public struct PostgresServerError: Error, CustomStringConvertible {
    public let description: String

    static func describe(_ error: any Error, address: String) -> PostgresServerError {
        if let ioError = error as? IOError {
            switch ioError.errnoCode {
            case EADDRINUSE: return PostgresServerError(description: "cannot listen on \(address) for the PostgreSQL side: the port is already in use; pass another --pg address")
            case EADDRNOTAVAIL: return PostgresServerError(description: "cannot listen on \(address) for the PostgreSQL side: that address is not one of this machine's")
            case EACCES: return PostgresServerError(description: "cannot listen on \(address) for the PostgreSQL side: permission denied (ports below 1024 need privileges)")
            default: break
            }
        }
        return PostgresServerError(description: "cannot listen on \(address) for the PostgreSQL side: \(error)")
    }
}
