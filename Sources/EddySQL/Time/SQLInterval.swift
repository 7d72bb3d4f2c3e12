/// A PostgreSQL `interval`: months, days and microseconds, kept apart as PostgreSQL keeps them (a month is
/// not a fixed number of days, and `timestamp + interval` adds months on the calendar).
///
/// SQL carries an interval as its text in PostgreSQL's output form (`IntervalStyle` `postgres`):
/// `1 year 2 mons 3 days 04:05:06.5`, `00:05:00`, `-1 days`.
public struct SQLInterval: Sendable, Hashable, CustomStringConvertible {
    public var months: Int64
    public var days: Int64
    public var microseconds: Int64

    public init(months: Int64 = 0, days: Int64 = 0, microseconds: Int64 = 0) {
        self.months = months
        self.days = days
        self.microseconds = microseconds
    }

    /// The fields an interval's text and qualifier name (`INTERVAL '5' SECOND`, `DAY TO SECOND`).
    public enum Field: Int, Sendable, Comparable, CaseIterable {
        case year, month, day, hour, minute, second

        public static func < (lhs: Field, rhs: Field) -> Bool { lhs.rawValue < rhs.rawValue }

        public init?(keyword: String) {
            switch keyword.lowercased() {
            case "year", "years": self = .year
            case "month", "months": self = .month
            case "day", "days": self = .day
            case "hour", "hours": self = .hour
            case "minute", "minutes": self = .minute
            case "second", "seconds": self = .second
            default: return nil
            }
        }
    }

    /// `INTERVAL 'text' [first [TO last]]`: a qualifier's fields.
    public struct Qualifier: Sendable, Hashable {
        public var first: Field
        public var last: Field

        public init(first: Field, last: Field) {
            self.first = first
            self.last = last
        }
    }

    /// Whether the interval is a fixed length of time (no months, which vary).
    public var isFixedLength: Bool { months == 0 }

    /// The length of a fixed-length interval in microseconds (a day is 24 hours: Eddy's times are UTC); nil
    /// when it has months or does not fit.
    public var fixedMicroseconds: Int64? {
        guard months == 0 else { return nil }
        let (dayMicros, overflow) = days.multipliedReportingOverflow(by: CivilTime.microsecondsPerDay)
        guard !overflow else { return nil }
        let (total, overflowSum) = dayMicros.addingReportingOverflow(microseconds)
        return overflowSum ? nil : total
    }

    public var negated: SQLInterval { SQLInterval(months: -months, days: -days, microseconds: -microseconds) }

    // MARK: Text

    /// PostgreSQL's output text (`IntervalStyle` `postgres`).
    public var description: String {
        var parts: [String] = []
        let years = months / 12
        let remainingMonths = months % 12
        if years != 0 { parts.append("\(years) year\(years == 1 ? "" : "s")") }
        if remainingMonths != 0 { parts.append("\(remainingMonths) mon\(remainingMonths == 1 ? "" : "s")") }
        if days != 0 { parts.append("\(days) day\(days == 1 ? "" : "s")") }
        if microseconds != 0 || parts.isEmpty {
            let magnitude = microseconds.magnitude
            let seconds = magnitude / 1_000_000
            let fraction = magnitude % 1_000_000
            var time = (microseconds < 0 ? "-" : "") + Self.pad(seconds / 3600) + ":" + Self.pad(seconds / 60 % 60) + ":" + Self.pad(seconds % 60)
            if fraction != 0 {
                var digits = String(fraction)
                digits = String(repeating: "0", count: 6 - digits.count) + digits
                while digits.hasSuffix("0") { digits.removeLast() }
                time += "." + digits
            }
            parts.append(time)
        }
        return parts.joined(separator: " ")
    }

    private static func pad(_ value: UInt64) -> String { value < 10 ? "0\(value)" : String(value) }

    /// Parses PostgreSQL's interval input: quantities with units (`1 minute`, `2 hours`, `1.5 days`,
    /// `1 year 2 mons`, `5min`, `-3 seconds`, `@ 1 hour ago`), a time `[-]hh:mm[:ss[.f]]` (after a qualifier
    /// `MINUTE TO SECOND`, `mm:ss`), a bare number (in the qualifier's last field, else seconds), and their
    /// output form (which is also input). A qualifier keeps the fields down to its last one. Nil when the text
    /// is not an interval (the reason in `failure`).
    public static func parse(_ text: String, qualifier: Qualifier? = nil) -> Result<SQLInterval, ParseFailure> {
        var tokens: [Token] = []
        let scalars = Array(text.unicodeScalars)
        var index = 0
        while index < scalars.count {
            let scalar = scalars[index]
            if scalar == " " || scalar == "\t" || scalar == "@" {
                index += 1
            } else if scalar.properties.numericType != nil && scalar.isASCII || scalar == "-" || scalar == "+" || scalar == "." {
                var end = index + 1
                while end < scalars.count, scalars[end].isASCII, "0123456789.:".unicodeScalars.contains(scalars[end]) { end += 1 }
                tokens.append(.number(String(String.UnicodeScalarView(scalars[index..<end]))))
                index = end
            } else if scalar.properties.isAlphabetic {
                var end = index + 1
                while end < scalars.count, scalars[end].properties.isAlphabetic { end += 1 }
                tokens.append(.word(String(String.UnicodeScalarView(scalars[index..<end])).lowercased()))
                index = end
            } else {
                return .failure(ParseFailure(reason: "unexpected character '\(scalar)'"))
            }
        }
        guard !tokens.isEmpty else { return .failure(ParseFailure(reason: "it is empty")) }
        var result = SQLInterval()
        var position = 0
        var sawAgo = false
        while position < tokens.count {
            switch tokens[position] {
            case .word(let word):
                guard word == "ago", position == tokens.count - 1 else {
                    return .failure(ParseFailure(reason: "'\(word)' is not preceded by a number"))
                }
                sawAgo = true
                position += 1
            case .number(let number):
                position += 1
                if number.contains(":") {
                    guard let micros = timeOfDay(number, minutesFirst: qualifier?.first == .minute && qualifier?.last == .second) else {
                        return .failure(ParseFailure(reason: "'\(number)' is not a time (hh:mm[:ss[.ffffff]])"))
                    }
                    guard let sum = add(&result, SQLInterval(microseconds: micros)) else { return .failure(ParseFailure(reason: "it is out of range")) }
                    result = sum
                    continue
                }
                guard let value = Double(number), value.isFinite else { return .failure(ParseFailure(reason: "'\(number)' is not a number")) }
                var unit: Unit?
                if position < tokens.count, case .word(let word) = tokens[position], word != "ago" {
                    guard let known = Unit(word) else { return .failure(ParseFailure(reason: "unit '\(word)' is not recognized")) }
                    unit = known
                    position += 1
                } else if let last = qualifier?.last {
                    unit = Unit(field: last)
                } else {
                    unit = .second
                }
                guard let unit, let part = unit.interval(value), let sum = add(&result, part) else {
                    return .failure(ParseFailure(reason: "it is out of range"))
                }
                result = sum
            }
        }
        if sawAgo { result = result.negated }
        if let qualifier { result = result.truncated(to: qualifier.last) }
        return .success(result)
    }

    public struct ParseFailure: Error, Sendable {
        public var reason: String
    }

    private enum Token { case number(String), word(String) }

    private static func add(_ base: inout SQLInterval, _ part: SQLInterval) -> SQLInterval? {
        let (months, m) = base.months.addingReportingOverflow(part.months)
        let (days, d) = base.days.addingReportingOverflow(part.days)
        let (micros, u) = base.microseconds.addingReportingOverflow(part.microseconds)
        return m || d || u ? nil : SQLInterval(months: months, days: days, microseconds: micros)
    }

    /// `[-]hh:mm[:ss[.f]]` (or `mm:ss[.f]`) in microseconds.
    private static func timeOfDay(_ text: String, minutesFirst: Bool) -> Int64? {
        var body = Substring(text)
        var sign: Int64 = 1
        if body.first == "-" || body.first == "+" {
            sign = body.first == "-" ? -1 : 1
            body = body.dropFirst()
        }
        let parts = body.split(separator: ":", omittingEmptySubsequences: false)
        guard parts.count == 2 || parts.count == 3 else { return nil }
        guard let first = Int64(parts[0]), first >= 0 else { return nil }
        var seconds: Double = 0
        var minutes: Int64
        var hours: Int64 = 0
        if parts.count == 2 && minutesFirst {
            guard let m = Int64(parts[0]), let s = Double(parts[1]), s >= 0, s < 60 else { return nil }
            minutes = m
            seconds = s
        } else {
            hours = first
            guard let m = Int64(parts[1]), m >= 0, m < 60 else { return nil }
            minutes = m
            if parts.count == 3 {
                guard let s = Double(parts[2]), s >= 0, s < 60, !parts[2].hasPrefix("+") else { return nil }
                seconds = s
            }
        }
        let whole = (hours * 60 + minutes) * 60
        guard hours < 2_562_047_788 else { return nil }
        return sign * (whole * 1_000_000 + Int64((seconds * 1_000_000).rounded()))
    }

    /// PostgreSQL's interval units and their abbreviations.
    private enum Unit {
        case microsecond, millisecond, second, minute, hour, day, week, month, year, decade, century, millennium

        init?(_ word: String) {
            switch word {
            case "microsecond", "microseconds", "us", "usec", "usecs", "useconds": self = .microsecond
            case "millisecond", "milliseconds", "ms", "msec", "msecs", "mseconds": self = .millisecond
            case "second", "seconds", "s", "sec", "secs": self = .second
            case "minute", "minutes", "m", "min", "mins": self = .minute
            case "hour", "hours", "h", "hr", "hrs": self = .hour
            case "day", "days", "d": self = .day
            case "week", "weeks", "w": self = .week
            case "month", "months", "mon", "mons": self = .month
            case "year", "years", "y", "yr", "yrs": self = .year
            case "decade", "decades": self = .decade
            case "century", "centuries": self = .century
            case "millennium", "millennia", "millenniums": self = .millennium
            default: return nil
            }
        }

        init(field: Field) {
            switch field {
            case .year: self = .year
            case .month: self = .month
            case .day: self = .day
            case .hour: self = .hour
            case .minute: self = .minute
            case .second: self = .second
            }
        }

        /// `value` of this unit, fractions spilling into the smaller fields as PostgreSQL spills them (a month
        /// is 30 days, a day 24 hours).
        func interval(_ value: Double) -> SQLInterval? {
            func months(_ count: Double) -> SQLInterval? {
                let whole = count.rounded(.towardZero)
                guard abs(whole) < 1e15 else { return nil }
                return SQLInterval(months: Int64(whole)).adding(days: (count - whole) * 30)
            }
            switch self {
            case .microsecond: return Self.micros(value)
            case .millisecond: return Self.micros(value * 1_000)
            case .second: return Self.micros(value * 1_000_000)
            case .minute: return Self.micros(value * 60_000_000)
            case .hour: return Self.micros(value * 3_600_000_000)
            case .day: return SQLInterval().adding(days: value)
            case .week: return SQLInterval().adding(days: value * 7)
            case .month: return months(value)
            case .year: return months(value * 12)
            case .decade: return months(value * 120)
            case .century: return months(value * 1_200)
            case .millennium: return months(value * 12_000)
            }
        }

        static func micros(_ value: Double) -> SQLInterval? {
            let rounded = value.rounded()
            guard abs(rounded) < 9.2e18 else { return nil }
            return SQLInterval(microseconds: Int64(rounded))
        }
    }

    /// Adds a (fractional) number of days: the whole days as days, the fraction as time.
    private func adding(days count: Double) -> SQLInterval? {
        let whole = count.rounded(.towardZero)
        guard abs(whole) < 1e15, let rest = Unit.micros((count - whole) * 86_400_000_000) else { return nil }
        return SQLInterval(months: months, days: days + Int64(whole), microseconds: microseconds + rest.microseconds)
    }

    /// The interval with the fields after `last` cleared (`INTERVAL '1 day 2 hours' DAY` is `1 day`).
    func truncated(to last: Field) -> SQLInterval {
        switch last {
        case .year: SQLInterval(months: months / 12 * 12)
        case .month: SQLInterval(months: months)
        case .day: SQLInterval(months: months, days: days)
        case .hour: SQLInterval(months: months, days: days, microseconds: microseconds / 3_600_000_000 * 3_600_000_000)
        case .minute: SQLInterval(months: months, days: days, microseconds: microseconds / 60_000_000 * 60_000_000)
        case .second: self
        }
    }
}
