/// One JSON scalar: what a cell of a view holds. Encodes as the bare JSON value (`null`, `true`, `42`,
/// `4.5`, `"click"`).
public enum JSONScalar: Codable, Sendable, Equatable, Hashable {
    case null
    case bool(Bool)
    case int(Int64)
    case double(Double)
    case string(String)

    public init(from decoder: any Decoder) throws {
        let container = try decoder.singleValueContainer()
        if container.decodeNil() {
            self = .null
        } else if let value = try? container.decode(Bool.self) {
            self = .bool(value)
        } else if let value = try? container.decode(Int64.self) {
            self = .int(value)
        } else if let value = try? container.decode(Double.self) {
            self = .double(value)
        } else if let value = try? container.decode(String.self) {
            self = .string(value)
        } else {
            throw DecodingError.dataCorruptedError(in: container, debugDescription: "expected null, a boolean, a number or a string")
        }
    }

    public func encode(to encoder: any Encoder) throws {
        var container = encoder.singleValueContainer()
        switch self {
        case .null: try container.encodeNil()
        case .bool(let value): try container.encode(value)
        case .int(let value): try container.encode(value)
        // JSON has no NaN or infinity: those become null rather than failing the whole document.
        case .double(let value) where !value.isFinite: try container.encodeNil()
        case .double(let value): try container.encode(value)
        case .string(let value): try container.encode(value)
        }
    }

    /// The value as a number, for ranking and charting; nil for null, NaN, booleans and strings.
    public var numericValue: Double? {
        switch self {
        case .int(let value): Double(value)
        case .double(let value): value.isNaN ? nil : value
        case .null, .bool, .string: nil
        }
    }
}

/// One output column of a view.
public struct ViewColumn: Codable, Sendable, Equatable {
    /// The column name as the view's SELECT names it (`event`, `count`).
    public var name: String
    /// The SQL type in words (`VARCHAR`, `BIGINT`), for display only.
    public var type: String
    /// Whether the column is part of the GROUP BY key. The dashboard labels rows by the key columns.
    public var isGroupKey: Bool

    public init(name: String, type: String, isGroupKey: Bool) {
        self.name = name
        self.type = type
        self.isGroupKey = isGroupKey
    }
}

/// The rows of one view, as `/api/views` and `/api/views/NAME` serve them.
public struct ViewRows: Codable, Sendable, Equatable {
    /// The view's name in the SQL.
    public var name: String
    /// The output columns, in SELECT order.
    public var columns: [ViewColumn]
    /// One array per group, cells in `columns` order.
    public var rows: [[JSONScalar]]
    /// Rows the view holds in all; more than `rows.count` when the server cut the answer to a `limit`.
    public var totalRows: Int
    /// The epoch these rows belong to: the live epoch being built, or the last checkpoint's.
    public var epoch: UInt64
    /// True for the live in-memory state, false for rows read from the last checkpoint.
    public var isLive: Bool

    public init(name: String, columns: [ViewColumn], rows: [[JSONScalar]], totalRows: Int? = nil, epoch: UInt64, isLive: Bool) {
        self.name = name
        self.columns = columns
        self.rows = rows
        self.totalRows = totalRows ?? rows.count
        self.epoch = epoch
        self.isLive = isLive
    }

    /// The column the dashboard charts: the first non-key column with a numeric cell, else the first
    /// column with a numeric cell; nil when no cell is numeric.
    public var valueColumnIndex: Int? {
        func hasNumber(_ index: Int) -> Bool { rows.contains { index < $0.count && $0[index].numericValue != nil } }
        let indices = columns.indices
        return indices.first { !columns[$0].isGroupKey && hasNumber($0) } ?? indices.first(where: hasNumber)
    }

    /// The `limit` rows with the largest values in `valueColumnIndex` (ties and non-numeric cells keep
    /// their order, after the numbers); all rows in their order when no column is numeric.
    /// `totalRows` keeps counting every row.
    public func top(_ limit: Int) -> ViewRows {
        var result = self
        guard let column = valueColumnIndex else {
            result.rows = Array(rows.prefix(max(0, limit)))
            return result
        }
        let ranked = rows.enumerated().sorted { left, right in
            let leftValue = column < left.element.count ? left.element[column].numericValue : nil
            let rightValue = column < right.element.count ? right.element[column].numericValue : nil
            switch (leftValue, rightValue) {
            case let (l?, r?) where l != r: return l > r
            case (.some, nil): return true
            case (nil, .some): return false
            default: return left.offset < right.offset
            }
        }
        result.rows = ranked.prefix(max(0, limit)).map(\.element)
        return result
    }
}
