import CPlatform  // `eddy_load_le64`
import EddyDataflow

/// Decodes one JSON message into a source's columns, straight from the borrowed bytes: no Foundation,
/// no `String` per field, and no allocation once its buffers have grown to the largest message seen.
///
/// Rules (PostgreSQL / RisingWave semantics where they exist):
/// - The whole message must be one JSON object (RFC 8259) in valid UTF-8, nested at most
///   `DecoderLimits.maxDepth` deep, or it is skipped with a `SkipReason`. Unknown fields and nested
///   values are skipped but still validated.
/// - A field fills the column whose name equals its name byte for byte (after resolving escapes). If no
///   column matches exactly, a column whose name equals it ignoring ASCII case does (as RisingWave
///   matches JSON fields case-insensitively); an exact match always wins over a case-insensitive one.
///   Between equally good matches (duplicate keys), the last field wins, `null` included.
/// - Missing field or `null`: NULL. Wrong type: NULL, counted. What each kind accepts is documented on
///   `ColumnKind`; numbers are detailed on `ValueParsing`. `1.0` and `1e3` are accepted for INT
///   columns because their values are integers; `1.5` is not.
/// - Strings: every JSON escape, `\uXXXX` with surrogate pairs combined; a lone surrogate makes the
///   message `notJSON` (it has no UTF-8 form; PostgreSQL, simdjson and serde_json reject it too).
///   `\u0000` is kept as a NUL byte.
///
/// Speed: strings are scanned 16 bytes at a time; the separator-key-colon bytes of each field are
/// compared with those of the previous message (`RowBuffers.templates`) before any key is scanned;
/// timestamps in the usual form are read with word operations and the last date is cached. All of
/// it lives in raw memory reached through plain pointers, so a message costs no reference counting.
public struct RowDecoder: Sendable {
    public let schema: RowSchema
    public let limits: DecoderLimits
    /// Owns the name tables; `names` points into them.
    let tables: DecoderTables
    let names: OwnedPointer<NameTables>
    /// Owns the working memory; `buffers` points into it and is refreshed when `storage` is copied.
    var storage: RowStorage
    var buffers: OwnedPointer<RowBuffers>

    /// The columns filled from the Kafka message rather than its JSON (`INCLUDE`), by `fillMetadata`.
    let metadataColumns: [(column: Int, field: MessageField)]
    /// The `window_start` / `window_end` columns of a `TUMBLE`, filled by `fillWindows`.
    let window: WindowColumns?

    /// Where a `TUMBLE`'s columns are and how they are computed (one window per schema: its columns share one
    /// time, size and offset).
    struct WindowColumns: Sendable {
        var time: Int
        var size: Int64
        var offset: Int64
        /// `window_start`'s column, or -1.
        var start = -1
        /// `window_end`'s column, or -1.
        var end = -1
    }

    public init(schema: RowSchema, limits: DecoderLimits = DecoderLimits()) {
        self.schema = schema
        self.limits = limits
        metadataColumns = schema.columns.indices.compactMap { index in
            if case .metadata(let field) = schema.columns[index].origin { (index, field) } else { nil }
        }
        var window: WindowColumns?
        for index in schema.columns.indices {
            guard case .tumble(let time, let size, let offset, let isEnd) = schema.columns[index].origin else { continue }
            if window == nil { window = WindowColumns(time: time, size: size, offset: offset) }
            precondition(window!.time == time && window!.size == size && window!.offset == offset, "a schema with two windows")
            if isEnd { window!.end = index } else { window!.start = index }
        }
        self.window = window
        tables = DecoderTables(schema: schema)
        names = OwnedPointer(tables.names)
        storage = RowStorage(columnCount: schema.columns.count, maxDepth: limits.maxDepth)
        buffers = OwnedPointer(storage.buffers)
    }

    /// Decodes `payload` and, if it is a usable message, calls `body` with its row.
    ///
    /// - Returns: `body`'s result, or why the message is skipped.
    public mutating func decode<Result>(
        _ payload: UnsafeRawBufferPointer, _ body: (DecodedRow) -> Result
    ) -> Swift.Result<Result, SkipReason> {
        if let reason = decodeMessage(payload) { return .failure(reason) }
        fillWindows()
        return .success(body(currentRow(payload)))
    }

    /// Decodes `payload` into the slots; nil when the message is usable.
    @inline(always)
    mutating func decodeMessage(_ payload: UnsafeRawBufferPointer) -> SkipReason? {
        decodeMessage(start: payload.baseAddress, count: payload.count)
    }

    /// `decodeMessage(_:)` of the `count` bytes at `start`. The hot loop passes these rather than a buffer
    /// pointer: the buffer's `baseAddress` and `count`, inlined into it, stayed calls into the standard library
    /// (five a message). `extraScratch`: bytes to keep free after the message's own in the scratch buffer, for
    /// `fillMetadata`.
    @inline(always)
    mutating func decodeMessage(start: UnsafeRawPointer?, count: Int, extraScratch: Int = 0) -> SkipReason? {
        guard count > 0, let base = start else { return .emptyMessage }
        guard count <= limits.maxMessageBytes else { return .tooLarge }
        if !isKnownUniquelyReferenced(&storage) {
            storage = storage.copy()
            buffers = OwnedPointer(storage.buffers)
        }
        let buffers = buffers.pointer
        buffers.pointee.prepare(messageBytes: count &+ extraScratch)
        var parser = MessageParser(
            scanner: JSONScanner(bytes: base.assumingMemoryBound(to: UInt8.self), count: count),
            names: names.pointer, buffers: buffers)
        do {
            try parser.parseMessage()
        } catch {
            return error
        }
        buffers.pointee.wrongTypeCount = parser.wrongTypes
        return nil
    }

    /// The row of the message last decoded by `decodeMessage`; `payload` must be the same buffer.
    @inline(always)
    func currentRow(_ payload: UnsafeRawBufferPointer) -> DecodedRow { currentRow(start: payload.baseAddress.unsafelyUnwrapped) }

    /// The row of the message last decoded, whose bytes start at `start`.
    @inline(always)
    func currentRow(start: UnsafeRawPointer) -> DecodedRow {
        DecodedRow(
            slots: buffers.pointer.pointee.slots, kinds: names.pointer.pointee.kinds,
            payload: start.assumingMemoryBound(to: UInt8.self),
            scratch: buffers.pointer.pointee.scratch, columnCount: names.pointer.pointee.columnCount)
    }

    /// Whether the schema has `INCLUDE` columns: then each message needs `fillMetadata`.
    var readsMessageMetadata: Bool { !metadataColumns.isEmpty }

    /// Scratch bytes `fillMetadata` needs for a message with a key of `keyBytes`.
    @inline(always)
    static func metadataScratch(keyBytes: Int) -> Int { keyBytes &+ 2 * 24 }

    /// Fills the `INCLUDE` columns of the message last decoded (of `messageBytes`, decoded with
    /// `extraScratch: metadataScratch(keyBytes: key.count)`): the key's bytes and the partition and offset in
    /// decimal are written after the message's own bytes in the scratch buffer, so nothing is allocated.
    /// A timestamp of -1 (librdkafka: not available) and an absent key are NULL.
    mutating func fillMetadata(messageBytes: Int, key: UnsafeRawBufferPointer, partition: Int32, offset: Int64, timestampMilliseconds: Int64) {
        let buffers = buffers.pointer
        let scratch = buffers.pointee.scratch
        var used = messageBytes
        for (column, field) in metadataColumns {
            let slot = buffers.pointee.slots + column
            switch field {
            case .timestamp:
                guard timestampMilliseconds >= 0 else { continue }
                slot.pointee.bits = UInt64(bitPattern: timestampMilliseconds &* 1000)
            case .partition, .offset:
                let start = used
                used = Self.writeDecimal(field == .partition ? Int64(partition) : offset, into: scratch, at: used)
                slot.pointee.offset = start
                slot.pointee.count = used &- start
                slot.pointee.isInScratch = true
            case .key:
                guard let base = key.baseAddress else { continue }
                (scratch + used).initialize(from: base.assumingMemoryBound(to: UInt8.self), count: key.count)
                slot.pointee.offset = used
                slot.pointee.count = key.count
                slot.pointee.isInScratch = true
                used &+= key.count
            }
            slot.pointee.state = ColumnSlot.value
        }
    }

    /// Fills the window columns of the message last decoded, after `fillMetadata` (the window's time can be the
    /// Kafka timestamp). A NULL time (missing, `null`, of the wrong type) leaves them NULL, as RisingWave's
    /// `tumble_start(NULL)`.
    @inline(always)
    func fillWindows() {
        guard let window else { return }
        let slots = buffers.pointer.pointee.slots
        guard slots[window.time].state == ColumnSlot.value else { return }
        let start = WindowAssigner.windowStart(containing: Int64(bitPattern: slots[window.time].bits), step: window.size, offsetMicroseconds: window.offset)
        if window.start >= 0 {
            slots[window.start].bits = UInt64(bitPattern: start)
            slots[window.start].state = ColumnSlot.value
        }
        if window.end >= 0 {
            slots[window.end].bits = UInt64(bitPattern: start &+ window.size)
            slots[window.end].state = ColumnSlot.value
        }
    }

    /// Writes `value` in decimal at `scratch + position`; returns the position after it (at most 20 bytes).
    @inline(always)
    private static func writeDecimal(_ value: Int64, into scratch: UnsafeMutablePointer<UInt8>, at position: Int) -> Int {
        var magnitude = value.magnitude
        var digits = 1
        var rest = magnitude / 10
        while rest > 0 {
            digits &+= 1
            rest /= 10
        }
        var position = position
        if value < 0 {
            scratch[position] = UInt8(ascii: "-")
            position &+= 1
        }
        var index = position &+ digits
        repeat {
            index &-= 1
            scratch[index] = UInt8(ascii: "0") &+ UInt8(magnitude % 10)
            magnitude /= 10
        } while index > position
        return position &+ digits
    }

    /// How many columns of the message last decoded had a field of the wrong type.
    @inline(always)
    func wrongTypeCount() -> Int {
        buffers.pointer.pointee.wrongTypeCount
    }
}

/// A pointer into memory owned by a class instance stored beside it (the owner frees it, and copies it
/// before any shared mutation), so it is as sendable as its owner. Plain pointers keep reference
/// counting and exclusivity checks off the per-message path.
struct OwnedPointer<Pointee>: @unchecked Sendable {
    let pointer: UnsafeMutablePointer<Pointee>

    @inline(always)
    init(_ pointer: UnsafeMutablePointer<Pointee>) { self.pointer = pointer }
}

/// Owns the schema compiled for matching field names (`NameTables`); immutable after `init`, so
/// sharing it is safe.
final class DecoderTables: @unchecked Sendable {
    let names: UnsafeMutablePointer<NameTables>

    init(schema: RowSchema) {
        names = .allocate(capacity: 1)
        names.initialize(to: NameTables(schema: schema))
    }

    deinit {
        names.pointee.deallocate()
        names.deinitialize(count: 1)
        names.deallocate()
    }
}

/// The schema compiled for matching field names, in memory owned by `DecoderTables`.
struct NameTables {
    let columnCount: Int
    let kinds: UnsafeMutablePointer<ColumnKind>
    /// Column names, back to back; column `c` is `names[nameStarts[c]..<nameStarts[c] + nameLengths[c]]`.
    let names: UnsafeMutablePointer<UInt8>
    let nameStarts: UnsafeMutablePointer<Int>
    let nameLengths: UnsafeMutablePointer<Int>
    /// A name's first (up to) 8 bytes as a little-endian word, zero-padded; and the same ASCII-lowercased.
    let firstWords: UnsafeMutablePointer<UInt64>
    let foldedFirstWords: UnsafeMutablePointer<UInt64>
    /// Open-addressing tables from a name's signature to column + 1 (0: empty).
    let exactTable: UnsafeMutablePointer<Int32>
    let foldedTable: UnsafeMutablePointer<Int32>
    let tableShift: UInt64
    let tableMask: Int
    let timeNumbers: TimeNumberUnit
    let ignoresKeyCase: Bool
    /// Per column, how its JSON value is read.
    let readings: UnsafeMutablePointer<ValueReading>
    /// Nested JSON (`PathNode`): one tree per top-level field that has paths or is read other than typed; roots
    /// first. A name-table entry `columnCount + r` (after the columns' own) is root `r`, named like its field.
    let nodes: UnsafeMutablePointer<PathNode>
    let nodeCount: Int
    /// The columns each node fills, back to back (`PathNode.columnsStart`).
    let nodeColumns: UnsafeMutablePointer<Int>
    /// Field-step keys of the nodes, back to back.
    let nodeKeys: UnsafeMutablePointer<UInt8>

    init(schema: RowSchema) {
        let columns = schema.columns
        timeNumbers = schema.timeNumbers
        ignoresKeyCase = schema.ignoresKeyCase
        columnCount = columns.count
        precondition(columnCount < Int(Int32.max), "too many columns")
        let tree = PathTree(columns)
        let rootCount = tree.rootNames.count
        let entryCount = columnCount + rootCount
        kinds = .allocate(capacity: max(columnCount, 1))
        readings = .allocate(capacity: max(columnCount, 1))
        readings.initialize(from: columns.map(\.reading), count: columnCount)
        let nameBytes = columns.reduce(0) { $0 + $1.name.utf8.count } + tree.rootNames.reduce(0) { $0 + $1.utf8.count }
        names = .allocate(capacity: max(nameBytes, 1))
        nameStarts = .allocate(capacity: max(entryCount, 1))
        nameLengths = .allocate(capacity: max(entryCount, 1))
        firstWords = .allocate(capacity: max(entryCount, 1))
        foldedFirstWords = .allocate(capacity: max(entryCount, 1))
        nodeCount = tree.nodes.count
        nodes = .allocate(capacity: max(nodeCount, 1))
        nodes.initialize(from: tree.nodes, count: nodeCount)
        nodeColumns = .allocate(capacity: max(tree.columns.count, 1))
        nodeColumns.initialize(from: tree.columns, count: tree.columns.count)
        nodeKeys = .allocate(capacity: max(tree.keys.count, 1))
        nodeKeys.initialize(from: tree.keys, count: tree.keys.count)
        var tableSize = 8
        while tableSize < entryCount * 4 { tableSize *= 2 }
        tableMask = tableSize - 1
        tableShift = UInt64(64 - tableSize.trailingZeroBitCount)
        exactTable = .allocate(capacity: tableSize)
        exactTable.initialize(repeating: 0, count: tableSize)
        foldedTable = .allocate(capacity: tableSize)
        foldedTable.initialize(repeating: 0, count: tableSize)

        var offset = 0
        let entryNames = columns.map(\.name) + tree.rootNames
        for (index, entryName) in entryNames.enumerated() {
            // Entries past the columns are path roots: matched by name like a top-level field.
            let column = index < columnCount ? columns[index] : RowSchema.Column(name: entryName, kind: .string)
            if index < columnCount { (kinds + index).initialize(to: column.kind) }
            let bytes = Array(column.name.utf8)
            precondition(
                index >= columnCount || !columns[..<index].contains { $0.name == column.name }, "column \(column.name) appears twice in the schema")
            (names + offset).initialize(from: bytes, count: bytes.count)
            (nameStarts + index).initialize(to: offset)
            (nameLengths + index).initialize(to: bytes.count)
            var word: UInt64 = 0
            for (position, byte) in bytes.prefix(8).enumerated() { word |= UInt64(byte) << (8 * UInt64(position)) }
            (firstWords + index).initialize(to: word)
            (foldedFirstWords + index).initialize(to: Self.asciiLowercased(word))
            offset += bytes.count
            // Only top-level JSON fields are matched by name: columns read from one, or the root of its paths.
            guard index >= columnCount || (column.origin == .field && !tree.rootNames.contains(column.name)) else { continue }
            Self.insert(column: index, signature: Self.signature(word, length: bytes.count), into: exactTable, shift: tableShift, mask: tableMask)
            // Two names equal ignoring case: the first column is the case-insensitive match. Without
            // `ignoresKeyCase` the folded table stays empty, so nothing matches that way.
            if schema.ignoresKeyCase, !entryNames[..<index].indices.contains(where: { earlier in
                (earlier >= columnCount || (columns[earlier].origin == .field && !tree.rootNames.contains(columns[earlier].name)))
                    && Self.equalIgnoringASCIICase(Array(entryNames[earlier].utf8), bytes)
            }) {
                Self.insert(
                    column: index, signature: Self.signature(Self.asciiLowercased(word), length: bytes.count), into: foldedTable,
                    shift: tableShift, mask: tableMask)
            }
        }
    }

    func deallocate() {
        kinds.deinitialize(count: columnCount)
        kinds.deallocate()
        readings.deinitialize(count: columnCount)
        readings.deallocate()
        nodes.deallocate()
        nodeColumns.deallocate()
        nodeKeys.deallocate()
        names.deallocate()
        nameStarts.deallocate()
        nameLengths.deallocate()
        firstWords.deallocate()
        foldedFirstWords.deallocate()
        exactTable.deallocate()
        foldedTable.deallocate()
    }

    private static func insert(column: Int, signature: UInt64, into table: UnsafeMutablePointer<Int32>, shift: UInt64, mask: Int) {
        var slot = Int(truncatingIfNeeded: signature &>> shift)
        while table[slot] != 0 { slot = (slot &+ 1) & mask }
        table[slot] = Int32(column + 1)
    }

    @inline(always)
    static func signature(_ firstWord: UInt64, length: Int) -> UInt64 {
        (firstWord ^ (UInt64(truncatingIfNeeded: length) &* 0x9E37_79B9_7F4A_7C15)) &* 0xFF51_AFD7_ED55_8CCD
    }

    /// `word` with the ASCII capitals of its bytes made lowercase (SWAR).
    @inline(always)
    static func asciiLowercased(_ word: UInt64) -> UInt64 {
        let ones: UInt64 = 0x0101_0101_0101_0101
        let heptets = word & (ones &* 0x7F)
        let atLeastA = heptets &+ ones &* (0x80 - 0x41)
        let aboveZ = heptets &+ ones &* (0x80 - 0x5B)
        let capitals = atLeastA & ~aboveZ & ~word & (ones &* 0x80)
        return word | (capitals &>> 2)
    }

    static func equalIgnoringASCIICase(_ lhs: [UInt8], _ rhs: [UInt8]) -> Bool {
        lhs.count == rhs.count && zip(lhs, rhs).allSatisfy { lowercased($0) == lowercased($1) }
    }

    @inline(always)
    static func lowercased(_ byte: UInt8) -> UInt8 {
        byte >= UInt8(ascii: "A") && byte <= UInt8(ascii: "Z") ? byte | 0x20 : byte
    }

    /// The column whose name equals `key` (`firstWord`: its first bytes, zero-padded), or -1.
    @inline(always)
    func exactMatch(_ key: UnsafePointer<UInt8>, length: Int, firstWord: UInt64) -> Int {
        var slot = Int(truncatingIfNeeded: Self.signature(firstWord, length: length) &>> tableShift)
        while true {
            let entry = Int(exactTable[slot])
            if entry == 0 { return -1 }
            let column = entry &- 1
            if firstWords[column] == firstWord && nameLengths[column] == length
                && (length <= 8 || Self.equalBytes(key + 8, names + nameStarts[column] + 8, length &- 8))
            {
                return column
            }
            slot = (slot &+ 1) & tableMask
        }
    }

    /// The column whose name equals `key` ignoring ASCII case, or -1.
    @inline(never)
    func caseInsensitiveMatch(_ key: UnsafePointer<UInt8>, length: Int, firstWord: UInt64) -> Int {
        let folded = Self.asciiLowercased(firstWord)
        var slot = Int(truncatingIfNeeded: Self.signature(folded, length: length) &>> tableShift)
        while true {
            let entry = Int(foldedTable[slot])
            if entry == 0 { return -1 }
            let column = entry &- 1
            if foldedFirstWords[column] == folded && nameLengths[column] == length {
                let name = names + nameStarts[column]
                var equal = true
                for index in 8..<max(length, 8) where Self.lowercased(key[index]) != Self.lowercased(name[index]) {
                    equal = false
                    break
                }
                if equal { return column }
            }
            slot = (slot &+ 1) & tableMask
        }
    }

    @inline(always)
    static func equalBytes(_ lhs: UnsafePointer<UInt8>, _ rhs: UnsafePointer<UInt8>, _ count: Int) -> Bool {
        var index = 0
        while index &+ 8 <= count {
            let left = eddy_load_le64(lhs + index)
            let right = eddy_load_le64(rhs + index)
            if left != right { return false }
            index &+= 8
        }
        while index < count {
            if lhs[index] != rhs[index] { return false }
            index &+= 1
        }
        return true
    }
}

/// The decoder's per-message working memory, owned by `RowStorage`: column slots, the scratch buffer
/// for strings with escapes, the bit stack for skipping nested values, the group-key buffer, and what
/// it learnt of the messages' shape (field templates, the last date).
struct RowBuffers {
    let columnCount: Int
    let maxDepth: Int
    let slots: UnsafeMutablePointer<ColumnSlot>
    /// One bit per nesting level (set: object), for `JSONScanner.skipContainer`.
    let containerStack: UnsafeMutablePointer<UInt64>
    /// Decoded strings that had escapes; at least as large as the message (a decoded string is never
    /// longer than its JSON text, and strings do not overlap).
    private(set) var scratch: UnsafeMutablePointer<UInt8>
    private(set) var scratchCapacity: Int
    /// Where the aggregator builds a message's group key.
    private(set) var keyBuffer: UnsafeMutablePointer<UInt8>
    private(set) var keyBufferCapacity: Int
    /// Columns with a wrong-type field in the last message.
    var wrongTypeCount = 0

    /// Field templates: for the n-th field of a message, the exact bytes last seen from the end of the
    /// previous value (or the message start) to the start of the field's value — separator, key,
    /// colon and whitespace, all validated when learnt — with the column they named. A message whose
    /// bytes repeat them skips scanning and matching its keys; any difference falls back to the
    /// general parse (and learns the new bytes). Byte-identical text in the same place of the grammar
    /// parses the same way, so this changes no result.
    static let templateFields = 16
    let templates: UnsafeMutablePointer<FieldTemplate>

    /// The last date seen in a timestamp (`YYYY-MM-` as a word, `DD` as a half word) and its days
    /// since 1970: consecutive events mostly share their date.
    var cachedDateWord: UInt64 = 0
    var cachedDayHalfWord: UInt16 = 0
    var cachedDays: Int64 = 0
    var hasCachedDate = false

    init(columnCount: Int, maxDepth: Int) {
        self.columnCount = columnCount
        self.maxDepth = maxDepth
        slots = .allocate(capacity: max(columnCount, 1))
        slots.initialize(repeating: ColumnSlot(), count: max(columnCount, 1))
        let stackWords = maxDepth / 64 + 2
        containerStack = .allocate(capacity: stackWords)
        containerStack.initialize(repeating: 0, count: stackWords)
        scratchCapacity = 1024
        scratch = .allocate(capacity: scratchCapacity)
        keyBufferCapacity = 1024
        keyBuffer = .allocate(capacity: keyBufferCapacity)
        templates = .allocate(capacity: Self.templateFields)
        templates.initialize(repeating: FieldTemplate(), count: Self.templateFields)
    }

    func deallocate() {
        slots.deallocate()
        containerStack.deallocate()
        scratch.deallocate()
        keyBuffer.deallocate()
        templates.deallocate()
    }

    /// Clears the slots and makes the scratch buffer large enough for a message of `messageBytes`.
    @inline(always)
    mutating func prepare(messageBytes: Int) {
        if messageBytes > scratchCapacity { growScratch(messageBytes) }
        for column in 0..<columnCount {
            slots[column].state = ColumnSlot.null
            slots[column].matchQuality = 0
        }
    }

    @inline(never)
    private mutating func growScratch(_ minimum: Int) {
        scratch.deallocate()
        scratchCapacity = max(minimum, scratchCapacity * 2)
        scratch = .allocate(capacity: scratchCapacity)
    }

    /// Makes the key buffer hold at least `bytes`; its contents are not kept.
    @inline(always)
    mutating func reserveKeyBuffer(_ bytes: Int) {
        if bytes > keyBufferCapacity { growKeyBuffer(bytes) }
    }

    @inline(never)
    private mutating func growKeyBuffer(_ minimum: Int) {
        keyBuffer.deallocate()
        keyBufferCapacity = max(minimum, keyBufferCapacity * 2)
        keyBuffer = .allocate(capacity: keyBufferCapacity)
    }
}

/// One learnt field template (see `RowBuffers.templates`): up to 48 bytes as words, each with the
/// mask of the bytes that count.
struct FieldTemplate {
    static let wordCapacity = 6
    // Read as 12 consecutive words by `MessageParser.matchesTemplate`: keep them first.
    var words: (UInt64, UInt64, UInt64, UInt64, UInt64, UInt64) = (0, 0, 0, 0, 0, 0)
    var masks: (UInt64, UInt64, UInt64, UInt64, UInt64, UInt64) = (0, 0, 0, 0, 0, 0)
    /// Bytes in the template; 0: none learnt.
    var length = 0
    /// Words to compare (`length` rounded up to whole words).
    var wordCount = 0
    var column = -1
    var quality: UInt8 = 0
}

/// Owns a decoder's `RowBuffers`. Only ever mutated through a uniquely referenced owner
/// (copy-on-write in `RowDecoder`).
final class RowStorage: @unchecked Sendable {
    let buffers: UnsafeMutablePointer<RowBuffers>

    init(columnCount: Int, maxDepth: Int) {
        buffers = .allocate(capacity: 1)
        buffers.initialize(to: RowBuffers(columnCount: columnCount, maxDepth: maxDepth))
    }

    deinit {
        buffers.pointee.deallocate()
        buffers.deinitialize(count: 1)
        buffers.deallocate()
    }

    /// A new storage of the same shape (the contents are per message or learnt again, so nothing is
    /// copied).
    func copy() -> RowStorage {
        RowStorage(columnCount: buffers.pointee.columnCount, maxDepth: buffers.pointee.maxDepth)
    }
}

/// Parses one message into the storage's slots.
struct MessageParser {
    var scanner: JSONScanner
    let names: UnsafeMutablePointer<NameTables>
    let storage: UnsafeMutablePointer<RowBuffers>
    let slots: UnsafeMutablePointer<ColumnSlot>
    let scratch: UnsafeMutablePointer<UInt8>
    let stack: UnsafeMutablePointer<UInt64>
    let kinds: UnsafeMutablePointer<ColumnKind>
    let maxDepth: Int
    /// Bytes of `scratch` used by this message's decoded strings.
    var scratchUsed = 0
    /// Columns whose slot is `wrongType` now.
    var wrongTypes = 0

    @inline(always)
    init(scanner: JSONScanner, names: UnsafeMutablePointer<NameTables>, buffers: UnsafeMutablePointer<RowBuffers>) {
        self.scanner = scanner
        self.names = names
        storage = buffers
        slots = buffers.pointee.slots
        scratch = buffers.pointee.scratch
        stack = buffers.pointee.containerStack
        kinds = names.pointee.kinds
        maxDepth = buffers.pointee.maxDepth
    }

    @inline(always)
    mutating func parseMessage() throws(SkipReason) {
        try parseFields()
        scanner.skipWhitespace()
        guard scanner.isAtEnd else { throw .notJSON }
    }

    /// Parses the top-level object's fields, using the field templates where the bytes repeat them.
    @inline(always)
    mutating func parseFields() throws(SkipReason) {
        var ordinal = 0
        while true {
            let tokenStart = scanner.position
            var column: Int
            var quality: UInt8
            if ordinal < RowBuffers.templateFields, matchesTemplate(storage.pointee.templates + ordinal, at: tokenStart) {
                let template = storage.pointee.templates + ordinal
                column = template.pointee.column
                quality = template.pointee.quality
                scanner.position = tokenStart &+ template.pointee.length
                // The template ends where its value started; this message may have more spaces there.
                scanner.skipWhitespace()
            } else {
                guard try openField(ordinal) else { return }
                (column, quality) = try scanKey(ordinal: ordinal, tokenStart: tokenStart)
            }
            if column >= 0 && column < names.pointee.columnCount {
                try decodeField(column: column, quality: quality)
            } else if column >= 0 {
                try decodeNode(column &- names.pointee.columnCount, depth: 1, quality: quality)
            } else {
                try scanner.skipValue(depth: 1, maxDepth: maxDepth, stack: stack)
            }
            ordinal &+= 1
        }
    }

    /// Whether the bytes at `start` repeat `template` (compares whole words, so it needs them inside
    /// the message; otherwise the general path runs).
    @inline(always)
    func matchesTemplate(_ template: UnsafeMutablePointer<FieldTemplate>, at start: Int) -> Bool {
        let wordCount = template.pointee.wordCount
        guard wordCount > 0, start &+ wordCount &* 8 <= scanner.end else { return false }
        // `words` then `masks`: six words each, at the start of the struct.
        let words = UnsafeRawPointer(template).assumingMemoryBound(to: UInt64.self)
        var difference: UInt64 = 0
        var index = 0
        repeat {
            difference |= (scanner.load64(at: start &+ index &* 8) ^ words[index]) & words[index &+ FieldTemplate.wordCapacity]
            index &+= 1
        } while index < wordCount
        return difference == 0
    }

    /// The general path up to a field's key: the message's `{` (or why it is not an object) for the
    /// first field, the `,` before any other. False when the object ends instead.
    @inline(always)
    mutating func openField(_ ordinal: Int) throws(SkipReason) -> Bool {
        scanner.skipWhitespace()
        if ordinal == 0 {
            guard !scanner.isAtEnd else { throw .emptyMessage }
            guard scanner.current == UInt8(ascii: "{") else {
                try scanner.skipValue(depth: 0, maxDepth: maxDepth, stack: stack)
                scanner.skipWhitespace()
                throw scanner.isAtEnd ? .notObject : .notJSON
            }
            scanner.position &+= 1
            scanner.skipWhitespace()
            if scanner.current == UInt8(ascii: "}") {
                scanner.position &+= 1
                return false
            }
        } else {
            let next = scanner.current
            if next == UInt8(ascii: "}") {
                scanner.position &+= 1
                return false
            }
            guard next == UInt8(ascii: ",") else { throw .notJSON }
            scanner.position &+= 1
            scanner.skipWhitespace()
        }
        return true
    }

    /// Scans and matches a key, then the colon; learns the field's template.
    @inline(always)
    mutating func scanKey(ordinal: Int, tokenStart: Int) throws(SkipReason) -> (Int, UInt8) {
        guard scanner.current == UInt8(ascii: "\"") else { throw .notJSON }
        scanner.position &+= 1
        let keyStart = scanner.position
        let keyHasEscapes = try scanner.scanStringBody()
        let keyLength = scanner.position &- 1 &- keyStart
        var column: Int
        var quality: UInt8 = 2
        if !keyHasEscapes {
            let key = scanner.bytes + keyStart
            let firstWord =
                keyStart &+ 8 <= scanner.end
                ? Self.firstWord(loaded: scanner.load64(at: keyStart), length: keyLength)
                : Self.firstWord(copying: key, length: keyLength)
            column = names.pointee.exactMatch(key, length: keyLength, firstWord: firstWord)
            if column < 0 {
                column = names.pointee.caseInsensitiveMatch(key, length: keyLength, firstWord: firstWord)
                quality = 1
            }
        } else {
            (column, quality) = matchEscapedKey(start: keyStart, length: keyLength)
        }
        scanner.skipWhitespace()
        guard scanner.current == UInt8(ascii: ":") else { throw .notJSON }
        scanner.position &+= 1
        scanner.skipWhitespace()
        if ordinal < RowBuffers.templateFields {
            learnTemplate(ordinal, from: tokenStart, column: column, quality: quality, usable: !keyHasEscapes)
        }
        return (column, quality)
    }

    @inline(never)
    func learnTemplate(_ ordinal: Int, from start: Int, column: Int, quality: UInt8, usable: Bool) {
        let template = storage.pointee.templates + ordinal
        let length = scanner.position &- start
        guard usable, length <= FieldTemplate.wordCapacity * 8 else {
            template.pointee = FieldTemplate()
            return
        }
        var learnt = FieldTemplate()
        withUnsafeMutableBytes(of: &learnt.words) { $0.copyMemory(from: UnsafeRawBufferPointer(start: scanner.bytes + start, count: length)) }
        withUnsafeMutableBytes(of: &learnt.masks) { masks in
            for index in 0..<length { masks[index] = 0xFF }
        }
        learnt.length = length
        learnt.wordCount = (length + 7) / 8
        learnt.column = column
        learnt.quality = quality
        template.pointee = learnt
    }

    /// A key's first (up to) 8 bytes, zero-padded, from a full 8-byte load at its start.
    @inline(always)
    static func firstWord(loaded word: UInt64, length: Int) -> UInt64 {
        length >= 8 ? word : word & ((1 &<< UInt64(length &* 8)) &- 1)
    }

    @inline(always)
    static func firstWord(copying key: UnsafePointer<UInt8>, length: Int) -> UInt64 {
        var word: UInt64 = 0
        for index in 0..<min(length, 8) { word |= UInt64(key[index]) &<< UInt64(index &* 8) }
        return word
    }

    /// Matches a key written with escapes (`"\u0065vent"`) by its decoded bytes, unescaped into the
    /// unused end of the scratch buffer.
    @inline(never)
    func matchEscapedKey(start: Int, length: Int) -> (column: Int, quality: UInt8) {
        let key = scratch + scratchUsed
        let decodedLength = scanner.unescape(from: start, to: start + length, into: key)
        let word = Self.firstWord(copying: key, length: decodedLength)
        let column = names.pointee.exactMatch(key, length: decodedLength, firstWord: word)
        if column >= 0 { return (column, 2) }
        return (names.pointee.caseInsensitiveMatch(key, length: decodedLength, firstWord: word), 1)
    }

    @inline(always)
    mutating func decodeField(column: Int, quality: UInt8) throws(SkipReason) {
        let slot = slots + column
        guard quality >= slot.pointee.matchQuality else {
            try scanner.skipValue(depth: 1, maxDepth: maxDepth, stack: stack)
            return
        }
        slot.pointee.matchQuality = quality
        if slot.pointee.state == ColumnSlot.wrongType { wrongTypes &-= 1 }
        let kind = kinds[column]
        switch scanner.current {
        case UInt8(ascii: "\""):
            if kind == .timestamp || kind == .timestamptz, let micros = fastTimestamp(at: scanner.position &+ 1) {
                slot.pointee.bits = UInt64(bitPattern: micros)
                slot.pointee.state = ColumnSlot.value
                scanner.position &+= 21
                return
            }
            scanner.position &+= 1
            let start = scanner.position
            let hasEscapes = try scanner.scanStringBody()
            let length = scanner.position &- 1 &- start
            switch kind {
            case .string:
                if hasEscapes {
                    let decoded = scanner.unescape(from: start, to: start &+ length, into: scratch + scratchUsed)
                    slot.pointee.offset = scratchUsed
                    slot.pointee.count = decoded
                    slot.pointee.isInScratch = true
                    scratchUsed &+= decoded
                } else {
                    slot.pointee.offset = start
                    slot.pointee.count = length
                    slot.pointee.isInScratch = false
                }
                slot.pointee.state = ColumnSlot.value
            case .timestamp, .timestamptz, .date:
                var text = scanner.bytes + start
                var textLength = length
                if hasEscapes {
                    // Unusual but legal (`"2026-11-24\u0020..."`); decoded into unused scratch.
                    textLength = scanner.unescape(from: start, to: start &+ length, into: scratch + scratchUsed)
                    text = UnsafePointer(scratch + scratchUsed)
                }
                let value: Int64? =
                    switch kind {
                    case .date: ValueParsing.date(text, count: textLength)
                    case .timestamp: ValueParsing.timestamp(text, count: textLength, withZone: false)
                    default: ValueParsing.timestamp(text, count: textLength, withZone: true)
                    }
                set(slot, value.map { UInt64(bitPattern: $0) })
            default:
                setWrongType(slot)
            }
        case UInt8(ascii: "-"), UInt8(ascii: "0")...UInt8(ascii: "9"):
            let token = try scanner.scanNumber()
            switch kind {
            case .int64: set(slot, ValueParsing.int64(token).map { UInt64(bitPattern: $0) })
            case .double, .decimal: set(slot, ValueParsing.double(token, bytes: scanner.bytes).map(\.bitPattern))
            case .timestamp, .timestamptz:
                set(slot, ValueParsing.epochTime(token, bytes: scanner.bytes, unit: names.pointee.timeNumbers).map { UInt64(bitPattern: $0) })
            default: setWrongType(slot)
            }
        case UInt8(ascii: "t"), UInt8(ascii: "f"), UInt8(ascii: "n"):
            let literal = try scanner.scanLiteral()
            if literal == .null {
                slot.pointee.state = ColumnSlot.null
            } else if kind == .bool {
                set(slot, literal == .true ? 1 : 0)
            } else {
                setWrongType(slot)
            }
        case UInt8(ascii: "{"), UInt8(ascii: "["):
            try scanner.skipContainer(outerDepth: 1, maxDepth: maxDepth, stack: stack)
            setWrongType(slot)
        default:
            throw .notJSON
        }
    }

    // MARK: Nested JSON

    /// The value of path node `index` (in a container at `depth`): walks into it for its children, then fills
    /// the node's own columns from its bytes. Each leaf value is scanned twice (validated with the right depth
    /// first, then read); a JSONB column's text is only a span of the payload.
    @inline(never)
    mutating func decodeNode(_ index: Int, depth: Int, quality: UInt8) throws(SkipReason) {
        let node = names.pointee.nodes[index]
        let start = scanner.position
        let first = scanner.current
        if first == UInt8(ascii: "{") && node.hasFieldChildren {
            try walkObject(node, depth: depth)
        } else if first == UInt8(ascii: "[") && node.hasIndexChildren {
            try walkArray(node, depth: depth)
        } else {
            try scanner.skipValue(depth: depth, maxDepth: maxDepth, stack: stack)
        }
        guard node.columnsCount > 0 else { return }
        let end = scanner.position
        for position in 0..<node.columnsCount {
            let column = names.pointee.nodeColumns[node.columnsStart &+ position]
            let slot = slots + column
            guard quality >= slot.pointee.matchQuality else { continue }
            switch names.pointee.readings[column] {
            case .typed:
                scanner.position = start
                try decodeField(column: column, quality: quality)
            case .json:
                if slot.pointee.state == ColumnSlot.wrongType { wrongTypes &-= 1 }
                slot.pointee.matchQuality = quality
                if first == UInt8(ascii: "n") {
                    slot.pointee.state = ColumnSlot.null
                } else {
                    setSpan(slot, start: start, end: end)
                }
            case .text, .castText:
                if slot.pointee.state == ColumnSlot.wrongType { wrongTypes &-= 1 }
                slot.pointee.matchQuality = quality
                scanner.position = start
                try readText(column: column, slot: slot, end: end)
            }
        }
        scanner.position = end
    }

    /// `->>`, and `->>` cast to the column's kind, of the value at `position` (which ends at `end`).
    mutating func readText(column: Int, slot: UnsafeMutablePointer<ColumnSlot>, end: Int) throws(SkipReason) {
        let kind = kinds[column]
        let isCast = names.pointee.readings[column] == .castText
        switch scanner.current {
        case UInt8(ascii: "n"):
            slot.pointee.state = ColumnSlot.null
        case UInt8(ascii: "\""):
            scanner.position &+= 1
            let start = scanner.position
            let hasEscapes = try scanner.scanStringBody()
            var length = scanner.position &- 1 &- start
            var text = scanner.bytes + start
            var inScratch = false
            if hasEscapes {
                length = scanner.unescape(from: start, to: start &+ length, into: scratch + scratchUsed)
                text = UnsafePointer(scratch + scratchUsed)
                inScratch = true
            }
            guard isCast && kind != .string else {
                slot.pointee.offset = inScratch ? scratchUsed : start
                slot.pointee.count = length
                slot.pointee.isInScratch = inScratch
                slot.pointee.state = ColumnSlot.value
                if inScratch { scratchUsed &+= length }
                return
            }
            set(slot, Self.castText(text, count: length, kind: kind))
        case UInt8(ascii: "-"), UInt8(ascii: "0")...UInt8(ascii: "9"):
            guard isCast && kind != .string else { return setSpan(slot, start: scanner.position, end: end) }
            let token = try scanner.scanNumber()
            switch kind {
            case .int64: set(slot, ValueParsing.int64(token).map { UInt64(bitPattern: $0) })
            case .double, .decimal: set(slot, ValueParsing.double(token, bytes: scanner.bytes).map(\.bitPattern))
            default: setWrongType(slot)
            }
        case UInt8(ascii: "t"), UInt8(ascii: "f"):
            guard isCast && kind != .string else { return setSpan(slot, start: scanner.position, end: end) }
            let literal = try scanner.scanLiteral()
            if kind == .bool { set(slot, literal == .true ? 1 : 0) } else { setWrongType(slot) }
        default:
            // An object or array: its JSON text, or a wrong type for a cast.
            if isCast && kind != .string { setWrongType(slot) } else { setSpan(slot, start: scanner.position, end: end) }
        }
    }

    /// Text (a `->>` result) cast to `kind`, as PostgreSQL's input functions read it (surrounding spaces allowed
    /// for numbers); nil when it is not a value of the kind.
    static func castText(_ text: UnsafePointer<UInt8>, count: Int, kind: ColumnKind) -> UInt64? {
        var start = 0
        var stop = count
        while start < stop && text[start] == UInt8(ascii: " ") { start &+= 1 }
        while stop > start && text[stop &- 1] == UInt8(ascii: " ") { stop &-= 1 }
        switch kind {
        case .int64, .double, .decimal:
            var number = JSONScanner(bytes: text + start, count: stop &- start)
            guard stop > start, let token = try? number.scanNumber(), number.isAtEnd else { return nil }
            return kind == .int64 ? ValueParsing.int64(token).map { UInt64(bitPattern: $0) } : ValueParsing.double(token, bytes: number.bytes).map(\.bitPattern)
        case .bool:
            switch String(decoding: UnsafeBufferPointer(start: text + start, count: stop &- start), as: UTF8.self).lowercased() {
            case "t", "true", "yes", "y", "on", "1": return 1
            case "f", "false", "no", "n", "off", "0": return 0
            default: return nil
            }
        case .timestamp: return ValueParsing.timestamp(text + start, count: stop &- start, withZone: false).map { UInt64(bitPattern: $0) }
        case .timestamptz: return ValueParsing.timestamp(text + start, count: stop &- start, withZone: true).map { UInt64(bitPattern: $0) }
        case .date: return ValueParsing.date(text + start, count: stop &- start).map { UInt64(bitPattern: $0) }
        case .string: return nil
        }
    }

    /// A string column holding the payload's bytes `start..<end` (a value's JSON text).
    @inline(always)
    func setSpan(_ slot: UnsafeMutablePointer<ColumnSlot>, start: Int, end: Int) {
        slot.pointee.offset = start
        slot.pointee.count = end &- start
        slot.pointee.isInScratch = false
        slot.pointee.state = ColumnSlot.value
    }

    /// An object at `position` whose fields may hold `node`'s children (the object is in a container at `depth`).
    mutating func walkObject(_ node: PathNode, depth: Int) throws(SkipReason) {
        let inner = depth &+ 1
        guard inner <= maxDepth else { throw .tooDeep }
        scanner.position &+= 1
        scanner.skipWhitespace()
        if scanner.current == UInt8(ascii: "}") {
            scanner.position &+= 1
            return
        }
        while true {
            guard scanner.current == UInt8(ascii: "\"") else { throw .notJSON }
            scanner.position &+= 1
            let keyStart = scanner.position
            let hasEscapes = try scanner.scanStringBody()
            var keyLength = scanner.position &- 1 &- keyStart
            var key = scanner.bytes + keyStart
            if hasEscapes {
                keyLength = scanner.unescape(from: keyStart, to: keyStart &+ keyLength, into: scratch + scratchUsed)
                key = UnsafePointer(scratch + scratchUsed)
            }
            scanner.skipWhitespace()
            guard scanner.current == UInt8(ascii: ":") else { throw .notJSON }
            scanner.position &+= 1
            scanner.skipWhitespace()
            let (child, quality) = matchChild(of: node, key: key, length: keyLength)
            if child >= 0 {
                try decodeNode(child, depth: inner, quality: quality)
            } else {
                try scanner.skipValue(depth: inner, maxDepth: maxDepth, stack: stack)
            }
            scanner.skipWhitespace()
            if scanner.current == UInt8(ascii: ",") {
                scanner.position &+= 1
                scanner.skipWhitespace()
                continue
            }
            guard scanner.current == UInt8(ascii: "}") else { throw .notJSON }
            scanner.position &+= 1
            return
        }
    }

    /// An array at `position` whose elements may hold `node`'s children.
    mutating func walkArray(_ node: PathNode, depth: Int) throws(SkipReason) {
        let inner = depth &+ 1
        guard inner <= maxDepth else { throw .tooDeep }
        scanner.position &+= 1
        scanner.skipWhitespace()
        if scanner.current == UInt8(ascii: "]") {
            scanner.position &+= 1
            return
        }
        var element = 0
        while true {
            var child = node.firstChild
            while child >= 0 && names.pointee.nodes[child].index != element { child = names.pointee.nodes[child].nextSibling }
            if child >= 0 {
                try decodeNode(child, depth: inner, quality: 2)
            } else {
                try scanner.skipValue(depth: inner, maxDepth: maxDepth, stack: stack)
            }
            element &+= 1
            scanner.skipWhitespace()
            if scanner.current == UInt8(ascii: ",") {
                scanner.position &+= 1
                scanner.skipWhitespace()
                continue
            }
            guard scanner.current == UInt8(ascii: "]") else { throw .notJSON }
            scanner.position &+= 1
            return
        }
    }

    /// The child of `node` whose field name is `key` (exactly: quality 2; ignoring ASCII case when the schema
    /// does: 1), or -1.
    func matchChild(of node: PathNode, key: UnsafePointer<UInt8>, length: Int) -> (Int, UInt8) {
        var folded = -1
        var child = node.firstChild
        while child >= 0 {
            let candidate = names.pointee.nodes[child]
            if candidate.index < 0 && candidate.keyLength == length {
                let name = names.pointee.nodeKeys + candidate.keyStart
                if NameTables.equalBytes(key, name, length) { return (child, 2) }
                if folded < 0 && names.pointee.ignoresKeyCase
                    && (0..<length).allSatisfy({ NameTables.lowercased(key[$0]) == NameTables.lowercased(name[$0]) })
                {
                    folded = child
                }
            }
            child = candidate.nextSibling
        }
        return (folded, 1)
    }

    @inline(always)
    mutating func set(_ slot: UnsafeMutablePointer<ColumnSlot>, _ bits: UInt64?) {
        if let bits {
            slot.pointee.bits = bits
            slot.pointee.state = ColumnSlot.value
        } else {
            setWrongType(slot)
        }
    }

    @inline(always)
    mutating func setWrongType(_ slot: UnsafeMutablePointer<ColumnSlot>) {
        slot.pointee.state = ColumnSlot.wrongType
        wrongTypes &+= 1
    }

    /// A timestamp in the usual `"YYYY-MM-DD HH:MM:SS"` form (the text at `start`, then a quote),
    /// read with a few word operations and the cached date; nil for anything else, which then takes
    /// the general path. Every byte is checked, so a match is a valid string of plain ASCII.
    @inline(always)
    func fastTimestamp(at start: Int) -> Int64? {
        guard start &+ 20 <= scanner.end, scanner.bytes[start &+ 19] == UInt8(ascii: "\"") else { return nil }
        let separator = scanner.bytes[start &+ 10]
        guard separator == UInt8(ascii: " ") || separator == UInt8(ascii: "T") else { return nil }
        let dateWord = scanner.load64(at: start)
        let dayHalfWord = UInt16(truncatingIfNeeded: scanner.load32(at: start &+ 7) &>> 8)
        var days: Int64
        if storage.pointee.hasCachedDate && dateWord == storage.pointee.cachedDateWord && dayHalfWord == storage.pointee.cachedDayHalfWord {
            days = storage.pointee.cachedDays
        } else {
            guard let parsed = ValueParsing.civilDays(scanner.bytes + start) else { return nil }
            days = parsed
            storage.pointee.cachedDateWord = dateWord
            storage.pointee.cachedDayHalfWord = dayHalfWord
            storage.pointee.cachedDays = parsed
            storage.pointee.hasCachedDate = true
        }
        // "HH:MM:SS": digits in bytes 0, 1, 3, 4, 6, 7 and colons in bytes 2 and 5.
        let time = scanner.load64(at: start &+ 11)
        let digitLanes: UInt64 = 0xFFFF_00FF_FF00_FFFF
        let highNibbles: UInt64 = 0xF0F0_F0F0_F0F0_F0F0 & digitLanes
        let zeros: UInt64 = 0x3030_3030_3030_3030 & digitLanes
        guard time & 0x0000_FF00_00FF_0000 == 0x0000_3A00_003A_0000,
            time & highNibbles == zeros,
            (time &+ (0x0606_0606_0606_0606 & digitLanes)) & highNibbles == zeros
        else { return nil }
        let digits = time &- zeros
        @inline(always) func lane(_ index: UInt64) -> Int64 { Int64((digits &>> (index &* 8)) & 0xFF) }
        let hour = lane(0) &* 10 &+ lane(1)
        let minute = lane(3) &* 10 &+ lane(4)
        let second = lane(6) &* 10 &+ lane(7)
        guard hour < 24, minute < 60, second < 60 else { return nil }
        return (days &* 86_400 &+ hour &* 3600 &+ minute &* 60 &+ second) &* 1_000_000
    }
}

/// One step of nested JSON in `NameTables.nodes`: its key (a field name in `nodeKeys`, or an element index),
/// the columns it fills, and its children as a linked list.
struct PathNode {
    var keyStart = 0
    var keyLength = 0
    /// The element index for an array step; -1 for a field step (and roots).
    var index = -1
    var columnsStart = 0
    var columnsCount = 0
    var firstChild = -1
    var nextSibling = -1
    var hasFieldChildren = false
    var hasIndexChildren = false
}

/// `NameTables`' nested JSON, built once from the schema.
struct PathTree {
    var rootNames: [String] = []
    var nodes: [PathNode] = []
    var columns: [Int] = []
    var keys: [UInt8] = []

    init(_ schema: [RowSchema.Column]) {
        // Roots: fields with paths, and fields read other than typed (their JSON text); roots come first.
        var rootOf: [String: Int] = [:]
        func root(_ name: String) {
            guard rootOf[name] == nil else { return }
            rootOf[name] = rootNames.count
            rootNames.append(name)
        }
        for column in schema {
            switch column.origin {
            case .path(let name, _): root(name)
            case .field where column.reading != .typed: root(column.name)
            default: break
            }
        }
        var keyOf: [[UInt8]] = rootNames.map { Array($0.utf8) }
        var indexOf: [Int] = rootNames.map { _ in -1 }
        var children: [[Int]] = rootNames.map { _ in [] }
        var filled: [[Int]] = rootNames.map { _ in [] }
        for (column, definition) in schema.enumerated() {
            var node: Int
            var steps: [PathStep] = []
            switch definition.origin {
            case .path(let name, let path):
                node = rootOf[name]!
                steps = path
            case .field:
                guard let existing = rootOf[definition.name] else { continue }
                node = existing
            case .metadata, .tumble:
                continue
            }
            for step in steps {
                let (key, index): ([UInt8], Int) = switch step {
                case .field(let name): (Array(name.utf8), -1)
                case .index(let index): ([], index)
                }
                if let child = children[node].first(where: { keyOf[$0] == key && indexOf[$0] == index }) {
                    node = child
                } else {
                    keyOf.append(key)
                    indexOf.append(index)
                    children.append([])
                    filled.append([])
                    children[node].append(keyOf.count - 1)
                    node = keyOf.count - 1
                }
            }
            filled[node].append(column)
        }
        for node in keyOf.indices {
            var built = PathNode()
            built.keyStart = keys.count
            built.keyLength = keyOf[node].count
            keys += keyOf[node]
            built.index = indexOf[node]
            built.columnsStart = columns.count
            built.columnsCount = filled[node].count
            columns += filled[node]
            built.firstChild = children[node].first ?? -1
            built.hasFieldChildren = children[node].contains { indexOf[$0] < 0 }
            built.hasIndexChildren = children[node].contains { indexOf[$0] >= 0 }
            nodes.append(built)
        }
        for node in keyOf.indices {
            for (position, child) in children[node].enumerated() where position + 1 < children[node].count {
                nodes[child].nextSibling = children[node][position + 1]
            }
        }
    }
}
