import Foundation

/// A SQL value as views, queries and templates see it.
///
/// Times are carried as their canonical text (`YYYY-MM-DD HH:MM:SS[.ffffff]`, `YYYY-MM-DD`), which sorts
/// and compares like the times themselves; the binder brings time literals to the same form.
public enum SQLValue: Sendable, Hashable, CustomStringConvertible {
    case null
    case bool(Bool)
    case int(Int64)
    case double(Double)
    case string(String)

    public var isNull: Bool { self == .null }

    /// The value as PostgreSQL prints it as text (`t`/`f` for booleans, `NULL` for null): what a template
    /// (`key_format`, `value_format`) puts in place of `{column}`, as RisingWave's template encoder does.
    public var text: String {
        switch self {
        case .null: "NULL"
        case .bool(let value): value ? "t" : "f"
        case .int(let value): String(value)
        case .double(let value): Self.text(of: value)
        case .string(let value): value
        }
    }

    /// A double as PostgreSQL prints it: no `.0` on whole numbers, `NaN`, `Infinity`, `-Infinity`.
    public static func text(of value: Double) -> String {
        if value.isNaN { return "NaN" }
        if value.isInfinite { return value < 0 ? "-Infinity" : "Infinity" }
        if value == value.rounded(), abs(value) < 1e15 { return String(Int64(value)) }
        return String(value)
    }

    public var description: String {
        switch self {
        case .null: "NULL"
        case .string(let value): "'" + value.replacingOccurrences(of: "'", with: "''") + "'"
        default: text
        }
    }
}
