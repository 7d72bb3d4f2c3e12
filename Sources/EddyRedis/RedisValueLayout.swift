/// What Redis commands an epoch's pairs become (`RedisEpochWriter`): the Redis type of a row, and the expiry of
/// what is written.
public struct RedisValueLayout: Sendable, Equatable {
    public enum Kind: Sendable, Equatable {
        /// `SET key value` (`MSET`s); `DEL key` for a pair without a value.
        case string
        /// `DEL key` + `HSET key field value …`, the fields as `RedisValueLayout.hashFields` encoded them (so the
        /// hash holds exactly those fields); `DEL key` for a pair without a value.
        case hash
        /// `XADD name <id> key value` per pair (a pair without a value: an empty value), with entry IDs
        /// `<sequence>-<n>` from the write's entry sequence; skipped as a whole when the stream already holds
        /// entries of that sequence or later (`RedisEpochWriter.write`).
        case stream(name: [UInt8])
        /// `PUBLISH channel value` per pair with a value (a pair without one publishes nothing).
        case pubsub(channel: [UInt8])
    }

    public var kind: Kind
    /// Every key written (a stream: the stream) gets this TTL, in the same transaction.
    public var ttlSeconds: Int?

    public init(kind: Kind = .string, ttlSeconds: Int? = nil) {
        self.kind = kind
        self.ttlSeconds = ttlSeconds
    }

    public static let string = RedisValueLayout()

    /// A hash row's value as a pair carries it: the field count (4 bytes, little-endian) and then each field and
    /// value as RESP bulk strings, ready to follow `HSET key` on the wire.
    public static func hashFields(_ fields: [(name: String, value: String)]) -> [UInt8] {
        var encoder = RedisCommandEncoder()
        for field in fields {
            encoder.appendArgument(field.name)
            encoder.appendArgument(field.value)
        }
        let count = UInt32(fields.count)
        return [UInt8(truncatingIfNeeded: count), UInt8(truncatingIfNeeded: count >> 8), UInt8(truncatingIfNeeded: count >> 16), UInt8(truncatingIfNeeded: count >> 24)]
            + encoder.bytes
    }

    /// The field count and the encoded fields of a `hashFields` value; nil when it is not one.
    static func splitHashFields(_ value: UnsafeRawBufferPointer) -> (count: Int, fields: UnsafeRawBufferPointer)? {
        guard value.count >= 4 else { return nil }
        let count = Int(value[0]) | Int(value[1]) << 8 | Int(value[2]) << 16 | Int(value[3]) << 24
        return (count, UnsafeRawBufferPointer(rebasing: value[4...]))
    }
}
