/// The one error type of `EddyHTTP`.
///
/// `code` says what went wrong in terms a caller can act on, `systemErrno` keeps the `errno` behind a
/// socket failure when there is one, `reason` is a sentence for a human, and `isRetriable` says whether
/// the same call may succeed later without anyone changing anything.
public struct EddyHTTPError: Error, CustomStringConvertible, Sendable, Equatable {
    /// What went wrong, coarse enough to switch on.
    public enum Code: String, Sendable, Hashable {
        /// The `--http` address could not be parsed (empty, no port, bad port, unbracketed IPv6).
        case invalidBindAddress
        /// Another process listens on the requested port.
        case portInUse
        /// Binding failed for another reason (unknown host, address not on this machine, permission).
        case bindFailed
        /// The server stopped with an unexpected error after it was listening.
        case serverFailed
    }

    /// What went wrong.
    public var code: Code
    /// The `errno` behind a socket failure, if any.
    public var systemErrno: Int32?
    /// A human sentence naming what failed and where.
    public var reason: String
    /// Whether repeating the same call later, with nothing else changed, may succeed.
    public var isRetriable: Bool

    public init(_ code: Code, systemErrno: Int32? = nil, reason: String, isRetriable: Bool? = nil) {
        self.code = code
        self.systemErrno = systemErrno
        self.reason = reason
        // A taken port may be freed by its owner; a malformed address never fixes itself.
        self.isRetriable = isRetriable ?? (code == .portInUse || code == .serverFailed)
    }

    public var description: String {
        if let systemErrno {
            return "http error (\(code.rawValue), errno \(systemErrno)): \(reason)"
        }
        return "http error (\(code.rawValue)): \(reason)"
    }
}
