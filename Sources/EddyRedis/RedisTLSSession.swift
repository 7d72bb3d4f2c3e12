import COpenSSL

#if canImport(Glibc)
import Glibc
#endif

/// TLS for `rediss://` on the socket hiredis connected: OpenSSL does the handshake, checks the certificate
/// and encrypts both ways; `RedisConnection` feeds the decrypted bytes to hiredis's own reply parser
/// (`redisReader`), so plain and TLS connections parse replies with the same code.
///
/// Why this route: Debian 12's hiredis (0.14) has no TLS (`hiredis_ssl` came with hiredis 1.0), and
/// building a newer hiredis would leave the Debian packages the README installs. OpenSSL (`libssl-dev`) is
/// in every Debian, is what `redis-server` itself uses for TLS, and keeps verification in Eddy's hands: a
/// certificate that fails is an error naming the server and the reason, never a fallback to plain text.
/// A TLS proxy in front (stunnel) would work with no code, but is one more process for every user to run
/// and watch, with a plain-text hop and its own failure modes; managed Redis (ElastiCache, Upstash, Azure,
/// Redis Cloud) speaks TLS directly, so Eddy should too.
///
/// Owns one `SSL` (and, through it, its `SSL_CTX`), never the socket: hiredis's `redisFree` closes that.
/// Each socket read or write waits at most the socket's timeout (`SO_RCVTIMEO`/`SO_SNDTIMEO`, set through
/// hiredis), which OpenSSL reports as "want read/write": a timeout. No `close_notify` is sent on close:
/// it could block on a stuck server, and Redis needs none.
///
/// **Thread:** the connection's thread.
final class RedisTLSSession {
    private let ssl: OpaquePointer

    private init(ssl: OpaquePointer) { self.ssl = ssl }

    deinit { SSL_free(ssl) }

    /// Why a read or write on the session failed.
    enum Failure: Error {
        /// No progress within the socket's timeout.
        case timedOut
        /// The server closed the connection.
        case closed
        /// Anything else, as OpenSSL or the system tells it.
        case failed(String)
    }

    /// Makes a TLS client session on the connected, blocking `socket` and runs the handshake, bounded per
    /// socket read or write by the socket's current timeout (`timeout`, used for the message).
    ///
    /// Throws `invalidConfiguration` (a CA, certificate or key file that cannot be used: not retriable),
    /// `tlsCertificateRejected` (the server's certificate failed verification: not retriable),
    /// `tlsHandshakeFailed` or `timeout`; each reason names the server, never the key's path.
    static func handshake(socket: Int32, settings: RedisTLSSettings, url: RedisURL, timeout: Duration) throws(RedisError) -> RedisTLSSession {
        let context = try makeContext(settings, url: url)
        // The session keeps its own reference to the context.
        defer { SSL_CTX_free(context) }
        guard let ssl = SSL_new(context) else {
            throw RedisError(
                code: .clientOutOfMemory, reason: "cannot connect to Redis at \(url.address) over TLS: OpenSSL could not make a session (\(errorQueueText()))",
                isRetriable: true, breaksConnection: true)
        }
        let session = RedisTLSSession(ssl: ssl)
        let name = settings.serverName ?? url.host
        try session.expect(name: name, url: url)
        guard SSL_set_fd(ssl, socket) == 1 else {
            throw RedisError(
                code: .tlsHandshakeFailed, reason: "cannot connect to Redis at \(url.address) over TLS: OpenSSL refused the socket (\(errorQueueText()))",
                isRetriable: true, breaksConnection: true)
        }
        let (result, connectErrno) = withSIGPIPEBlocked { () -> (Int32, Int32) in
            ERR_clear_error()
            let result = SSL_connect(ssl)
            return (result, errno)
        }
        guard result != 1 else { return session }
        throw session.handshakeFailure(result, errno: connectErrno, settings: settings, name: name, url: url, timeout: timeout)
    }

    /// Writes all of `bytes`; returns why it could not (returned, not thrown: it runs inside
    /// `Array.withUnsafeBytes`, which does not pass typed errors on). Call with SIGPIPE blocked.
    func write(_ bytes: UnsafeRawBufferPointer) -> Failure? {
        guard var next = bytes.baseAddress else { return nil }
        var remaining = bytes.count
        while remaining > 0 {
            ERR_clear_error()
            // Without SSL_MODE_ENABLE_PARTIAL_WRITE, a successful SSL_write wrote the whole chunk.
            let chunk = Int32(clamping: remaining)
            let written = SSL_write(ssl, next, chunk)
            guard written > 0 else { return failure(written, errno: errno) }
            next += Int(written)
            remaining -= Int(written)
        }
        return nil
    }

    /// Reads what has arrived (at least one byte) into `buffer`; returns the count. Call with SIGPIPE
    /// blocked: a read may write (a TLS 1.3 key update), as `write` does.
    func read(into buffer: UnsafeMutableRawBufferPointer) throws(Failure) -> Int {
        ERR_clear_error()
        let count = SSL_read(ssl, buffer.baseAddress, Int32(clamping: buffer.count))
        guard count > 0 else { throw failure(count, errno: errno) }
        return Int(count)
    }

    // MARK: - Private

    private static func makeContext(_ settings: RedisTLSSettings, url: RedisURL) throws(RedisError) -> OpaquePointer {
        func invalid(_ reason: String) -> RedisError {
            RedisError(
                code: .invalidConfiguration, reason: "cannot connect to Redis at \(url.address) over TLS: \(reason)",
                isRetriable: false, breaksConnection: true)
        }
        guard let context = SSL_CTX_new(TLS_client_method()) else {
            throw RedisError(
                code: .clientOutOfMemory, reason: "cannot connect to Redis at \(url.address) over TLS: OpenSSL could not make a context (\(errorQueueText()))",
                isRetriable: true, breaksConnection: true)
        }
        var made = false
        defer { if !made { SSL_CTX_free(context) } }
        // TLS 1.2 at least (what Redis 6+ and managed services offer; older versions are broken).
        _ = SSL_CTX_ctrl(context, SSL_CTRL_SET_MIN_PROTO_VERSION, Int(TLS1_2_VERSION), nil)
        SSL_CTX_set_verify(context, SSL_VERIFY_PEER, nil)
        // An encrypted key would make OpenSSL ask for its passphrase on the terminal: fail instead.
        SSL_CTX_set_default_passwd_cb(context) { _, _, _, _ in 0 }
        ERR_clear_error()
        if let caFile = settings.caFile {
            guard SSL_CTX_load_verify_locations(context, caFile, nil) == 1 else {
                throw invalid("cannot use the CA file \(caFile) (redis.ssl.ca.location): \(errorQueueText())")
            }
        } else if SSL_CTX_set_default_verify_paths(context) != 1 {
            throw invalid("cannot load the system CA store (\(errorQueueText())); name a CA file in redis.ssl.ca.location")
        }
        switch (settings.certificateFile, settings.keyFile) {
        case (nil, nil):
            break
        case (let certificate?, let key?):
            guard SSL_CTX_use_certificate_chain_file(context, certificate) == 1 else {
                throw invalid("cannot use the client certificate \(certificate) (redis.ssl.certificate.location): \(errorQueueText())")
            }
            // The key's path is not named: like the key, it is the user's to keep quiet.
            guard SSL_CTX_use_PrivateKey_file(context, key, SSL_FILETYPE_PEM) == 1 else {
                throw invalid("cannot use the client key (redis.ssl.key.location): \(errorQueueText())")
            }
            guard SSL_CTX_check_private_key(context) == 1 else {
                throw invalid("the client key (redis.ssl.key.location) does not belong to the certificate \(certificate)")
            }
        case (_?, nil):
            throw invalid("a client certificate needs its key (redis.ssl.key.location)")
        case (nil, _?):
            throw invalid("a client key needs its certificate (redis.ssl.certificate.location)")
        }
        made = true
        return context
    }

    /// Tells OpenSSL the name (or IP address) the server's certificate must carry, and sends a host name as SNI.
    private func expect(name: String, url: RedisURL) throws(RedisError) {
        let isAddress = Self.isIPAddress(name)
        let accepted = name.withCString { cName -> Bool in
            if isAddress {
                return X509_VERIFY_PARAM_set1_ip_asc(SSL_get0_param(ssl), cName) == 1
            }
            // SNI must be a host name, never an address (RFC 6066).
            SSL_set_hostflags(ssl, UInt32(X509_CHECK_FLAG_NO_PARTIAL_WILDCARDS))
            return SSL_set1_host(ssl, cName) == 1
                && SSL_ctrl(ssl, SSL_CTRL_SET_TLSEXT_HOSTNAME, Int(TLSEXT_NAMETYPE_host_name), UnsafeMutableRawPointer(mutating: cName)) == 1
        }
        guard accepted else {
            throw RedisError(
                code: .invalidConfiguration,
                reason: "cannot connect to Redis at \(url.address) over TLS: '\(name)' cannot be checked against a certificate (redis.ssl.server.name or the URL's host)",
                isRetriable: false, breaksConnection: true)
        }
    }

    private func handshakeFailure(
        _ result: Int32, errno savedErrno: Int32, settings: RedisTLSSettings, name: String, url: RedisURL, timeout: Duration
    ) -> RedisError {
        let prefix = "cannot connect to Redis at \(url.address) over TLS"
        let verification = SSL_get_verify_result(ssl)
        if verification != X509_V_OK {
            let why = String(cString: X509_verify_cert_error_string(verification))
            let trusted = settings.caFile.map { "the CA file \($0)" } ?? "the system CA store"
            return RedisError(
                code: .tlsCertificateRejected,
                reason: "\(prefix): its certificate failed verification: \(why) (trusting \(trusted), expecting the name \(name))",
                isRetriable: false, breaksConnection: true)
        }
        switch failure(result, errno: savedErrno) {
        case .timedOut:
            // A plain-text Redis waits for the end of a line that the TLS hello may never contain.
            return RedisError(
                code: .timeout, reason: "\(prefix): no TLS handshake within \(timeout) (is TLS enabled on that port?)", isRetriable: true,
                breaksConnection: true)
        case .closed:
            return RedisError(
                code: .tlsHandshakeFailed, reason: "\(prefix): the server closed the connection during the TLS handshake (is TLS enabled on that port?)",
                isRetriable: true, breaksConnection: true)
        case .failed(let detail):
            // A plain-text server answers a TLS hello with a Redis error line, which OpenSSL reads as a bad record.
            let plainHint = ["wrong version number", "packet length too long", "record layer failure"].contains { detail.contains($0) }
                ? " (is TLS enabled on that port?)" : ""
            return RedisError(
                code: .tlsHandshakeFailed, reason: "\(prefix): the TLS handshake failed: \(detail)\(plainHint)",
                isRetriable: true, breaksConnection: true)
        }
    }

    /// What a failed `SSL_read`/`SSL_write`/`SSL_connect` returning `result` means. Call right after it.
    private func failure(_ result: Int32, errno savedErrno: Int32) -> Failure {
        switch SSL_get_error(ssl, result) {
        case SSL_ERROR_WANT_READ, SSL_ERROR_WANT_WRITE:
            return .timedOut
        case SSL_ERROR_ZERO_RETURN:
            return .closed
        case SSL_ERROR_SYSCALL:
            if savedErrno == EAGAIN || savedErrno == EWOULDBLOCK { return .timedOut }
            let queued = Self.errorQueueText()
            if savedErrno == 0 { return queued.isEmpty ? .closed : .failed(queued) }
            return .failed(String(cString: strerror(savedErrno)))
        default:
            // OpenSSL 3 reports a peer that closed without close_notify as an error; for Redis it is a close.
            if ERR_GET_REASON(ERR_peek_error()) == SSL_R_UNEXPECTED_EOF_WHILE_READING {
                ERR_clear_error()
                return .closed
            }
            let queued = Self.errorQueueText()
            return .failed(queued.isEmpty ? "unknown TLS error" : queued)
        }
    }

    /// OpenSSL's queued errors as text (reasons, oldest first, without repeats), emptying the queue.
    static func errorQueueText() -> String {
        var reasons: [String] = []
        while case let code = ERR_get_error(), code != 0 {
            let text: String
            if let reason = ERR_reason_error_string(code) {
                text = String(cString: reason)
            } else {
                var buffer = [CChar](repeating: 0, count: 256)
                ERR_error_string_n(code, &buffer, buffer.count)
                text = String(decoding: buffer.prefix { $0 != 0 }.map { UInt8(bitPattern: $0) }, as: UTF8.self)
            }
            if !reasons.contains(text) { reasons.append(text) }
        }
        return reasons.joined(separator: ": ")
    }

    private static func isIPAddress(_ text: String) -> Bool {
        var address = in6_addr()
        return inet_pton(AF_INET, text, &address) == 1 || inet_pton(AF_INET6, text, &address) == 1
    }
}
