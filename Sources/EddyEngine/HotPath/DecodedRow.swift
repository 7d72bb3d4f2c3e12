/// One column's decoded value in the current message.
struct ColumnSlot {
    static let null: UInt8 = 0
    static let value: UInt8 = 1
    static let wrongType: UInt8 = 2

    /// `null`, `value` or `wrongType` (which reads as NULL).
    var state: UInt8 = ColumnSlot.null
    /// How the field's name matched the column: 0 not seen, 1 ignoring ASCII case, 2 exactly. A field
    /// replaces the value of an earlier one only if it matched at least as well.
    var matchQuality: UInt8 = 0
    /// The string's bytes are in the decoder's scratch buffer (it had escapes), not in the payload.
    var isInScratch = false
    /// Int64 bit pattern (int64, times), Double bit pattern (double, decimal) or 0 / 1 (bool).
    var bits: UInt64 = 0
    /// A string's first byte, in the payload or the scratch buffer.
    var offset = 0
    /// A string's length in bytes.
    var count = 0
}

/// The current message's decoded columns, borrowed: valid only inside the call that hands it out
/// (`RowPredicate.accepts`, `RowDecoder.decode`). Do not store it or let it escape.
///
/// Missing fields, JSON `null` and fields of the wrong type all read as NULL.
public struct DecodedRow {
    let slots: UnsafePointer<ColumnSlot>
    let kinds: UnsafePointer<ColumnKind>
    let payload: UnsafePointer<UInt8>
    let scratch: UnsafePointer<UInt8>
    /// The number of columns in the source's schema.
    public let columnCount: Int

    @inline(always)
    init(
        slots: UnsafePointer<ColumnSlot>, kinds: UnsafePointer<ColumnKind>, payload: UnsafePointer<UInt8>,
        scratch: UnsafePointer<UInt8>, columnCount: Int
    ) {
        self.slots = slots
        self.kinds = kinds
        self.payload = payload
        self.scratch = scratch
        self.columnCount = columnCount
    }

    @inline(always)
    func slot(_ column: Int) -> ColumnSlot {
        precondition(column >= 0 && column < columnCount, "column \(column) is outside 0..<\(columnCount)")
        return slots[column]
    }

    /// The kind of `column` in the schema.
    @inline(__always)
    public func kind(_ column: Int) -> ColumnKind {
        precondition(column >= 0 && column < columnCount, "column \(column) is outside 0..<\(columnCount)")
        return kinds[column]
    }

    /// Whether `column` is SQL NULL (field missing, JSON `null`, or wrong type).
    @inline(__always)
    public func isNull(_ column: Int) -> Bool {
        slot(column).state != ColumnSlot.value
    }

    /// Whether `column`'s field was present with a JSON type (or text) the column cannot take.
    public func isWrongType(_ column: Int) -> Bool {
        slot(column).state == ColumnSlot.wrongType
    }

    /// The value of an int64, timestamp (microseconds since 1970), timestamptz or date (days since
    /// 1970) column; nil when NULL or for other kinds.
    @inline(__always)
    public func int64(_ column: Int) -> Int64? {
        let slot = slot(column)
        guard slot.state == ColumnSlot.value, kinds[column].isInt64Backed else { return nil }
        return Int64(bitPattern: slot.bits)
    }

    /// The value of a double or decimal column; nil when NULL or for other kinds.
    @inline(__always)
    public func double(_ column: Int) -> Double? {
        let slot = slot(column)
        guard slot.state == ColumnSlot.value, kinds[column].isDoubleBacked else { return nil }
        return Double(bitPattern: slot.bits)
    }

    /// The value of a bool column; nil when NULL or for other kinds.
    @inline(__always)
    public func bool(_ column: Int) -> Bool? {
        let slot = slot(column)
        guard slot.state == ColumnSlot.value, kinds[column] == .bool else { return nil }
        return slot.bits != 0
    }

    /// The value of a string column as a new `String` (allocates: for `WHERE` evaluation, not for the
    /// aggregation path, which uses `withStringBytes`); nil when NULL or for other kinds.
    public func string(_ column: Int) -> String? {
        withStringBytes(column) { String(decoding: $0, as: UTF8.self) }
    }

    /// Calls `body` with the UTF-8 bytes of a string column's value (escapes resolved), without
    /// copying; nil when NULL or for other kinds. The bytes are valid only inside `body`.
    @inline(__always)
    public func withStringBytes<Result, Failure: Error>(
        _ column: Int, _ body: (UnsafeRawBufferPointer) throws(Failure) -> Result
    ) throws(Failure) -> Result? {
        let slot = slot(column)
        guard slot.state == ColumnSlot.value, kinds[column] == .string else { return nil }
        let base = slot.isInScratch ? scratch : payload
        return try body(UnsafeRawBufferPointer(start: base + slot.offset, count: slot.count))
    }

    /// A string slot's bytes (no checks: the caller knows `column` holds a string value).
    @inline(always)
    func stringBytes(of slot: ColumnSlot) -> UnsafePointer<UInt8> {
        (slot.isInScratch ? scratch : payload) + slot.offset
    }
}

/// A view's `WHERE`, supplied by the engine and evaluated once per decoded message.
public protocol RowPredicate: Sendable {
    /// Whether the row passes (SQL semantics: NULL or false rejects it).
    func accepts(_ row: DecodedRow) -> Bool
}
