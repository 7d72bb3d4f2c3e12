/// The column types a source can declare (PostgreSQL/RisingWave names and their synonyms).
public enum SQLType: String, Sendable, Hashable, CaseIterable, CustomStringConvertible {
    case varchar = "VARCHAR"
    case smallint = "SMALLINT"
    case integer = "INTEGER"
    case bigint = "BIGINT"
    case real = "REAL"
    case double = "DOUBLE PRECISION"
    case decimal = "DECIMAL"
    case boolean = "BOOLEAN"
    case timestamp = "TIMESTAMP"
    case timestamptz = "TIMESTAMPTZ"
    case date = "DATE"
    /// A JSON value, kept as its text (RisingWave's JSONB): read into with `->` and `->>`.
    case jsonb = "JSONB"

    public var description: String { rawValue }

    var isInteger: Bool { self == .smallint || self == .integer || self == .bigint }
    var isNumeric: Bool { isInteger || self == .real || self == .double || self == .decimal }

    /// Single-word spellings; `DOUBLE PRECISION`, `CHARACTER VARYING` and `TIMESTAMP WITH[OUT] TIME ZONE`
    /// are assembled by the parser.
    static let spellings: [String: SQLType] = [
        "varchar": .varchar, "text": .varchar, "string": .varchar, "character": .varchar, "char": .varchar,
        "smallint": .smallint, "int2": .smallint,
        "int": .integer, "integer": .integer, "int4": .integer,
        "bigint": .bigint, "int8": .bigint,
        "real": .real, "float4": .real,
        "double": .double, "float8": .double, "float": .double,
        "decimal": .decimal, "numeric": .decimal,
        "boolean": .boolean, "bool": .boolean,
        "timestamp": .timestamp, "timestamptz": .timestamptz,
        "date": .date,
        "jsonb": .jsonb,
    ]

    static var spellingList: String {
        "VARCHAR/TEXT, SMALLINT, INT/INTEGER, BIGINT, REAL, DOUBLE PRECISION/FLOAT, DECIMAL/NUMERIC, BOOLEAN, TIMESTAMP, TIMESTAMPTZ, DATE, JSONB, STRUCT<field type, ...>"
    }
}

extension SQLType {
    /// The column type that holds values of an expression's type (a view's output read by another view).
    init(_ type: ValueType) {
        switch type {
        case .boolean: self = .boolean
        case .integer: self = .bigint
        case .double: self = .double
        case .numeric: self = .decimal
        // An interval column of a view is read by the views over it as its text.
        case .text, .interval, .unknown: self = .varchar
        case .timestamp: self = .timestamp
        case .timestamptz: self = .timestamptz
        case .date: self = .date
        }
    }
}
