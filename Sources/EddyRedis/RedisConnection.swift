import CHiredis
import Logging

#if canImport(Glibc)
import Glibc
#endif

/// One blocking connection to a Redis server, over hiredis, and over TLS for `rediss://`.
///
/// Owns a `redisContext` from `connect` until `close`, `deinit`, or the first error that breaks the
/// connection (timeout, reset, protocol error): the socket is then closed at once, so that a command still
/// queued in Redis (under `CLIENT PAUSE WRITE`, say) is dropped with it rather than run later, and every
/// later call throws `connectionBroken`. The caller makes a new connection to retry.
///
/// Plain connections read and write through hiredis. With TLS (`url.tls`), hiredis only connects and owns
/// the socket; `RedisTLSSession` (OpenSSL) encrypts on it and hiredis's `redisReader` parses the decrypted
/// replies — hiredis 0.14 has no TLS of its own (see `RedisTLSSession` for why this route).
///
/// Every connection turns on TCP keepalive (idle 15 s, then 3 probes 5 s apart: hiredis's
/// `redisEnableKeepAlive`), so that a server gone without a FIN (a host lost, a NAT entry expired) is noticed
/// on an idle connection within about half a minute, not after the kernel's two hours.
///
/// **Thread:** one thread at a time (the sink's own thread); it is `Sendable` only so that it can be
/// handed to that thread. Every call blocks for at most about the command timeout per socket read or write.
public final class RedisConnection: @unchecked Sendable {
    /// The server and login this connection was made with.
    public let url: RedisURL
    /// How long a single socket read or write may wait before the call throws `timeout`.
    public let commandTimeout: Duration

    private var context: UnsafeMutablePointer<redisContext>?
    /// The TLS session and reply parser of a `rediss://` connection; `nil` for plain TCP.
    private var tls: TLSChannel?
    /// Whether hiredis holds commands not yet written (plain TCP).
    private var hasUnwrittenCommands = false
    /// The timeout currently set on the socket (the connect timeout during the handshake).
    private var socketTimeout: Duration
    /// Why an error closed the connection, for the calls that come after.
    private var closedReason: String?
    private var encoder = RedisCommandEncoder()
    private let logger: Logger

    private init(url: RedisURL, context: UnsafeMutablePointer<redisContext>, socketTimeout: Duration, commandTimeout: Duration, logger: Logger) {
        self.url = url
        self.context = context
        self.socketTimeout = socketTimeout
        self.commandTimeout = commandTimeout
        var logger = logger
        logger[metadataKey: "eddy.redis.server"] = "\(url.address)"
        self.logger = logger
    }

    deinit {
        tls = nil
        if let context { redisFree(context) }
    }

    /// Connects (with TLS for `url.tls`: handshake and certificate verification), logs in (`AUTH user
    /// password`, or `AUTH password` without a user), selects the database, names the connection
    /// (`CLIENT SETNAME`, when `clientName` is given) and checks with `PING` that commands are accepted.
    ///
    /// `connectTimeout` bounds the TCP connect and each step of that handshake; `commandTimeout` bounds each
    /// socket read or write after it. Throws a `RedisError` whose reason names `host:port`, never the
    /// password: `connectionRefused`, `unknownHost`, `timeout`, `tlsCertificateRejected`,
    /// `tlsHandshakeFailed`, `authenticationRequired` (`NOAUTH`), `authenticationFailed`, `invalidDatabase`, …
    ///
    /// `clientName` shows in `CLIENT LIST` (e.g. `eddy:<sink>`); characters Redis refuses in a name (spaces,
    /// control and non-ASCII characters) become `_`. A server that refuses `CLIENT SETNAME` (a user
    /// without the permission) is no reason to fail: the connection stays unnamed.
    public static func connect(
        url: RedisURL,
        connectTimeout: Duration,
        commandTimeout: Duration,
        clientName: String? = nil,
        logger: Logger
    ) throws(RedisError) -> RedisConnection {
        try validate(url: url, connectTimeout: connectTimeout, commandTimeout: commandTimeout)
        let made = url.host.withCString { redisConnectWithTimeout($0, Int32(url.port), timeval(connectTimeout)) }
        guard let made else {
            throw RedisError(
                code: .clientOutOfMemory, reason: "cannot connect to Redis at \(url.address): hiredis could not allocate a context",
                isRetriable: true, breaksConnection: true
            )
        }
        if made.pointee.err != 0 {
            let error = connectFailure(made, url: url, timeout: connectTimeout)
            redisFree(made)
            logger.debug("Redis connect failed: \(error.reason)", metadata: ["eddy.redis.error": "\(error.code)"])
            throw error
        }
        // From here `connection` owns the context: a throw below frees it in deinit.
        let connection = RedisConnection(url: url, context: made, socketTimeout: connectTimeout, commandTimeout: commandTimeout, logger: logger)
        try connection.setSocketTimeout(connectTimeout)
        // Finds a peer that vanished without a FIN (a cable pulled) on an idle connection.
        _ = redisEnableKeepAlive(made)
        if let settings = url.tls {
            connection.tls = try TLSChannel(
                session: RedisTLSSession.handshake(socket: made.pointee.fd, settings: settings, url: url, timeout: connectTimeout))
        }
        do {
            try connection.handshake(clientName: clientName)
        } catch where url.tls != nil && url.tls?.certificateFile == nil && error.code == .connectionBroken {
            // A server that requires client certificates (tls-auth-clients yes) accepts the TLS 1.3 handshake
            // and then drops the connection at the first command, often before its alert can be read.
            var error = error
            error.reason += " (if the server requires client certificates, set redis.ssl.certificate.location and redis.ssl.key.location)"
            throw error
        }
        try connection.setSocketTimeout(commandTimeout)
        connection.logger.debug("Redis connected", metadata: ["eddy.redis.url": "\(url)"])
        return connection
    }

    /// Whether the socket is still open (not closed by `close` or by an error that broke the connection).
    public var isOpen: Bool { context != nil }

    /// Runs one command and returns its reply. Binary-safe: every argument is sent with its length.
    /// A top-level error reply is thrown (`outOfMemory`, `wrongType`, `serverError`, …) and leaves the
    /// connection usable; a network failure or timeout throws with `breaksConnection` and closes it.
    public func command(_ arguments: [[UInt8]]) throws(RedisError) -> RedisReply {
        precondition(!arguments.isEmpty, "a Redis command needs at least its name")
        let name = Self.commandName(arguments[0])
        encoder.reset()
        encoder.appendCommand(arguments)
        try send(encoder.bytes, commandName: name)
        return try receive(commandName: name).checked(by: self, commandName: name)
    }

    /// Runs one command given as text arguments (each sent as its UTF-8 bytes).
    public func command(_ arguments: String...) throws(RedisError) -> RedisReply {
        try command(arguments.map { Array($0.utf8) })
    }

    /// Sends `commands` in one write (a pipeline) and reads every reply, in order.
    ///
    /// All replies are read even when some are errors, so the connection stays in step; then the first
    /// error reply, if any, is thrown (naming its position). A returned array therefore means that every
    /// command succeeded. Pipelined commands are not a transaction: those before a failed one did run.
    public func pipeline(_ commands: [[[UInt8]]]) throws(RedisError) -> [RedisReply] {
        guard !commands.isEmpty else { return [] }
        encoder.reset()
        for arguments in commands {
            precondition(!arguments.isEmpty, "a Redis command needs at least its name")
            encoder.appendCommand(arguments)
        }
        let name = "pipeline of \(commands.count) commands"
        try send(encoder.bytes, commandName: name)
        var replies: [RedisReply] = []
        replies.reserveCapacity(commands.count)
        var firstError: (index: Int, message: String)?
        for index in commands.indices {
            let reply = try receive(commandName: name)
            if case .error(let message) = reply, firstError == nil { firstError = (index, message) }
            replies.append(reply)
        }
        if let firstError {
            let failed = "\(Self.commandName(commands[firstError.index][0])) (command \(firstError.index + 1) of \(commands.count) in a pipeline)"
            throw serverError(firstError.message, commandName: failed)
        }
        return replies
    }

    /// The server's eviction setting (`CONFIG GET maxmemory-policy` and `maxmemory`).
    ///
    /// When `CONFIG` is renamed, disabled or not permitted to this user, returns a policy with
    /// `isKnown == false` and the server's answer in `unavailableReason` instead of throwing; network
    /// failures still throw.
    public func memoryPolicy() throws(RedisError) -> RedisMemoryPolicy {
        let name = "CONFIG GET"
        encoder.reset()
        encoder.appendCommand([Array("CONFIG".utf8), Array("GET".utf8), Array("maxmemory-policy".utf8)])
        encoder.appendCommand([Array("CONFIG".utf8), Array("GET".utf8), Array("maxmemory".utf8)])
        try send(encoder.bytes, commandName: name)
        let policyReply = try receive(commandName: name)
        let limitReply = try receive(commandName: name)
        for reply in [policyReply, limitReply] {
            if case .error(let message) = reply {
                logger.debug("Redis would not tell its memory policy", metadata: ["eddy.redis.reply": "\(message)"])
                return RedisMemoryPolicy(policy: nil, maxMemoryBytes: nil, unavailableReason: message)
            }
        }
        func value(_ reply: RedisReply) -> String? {
            guard case .array(let pair) = reply, pair.count == 2 else { return nil }
            return pair[1].text
        }
        let policy = value(policyReply)
        let limit = value(limitReply).flatMap { UInt64($0) }
        return RedisMemoryPolicy(
            policy: policy,
            maxMemoryBytes: limit,
            unavailableReason: policy == nil ? "CONFIG GET maxmemory-policy returned \(policyReply.summary)" : nil
        )
    }

    /// Closes the socket. Idempotent; later calls throw `connectionBroken`.
    public func close() {
        guard let context else { return }
        tls = nil
        redisFree(context)
        self.context = nil
        closedReason = closedReason ?? "it was closed"
        logger.debug("Redis connection closed")
    }

    // MARK: - Internal: used by RedisEpochWriter

    /// Hands one or more encoded commands to hiredis; they are written by the next `receive`. (Over TLS they
    /// are written at once, and so are large ones over plain TCP: see `directWriteBytes`.)
    func send(_ encoded: [UInt8], commandName: String) throws(RedisError) {
        let context = try openContext(commandName: commandName)
        if let tls {
            let failure = withSIGPIPEBlocked { encoded.withUnsafeBytes { tls.session.write($0) } }
            if let failure { throw breakingFailure(failure, commandName: commandName) }
            return
        }
        if encoded.count >= Self.directWriteBytes {
            try writePending(context, commandName: commandName)
            let failure = encoded.withUnsafeBytes { Self.writeToSocket($0, socket: context.pointee.fd) }
            if let failure { throw breakingFailure(failure, commandName: commandName) }
            return
        }
        let status = encoded.withUnsafeBytes { bytes in
            redisAppendFormattedCommand(context, bytes.baseAddress?.assumingMemoryBound(to: CChar.self), bytes.count)
        }
        if status != REDIS_OK { throw breakingFailure(context, commandName: commandName) }
        hasUnwrittenCommands = true
    }

    /// Commands at least this long (an epoch's `MSET`s) are written to the socket from the caller's buffer, after
    /// whatever hiredis holds, rather than copied into hiredis's output buffer first: for an epoch of a million
    /// keys that copy was another 60 MB of fresh pages, and hiredis 0.14 shifts the rest of its buffer down after
    /// every partial write.
    static let directWriteBytes = 64 << 10

    /// Writes anything pending and reads one reply. An error reply is returned as `.error`, not thrown.
    func receive(commandName: String) throws(RedisError) -> RedisReply {
        let context = try openContext(commandName: commandName)
        if let tls { return try receive(over: tls, commandName: commandName) }
        try writePending(context, commandName: commandName)
        var raw: UnsafeMutableRawPointer?
        let status = redisGetReply(context, &raw)
        guard status == REDIS_OK, let raw else { throw breakingFailure(context, commandName: commandName) }
        defer { freeReplyObject(raw) }
        return RedisReply(raw.assumingMemoryBound(to: redisReply.self))
    }

    /// Writes the commands hiredis holds (plain TCP), as `redisGetReply` would first, with SIGPIPE blocked (see
    /// `withSIGPIPEBlocked`).
    private func writePending(_ context: UnsafeMutablePointer<redisContext>, commandName: String) throws(RedisError) {
        guard hasUnwrittenCommands else { return }
        let status = withSIGPIPEBlocked { () -> Int32 in
            var done: Int32 = 0
            repeat {
                if redisBufferWrite(context, &done) == REDIS_ERR { return REDIS_ERR }
            } while done == 0
            return REDIS_OK
        }
        guard status == REDIS_OK else { throw breakingFailure(context, commandName: commandName) }
        hasUnwrittenCommands = false
    }

    /// Writes `bytes` whole to a plain TCP socket (`MSG_NOSIGNAL`: a closed peer is `EPIPE`, not a signal), each
    /// write bounded by the socket's timeout as hiredis's own are; the failure, if any.
    private static func writeToSocket(_ bytes: UnsafeRawBufferPointer, socket: Int32) -> RedisTLSSession.Failure? {
        guard var next = bytes.baseAddress else { return nil }
        var remaining = bytes.count
        while remaining > 0 {
            let written = Glibc.send(socket, next, remaining, Int32(MSG_NOSIGNAL))
            if written > 0 {
                next += written
                remaining -= written
                continue
            }
            let error = written < 0 ? errno : EPIPE
            switch error {
            case EINTR: continue
            case EAGAIN, EWOULDBLOCK: return .timedOut
            case EPIPE, ECONNRESET: return .closed
            default: return .failed(String(cString: strerror(error)))
            }
        }
        return nil
    }

    /// The error a server error reply means, named after the command and this server.
    func serverError(_ message: String, commandName: String) -> RedisError {
        let prefix = message.prefix { $0 != " " }
        let address = url.address
        func error(_ code: RedisError.Code, _ reason: String, retriable: Bool) -> RedisError {
            RedisError(code: code, reason: reason, isRetriable: retriable, breaksConnection: false)
        }
        switch prefix {
        case "NOAUTH":
            return error(.authenticationRequired, "Redis at \(address) requires a password (NOAUTH): add it to redis.url", retriable: false)
        case "WRONGPASS":
            return error(.authenticationFailed, "Redis at \(address) refused the \(url.user == nil ? "password" : "user name or password") (WRONGPASS)", retriable: false)
        case "NOPERM":
            return error(.permissionDenied, "Redis at \(address) does not permit \(commandName) to this user: \(message)", retriable: false)
        case "OOM":
            return error(.outOfMemory, "Redis at \(address) is over maxmemory and refused \(commandName) (OOM); nothing was written", retriable: true)
        case "BUSY", "LOADING", "READONLY", "MASTERDOWN", "TRYAGAIN", "CLUSTERDOWN":
            return error(.serverUnavailable, "Redis at \(address) cannot run \(commandName) now: \(message)", retriable: true)
        case "MOVED", "ASK":
            var redirected = error(.clusterRedirect, "Redis at \(address) is a Redis Cluster node and does not serve the key of \(commandName): \(message)", retriable: false)
            redirected.clusterRedirect = RedisClusterRedirect(errorMessage: message, askedHost: url.host)
            return redirected
        case "CROSSSLOT":
            return error(.unsupported, "Redis at \(address) is a Redis Cluster node and refused \(commandName), whose keys are in several slots: \(message)", retriable: false)
        case "WRONGTYPE":
            return error(.wrongType, "Redis at \(address) refused \(commandName): \(message)", retriable: false)
        default:
            if message.hasPrefix("ERR unknown command") || message.hasPrefix("ERR unknown subcommand") {
                return error(.unsupported, "Redis at \(address) does not support \(commandName): \(message)", retriable: false)
            }
            if message.hasPrefix("ERR AUTH") || message.hasPrefix("ERR invalid password") || message.hasPrefix("ERR Client sent AUTH") {
                return error(.authenticationFailed, "Redis at \(address) refused AUTH: \(message)", retriable: false)
            }
            return error(.serverError, "Redis at \(address) refused \(commandName): \(message)", retriable: false)
        }
    }

    // MARK: - Private

    private static func validate(url: RedisURL, connectTimeout: Duration, commandTimeout: Duration) throws(RedisError) {
        func invalid(_ reason: String) -> RedisError {
            RedisError(code: .invalidConfiguration, reason: "Redis at \(url.address): \(reason)", isRetriable: false, breaksConnection: true)
        }
        guard !url.host.isEmpty else { throw invalid("the host name is empty") }
        guard (1...65535).contains(url.port) else { throw invalid("port \(url.port) is not between 1 and 65535") }
        guard url.database >= 0 else { throw invalid("database \(url.database) is negative") }
        guard connectTimeout >= .milliseconds(1), commandTimeout >= .milliseconds(1) else {
            throw invalid("connect and command timeouts must be at least 1 ms")
        }
    }

    private func handshake(clientName: String?) throws(RedisError) {
        if let password = url.password {
            var arguments = [Array("AUTH".utf8)]
            if let user = url.user { arguments.append(Array(user.utf8)) }
            arguments.append(Array(password.utf8))
            _ = try command(arguments)
        } else if let user = url.user {
            // A user without a password: only an ACL user with `nopass` accepts this, and any password does.
            _ = try command([Array("AUTH".utf8), Array(user.utf8), []])
        }
        if url.database != 0 {
            encoder.reset()
            encoder.appendCommand([Array("SELECT".utf8), Array(String(url.database).utf8)])
            try send(encoder.bytes, commandName: "SELECT")
            let reply = try receive(commandName: "SELECT")
            if case .error(let message) = reply {
                let error = serverError(message, commandName: "SELECT")
                guard error.code == .serverError else { throw error }
                throw RedisError(
                    code: .invalidDatabase, reason: "Redis at \(url.address) refused database \(url.database) (\(message))",
                    isRetriable: false, breaksConnection: false
                )
            }
        }
        if let clientName {
            encoder.reset()
            encoder.appendCommand([Array("CLIENT".utf8), Array("SETNAME".utf8), Self.acceptedClientName(clientName)])
            try send(encoder.bytes, commandName: "CLIENT SETNAME")
            if case .error(let message) = try receive(commandName: "CLIENT SETNAME") {
                logger.debug("Redis would not name the connection", metadata: ["eddy.redis.reply": "\(message)"])
            }
        }
        let pong = try command("PING")
        guard pong == .status("PONG") else {
            throw breakingProtocolError("PING returned \(pong.summary), not PONG")
        }
    }

    private func setSocketTimeout(_ timeout: Duration) throws(RedisError) {
        let context = try openContext(commandName: "setting the socket timeout")
        guard redisSetTimeout(context, timeval(timeout)) == REDIS_OK else {
            throw breakingFailure(context, commandName: "setting the socket timeout")
        }
        socketTimeout = timeout
    }

    private func openContext(commandName: String) throws(RedisError) -> UnsafeMutablePointer<redisContext> {
        guard let context else {
            throw RedisError(
                code: .connectionBroken,
                reason: "cannot send \(commandName) to Redis at \(url.address): the connection is closed (\(closedReason ?? "closed"))",
                isRetriable: true, breaksConnection: true
            )
        }
        return context
    }

    /// Turns hiredis's error on `context` into a `RedisError` and closes the connection.
    private func breakingFailure(_ context: UnsafeMutablePointer<redisContext>, commandName: String) -> RedisError {
        let hiredisCode = context.pointee.err
        let message = Self.errorString(context)
        let address = url.address
        var error: RedisError
        switch (hiredisCode, SystemError(message: message)) {
        case (REDIS_ERR_IO, .wouldBlock?), (REDIS_ERR_IO, .timedOut?):
            error = RedisError(
                code: .timeout, hiredisCode: hiredisCode,
                reason: "Redis at \(address) did not answer \(commandName) within \(socketTimeout); the connection was closed",
                isRetriable: true, breaksConnection: true
            )
        case (REDIS_ERR_EOF, _):
            error = RedisError(
                code: .connectionBroken, hiredisCode: hiredisCode,
                reason: "Redis at \(address) closed the connection during \(commandName)",
                isRetriable: true, breaksConnection: true
            )
        case (REDIS_ERR_IO, _):
            error = RedisError(
                code: .connectionBroken, hiredisCode: hiredisCode,
                reason: "connection to Redis at \(address) failed during \(commandName): \(message)",
                isRetriable: true, breaksConnection: true
            )
        case (REDIS_ERR_OOM, _):
            error = RedisError(
                code: .clientOutOfMemory, hiredisCode: hiredisCode,
                reason: "hiredis ran out of memory during \(commandName) to Redis at \(address)",
                isRetriable: true, breaksConnection: true
            )
        case (REDIS_ERR_PROTOCOL, _):
            error = RedisError(
                code: .protocolError, hiredisCode: hiredisCode,
                reason: "Redis at \(address) sent something hiredis cannot parse during \(commandName): \(message)",
                isRetriable: true, breaksConnection: true
            )
        default:
            error = RedisError(
                code: .connectionBroken, hiredisCode: hiredisCode,
                reason: "connection to Redis at \(address) failed during \(commandName): \(message.isEmpty ? "unknown error" : message)",
                isRetriable: true, breaksConnection: true
            )
        }
        closeAfter(error)
        return error
    }

    /// Reads one reply over TLS: parses what is buffered, reading more from the session until a reply is whole.
    private func receive(over tls: TLSChannel, commandName: String) throws(RedisError) -> RedisReply {
        while true {
            var raw: UnsafeMutableRawPointer?
            guard redisReaderGetReply(tls.reader, &raw) == REDIS_OK else {
                let detail = withUnsafeBytes(of: tls.reader.pointee.errstr) { String(decoding: $0.prefix { $0 != 0 }, as: UTF8.self) }
                throw breakingProtocolError("sent something hiredis cannot parse during \(commandName): \(detail)")
            }
            if let raw {
                defer { freeReplyObject(raw) }
                return RedisReply(raw.assumingMemoryBound(to: redisReply.self))
            }
            let read = withSIGPIPEBlocked { () -> Result<Int, RedisTLSSession.Failure> in
                do throws(RedisTLSSession.Failure) {
                    return .success(try tls.session.read(into: tls.buffer))
                } catch {
                    return .failure(error)
                }
            }
            let count: Int
            switch read {
            case .success(let read): count = read
            case .failure(let failure): throw breakingFailure(failure, commandName: commandName)
            }
            guard redisReaderFeed(tls.reader, tls.buffer.baseAddress?.assumingMemoryBound(to: CChar.self), count) == REDIS_OK else {
                throw RedisError(
                    code: .clientOutOfMemory, reason: "hiredis ran out of memory during \(commandName) to Redis at \(url.address)",
                    isRetriable: true, breaksConnection: true)
            }
        }
    }

    /// A socket read or write of our own (over TLS, or a direct write) that failed, as the error hiredis's failures
    /// give, and closes the connection.
    private func breakingFailure(_ failure: RedisTLSSession.Failure, commandName: String) -> RedisError {
        let address = url.address
        let error: RedisError
        switch failure {
        case .timedOut:
            error = RedisError(
                code: .timeout, reason: "Redis at \(address) did not answer \(commandName) within \(socketTimeout); the connection was closed",
                isRetriable: true, breaksConnection: true)
        case .closed:
            error = RedisError(
                code: .connectionBroken, reason: "Redis at \(address) closed the connection during \(commandName)", isRetriable: true,
                breaksConnection: true)
        case .failed(let detail):
            error = RedisError(
                code: .connectionBroken,
                reason: "\(tls == nil ? "connection" : "TLS connection") to Redis at \(address) failed during \(commandName): \(detail)",
                isRetriable: true, breaksConnection: true)
        }
        closeAfter(error)
        return error
    }

    /// `name` with every byte Redis refuses in a client name (anything but printable ASCII other than space)
    /// replaced by `_`.
    static func acceptedClientName(_ name: String) -> [UInt8] {
        var bytes: [UInt8] = []
        for scalar in name.unicodeScalars {
            bytes.append(scalar.value > 0x20 && scalar.value < 0x7F ? UInt8(scalar.value) : UInt8(ascii: "_"))
        }
        return bytes
    }

    /// A reply of the wrong shape: the connection can no longer be trusted to be in step.
    func breakingProtocolError(_ detail: String) -> RedisError {
        let error = RedisError(
            code: .protocolError, reason: "Redis at \(url.address): \(detail)", isRetriable: true, breaksConnection: true
        )
        closeAfter(error)
        return error
    }

    private func closeAfter(_ error: RedisError) {
        logger.debug("Redis connection broken: \(error.reason)", metadata: ["eddy.redis.error": "\(error.code)"])
        closedReason = error.reason
        close()
    }

    private static func connectFailure(_ context: UnsafeMutablePointer<redisContext>, url: RedisURL, timeout: Duration) -> RedisError {
        let hiredisCode = context.pointee.err
        let message = errorString(context)
        let prefix = "cannot connect to Redis at \(url.address)"
        switch (hiredisCode, SystemError(message: message)) {
        case (_, .refused?):
            return RedisError(
                code: .connectionRefused, hiredisCode: hiredisCode,
                reason: "\(prefix): connection refused (is redis-server running on that port?)",
                isRetriable: true, breaksConnection: true
            )
        case (_, .timedOut?), (_, .wouldBlock?):
            return RedisError(
                code: .timeout, hiredisCode: hiredisCode, reason: "\(prefix): no answer within \(timeout)",
                isRetriable: true, breaksConnection: true
            )
        case (REDIS_ERR_OTHER, _) where isNameResolutionError(message):
            return RedisError(
                code: .unknownHost, hiredisCode: hiredisCode, reason: "\(prefix): unknown host (\(message))",
                isRetriable: true, breaksConnection: true
            )
        default:
            return RedisError(
                code: .connectionFailed, hiredisCode: hiredisCode, reason: "\(prefix): \(message)",
                isRetriable: true, breaksConnection: true
            )
        }
    }

    /// hiredis reports `getaddrinfo` failures as `REDIS_ERR_OTHER` with `gai_strerror`'s text. -5 and -9
    /// are glibc's `EAI_NODATA` and `EAI_ADDRFAMILY` (GNU extensions, not imported into Swift).
    private static func isNameResolutionError(_ message: String) -> Bool {
        [EAI_NONAME, EAI_AGAIN, EAI_FAIL, EAI_SERVICE, EAI_FAMILY, -5, -9]
            .contains { message == String(cString: gai_strerror($0)) }
    }

    private static func errorString(_ context: UnsafeMutablePointer<redisContext>) -> String {
        withUnsafeBytes(of: context.pointee.errstr) { raw in
            String(decoding: raw.prefix { $0 != 0 }, as: UTF8.self)
        }
    }

    /// The first argument as a command name for messages: at most 32 characters, upper-cased.
    static func commandName(_ argument: [UInt8]) -> String {
        String(decoding: argument.prefix(32), as: UTF8.self).uppercased()
    }
}

/// The TLS side of a `rediss://` connection: the OpenSSL session, hiredis's reply parser fed with what it
/// decrypts, and the buffer it decrypts into (16 KiB: one TLS record). Frees the parser and the buffer.
private final class TLSChannel {
    let session: RedisTLSSession
    let reader: UnsafeMutablePointer<redisReader>
    let buffer: UnsafeMutableRawBufferPointer

    init(session: RedisTLSSession) throws(RedisError) {
        guard let reader = redisReaderCreate() else {
            throw RedisError(code: .clientOutOfMemory, reason: "hiredis could not allocate a reply parser", isRetriable: true, breaksConnection: true)
        }
        self.session = session
        self.reader = reader
        buffer = .allocate(byteCount: 16 << 10, alignment: 1)
    }

    deinit {
        redisReaderFree(reader)
        buffer.deallocate()
    }
}

/// The `errno` behind an `REDIS_ERR_IO`, recognised from the text hiredis stored (`strerror`, perhaps after
/// a prefix): hiredis keeps no numeric errno, and the thread's `errno` may have moved on since.
private enum SystemError {
    case refused, timedOut, wouldBlock

    init?(message: String) {
        func matches(_ code: Int32) -> Bool { message.hasSuffix(String(cString: strerror(code))) }
        if matches(ECONNREFUSED) {
            self = .refused
        } else if matches(ETIMEDOUT) {
            self = .timedOut
        } else if matches(EAGAIN) || matches(EWOULDBLOCK) || matches(EINPROGRESS) {
            self = .wouldBlock
        } else {
            return nil
        }
    }
}

extension RedisReply {
    /// Copies hiredis's reply tree.
    init(_ reply: UnsafePointer<redisReply>) {
        let value = reply.pointee
        switch value.type {
        case REDIS_REPLY_STRING:
            self = .string(value.len == 0 ? [] : Array(UnsafeRawBufferPointer(start: value.str, count: value.len)))
        case REDIS_REPLY_STATUS:
            self = .status(Self.text(value))
        case REDIS_REPLY_ERROR:
            self = .error(Self.text(value))
        case REDIS_REPLY_INTEGER:
            self = .integer(Int64(value.integer))
        case REDIS_REPLY_ARRAY:
            var elements: [RedisReply] = []
            elements.reserveCapacity(value.elements)
            for index in 0..<value.elements {
                if let element = value.element[index] { elements.append(RedisReply(element)) } else { elements.append(.null) }
            }
            self = .array(elements)
        default:
            self = .null
        }
    }

    private static func text(_ reply: redisReply) -> String {
        guard reply.len > 0, let pointer = reply.str else { return "" }
        return String(decoding: UnsafeRawBufferPointer(start: pointer, count: reply.len), as: UTF8.self)
    }

    /// Throws a top-level error reply as the `RedisError` it means.
    func checked(by connection: RedisConnection, commandName: String) throws(RedisError) -> RedisReply {
        if case .error(let message) = self { throw connection.serverError(message, commandName: commandName) }
        return self
    }
}

extension timeval {
    /// A positive duration as a `timeval`, rounded down to microseconds (at least 1 µs: 0 means "forever").
    init(_ duration: Duration) {
        let (seconds, attoseconds) = duration.components
        let microseconds = Int(attoseconds / 1_000_000_000_000)
        self.init(tv_sec: Int(seconds), tv_usec: seconds == 0 && microseconds == 0 ? 1 : microseconds)
    }
}
