/// The entry point of `EddySQL`: pipeline text in, a bound `Pipeline` or located errors out.
public enum PipelineCompiler {
    /// What compiling produced: the pipeline when there were no errors, and every error and warning.
    public struct Result: Sendable {
        public var pipeline: Pipeline?
        /// Errors, in file order.
        public var errors: [SQLError]
        /// Warnings, in file order (also in `pipeline.warnings`).
        public var warnings: [SQLError]
    }

    /// Compiles a pipeline file.
    ///
    /// - Parameters:
    ///   - bytes: the file's content; it must be UTF-8.
    ///   - file: the name shown in messages (`file:line:column`).
    ///   - environment: values for `${NAME}` references inside quoted strings.
    public static func compile(bytes: [UInt8], file: String, environment: [String: String]) -> Result {
        if let invalid = firstInvalidUTF8Offset(bytes) {
            let text = SourceText(file: file, text: String(decoding: bytes[..<invalid], as: UTF8.self))
            let location = text.location(text.bytes.count)
            var lexer = Lexer(source: text, environment: environment)
            let secrets = SecretRanges.find(in: text, tokens: lexer.tokenize())
            let error = SQLError(
                .lexical, "the file is not valid UTF-8 (byte 0x\(String(bytes[invalid], radix: 16, uppercase: true)) at byte offset \(invalid))",
                file: file, range: SourceRange(start: location, length: 1), lineText: text.lineText(location.line, masking: secrets))
            return Result(pipeline: nil, errors: [error], warnings: [])
        }
        return compile(text: String(decoding: bytes, as: UTF8.self), file: file, environment: environment)
    }

    /// Compiles pipeline text.
    public static func compile(text: String, file: String, environment: [String: String]) -> Result {
        let source = SourceText(file: file, text: text)
        var lexer = Lexer(source: source, environment: environment)
        let tokens = lexer.tokenize()
        var parser = Parser(source: source, tokens: tokens)
        let statements = parser.parseFile()
        var binder = Binder(source: source)
        var pipeline = binder.bind(statements)
        // Found from the tokens, not the parse: a statement that does not parse is masked too.
        let secrets = SecretRanges.find(in: source, tokens: tokens)
        func masked(_ diagnostics: [SQLError]) -> [SQLError] {
            diagnostics.map { diagnostic in
                var copy = diagnostic
                copy.lineText = source.lineText(diagnostic.line, masking: secrets)
                copy.message = SecretRanges.masking(secrets, in: copy.message, of: source)
                return copy
            }.sorted { $0.range.start < $1.range.start }
        }
        let errors = masked(lexer.errors + parser.errors + binder.errors)
        let warnings = masked(binder.warnings)
        pipeline.warnings = warnings
        if statements.isEmpty && errors.isEmpty {
            let location = source.location(0)
            let empty = SQLError(.syntax, "the file holds no statements (expected CREATE SOURCE, CREATE MATERIALIZED VIEW, CREATE SINK, ...)", file: file, range: SourceRange(start: location, length: 1), lineText: source.lineText(1))
            return Result(pipeline: nil, errors: [empty], warnings: warnings)
        }
        return Result(pipeline: errors.isEmpty ? pipeline : nil, errors: errors, warnings: warnings)
    }

    /// Binds one `SELECT` over the views of `pipeline` (`eddy query`).
    public static func compileQuery(_ text: String, pipeline: Pipeline) -> (query: Query?, errors: [SQLError]) {
        compileQuery(text, views: pipeline.views)
    }

    /// Binds one `SELECT` over `views`.
    public static func compileQuery(_ text: String, views: [View]) -> (query: Query?, errors: [SQLError]) {
        let source = SourceText(file: "query", text: text)
        var lexer = Lexer(source: source, environment: [:])
        let tokens = lexer.tokenize()
        var parser = Parser(source: source, tokens: tokens)
        let statements = parser.parseFile()
        var errors = lexer.errors + parser.errors
        guard errors.isEmpty else { return (nil, errors) }
        guard statements.count == 1, case .select(let select) = statements[0] else {
            let location = source.location(0)
            errors.append(SQLError(.syntax, "expected exactly one SELECT statement", file: "query", range: SourceRange(start: location, length: 1), lineText: source.lineText(1)))
            return (nil, errors)
        }
        var binder = Binder(source: source)
        let query = binder.bindQuery(select, views: views)
        return (query, binder.errors)
    }

    private static func firstInvalidUTF8Offset(_ bytes: [UInt8]) -> Int? {
        var index = 0
        while index < bytes.count {
            let byte = bytes[index]
            if byte < 0x80 {
                index += 1
                continue
            }
            let length = byte >= 0xF0 && byte <= 0xF4 ? 4 : byte >= 0xE0 ? 3 : byte >= 0xC2 && byte < 0xE0 ? 2 : 0
            guard length > 0, index + length <= bytes.count else { return index }
            if String(validating: bytes[index..<(index + length)], as: UTF8.self) == nil { return index }
            index += length
        }
        return nil
    }
}
