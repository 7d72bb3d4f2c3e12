import CPlatform  // `eddy_load_le64`, `eddy_string_special_mask16`
/// A validating JSON scanner over borrowed bytes: it moves `position` over strings, numbers, literals
/// and whole nested values, and throws the `SkipReason` of the first problem.
///
/// Reading past `end` is never done: `byte(at:)` answers 0 there, which is invalid everywhere in JSON,
/// so the grammar code needs no separate end checks. Strings are scanned 16 bytes at a time.
struct JSONScanner {
    let bytes: UnsafePointer<UInt8>
    let end: Int
    var position: Int = 0

    @inline(always)
    init(bytes: UnsafePointer<UInt8>, count: Int) {
        self.bytes = bytes
        self.end = count
    }

    /// The byte at `index`, or 0 at and after the end.
    @inline(always)
    func byte(at index: Int) -> UInt8 {
        index < end ? bytes[index] : 0
    }

    @inline(always)
    var current: UInt8 { byte(at: position) }

    @inline(always)
    var isAtEnd: Bool { position >= end }

    @inline(always)
    mutating func skipWhitespace() {
        // Bit n set: byte n is JSON whitespace (tab, line feed, carriage return, space).
        let whitespace: UInt64 = (1 << 0x20) | (1 << 0x0A) | (1 << 0x0D) | (1 << 0x09)
        while position < end {
            let value = bytes[position]
            guard value <= 0x20, whitespace & (1 << UInt64(value)) != 0 else { return }
            position &+= 1
        }
    }

    @inline(always)
    func load64(at index: Int) -> UInt64 { eddy_load_le64(bytes + index) }

    @inline(always)
    func load32(at index: Int) -> UInt32 { eddy_load_le32(bytes + index) }

    // MARK: Strings

    /// Bit n set: byte n of the 16 at `index` ends the fast scan of a string (`"`, `\`, a control byte below
    /// 0x20 or a non-ASCII byte).
    @inline(always)
    func stringSpecialMask16(at index: Int) -> UInt32 { eddy_string_special_mask16(bytes + index) }

    /// Scans a string's contents; `position` is just after the opening quote and ends just after the
    /// closing one. Validates escapes (surrogates paired) and UTF-8. Returns whether the string holds
    /// escapes (its raw bytes then differ from its value).
    ///
    /// 16 bytes at a time: one vector compare finds the first quote, backslash, control or non-ASCII
    /// byte; near the end of the message the last 16 bytes are loaded instead (never past the end).
    @inline(always)
    mutating func scanStringBody() throws(SkipReason) -> Bool {
        var index = position
        var hasEscapes = false
        while true {
            if index &+ 16 <= end {
                let mask = stringSpecialMask16(at: index)
                if mask == 0 {
                    index &+= 16
                    continue
                }
                index &+= mask.trailingZeroBitCount
            } else if index < end && end >= 16 {
                // The last 16 bytes of the message, ignoring those before `index`.
                let base = end &- 16
                let mask = stringSpecialMask16(at: base) & (~0 &<< UInt32(truncatingIfNeeded: index &- base))
                guard mask != 0 else { throw .notJSON }  // unterminated
                index = base &+ mask.trailingZeroBitCount
            } else {
                guard index < end else { throw .notJSON }
                let value = bytes[index]
                if value >= 0x20 && value < 0x80 && value != UInt8(ascii: "\"") && value != UInt8(ascii: "\\") {
                    index &+= 1
                    continue
                }
            }
            let found = bytes[index]
            if found == UInt8(ascii: "\"") {
                position = index &+ 1
                return hasEscapes
            }
            if found == UInt8(ascii: "\\") {
                index = try validateEscape(at: index)
                hasEscapes = true
            } else if found < 0x20 {
                throw .notJSON
            } else {
                index = try validateUTF8Sequence(at: index)
            }
        }
    }

    /// Validates the escape whose backslash is at `index`; returns the index after it.
    @inline(never)
    func validateEscape(at index: Int) throws(SkipReason) -> Int {
        switch byte(at: index &+ 1) {
        case UInt8(ascii: "\""), UInt8(ascii: "\\"), UInt8(ascii: "/"), UInt8(ascii: "b"), UInt8(ascii: "f"),
            UInt8(ascii: "n"), UInt8(ascii: "r"), UInt8(ascii: "t"):
            return index &+ 2
        case UInt8(ascii: "u"):
            let (_, next) = try decodeUnicodeEscape(at: index)
            return next
        default:
            throw .notJSON
        }
    }

    /// Decodes the `\uXXXX` escape (or surrogate pair `\uD83D\uDE00`) at `index` to a Unicode scalar
    /// value; returns it with the index after the escape. A lone surrogate is not JSON here (as in
    /// PostgreSQL, simdjson and serde_json): it has no UTF-8 form.
    func decodeUnicodeEscape(at index: Int) throws(SkipReason) -> (UInt32, Int) {
        guard let unit = hex4(at: index &+ 2) else { throw .notJSON }
        if unit < 0xD800 || unit > 0xDFFF { return (unit, index &+ 6) }
        guard unit <= 0xDBFF,  // a low surrogate first
            byte(at: index &+ 6) == UInt8(ascii: "\\"), byte(at: index &+ 7) == UInt8(ascii: "u"),
            let low = hex4(at: index &+ 8), low >= 0xDC00, low <= 0xDFFF
        else { throw .notJSON }
        return (0x10000 &+ ((unit &- 0xD800) &<< 10) &+ (low &- 0xDC00), index &+ 12)
    }

    private func hex4(at index: Int) -> UInt32? {
        var value: UInt32 = 0
        for offset in 0..<4 {
            let digit = byte(at: index &+ offset)
            let nibble: UInt8
            switch digit {
            case UInt8(ascii: "0")...UInt8(ascii: "9"): nibble = digit &- UInt8(ascii: "0")
            case UInt8(ascii: "a")...UInt8(ascii: "f"): nibble = digit &- UInt8(ascii: "a") &+ 10
            case UInt8(ascii: "A")...UInt8(ascii: "F"): nibble = digit &- UInt8(ascii: "A") &+ 10
            default: return nil
            }
            value = value &<< 4 | UInt32(nibble)
        }
        return value
    }

    /// Validates the UTF-8 sequence starting with the non-ASCII byte at `index` (RFC 3629: no overlong
    /// forms, no surrogates, nothing above U+10FFFF); returns the index after it.
    @inline(never)
    func validateUTF8Sequence(at index: Int) throws(SkipReason) -> Int {
        let lead = bytes[index]
        @inline(always) func continuation(_ offset: Int, _ low: UInt8 = 0x80, _ high: UInt8 = 0xBF) -> Bool {
            let value = byte(at: index &+ offset)
            return value >= low && value <= high
        }
        switch lead {
        case 0xC2...0xDF:
            guard continuation(1) else { throw .invalidUTF8 }
            return index &+ 2
        case 0xE0...0xEF:
            let secondLow: UInt8 = lead == 0xE0 ? 0xA0 : 0x80
            let secondHigh: UInt8 = lead == 0xED ? 0x9F : 0xBF
            guard continuation(1, secondLow, secondHigh), continuation(2) else { throw .invalidUTF8 }
            return index &+ 3
        case 0xF0...0xF4:
            let secondLow: UInt8 = lead == 0xF0 ? 0x90 : 0x80
            let secondHigh: UInt8 = lead == 0xF4 ? 0x8F : 0xBF
            guard continuation(1, secondLow, secondHigh), continuation(2), continuation(3) else { throw .invalidUTF8 }
            return index &+ 4
        default:
            throw .invalidUTF8
        }
    }

    /// Writes the value of the (already validated) string whose raw contents are `start..<stop` to
    /// `output`; returns the number of bytes written, never more than `stop - start`.
    func unescape(from start: Int, to stop: Int, into output: UnsafeMutablePointer<UInt8>) -> Int {
        var index = start
        var written = 0
        while index < stop {
            let value = bytes[index]
            guard value == UInt8(ascii: "\\") else {
                output[written] = value
                written &+= 1
                index &+= 1
                continue
            }
            let escaped = bytes[index &+ 1]
            let simple: UInt8
            switch escaped {
            case UInt8(ascii: "b"): simple = 0x08
            case UInt8(ascii: "f"): simple = 0x0C
            case UInt8(ascii: "n"): simple = 0x0A
            case UInt8(ascii: "r"): simple = 0x0D
            case UInt8(ascii: "t"): simple = 0x09
            case UInt8(ascii: "u"):
                // Validated by the scan already, so this cannot throw.
                guard let (scalar, next) = try? decodeUnicodeEscape(at: index) else { preconditionFailure("unvalidated escape") }
                written &+= Self.encodeUTF8(scalar, into: output + written)
                index = next
                continue
            default: simple = escaped  // \" \\ \/
            }
            output[written] = simple
            written &+= 1
            index &+= 2
        }
        return written
    }

    @inline(always)
    static func encodeUTF8(_ scalar: UInt32, into output: UnsafeMutablePointer<UInt8>) -> Int {
        switch scalar {
        case 0..<0x80:
            output[0] = UInt8(truncatingIfNeeded: scalar)
            return 1
        case 0x80..<0x800:
            output[0] = UInt8(truncatingIfNeeded: 0xC0 | scalar >> 6)
            output[1] = UInt8(truncatingIfNeeded: 0x80 | scalar & 0x3F)
            return 2
        case 0x800..<0x10000:
            output[0] = UInt8(truncatingIfNeeded: 0xE0 | scalar >> 12)
            output[1] = UInt8(truncatingIfNeeded: 0x80 | scalar >> 6 & 0x3F)
            output[2] = UInt8(truncatingIfNeeded: 0x80 | scalar & 0x3F)
            return 3
        default:
            output[0] = UInt8(truncatingIfNeeded: 0xF0 | scalar >> 18)
            output[1] = UInt8(truncatingIfNeeded: 0x80 | scalar >> 12 & 0x3F)
            output[2] = UInt8(truncatingIfNeeded: 0x80 | scalar >> 6 & 0x3F)
            output[3] = UInt8(truncatingIfNeeded: 0x80 | scalar & 0x3F)
            return 4
        }
    }

    // MARK: Literals and numbers

    enum Literal { case `true`, `false`, null }

    /// Scans `true`, `false` or `null` at `position`.
    @inline(always)
    mutating func scanLiteral() throws(SkipReason) -> Literal {
        guard position &+ 4 <= end else { throw .notJSON }
        switch load32(at: position) {
        case 0x6575_7274:  // "true"
            position &+= 4
            return .true
        case 0x6C6C_756E:  // "null"
            position &+= 4
            return .null
        case 0x736C_6166 where byte(at: position &+ 4) == UInt8(ascii: "e"):  // "false"
            position &+= 5
            return .false
        default:
            throw .notJSON
        }
    }

    /// Scans a number at `position` (JSON grammar: no leading zeros, no leading `+`, digits on both
    /// sides of `.`), keeping its first 19 significant digits and its decimal exponent.
    @inline(always)
    mutating func scanNumber() throws(SkipReason) -> NumberToken {
        var token = NumberToken(start: position)
        var index = position
        if bytes[index] == UInt8(ascii: "-") {
            token.isNegative = true
            index &+= 1
        }
        var digit = byte(at: index) &- UInt8(ascii: "0")
        if digit == 0 {
            index &+= 1
        } else if digit <= 9 {
            repeat {
                token.addIntegerDigit(digit)
                index &+= 1
                digit = byte(at: index) &- UInt8(ascii: "0")
            } while digit <= 9
        } else {
            throw .notJSON
        }
        if byte(at: index) == UInt8(ascii: ".") {
            token.isPlainInteger = false
            index &+= 1
            digit = byte(at: index) &- UInt8(ascii: "0")
            guard digit <= 9 else { throw .notJSON }
            repeat {
                token.addFractionDigit(digit)
                index &+= 1
                digit = byte(at: index) &- UInt8(ascii: "0")
            } while digit <= 9
        }
        if byte(at: index) | 0x20 == UInt8(ascii: "e") {
            token.isPlainInteger = false
            index &+= 1
            var negativeExponent = false
            let sign = byte(at: index)
            if sign == UInt8(ascii: "-") {
                negativeExponent = true
                index &+= 1
            } else if sign == UInt8(ascii: "+") {
                index &+= 1
            }
            digit = byte(at: index) &- UInt8(ascii: "0")
            guard digit <= 9 else { throw .notJSON }
            var exponent = 0
            repeat {
                if exponent < 100_000_000 { exponent = exponent &* 10 &+ Int(digit) }  // saturates: beyond any Double
                index &+= 1
                digit = byte(at: index) &- UInt8(ascii: "0")
            } while digit <= 9
            token.exponent &+= negativeExponent ? -exponent : exponent
        }
        token.end = index
        position = index
        return token
    }

    // MARK: Skipping values

    /// Skips (and validates) any value at `position`. `depth` is the nesting depth of the container
    /// holding the value (0 at the top level); `stack` has room for `maxDepth + 1` bits.
    @inline(always)
    mutating func skipValue(depth: Int, maxDepth: Int, stack: UnsafeMutablePointer<UInt64>) throws(SkipReason) {
        switch current {
        case UInt8(ascii: "\""):
            position &+= 1
            _ = try scanStringBody()
        case UInt8(ascii: "{"), UInt8(ascii: "["):
            try skipContainer(outerDepth: depth, maxDepth: maxDepth, stack: stack)
        case UInt8(ascii: "t"), UInt8(ascii: "f"), UInt8(ascii: "n"):
            _ = try scanLiteral()
        case UInt8(ascii: "-"), UInt8(ascii: "0")...UInt8(ascii: "9"):
            _ = try scanNumber()
        default:
            throw .notJSON
        }
    }

    /// Skips the object or array at `position`, validating everything in it, without recursion: one
    /// bit per open level (set: object) says what closes it.
    @inline(never)
    mutating func skipContainer(outerDepth: Int, maxDepth: Int, stack: UnsafeMutablePointer<UInt64>) throws(SkipReason) {
        var depth = outerDepth
        var expectingMember: Bool
        @inline(always) func isObject(_ level: Int) -> Bool {
            stack[level &>> 6] & (1 &<< UInt64(level & 63)) != 0
        }
        // Opens the container at `position`; answers whether a member follows (false: it closed at once).
        @inline(always) func open(_ scanner: inout JSONScanner) throws(SkipReason) -> Bool {
            let object = scanner.bytes[scanner.position] == UInt8(ascii: "{")
            depth &+= 1
            guard depth <= maxDepth else { throw .tooDeep }
            let bit: UInt64 = 1 &<< UInt64(depth & 63)
            if object { stack[depth &>> 6] |= bit } else { stack[depth &>> 6] &= ~bit }
            scanner.position &+= 1
            scanner.skipWhitespace()
            if scanner.current == (object ? UInt8(ascii: "}") : UInt8(ascii: "]")) {
                scanner.position &+= 1
                depth &-= 1
                return false
            }
            return true
        }
        expectingMember = try open(&self)
        while true {
            if expectingMember {
                if isObject(depth) {
                    guard current == UInt8(ascii: "\"") else { throw .notJSON }
                    position &+= 1
                    _ = try scanStringBody()
                    skipWhitespace()
                    guard current == UInt8(ascii: ":") else { throw .notJSON }
                    position &+= 1
                    skipWhitespace()
                }
                switch current {
                case UInt8(ascii: "{"), UInt8(ascii: "["):
                    expectingMember = try open(&self)
                    continue
                case UInt8(ascii: "\""):
                    position &+= 1
                    _ = try scanStringBody()
                case UInt8(ascii: "t"), UInt8(ascii: "f"), UInt8(ascii: "n"):
                    _ = try scanLiteral()
                case UInt8(ascii: "-"), UInt8(ascii: "0")...UInt8(ascii: "9"):
                    _ = try scanNumber()
                default:
                    throw .notJSON
                }
                expectingMember = false
            } else {
                if depth == outerDepth { return }
                skipWhitespace()
                let next = current
                if next == UInt8(ascii: ",") {
                    position &+= 1
                    skipWhitespace()
                    expectingMember = true
                } else if next == (isObject(depth) ? UInt8(ascii: "}") : UInt8(ascii: "]")) {
                    position &+= 1
                    depth &-= 1
                } else {
                    throw .notJSON
                }
            }
        }
    }
}

/// A scanned JSON number: `mantissa × 10^exponent`, with the first 19 significant digits kept.
struct NumberToken {
    var start: Int
    var end = 0
    var isNegative = false
    /// No fraction and no exponent.
    var isPlainInteger = true
    var mantissa: UInt64 = 0
    var exponent = 0
    /// Significant digits in `mantissa` (leading zeros excluded).
    var significantDigits = 0
    /// Digits beyond the 19th were dropped.
    var droppedDigits = false
    /// A dropped digit was not zero (the value is not exactly `mantissa × 10^exponent`).
    var droppedNonZero = false

    init(start: Int) { self.start = start }

    @inline(always)
    mutating func addIntegerDigit(_ digit: UInt8) {
        if significantDigits < 19 {
            mantissa = mantissa &* 10 &+ UInt64(digit)
            significantDigits &+= 1
        } else {
            exponent &+= 1
            droppedDigits = true
            if digit != 0 { droppedNonZero = true }
        }
    }

    @inline(always)
    mutating func addFractionDigit(_ digit: UInt8) {
        if significantDigits < 19 {
            mantissa = mantissa &* 10 &+ UInt64(digit)
            exponent &-= 1
            if mantissa != 0 { significantDigits &+= 1 }
        } else {
            droppedDigits = true
            if digit != 0 { droppedNonZero = true }
        }
    }
}
