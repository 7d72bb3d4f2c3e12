import EddySQL

/// A batch of changes to one operator's output: rows inserted, deleted, or updated old → new, each with
/// the key of its row (for an aggregate's output, the group key).
///
/// Storage is flat and reused: every key and row lives in two value buffers at fixed widths (`keyWidth`,
/// `rowWidth`), with one kind and one row offset per change, so a batch holds no object per row and
/// `removeAll()` keeps its capacity for the next epoch. Within one batch a key appears in at most one
/// change when an aggregate emitted it; a batch from a stateless operator carries its input's keys.
///
/// The contract for whoever applies a batch to keyed rows: an insert's key is absent, a delete's and an
/// update's key is present holding exactly the old row. An aggregate reads only the rows (as a multiset
/// of input rows: a delete or an update's old row retracts one row previously inserted).
public struct ChangeBatch: Sendable {
    /// What one change does to its key's row.
    public enum Kind: UInt8, Sendable, Hashable {
        case insert
        case delete
        /// The row under the key is replaced: old → new.
        case update
    }

    /// One change, as slices of the batch's buffers (valid while the batch is not mutated).
    public struct Change: Sendable {
        public var kind: Kind
        public var key: ArraySlice<SQLValue>
        /// The row before the change: nil for an insert.
        public var oldRow: ArraySlice<SQLValue>?
        /// The row after the change: nil for a delete.
        public var newRow: ArraySlice<SQLValue>?
    }

    /// Values per key.
    public let keyWidth: Int
    /// Values per row.
    public let rowWidth: Int

    private var kinds: [Kind] = []
    /// `keyWidth` values per change.
    private var keyValues: [SQLValue] = []
    /// Per change, its rows: the old row (delete, update), then the new row (insert, update).
    private var rowValues: [SQLValue] = []
    /// Per change, the index in `rowValues` of its first row.
    private var rowStarts: [Int] = []

    public init(keyWidth: Int, rowWidth: Int) {
        precondition(keyWidth >= 0 && rowWidth >= 0, "widths must not be negative")
        self.keyWidth = keyWidth
        self.rowWidth = rowWidth
    }

    public var count: Int { kinds.count }
    public var isEmpty: Bool { kinds.isEmpty }

    public func kind(at index: Int) -> Kind { kinds[index] }

    public func key(at index: Int) -> ArraySlice<SQLValue> {
        keyValues[index * keyWidth..<(index + 1) * keyWidth]
    }

    /// The row before change `index`: nil for an insert.
    public func oldRow(at index: Int) -> ArraySlice<SQLValue>? {
        if kinds[index] == .insert { return nil }
        let start = rowStarts[index]
        return rowValues[start..<start + rowWidth]
    }

    /// The row after change `index`: nil for a delete.
    public func newRow(at index: Int) -> ArraySlice<SQLValue>? {
        let start: Int
        switch kinds[index] {
        case .delete: return nil
        case .insert: start = rowStarts[index]
        case .update: start = rowStarts[index] + rowWidth
        }
        return rowValues[start..<start + rowWidth]
    }

    public subscript(index: Int) -> Change {
        Change(kind: kinds[index], key: key(at: index), oldRow: oldRow(at: index), newRow: newRow(at: index))
    }

    public mutating func appendInsert(key: some Collection<SQLValue>, row: some Collection<SQLValue>) {
        appendKey(key, kind: .insert)
        appendRow(row)
    }

    public mutating func appendDelete(key: some Collection<SQLValue>, row: some Collection<SQLValue>) {
        appendKey(key, kind: .delete)
        appendRow(row)
    }

    public mutating func appendUpdate(
        key: some Collection<SQLValue>, old: some Collection<SQLValue>, new: some Collection<SQLValue>
    ) {
        appendKey(key, kind: .update)
        appendRow(old)
        appendRow(new)
    }

    /// Appends every change of `other` (which must have the same widths).
    public mutating func append(contentsOf other: ChangeBatch) {
        precondition(other.keyWidth == keyWidth && other.rowWidth == rowWidth,
            "a batch of widths \(other.keyWidth)/\(other.rowWidth) cannot join one of \(keyWidth)/\(rowWidth)")
        let base = rowValues.count
        kinds.append(contentsOf: other.kinds)
        keyValues.append(contentsOf: other.keyValues)
        rowValues.append(contentsOf: other.rowValues)
        rowStarts.append(contentsOf: other.rowStarts.lazy.map { $0 + base })
    }

    /// Empties the batch and keeps its buffers for reuse.
    public mutating func removeAll() {
        kinds.removeAll(keepingCapacity: true)
        keyValues.removeAll(keepingCapacity: true)
        rowValues.removeAll(keepingCapacity: true)
        rowStarts.removeAll(keepingCapacity: true)
    }

    private mutating func appendKey(_ key: some Collection<SQLValue>, kind: Kind) {
        precondition(key.count == keyWidth, "a key of \(key.count) values in a batch of key width \(keyWidth)")
        kinds.append(kind)
        keyValues.append(contentsOf: key)
        rowStarts.append(rowValues.count)
    }

    private mutating func appendRow(_ row: some Collection<SQLValue>) {
        precondition(row.count == rowWidth, "a row of \(row.count) values in a batch of row width \(rowWidth)")
        rowValues.append(contentsOf: row)
    }
}
