/// A group's encoded state (its LMDB value), and restoring a group from a checkpoint.
///
/// Layout: version `0x01`; flags (bit 0: the key is longer than 511 bytes, and its full encoded key
/// follows as a LEB128 length and bytes); then per aggregate, in order: its operation code (a mismatch
/// means the state belongs to another view definition), the count of values taken in (LEB128), and
/// the running value: a 128-bit sum as two little-endian words (low, high), or a Double's bits, or
/// an Int64 / bool extreme (8 bytes, only when the count is not 0), or a string extreme (LEB128 length
/// and bytes, only when the count is not 0); for DISTINCT aggregates then the number of distinct values
/// and each value (LEB128 length and bytes).
extension GroupTable {
    static let stateVersion: UInt8 = 1
    static let longKeyFlag: UInt8 = 1

    /// Replaces `state` with the encoded aggregate state of `group`.
    public mutating func encodeState(ofGroup group: Int, into state: inout [UInt8]) {
        state.removeAll(keepingCapacity: true)
        appendState(ofGroup: group, to: &state)
    }

    /// Appends every dirty group's storage key (`keyBytes`) and encoded state (`encodeState`) to `delta`, in
    /// the order the groups first changed, and clears the dirty set: the barrier's hand-over. Copies bytes
    /// only; once `delta` has grown it allocates nothing (keys over 511 bytes aside). Rows still waiting for their
    /// lookup (`accumulateDeferred`) are folded first.
    mutating func takeDirty(into delta: inout BarrierDelta) {
        finishPending()
        let state = uniqueState()
        // Long keys are rare: without any, no dictionary lookup per group.
        let hasLongKeys = !longStorageKeys.isEmpty
        // Room for them all at once: grown by doubling, a catch-up epoch's delta of a million groups was copied into
        // each larger buffer, every one of its pages a fresh fault (a sixth of the hot thread's kernel samples while
        // catching up at 950K keys).
        delta.reserve(entries: state.pointee.dirtyCount, bytes: state.pointee.dirtyCount * state.pointee.averageEntryBytes)
        state.pointee.drainDirty { entry in
            let group = state.pointee.group(atEntry: entry)
            if hasLongKeys, let storageKey = longStorageKeys[group] {
                storageKey.withUnsafeBufferPointer { key in delta.append(key: key) { appendState(ofGroup: group, to: &$0) } }
            } else {
                let key = UnsafeBufferPointer(start: state.pointee.keyPointer(entry: entry), count: state.pointee.keyLength(entry: entry))
                delta.append(key: key) { appendState(ofGroup: group, atEntry: entry, longKey: false, to: &$0) }
            }
        }
    }

    /// Appends the encoded aggregate state of `group` to `state`.
    mutating func appendState(ofGroup group: Int, to state: inout [UInt8]) {
        precondition(group >= 0 && group < groupCount, "group \(group) is outside 0..<\(groupCount)")
        appendState(ofGroup: group, atEntry: self.state.pointee.entry(ofGroup: group), longKey: longStorageKeys[group] != nil, to: &state)
    }

    /// `appendState(ofGroup:to:)` for the group whose entry is `entry`, `longKey` telling whether its key is
    /// over 511 bytes.
    @inline(__always)
    private mutating func appendState(ofGroup group: Int, atEntry entry: Int, longKey: Bool, to state: inout [UInt8]) {
        state.append(Self.stateVersion)
        if longKey {
            state.append(Self.longKeyFlag)
            let key = Array(self.state.pointee.key(group))
            Self.appendVarint(key.count, to: &state)
            state.append(contentsOf: key)
        } else {
            state.append(0)
        }
        for compiled in plan {
            let cell = self.state.pointee.words(atEntry: entry) + compiled.wordOffset
            let count = cell[0]
            state.append(compiled.operation.rawValue)
            Self.appendVarint(Int(count), to: &state)
            switch compiled.operation {
            case .countRows, .countValues:
                break
            case .sumInt, .averageInt:
                Self.appendBits(cell[1], to: &state)
                Self.appendBits(cell[2], to: &state)
            case .sumDouble, .averageDouble:
                Self.appendBits(cell[1], to: &state)
            case .minInt, .maxInt, .minDouble, .maxDouble:
                if count > 0 { Self.appendBits(cell[1], to: &state) }
            case .minString, .maxString:
                if count > 0 {
                    let value = stringValues[Int(cell[1]) - 1]
                    Self.appendVarint(value.count, to: &state)
                    state.append(contentsOf: value)
                }
            }
            if compiled.distinctSet >= 0 {
                let values = distinctSets[compiled.distinctSet].values(ofGroup: group)
                Self.appendVarint(values.count, to: &state)
                for value in values {
                    Self.appendVarint(value.count, to: &state)
                    state.append(contentsOf: value)
                }
            }
        }
    }

    /// Adds a group from a checkpoint's key and state (as `keyBytes` and `encodeState` made them);
    /// marks nothing dirty. Restore into a table before applying messages, each key once.
    ///
    /// - Returns: the new group's number.
    /// - Throws: `corruptState` when the key or state cannot be decoded or does not fit this view's
    ///   GROUP BY and aggregates; `invalidArgument` when the group is already in the table.
    @discardableResult
    public mutating func restoreGroup(key: [UInt8], state: [UInt8]) throws(EngineError) -> Int {
        do {
            return try key.withUnsafeBytes { key in try state.withUnsafeBytes { state in try restoreGroup(key: key, state: state) } }
        } catch {
            throw error as! EngineError  // withUnsafeBytes rethrows untyped: only restoreGroup's errors come through
        }
    }

    /// `restoreGroup(key:state:)` reading the bytes in place (an LMDB cursor's, or a barrier delta's): nothing
    /// is allocated per group (beyond the tables' geometric growth) unless the view keeps a string MIN / MAX or
    /// a DISTINCT set, or the key is longer than 511 bytes.
    @discardableResult
    public mutating func restoreGroup(key: UnsafeRawBufferPointer, state: UnsafeRawBufferPointer) throws(EngineError) -> Int {
        var reader = ByteReader(state, what: "state of a group")
        let version = try reader.byte()
        guard version == Self.stateVersion else { throw reader.corrupt("has format version \(version), expected \(Self.stateVersion)") }
        let flags = try reader.byte()
        let fullKey: UnsafeRawBufferPointer
        switch key.first {
        case GroupKey.plainMarker?:
            guard flags == 0 else { throw reader.corrupt("has flags \(flags) for a plain key") }
            guard key.count <= GroupKey.maxStorageBytes else {
                throw EngineError(.corruptState, "group key of \(key.count) bytes is longer than \(GroupKey.maxStorageBytes)")
            }
            fullKey = key
        case GroupKey.longMarker?:
            guard flags == Self.longKeyFlag else { throw reader.corrupt("has flags \(flags) for a long key") }
            fullKey = try reader.bytes(try reader.varint())
            guard fullKey.count > GroupKey.maxStorageBytes,
                GroupKey.longStorageKey(fullKey.assumingMemoryBound(to: UInt8.self)).elementsEqual(key)
            else { throw reader.corrupt("holds a full key that does not match its storage key") }
        default:
            throw EngineError(.corruptState, "group key of \(key.count) bytes does not start with 0x01 or 0x02")
        }
        try GroupKey.decode(fullKey, kinds: keyKinds)

        // Checked first, so that a corrupt state adds no group; then read again into the new group's words.
        let aggregates = reader
        try readAggregates(&reader, into: -1)
        guard reader.isAtEnd else { throw reader.corrupt("has \(reader.remaining) bytes after its \(plan.count) aggregates") }

        let keyStart = fullKey.baseAddress.unsafelyUnwrapped.assumingMemoryBound(to: UInt8.self)
        let hash = KeyHasher.hash(keyStart, count: fullKey.count, seed: seed)
        let present = self.state.pointee.find(keyStart, count: fullKey.count, hash: hash)
        guard present < 0 else {
            throw EngineError(.invalidArgument, "group \(present) is already in the table; restore each key once, before applying messages")
        }
        let group = addGroup(fullKey, hash: hash)
        guard group >= 0 else {
            throw EngineError(.invalidArgument, "a group with the same long-key storage key is already in the table")
        }
        reader = aggregates
        try readAggregates(&reader, into: group)
        return group
    }

    /// Reads the encoded aggregates at `reader`, checking them against the plan; when `group` is not -1, into
    /// that (new) group's state words, string extremes and DISTINCT sets.
    private mutating func readAggregates(_ reader: inout ByteReader, into group: Int) throws(EngineError) {
        let words = group >= 0 ? uniqueState().pointee.words(of: group) : nil
        for (index, compiled) in plan.enumerated() {
            let operation = try reader.byte()
            guard operation == compiled.operation.rawValue else {
                throw reader.corrupt("has operation \(operation) for aggregate \(index + 1), expected \(compiled.operation.rawValue)")
            }
            let count = try reader.varint()
            let cell = words.map { $0 + compiled.wordOffset }
            cell?[0] = UInt64(count)
            switch compiled.operation {
            case .countRows, .countValues:
                break
            case .sumInt, .averageInt:
                let low = try reader.littleEndian64()
                let high = try reader.littleEndian64()
                cell?[1] = low
                cell?[2] = high
            case .sumDouble, .averageDouble:
                let bits = try reader.littleEndian64()
                cell?[1] = bits
            case .minInt, .maxInt, .minDouble, .maxDouble:
                let bits = count > 0 ? try reader.littleEndian64() : 0
                cell?[1] = bits
            case .minString, .maxString:
                cell?[1] = 0
                if count > 0 {
                    let value = try reader.bytes(try reader.varint())
                    guard GroupKey.isUTF8(value) else { throw reader.corrupt("holds a string that is not UTF-8") }
                    if let cell {
                        stringValues.append(Array(value))
                        cell[1] = UInt64(stringValues.count)
                    }
                }
            }
            if compiled.distinctSet >= 0 {
                try readDistinct(&reader, count: count, of: compiled, into: group)
            }
        }
    }

    /// Reads a DISTINCT aggregate's values (newest first), checking their sizes and that none repeats; when
    /// `group` is not -1, adds them to its set oldest first, so that the chain (newest first) reads back in the
    /// encoded order.
    private mutating func readDistinct(
        _ reader: inout ByteReader, count: Int, of compiled: CompiledAggregate, into group: Int
    ) throws(EngineError) {
        let distinctCount = try reader.varint()
        guard distinctCount == count else {
            throw reader.corrupt("holds \(distinctCount) distinct values for a count of \(count)")
        }
        let expectedLength: Int? =
            switch compiled.argumentKind {
            case .string?: nil
            case .bool?: 1
            default: 8
            }
        var values: [UnsafeRawBufferPointer] = []
        values.reserveCapacity(distinctCount)
        for _ in 0..<distinctCount {
            let value = try reader.bytes(try reader.varint())
            if let expectedLength, value.count != expectedLength {
                throw reader.corrupt("holds a distinct value of \(value.count) bytes, expected \(expectedLength)")
            }
            values.append(value)
        }
        if group < 0 {
            var seen = Set<[UInt8]>()
            for value in values where !seen.insert(Array(value)).inserted { throw reader.corrupt("holds a distinct value twice") }
            return
        }
        for value in values.reversed() {
            distinctScratch.removeAll(keepingCapacity: true)
            Self.appendDistinctEntry(group: group, to: &distinctScratch)
            distinctScratch.append(contentsOf: value)
            _ = distinctScratch.withUnsafeBytes { distinctSets[compiled.distinctSet].insert($0, group: group, seed: seed) }
        }
    }

    static func appendVarint(_ value: Int, to buffer: inout [UInt8]) {
        var rest = UInt(bitPattern: value)
        while rest >= 0x80 {
            buffer.append(UInt8(truncatingIfNeeded: rest) | 0x80)
            rest >>= 7
        }
        buffer.append(UInt8(truncatingIfNeeded: rest))
    }
}
