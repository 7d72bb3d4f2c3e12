/// The engine's one error type: what went wrong (`code`), in words (`reason`), and whether trying again
/// can help.
///
/// Codes are open-ended (`EngineError.Code` values are static constants, not enum cases) so that each
/// part of the engine can add its own without breaking exhaustive switches elsewhere.
public struct EngineError: Error, Sendable, CustomStringConvertible {
    /// A stable, machine-readable error category.
    public struct Code: Sendable, Hashable, CustomStringConvertible {
        /// A snake_case name, usable as a metric label.
        public let name: String

        public init(_ name: String) { self.name = name }

        public var description: String { name }

        /// Stored state cannot be decoded, or does not fit the view it is restored into.
        public static let corruptState = Code("corrupt_state")
        /// The pipeline asks for something Eddy does not support (yet).
        public static let unsupported = Code("unsupported")
        /// A sink stopped for good; the pipeline cannot make progress.
        public static let sinkStopped = Code("sink_stopped")
        /// A caller passed a value outside what the API accepts.
        public static let invalidArgument = Code("invalid_argument")
        /// The pipeline does not fit the state directory it is started on.
        public static let pipelineChanged = Code("pipeline_changed")
    }

    public var code: Code
    /// What went wrong, for a human; names the thing and where it is.
    public var reason: String
    /// The error code of an underlying C library, if any.
    public var underlyingCode: Int32?
    /// Whether the same operation may succeed if tried again later.
    public var isRetriable: Bool

    public init(_ code: Code, _ reason: String, underlyingCode: Int32? = nil, isRetriable: Bool = false) {
        self.code = code
        self.reason = reason
        self.underlyingCode = underlyingCode
        self.isRetriable = isRetriable
    }

    public var description: String {
        var text = "\(code): \(reason)"
        if let underlyingCode { text += " (code \(underlyingCode))" }
        return text
    }
}
