/// One reply from Redis, copied out of hiredis's reply tree.
public enum RedisReply: Sendable, Equatable {
    /// A bulk string: raw bytes.
    case string([UInt8])
    /// A status line such as `OK` or `PONG`.
    case status(String)
    case integer(Int64)
    case array([RedisReply])
    /// A nil bulk string or nil array (a missing key).
    case null
    /// An error reply, e.g. `WRONGTYPE Operation against a key holding the wrong kind of value`. Only seen
    /// nested in arrays: a top-level error reply is thrown as a `RedisError` instead.
    case error(String)
}

extension RedisReply {
    /// The bytes of a bulk string or status line as UTF-8 text (invalid bytes repaired); `nil` for others.
    public var text: String? {
        switch self {
        case .string(let bytes): String(decoding: bytes, as: UTF8.self)
        case .status(let status): status
        default: nil
        }
    }

    /// A short rendering for error messages: kind and at most 64 characters.
    var summary: String {
        switch self {
        case .string(let bytes): "bulk \"\(String(decoding: bytes.prefix(64), as: UTF8.self))\""
        case .status(let status): "status \"\(status.prefix(64))\""
        case .integer(let value): "integer \(value)"
        case .array(let elements): "array of \(elements.count)"
        case .null: "nil"
        case .error(let message): "error \"\(message.prefix(64))\""
        }
    }
}
