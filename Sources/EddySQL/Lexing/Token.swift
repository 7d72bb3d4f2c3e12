/// One token of a pipeline file, with its byte range in the (substituted) source.
struct Token: Sendable, Equatable {
    enum Kind: Sendable, Equatable {
        /// An unquoted word: a keyword or a name. `text` is folded to lower case, as PostgreSQL folds names.
        case word
        /// A `"quoted"` name; `text` keeps its case.
        case quotedIdentifier
        /// A `'string'` literal; `text` is its value (quotes removed, `''` unescaped, `${NAME}` substituted).
        case string
        /// A numeric literal, as written.
        case number
        /// Punctuation or an operator: `( ) , ; . * = <> != < <= > >= + - / % || ::`.
        case symbol
        case end
    }

    var kind: Kind
    var text: String
    /// Byte offsets of the token in the file.
    var start: Int
    var end: Int
    /// For strings: true when `${NAME}` substitutions produced part of the value (so it may hold a secret
    /// that was never written in the file).
    var isSubstituted = false
    /// For strings: a `${NAME}` in it could not be substituted (already reported); its value is incomplete.
    var hasFailedSubstitution = false

    /// Whether this is the unquoted keyword `keyword` (given in upper case).
    func isKeyword(_ keyword: String) -> Bool { kind == .word && text == keyword.lowercased() }

    func isSymbol(_ symbol: String) -> Bool { kind == .symbol && text == symbol }

    /// How the token reads in a message.
    var display: String {
        switch kind {
        case .word: text
        case .quotedIdentifier: "\"\(text)\""
        case .string: "'\(text)'"
        case .number, .symbol: text
        case .end: "end of file"
        }
    }
}
