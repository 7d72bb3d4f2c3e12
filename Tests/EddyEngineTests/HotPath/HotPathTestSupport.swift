import EddyEngine

/// What a test sees of one decoded column.
enum Cell: Equatable, CustomStringConvertible {
    case null
    case wrongType
    case string([UInt8])
    case int(Int64)
    case double(Double)
    case bool(Bool)

    static func text(_ value: String) -> Cell { .string(Array(value.utf8)) }

    var description: String {
        switch self {
        case .null: "NULL"
        case .wrongType: "wrong type"
        case .string(let bytes): "\"\(String(decoding: bytes, as: UTF8.self))\" \(bytes)"
        case .int(let value): "int \(value)"
        case .double(let value): "double \(value) (sign \(value.sign))"
        case .bool(let value): "bool \(value)"
        }
    }

    /// Double cells compare by bit pattern, so that -0 and 0 differ.
    static func == (lhs: Cell, rhs: Cell) -> Bool {
        switch (lhs, rhs) {
        case (.null, .null), (.wrongType, .wrongType): true
        case (.string(let a), .string(let b)): a == b
        case (.int(let a), .int(let b)): a == b
        case (.double(let a), .double(let b)): a.bitPattern == b.bitPattern
        case (.bool(let a), .bool(let b)): a == b
        default: false
        }
    }
}

enum Decoded: Equatable, CustomStringConvertible {
    case skipped(SkipReason)
    case row([Cell])

    var description: String {
        switch self {
        case .skipped(let reason): "skipped (\(reason))"
        case .row(let cells): "row \(cells)"
        }
    }
}

/// Decodes `bytes` with a fresh decoder and reads every column back through the public API.
func decode(_ bytes: [UInt8], _ schema: RowSchema, limits: DecoderLimits = DecoderLimits()) -> Decoded {
    var decoder = RowDecoder(schema: schema, limits: limits)
    return decode(bytes, with: &decoder)
}

func decode(_ text: String, _ schema: RowSchema, limits: DecoderLimits = DecoderLimits()) -> Decoded {
    decode(Array(text.utf8), schema, limits: limits)
}

func decode(_ bytes: [UInt8], with decoder: inout RowDecoder) -> Decoded {
    let result = bytes.withUnsafeBytes { payload in
        decoder.decode(payload) { row in
            (0..<row.columnCount).map { column -> Cell in
                if row.isWrongType(column) { return .wrongType }
                if row.isNull(column) { return .null }
                switch row.kind(column) {
                case .string: return .string(row.withStringBytes(column) { Array($0) }!)
                case .int64, .timestamp, .timestamptz, .date: return .int(row.int64(column)!)
                case .double, .decimal: return .double(row.double(column)!)
                case .bool: return .bool(row.bool(column)!)
                }
            }
        }
    }
    switch result {
    case .success(let cells): return .row(cells)
    case .failure(let reason): return .skipped(reason)
    }
}

func schema(_ columns: (String, ColumnKind)...) -> RowSchema {
    RowSchema(columns: columns.map { RowSchema.Column(name: $0.0, kind: $0.1) })
}

/// The example source: `user_events (event_timestamp TIMESTAMP, user VARCHAR, page VARCHAR, event VARCHAR)`.
let userEvents = schema(("event_timestamp", .timestamp), ("user", .string), ("page", .string), ("event", .string))

extension Aggregator {
    mutating func apply(_ text: String) {
        Array(text.utf8).withUnsafeBytes { apply($0) }
    }

    mutating func apply(bytes: [UInt8]) {
        bytes.withUnsafeBytes { apply($0) }
    }
}

extension GroupTable {
    /// Group number by its GROUP BY values.
    func groupsByKey() throws -> [[ScalarValue]: Int] {
        var groups: [[ScalarValue]: Int] = [:]
        for group in 0..<groupCount { groups[try keyValues(ofGroup: group)] = group }
        return groups
    }

    /// Each group's GROUP BY values and aggregate results.
    func results() throws -> [[ScalarValue]: [ScalarValue]] {
        var results: [[ScalarValue]: [ScalarValue]] = [:]
        for group in 0..<groupCount {
            results[try keyValues(ofGroup: group)] = aggregates.indices.map { value(ofAggregate: $0, group: group) }
        }
        return results
    }
}

/// Days since 1970 of a date, computed independently of the decoder (by counting).
func daysSince1970(_ year: Int, _ month: Int, _ day: Int) -> Int64 {
    func isLeap(_ year: Int) -> Bool { year % 4 == 0 && (year % 100 != 0 || year % 400 == 0) }
    let monthDays = [31, isLeap(year) ? 29 : 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31]
    var days = 0
    if year >= 1970 {
        for y in 1970..<year { days += isLeap(y) ? 366 : 365 }
    } else {
        for y in year..<1970 { days -= isLeap(y) ? 366 : 365 }
    }
    for m in 0..<(month - 1) { days += monthDays[m] }
    return Int64(days + day - 1)
}
