import EddyRedis
import EddySQL

/// Renders a template sink's pairs straight from a source view's encoded groups (a barrier delta's key and state
/// bytes, as the checkpoint stores them) into a `SinkPairBatch`: no group table, SQL values, strings or arrays per
/// group. It covers the common shapes — no HAVING, and templates whose columns are GROUP BY columns of text,
/// integers or booleans, or `COUNT`, integer `SUM`, integer `MIN` / `MAX` — and gives the same bytes as the
/// general path (`ViewPlan.outputRow`, `Template.render`), which `SinkRenderer` keeps for everything else.
struct DirectTemplateRenderer: Sendable {
    enum Part: Sendable {
        case text([UInt8])
        /// A GROUP BY value, by its position in the key.
        case groupKey(Int)
        /// An aggregate's result, by its index in the plan.
        case aggregate(Int)
    }

    let keyParts: [Part]
    let valueParts: [Part]
    let keyKinds: [ColumnKind]
    let plan: [CompiledAggregate]
    /// Set when the key template tells every group apart except the NULL group and a text `NULL`: it names the
    /// view's one GROUP BY column once, beside fixed text. Then this is the one key two groups can render to,
    /// and no other key needs checking.
    let onlySharedKey: [UInt8]?

    /// Nil when the view or the templates need the general path.
    init?(encoding: RedisSinkSettings.Encoding, plan viewPlan: ViewPlan) {
        guard case .template(let key, let value) = encoding, viewPlan.view.having == nil else { return nil }
        let view = viewPlan.view
        let kinds = view.groupBy.map { viewPlan.schema.columns[$0].kind }
        let plan: [CompiledAggregate]
        do {
            plan = try GroupTable.compile(schema: viewPlan.schema, groupBy: view.groupBy, aggregates: viewPlan.aggregates)
        } catch {
            return nil
        }
        func parts(of template: Template) -> [Part]? {
            var parts: [Part] = []
            for part in template.parts {
                switch part {
                case .text(let text):
                    parts.append(.text(Array(text.utf8)))
                case .column(let column, _):
                    switch view.outputColumns[column].expression {
                    case .groupKey(let index, _) where [.string, .int64, .bool].contains(kinds[index]):
                        parts.append(.groupKey(index))
                    case .aggregate(let index, _):
                        switch plan[index].operation {
                        case .countRows, .countValues, .sumInt: break
                        case .minInt, .maxInt: guard plan[index].argumentKind == .int64 else { return nil }
                        default: return nil
                        }
                        parts.append(.aggregate(index))
                    default:
                        return nil
                    }
                }
            }
            return parts
        }
        guard let keyParts = parts(of: key), let valueParts = parts(of: value) else { return nil }
        self.keyParts = keyParts
        self.valueParts = valueParts
        self.keyKinds = kinds
        self.plan = plan
        let keyColumns = keyParts.filter { if case .text = $0 { false } else { true } }
        if kinds.count == 1, keyColumns.count == 1, case .groupKey = keyColumns[0] {
            onlySharedKey = keyParts.flatMap { part in if case .text(let text) = part { text } else { Self.nullText } }
        } else {
            onlySharedKey = nil
        }
    }

    /// What `render` reuses from group to group.
    struct Scratch {
        /// One per GROUP BY column, overwritten in place.
        var columns: [GroupKey.Column]
        /// Per aggregate: its count and two running words (see `CompiledAggregate.wordOffset`).
        var words: [UInt64]

        init(aggregates: Int, keyColumns: Int) {
            columns = Array(repeating: .null, count: keyColumns)
            words = Array(repeating: 0, count: 3 * aggregates)
        }
    }

    /// Appends the pair of the group whose storage key and encoded state these are to `batch`. The key comes
    /// from a group table (a barrier delta's), so its strings are not checked for UTF-8 again.
    ///
    /// - Throws: `corruptState` when the key or state cannot be decoded for this view.
    func render(key: UnsafeRawBufferPointer, state: UnsafeRawBufferPointer, into batch: inout SinkPairBatch, scratch: inout Scratch)
        throws(EngineError)
    {
        let fullKey = try readState(key: key, state: state, words: &scratch.words)
        // Swapped out and back rather than copied, so that the array keeps its one buffer.
        var columns: [GroupKey.Column] = []
        swap(&columns, &scratch.columns)
        defer { swap(&columns, &scratch.columns) }
        // The strings' bytes point into `fullKey` (the caller's), valid through the rendering below. `decode`
        // checks the key holds exactly `keyKinds.count` columns.
        var position = 0
        try GroupKey.decode(fullKey, kinds: keyKinds, validatingUTF8: false) { column in
            columns[position] = column
            position &+= 1
        }
        // Composed on the stack and appended at once (part by part, each append checking the array's capacity and
        // uniqueness, it was most of the rendering of a million pairs); a pair too long for the buffer goes part
        // by part.
        let composed = withUnsafeTemporaryAllocation(byteCount: Self.composedPairBytes, alignment: 8) { buffer in
            var pair = ComposedPair(buffer)
            append(keyParts, columns: columns, words: scratch.words, to: &pair)
            let keyLength = pair.count
            append(valueParts, columns: columns, words: scratch.words, to: &pair)
            guard !pair.overflowed else { return false }
            let start = batch.bytes.count
            batch.bytes.append(contentsOf: UnsafeRawBufferPointer(start: buffer.baseAddress, count: pair.count))
            batch.endPair(start: start, keyEnd: start + keyLength, hasValue: true)
            return true
        }
        guard !composed else { return }
        let start = batch.bytes.count
        append(keyParts, columns: columns, words: scratch.words, to: &batch.bytes)
        let keyEnd = batch.bytes.count
        append(valueParts, columns: columns, words: scratch.words, to: &batch.bytes)
        batch.endPair(start: start, keyEnd: keyEnd, hasValue: true)
    }

    /// Pairs up to this long are composed on the stack (`render`).
    static let composedPairBytes = 512

    private func append<Output: RenderedBytes>(_ parts: [Part], columns: [GroupKey.Column], words: [UInt64], to bytes: inout Output) {
        for part in parts {
            switch part {
            case .text(let text):
                text.withUnsafeBytes { bytes.appendBytes($0) }
            case .groupKey(let index):
                switch columns[index] {
                case .null: Self.nullText.withUnsafeBytes { bytes.appendBytes($0) }
                case .string(let value): bytes.appendBytes(value)
                case .int64(let value): Self.appendDecimal(value, to: &bytes)
                case .bool(let value): bytes.appendByte(value ? UInt8(ascii: "t") : UInt8(ascii: "f"))
                case .double: preconditionFailure("a double GROUP BY column takes the general path")
                }
            case .aggregate(let index):
                let count = words[3 * index]
                let first = words[3 * index + 1]
                switch plan[index].operation {
                case .countRows, .countValues:
                    Self.appendDecimal(Int64(bitPattern: count), to: &bytes)
                case .sumInt:
                    if count == 0 {
                        Self.nullText.withUnsafeBytes { bytes.appendBytes($0) }
                    } else {
                        let sum = GroupTable.int128(low: first, high: words[3 * index + 2])
                        if let exact = Int64(exactly: sum) {
                            Self.appendDecimal(exact, to: &bytes)
                        } else {
                            // Beyond Int64 the view's value is the nearest Double (as `GroupTable.value`), printed as SQL prints it.
                            var text = SQLValue.text(of: Double(sum))
                            text.withUTF8 { bytes.appendBytes(UnsafeRawBufferPointer($0)) }
                        }
                    }
                case .minInt, .maxInt:
                    if count == 0 {
                        Self.nullText.withUnsafeBytes { bytes.appendBytes($0) }
                    } else {
                        Self.appendDecimal(Int64(bitPattern: first), to: &bytes)
                    }
                default:
                    preconditionFailure("aggregate \(index) takes the general path")
                }
            }
        }
    }

    static let nullText: [UInt8] = Array("NULL".utf8)

    /// Reads an encoded state (`GroupTable+State`'s layout) into `words`, 3 per aggregate, checking it against
    /// the plan as a restore does; returns the full encoded key (in the state for keys over 511 bytes).
    private func readState(key: UnsafeRawBufferPointer, state: UnsafeRawBufferPointer, words: inout [UInt64]) throws(EngineError)
        -> UnsafeRawBufferPointer
    {
        var reader = ByteReader(state, what: "state of a group")
        let version = try reader.byte()
        guard version == GroupTable.stateVersion else {
            throw reader.corrupt("has format version \(version), expected \(GroupTable.stateVersion)")
        }
        let flags = try reader.byte()
        let fullKey: UnsafeRawBufferPointer
        switch (key.first, flags) {
        case (GroupKey.plainMarker?, 0): fullKey = key
        case (GroupKey.longMarker?, GroupTable.longKeyFlag): fullKey = try reader.bytes(try reader.varint())
        default: throw reader.corrupt("has flags \(flags) for a key starting with \(key.first.map(String.init) ?? "nothing")")
        }
        for (index, compiled) in plan.enumerated() {
            let operation = try reader.byte()
            guard operation == compiled.operation.rawValue else {
                throw reader.corrupt("has operation \(operation) for aggregate \(index + 1), expected \(compiled.operation.rawValue)")
            }
            let count = try reader.varint()
            words[3 * index] = UInt64(count)
            switch compiled.operation {
            case .countRows, .countValues:
                break
            case .sumInt, .averageInt:
                words[3 * index + 1] = try reader.littleEndian64()
                words[3 * index + 2] = try reader.littleEndian64()
            case .sumDouble, .averageDouble:
                words[3 * index + 1] = try reader.littleEndian64()
            case .minInt, .maxInt, .minDouble, .maxDouble:
                if count > 0 { words[3 * index + 1] = try reader.littleEndian64() }
            case .minString, .maxString:
                if count > 0 { _ = try reader.bytes(try reader.varint()) }
            }
            if compiled.distinctSet >= 0 {
                let values = try reader.varint()
                for _ in 0..<values { _ = try reader.bytes(try reader.varint()) }
            }
        }
        guard reader.isAtEnd else { throw reader.corrupt("has \(reader.remaining) bytes after its \(plan.count) aggregates") }
        return fullKey
    }

    /// A decimal integer, as `String(value)` writes it.
    static func appendDecimal<Output: RenderedBytes>(_ value: Int64, to bytes: inout Output) {
        if value < 0 { bytes.appendByte(UInt8(ascii: "-")) }
        DecimalDigits(value.magnitude).withBytes { bytes.appendBytes($0) }
    }
}

/// Where `DirectTemplateRenderer` writes a pair's bytes: the batch's array, or `ComposedPair`.
protocol RenderedBytes {
    mutating func appendBytes(_ bytes: UnsafeRawBufferPointer)
    mutating func appendByte(_ byte: UInt8)
}

extension Array: RenderedBytes where Element == UInt8 {
    mutating func appendBytes(_ bytes: UnsafeRawBufferPointer) { append(contentsOf: bytes) }
    mutating func appendByte(_ byte: UInt8) { append(byte) }
}

/// A pair's bytes in a fixed buffer; past its end, `overflowed` and nothing more is written.
struct ComposedPair: RenderedBytes {
    let buffer: UnsafeMutableRawBufferPointer
    private(set) var count = 0
    private(set) var overflowed = false

    init(_ buffer: UnsafeMutableRawBufferPointer) { self.buffer = buffer }

    mutating func appendBytes(_ bytes: UnsafeRawBufferPointer) {
        guard !overflowed, bytes.count <= buffer.count &- count else { return overflowed = true }
        if let source = bytes.baseAddress { (buffer.baseAddress.unsafelyUnwrapped + count).copyMemory(from: source, byteCount: bytes.count) }
        count &+= bytes.count
    }

    mutating func appendByte(_ byte: UInt8) {
        guard !overflowed, count < buffer.count else { return overflowed = true }
        buffer[count] = byte
        count &+= 1
    }
}
