/// `timestamp ± interval`, `date_trunc`, `EXTRACT` / `date_part` on microseconds since 1970 (UTC, the
/// session zone of every Eddy time), with PostgreSQL's results.
public enum TimeFunctions {
    /// `timestamp + interval`: months on the calendar first (the day clamped to the month's last, as
    /// PostgreSQL: Jan 31 + 1 month is Feb 28/29), then days, then the time. Nil past the years 1...9999.
    public static func add(_ interval: SQLInterval, to microseconds: Int64) -> Int64? {
        var result = microseconds
        if interval.months != 0 {
            let (days, timeOfDay) = CivilTime.floorDivide(result, CivilTime.microsecondsPerDay)
            let date = CivilTime.civil(days: days)
            let (monthIndex, overflow) = (date.year * 12 + date.month - 1).addingReportingOverflow(interval.months)
            guard !overflow, abs(monthIndex) < 12 * 1_000_000 else { return nil }
            let (year, month) = CivilTime.floorDivide(monthIndex, 12)
            let day = min(date.day, Int64(CanonicalTime.daysIn(month: Int(month + 1), year: Int(year))))
            result = CivilTime.days(year: year, month: month + 1, day: day) * CivilTime.microsecondsPerDay + timeOfDay
        }
        let (dayMicros, dayOverflow) = interval.days.multipliedReportingOverflow(by: CivilTime.microsecondsPerDay)
        guard !dayOverflow else { return nil }
        for part in [dayMicros, interval.microseconds] {
            let (sum, overflow) = result.addingReportingOverflow(part)
            guard !overflow else { return nil }
            result = sum
        }
        return CivilTime.isRepresentable(microseconds: result) ? result : nil
    }

    /// The units `date_trunc`, `EXTRACT` and `date_part` name, in PostgreSQL's spellings (singular, plural
    /// and abbreviations, any case).
    public enum Unit: String, Sendable, CaseIterable {
        case microseconds, milliseconds, second, minute, hour, day, week, month, quarter, year, decade, century, millennium
        /// `EXTRACT` only.
        case dow, isodow, doy, isoyear, epoch

        public init?(_ text: String) {
            let word = text.lowercased()
            if let unit = Unit(rawValue: word) {
                self = unit
                return
            }
            switch word {
            case "microsecond", "us", "usec", "usecs", "useconds": self = .microseconds
            case "millisecond", "ms", "msec", "msecs", "mseconds": self = .milliseconds
            case "seconds", "s", "sec", "secs": self = .second
            case "minutes", "m", "min", "mins": self = .minute
            case "hours", "h", "hr", "hrs": self = .hour
            case "days", "d": self = .day
            case "weeks", "w": self = .week
            case "months", "mon", "mons": self = .month
            case "quarters", "qtr": self = .quarter
            case "years", "y", "yr", "yrs": self = .year
            case "decades", "dec", "decs": self = .decade
            case "centuries", "c", "cent": self = .century
            case "millennia", "millenniums", "mil", "mils": self = .millennium
            default: return nil
            }
        }

        /// Whether `date_trunc` takes the unit.
        public var truncates: Bool {
            switch self {
            case .dow, .isodow, .doy, .isoyear, .epoch: false
            default: true
            }
        }

        static let truncationList = allCases.filter(\.truncates).map(\.rawValue).joined(separator: ", ")
        static let extractionList = allCases.map(\.rawValue).joined(separator: ", ")
    }

    /// `date_trunc(unit, timestamp)`: the time with every field below `unit` at its first value. Weeks start on
    /// Monday (ISO); decades at years divisible by 10, centuries and millennia at their year 1 (2001-01-01).
    public static func truncate(_ microseconds: Int64, to unit: Unit) -> Int64? {
        let (days, timeOfDay) = CivilTime.floorDivide(microseconds, CivilTime.microsecondsPerDay)
        let date = CivilTime.civil(days: days)
        func midnight(_ year: Int64, _ month: Int64, _ day: Int64) -> Int64 {
            CivilTime.days(year: year, month: month, day: day) * CivilTime.microsecondsPerDay
        }
        func firstDay(ofYear year: Int64) -> Int64 { midnight(year, 1, 1) }
        switch unit {
        case .microseconds: return microseconds
        case .milliseconds: return microseconds - CivilTime.floorDivide(microseconds, 1_000).remainder
        case .second: return microseconds - CivilTime.floorDivide(microseconds, 1_000_000).remainder
        case .minute: return microseconds - CivilTime.floorDivide(microseconds, 60_000_000).remainder
        case .hour: return microseconds - CivilTime.floorDivide(microseconds, 3_600_000_000).remainder
        case .day: return microseconds - timeOfDay
        case .week: return (days - isoWeekday(days: days) + 1) * CivilTime.microsecondsPerDay
        case .month: return midnight(date.year, date.month, 1)
        case .quarter: return midnight(date.year, (date.month - 1) / 3 * 3 + 1, 1)
        case .year: return firstDay(ofYear: date.year)
        case .decade: return firstDay(ofYear: CivilTime.floorDivide(date.year, 10).quotient * 10)
        case .century: return firstDay(ofYear: (date.year - 1) / 100 * 100 + 1)
        case .millennium: return firstDay(ofYear: (date.year - 1) / 1000 * 1000 + 1)
        case .dow, .isodow, .doy, .isoyear, .epoch: return nil
        }
    }

    /// `EXTRACT(unit FROM timestamp)` / `date_part`: seconds carry their fraction (`second` 3.5,
    /// `milliseconds` 3500, `microseconds` 3500000, each including the whole seconds); `epoch` is seconds since
    /// 1970; `dow` 0 = Sunday, `isodow` 7 = Sunday; `week` and `isoyear` by ISO 8601.
    public static func extract(_ unit: Unit, from microseconds: Int64) -> Double {
        let (days, timeOfDay) = CivilTime.floorDivide(microseconds, CivilTime.microsecondsPerDay)
        let date = CivilTime.civil(days: days)
        let microsecondOfMinute = timeOfDay % 60_000_000
        switch unit {
        case .microseconds: return Double(microsecondOfMinute)
        case .milliseconds: return Double(microsecondOfMinute) / 1_000
        case .second: return Double(microsecondOfMinute) / 1_000_000
        case .minute: return Double(timeOfDay / 60_000_000 % 60)
        case .hour: return Double(timeOfDay / 3_600_000_000)
        case .day: return Double(date.day)
        case .week: return Double(isoWeek(days: days).week)
        case .month: return Double(date.month)
        case .quarter: return Double((date.month - 1) / 3 + 1)
        case .year: return Double(date.year)
        case .decade: return Double(CivilTime.floorDivide(date.year, 10).quotient)
        case .century: return Double((date.year + 99) / 100)
        case .millennium: return Double((date.year + 999) / 1000)
        case .dow: return Double(isoWeekday(days: days) % 7)
        case .isodow: return Double(isoWeekday(days: days))
        case .doy: return Double(days - CivilTime.days(year: date.year, month: 1, day: 1) + 1)
        case .isoyear: return Double(isoWeek(days: days).year)
        case .epoch: return Double(microseconds) / 1_000_000
        }
    }

    /// 1 = Monday … 7 = Sunday (1970-01-01 was a Thursday).
    static func isoWeekday(days: Int64) -> Int64 {
        CivilTime.floorDivide(days + 3, 7).remainder + 1
    }

    /// The ISO 8601 year and week of a day: weeks start on Monday, and week 1 holds the year's first Thursday.
    static func isoWeek(days: Int64) -> (year: Int64, week: Int64) {
        let thursday = days - isoWeekday(days: days) + 4
        let year = CivilTime.civil(days: thursday).year
        let week = (thursday - CivilTime.days(year: year, month: 1, day: 1)) / 7 + 1
        return (year, week)
    }
}
