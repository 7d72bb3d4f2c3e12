/// A position in a pipeline file: 1-based line and column (columns count Unicode scalars, as editors do).
public struct SourceLocation: Sendable, Hashable, Comparable, CustomStringConvertible {
    public var line: Int
    public var column: Int
    /// Byte offset of the position in the file's UTF-8 text.
    public var offset: Int

    public init(line: Int, column: Int, offset: Int) {
        self.line = line
        self.column = column
        self.offset = offset
    }

    public static func < (lhs: SourceLocation, rhs: SourceLocation) -> Bool { lhs.offset < rhs.offset }
    public var description: String { "\(line):\(column)" }
}

/// A range of a pipeline file: where a token or a clause starts, and how many scalars it spans on its line.
public struct SourceRange: Sendable, Hashable {
    public var start: SourceLocation
    /// Scalars underlined on the first line (at least 1).
    public var length: Int

    public init(start: SourceLocation, length: Int) {
        self.start = start
        self.length = max(1, length)
    }
}

/// The one error type of `EddySQL`: a problem in a pipeline file, with where it is.
///
/// Printed as compilers do — `file:line:column: error: message`, then the offending line with a caret under the
/// token — so that editors and terminals can jump to it.
public struct SQLError: Error, Sendable, Hashable, CustomStringConvertible {
    public enum Severity: String, Sendable, Hashable { case error, warning }

    /// What kind of problem, coarse enough to switch on.
    public enum Code: String, Sendable, Hashable {
        /// A character or literal the lexer cannot read (unterminated string, stray byte, invalid UTF-8).
        case lexical
        /// Tokens in an order the grammar does not allow.
        case syntax
        /// `${NAME}` names a variable that is not set.
        case missingEnvironmentVariable
        /// Valid SQL that Eddy does not run (DROP, SHOW, a join…).
        case unsupported
        /// A name that is not defined: source, view, column.
        case unknownName
        /// A name defined twice.
        case duplicateName
        /// Types that do not fit (`'a' + 1`, `WHERE 3`).
        case typeMismatch
        /// Aggregates where they are not allowed, or columns missing from `GROUP BY`.
        case grouping
        /// A `WITH (...)` or `FORMAT ... (...)` option that is unknown, missing or malformed.
        case invalidOption
        /// A template (`key_format`, `value_format`) that is malformed or names a missing column.
        case invalidTemplate
    }

    public var code: Code
    public var severity: Severity
    public var message: String
    /// The file name as given to the compiler (for the `file:` prefix).
    public var file: String
    public var range: SourceRange
    /// The text of the line the error is on (without its newline), for the caret display.
    public var lineText: String

    public init(_ code: Code, _ message: String, file: String, range: SourceRange, lineText: String, severity: Severity = .error) {
        self.code = code
        self.severity = severity
        self.message = message
        self.file = file
        self.range = range
        self.lineText = lineText
    }

    public var line: Int { range.start.line }
    public var column: Int { range.start.column }

    /// `file:line:column: error: message`.
    public var headline: String { "\(file):\(range.start.line):\(range.start.column): \(severity.rawValue): \(message)" }

    /// The headline, the line, and a caret under the token.
    public var description: String {
        let visibleLine = lineText.replacingTabs()
        let prefix = String(lineText.unicodeScalars.prefix(range.start.column - 1))
        let indent = prefix.replacingTabs().unicodeScalars.count
        let remaining = max(1, visibleLine.unicodeScalars.count - indent)
        let underline = "^" + String(repeating: "~", count: max(0, min(range.length, remaining) - 1))
        return "\(headline)\n    \(visibleLine)\n    \(String(repeating: " ", count: indent))\(underline)"
    }
}

extension String {
    fileprivate func replacingTabs() -> String {
        var result = ""
        for scalar in unicodeScalars { result.unicodeScalars.append(scalar == "\t" ? " " : scalar) }
        return result
    }
}
