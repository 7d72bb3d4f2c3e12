import Foundation
import Synchronization

/// The scalar functions a view or query may call, with PostgreSQL's results (RisingWave follows them).
///
/// Any NULL argument gives NULL, except `concat` (skips NULLs), `coalesce` (first non-NULL) and `nullif`.
/// Where PostgreSQL raises an error at run time (a negative `substr` length, `split_part` field 0, a pattern
/// that does not compile) the result is NULL: a streaming view cannot stop for one row. Text positions and
/// lengths count Unicode scalars (PostgreSQL's characters in UTF-8).
public enum ScalarFunction: String, Sendable, Hashable, CaseIterable {
    /// `coalesce(a, b, …)`: the first non-NULL argument (evaluated lazily by `BoundExpression.evaluate`).
    case coalesce
    /// `nullif(a, b)`: NULL when `a = b`, else `a`.
    case nullif
    case lower, upper
    /// `substr(s, start[, count])` and `substring(s, start[, count])`: 1-based; a start before 1 eats into the count.
    case substr
    /// `split_part(s, delimiter, n)`: the n-th field (from the end when n < 0); '' past the last field.
    case splitPart = "split_part"
    /// `concat(a, …)`: the arguments' text, NULLs skipped.
    case concat
    /// `length(s)`, `char_length(s)`: characters.
    case length
    /// `btrim(s[, characters])` and `trim(s)`: strips the characters (default a space) from both ends.
    case btrim
    case ltrim, rtrim
    /// `(regexp_match(s, pattern))[n]`: the n-th capture group of the first match (the whole match when the
    /// pattern has no group); NULL on no match or past the last element. Bare `regexp_match` returns `text[]`,
    /// which no column holds yet, so the binder accepts it only under a subscript.
    case regexpMatchElement = "regexp_match"
    /// `to_char(timestamp, format)`: see `TimestampFormat` for the patterns.
    case toChar = "to_char"
    /// `date_trunc(unit, timestamp)`: see `TimeFunctions.truncate`.
    case dateTrunc = "date_trunc"
    /// `date_part(unit, timestamp)`: a double (see `TimeFunctions.extract`).
    case datePart = "date_part"
    /// `EXTRACT(unit FROM timestamp)`, bound as `extract(unit, timestamp)`: the same value as `date_part`,
    /// typed NUMERIC as PostgreSQL types it.
    case extract
    /// `timestamp + interval` (and `interval + timestamp`), bound as `timestamp_plus_interval(timestamp, interval)`.
    case timestampPlusInterval = "timestamp_plus_interval"
    /// `timestamp - interval`.
    case timestampMinusInterval = "timestamp_minus_interval"
    /// `CAST(x AS type)` / `x::type`, bound to one of these by the target's value type. Text that is not a value
    /// of the type gives NULL (PostgreSQL raises an error; a streaming view cannot stop for one row).
    case castToInteger = "cast_to_bigint"
    case castToDouble = "cast_to_double"
    case castToNumeric = "cast_to_numeric"
    case castToText = "cast_to_varchar"
    case castToBoolean = "cast_to_boolean"
    case castToTimestamp = "cast_to_timestamp"
    case castToTimestamptz = "cast_to_timestamptz"
    case castToDate = "cast_to_date"

    /// The type a cast gives, or nil for other functions.
    var castTarget: ValueType? {
        switch self {
        case .castToInteger: .integer
        case .castToDouble: .double
        case .castToNumeric: .numeric
        case .castToText: .text
        case .castToBoolean: .boolean
        case .castToTimestamp: .timestamp
        case .castToTimestamptz: .timestamptz
        case .castToDate: .date
        default: nil
        }
    }

    /// The cast to `type`'s values.
    static func cast(to type: ValueType) -> ScalarFunction? {
        switch type {
        case .integer: .castToInteger
        case .double: .castToDouble
        case .numeric: .castToNumeric
        case .text: .castToText
        case .boolean: .castToBoolean
        case .timestamp: .castToTimestamp
        case .timestamptz: .castToTimestamptz
        case .date: .castToDate
        case .interval, .unknown: nil
        }
    }

    /// A cast's value (`self` is one of the casts; the argument is not NULL).
    private func castValue(_ value: SQLValue) -> SQLValue {
        let trimmed: String? = if case .string(let text) = value { text.trimmingCharacters(in: .whitespaces) } else { nil }
        switch self {
        case .castToInteger:
            switch value {
            case .int: return value
            case .double(let number): return Int64(exactly: number.rounded(.toNearestOrAwayFromZero)).map(SQLValue.int) ?? .null
            case .bool(let flag): return .int(flag ? 1 : 0)
            default: return trimmed.flatMap { Int64($0) }.map(SQLValue.int) ?? .null
            }
        case .castToDouble, .castToNumeric:
            switch value {
            case .int(let number): return .double(Double(number))
            case .double: return value
            default: return trimmed.flatMap { Double($0) }.flatMap { $0.isFinite ? SQLValue.double($0) : nil } ?? .null
            }
        case .castToText:
            return .string(value.text)
        case .castToBoolean:
            switch value {
            case .bool: return value
            case .int(let number): return .bool(number != 0)
            default:
                switch trimmed?.lowercased() {
                case "t", "true", "yes", "y", "on", "1": return .bool(true)
                case "f", "false", "no", "n", "off", "0": return .bool(false)
                default: return .null
                }
            }
        case .castToTimestamp, .castToTimestamptz, .castToDate:
            guard let trimmed else { return .null }
            let zone: CanonicalTime.Zone = self == .castToTimestamptz ? .toUTC : .ignored
            let canonical = CanonicalTime.parse(trimmed, dateOnly: self == .castToDate, zone: zone)
                ?? (self == .castToDate ? CanonicalTime.parse(trimmed, dateOnly: false, zone: zone).map { String($0.prefix(10)) } : nil)
            return canonical.map(SQLValue.string) ?? .null
        default:
            preconditionFailure("\(self) is not a cast")
        }
    }

    /// The function's value for evaluated arguments (`coalesce` is short-circuited by the caller).
    func apply(_ arguments: [SQLValue]) -> SQLValue {
        switch self {
        case .coalesce:
            return arguments.first { !$0.isNull } ?? .null
        case .nullif:
            guard arguments.count == 2 else { return .null }
            if arguments[0].isNull || arguments[1].isNull { return arguments[0] }
            return SQLValue.compare(arguments[0], arguments[1]) == 0 ? .null : arguments[0]
        case .concat:
            return .string(arguments.lazy.filter { !$0.isNull }.map(\.text).joined())
        default:
            break
        }
        if arguments.contains(where: \.isNull) { return .null }
        if castTarget != nil { return arguments.count == 1 ? castValue(arguments[0]) : .null }
        switch self {
        case .castToInteger, .castToDouble, .castToNumeric, .castToText, .castToBoolean, .castToTimestamp, .castToTimestamptz, .castToDate:
            return .null
        case .lower: return text(arguments, 0).map { .string($0.lowercased()) } ?? .null
        case .upper: return text(arguments, 0).map { .string($0.uppercased()) } ?? .null
        case .length: return text(arguments, 0).map { .int(Int64($0.unicodeScalars.count)) } ?? .null
        case .substr:
            guard let string = text(arguments, 0), case .int(let start)? = arguments.dropFirst().first else { return .null }
            var count: Int64?
            if arguments.count > 2 {
                guard case .int(let value) = arguments[2] else { return .null }
                count = value
            }
            return Self.substring(string, start: start, count: count).map(SQLValue.string) ?? .null
        case .splitPart:
            guard let string = text(arguments, 0), let delimiter = text(arguments, 1), arguments.count == 3, case .int(let field) = arguments[2] else { return .null }
            return Self.splitPart(string, delimiter: delimiter, field: field).map(SQLValue.string) ?? .null
        case .btrim, .ltrim, .rtrim:
            guard let string = text(arguments, 0) else { return .null }
            let characters = arguments.count > 1 ? text(arguments, 1) : " "
            guard let characters else { return .null }
            return .string(Self.trim(string, characters: characters, leading: self != .rtrim, trailing: self != .ltrim))
        case .regexpMatchElement:
            guard let string = text(arguments, 0), let pattern = text(arguments, 1), arguments.count == 3, case .int(let index) = arguments[2] else { return .null }
            return RegularExpressionCache.shared.matchElement(pattern: pattern, in: string, index: index)
        case .toChar:
            guard let time = text(arguments, 0), let format = text(arguments, 1), let parts = try? TimestampFormat.parse(format).get() else { return .null }
            return TimestampFormat.render(parts, time: time).map(SQLValue.string) ?? .null
        case .dateTrunc:
            guard let unitText = text(arguments, 0), let unit = TimeFunctions.Unit(unitText), let time = microseconds(arguments, 1),
                let truncated = TimeFunctions.truncate(time, to: unit)
            else { return .null }
            return .string(CivilTime.timestampText(microseconds: truncated))
        case .datePart, .extract:
            guard let unitText = text(arguments, 0), let unit = TimeFunctions.Unit(unitText), let time = microseconds(arguments, 1) else { return .null }
            return .double(TimeFunctions.extract(unit, from: time))
        case .timestampPlusInterval, .timestampMinusInterval:
            guard let time = microseconds(arguments, 0), let intervalText = text(arguments, 1),
                case .success(var interval) = SQLInterval.parse(intervalText)
            else { return .null }
            if self == .timestampMinusInterval { interval = interval.negated }
            return TimeFunctions.add(interval, to: time).map { .string(CivilTime.timestampText(microseconds: $0)) } ?? .null
        case .coalesce, .nullif, .concat:
            preconditionFailure("handled above")
        }
    }

    private func text(_ arguments: [SQLValue], _ index: Int) -> String? {
        guard index < arguments.count, case .string(let value) = arguments[index] else { return nil }
        return value
    }

    /// A time argument (carried as its canonical text) as microseconds since 1970.
    private func microseconds(_ arguments: [SQLValue], _ index: Int) -> Int64? {
        text(arguments, index).flatMap(CivilTime.microseconds(of:))
    }

    static func substring(_ string: String, start: Int64, count: Int64?) -> String? {
        let scalars = Array(string.unicodeScalars)
        let first = max(start, 1)
        var end = Int64(scalars.count) + 1
        if let count {
            guard count >= 0 else { return nil }
            let (last, overflow) = start.addingReportingOverflow(count)
            end = overflow ? end : min(end, last)
        }
        guard first < end, first <= Int64(scalars.count) else { return "" }
        var result = String.UnicodeScalarView()
        result.append(contentsOf: scalars[Int(first - 1)..<Int(end - 1)])
        return String(result)
    }

    static func splitPart(_ string: String, delimiter: String, field: Int64) -> String? {
        guard field != 0 else { return nil }
        let fields: [Substring] = delimiter.isEmpty ? [Substring(string)] : string.split(separator: delimiter, omittingEmptySubsequences: false)
        let magnitude = field.magnitude
        guard magnitude <= UInt64(fields.count) else { return "" }
        return String(field > 0 ? fields[Int(magnitude) - 1] : fields[fields.count - Int(magnitude)])
    }

    static func trim(_ string: String, characters: String, leading: Bool, trailing: Bool) -> String {
        let set = Set(characters.unicodeScalars)
        var scalars = Substring(string).unicodeScalars[...]
        if leading { while let first = scalars.first, set.contains(first) { scalars.removeFirst() } }
        if trailing { while let last = scalars.last, set.contains(last) { scalars.removeLast() } }
        return String(String.UnicodeScalarView(scalars))
    }
}

/// Compiled patterns of `regexp_match`, shared by every evaluation (a pattern is usually one literal).
final class RegularExpressionCache: Sendable {
    static let shared = RegularExpressionCache()
    /// Enough for every literal of a pipeline; a pattern computed per row is compiled again once this fills.
    private static let capacity = 256
    private let compiled = Mutex<[String: NSRegularExpression]>([:])

    /// The compiled pattern, or nil when it does not compile (ICU syntax, which agrees with PostgreSQL's
    /// regular expressions on the common constructs: classes, groups, quantifiers, anchors).
    func expression(_ pattern: String) -> NSRegularExpression? {
        if let known = compiled.withLock({ $0[pattern] }) { return known }
        guard let expression = try? NSRegularExpression(pattern: pattern) else { return nil }
        compiled.withLock { cache in
            if cache.count >= Self.capacity { cache.removeAll(keepingCapacity: true) }
            cache[pattern] = expression
        }
        return expression
    }

    func matchElement(pattern: String, in string: String, index: Int64) -> SQLValue {
        guard let expression = expression(pattern) else { return .null }
        let whole = NSRange(string.startIndex..., in: string)
        guard let match = expression.firstMatch(in: string, range: whole) else { return .null }
        let groups = expression.numberOfCaptureGroups
        let element: Int
        if groups == 0 {
            guard index == 1 else { return .null }
            element = 0
        } else {
            guard index >= 1, index <= Int64(groups) else { return .null }
            element = Int(index)
        }
        let range = match.range(at: element)
        guard range.location != NSNotFound, let bounds = Range(range, in: string) else { return .null }
        return .string(String(string[bounds]))
    }
}

/// `to_char(timestamp, format)` for PostgreSQL's common patterns: `YYYY`, `YY`, `MM`, `Mon`/`MON`/`mon`,
/// `Month`/`MONTH`/`month` (blank-padded to 9, as PostgreSQL), `DD`, `Dy`/`DY`/`dy`, `Day`/`DAY`/`day`
/// (padded to 9), `HH24`, `HH12`/`HH`, `MI`, `SS`, `MS`, `US`, `AM`/`PM`/`am`/`pm`. Text in double quotes is
/// copied as is; other characters that are no pattern are copied. PostgreSQL's other patterns (`Q`, `WW`,
/// `J`, `TZ`, the `FM` and `TH` modifiers, …) are refused by name rather than misread.
public enum TimestampFormat {
    enum Part: Equatable {
        case literal(String)
        case field(Field)
    }

    enum Field: Equatable {
        case year4, year2, month, monthAbbreviation(Case), monthName(Case), day, weekdayAbbreviation(Case), weekdayName(Case)
        case hour24, hour12, minute, second, millisecond, microsecond, meridiem(upper: Bool)
    }

    enum Case: Equatable { case capitalized, upper, lower }

    /// The patterns understood, as a list for messages.
    static let supportedList = "YYYY, YY, MM, Mon, Month, DD, Dy, Day, HH24, HH12, HH, MI, SS, MS, US, AM, PM"

    /// Recognised patterns, longest first (PostgreSQL matches the longest at each position).
    private static let patterns: [(String, Field?)] = [
        ("MONTH", .monthName(.upper)), ("Month", .monthName(.capitalized)), ("month", .monthName(.lower)),
        ("SSSSS", nil), ("SSSS", nil), ("IYYY", nil), ("IDDD", nil), ("YYYY", .year4), ("yyyy", .year4),
        ("HH24", .hour24), ("hh24", .hour24), ("HH12", .hour12), ("hh12", .hour12),
        ("Y,YYY", nil), ("A.M.", nil), ("P.M.", nil), ("a.m.", nil), ("p.m.", nil), ("B.C.", nil), ("A.D.", nil),
        ("IYY", nil), ("YYY", nil), ("DAY", .weekdayName(.upper)), ("Day", .weekdayName(.capitalized)), ("day", .weekdayName(.lower)),
        ("MON", .monthAbbreviation(.upper)), ("Mon", .monthAbbreviation(.capitalized)), ("mon", .monthAbbreviation(.lower)),
        ("DDD", nil), ("TZH", nil), ("TZM", nil), ("FF1", nil), ("FF2", nil), ("FF3", nil), ("FF4", nil), ("FF5", nil), ("FF6", nil),
        ("DY", .weekdayAbbreviation(.upper)), ("Dy", .weekdayAbbreviation(.capitalized)), ("dy", .weekdayAbbreviation(.lower)),
        ("YY", .year2), ("yy", .year2), ("MM", .month), ("mm", .month), ("DD", .day), ("dd", .day), ("HH", .hour12), ("hh", .hour12),
        ("MI", .minute), ("mi", .minute), ("SS", .second), ("ss", .second), ("MS", .millisecond), ("ms", .millisecond),
        ("US", .microsecond), ("us", .microsecond), ("AM", .meridiem(upper: true)), ("PM", .meridiem(upper: true)),
        ("am", .meridiem(upper: false)), ("pm", .meridiem(upper: false)),
        ("IY", nil), ("IW", nil), ("ID", nil), ("WW", nil), ("CC", nil), ("RM", nil), ("rm", nil), ("TZ", nil), ("tz", nil), ("OF", nil),
        ("FM", nil), ("FX", nil), ("TM", nil), ("TH", nil), ("th", nil), ("BC", nil), ("AD", nil), ("SP", nil),
        ("Y", nil), ("I", nil), ("W", nil), ("D", nil), ("J", nil), ("Q", nil),
    ]

    /// The format's parts, or the first pattern PostgreSQL knows and this does not.
    static func parse(_ format: String) -> Result<[Part], UnsupportedPattern> {
        var parts: [Part] = []
        var literal = ""
        var rest = Substring(format)
        func flush() {
            if !literal.isEmpty { parts.append(.literal(literal)) }
            literal = ""
        }
        outer: while let first = rest.first {
            if first == "\"" {
                rest.removeFirst()
                while let character = rest.first, character != "\"" {
                    rest.removeFirst()
                    if character == "\\", let escaped = rest.first {
                        rest.removeFirst()
                        literal.append(escaped)
                    } else {
                        literal.append(character)
                    }
                }
                if !rest.isEmpty { rest.removeFirst() }
                continue
            }
            if first == "\\", rest.dropFirst().first == "\"" {
                rest.removeFirst(2)
                literal.append("\"")
                continue
            }
            for (pattern, field) in patterns where rest.hasPrefix(pattern) {
                guard let field else { return .failure(UnsupportedPattern(pattern: pattern)) }
                flush()
                parts.append(.field(field))
                rest.removeFirst(pattern.count)
                continue outer
            }
            literal.append(first)
            rest.removeFirst()
        }
        flush()
        return .success(parts)
    }

    struct UnsupportedPattern: Error {
        var pattern: String
    }

    private static let monthNames = ["January", "February", "March", "April", "May", "June", "July", "August", "September", "October", "November", "December"]
    private static let weekdayNames = ["Sunday", "Monday", "Tuesday", "Wednesday", "Thursday", "Friday", "Saturday"]

    /// Renders a time carried as canonical text (`YYYY-MM-DD[ HH:MM:SS[.ffffff]]`); nil if it is not one.
    static func render(_ parts: [Part], time: String) -> String? {
        guard let canonical = CanonicalTime.parse(time, dateOnly: false) else { return nil }
        let bytes = Array(canonical.utf8)
        func number(_ range: Range<Int>) -> Int {
            bytes[range].reduce(0) { $0 * 10 + Int($1 - 48) }
        }
        let year = number(0..<4), month = number(5..<7), day = number(8..<10)
        let hour = number(11..<13), minute = number(14..<16), second = number(17..<19)
        let microsecond = bytes.count > 20 ? number(20..<26) : 0
        let weekday = CanonicalTime.weekday(year: year, month: month, day: day)
        var output = ""
        for part in parts {
            switch part {
            case .literal(let text): output += text
            case .field(let field):
                switch field {
                case .year4: output += pad(year, 4)
                case .year2: output += pad(year % 100, 2)
                case .month: output += pad(month, 2)
                case .monthAbbreviation(let letterCase): output += cased(String(monthNames[month - 1].prefix(3)), letterCase)
                case .monthName(let letterCase): output += padded(cased(monthNames[month - 1], letterCase))
                case .day: output += pad(day, 2)
                case .weekdayAbbreviation(let letterCase): output += cased(String(weekdayNames[weekday].prefix(3)), letterCase)
                case .weekdayName(let letterCase): output += padded(cased(weekdayNames[weekday], letterCase))
                case .hour24: output += pad(hour, 2)
                case .hour12: output += pad(hour % 12 == 0 ? 12 : hour % 12, 2)
                case .minute: output += pad(minute, 2)
                case .second: output += pad(second, 2)
                case .millisecond: output += pad(microsecond / 1000, 3)
                case .microsecond: output += pad(microsecond, 6)
                case .meridiem(let upper): output += hour < 12 ? (upper ? "AM" : "am") : (upper ? "PM" : "pm")
                }
            }
        }
        return output
    }

    private static func pad(_ value: Int, _ width: Int) -> String {
        let digits = String(value)
        return String(repeating: "0", count: max(0, width - digits.count)) + digits
    }

    private static func padded(_ name: String) -> String { name + String(repeating: " ", count: max(0, 9 - name.count)) }

    private static func cased(_ name: String, _ letterCase: Case) -> String {
        switch letterCase {
        case .capitalized: name
        case .upper: name.uppercased()
        case .lower: name.lowercased()
        }
    }
}

extension CanonicalTime {
    /// 0 = Sunday … 6 = Saturday, for the proleptic Gregorian calendar (PostgreSQL's).
    static func weekday(year: Int, month: Int, day: Int) -> Int {
        // Days since 1970-01-01 (a Thursday), by Howard Hinnant's days_from_civil.
        let y = month <= 2 ? year - 1 : year
        let era = (y >= 0 ? y : y - 399) / 400
        let yearOfEra = y - era * 400
        let dayOfYear = (153 * (month + (month > 2 ? -3 : 9)) + 2) / 5 + day - 1
        let dayOfEra = yearOfEra * 365 + yearOfEra / 4 - yearOfEra / 100 + dayOfYear
        let days = era * 146_097 + dayOfEra - 719_468
        return ((days % 7) + 7 + 4) % 7
    }
}
