/// What a Redis server does when it reaches `maxmemory`, as far as it would say.
///
/// Sink keys are written without a TTL, so only `allkeys-*` policies can evict them (values would then
/// "move backwards" to absent); `volatile-*` and `noeviction` cannot. `noeviction` refuses writes instead,
/// which the sink sees as `outOfMemory` and retries.
public struct RedisMemoryPolicy: Sendable, Equatable {
    /// `maxmemory-policy`, e.g. `noeviction` or `allkeys-lru`; `nil` when unknown.
    public var policy: String?
    /// `maxmemory` in bytes, 0 meaning no limit; `nil` when unknown.
    public var maxMemoryBytes: UInt64?
    /// Why the policy is unknown (the server's answer to `CONFIG GET`: renamed, disabled, `NOPERM`, …).
    public var unavailableReason: String?

    public init(policy: String?, maxMemoryBytes: UInt64?, unavailableReason: String? = nil) {
        self.policy = policy
        self.maxMemoryBytes = maxMemoryBytes
        self.unavailableReason = unavailableReason
    }

    /// Whether the policy is known at all.
    public var isKnown: Bool { policy != nil }

    /// True for `allkeys-*` policies: Redis may evict sink keys when full. True even while `maxmemory` is
    /// 0 (no limit), since a limit can be set at run time without Eddy noticing.
    public var mayEvictSinkKeys: Bool { policy?.hasPrefix("allkeys-") ?? false }
}
