import CLMDB
import Logging

#if canImport(Glibc)
import Glibc
#endif

/// A named LMDB database inside one environment (an `MDB_dbi`, valid for the environment's lifetime).
struct LMDBDatabase: Hashable, Sendable {
    let rawValue: UInt32
}

/// Owns one LMDB environment (`MDB_env`): the memory map of `<directory>/data.mdb` and its lock file.
///
/// Ownership: created by `make`, closed by `deinit` (`mdb_env_close`), which runs after every transaction
/// object has been released (they keep the environment alive). Never open two of these on one directory in
/// one process (LMDB's POSIX locks are per process); `CheckpointStore` shares one per directory.
///
/// Threads: any thread may call any method. The environment is opened with `MDB_NOTLS`, so read transactions
/// are not tied to the thread that began them. Growing the map (`setMapSize`) needs every transaction of the
/// process finished; a readers-writer lock enforces it: transactions hold it shared, growth holds it exclusive.
/// A read-only reader in another process is unaffected (it adopts the new size on its next read).
final class LMDBEnvironment: @unchecked Sendable {
    private let handle: OpaquePointer
    private let remapLock: UnsafeMutablePointer<pthread_rwlock_t>
    /// The state directory, for error messages.
    let path: String
    let isReadOnly: Bool
    /// Released after `mdb_env_close` (properties are destroyed after `deinit` runs), so a directory lock held
    /// here outlives the open environment.
    private let releasedAfterClose: AnyObject?

    private init(handle: OpaquePointer, path: String, isReadOnly: Bool, releasedAfterClose: AnyObject?) {
        self.handle = handle
        self.path = path
        self.isReadOnly = isReadOnly
        self.releasedAfterClose = releasedAfterClose
        remapLock = .allocate(capacity: 1)
        pthread_rwlock_init(remapLock, nil)
    }

    /// Opens (and, when writable, creates) the environment in `directory` with durable commits.
    ///
    /// - Parameters:
    ///   - mapSize: the map size to ask for; an existing larger file keeps its larger size.
    ///   - maximumDatabases: how many named databases may exist (`mdb_env_set_maxdbs`).
    ///   - releasedAfterClose: an object to keep alive until the environment is closed (the directory lock).
    /// - Returns: the environment, after `mdb_reader_check` has cleared reader slots of dead processes.
    static func make(
        directory: String,
        mapSize: Int,
        maximumDatabases: Int,
        readOnly: Bool,
        releasedAfterClose: AnyObject?,
        logger: Logger
    ) throws(StateError) -> LMDBEnvironment {
        var envPointer: OpaquePointer?
        var rc = mdb_env_create(&envPointer)
        guard rc == 0, let envPointer else { throw .lmdb(rc, "creating the LMDB environment", path: directory) }
        // From here on `environment.deinit` closes the handle, whatever fails below.
        let environment = LMDBEnvironment(
            handle: envPointer, path: directory, isReadOnly: readOnly, releasedAfterClose: releasedAfterClose)
        rc = mdb_env_set_maxdbs(envPointer, MDB_dbi(maximumDatabases))
        guard rc == 0 else { throw .lmdb(rc, "setting the number of databases", path: directory) }
        rc = mdb_env_set_mapsize(envPointer, mapSize)
        guard rc == 0 else { throw .lmdb(rc, "setting the map size to \(mapSize) bytes", path: directory) }
        // Before anything maps the file: a file cut short would raise SIGBUS instead of an error.
        try LMDBDataFile.check(directory: directory)
        // Durable: no MDB_NOSYNC / MDB_NOMETASYNC. MDB_NOTLS: read transactions move between threads.
        let flags = UInt32(MDB_NOTLS) | (readOnly ? UInt32(MDB_RDONLY) : 0)
        rc = mdb_env_open(envPointer, directory, flags, 0o644)
        guard rc == 0 else { throw .lmdb(rc, "opening the LMDB environment", path: directory) }
        var deadReaders: Int32 = 0
        rc = mdb_reader_check(envPointer, &deadReaders)
        guard rc == 0 else { throw .lmdb(rc, "clearing stale readers", path: directory) }
        logger.debug(
            "opened LMDB environment",
            metadata: [
                "eddy.state.dir": "\(directory)", "eddy.state.read_only": "\(readOnly)",
                "eddy.state.map_size": "\(environment.mapSize)", "eddy.state.stale_readers": "\(deadReaders)",
            ])
        return environment
    }

    deinit {
        mdb_env_close(handle)
        pthread_rwlock_destroy(remapLock)
        remapLock.deallocate()
    }

    /// The current size of the memory map, in bytes.
    var mapSize: Int {
        var info = MDB_envinfo()
        mdb_env_info(handle, &info)
        return info.me_mapsize
    }

    /// Map size, page size and pages in use, from one consistent look at the environment.
    var usage: (mapSize: Int, pageSize: Int, usedPages: Int) {
        var info = MDB_envinfo()
        mdb_env_info(handle, &info)
        var stat = MDB_stat()
        mdb_env_stat(handle, &stat)
        return (info.me_mapsize, Int(stat.ms_psize), info.me_last_pgno + 1)
    }

    /// The id of the last committed transaction (`me_last_txnid`), as the newest meta page records it.
    var lastTransactionID: Int {
        var info = MDB_envinfo()
        mdb_env_info(handle, &info)
        return info.me_last_txnid
    }

    /// Resizes the map. Waits until no transaction of this process is open, and holds them off meanwhile.
    ///
    /// - Parameter bytes: the new size; `0` adopts the size another process has grown the file to.
    func setMapSize(_ bytes: Int) throws(StateError) {
        pthread_rwlock_wrlock(remapLock)
        defer { pthread_rwlock_unlock(remapLock) }
        let rc = mdb_env_set_mapsize(handle, bytes)
        guard rc == 0 else { throw .lmdb(rc, "resizing the map to \(bytes) bytes", path: path) }
    }

    /// Runs `body` inside one write transaction: commits (durably) when `body` returns, aborts when it throws.
    ///
    /// The transaction must not escape `body`. LMDB allows one write transaction per environment at a time;
    /// a second caller blocks until the first finishes.
    func withWriteTransaction<Result>(_ body: (LMDBWriteTransaction) throws -> Result) throws -> Result {
        precondition(!isReadOnly, "write transaction on a read-only LMDB environment at \(path)")
        pthread_rwlock_rdlock(remapLock)
        defer { pthread_rwlock_unlock(remapLock) }
        var txnPointer: OpaquePointer?
        let rc = mdb_txn_begin(handle, nil, 0, &txnPointer)
        guard rc == 0, let txnPointer else { throw StateError.lmdb(rc, "beginning a write transaction", path: path) }
        let transaction = LMDBWriteTransaction(handle: txnPointer, path: path)
        do {
            let result = try body(transaction)
            try transaction.commit()
            return result
        } catch {
            transaction.abortIfOpen()
            // An LMDB failure the body wrapped or swallowed (e.g. MDB_MAP_FULL) is what the caller must act on.
            throw transaction.firstFailure ?? error
        }
    }

    /// Allocates a read transaction, left reset; use it through `withSnapshot(_:_:)`.
    func makeReadTransaction() throws(StateError) -> LMDBReadTransaction {
        var adoptedNewSize = false
        while true {
            pthread_rwlock_rdlock(remapLock)
            var txnPointer: OpaquePointer?
            let rc = mdb_txn_begin(handle, nil, UInt32(MDB_RDONLY), &txnPointer)
            if rc == MDB_MAP_RESIZED && !adoptedNewSize {
                pthread_rwlock_unlock(remapLock)
                try setMapSize(0)
                adoptedNewSize = true
                continue
            }
            defer { pthread_rwlock_unlock(remapLock) }
            guard rc == 0, let txnPointer else { throw .lmdb(rc, "beginning a read transaction", path: path) }
            mdb_txn_reset(txnPointer)
            return LMDBReadTransaction(handle: txnPointer, environment: self)
        }
    }

    /// Renews `transaction` on the latest committed state, runs `body`, and resets it again.
    ///
    /// Pointers handed out inside `body` are valid only until it returns.
    func withSnapshot<Result>(
        _ transaction: LMDBReadTransaction, _ body: (LMDBReadTransaction) throws -> Result
    ) throws -> Result {
        var adoptedNewSize = false
        while true {
            pthread_rwlock_rdlock(remapLock)
            let rc = transaction.renew()
            if rc == MDB_MAP_RESIZED && !adoptedNewSize {
                // A writer in another process grew the file past our map: adopt its size and try again.
                pthread_rwlock_unlock(remapLock)
                try setMapSize(0)
                adoptedNewSize = true
                continue
            }
            defer { pthread_rwlock_unlock(remapLock) }
            guard rc == 0 else { throw StateError.lmdb(rc, "beginning a read transaction", path: path) }
            defer { transaction.reset() }
            return try body(transaction)
        }
    }

    /// Opens an existing named database through a short read transaction that commits, so that the handle
    /// stays valid for the environment's lifetime (the read-only path: no write transaction possible).
    ///
    /// - Returns: `nil` when the database does not exist.
    func openExistingDatabase(named name: String) throws(StateError) -> LMDBDatabase? {
        var adoptedNewSize = false
        while true {
            pthread_rwlock_rdlock(remapLock)
            var txnPointer: OpaquePointer?
            var rc = mdb_txn_begin(handle, nil, UInt32(MDB_RDONLY), &txnPointer)
            if rc == MDB_MAP_RESIZED && !adoptedNewSize {
                pthread_rwlock_unlock(remapLock)
                try setMapSize(0)
                adoptedNewSize = true
                continue
            }
            defer { pthread_rwlock_unlock(remapLock) }
            guard rc == 0, let txnPointer else { throw .lmdb(rc, "beginning a read transaction", path: path) }
            var dbi: MDB_dbi = 0
            rc = mdb_dbi_open(txnPointer, name, 0, &dbi)
            if rc == MDB_NOTFOUND {
                mdb_txn_abort(txnPointer)
                return nil
            }
            guard rc == 0 else {
                mdb_txn_abort(txnPointer)
                throw .lmdb(rc, "opening database '\(name)'", path: path)
            }
            // Committing (not aborting) keeps the handle open for the environment's lifetime.
            rc = mdb_txn_commit(txnPointer)
            guard rc == 0 else { throw .lmdb(rc, "opening database '\(name)'", path: path) }
            return LMDBDatabase(rawValue: dbi)
        }
    }
}
