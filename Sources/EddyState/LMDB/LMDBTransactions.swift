import CLMDB

/// Owns one LMDB write transaction (`MDB_txn`) for the duration of `LMDBEnvironment.withWriteTransaction`.
///
/// Ownership: committed or aborted by the environment when the closure ends; the object must not escape it.
/// Threads: only the thread running the closure may call it.
final class LMDBWriteTransaction {
    private var handle: OpaquePointer?
    private let path: String
    /// The first failure LMDB reported inside this transaction. LMDB refuses to commit a transaction after a
    /// failed write; remembering the cause lets `commit` rethrow it (e.g. `MDB_MAP_FULL`) even when the
    /// caller swallowed the original error.
    private(set) var firstFailure: StateError?
    /// One cursor per database written, kept for the transaction's life (LMDB frees them when it ends): a put
    /// through a cursor that stands on the leaf page of the key searches only that page, where `mdb_put` would
    /// descend from the root every time. Keys put in order (a checkpoint's) mostly land on the cursor's page.
    private var cursors: [MDB_dbi: OpaquePointer] = [:]
    /// The database and cursor of the last put: a checkpoint puts a view's keys in a run, and looking the cursor
    /// up in `cursors` hashed the handle for every key (as much of the checkpoint thread as LMDB's put itself at
    /// a million keys).
    private var lastCursor: (database: MDB_dbi, cursor: OpaquePointer)?

    init(handle: OpaquePointer, path: String) {
        self.handle = handle
        self.path = path
    }

    deinit {
        if let handle { mdb_txn_abort(handle) }
    }

    private var openHandle: OpaquePointer {
        guard let handle else { preconditionFailure("LMDB write transaction used after it ended (\(path))") }
        return handle
    }

    private func fail(_ rc: Int32, _ operation: @autoclosure () -> String) -> StateError {
        let error = StateError.lmdb(rc, operation(), path: path)
        if firstFailure == nil { firstFailure = error }
        return error
    }

    /// Opens (or creates, with `create`) a named database. Returns `nil` when it does not exist and
    /// `create` is false. The handle becomes permanent when this transaction commits.
    func openDatabase(named name: String, create: Bool) throws(StateError) -> LMDBDatabase? {
        var dbi: MDB_dbi = 0
        let rc = mdb_dbi_open(openHandle, name, create ? UInt32(MDB_CREATE) : 0, &dbi)
        if rc == MDB_NOTFOUND && !create { return nil }
        guard rc == 0 else { throw fail(rc, "opening database '\(name)'") }
        return LMDBDatabase(rawValue: dbi)
    }

    /// Stores `value` under `key`, replacing any previous value. Both buffers are copied into the map.
    func put(_ database: LMDBDatabase, key: UnsafeRawBufferPointer, value: UnsafeRawBufferPointer)
        throws(StateError)
    {
        var keyVal = MDB_val(mv_size: key.count, mv_data: UnsafeMutableRawPointer(mutating: key.baseAddress))
        var dataVal = MDB_val(mv_size: value.count, mv_data: UnsafeMutableRawPointer(mutating: value.baseAddress))
        let rc = mdb_cursor_put(try cursor(database), &keyVal, &dataVal, 0)
        guard rc == 0 else { throw fail(rc, "writing a \(key.count)-byte key and \(value.count)-byte value") }
    }

    private func cursor(_ database: LMDBDatabase) throws(StateError) -> OpaquePointer {
        if let lastCursor, lastCursor.database == database.rawValue { return lastCursor.cursor }
        let cursor: OpaquePointer
        if let open = cursors[database.rawValue] { cursor = open } else { cursor = try openCursor(database) }
        lastCursor = (database.rawValue, cursor)
        return cursor
    }

    private func openCursor(_ database: LMDBDatabase) throws(StateError) -> OpaquePointer {
        var cursor: OpaquePointer?
        let rc = mdb_cursor_open(openHandle, database.rawValue, &cursor)
        guard rc == 0, let cursor else { throw fail(rc, "opening a write cursor") }
        cursors[database.rawValue] = cursor
        return cursor
    }

    /// Removes `key`; a missing key is not an error.
    func delete(_ database: LMDBDatabase, key: UnsafeRawBufferPointer) throws(StateError) {
        var keyVal = MDB_val(mv_size: key.count, mv_data: UnsafeMutableRawPointer(mutating: key.baseAddress))
        let rc = mdb_del(openHandle, database.rawValue, &keyVal, nil)
        guard rc == 0 || rc == MDB_NOTFOUND else { throw fail(rc, "deleting a \(key.count)-byte key") }
    }

    /// Removes the entries from the first key at or after `start`, in key order, for as long as `condition` holds
    /// for their keys (the buffer is valid only during the call). Returns how many were removed.
    func deleteEntries(
        _ database: LMDBDatabase, from start: UnsafeRawBufferPointer, while condition: (UnsafeRawBufferPointer) -> Bool
    ) throws(StateError) -> Int {
        var cursorPointer: OpaquePointer?
        var rc = mdb_cursor_open(openHandle, database.rawValue, &cursorPointer)
        guard rc == 0, let cursor = cursorPointer else { throw fail(rc, "opening a write cursor") }
        defer { mdb_cursor_close(cursor) }
        var keyVal = MDB_val(mv_size: start.count, mv_data: UnsafeMutableRawPointer(mutating: start.baseAddress))
        var dataVal = MDB_val()
        var operation = MDB_SET_RANGE
        var removed = 0
        while true {
            rc = mdb_cursor_get(cursor, &keyVal, &dataVal, operation)
            if rc == MDB_NOTFOUND { return removed }
            guard rc == 0 else { throw fail(rc, "reading entries to delete") }
            guard condition(UnsafeRawBufferPointer(start: keyVal.mv_data, count: keyVal.mv_size)) else { return removed }
            rc = mdb_cursor_del(cursor, 0)
            guard rc == 0 else { throw fail(rc, "deleting a \(keyVal.mv_size)-byte key") }
            removed += 1
            // After a delete the cursor already stands on the next entry, which MDB_NEXT then returns.
            operation = MDB_NEXT
        }
    }

    /// Calls `body` with the value stored under `key` (valid only inside `body`), or `nil` if there is none.
    func withValue<Result>(
        _ database: LMDBDatabase, key: UnsafeRawBufferPointer, _ body: (UnsafeRawBufferPointer?) throws -> Result
    ) throws -> Result {
        try lmdbGet(openHandle, database, key: key, path: path, body)
    }

    /// Number of entries in `database` as seen by this transaction.
    func entryCount(_ database: LMDBDatabase) throws(StateError) -> Int {
        try lmdbEntryCount(openHandle, database, path: path)
    }

    /// Commits durably (fsync before returning).
    func commit() throws(StateError) {
        if let firstFailure {
            abortIfOpen()
            throw firstFailure
        }
        let rc = mdb_txn_commit(openHandle)
        // mdb_txn_commit frees the transaction (and its cursors) whatever it returns.
        handle = nil
        forgetCursors()
        guard rc == 0 else { throw fail(rc, "committing a write transaction") }
    }

    func abortIfOpen() {
        if let handle { mdb_txn_abort(handle) }
        handle = nil
        forgetCursors()
    }

    private func forgetCursors() {
        cursors = [:]
        lastCursor = nil
    }
}

/// Owns one LMDB read-only transaction (`MDB_txn`), allocated once and then renewed and reset per snapshot.
///
/// Ownership: aborted in `deinit`; keeps its environment alive. Threads: one thread at a time, which the store's
/// transaction pool guarantees (hence `@unchecked Sendable`; the environment
/// uses `MDB_NOTLS`, so that thread may differ between snapshots).
final class LMDBReadTransaction: @unchecked Sendable {
    private let handle: OpaquePointer
    private let environment: LMDBEnvironment
    private var isActive = false

    init(handle: OpaquePointer, environment: LMDBEnvironment) {
        self.handle = handle
        self.environment = environment
    }

    deinit {
        mdb_txn_abort(handle)
    }

    func renew() -> Int32 {
        precondition(!isActive, "read transaction renewed while active (\(environment.path))")
        let rc = mdb_txn_renew(handle)
        isActive = rc == 0
        return rc
    }

    func reset() {
        if isActive { mdb_txn_reset(handle) }
        isActive = false
    }

    private var activeHandle: OpaquePointer {
        precondition(isActive, "read transaction used outside a snapshot (\(environment.path))")
        return handle
    }

    /// Calls `body` with the value stored under `key` (valid only inside `body`), or `nil` if there is none.
    func withValue<Result>(
        _ database: LMDBDatabase, key: UnsafeRawBufferPointer, _ body: (UnsafeRawBufferPointer?) throws -> Result
    ) throws -> Result {
        try lmdbGet(activeHandle, database, key: key, path: environment.path, body)
    }

    /// Calls `body` for every entry of `database` in key order; buffers are valid only during each call.
    func forEach(
        _ database: LMDBDatabase, _ body: (UnsafeRawBufferPointer, UnsafeRawBufferPointer) throws -> Void
    ) throws {
        try forEach(database, from: nil) { key, value in
            try body(key, value)
            return true
        }
    }

    /// Calls `body` for the entries of `database` in key order from the first key at or after `start` (nil: the
    /// first key), until `body` returns false; buffers are valid only during each call.
    func forEach(
        _ database: LMDBDatabase, from start: UnsafeRawBufferPointer?,
        _ body: (UnsafeRawBufferPointer, UnsafeRawBufferPointer) throws -> Bool
    ) throws {
        var cursorPointer: OpaquePointer?
        var rc = mdb_cursor_open(activeHandle, database.rawValue, &cursorPointer)
        guard rc == 0, let cursor = cursorPointer else {
            throw StateError.lmdb(rc, "opening a cursor", path: environment.path)
        }
        defer { mdb_cursor_close(cursor) }
        var keyVal = MDB_val(mv_size: start?.count ?? 0, mv_data: UnsafeMutableRawPointer(mutating: start?.baseAddress))
        var dataVal = MDB_val()
        var operation = start == nil ? MDB_FIRST : MDB_SET_RANGE
        while true {
            rc = mdb_cursor_get(cursor, &keyVal, &dataVal, operation)
            if rc == MDB_NOTFOUND { return }
            guard rc == 0 else { throw StateError.lmdb(rc, "reading entries", path: environment.path) }
            let goOn = try body(
                UnsafeRawBufferPointer(start: keyVal.mv_data, count: keyVal.mv_size),
                UnsafeRawBufferPointer(start: dataVal.mv_data, count: dataVal.mv_size))
            guard goOn else { return }
            operation = MDB_NEXT
        }
    }

    /// Number of entries in `database` in this snapshot.
    func entryCount(_ database: LMDBDatabase) throws(StateError) -> Int {
        try lmdbEntryCount(activeHandle, database, path: environment.path)
    }
}

private func lmdbGet<Result>(
    _ txn: OpaquePointer, _ database: LMDBDatabase, key: UnsafeRawBufferPointer, path: String,
    _ body: (UnsafeRawBufferPointer?) throws -> Result
) throws -> Result {
    var keyVal = MDB_val(mv_size: key.count, mv_data: UnsafeMutableRawPointer(mutating: key.baseAddress))
    var dataVal = MDB_val()
    let rc = mdb_get(txn, database.rawValue, &keyVal, &dataVal)
    if rc == MDB_NOTFOUND { return try body(nil) }
    guard rc == 0 else { throw StateError.lmdb(rc, "reading a key", path: path) }
    return try body(UnsafeRawBufferPointer(start: dataVal.mv_data, count: dataVal.mv_size))
}

private func lmdbEntryCount(_ txn: OpaquePointer, _ database: LMDBDatabase, path: String) throws(StateError)
    -> Int
{
    var stat = MDB_stat()
    let rc = mdb_stat(txn, database.rawValue, &stat)
    guard rc == 0 else { throw .lmdb(rc, "reading database statistics", path: path) }
    return stat.ms_entries
}

// Conveniences for the store's own small keys (meta names) and values.
extension LMDBWriteTransaction {
    func withValue<Result>(
        _ database: LMDBDatabase, key: String, _ body: (UnsafeRawBufferPointer?) throws -> Result
    ) throws -> Result {
        try key.withUTF8Buffer { keyBytes in try withValue(database, key: keyBytes, body) }
    }

    func put(_ database: LMDBDatabase, key: String, value: UnsafeRawBufferPointer) throws {
        try key.withUTF8Buffer { keyBytes in try put(database, key: keyBytes, value: value) }
    }

    func put(_ database: LMDBDatabase, key: String, value: [UInt8]) throws {
        try value.withUnsafeBytes { valueBytes in try put(database, key: key, value: valueBytes) }
    }
}

extension LMDBReadTransaction {
    func withValue<Result>(
        _ database: LMDBDatabase, key: String, _ body: (UnsafeRawBufferPointer?) throws -> Result
    ) throws -> Result {
        try key.withUTF8Buffer { keyBytes in try withValue(database, key: keyBytes, body) }
    }
}
