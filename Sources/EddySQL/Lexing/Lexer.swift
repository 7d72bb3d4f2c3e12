/// Turns a pipeline file into tokens: `--` and nested `/* */` comments skipped, names folded to lower case
/// unless quoted, `${NAME}` substituted inside quoted strings and names.
///
/// Substitution happens in the lexer rather than as a text pass before it so that every line:column in an
/// error still points into the file as written. Outside quotes `${NAME}` is an error: RisingWave's option
/// values are quoted anyway, and splicing raw text into SQL would let an environment variable inject SQL.
struct Lexer {
    private let source: SourceText
    private let environment: [String: String]
    private var position = 0
    private(set) var errors: [SQLError] = []

    init(source: SourceText, environment: [String: String]) {
        self.source = source
        self.environment = environment
    }

    private var bytes: [UInt8] { source.bytes }

    private func peek(_ ahead: Int = 0) -> UInt8? {
        let index = position + ahead
        return index < bytes.count ? bytes[index] : nil
    }

    /// Every token, ending with one `.end` token.
    mutating func tokenize() -> [Token] {
        var tokens: [Token] = []
        while true {
            skipTrivia()
            guard let byte = peek() else {
                tokens.append(Token(kind: .end, text: "", start: bytes.count, end: bytes.count))
                return tokens
            }
            let start = position
            if isWordStart(byte) {
                tokens.append(lexWord())
            } else if isDigit(byte) || (byte == UInt8(ascii: ".") && peek(1).map(isDigit) == true) {
                tokens.append(lexNumber())
            } else if byte == UInt8(ascii: "'") {
                tokens.append(lexQuoted(quote: byte, kind: .string))
            } else if byte == UInt8(ascii: "\"") {
                let token = lexQuoted(quote: byte, kind: .quotedIdentifier)
                if token.text.isEmpty {
                    errors.append(source.error(.lexical, "a quoted name cannot be empty", from: start, to: position))
                }
                tokens.append(token)
            } else if byte == UInt8(ascii: "$") && peek(1) == UInt8(ascii: "{") {
                let end = bytes[position...].firstIndex(of: UInt8(ascii: "}")).map { $0 + 1 } ?? min(bytes.count, position + 2)
                errors.append(source.error(
                    .lexical,
                    "\(String(decoding: bytes[position..<end], as: UTF8.self)) outside quotes: environment references are substituted only inside quoted strings and names, e.g. '${KAFKA_BROKERS}'",
                    from: position, to: end))
                position = end
            } else if let symbol = lexSymbol() {
                tokens.append(Token(kind: .symbol, text: symbol, start: start, end: position))
            } else {
                let length = scalarLength(at: position)
                let text = String(decoding: bytes[position..<min(bytes.count, position + length)], as: UTF8.self)
                let shown = text.unicodeScalars.first.map { $0.properties.isWhitespace || $0.value < 0x20 || $0.value == 0x7F ? "U+\(String($0.value, radix: 16, uppercase: true))" : "'\(text)'" } ?? "?"
                errors.append(source.error(.lexical, "unexpected character \(shown)", from: position, to: position + length))
                position += length
            }
        }
    }

    // MARK: Trivia

    private mutating func skipTrivia() {
        while let byte = peek() {
            if byte == UInt8(ascii: " ") || byte == UInt8(ascii: "\t") || byte == UInt8(ascii: "\n") || byte == UInt8(ascii: "\r") || byte == 0x0C {
                position += 1
            } else if byte == UInt8(ascii: "-") && peek(1) == UInt8(ascii: "-") {
                while let next = peek(), next != UInt8(ascii: "\n") { position += 1 }
            } else if byte == UInt8(ascii: "/") && peek(1) == UInt8(ascii: "*") {
                skipBlockComment()
            } else {
                return
            }
        }
    }

    /// `/* ... */`, nested as in PostgreSQL.
    private mutating func skipBlockComment() {
        let start = position
        var depth = 0
        while position < bytes.count {
            if peek() == UInt8(ascii: "/") && peek(1) == UInt8(ascii: "*") {
                depth += 1
                position += 2
            } else if peek() == UInt8(ascii: "*") && peek(1) == UInt8(ascii: "/") {
                depth -= 1
                position += 2
                if depth == 0 { return }
            } else {
                position += 1
            }
        }
        errors.append(source.error(.lexical, "unterminated /* comment", from: start, to: start + 2))
    }

    // MARK: Tokens

    private func isWordStart(_ byte: UInt8) -> Bool {
        (byte >= UInt8(ascii: "a") && byte <= UInt8(ascii: "z")) || (byte >= UInt8(ascii: "A") && byte <= UInt8(ascii: "Z"))
            || byte == UInt8(ascii: "_") || byte >= 0x80 && isLetterScalar(at: position)
    }

    private func isWordPart(_ byte: UInt8) -> Bool {
        isWordStart(byte) || isDigit(byte) || byte == UInt8(ascii: "$")
    }

    private func isDigit(_ byte: UInt8) -> Bool { byte >= UInt8(ascii: "0") && byte <= UInt8(ascii: "9") }

    /// Non-ASCII letters may appear in unquoted names (PostgreSQL allows them).
    private func isLetterScalar(at offset: Int) -> Bool {
        let length = scalarLength(at: offset)
        guard let scalar = String(decoding: bytes[offset..<min(bytes.count, offset + length)], as: UTF8.self).unicodeScalars.first else { return false }
        return scalar.properties.isAlphabetic
    }

    private func scalarLength(at offset: Int) -> Int {
        let byte = bytes[offset]
        let length = byte < 0x80 ? 1 : byte >= 0xF0 ? 4 : byte >= 0xE0 ? 3 : byte >= 0xC0 ? 2 : 1
        return min(length, bytes.count - offset)
    }

    private mutating func lexWord() -> Token {
        let start = position
        while let byte = peek(), isWordPart(byte) || (byte >= 0x80 && isLetterScalar(at: position)) {
            position += byte < 0x80 ? 1 : scalarLength(at: position)
        }
        let text = String(decoding: bytes[start..<position], as: UTF8.self)
        return Token(kind: .word, text: text.lowercased(), start: start, end: position)
    }

    private mutating func lexNumber() -> Token {
        let start = position
        while let byte = peek(), isDigit(byte) { position += 1 }
        if peek() == UInt8(ascii: "."), peek(1).map(isDigit) ?? true {
            position += 1
            while let byte = peek(), isDigit(byte) { position += 1 }
        }
        if let byte = peek(), byte == UInt8(ascii: "e") || byte == UInt8(ascii: "E") {
            let sign = peek(1) == UInt8(ascii: "+") || peek(1) == UInt8(ascii: "-") ? 1 : 0
            if let digit = peek(1 + sign), isDigit(digit) {
                position += 1 + sign
                while let byte = peek(), isDigit(byte) { position += 1 }
            }
        }
        if let byte = peek(), isWordStart(byte) {
            // `123abc`: PostgreSQL rejects trailing junk after a number as well.
            let junkStart = position
            while let next = peek(), isWordPart(next) { position += 1 }
            errors.append(source.error(.lexical, "trailing characters after the number \(String(decoding: bytes[start..<junkStart], as: UTF8.self))", from: start, to: position))
        }
        return Token(kind: .number, text: String(decoding: bytes[start..<position], as: UTF8.self), start: start, end: position)
    }

    /// A `'string'` or `"name"`: the quote doubled stands for itself; `${NAME}` is substituted.
    private mutating func lexQuoted(quote: UInt8, kind: Token.Kind) -> Token {
        let start = position
        position += 1
        var value: [UInt8] = []
        var substituted = false
        var failedSubstitution = false
        while true {
            guard let byte = peek() else {
                let what = kind == .string ? "string" : "quoted name"
                errors.append(source.error(.lexical, "unterminated \(what): missing closing \(quote == UInt8(ascii: "'") ? "'" : "\"")", from: start, to: start + 1))
                break
            }
            if byte == quote {
                if peek(1) == quote {
                    value.append(quote)
                    position += 2
                    continue
                }
                position += 1
                break
            }
            if byte == UInt8(ascii: "$") && peek(1) == UInt8(ascii: "{") {
                if let replacement = substitute() {
                    value.append(contentsOf: replacement.utf8)
                    substituted = true
                } else {
                    failedSubstitution = true
                }
                continue
            }
            value.append(byte)
            position += 1
        }
        return Token(
            kind: kind, text: String(decoding: value, as: UTF8.self), start: start, end: position, isSubstituted: substituted,
            hasFailedSubstitution: failedSubstitution)
    }

    /// At `${`: reads `${NAME}` and returns the variable's value (nil, with an error, when it is not set).
    private mutating func substitute() -> String? {
        let start = position
        position += 2
        let nameStart = position
        while let byte = peek(), isWordPart(byte), byte < 0x80, byte != UInt8(ascii: "$") { position += 1 }
        let name = String(decoding: bytes[nameStart..<position], as: UTF8.self)
        guard peek() == UInt8(ascii: "}"), !name.isEmpty, !isDigit(bytes[nameStart]) else {
            errors.append(source.error(.lexical, "malformed environment reference: expected ${NAME} with NAME made of letters, digits and _", from: start, to: max(position, start + 2)))
            return nil
        }
        position += 1
        guard let value = environment[name] else {
            errors.append(source.error(.missingEnvironmentVariable, "environment variable \(name) is not set (referenced as ${\(name)})", from: start, to: position))
            return nil
        }
        return value
    }

    private static let symbols = ["->>", "->", "<>", "!=", "<=", ">=", "||", "::", "(", ")", ",", ";", ".", "*", "=", "<", ">", "+", "-", "/", "%", "[", "]", ":"]

    private mutating func lexSymbol() -> String? {
        for symbol in Self.symbols {
            let symbolBytes = Array(symbol.utf8)
            if position + symbolBytes.count <= bytes.count && Array(bytes[position..<(position + symbolBytes.count)]) == symbolBytes {
                position += symbolBytes.count
                return symbol
            }
        }
        return nil
    }
}
