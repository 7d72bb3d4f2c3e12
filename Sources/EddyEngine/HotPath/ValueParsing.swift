/// Conversions of scanned JSON numbers and strings to column values. `nil` means "wrong type for the
/// column": the column becomes NULL and the field is counted in `HotPathCounters.wrongTypeFields`.
enum ValueParsing {
    // MARK: Numbers

    /// An INT column's value: any JSON number whose value is an integer within Int64 (`7`, `-0`, `7.0`,
    /// `7e2`, `700e-2`); `7.5` and anything beyond Int64 are not.
    @inline(always)
    static func int64(_ token: NumberToken) -> Int64? {
        if token.isPlainInteger && !token.droppedDigits {
            if token.isNegative {
                return token.mantissa <= 1 << 63 ? Int64(bitPattern: 0 &- token.mantissa) : nil
            }
            return token.mantissa <= UInt64(Int64.max) ? Int64(token.mantissa) : nil
        }
        return exactInteger(token)
    }

    @inline(never)
    static func exactInteger(_ token: NumberToken) -> Int64? {
        // A dropped non-zero digit is either in the fraction (not an integer) or makes the magnitude
        // at least 10^19 (beyond Int64).
        guard !token.droppedNonZero else { return nil }
        var mantissa = token.mantissa
        var exponent = token.exponent
        if mantissa == 0 { return 0 }
        while exponent < 0 && mantissa % 10 == 0 {
            mantissa /= 10
            exponent += 1
        }
        guard exponent >= 0 else { return nil }
        while exponent > 0 {
            let (product, overflow) = mantissa.multipliedReportingOverflow(by: 10)
            guard !overflow else { return nil }
            mantissa = product
            exponent -= 1
        }
        if token.isNegative { return mantissa <= 1 << 63 ? Int64(bitPattern: 0 &- mantissa) : nil }
        return mantissa <= UInt64(Int64.max) ? Int64(mantissa) : nil
    }

    /// A DOUBLE / DECIMAL column's value: the nearest Double to any JSON number; a number beyond
    /// Double's range (`1e309`) is not one (PostgreSQL: "out of range"), a tiny one rounds to 0.
    @inline(always)
    static func double(_ token: NumberToken, bytes: UnsafePointer<UInt8>) -> Double? {
        // Clinger's fast path: both the mantissa and the power of ten are exact Doubles, so one
        // multiplication or division rounds correctly.
        if !token.droppedDigits && token.mantissa <= 1 << 53 && token.exponent >= -22 && token.exponent <= 22 {
            var value = Double(token.mantissa)
            if token.exponent >= 0 {
                value *= powersOfTen[token.exponent]
            } else {
                value /= powersOfTen[-token.exponent]
            }
            return token.isNegative ? -value : value
        }
        if token.mantissa == 0 { return token.isNegative ? -0.0 : 0.0 }
        return slowDouble(token, bytes: bytes)
    }

    @inline(never)
    static func slowDouble(_ token: NumberToken, bytes: UnsafePointer<UInt8>) -> Double? {
        // Rare (more than 19 digits, or a large exponent): the standard library's correctly rounded
        // parser; JSON number syntax is a subset of what it accepts. Allocates one String.
        let text = String(decoding: UnsafeBufferPointer(start: bytes + token.start, count: token.end - token.start), as: UTF8.self)
        guard let value = Double(text), value.isFinite else { return nil }
        return value
    }

    static let powersOfTen: [Double] = [
        1e0, 1e1, 1e2, 1e3, 1e4, 1e5, 1e6, 1e7, 1e8, 1e9, 1e10, 1e11,
        1e12, 1e13, 1e14, 1e15, 1e16, 1e17, 1e18, 1e19, 1e20, 1e21, 1e22,
    ]

    // MARK: Times

    /// A TIMESTAMP(TZ) column's value from a JSON number counting `unit`s since 1970 UTC: microseconds within
    /// years 1-9999 (what the SQL side can show); a fraction is kept to the microsecond. Nil otherwise.
    @inline(never)
    static func epochTime(_ token: NumberToken, bytes: UnsafePointer<UInt8>, unit: TimeNumberUnit) -> Int64? {
        var microsPerUnit: Int64
        switch unit {
        case .none: return nil
        case .seconds: microsPerUnit = 1_000_000
        case .milliseconds: microsPerUnit = 1000
        case .microseconds: microsPerUnit = 1
        case .guess:
            guard let magnitude = double(token, bytes: bytes).map(abs) else { return nil }
            microsPerUnit = magnitude < 1e11 ? 1_000_000 : magnitude < 1e14 ? 1000 : 1
            if magnitude >= 1e17 {
                // Nanoseconds.
                guard let nanos = int64(token) else { return nil }
                return inTimeRange(nanos / 1000)
            }
        }
        if let whole = int64(token) {
            let (micros, overflow) = whole.multipliedReportingOverflow(by: microsPerUnit)
            return overflow ? nil : inTimeRange(micros)
        }
        guard let value = double(token, bytes: bytes) else { return nil }
        let micros = (value * Double(microsPerUnit)).rounded()
        guard micros.magnitude < 9.2e18 else { return nil }
        return inTimeRange(Int64(micros))
    }

    /// Microseconds from 0001-01-01 00:00:00 up to 9999-12-31 23:59:59.999999.
    static let timeRange: ClosedRange<Int64> = -62_135_596_800_000_000...253_402_300_799_999_999

    @inline(always)
    static func inTimeRange(_ micros: Int64) -> Int64? { timeRange.contains(micros) ? micros : nil }

    /// A DATE column's value from `YYYY-MM-DD` (years 0001-9999, real calendar days): days since 1970.
    @inline(always)
    static func date(_ text: UnsafePointer<UInt8>, count: Int) -> Int64? {
        guard count == 10 else { return nil }
        return civilDays(text)
    }

    /// A TIMESTAMP(TZ) column's value: microseconds since 1970-01-01 00:00:00 (UTC for `withZone`).
    ///
    /// Accepts `YYYY-MM-DD HH:MM:SS`, a `T` instead of the space, an optional `.f` to `.ffffff`, or a
    /// bare `YYYY-MM-DD` (midnight). With `withZone`, also a trailing `Z` or `±hh:mm` / `±hhmm` / `±hh`
    /// (the offset is subtracted to give UTC); without it, any suffix is a wrong type.
    @inline(always)
    static func timestamp(_ text: UnsafePointer<UInt8>, count: Int, withZone: Bool) -> Int64? {
        guard count >= 10, let days = civilDays(text) else { return nil }
        var micros = days &* 86_400_000_000
        if count == 10 { return micros }
        guard count >= 19 else { return nil }
        let separator = text[10]
        guard separator == UInt8(ascii: " ") || separator == UInt8(ascii: "T") || separator == UInt8(ascii: "t"),
            text[13] == UInt8(ascii: ":"), text[16] == UInt8(ascii: ":"),
            let hour = twoDigits(text + 11), hour < 24,
            let minute = twoDigits(text + 14), minute < 60,
            let second = twoDigits(text + 17), second < 60
        else { return nil }
        micros &+= (Int64(hour) &* 3600 &+ Int64(minute) &* 60 &+ Int64(second)) &* 1_000_000
        if count == 19 { return micros }
        return timestampSuffix(text, count: count, micros: micros, withZone: withZone)
    }

    /// The optional fraction and zone after `YYYY-MM-DD HH:MM:SS`.
    @inline(never)
    static func timestampSuffix(_ text: UnsafePointer<UInt8>, count: Int, micros: Int64, withZone: Bool) -> Int64? {
        var micros = micros
        var index = 19
        if text[index] == UInt8(ascii: ".") {
            index += 1
            var fraction: Int64 = 0
            var digits = 0
            while index < count, text[index] &- UInt8(ascii: "0") <= 9 {
                guard digits < 6 else { return nil }
                fraction = fraction * 10 + Int64(text[index] &- UInt8(ascii: "0"))
                digits += 1
                index += 1
            }
            guard digits > 0 else { return nil }
            for _ in digits..<6 { fraction *= 10 }
            micros += fraction
        }
        if index == count { return micros }
        guard withZone else { return nil }
        let sign = text[index]
        if sign == UInt8(ascii: "Z") || sign == UInt8(ascii: "z") {
            return index + 1 == count ? micros : nil
        }
        guard sign == UInt8(ascii: "+") || sign == UInt8(ascii: "-"), count - index >= 3,
            let hours = twoDigits(text + index + 1), hours < 24
        else { return nil }
        index += 3
        var minutes = 0
        if index < count {
            if text[index] == UInt8(ascii: ":") { index += 1 }
            guard count - index == 2, let value = twoDigits(text + index), value < 60 else { return nil }
            minutes = value
        }
        let offset = Int64(hours * 3600 + minutes * 60) * 1_000_000
        return sign == UInt8(ascii: "+") ? micros - offset : micros + offset
    }

    @inline(always)
    static func twoDigits(_ text: UnsafePointer<UInt8>) -> Int? {
        let tens = text[0] &- UInt8(ascii: "0")
        let ones = text[1] &- UInt8(ascii: "0")
        guard tens <= 9, ones <= 9 else { return nil }
        return Int(tens) &* 10 &+ Int(ones)
    }

    /// Days since 1970-01-01 of `YYYY-MM-DD` at `text`, if it is a real date in years 1-9999.
    @inline(always)
    static func civilDays(_ text: UnsafePointer<UInt8>) -> Int64? {
        guard text[4] == UInt8(ascii: "-"), text[7] == UInt8(ascii: "-"),
            let century = twoDigits(text), let yearInCentury = twoDigits(text + 2),
            let month = twoDigits(text + 5), let day = twoDigits(text + 8)
        else { return nil }
        let year = century &* 100 &+ yearInCentury
        guard year >= 1, month >= 1, month <= 12, day >= 1, day <= daysInMonth(month, year: year) else { return nil }
        return daysFromCivil(year: year, month: month, day: day)
    }

    @inline(always)
    static func daysInMonth(_ month: Int, year: Int) -> Int {
        if month == 2 {
            let leap = year % 4 == 0 && (year % 100 != 0 || year % 400 == 0)
            return leap ? 29 : 28
        }
        // 30 days in April, June, September, November.
        return (0b1010_0101_0000 >> month) & 1 == 1 ? 30 : 31
    }

    /// Howard Hinnant's `days_from_civil` (proleptic Gregorian calendar).
    @inline(always)
    static func daysFromCivil(year: Int, month: Int, day: Int) -> Int64 {
        let shiftedYear = month <= 2 ? year - 1 : year
        let era = (shiftedYear >= 0 ? shiftedYear : shiftedYear - 399) / 400
        let yearOfEra = shiftedYear - era * 400
        let dayOfYear = (153 * (month > 2 ? month - 3 : month + 9) + 2) / 5 + day - 1
        let dayOfEra = yearOfEra * 365 + yearOfEra / 4 - yearOfEra / 100 + dayOfYear
        return Int64(era * 146_097 + dayOfEra - 719_468)
    }
}
