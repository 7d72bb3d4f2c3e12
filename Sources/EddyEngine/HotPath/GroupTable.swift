/// The groups of one view and their aggregate states, with the set of groups changed since the last
/// checkpoint.
///
/// Groups are numbered from 0 in order of creation and never removed (the views are append-only), so
/// a group number stays valid for the table's life. Each group's key and state share one entry of a flat
/// arena, under an open-addressing index whose slots carry a hash fingerprint (see `GroupState`).
///
/// Memory per group, in the table (`GroupState` has the formula): about 1.1 × 24 bytes plus 1.25 × the entry
/// (8 + 8 × state words + the encoded key rounded up to 8) at a million groups (up to 1.5 × the entry just
/// after the arena grew). State words: 1 for `COUNT`, 2 for MIN / MAX and a Double `SUM` / `AVG`, 3 for an
/// integer `SUM` / `AVG`. A string MIN / MAX adds a heap array (its bytes and about 48 more), DISTINCT 45 to 90
/// bytes per distinct value beyond the value's bytes (its `ByteSetTable` entry, index slots and chain link).
/// So `COUNT(*) … GROUP BY` a 25-character text column is about 86 bytes a group. (The process keeps more per
/// group outside the table: LMDB's pages and the sink's pending keys; the README's keys curve measures the whole.)
///
/// Semantics (PostgreSQL / RisingWave):
/// - A NULL GROUP BY value is a group of its own. `COUNT(*)` counts rows, `COUNT(col)` non-NULL
///   values, `COUNT(DISTINCT col)` distinct non-NULL values exactly (the state holds the set).
/// - `SUM` / `AVG` / `MIN` / `MAX` ignore NULLs and are NULL when a group has no non-NULL value.
/// - `SUM` of an INT column adds exactly in 128 bits (no overflow in practice: it would take 2^64
///   maximal values); the result is `.int64` while it fits Int64 and `.double` (the nearest) beyond,
///   where PostgreSQL would answer a NUMERIC. `SUM` of DOUBLE / DECIMAL is a Double sum.
/// - `AVG` is a Double (`.double`), from the exact integer sum for INT columns.
/// - `MIN` / `MAX` compare strings by their UTF-8 bytes, numbers and times numerically, `false` below
///   `true`; the result has the column's value kind (times as `.int64`).
/// - `DISTINCT` applies to every function (`SUM(DISTINCT x)` adds each distinct value once). Doubles
///   are distinct by value (`-0` equals `0`).
public struct GroupTable: Sendable {
    public let schema: RowSchema
    public let groupBy: [Int]
    public let aggregates: [AggregateSpec]

    let keyKinds: [ColumnKind]
    let plan: [CompiledAggregate]
    let wordsPerGroup: Int
    /// Whether rows may wait for their lookup (`accumulateDeferred`): every aggregate folds a number.
    let defersLookups: Bool
    /// Rows wait only once the table has this many groups: below, its index and entries stay in the core's
    /// caches (16,384 groups of 28-byte keys are about 1 MB of the 2 MB L2 here) and waiting would only add
    /// instructions (about 6% a message at 5 groups). The group count never falls, so no row waits below it.
    var defersLookupsFromGroups = 16_384
    /// Seeds the in-memory hash, so that the table's layout cannot be predicted from outside.
    let seed: UInt64
    /// Owns the keys, state words and dirty set (copy-on-write by hand: see `uniqueState()`); `state`
    /// points into it.
    var storage: GroupStorage
    var statePointer: OwnedPointer<GroupState>
    /// MIN / MAX values of string columns; a state word holds the index + 1.
    var stringValues: [[UInt8]] = []
    var distinctSets: [DistinctSet]
    /// Storage keys of groups whose key is too long for LMDB, both ways.
    var longStorageKeys: [Int: [UInt8]] = [:]
    var longKeyOwners: [[UInt8]: Int] = [:]
    var distinctScratch: [UInt8] = []

    /// Checks that the table can aggregate `aggregates` grouped by `groupBy` over `schema`; the engine
    /// calls this when it plans a view, and `init` requires it.
    public static func validate(schema: RowSchema, groupBy: [Int], aggregates: [AggregateSpec]) throws(EngineError) {
        _ = try compile(schema: schema, groupBy: groupBy, aggregates: aggregates)
    }

    static func compile(schema: RowSchema, groupBy: [Int], aggregates: [AggregateSpec]) throws(EngineError) -> [CompiledAggregate] {
        for column in groupBy where column < 0 || column >= schema.columns.count {
            throw EngineError(.invalidArgument, "GROUP BY column \(column) is outside the source's \(schema.columns.count) columns")
        }
        var plan: [CompiledAggregate] = []
        var distinctSets = 0
        var words = 0
        for (index, spec) in aggregates.enumerated() {
            let compiled = try CompiledAggregate.compile(spec, index: index, schema: schema, distinctSet: distinctSets, wordOffset: words)
            if compiled.distinctSet >= 0 { distinctSets += 1 }
            words += compiled.wordCount
            plan.append(compiled)
        }
        return plan
    }

    /// - Precondition: `validate(schema:groupBy:aggregates:)` does not throw.
    public init(schema: RowSchema, groupBy: [Int], aggregates: [AggregateSpec]) {
        let plan: [CompiledAggregate]
        do {
            plan = try Self.compile(schema: schema, groupBy: groupBy, aggregates: aggregates)
        } catch {
            preconditionFailure("GroupTable: \(error)")
        }
        self.schema = schema
        self.groupBy = groupBy
        self.aggregates = aggregates
        self.plan = plan
        keyKinds = groupBy.map { schema.columns[$0].kind }
        wordsPerGroup = plan.reduce(0) { $0 + $1.wordCount }
        defersLookups = plan.allSatisfy { $0.distinctSet < 0 && $0.operation != .minString && $0.operation != .maxString }
        let seed = UInt64.random(in: 0...UInt64.max)
        self.seed = seed
        storage = GroupStorage(
            stateWords: wordsPerGroup, plan: plan, groupBy: groupBy,
            singleStringColumn: groupBy.count == 1 && schema.columns[groupBy[0]].kind == .string ? groupBy[0] : -1)
        statePointer = OwnedPointer(storage.state)
        distinctSets = Array(repeating: DistinctSet(), count: plan.count { $0.distinctSet >= 0 })
    }

    /// The state for reading.
    var state: UnsafeMutablePointer<GroupState> {
        @inline(always) get { statePointer.pointer }
    }

    /// The state for changing it, copied first if another table shares it.
    @inline(always)
    mutating func uniqueState() -> UnsafeMutablePointer<GroupState> {
        if !isKnownUniquelyReferenced(&storage) {
            storage = storage.copy()
            statePointer = OwnedPointer(storage.state)
        }
        return statePointer.pointer
    }

    /// The number of groups.
    public var groupCount: Int { state.pointee.count }

    /// The number of groups changed since the last `takeDirty()`.
    public var dirtyCount: Int { state.pointee.dirtyCount }

    /// The groups changed since the last call (each once, in the order they first changed), waiting rows
    /// (`accumulateDeferred`) folded first; clears the set.
    public mutating func takeDirty() -> [Int] {
        finishPending()
        return uniqueState().pointee.takeDirty()
    }

    /// The group's LMDB key: its encoded key (see `GroupKey`), or for keys over 511 bytes a 511-byte
    /// storage key whose full key is in the group's encoded state.
    public func keyBytes(ofGroup group: Int) -> [UInt8] {
        precondition(group >= 0 && group < groupCount, "group \(group) is outside 0..<\(groupCount)")
        return longStorageKeys[group] ?? Array(state.pointee.key(group))
    }

    /// The group's GROUP BY values, in `groupBy` order.
    public func keyValues(ofGroup group: Int) throws(EngineError) -> [ScalarValue] {
        precondition(group >= 0 && group < groupCount, "group \(group) is outside 0..<\(groupCount)")
        return try GroupKey.values(of: UnsafeRawBufferPointer(state.pointee.key(group)), kinds: keyKinds)
    }

    // MARK: Aggregation

    /// Finds or creates the group of `row` (its key built in `buffers`' key buffer) and folds `row` into
    /// it, marking it dirty; false (and nothing changed) when a long key's storage key collides with
    /// another group's.
    @inline(always)
    mutating func accumulate(_ row: DecodedRow, buffers: UnsafeMutablePointer<RowBuffers>) -> Bool {
        let state = uniqueState()
        var keyLength: Int
        let single = state.pointee.singleStringColumn
        if single >= 0, row.slots[single].state == ColumnSlot.value, row.slots[single].count < 128 {
            // The usual shape (GROUP BY one text column of a short value): the key is 0x01, 0x01, the
            // length in one byte, the bytes; the key buffer starts larger than that.
            let slot = row.slots[single]
            let buffer = buffers.pointee.keyBuffer
            buffer[0] = GroupKey.plainMarker
            buffer[1] = 1
            buffer[2] = UInt8(truncatingIfNeeded: slot.count)
            GroupKey.copyBytes(from: row.stringBytes(of: slot), to: buffer + 3, count: slot.count)
            keyLength = 3 &+ slot.count
        } else {
            let columns = UnsafeBufferPointer(start: state.pointee.groupBy, count: state.pointee.groupByCount)
            buffers.pointee.reserveKeyBuffer(GroupKey.length(of: row, columns: columns))
            keyLength = GroupKey.write(row, columns: columns, to: buffers.pointee.keyBuffer)
        }
        // Read only now: `reserveKeyBuffer` may have moved the buffer.
        let key = UnsafePointer(buffers.pointee.keyBuffer)
        let hash = KeyHasher.hash(key, count: keyLength, seed: seed)
        var entry = state.pointee.findEntry(key, count: keyLength, hash: hash)
        let group: Int
        if entry < 0 {
            group = addGroup(UnsafeRawBufferPointer(start: key, count: keyLength), hash: hash)
            if group < 0 { return false }
            entry = state.pointee.entry(ofGroup: group)
        } else {
            group = state.pointee.group(atEntry: entry)
        }
        let words = state.pointee.words(atEntry: entry)
        do {
            for aggregate in UnsafeBufferPointer(start: state.pointee.plan, count: state.pointee.planCount) {
                let cell = words + aggregate.wordOffset
                if aggregate.operation == .countRows {
                    cell.pointee &+= 1
                    continue
                }
                let slot = row.slots[aggregate.column]
                guard slot.state == ColumnSlot.value else { continue }
                if aggregate.distinctSet >= 0
                    && !insertDistinct(row, slot: slot, column: aggregate.column, group: group, set: aggregate.distinctSet)
                {
                    continue
                }
                fold(aggregate.operation, slot: slot, row: row, cell: cell)
            }
        }
        state.pointee.markDirty(entry: entry)
        return true
    }

    // MARK: Batched aggregation

    /// `accumulate`, with the group's lookup and fold put off by up to `PendingLookups.capacity` rows (or until
    /// `finishPending()`) for views whose aggregates all fold numbers (no string MIN / MAX, no DISTINCT), with
    /// at least `defersLookupsFromGroups` groups, and keys up to `PendingLookups.keyStride` bytes; other rows go
    /// through `accumulate` at once, after the
    /// waiting ones. The key is built and hashed now and its index slot prefetched; the waiting rows are
    /// folded in arrival order, so the table ends as `accumulate` leaves it (dirty order included). Reading
    /// the table (its groups, dirty set or states) needs `finishPending()` first.
    @inline(always)
    mutating func accumulateDeferred(_ row: DecodedRow, buffers: UnsafeMutablePointer<RowBuffers>) -> Bool {
        let state = uniqueState()
        guard defersLookups && state.pointee.count >= defersLookupsFromGroups else { return accumulate(row, buffers: buffers) }
        if state.pointee.pending.count == PendingLookups.capacity { foldOldestPending(state) }
        let place = state.pointee.pending.place(state.pointee.pending.count)
        let key = state.pointee.pending.key(at: place)
        var keyLength: Int
        let single = state.pointee.singleStringColumn
        if single >= 0, row.slots[single].state == ColumnSlot.value, row.slots[single].count <= PendingLookups.keyStride &- 3 {
            let slot = row.slots[single]
            key[0] = GroupKey.plainMarker
            key[1] = 1
            key[2] = UInt8(truncatingIfNeeded: slot.count)
            GroupKey.copyBytes(from: row.stringBytes(of: slot), to: key + 3, count: slot.count)
            keyLength = 3 &+ slot.count
        } else {
            let columns = UnsafeBufferPointer(start: state.pointee.groupBy, count: state.pointee.groupByCount)
            keyLength = GroupKey.length(of: row, columns: columns)
            guard keyLength <= PendingLookups.keyStride else {
                finishPending()
                return accumulate(row, buffers: buffers)
            }
            keyLength = GroupKey.write(row, columns: columns, to: key)
        }
        let hash = KeyHasher.hash(key, count: keyLength, seed: seed)
        state.pointee.pending.keyLengths[place] = keyLength
        state.pointee.pending.hashes[place] = hash
        let arguments = state.pointee.pending.arguments + place &* state.pointee.pending.argumentCount
        for (index, aggregate) in UnsafeBufferPointer(start: state.pointee.plan, count: state.pointee.planCount).enumerated()
        where aggregate.column >= 0 {
            arguments[index] = row.slots[aggregate.column]
        }
        state.pointee.prefetchSlot(hash: hash)
        state.pointee.pending.count &+= 1
        let ahead = state.pointee.pending.count &- 1 &- PendingLookups.prefetchDistance
        if ahead >= 0 {
            let aheadPlace = state.pointee.pending.place(ahead)
            state.pointee.prefetchEntry(
                hash: state.pointee.pending.hashes[aheadPlace], keyLength: state.pointee.pending.keyLengths[aheadPlace])
        }
        return true
    }

    /// Folds every waiting row (`accumulateDeferred`), oldest first.
    mutating func finishPending() {
        // Read first without `uniqueState()`: a table shared with a snapshot must not be copied for nothing (the
        // hot loop calls this after every batch, empty ones included).
        let count = state.pointee.pending.count
        guard count > 0 else { return }
        let state = uniqueState()
        // The rows whose entry was not prefetched yet.
        for offset in max(0, count - PendingLookups.prefetchDistance)..<count {
            let place = state.pointee.pending.place(offset)
            state.pointee.prefetchEntry(hash: state.pointee.pending.hashes[place], keyLength: state.pointee.pending.keyLengths[place])
        }
        while state.pointee.pending.count > 0 { foldOldestPending(state) }
    }

    /// Looks up (or creates) the oldest waiting row's group and folds the row into it.
    @inline(always)
    mutating func foldOldestPending(_ state: UnsafeMutablePointer<GroupState>) {
        let place = state.pointee.pending.first
        let key = UnsafePointer(state.pointee.pending.key(at: place))
        let keyLength = state.pointee.pending.keyLengths[place]
        let hash = state.pointee.pending.hashes[place]
        var entry = state.pointee.findEntry(key, count: keyLength, hash: hash)
        if entry < 0 {
            // Never -1: a waiting key is far shorter than a long key. (Two statements: `state.pointee` read before
            // the call that grows the table would see its old arenas.)
            let group = addGroup(UnsafeRawBufferPointer(start: key, count: keyLength), hash: hash)
            entry = state.pointee.entry(ofGroup: group)
        }
        let words = state.pointee.words(atEntry: entry)
        let arguments = state.pointee.pending.arguments + place &* state.pointee.pending.argumentCount
        for (index, aggregate) in UnsafeBufferPointer(start: state.pointee.plan, count: state.pointee.planCount).enumerated() {
            let cell = words + aggregate.wordOffset
            if aggregate.operation == .countRows {
                cell.pointee &+= 1
                continue
            }
            let slot = arguments[index]
            guard slot.state == ColumnSlot.value else { continue }
            foldNumber(aggregate.operation, bits: slot.bits, cell: cell)
        }
        state.pointee.markDirty(entry: entry)
        state.pointee.pending.first = state.pointee.pending.place(1)
        state.pointee.pending.count &-= 1
    }

    @inline(always)
    mutating func fold(_ operation: CompiledAggregate.Operation, slot: ColumnSlot, row: DecodedRow, cell: UnsafeMutablePointer<UInt64>) {
        switch operation {
        case .minString, .maxString:
            let count = cell[0]
            cell[0] = count &+ 1
            foldString(operation == .minString, bytes: row.stringBytes(of: slot), count: slot.count, cell: cell)
        default:
            foldNumber(operation, bits: slot.bits, cell: cell)
        }
    }

    /// Folds a value of a number, time or bool column (`bits` as in `ColumnSlot`); not for string MIN / MAX.
    @inline(always)
    func foldNumber(_ operation: CompiledAggregate.Operation, bits: UInt64, cell: UnsafeMutablePointer<UInt64>) {
        let count = cell[0]
        cell[0] = count &+ 1
        switch operation {
        case .countRows, .countValues:
            break
        case .sumInt, .averageInt:
            // 128-bit two's complement addition of the sign-extended value.
            let (low, carry) = cell[1].addingReportingOverflow(bits)
            cell[1] = low
            cell[2] = cell[2] &+ (Int64(bitPattern: bits) < 0 ? UInt64.max : 0) &+ (carry ? 1 : 0)
        case .sumDouble, .averageDouble:
            cell[1] = (Double(bitPattern: cell[1]) + Double(bitPattern: bits)).bitPattern
        case .minInt:
            if count == 0 || Int64(bitPattern: bits) < Int64(bitPattern: cell[1]) { cell[1] = bits }
        case .maxInt:
            if count == 0 || Int64(bitPattern: bits) > Int64(bitPattern: cell[1]) { cell[1] = bits }
        case .minDouble:
            if count == 0 || Double(bitPattern: bits) < Double(bitPattern: cell[1]) { cell[1] = bits }
        case .maxDouble:
            if count == 0 || Double(bitPattern: bits) > Double(bitPattern: cell[1]) { cell[1] = bits }
        case .minString, .maxString:
            preconditionFailure("a string MIN / MAX folds through foldString")
        }
    }

    @inline(never)
    mutating func foldString(_ isMin: Bool, bytes: UnsafePointer<UInt8>, count: Int, cell: UnsafeMutablePointer<UInt64>) {
        let value = UnsafeBufferPointer(start: bytes, count: count)
        let index = Int(cell[1])
        if index == 0 {
            stringValues.append(Array(value))
            cell[1] = UInt64(stringValues.count)
            return
        }
        let order = stringValues[index - 1].withUnsafeBufferPointer { Self.compareBytes(value, $0) }
        if isMin ? order < 0 : order > 0 {
            stringValues[index - 1].removeAll(keepingCapacity: true)
            stringValues[index - 1].append(contentsOf: value)
        }
    }

    /// Byte-wise (UTF-8 code point) order: negative, zero or positive.
    static func compareBytes(_ lhs: UnsafeBufferPointer<UInt8>, _ rhs: UnsafeBufferPointer<UInt8>) -> Int {
        let common = min(lhs.count, rhs.count)
        var index = 0
        while index < common {
            if lhs[index] != rhs[index] { return Int(lhs[index]) - Int(rhs[index]) }
            index += 1
        }
        return lhs.count - rhs.count
    }

    /// Creates the group of a key not in the table yet; -1 on a long-key storage collision.
    @inline(never)
    mutating func addGroup(_ key: UnsafeRawBufferPointer, hash: UInt64) -> Int {
        var storageKey: [UInt8]?
        if key.count > GroupKey.maxStorageBytes {
            let longKey = GroupKey.longStorageKey(key.assumingMemoryBound(to: UInt8.self))
            // The full key is new, so an owner of the same storage key is a different group.
            if longKeyOwners[longKey] != nil { return -1 }
            storageKey = longKey
        }
        let group = uniqueState().pointee.insert(key, hash: hash)
        for set in distinctSets.indices { distinctSets[set].heads.append(-1) }
        if let storageKey {
            longStorageKeys[group] = storageKey
            longKeyOwners[storageKey] = group
        }
        return group
    }

    /// Adds the row's value to the group's DISTINCT set; false if it was there already.
    @inline(never)
    mutating func insertDistinct(_ row: DecodedRow, slot: ColumnSlot, column: Int, group: Int, set: Int) -> Bool {
        distinctScratch.removeAll(keepingCapacity: true)
        Self.appendDistinctEntry(group: group, to: &distinctScratch)
        switch row.kinds[column] {
        case .string:
            distinctScratch.append(contentsOf: UnsafeBufferPointer(start: row.stringBytes(of: slot), count: slot.count))
        case .bool:
            distinctScratch.append(UInt8(truncatingIfNeeded: slot.bits))
        case .double, .decimal:
            Self.appendBits(GroupKey.orderedBits(double: slot.bits), to: &distinctScratch)
        case .int64, .timestamp, .timestamptz, .date:
            Self.appendBits(slot.bits, to: &distinctScratch)
        }
        return distinctScratch.withUnsafeBytes { entry in
            distinctSets[set].insert(entry, group: group, seed: seed)
        }
    }

    static func appendDistinctEntry(group: Int, to buffer: inout [UInt8]) {
        withUnsafeBytes(of: UInt32(truncatingIfNeeded: group).littleEndian) { buffer.append(contentsOf: $0) }
    }

    static func appendBits(_ bits: UInt64, to buffer: inout [UInt8]) {
        withUnsafeBytes(of: bits.littleEndian) { buffer.append(contentsOf: $0) }
    }

    // MARK: Results

    /// The SQL result of aggregate `aggregate` (an index into `aggregates`) for `group`.
    public func value(ofAggregate aggregate: Int, group: Int) -> ScalarValue {
        precondition(aggregate >= 0 && aggregate < plan.count, "aggregate \(aggregate) is outside 0..<\(plan.count)")
        precondition(group >= 0 && group < groupCount, "group \(group) is outside 0..<\(groupCount)")
        let compiled = plan[aggregate]
        let cell = state.pointee.words(of: group) + compiled.wordOffset
        let count = Int64(bitPattern: cell[0])
        switch compiled.operation {
        case .countRows, .countValues:
            return .int64(count)
        default:
            break
        }
        guard count > 0 else { return .null }
        let first = cell[1]
        switch compiled.operation {
        case .countRows, .countValues:
            preconditionFailure("handled above")
        case .sumInt:
            let sum = Self.int128(low: first, high: cell[2])
            return Int64(exactly: sum).map(ScalarValue.int64) ?? .double(Double(sum))
        case .averageInt:
            return .double(Double(Self.int128(low: first, high: cell[2])) / Double(count))
        case .sumDouble:
            return .double(Double(bitPattern: first))
        case .averageDouble:
            return .double(Double(bitPattern: first) / Double(count))
        case .minInt, .maxInt:
            return compiled.argumentKind == .bool ? .bool(first != 0) : .int64(Int64(bitPattern: first))
        case .minDouble, .maxDouble:
            return .double(Double(bitPattern: first))
        case .minString, .maxString:
            return .string(String(decoding: stringValues[Int(first) - 1], as: UTF8.self))
        }
    }

    static func int128(low: UInt64, high: UInt64) -> Int128 {
        Int128(Int64(bitPattern: high)) << 64 | Int128(low)
    }
}

/// The distinct values seen per group for one DISTINCT aggregate: entries are the group number (4 bytes,
/// little-endian) followed by the value's bytes, chained per group for encoding.
struct DistinctSet: Sendable {
    var entries = ByteSetTable(expectedCount: 64)
    /// Per group: its newest entry, or -1.
    var heads: [Int32] = []
    /// Per entry: the group's previous entry, or -1.
    var next: [Int32] = []

    /// Adds `entry` (prefixed with `group`); false if present.
    mutating func insert(_ entry: UnsafeRawBufferPointer, group: Int, seed: UInt64) -> Bool {
        let bytes = entry.assumingMemoryBound(to: UInt8.self)
        let hash = KeyHasher.hash(bytes.baseAddress.unsafelyUnwrapped, count: bytes.count, seed: seed)
        guard entries.find(bytes.baseAddress.unsafelyUnwrapped, count: bytes.count, hash: hash) < 0 else { return false }
        let index = entries.insertNew(entry, hash: hash)
        next.append(heads[group])
        heads[group] = Int32(index)
        return true
    }

    /// The group's values (without the group prefix), newest first.
    func values(ofGroup group: Int) -> [[UInt8]] {
        var values: [[UInt8]] = []
        var index = Int(heads[group])
        while index >= 0 {
            values.append(Array(entries.entry(index).dropFirst(4)))
            index = Int(next[index])
        }
        return values
    }
}
