/// The proleptic Gregorian calendar of PostgreSQL, in UTC: times as microseconds (dates as days) since
/// 1970-01-01, and the canonical text SQL carries them as (`YYYY-MM-DD HH:MM:SS[.ffffff]`, `YYYY-MM-DD`).
///
/// One place for the engine (which holds times as numbers and shows them as text) and the evaluator (which
/// carries them as text and computes on numbers).
public enum CivilTime {
    public static let microsecondsPerSecond: Int64 = 1_000_000
    public static let microsecondsPerDay: Int64 = 86_400_000_000

    /// `YYYY-MM-DD HH:MM:SS`, with `.ffffff` when there are fractional seconds.
    public static func timestampText(microseconds: Int64) -> String {
        let (seconds, micros) = floorDivide(microseconds, 1_000_000)
        let (days, secondOfDay) = floorDivide(seconds, 86_400)
        var text = dateText(days: days)
        text += " " + pad(secondOfDay / 3600, 2) + ":" + pad(secondOfDay / 60 % 60, 2) + ":" + pad(secondOfDay % 60, 2)
        if micros != 0 { text += "." + pad(micros, 6) }
        return text
    }

    /// `YYYY-MM-DD`.
    public static func dateText(days: Int64) -> String {
        let (year, month, day) = civil(days: days)
        return pad(year, 4) + "-" + pad(month, 2) + "-" + pad(day, 2)
    }

    /// Year, month (1...12) and day (1...31) of a day count (Howard Hinnant's civil_from_days).
    public static func civil(days: Int64) -> (year: Int64, month: Int64, day: Int64) {
        let z = days + 719_468
        let era = (z >= 0 ? z : z - 146_096) / 146_097
        let dayOfEra = z - era * 146_097
        let yearOfEra = (dayOfEra - dayOfEra / 1460 + dayOfEra / 36524 - dayOfEra / 146_096) / 365
        let dayOfYear = dayOfEra - (365 * yearOfEra + yearOfEra / 4 - yearOfEra / 100)
        let monthIndex = (5 * dayOfYear + 2) / 153
        let day = dayOfYear - (153 * monthIndex + 2) / 5 + 1
        let month = monthIndex < 10 ? monthIndex + 3 : monthIndex - 9
        return (yearOfEra + era * 400 + (month <= 2 ? 1 : 0), month, day)
    }

    /// Days since 1970-01-01 of a calendar date (Howard Hinnant's days_from_civil).
    public static func days(year: Int64, month: Int64, day: Int64) -> Int64 {
        let y = month <= 2 ? year - 1 : year
        let era = (y >= 0 ? y : y - 399) / 400
        let yearOfEra = y - era * 400
        let dayOfYear = (153 * (month + (month > 2 ? -3 : 9)) + 2) / 5 + day - 1
        let dayOfEra = yearOfEra * 365 + yearOfEra / 4 - yearOfEra / 100 + dayOfYear
        return era * 146_097 + dayOfEra - 719_468
    }

    /// Microseconds since 1970 of a time carried as text (a timestamp, or a date for its midnight), in any form
    /// `CanonicalTime.parse` accepts; nil when it is not a time.
    public static func microseconds(of text: String) -> Int64? {
        var text = text
        // The canonical text (what every time value is) without allocating; any other form through the parser.
        if let micros = text.withUTF8({ canonicalMicroseconds($0) }) { return micros }
        let bytes = Array((CanonicalTime.parse(text, dateOnly: false) ?? "").utf8)
        guard bytes.count >= 19 else { return nil }
        func number(_ range: Range<Int>) -> Int64 { bytes[range].reduce(0) { $0 * 10 + Int64($1 - 48) } }
        let days = days(year: number(0..<4), month: number(5..<7), day: number(8..<10))
        var micros = ((days * 24 + number(11..<13)) * 60 + number(14..<16)) * 60 + number(17..<19)
        micros *= microsecondsPerSecond
        if bytes.count == 26 { micros += number(20..<26) }
        return micros
    }

    /// `YYYY-MM-DD HH:MM:SS[.ffffff]` exactly (a valid time), else nil.
    private static func canonicalMicroseconds(_ bytes: UnsafeBufferPointer<UInt8>) -> Int64? {
        guard bytes.count == 19 || bytes.count == 26, bytes[4] == 45, bytes[7] == 45, bytes[10] == 32, bytes[13] == 58, bytes[16] == 58,
            bytes.count == 19 || bytes[19] == 46
        else { return nil }
        var valid = true
        func number(_ range: Range<Int>) -> Int64 {
            var value: Int64 = 0
            for index in range {
                let digit = bytes[index] &- 48
                if digit > 9 { valid = false }
                value = value * 10 + Int64(digit)
            }
            return value
        }
        let year = number(0..<4), month = number(5..<7), day = number(8..<10)
        let hour = number(11..<13), minute = number(14..<16), second = number(17..<19)
        let fraction = bytes.count == 26 ? number(20..<26) : 0
        guard valid, year >= 1, (1...12).contains(month), day >= 1, day <= Int64(CanonicalTime.daysIn(month: Int(month), year: Int(year))),
            hour < 24, minute < 60, second < 60
        else { return nil }
        return ((days(year: year, month: month, day: day) * 24 + hour) * 60 + minute) * 60_000_000 + second * 1_000_000 + fraction
    }

    /// Whether a time is within the years 1...9999 that the canonical text (four-digit years) can carry.
    public static func isRepresentable(microseconds: Int64) -> Bool {
        microseconds >= minimumMicroseconds && microseconds <= maximumMicroseconds
    }

    /// 0001-01-01 00:00:00 and 9999-12-31 23:59:59.999999.
    static let minimumMicroseconds = days(year: 1, month: 1, day: 1) * microsecondsPerDay
    static let maximumMicroseconds = (days(year: 9999, month: 12, day: 31) + 1) * microsecondsPerDay - 1

    static func floorDivide(_ value: Int64, _ divisor: Int64) -> (quotient: Int64, remainder: Int64) {
        let quotient = value >= 0 ? value / divisor : (value - divisor + 1) / divisor
        return (quotient, value - quotient * divisor)
    }

    static func pad(_ value: Int64, _ width: Int) -> String {
        let digits = String(value)
        return digits.count >= width ? digits : String(repeating: "0", count: width - digits.count) + digits
    }
}
