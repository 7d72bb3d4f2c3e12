/// How the hot path holds a source column's values.
public enum ColumnKind: Sendable, Hashable {
    /// VARCHAR / TEXT: JSON strings only (a number for a string column is a wrong type).
    case string
    /// SMALLINT / INT / BIGINT: JSON numbers with an integral value within Int64 (see `RowDecoder`).
    case int64
    /// REAL / DOUBLE PRECISION: any JSON number within Double's range.
    case double
    /// DECIMAL / NUMERIC, held as a Double for now (about 15-17 significant digits, not exact decimals).
    case decimal
    /// BOOLEAN: JSON `true` / `false`.
    case bool
    /// TIMESTAMP (without time zone): Int64 microseconds since 1970-01-01 00:00:00, from
    /// `"YYYY-MM-DD HH:MM:SS[.ffffff]"` (or a `T` separator, or a bare date for midnight). A zone suffix
    /// is a wrong type here; use `timestamptz`.
    case timestamp
    /// TIMESTAMPTZ / TIMESTAMP WITH TIME ZONE: Int64 microseconds since 1970 UTC. Accepts what
    /// `timestamp` accepts plus a trailing `Z` or `+hh:mm` / `-hh:mm` / `+hhmm` / `+hh`; no suffix means UTC.
    case timestamptz
    /// DATE: Int64 days since 1970-01-01, from `"YYYY-MM-DD"`.
    case date

    /// Whether values of this kind are held as Int64 (`DecodedRow.int64(_:)`).
    public var isInt64Backed: Bool {
        switch self {
        case .int64, .timestamp, .timestamptz, .date: true
        case .string, .double, .decimal, .bool: false
        }
    }

    /// Whether values of this kind are held as Double (`DecodedRow.double(_:)`).
    public var isDoubleBacked: Bool { self == .double || self == .decimal }
}

/// What a JSON number in a time column counts since 1970-01-01 00:00:00 UTC (RisingWave's
/// `timestamptz.handling.mode`).
public enum TimeNumberUnit: Sendable, Hashable {
    /// Numbers are not times (a wrong type): only strings are.
    case none
    case seconds
    case milliseconds
    case microseconds
    /// By magnitude, as RisingWave's `guess_number_unit`: below 10^11 seconds, below 10^14 milliseconds, below
    /// 10^17 microseconds, else nanoseconds (so each reads 1973-03-03 … 5138-11-16 right).
    case guess
}

/// Where a source column's value comes from.
public enum ColumnOrigin: Sendable, Hashable {
    /// The top-level JSON field of the column's name.
    case field
    /// The Kafka message itself (`INCLUDE timestamp | partition | offset | key`), not its JSON.
    case metadata(MessageField)
    /// A value inside the top-level field `root`: a STRUCT's field, a JSONB path.
    case path(root: String, steps: [PathStep])
    /// `window_start` (or `window_end`, `isEnd`) of a `TUMBLE` over the source: computed from the time column's
    /// value after the message is decoded (`RowDecoder.fillWindows`); NULL when the time is.
    case tumble(timeColumn: Int, sizeMicroseconds: Int64, offsetMicroseconds: Int64, isEnd: Bool)
}

/// A step into nested JSON.
public enum PathStep: Sendable, Hashable {
    /// An object's field, by name (ASCII case ignored as for top-level fields, when the schema says so).
    case field(String)
    /// An array's element, from 0.
    case index(Int)
}

/// How a column reads its JSON value.
public enum ValueReading: Sendable, Hashable {
    /// As `ColumnKind` says (see its cases).
    case typed
    /// The value's JSON text as written (a string column); JSON `null` is NULL.
    case json
    /// PostgreSQL's `->>`: a string's contents, any other value's JSON text (a string column); `null` is NULL.
    case text
    /// `->>` then a cast to `kind`: a number, or a string holding one (or a time, or `true`/`false`).
    case castText
}

/// The Kafka metadata of a message a column can hold (RisingWave's `INCLUDE` columns): the timestamp as a
/// `timestamptz`, the others as strings (partition and offset in decimal, the key's bytes as they are).
public enum MessageField: Sendable, Hashable {
    case timestamp, partition, offset, key
}

/// The columns of a source, in declaration order; a JSON field fills the column of the same name.
public struct RowSchema: Sendable, Hashable {
    public struct Column: Sendable, Hashable {
        public var name: String
        public var kind: ColumnKind
        /// Where the value comes from: the JSON field of the column's name unless said otherwise.
        public var origin: ColumnOrigin
        /// How the JSON value is read into `kind`.
        public var reading: ValueReading

        public init(name: String, kind: ColumnKind, origin: ColumnOrigin = .field, reading: ValueReading = .typed) {
            self.name = name
            self.kind = kind
            self.origin = origin
            self.reading = reading
        }
    }

    public var columns: [Column]
    /// What a JSON number in a TIMESTAMP or TIMESTAMPTZ column counts (strings are read as ISO text either way).
    public var timeNumbers: TimeNumberUnit
    /// Whether a field whose name equals a column's only ignoring ASCII case fills it (when none matches exactly).
    public var ignoresKeyCase: Bool

    public init(columns: [Column], timeNumbers: TimeNumberUnit = .guess, ignoresKeyCase: Bool = true) {
        self.columns = columns
        self.timeNumbers = timeNumbers
        self.ignoresKeyCase = ignoresKeyCase
    }
}

/// Limits applied to every message before and while decoding it.
public struct DecoderLimits: Sendable, Hashable {
    /// Larger messages are skipped (`SkipReason.tooLarge`) without being scanned. Default 1 MiB.
    public var maxMessageBytes: Int
    /// Deepest nesting of objects and arrays, the message's own object counting as 1; deeper messages
    /// are skipped (`SkipReason.tooDeep`). Default 64.
    public var maxDepth: Int

    public init(maxMessageBytes: Int = 1 << 20, maxDepth: Int = 64) {
        precondition(maxMessageBytes >= 1, "maxMessageBytes must be at least 1, not \(maxMessageBytes)")
        precondition(maxDepth >= 1 && maxDepth <= 1 << 20, "maxDepth must be within 1...\(1 << 20), not \(maxDepth)")
        self.maxMessageBytes = maxMessageBytes
        self.maxDepth = maxDepth
    }
}

/// Why a message was skipped entirely. Its offset still advances; nothing of it reaches a view.
///
/// When a message has several problems, the first one met while scanning from the start decides.
public enum SkipReason: Error, CaseIterable, Sendable, Hashable, CustomStringConvertible {
    /// No bytes, or only JSON whitespace (a Kafka tombstone has no payload).
    case emptyMessage
    /// More than `DecoderLimits.maxMessageBytes`; not scanned at all.
    case tooLarge
    /// Malformed or truncated JSON, trailing garbage after the value, or a lone UTF-16 surrogate escape.
    case notJSON
    /// Valid JSON whose top-level value is not an object (an array, string, number, literal).
    case notObject
    /// Nested deeper than `DecoderLimits.maxDepth`.
    case tooDeep
    /// A string holds bytes that are not valid UTF-8 (overlong, surrogate, truncated or stray bytes).
    case invalidUTF8
    /// The message's group key is longer than an LMDB key can hold and its shortened storage key
    /// collides with another group's (see `GroupTable`); practically only with crafted input.
    case groupKeyCollision

    /// A snake_case label for metrics (`eddy_source_errors_total{reason="not_json"}`).
    public var description: String {
        switch self {
        case .emptyMessage: "empty_message"
        case .tooLarge: "too_large"
        case .notJSON: "not_json"
        case .notObject: "not_object"
        case .tooDeep: "too_deep"
        case .invalidUTF8: "invalid_utf8"
        case .groupKeyCollision: "group_key_collision"
        }
    }
}

/// What happened to the messages one `Aggregator` was given. Every message lands in exactly one of
/// `rows`, `filteredOut` or a skip reason, so `messages` is their sum.
public struct HotPathCounters: Sendable, Hashable {
    /// Messages decoded, accepted by the view's filter, and aggregated.
    public internal(set) var rows = 0
    /// Messages decoded but rejected by the view's `WHERE`.
    public internal(set) var filteredOut = 0
    /// Fields present with the wrong JSON type (or an unparseable value for their column, like an
    /// invalid date); each made its column NULL, and its message was still used. Counted once per
    /// column per message.
    public internal(set) var wrongTypeFields = 0
    /// Messages delivered again below their partition's next offset, dropped because they were applied before.
    public internal(set) var redeliveredMessages = 0

    private var emptyMessage = 0
    private var tooLarge = 0
    private var notJSON = 0
    private var notObject = 0
    private var tooDeep = 0
    private var invalidUTF8 = 0
    private var groupKeyCollision = 0

    public init() {}

    /// Messages skipped for `reason`.
    public internal(set) subscript(reason: SkipReason) -> Int {
        get {
            switch reason {
            case .emptyMessage: emptyMessage
            case .tooLarge: tooLarge
            case .notJSON: notJSON
            case .notObject: notObject
            case .tooDeep: tooDeep
            case .invalidUTF8: invalidUTF8
            case .groupKeyCollision: groupKeyCollision
            }
        }
        set {
            switch reason {
            case .emptyMessage: emptyMessage = newValue
            case .tooLarge: tooLarge = newValue
            case .notJSON: notJSON = newValue
            case .notObject: notObject = newValue
            case .tooDeep: tooDeep = newValue
            case .invalidUTF8: invalidUTF8 = newValue
            case .groupKeyCollision: groupKeyCollision = newValue
            }
        }
    }

    /// Messages skipped for any reason.
    public var skipped: Int {
        emptyMessage + tooLarge + notJSON + notObject + tooDeep + invalidUTF8 + groupKeyCollision
    }

    /// Every message given to `Aggregator.apply`.
    public var messages: Int { rows + filteredOut + skipped }

    /// The counts of two sources together.
    static func + (left: HotPathCounters, right: HotPathCounters) -> HotPathCounters {
        var sum = left
        sum.rows += right.rows
        sum.filteredOut += right.filteredOut
        sum.wrongTypeFields += right.wrongTypeFields
        sum.redeliveredMessages += right.redeliveredMessages
        for reason in SkipReason.allCases { sum[reason] += right[reason] }
        return sum
    }

    /// These decoding counters (skips other than group-key collisions, wrong-type fields) with a view's own:
    /// its rows, filtered-out messages and group-key collisions.
    func with(viewCounters view: HotPathCounters) -> HotPathCounters {
        var merged = self
        merged.rows = view.rows
        merged.filteredOut = view.filteredOut
        merged.groupKeyCollision = view.groupKeyCollision
        return merged
    }
}
