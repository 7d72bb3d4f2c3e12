import EddySQL

/// The non-NULL values an aggregate has taken in for one group, each with how many times, in SQL order.
///
/// What makes `MIN`/`MAX` exact under deletes (removing the current extreme leaves the next one at the
/// end) and what `DISTINCT` counts (a value enters the distinct set when its count goes 0 → 1 and leaves
/// on 1 → 0). A sorted array with binary search: inserting a new value moves the ones above it, which is
/// cheap for the few hundred distinct values a group usually holds; a group with very many distinct values
/// would want a B-tree here.
struct ValueMultiset: Sendable {
    /// Strictly increasing in `order(_:_:)`.
    private(set) var values: [SQLValue] = []
    /// Per value, how many times it is held: always more than 0.
    private(set) var counts: [Int64] = []

    var isEmpty: Bool { values.isEmpty }
    var distinctCount: Int { values.count }
    var smallest: SQLValue? { values.first }
    var largest: SQLValue? { values.last }

    /// Adds `delta` (positive or negative) to the count of `value`.
    ///
    /// - Returns: +1 when the value was absent and is now held, -1 when it was held and is now gone, else 0.
    mutating func add(_ value: SQLValue, count delta: Int64) -> Int {
        let (index, found) = position(of: value)
        if found {
            let updated = counts[index] + delta
            precondition(updated >= 0, "retracting \(value) more times than it was added")
            if updated == 0 {
                values.remove(at: index)
                counts.remove(at: index)
                return -1
            }
            counts[index] = updated
            return 0
        }
        precondition(delta >= 0, "retracting \(value), which this group does not hold")
        if delta == 0 { return 0 }
        values.insert(value, at: index)
        counts.insert(delta, at: index)
        return 1
    }

    mutating func removeAll() {
        values.removeAll(keepingCapacity: true)
        counts.removeAll(keepingCapacity: true)
    }

    /// Appends a value read from state; values must come in increasing order, each once.
    mutating func appendRestored(_ value: SQLValue, count: Int64) -> Bool {
        guard count > 0, value != .null else { return false }
        if let last = values.last, Self.order(last, value) >= 0 { return false }
        values.append(value)
        counts.append(count)
        return true
    }

    /// Where `value` is, or where it would go.
    private func position(of value: SQLValue) -> (index: Int, found: Bool) {
        var low = 0
        var high = values.count
        while low < high {
            let middle = (low + high) / 2
            let comparison = Self.order(values[middle], value)
            if comparison == 0 { return (middle, true) }
            if comparison < 0 { low = middle + 1 } else { high = middle }
        }
        return (low, false)
    }

    /// SQL's order of two non-NULL values (`SQLValue.compare`), made total for values of kinds SQL
    /// would not compare (which a bound view does not mix in one column) by ordering the kinds.
    static func order(_ lhs: SQLValue, _ rhs: SQLValue) -> Int {
        if let comparison = SQLValue.compare(lhs, rhs) { return comparison }
        let left = kindRank(lhs)
        let right = kindRank(rhs)
        return left < right ? -1 : left == right ? 0 : 1
    }

    private static func kindRank(_ value: SQLValue) -> Int {
        switch value {
        case .null: 0
        case .bool: 1
        case .int, .double: 2
        case .string: 3
        }
    }
}
