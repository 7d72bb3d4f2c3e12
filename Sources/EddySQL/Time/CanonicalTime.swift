/// Time literals brought to the canonical text times are carried as.
enum CanonicalTime {
    /// What a zone written after a time means.
    enum Zone {
        /// TIMESTAMP (without time zone): PostgreSQL ignores a zone in the literal.
        case ignored
        /// TIMESTAMPTZ: the time is brought to UTC (the session zone Eddy shows every time in).
        case toUTC
    }

    /// `YYYY-MM-DD[( |T)HH:MM[:SS[.f…]]][zone]` → `YYYY-MM-DD HH:MM:SS[.ffffff]` (or `YYYY-MM-DD` for dates);
    /// nil when it is not a valid time. A zone is `Z`, `UTC`, `GMT`, or an offset `±hh`, `±hhmm`, `±hh:mm`,
    /// optionally after a space; dates take none.
    static func parse(_ text: String, dateOnly: Bool, zone: Zone = .ignored) -> String? {
        let bytes = Array(text.utf8)
        func number(_ range: Range<Int>) -> Int? {
            guard range.upperBound <= bytes.count else { return nil }
            var value = 0
            for byte in bytes[range] {
                guard byte >= 48 && byte <= 57 else { return nil }
                value = value * 10 + Int(byte - 48)
            }
            return value
        }
        guard bytes.count >= 10, let year = number(0..<4), bytes[4] == 45, let month = number(5..<7), bytes[7] == 45,
            let day = number(8..<10), (1...12).contains(month), day >= 1, day <= daysIn(month: month, year: year)
        else { return nil }
        let date = pad(year, 4) + "-" + pad(month, 2) + "-" + pad(day, 2)
        if bytes.count == 10 { return dateOnly ? date : date + " 00:00:00" }
        guard !dateOnly, bytes.count >= 16, bytes[10] == 32 || bytes[10] == 84, let hour = number(11..<13), bytes[13] == 58,
            let minute = number(14..<16), hour < 24, minute < 60
        else { return nil }
        var second = 0
        var fraction = 0
        var index = 16
        if index < bytes.count, bytes[index] == 58 {
            guard let value = number(17..<19), value < 60 else { return nil }
            second = value
            index = 19
            if index < bytes.count, bytes[index] == 46 {
                index += 1
                var digits = 0
                while index < bytes.count, bytes[index] >= 48, bytes[index] <= 57 {
                    digits += 1
                    guard digits <= 6 else { return nil }
                    fraction = fraction * 10 + Int(bytes[index] - 48)
                    index += 1
                }
                guard digits > 0 else { return nil }
                for _ in digits..<6 { fraction *= 10 }
            }
        }
        var offsetSeconds = 0
        if index < bytes.count {
            guard let offset = zoneOffset(bytes[index...]) else { return nil }
            offsetSeconds = offset
        }
        var text = date + " " + pad(hour, 2) + ":" + pad(minute, 2) + ":" + pad(second, 2) + (fraction == 0 ? "" : "." + pad(fraction, 6))
        if zone == .toUTC && offsetSeconds != 0 {
            guard let micros = CivilTime.microseconds(of: text) else { return nil }
            let utc = micros - Int64(offsetSeconds) * CivilTime.microsecondsPerSecond
            guard CivilTime.isRepresentable(microseconds: utc) else { return nil }
            text = CivilTime.timestampText(microseconds: utc)
        }
        return text
    }

    /// Seconds east of UTC of a zone suffix, nil when it is not one.
    private static func zoneOffset(_ suffix: ArraySlice<UInt8>) -> Int? {
        var rest = suffix
        if rest.first == 32 { rest = rest.dropFirst() }
        let word = String(decoding: rest, as: UTF8.self).uppercased()
        if word == "Z" || word == "UTC" || word == "GMT" { return 0 }
        guard let sign = rest.first, sign == 43 || sign == 45 else { return nil }
        let digits = Array(rest.dropFirst().filter { $0 != 58 })
        let colons = rest.dropFirst().filter { $0 == 58 }.count
        guard digits.allSatisfy({ $0 >= 48 && $0 <= 57 }), digits.count == 2 || (digits.count == 4 && colons <= 1), colons == 0 || rest.dropFirst().count == 5 else { return nil }
        let hours = Int(digits[0] - 48) * 10 + Int(digits[1] - 48)
        let minutes = digits.count == 4 ? Int(digits[2] - 48) * 10 + Int(digits[3] - 48) : 0
        guard hours <= 15, minutes < 60 else { return nil }
        return (sign == 45 ? -1 : 1) * (hours * 3600 + minutes * 60)
    }

    static func daysIn(month: Int, year: Int) -> Int {
        switch month {
        case 2: (year % 4 == 0 && year % 100 != 0) || year % 400 == 0 ? 29 : 28
        case 4, 6, 9, 11: 30
        default: 31
        }
    }

    private static func pad(_ value: Int, _ width: Int) -> String {
        let digits = String(value)
        return String(repeating: "0", count: max(0, width - digits.count)) + digits
    }
}
