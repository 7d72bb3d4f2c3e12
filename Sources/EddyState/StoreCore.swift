import Logging

#if canImport(Glibc)
import Glibc
#endif

/// Everything one open state directory has, shared by every `CheckpointStore` of this process on that
/// directory (LMDB forbids opening one environment twice in a process).
///
/// Threads: any. Writes are serialised by `writeLock`; named-database handles are opened under `databaseLock`
/// (LMDB requires `mdb_dbi_open` calls not to overlap); read transactions are pooled under `poolLock`.
final class StoreCore: @unchecked Sendable {
    let environment: LMDBEnvironment
    let meta: LMDBDatabase
    let offsets: LMDBDatabase
    let writeLock = Lock()
    let databaseLock = Lock()
    /// View databases opened so far, by view name. Guarded by `databaseLock`.
    private var viewDatabases: [String: LMDBDatabase] = [:]
    private let poolLock = Lock()
    /// One spare read transaction, renewed per read instead of reallocated. Guarded by `poolLock`.
    private var spareReadTransaction: LMDBReadTransaction?

    init(environment: LMDBEnvironment, meta: LMDBDatabase, offsets: LMDBDatabase) {
        self.environment = environment
        self.meta = meta
        self.offsets = offsets
    }

    var environmentID: ObjectIdentifier { ObjectIdentifier(environment) }

    /// Runs `body` on a snapshot of the last committed state (one read transaction, renewed then reset).
    func withSnapshot<Result>(_ body: (LMDBReadTransaction) throws -> Result) throws -> Result {
        let pooled = poolLock.withLock { () -> LMDBReadTransaction? in
            defer { spareReadTransaction = nil }
            return spareReadTransaction
        }
        // A second concurrent reader gets its own transaction; only one is kept for reuse.
        let transaction = try pooled ?? environment.makeReadTransaction()
        defer {
            poolLock.withLock {
                if spareReadTransaction == nil { spareReadTransaction = transaction }
            }
        }
        return try environment.withSnapshot(transaction, body)
    }

    /// The cached handle of `view`'s database, opening an existing one if needed; `nil` if it does not exist.
    func existingViewDatabase(_ view: String) throws(StateError) -> LMDBDatabase? {
        try databaseLock.withLock { () throws(StateError) -> LMDBDatabase? in
            if let database = viewDatabases[view] { return database }
            let database = try environment.openExistingDatabase(named: StateEncoding.viewDatabaseName(view))
            if let database { viewDatabases[view] = database }
            return database
        }
    }

    /// Records handles opened by a write transaction that has committed. Call with `databaseLock` held.
    func rememberCommittedViewDatabases(_ databases: [String: LMDBDatabase]) {
        viewDatabases.merge(databases) { _, new in new }
    }

    /// A cached handle, without opening anything. Call with `databaseLock` held.
    func cachedViewDatabase(_ view: String) -> LMDBDatabase? { viewDatabases[view] }
}

/// The state directories open in this process, so that a read-only open of a directory this process already
/// has open shares its environment instead of opening LMDB twice.
enum OpenDirectories {
    struct DirectoryID: Hashable {
        var device: UInt64
        var inode: UInt64
    }

    private struct Entry {
        weak var core: StoreCore?
        /// Identifies the registration that owns the entry, so that a stale one never removes a newer one.
        var token: ObjectIdentifier
    }

    /// Removes its directory's entry when released, which happens after the environment is closed.
    final class Registration: Sendable {
        let id: DirectoryID
        init(id: DirectoryID) { self.id = id }
        deinit {
            let token = ObjectIdentifier(self)
            OpenDirectories.lock.withLock {
                if OpenDirectories.entries[id]?.token == token { OpenDirectories.entries[id] = nil }
            }
        }
    }

    private static let lock = Lock()
    nonisolated(unsafe) private static var entries: [DirectoryID: Entry] = [:]

    static func identify(_ directory: String) throws(StateError) -> DirectoryID {
        var info = stat()
        guard stat(directory, &info) == 0 else {
            let code = errno
            throw StateError(
                code == ENOENT ? .noCheckpoint : .directoryUnavailable, lmdbCode: code,
                reason: "cannot open the state directory \(directory): \(String(cString: strerror(code)))")
        }
        return DirectoryID(device: UInt64(info.st_dev), inode: UInt64(info.st_ino))
    }

    private enum Decision {
        case reuse(StoreCore)
        case wait
        case create(Registration)
    }

    /// Returns the core already open for `id`, or creates one with `make` (given the registration it must keep
    /// alive until its environment is closed). Waits while another thread is opening or closing that directory.
    static func core(
        for id: DirectoryID, make: (Registration) throws(StateError) -> StoreCore
    ) throws(StateError) -> (core: StoreCore, isShared: Bool) {
        while true {
            let decision = lock.withLock { () -> Decision in
                if let entry = entries[id] {
                    if let core = entry.core { return .reuse(core) }
                    return .wait
                }
                let registration = Registration(id: id)
                entries[id] = Entry(core: nil, token: ObjectIdentifier(registration))
                return .create(registration)
            }
            switch decision {
            case .reuse(let core):
                return (core, true)
            case .wait:
                sched_yield()
            case .create(let registration):
                // On failure the registration is released with everything else and removes the placeholder.
                let core = try make(registration)
                lock.withLock { entries[id]?.core = core }
                return (core, false)
            }
        }
    }
}
