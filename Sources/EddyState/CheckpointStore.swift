import Logging

#if canImport(Glibc)
import Glibc
#endif

/// The durable checkpoint store of one state directory: view state, Kafka offsets, epochs, acknowledged
/// epochs per sink, the on-disk format version and the pipeline's view fingerprints, in one LMDB environment
/// (`<directory>/data.mdb`; see `StateEncoding` for the layout).
///
/// Every checkpoint is **one** durable write transaction (`commit`), so what is stored always pairs a state
/// with exactly the offsets it was built from.
///
/// Threads: any thread may call any method. The intended use is one checkpoint thread for all writes
/// (`commit`, `recordAcknowledged`, `validatePipeline`; they are serialised anyway) and reads from anywhere.
/// Growing the map waits for reads of this process to finish. A read-only store in another process (`eddy
/// query`) may read while a daemon writes. The store closes when the last reference is released; a writable
/// store then releases its directory lock.
public final class CheckpointStore: Sendable {
    /// How to open a store.
    public struct Options: Sendable {
        /// The map size to start with, in bytes (default 64 MiB). An existing larger state keeps its size.
        public var initialMapSize: Int
        /// The largest the map may grow to when a commit does not fit (default 64 GiB). Past it `commit`
        /// throws `.mapFull` and the last checkpoint stays intact.
        public var maximumMapSize: Int
        /// Open without writing and without the directory lock (default `false`), e.g. for `eddy query`
        /// while a daemon runs.
        public var readOnly: Bool
        /// How many views the store can hold (default 126); each is an LMDB named database, and LMDB sizes
        /// every transaction and handle lookup by this number, so it is kept moderate.
        public var maximumViews: Int
        /// Where debug and trace messages go (default label `eddy.state`).
        public var logger: Logger

        public init(
            initialMapSize: Int = 64 << 20,
            maximumMapSize: Int = 64 << 30,
            readOnly: Bool = false,
            maximumViews: Int = 126,
            logger: Logger = Logger(label: "eddy.state")
        ) {
            self.initialMapSize = initialMapSize
            self.maximumMapSize = maximumMapSize
            self.readOnly = readOnly
            self.maximumViews = maximumViews
            self.logger = logger
        }
    }

    /// The state directory.
    public let directory: String
    /// Whether this store was opened read-only.
    public let isReadOnly: Bool
    private let core: StoreCore
    private let maximumMapSize: Int
    private let logger: Logger

    private init(directory: String, isReadOnly: Bool, core: StoreCore, options: Options) {
        self.directory = directory
        self.isReadOnly = isReadOnly
        self.core = core
        self.maximumMapSize = max(options.maximumMapSize, options.initialMapSize)
        self.logger = options.logger
    }

    // MARK: Opening

    /// Opens the store in `directory`.
    ///
    /// Writable (the default): creates the directory if missing, takes an exclusive lock on
    /// `<directory>/eddy.lock` (a second writer, in this process or another, gets `.directoryLocked` naming the
    /// directory and the holder's PID), and records the format version on a fresh store. Read-only: takes no
    /// lock, needs an existing checkpoint (`.noCheckpoint` otherwise), and works while a daemon writes.
    /// Both refuse a newer or unknown format (`.unsupportedFormat`).
    public static func open(directory: String, options: Options = Options()) throws(StateError) -> CheckpointStore {
        let core: StoreCore
        if options.readOnly {
            let id = try OpenDirectories.identify(directory)
            (core, _) = try OpenDirectories.core(for: id) { (registration) throws(StateError) in
                try openReadOnlyCore(directory: directory, options: options, registration: registration)
            }
        } else {
            try createDirectories(directory)
            let lock = try DirectoryLock.acquire(directory: directory)
            let id = try OpenDirectories.identify(directory)
            let (found, isShared) = try OpenDirectories.core(for: id) { (registration) throws(StateError) in
                try openWritableCore(directory: directory, options: options, lock: lock, registration: registration)
            }
            // We hold the directory lock, so a core this process already had open is a read-only one.
            guard !isShared, !found.environment.isReadOnly else {
                throw StateError(
                    .directoryLocked,
                    reason: "state directory \(directory) is already open read-only in this process; "
                        + "release that store before opening it for writing")
            }
            core = found
        }
        return CheckpointStore(directory: directory, isReadOnly: options.readOnly, core: core, options: options)
    }

    /// Things to release only after the environment is closed.
    private final class DirectoryResources: Sendable {
        let lock: DirectoryLock?
        let registration: OpenDirectories.Registration
        init(lock: DirectoryLock?, registration: OpenDirectories.Registration) {
            self.lock = lock
            self.registration = registration
        }
    }

    private static func openWritableCore(
        directory: String, options: Options, lock: DirectoryLock, registration: OpenDirectories.Registration
    ) throws(StateError) -> StoreCore {
        let environment = try LMDBEnvironment.make(
            directory: directory, mapSize: options.initialMapSize, maximumDatabases: options.maximumViews + 2,
            readOnly: false, releasedAfterClose: DirectoryResources(lock: lock, registration: registration),
            logger: options.logger)
        let (meta, offsets) = try narrowingToStateError {
            try environment.withWriteTransaction { transaction in
                guard let meta = try transaction.openDatabase(named: StateEncoding.metaDatabase, create: true),
                    let offsets = try transaction.openDatabase(named: StateEncoding.offsetsDatabase, create: true)
                else { preconditionFailure("LMDB returned no handle for a created database") }
                let stored = try transaction.withValue(meta, key: StateEncoding.formatVersionKey) { bytes in
                    bytes.map { StateEncoding.decodeUInt64($0) }
                }
                switch stored {
                case .none:
                    guard try transaction.entryCount(meta) == 0 else {
                        throw unsupportedFormat(directory, "it has no format version")
                    }
                    try StateEncoding.encode(StateEncoding.formatVersion).withUnsafeBytes { value in
                        try transaction.put(meta, key: StateEncoding.formatVersionKey, value: value)
                    }
                case .some(let version):
                    try checkFormat(version, directory: directory)
                }
                return (meta, offsets)
            }
        }
        return StoreCore(environment: environment, meta: meta, offsets: offsets)
    }

    private static func openReadOnlyCore(
        directory: String, options: Options, registration: OpenDirectories.Registration
    ) throws(StateError) -> StoreCore {
        var info = stat()
        guard stat(directory + "/data.mdb", &info) == 0 else {
            throw StateError(.noCheckpoint, reason: "no checkpoint in \(directory) (there is no data.mdb)")
        }
        let environment = try LMDBEnvironment.make(
            directory: directory, mapSize: options.initialMapSize, maximumDatabases: options.maximumViews + 2,
            readOnly: true, releasedAfterClose: DirectoryResources(lock: nil, registration: registration),
            logger: options.logger)
        guard let meta = try environment.openExistingDatabase(named: StateEncoding.metaDatabase),
            let offsets = try environment.openExistingDatabase(named: StateEncoding.offsetsDatabase)
        else {
            throw StateError(.noCheckpoint, reason: "no checkpoint in \(directory) (it holds no Eddy state)")
        }
        let core = StoreCore(environment: environment, meta: meta, offsets: offsets)
        let version = try narrowingToStateError {
            try core.withSnapshot { snapshot in
                try snapshot.withValue(meta, key: StateEncoding.formatVersionKey) { bytes in
                    bytes.map { StateEncoding.decodeUInt64($0) }
                }
            }
        }
        guard let version else { throw unsupportedFormat(directory, "it has no format version") }
        try checkFormat(version, directory: directory)
        return core
    }

    private static func checkFormat(_ version: UInt64?, directory: String) throws(StateError) {
        guard let version else { throw unsupportedFormat(directory, "its format version is unreadable") }
        guard version == StateEncoding.formatVersion else {
            throw unsupportedFormat(
                directory,
                "it uses format \(version) and this build reads format \(StateEncoding.formatVersion)"
                    + (version > StateEncoding.formatVersion ? " (written by a newer eddy?)" : ""))
        }
    }

    private static func unsupportedFormat(_ directory: String, _ why: String) -> StateError {
        StateError(
            .unsupportedFormat,
            reason: "cannot use the state in \(directory): \(why); use a matching eddy, or remove the directory "
                + "(or pass a new --state-dir) to start over")
    }

    // MARK: Pipeline

    /// What `validatePipeline` found.
    public struct PipelineValidation: Sendable {
        /// A handle per view of the pipeline that has a database (all of them, on a writable store).
        public var views: [String: ViewHandle]
        /// Views of the pipeline the store had no state for; they start empty.
        public var addedViews: [String]
        /// Views the store has state for that the pipeline no longer defines; their state is kept.
        public var droppedViews: [String]
    }

    /// Checks the pipeline's views against the ones the state was built with.
    ///
    /// - Parameters:
    ///   - fingerprints: view name → the text that identifies what the view's stored state means.
    ///   - definitions: view name → a self-contained definition (for readers such as `eddy query` that have
    ///     no pipeline file); recorded whenever it differs from the stored one. Optional.
    /// - Throws: `.pipelineChanged` naming every view whose fingerprint differs, and saying how to reset.
    /// - Returns: handles for the pipeline's views, and which views are new or dropped. On a writable store the
    ///   new views' fingerprints are recorded and their databases created (durably).
    @discardableResult
    public func validatePipeline(
        fingerprints: [String: String], definitions: [String: String] = [:]
    ) throws(StateError) -> PipelineValidation {
        let checkpoint = try loadCheckpoint()
        let stored = checkpoint.viewFingerprints
        let changed = fingerprints.keys.filter { stored[$0] != nil && stored[$0] != fingerprints[$0] }.sorted()
        let added = fingerprints.keys.filter { stored[$0] == nil }.sorted()
        let dropped = stored.keys.filter { fingerprints[$0] == nil }.sorted()
        guard changed.isEmpty else {
            let names = changed.map { "'\($0)'" }.joined(separator: ", ")
            let droppedNote = dropped.isEmpty
                ? "" : "; views no longer in the pipeline: " + dropped.map { "'\($0)'" }.joined(separator: ", ")
            throw StateError(
                .pipelineChanged,
                reason: "the definition of view \(names) changed since its state in \(directory) was built"
                    + "\(droppedNote); to start over, remove \(directory) or run with a new --state-dir")
        }
        var handles: [String: ViewHandle] = [:]
        if isReadOnly {
            for name in fingerprints.keys {
                if let database = try core.existingViewDatabase(name) { handles[name] = handle(name, database) }
            }
        } else {
            try core.writeLock.withLock { () throws(StateError) in
                try core.databaseLock.withLock { () throws(StateError) in
                    let opened = try writeGrowingMap("recording the pipeline's views") { transaction in
                        var opened: [String: LMDBDatabase] = [:]
                        for (name, fingerprint) in fingerprints {
                            let database = try core.cachedViewDatabase(name)
                                ?? transaction.openDatabase(named: StateEncoding.viewDatabaseName(name), create: true)
                            opened[name] = database
                            if stored[name] == nil {
                                try fingerprint.withUTF8Buffer { value in
                                    try transaction.put(
                                        core.meta, key: StateEncoding.fingerprintPrefix + name, value: value)
                                }
                            }
                        }
                        for (name, definition) in definitions where checkpoint.viewDefinitions[name] != definition {
                            try definition.withUTF8Buffer { value in
                                try transaction.put(core.meta, key: StateEncoding.definitionPrefix + name, value: value)
                            }
                        }
                        return opened
                    }
                    core.rememberCommittedViewDatabases(opened)
                    for (name, database) in opened { handles[name] = handle(name, database) }
                }
            }
        }
        if !added.isEmpty || !dropped.isEmpty {
            logger.debug(
                "pipeline views differ from the stored state",
                metadata: [
                    "eddy.state.dir": "\(directory)", "eddy.state.added_views": "\(added)",
                    "eddy.state.dropped_views": "\(dropped)",
                ])
        }
        return PipelineValidation(views: handles, addedViews: added, droppedViews: dropped)
    }

    /// The handle of a view that has state in this store.
    ///
    /// - Throws: `.unknownView` when the store has no database for `name`.
    public func view(named name: String) throws(StateError) -> ViewHandle {
        guard let database = try core.existingViewDatabase(name) else {
            throw StateError(.unknownView, reason: "view '\(name)' has no state in \(directory)")
        }
        return handle(name, database)
    }

    private func handle(_ name: String, _ database: LMDBDatabase) -> ViewHandle {
        ViewHandle(name: name, database: database, environmentID: core.environmentID)
    }

    // MARK: Reading

    /// The last committed checkpoint, read from one snapshot. A fresh store has epoch 0 and nothing else.
    public func loadCheckpoint() throws(StateError) -> StoredCheckpoint {
        try narrowingToStateError {
            try core.withSnapshot { snapshot in
                var checkpoint = StoredCheckpoint()
                try snapshot.forEach(core.meta) { key, value in
                    let name = StateEncoding.string(key)
                    if name == StateEncoding.epochKey {
                        checkpoint.epoch = try decodeCounter(value, name)
                    } else if name.hasPrefix(StateEncoding.acknowledgedPrefix) {
                        let sink = String(name.dropFirst(StateEncoding.acknowledgedPrefix.count))
                        checkpoint.acknowledgedEpochs[sink] = try decodeCounter(value, name)
                    } else if name.hasPrefix(StateEncoding.acknowledgedOffsetsPrefix) {
                        let sink = String(name.dropFirst(StateEncoding.acknowledgedOffsetsPrefix.count))
                        guard let offsets = StateEncoding.decodeOffsets(value) else { throw corrupted("meta key '\(name)' is malformed") }
                        checkpoint.acknowledgedOffsets[sink] = offsets
                    } else if name.hasPrefix(StateEncoding.acknowledgedSlotPrefix) {
                        guard let (sink, slot) = StateEncoding.decodeAcknowledgedSlotKey(name), let progress = StateEncoding.decodeAcknowledged(value)
                        else { throw corrupted("meta key '\(name)' is malformed") }
                        checkpoint.acknowledgedSlots[sink, default: [:]][slot] = progress
                    } else if name.hasPrefix(StateEncoding.fingerprintPrefix) {
                        let view = String(name.dropFirst(StateEncoding.fingerprintPrefix.count))
                        checkpoint.viewFingerprints[view] = StateEncoding.string(value)
                    } else if name.hasPrefix(StateEncoding.sinkFingerprintPrefix) {
                        let sink = String(name.dropFirst(StateEncoding.sinkFingerprintPrefix.count))
                        checkpoint.sinkFingerprints[sink] = StateEncoding.string(value)
                    } else if name.hasPrefix(StateEncoding.definitionPrefix) {
                        let view = String(name.dropFirst(StateEncoding.definitionPrefix.count))
                        checkpoint.viewDefinitions[view] = StateEncoding.string(value)
                    }
                }
                try snapshot.forEach(core.offsets) { key, value in
                    guard let topicPartition = StateEncoding.decodeOffsetKey(key),
                        let offset = StateEncoding.decodeInt64(value)
                    else { throw corrupted("an offsets entry is malformed") }
                    checkpoint.offsets[topicPartition] = offset
                }
                return checkpoint
            }
        }
    }

    /// Calls `body` with every entry (encoded group key, encoded aggregate) of `view`, in key order, from one
    /// snapshot of the last checkpoint. The buffers are borrowed: valid only during each call.
    ///
    /// `body` must not write to the store (`commit`, `recordAcknowledged`, `validatePipeline`): a write that
    /// grows the map waits for every read of the process to end, this one included. Other reads are fine.
    /// A long iteration holds its snapshot and so keeps LMDB from reusing pages meanwhile.
    ///
    /// - Throws: `.unknownView` if the store has no state for `view`; whatever `body` throws.
    public func forEachEntry(
        view: String, _ body: (UnsafeRawBufferPointer, UnsafeRawBufferPointer) throws -> Void
    ) throws {
        try forEachEntry(view: self.view(named: view), body)
    }

    /// Calls `body` with every entry of `view` (see `forEachEntry(view:_:)` taking a name).
    public func forEachEntry(
        view: ViewHandle, _ body: (UnsafeRawBufferPointer, UnsafeRawBufferPointer) throws -> Void
    ) throws {
        precondition(view.environmentID == core.environmentID, "view handle '\(view.name)' belongs to another store")
        try core.withSnapshot { snapshot in try snapshot.forEach(view.database, body) }
    }

    /// Calls `body` with one snapshot of the last checkpoint, for point reads (`CheckpointSnapshot`); the same
    /// rules as `forEachEntry` apply (no writes from inside `body`). Resolve view handles (`view(named:)`) before:
    /// a view's database opened after the snapshot began is not valid inside it.
    public func withSnapshot<Result>(_ body: (borrowing CheckpointSnapshot) throws -> Result) throws -> Result {
        try core.withSnapshot { transaction in try body(CheckpointSnapshot(transaction: transaction, environmentID: core.environmentID)) }
    }

    /// Calls `body` with each Redis key `sink` deleted in an epoch it had not acknowledged when the last checkpoint
    /// was committed (`CheckpointWriter.putTombstones`), oldest epoch first; a key may come more than once. The
    /// buffers are borrowed: valid only during each call.
    public func forEachTombstone(sink: String, _ body: (UnsafeRawBufferPointer) throws -> Void) throws {
        let prefix = StateEncoding.tombstonesKeyPrefix(sink: sink)
        try core.withSnapshot { snapshot in
            try prefix.withUnsafeBytes { start in
                try snapshot.forEach(core.meta, from: start) { key, value in
                    guard key.starts(with: start) else { return false }
                    guard StateEncoding.tombstonesEpoch(key, prefixLength: start.count) != nil, try Tombstones.forEach(encoded: value, body) else {
                        throw corrupted("the tombstones of sink '\(sink)' are malformed")
                    }
                    return true
                }
            }
        }
    }

    /// Sizes and counts for metrics and logs, as of the last checkpoint.
    public func statistics() throws(StateError) -> StateStatistics {
        let checkpoint = try loadCheckpoint()
        var databases: [String: LMDBDatabase] = [:]
        for name in checkpoint.viewFingerprints.keys {
            if let database = try core.existingViewDatabase(name) { databases[name] = database }
        }
        let usage = core.environment.usage
        let entries = try narrowingToStateError {
            try core.withSnapshot { snapshot in try databases.mapValues { try snapshot.entryCount($0) } }
        }
        return StateStatistics(
            epoch: checkpoint.epoch, mapSize: usage.mapSize, maximumMapSize: maximumMapSize,
            pageSize: usage.pageSize, usedPages: usage.usedPages, entriesPerView: entries)
    }

    // MARK: Writing

    /// What one `commit` did.
    public struct CommitSummary: Sendable {
        /// Entries the writes closure put and deleted (in the attempt that committed).
        public var putCount: Int
        public var deleteCount: Int
        /// How many times the map grew (and the closure re-ran) before the commit fitted.
        public var mapGrowths: Int
    }

    /// Stores checkpoint `epoch` in **one** durable write transaction: the next offset of each partition in
    /// `offsets`, the new epoch, and whatever `writes` puts and deletes. Partitions not listed keep their
    /// stored offsets.
    ///
    /// If the transaction does not fit the map, it is aborted, the map doubles (up to `maximumMapSize`) and the
    /// whole commit runs again, `writes` included. If `writes` throws, nothing is stored and its error is
    /// rethrown. Call from one checkpoint thread.
    ///
    /// - Throws: `.invalidArgument` if `epoch` is not above the stored one; `.mapFull` (not retriable) when
    ///   the maximum map size is reached; `.diskFull` / `.ioError` on I/O failures. In every case the last
    ///   committed checkpoint stays intact.
    @discardableResult
    public func commit(
        epoch: UInt64,
        offsets: [(TopicPartition, Int64)],
        writes: (inout CheckpointWriter) throws -> Void
    ) throws -> CommitSummary {
        try requireWritable("commit epoch \(epoch)")
        return try core.writeLock.withLock {
            var growths = 0
            let counts = try writeGrowingMap("committing epoch \(epoch)", growths: &growths) { transaction in
                let stored = try transaction.withValue(core.meta, key: StateEncoding.epochKey) { bytes in
                    try bytes.map { try decodeCounter($0, StateEncoding.epochKey) } ?? 0
                }
                guard epoch > stored else {
                    throw StateError(
                        .invalidArgument,
                        reason: "cannot commit epoch \(epoch) in \(directory): epoch \(stored) is already stored")
                }
                var writer = CheckpointWriter(transaction: transaction, environmentID: core.environmentID, meta: core.meta)
                try writes(&writer)
                for (topicPartition, offset) in offsets {
                    try StateEncoding.offsetKey(topicPartition).withUnsafeBytes { key in
                        try StateEncoding.encode(offset).withUnsafeBytes { value in
                            try transaction.put(core.offsets, key: key, value: value)
                        }
                    }
                }
                try transaction.put(core.meta, key: StateEncoding.epochKey, value: StateEncoding.encode(epoch))
                return (writer.putCount, writer.deleteCount)
            }
            logger.trace(
                "committed checkpoint",
                metadata: [
                    "eddy.state.epoch": "\(epoch)", "eddy.state.puts": "\(counts.0)",
                    "eddy.state.deletes": "\(counts.1)",
                ])
            return CommitSummary(putCount: counts.0, deleteCount: counts.1, mapGrowths: growths)
        }
    }

    /// Records that `sink` has acknowledged `epoch`, whose checkpoint stood at `offsets` (a small durable
    /// write; the sink's fence compares Redis' marker with these offsets to notice Redis losing data). The
    /// stored value never moves backwards: an older epoch leaves it as it is.
    ///
    /// - Parameter slots: a Redis Cluster sink's per-slot record, in the same transaction: for each hash slot the
    ///   acknowledged writes touched, the progress of the last of them (each slot's marker is fenced against its
    ///   own entry). Recorded even when `epoch` is already stored (a whole view re-sent at the acknowledged epoch
    ///   touches more slots); an entry never moves backwards either.
    /// - Returns: the acknowledged epoch stored afterwards.
    /// - Throws: `.invalidArgument` if `epoch` (or a slot's epoch) was never committed.
    @discardableResult
    public func recordAcknowledged(
        sink: String, epoch: UInt64, offsets: [TopicPartition: Int64], slots: [UInt16: AcknowledgedProgress] = [:]
    ) throws(StateError) -> UInt64 {
        try requireWritable("record the acknowledged epoch of sink '\(sink)'")
        let key = StateEncoding.acknowledgedPrefix + sink
        return try core.writeLock.withLock { () throws(StateError) in
            try writeGrowingMap("recording epoch \(epoch) as acknowledged by sink '\(sink)'") { transaction in
                let committed = try transaction.withValue(core.meta, key: StateEncoding.epochKey) { bytes in
                    try bytes.map { try decodeCounter($0, StateEncoding.epochKey) } ?? 0
                }
                guard epoch <= committed, slots.values.allSatisfy({ $0.epoch <= committed }) else {
                    throw StateError(
                        .invalidArgument,
                        reason: "sink '\(sink)' cannot acknowledge epoch \(max(epoch, slots.values.map(\.epoch).max() ?? 0)) in \(directory): "
                            + "the last committed epoch is \(committed)")
                }
                for (slot, progress) in slots {
                    let slotKey = StateEncoding.acknowledgedSlotKey(sink: sink, slot: slot)
                    let stored = try transaction.withValue(core.meta, key: slotKey) { bytes in bytes.flatMap(StateEncoding.decodeAcknowledged) }
                    guard progress.epoch > stored?.epoch ?? 0 || stored == nil else { continue }
                    try transaction.put(core.meta, key: slotKey, value: StateEncoding.encodeAcknowledged(progress))
                }
                let stored = try transaction.withValue(core.meta, key: key) { bytes in
                    try bytes.map { try decodeCounter($0, key) } ?? 0
                }
                guard epoch > stored else { return stored }
                try transaction.put(core.meta, key: key, value: StateEncoding.encode(epoch))
                try transaction.put(core.meta, key: StateEncoding.acknowledgedOffsetsPrefix + sink, value: StateEncoding.encodeOffsets(offsets))
                return epoch
            }
        }
    }

    /// Records what `sink` writes to Redis. When that differs from the recorded fingerprint, the sink's
    /// acknowledgement is forgotten (in the same durable transaction), so that the whole view is written
    /// again in the new form; the fence writes it even at the offsets Redis already holds, since its marker
    /// names the output form too. A sink seen for the first time keeps its acknowledged epoch.
    ///
    /// - Returns: whether the acknowledged epoch was reset.
    @discardableResult
    public func recordSink(_ sink: String, fingerprint: String) throws(StateError) -> Bool {
        try requireWritable("record sink '\(sink)'")
        let key = StateEncoding.sinkFingerprintPrefix + sink
        return try core.writeLock.withLock { () throws(StateError) in
            try writeGrowingMap("recording sink '\(sink)'") { transaction in
                let stored = try transaction.withValue(core.meta, key: key) { bytes in bytes.map(StateEncoding.string) }
                guard stored != fingerprint else { return false }
                try fingerprint.withUTF8Buffer { value in try transaction.put(core.meta, key: key, value: value) }
                guard stored != nil else { return false }
                try transaction.put(core.meta, key: StateEncoding.acknowledgedPrefix + sink, value: StateEncoding.encode(UInt64(0)))
                try (StateEncoding.acknowledgedOffsetsPrefix + sink).withUTF8Buffer { key in try transaction.delete(core.meta, key: key) }
                // The per-slot record goes with the acknowledgement: the new form is written to every slot again.
                // (Every slot's key, present or not: a form change is rare, and 16,384 deletes take milliseconds.)
                for slot in 0...UInt16(16_383) {
                    try StateEncoding.acknowledgedSlotKey(sink: sink, slot: slot).withUTF8Buffer { key in try transaction.delete(core.meta, key: key) }
                }
                return true
            }
        }
    }

    private func requireWritable(_ what: String) throws(StateError) {
        guard !isReadOnly else {
            throw StateError(.readOnly, reason: "cannot \(what): the store in \(directory) is open read-only")
        }
    }

    /// Runs one write transaction; when it does not fit the map, grows the map and runs it again.
    /// Call with `core.writeLock` held.
    private func writeGrowingMap<Result>(
        _ operation: String, growths: inout Int, _ body: (LMDBWriteTransaction) throws -> Result
    ) throws -> Result {
        while true {
            do {
                return try core.environment.withWriteTransaction(body)
            } catch let error as StateError where error.code == .mapFull {
                try growMap(after: error, operation)
                growths += 1
            }
        }
    }

    private func writeGrowingMap<Result>(
        _ operation: String, _ body: (LMDBWriteTransaction) throws -> Result
    ) throws(StateError) -> Result {
        var growths = 0
        return try narrowingToStateError { try writeGrowingMap(operation, growths: &growths, body) }
    }

    private func growMap(after error: StateError, _ operation: String) throws(StateError) {
        let current = core.environment.mapSize
        let pageSize = max(sysconf(Int32(_SC_PAGESIZE)), 4096)
        // Round down so that the maximum itself is a valid size; it is never below the current size.
        let ceiling = max(maximumMapSize / pageSize * pageSize, current)
        guard current < ceiling else {
            throw StateError(
                .mapFull, lmdbCode: error.lmdbCode,
                reason: "\(operation) does not fit in the maximum map size of \(formatBytes(ceiling)) "
                    + "(state directory \(directory)); raise the maximum map size; the last committed "
                    + "checkpoint is intact",
                isRetriable: false)
        }
        let next = min((current * 2 + pageSize - 1) / pageSize * pageSize, ceiling)
        try core.environment.setMapSize(next)
        logger.debug(
            "grew the LMDB map",
            metadata: [
                "eddy.state.dir": "\(directory)", "eddy.state.map_size": "\(next)",
                "eddy.state.previous_map_size": "\(current)",
            ])
    }

    private func decodeCounter(_ bytes: UnsafeRawBufferPointer, _ key: String) throws(StateError) -> UInt64 {
        guard let value = StateEncoding.decodeUInt64(bytes) else { throw corrupted("meta key '\(key)' is malformed") }
        return value
    }

    private func corrupted(_ what: String) -> StateError {
        StateError(.corruptState, reason: "the state in \(directory) is damaged: \(what); \(StateError.restoreOrRebuildAdvice(directory))")
    }
}

/// The last committed checkpoint, as `CheckpointStore.loadCheckpoint()` reads it.
public struct StoredCheckpoint: Sendable, Equatable {
    /// The last committed epoch; 0 when nothing was ever committed.
    public var epoch: UInt64 = 0
    /// Sink name → the last epoch that sink acknowledged.
    public var acknowledgedEpochs: [String: UInt64] = [:]
    /// Sink name → the offsets of that epoch's checkpoint (none recorded by stores from before the progress
    /// fence, or after the sink's output changed).
    public var acknowledgedOffsets: [String: [TopicPartition: Int64]] = [:]
    /// Sink name → hash slot → the last acknowledged write that touched the slot (Redis Cluster sinks only).
    public var acknowledgedSlots: [String: [UInt16: AcknowledgedProgress]] = [:]
    /// Next offset to read, per partition.
    public var offsets: [TopicPartition: Int64] = [:]
    /// View name → the fingerprint its state was built with.
    public var viewFingerprints: [String: String] = [:]
    /// View name → the self-contained definition last recorded by `validatePipeline(definitions:)`.
    public var viewDefinitions: [String: String] = [:]
    /// Sink name → what it writes to Redis (keys, values, view output), as recorded by `recordSink`.
    public var sinkFingerprints: [String: String] = [:]

    public init() {}
}

/// Where an acknowledged write stood: its epoch and the next offset per partition of its checkpoint.
public struct AcknowledgedProgress: Sendable, Equatable {
    public var epoch: UInt64
    public var offsets: [TopicPartition: Int64]

    public init(epoch: UInt64, offsets: [TopicPartition: Int64]) {
        self.epoch = epoch
        self.offsets = offsets
    }
}

/// Sizes and counts of a store, for metrics and logs.
public struct StateStatistics: Sendable {
    /// The last committed epoch.
    public var epoch: UInt64
    /// The current map size and the largest it may grow to, in bytes.
    public var mapSize: Int
    public var maximumMapSize: Int
    /// The LMDB page size and the number of pages in use (data file high-water mark).
    public var pageSize: Int
    public var usedPages: Int
    /// Entries per view with stored state.
    public var entriesPerView: [String: Int]

    /// Bytes in use (`usedPages × pageSize`).
    public var usedBytes: Int { usedPages * pageSize }
}

func formatBytes(_ bytes: Int) -> String {
    if bytes >= 1 << 30 && bytes % (1 << 30) == 0 { return "\(bytes >> 30) GiB" }
    if bytes >= 1 << 20 && bytes % (1 << 20) == 0 { return "\(bytes >> 20) MiB" }
    return "\(bytes) bytes"
}
