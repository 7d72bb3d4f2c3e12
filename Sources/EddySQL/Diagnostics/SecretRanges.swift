/// The byte ranges of a pipeline file that are never shown, found from the tokens and the raw bytes alone so
/// that a statement that does not parse is masked as well as one that does (its line is what an error
/// shows):
///
/// - the value after a secret-bearing option key (`KafkaSourceSettings.Property.isSecret(key:)`:
///   `properties.sasl.password`, …), whatever symbols stand between them (`= =`, nothing) short of a `,`, `)`
///   or `;`: the first string (terminated or not: an unterminated one runs to the end of the file), bare word
///   or number;
/// - in a value after `redis.url`, the user-info: everything between `//` (or the start) and the last `@`;
/// - the user-info of every `redis://` or `rediss://` URL anywhere in the file (quoted, unterminated, bare, in
///   a comment): from after `//` to the last `@` on its line.
///
/// Masking too much is the safe way to be wrong: text after a key that only looks secret is starred too.
/// `${NAME}` references stay visible: the file does not hold their values.
enum SecretRanges {
    static func find(in source: SourceText, tokens: [Token]) -> [Range<Int>] {
        var ranges: [Range<Int>] = []
        var armed: Armed?
        var index = 0
        while index < tokens.count {
            let token = tokens[index]
            switch token.kind {
            case .end:
                break
            case .symbol:
                if token.text == "," || token.text == ")" || token.text == ";" { armed = nil }
            case .string, .word, .number, .quotedIdentifier:
                if let value = armed {
                    // The first value token after the key; an option takes one.
                    ranges += valueRanges(token, value, in: source)
                    armed = nil
                    break
                }
                guard token.kind != .number else { break }
                // A key: name parts joined by '.', as the parser reads option names.
                var parts = [token.text]
                while index + 2 < tokens.count, tokens[index + 1].isSymbol("."),
                    [.word, .quotedIdentifier, .string].contains(tokens[index + 2].kind)
                {
                    parts.append(tokens[index + 2].text)
                    index += 2
                }
                let key = parts.joined(separator: ".").lowercased()
                if KafkaSourceSettings.Property.isSecret(key: key) {
                    armed = .secret
                } else if key == "redis.url" {
                    armed = .redisURL
                }
            }
            index += 1
        }
        return ranges + redisURLUserInfo(in: source.bytes)
    }

    /// `message` with any text of `secrets` starred: a message names tokens ("found 'x'"), and a token in a
    /// secret's place must not be shown there either. Fragments under three characters are left alone (they
    /// would shred ordinary words and cannot give a secret away).
    static func masking(_ secrets: [Range<Int>], in message: String, of source: SourceText) -> String {
        var message = message
        for range in secrets where range.count >= 3 && range.count <= message.utf8.count {
            let secret = String(decoding: source.bytes[range], as: UTF8.self)
            if message.contains(secret) {
                message = message.replacing(secret, with: String(repeating: "*", count: secret.unicodeScalars.count))
            }
        }
        return message
    }

    private enum Armed { case secret, redisURL }

    private static let at = UInt8(ascii: "@")

    /// The parts of a value token to mask.
    private static func valueRanges(_ token: Token, _ armed: Armed, in source: SourceText) -> [Range<Int>] {
        let bytes = source.bytes
        var inner = token.start..<token.end
        if token.kind == .string || token.kind == .quotedIdentifier {
            // Without the quotes; an unterminated string has no closing one.
            let closed = token.end - token.start >= 2 && bytes[token.end - 1] == bytes[token.start]
            inner = (token.start + 1)..<max(token.start + 1, closed ? token.end - 1 : token.end)
        }
        switch armed {
        case .secret:
            return outsideReferences(inner, in: bytes)
        case .redisURL:
            let content = bytes[inner]
            guard let lastAt = content.lastIndex(of: at) else { return [] }
            let from = content.firstRange(of: [UInt8(ascii: "/"), UInt8(ascii: "/")])?.upperBound ?? inner.lowerBound
            return from < lastAt ? outsideReferences(from..<lastAt, in: bytes) : []
        }
    }

    /// `range` without its `${NAME}` references.
    private static func outsideReferences(_ range: Range<Int>, in bytes: [UInt8]) -> [Range<Int>] {
        var ranges: [Range<Int>] = []
        var start = range.lowerBound
        var position = range.lowerBound
        while position < range.upperBound {
            if bytes[position] == UInt8(ascii: "$"), position + 1 < range.upperBound, bytes[position + 1] == UInt8(ascii: "{"),
                let close = bytes[position..<range.upperBound].firstIndex(of: UInt8(ascii: "}"))
            {
                if start < position { ranges.append(start..<position) }
                position = close + 1
                start = position
            } else {
                position += 1
            }
        }
        if start < range.upperBound { ranges.append(start..<range.upperBound) }
        return ranges
    }

    /// The user-info of each `redis://` / `rediss://` URL (scheme in any case).
    private static func redisURLUserInfo(in bytes: [UInt8]) -> [Range<Int>] {
        var ranges: [Range<Int>] = []
        var position = 0
        while let found = bytes[position...].firstRange(of: Array("://".utf8)) {
            position = found.upperBound
            guard isRedisScheme(bytes, endingAt: found.lowerBound) else { continue }
            // To the last '@' of the line: a password may hold '@' and quotes, and outside a string a quote
            // does not end anything.
            var end = position
            while end < bytes.count, bytes[end] != UInt8(ascii: "\n"), bytes[end] != UInt8(ascii: "\r") { end += 1 }
            if let lastAt = bytes[position..<end].lastIndex(of: at), lastAt > position {
                ranges.append(position..<lastAt)
            }
            position = max(position, end)
        }
        return ranges
    }

    private static func isRedisScheme(_ bytes: [UInt8], endingAt end: Int) -> Bool {
        ["redis", "rediss"].contains { scheme in
            let length = scheme.utf8.count
            // ASCII letters to lower case: the scheme is case-insensitive.
            return end >= length && bytes[(end - length)..<end].map { $0 | 0x20 } == Array(scheme.utf8)
        }
    }
}
