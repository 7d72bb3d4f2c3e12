/// A view's database in a `CheckpointStore`, resolved once by name (`CheckpointStore.view(named:)` or
/// `validatePipeline`) so that per-entry writes do no lookup by string.
public struct ViewHandle: Hashable, Sendable, CustomStringConvertible {
    /// The view's name, as in the pipeline.
    public let name: String
    let database: LMDBDatabase
    /// Which open environment the handle belongs to: a handle is meaningless in another one.
    let environmentID: ObjectIdentifier

    public var description: String { name }
}

/// Reads view entries from one snapshot of the last checkpoint (`CheckpointStore.withSnapshot`); valid only
/// inside the closure it is passed to.
public struct CheckpointSnapshot: ~Copyable {
    let transaction: LMDBReadTransaction
    let environmentID: ObjectIdentifier

    /// Calls `body` with the value stored under `key` in `view` (borrowed: valid only during the call), or nil.
    public func withValue<Result>(
        view: ViewHandle, key: UnsafeRawBufferPointer, _ body: (UnsafeRawBufferPointer?) throws -> Result
    ) throws -> Result {
        precondition(view.environmentID == environmentID, "view handle '\(view.name)' belongs to another store")
        return try transaction.withValue(view.database, key: key, body)
    }

    /// Calls `body` with every entry of `view` in key order (buffers borrowed, as `withValue`'s).
    public func forEachEntry(view: ViewHandle, _ body: (UnsafeRawBufferPointer, UnsafeRawBufferPointer) throws -> Void) throws {
        precondition(view.environmentID == environmentID, "view handle '\(view.name)' belongs to another store")
        try transaction.forEach(view.database, body)
    }
}

/// Puts and deletes view entries inside one checkpoint's write transaction (`CheckpointStore.commit`).
///
/// Valid only inside the `writes` closure it is passed to; the closure may be run more than once (after the
/// map grows), so it must produce the same writes each time. Buffers are copied into the store on each call.
public struct CheckpointWriter: ~Copyable {
    private let transaction: LMDBWriteTransaction
    private let environmentID: ObjectIdentifier
    /// The store's own database: sinks' tombstones and acknowledgements.
    private let meta: LMDBDatabase
    /// Entries put and deleted so far, for logs and tests.
    public private(set) var putCount = 0
    public private(set) var deleteCount = 0

    init(transaction: LMDBWriteTransaction, environmentID: ObjectIdentifier, meta: LMDBDatabase) {
        self.transaction = transaction
        self.environmentID = environmentID
        self.meta = meta
    }

    /// Keeps `tombstones`, the Redis keys `sink` deletes in this checkpoint (`epoch`), until the sink has
    /// acknowledged the epoch (`pruneTombstones`). Empty tombstones write nothing.
    public mutating func putTombstones(_ tombstones: Tombstones, sink: String, epoch: UInt64) throws(StateError) {
        guard !tombstones.isEmpty else { return }
        let key = StateEncoding.tombstonesKey(sink: sink, epoch: epoch)
        try key.withUnsafeBytes { keyBytes in
            tombstones.bytes.withUnsafeBytes { valueBytes in
                Result { () throws(StateError) in try transaction.put(meta, key: keyBytes, value: valueBytes) }
            }
        }.get()
    }

    /// Drops the tombstones of `sink` from the epochs it has acknowledged, as stored in this transaction (Redis
    /// holds those deletes). Returns how many epochs' tombstones were dropped.
    @discardableResult
    public mutating func pruneTombstones(sink: String) throws(StateError) -> Int {
        let acknowledgedKey = StateEncoding.acknowledgedPrefix + sink
        let acknowledged = try narrowingToStateError {
            try transaction.withValue(meta, key: acknowledgedKey) { bytes in bytes.flatMap(StateEncoding.decodeUInt64) ?? 0 }
        }
        guard acknowledged > 0 else { return 0 }
        let prefix = StateEncoding.tombstonesKeyPrefix(sink: sink)
        return try prefix.withUnsafeBytes { start in
            Result { () throws(StateError) in
                try transaction.deleteEntries(meta, from: start) { key in
                    guard key.starts(with: start), let epoch = StateEncoding.tombstonesEpoch(key, prefixLength: start.count) else { return false }
                    return epoch <= acknowledged
                }
            }
        }.get()
    }

    /// Stores `value` under `key` in `view`, replacing any previous value. Keys are 1...511 bytes.
    public mutating func put(view: ViewHandle, key: UnsafeRawBufferPointer, value: UnsafeRawBufferPointer)
        throws(StateError)
    {
        precondition(view.environmentID == environmentID, "view handle '\(view.name)' belongs to another store")
        try transaction.put(view.database, key: key, value: value)
        putCount += 1
    }

    /// Stores `value` under `key` in `view` (array convenience).
    public mutating func put(view: ViewHandle, key: [UInt8], value: [UInt8]) throws(StateError) {
        // withUnsafeBytes rethrows untyped errors: carry ours out as a Result.
        try key.withUnsafeBytes { keyBytes in
            value.withUnsafeBytes { valueBytes in
                Result { () throws(StateError) in try put(view: view, key: keyBytes, value: valueBytes) }
            }
        }.get()
    }

    /// Removes `key` from `view`; a key that is not there is not an error.
    public mutating func delete(view: ViewHandle, key: UnsafeRawBufferPointer) throws(StateError) {
        precondition(view.environmentID == environmentID, "view handle '\(view.name)' belongs to another store")
        try transaction.delete(view.database, key: key)
        deleteCount += 1
    }

    /// Removes `key` from `view` (array convenience).
    public mutating func delete(view: ViewHandle, key: [UInt8]) throws(StateError) {
        try key.withUnsafeBytes { keyBytes in
            Result { () throws(StateError) in try delete(view: view, key: keyBytes) }
        }.get()
    }
}
