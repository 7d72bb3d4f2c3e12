/// A light scan of SQL text as clients send it: words, quoted strings and names, `$n` placeholders and
/// punctuation, with comments skipped. It classifies statements (SET, SHOW, catalogue reads) and rewrites
/// the few things Eddy's own SQL front end does not read (placeholders, `OFFSET`, a `public.` qualifier)
/// before that front end binds the query. It never decides what a query means.
struct StatementText: Sendable {
    struct Token: Sendable, Equatable {
        enum Kind: Sendable, Equatable {
            /// Lower-cased unquoted word.
            case word
            case quotedName
            /// A string literal's value.
            case string
            case number
            /// `$n`, with n.
            case placeholder(Int)
            case symbol
        }

        var kind: Kind
        var text: String
        /// UTF-8 offsets in the statement.
        var start: Int
        var end: Int

        func isWord(_ word: String) -> Bool { kind == .word && text == word }
    }

    let text: String
    let tokens: [Token]

    init(_ text: String) {
        self.text = text
        tokens = Self.scan(Array(text.utf8))
    }

    var firstWord: String? { tokens.first.flatMap { $0.kind == .word ? $0.text : nil } }

    /// The highest `$n` used (how many parameters the statement takes).
    var parameterCount: Int {
        tokens.reduce(0) { count, token in if case .placeholder(let number) = token.kind { max(count, number) } else { count } }
    }

    /// Whether a word (lower case) appears as a token.
    func contains(word: String) -> Bool { tokens.contains { $0.isWord(word) } }

    /// 1-based character position of a UTF-8 offset, for `ErrorResponse`.
    func position(ofOffset offset: Int) -> Int {
        String(decoding: Array(text.utf8).prefix(offset), as: UTF8.self).count + 1
    }

    /// Splits a simple-query string into statements at top-level semicolons; each keeps its offset.
    static func split(_ text: String) -> [(text: String, offset: Int)] {
        let bytes = Array(text.utf8)
        var pieces: [(String, Int)] = []
        var start = 0
        var depth = 0
        for token in scan(bytes) where token.kind == .symbol {
            if token.text == "(" { depth += 1 } else if token.text == ")" { depth = max(0, depth - 1) }
            if token.text == ";" && depth == 0 {
                pieces.append((String(decoding: bytes[start..<token.start], as: UTF8.self), start))
                start = token.end
            }
        }
        pieces.append((String(decoding: bytes[start...], as: UTF8.self), start))
        return pieces.filter { !StatementText($0.0).tokens.isEmpty }
    }

    /// The text with each `$n` replaced by `literal(n)`, other bytes unchanged.
    func substitutingPlaceholders(_ literal: (Int) -> String) -> String {
        let bytes = Array(text.utf8)
        var result: [UInt8] = []
        var copied = 0
        for token in tokens {
            guard case .placeholder(let number) = token.kind else { continue }
            result += bytes[copied..<token.start]
            result += Array(literal(number).utf8)
            copied = token.end
        }
        result += bytes[copied...]
        return String(decoding: result, as: UTF8.self)
    }

    /// The text with the byte ranges blanked by spaces (positions of everything else stay put).
    func blanking(_ ranges: [Range<Int>]) -> String {
        var bytes = Array(text.utf8)
        for range in ranges { for index in range { bytes[index] = UInt8(ascii: " ") } }
        return String(decoding: bytes, as: UTF8.self)
    }

    private static func scan(_ bytes: [UInt8]) -> [Token] {
        var tokens: [Token] = []
        var index = 0
        func byte(_ offset: Int) -> UInt8? { index + offset < bytes.count ? bytes[index + offset] : nil }
        while index < bytes.count {
            let current = bytes[index]
            let start = index
            switch current {
            case UInt8(ascii: " "), UInt8(ascii: "\t"), UInt8(ascii: "\n"), UInt8(ascii: "\r"):
                index += 1
            case UInt8(ascii: "-") where byte(1) == UInt8(ascii: "-"):
                while index < bytes.count && bytes[index] != UInt8(ascii: "\n") { index += 1 }
            case UInt8(ascii: "/") where byte(1) == UInt8(ascii: "*"):
                index += 2
                while index < bytes.count && !(bytes[index] == UInt8(ascii: "*") && byte(1) == UInt8(ascii: "/")) { index += 1 }
                index = min(bytes.count, index + 2)
            case UInt8(ascii: "'"), UInt8(ascii: "\""):
                index += 1
                var value: [UInt8] = []
                while index < bytes.count {
                    if bytes[index] == current {
                        if byte(1) == current {
                            value.append(current)
                            index += 2
                            continue
                        }
                        index += 1
                        break
                    }
                    value.append(bytes[index])
                    index += 1
                }
                tokens.append(Token(kind: current == UInt8(ascii: "'") ? .string : .quotedName, text: String(decoding: value, as: UTF8.self), start: start, end: index))
            case UInt8(ascii: "$") where byte(1).map(isDigit) == true:
                index += 1
                while index < bytes.count && isDigit(bytes[index]) { index += 1 }
                let number = Int(String(decoding: bytes[(start + 1)..<index], as: UTF8.self)) ?? 0
                tokens.append(Token(kind: .placeholder(number), text: String(decoding: bytes[start..<index], as: UTF8.self), start: start, end: index))
            case _ where isDigit(current) || (current == UInt8(ascii: ".") && byte(1).map(isDigit) == true):
                while index < bytes.count && (isDigit(bytes[index]) || bytes[index] == UInt8(ascii: ".")) { index += 1 }
                tokens.append(Token(kind: .number, text: String(decoding: bytes[start..<index], as: UTF8.self), start: start, end: index))
            case _ where isWordByte(current):
                while index < bytes.count && (isWordByte(bytes[index]) || isDigit(bytes[index]) || bytes[index] == UInt8(ascii: "$")) { index += 1 }
                // E'...' escape strings and the like: the quote starts a string of its own next round.
                tokens.append(Token(kind: .word, text: String(decoding: bytes[start..<index], as: UTF8.self).lowercased(), start: start, end: index))
            default:
                index += 1
                // Two-character operators stay one token.
                if let next = byte(0), ["::", "<=", ">=", "<>", "!=", "||"].contains(String(decoding: [current, next], as: UTF8.self)) { index += 1 }
                tokens.append(Token(kind: .symbol, text: String(decoding: bytes[start..<index], as: UTF8.self), start: start, end: index))
            }
        }
        return tokens
    }

    private static func isDigit(_ byte: UInt8) -> Bool { byte >= UInt8(ascii: "0") && byte <= UInt8(ascii: "9") }
    private static func isWordByte(_ byte: UInt8) -> Bool {
        (byte >= UInt8(ascii: "a") && byte <= UInt8(ascii: "z")) || (byte >= UInt8(ascii: "A") && byte <= UInt8(ascii: "Z")) || byte == UInt8(ascii: "_") || byte >= 0x80
    }
}
