#if canImport(Glibc)
import Glibc
#endif
import EddySecrets
import ArgumentParser
import EddyEngine
import Foundation
import Logging

/// How log lines look on stderr: `text` for people, `json` (one object per line) for log collectors.
enum LogFormat: String, CaseIterable, ExpressibleByArgument, Sendable {
    case text
    case json
}

/// `--log-format` and `--log-level`, for a subcommand to take as an `@OptionGroup` and hand to
/// `bootstrapLogging(format:level:)` in its `run()`.
struct LoggingOptions: ParsableArguments {
    @Option(name: .customLong("log-format"), help: "Log lines as 'text' or 'json' (one JSON object per line).")
    var format: LogFormat = .text

    @Option(
        name: .customLong("log-level"),
        help: "trace, debug, info, notice, warning, error or critical (default: $EDDY_LOG_LEVEL, else info)."
    )
    var level: String?

    func validate() throws {
        if let level, Logger.Level(rawValue: level.lowercased()) == nil {
            throw ValidationError("--log-level '\(level)' is not one of \(Logger.Level.allCases.map(\.rawValue).joined(separator: ", ")).")
        }
    }

    /// `--log-level`, else `EDDY_LOG_LEVEL`, else `fallback`. An unknown environment value is an error
    /// naming the variable (a typo there should not silently log at another level).
    func resolvedLevel(environment: [String: String] = ProcessInfo.processInfo.environment, fallback: Logger.Level = .info) throws -> Logger.Level {
        if let level { return Logger.Level(rawValue: level.lowercased()) ?? fallback }
        guard let fromEnvironment = environment["EDDY_LOG_LEVEL"], !fromEnvironment.isEmpty else { return fallback }
        guard let parsed = Logger.Level(rawValue: fromEnvironment.lowercased()) else {
            throw ValidationError("EDDY_LOG_LEVEL '\(fromEnvironment)' is not one of \(Logger.Level.allCases.map(\.rawValue).joined(separator: ", ")).")
        }
        return parsed
    }
}

/// Sets the process-wide swift-log backend once: every `Logger` made afterwards writes `format` lines to
/// stderr at `level` and above. Call it first thing in a daemon's `run()`; swift-log allows one bootstrap
/// per process.
func bootstrapLogging(format: LogFormat, level: Logger.Level) {
    LoggingSystem.bootstrap { label in makeLogHandler(label: label, format: format, level: level) }
}

/// The handler `bootstrapLogging` installs for `label`; `write` receives each finished line (with its
/// `\n`), by default stderr.
func makeLogHandler(
    label: String,
    format: LogFormat,
    level: Logger.Level,
    write: @escaping @Sendable (String) -> Void = StandardErrorLines.write
) -> any LogHandler {
    switch format {
    case .json:
        var handler = JSONLogHandler(label: label, write: write)
        handler.logLevel = level
        return handler
    case .text:
        var handler = MaskingLogHandler(wrapping: StreamLogHandler.standardError(label: label))
        handler.logLevel = level
        return handler
    }
}

/// One log event as one JSON object on one line:
/// `{"timestamp":"2026-11-24T17:00:03.123Z","level":"info","label":"eddy.run","message":"…","source":"EddyKafka",…}`
/// followed by the metadata, flattened: nested dictionaries become dotted keys (`eddy.kafka.topic`),
/// arrays stay arrays of strings. A metadata key that would shadow one of the fixed fields gets a
/// `metadata.` prefix. Values of keys that mention a password or secret are masked, and so are
/// passwords inside URLs (`redis://u:***@host`), in metadata and message alike.
struct JSONLogHandler: LogHandler {
    let label: String
    var logLevel: Logger.Level = .info
    var metadata: Logger.Metadata = [:]
    var metadataProvider: Logger.MetadataProvider?
    private let write: @Sendable (String) -> Void

    init(label: String, metadataProvider: Logger.MetadataProvider? = LoggingSystem.metadataProvider, write: @escaping @Sendable (String) -> Void) {
        self.label = label
        self.metadataProvider = metadataProvider
        self.write = write
    }

    subscript(metadataKey key: String) -> Logger.Metadata.Value? {
        get { metadata[key] }
        set { metadata[key] = newValue }
    }

    private static let fixedFields: Set<String> = ["timestamp", "level", "label", "message", "source", "error"]

    func log(event: LogEvent) {
        var merged = metadata
        if let provided = metadataProvider?.get() { merged.merge(provided) { _, new in new } }
        if let explicit = event.metadata { merged.merge(explicit) { _, new in new } }

        var line = "{"
        line.reserveCapacity(256)
        line += "\"timestamp\":" + jsonString(utcTimestamp())
        line += ",\"level\":" + jsonString(event.level.rawValue)
        line += ",\"label\":" + jsonString(label)
        line += ",\"message\":" + jsonString(Secrets.maskingURLPasswords(event.message.description))
        line += ",\"source\":" + jsonString(event.source)
        if let error = event.error { line += ",\"error\":" + jsonString(Secrets.maskingURLPasswords("\(error)")) }
        var flat: [(String, String)] = []
        for (key, value) in merged { flatten(key: key, value: value, into: &flat) }
        for (key, rendered) in flat.sorted(by: { $0.0 < $1.0 }) {
            let name = Self.fixedFields.contains(key) ? "metadata." + key : key
            line += "," + jsonString(name) + ":" + rendered
        }
        line += "}\n"
        write(line)
    }

    /// Adds `key` (dotted for nested dictionaries) and its JSON rendering, masked when the key says secret.
    private func flatten(key: String, value: Logger.Metadata.Value, into flat: inout [(String, String)]) {
        if Secrets.isSecretSetting(key) {
            flat.append((key, jsonString(Secrets.mask)))
            return
        }
        switch value {
        case .string(let text): flat.append((key, jsonString(Secrets.maskingURLPasswords(text))))
        case .stringConvertible(let convertible): flat.append((key, jsonString(Secrets.maskingURLPasswords(convertible.description))))
        case .array(let values): flat.append((key, "[" + values.map { jsonString(Secrets.maskingURLPasswords(plainText($0))) }.joined(separator: ",") + "]"))
        case .dictionary(let dictionary):
            for (inner, innerValue) in dictionary { flatten(key: key + "." + inner, value: innerValue, into: &flat) }
        }
    }
}

/// Masks metadata whose key mentions a password or secret before another handler (the text format)
/// formats it. Keeps its own metadata so that the wrapped handler sees only masked values.
struct MaskingLogHandler<Wrapped: LogHandler>: LogHandler {
    private var wrapped: Wrapped
    var metadata: Logger.Metadata = [:]

    init(wrapping wrapped: Wrapped) {
        self.wrapped = wrapped
        self.metadata = wrapped.metadata
        self.wrapped.metadata = [:]
    }

    var logLevel: Logger.Level {
        get { wrapped.logLevel }
        set { wrapped.logLevel = newValue }
    }

    var metadataProvider: Logger.MetadataProvider? {
        get { wrapped.metadataProvider }
        set { wrapped.metadataProvider = newValue }
    }

    subscript(metadataKey key: String) -> Logger.Metadata.Value? {
        get { metadata[key] }
        set { metadata[key] = newValue }
    }

    func log(event: LogEvent) {
        var masked = event
        var merged = metadata
        if let explicit = event.metadata { merged.merge(explicit) { _, new in new } }
        masked.metadata = maskSecrets(merged)
        masked.message = Logger.Message(stringLiteral: Secrets.maskingURLPasswords(event.message.description))
        wrapped.log(event: masked)
    }
}

/// `metadata` with every value under a secret-sounding key replaced by `***`, at any depth.
func maskSecrets(_ metadata: Logger.Metadata) -> Logger.Metadata {
    var result: Logger.Metadata = [:]
    for (key, value) in metadata {
        if Secrets.isSecretSetting(key) {
            result[key] = .string(Secrets.mask)
            continue
        }
        switch value {
        case .dictionary(let inner): result[key] = .dictionary(maskSecrets(inner))
        case .string(let text): result[key] = .string(Secrets.maskingURLPasswords(text))
        case .stringConvertible(let convertible): result[key] = .string(Secrets.maskingURLPasswords(convertible.description))
        case .array(let values): result[key] = .array(values.map { .string(Secrets.maskingURLPasswords(plainText($0))) })
        }
    }
    return result
}

private func plainText(_ value: Logger.Metadata.Value) -> String {
    switch value {
    case .string(let text): text
    case .stringConvertible(let convertible): convertible.description
    case .array, .dictionary: value.description
    }
}

/// `text` as a JSON string literal (the one escaper the JSON outputs share).
func jsonString(_ text: String) -> String { ResultTable.jsonString(text) }

/// Now as ISO-8601 UTC with milliseconds: `2026-11-24T17:00:03.123Z`.
func utcTimestamp(_ time: timespec = currentRealTime()) -> String {
    var seconds = time.tv_sec
    var parts = tm()
    gmtime_r(&seconds, &parts)
    func pad(_ value: Int32, _ width: Int) -> String {
        let digits = String(value)
        return String(repeating: "0", count: max(0, width - digits.count)) + digits
    }
    let milliseconds = Int32(time.tv_nsec / 1_000_000)
    return "\(pad(parts.tm_year + 1900, 4))-\(pad(parts.tm_mon + 1, 2))-\(pad(parts.tm_mday, 2))T"
        + "\(pad(parts.tm_hour, 2)):\(pad(parts.tm_min, 2)):\(pad(parts.tm_sec, 2)).\(pad(milliseconds, 3))Z"
}

func currentRealTime() -> timespec {
    var time = timespec()
    clock_gettime(CLOCK_REALTIME, &time)
    return time
}

/// Whole lines to stderr, each written in one call under a lock, so that lines from several threads
/// never interleave.
enum StandardErrorLines {
    private static let lock = NSLock()

    @Sendable static func write(_ line: String) {
        let data = Data(line.utf8)
        lock.withLock { FileHandle.standardError.write(data) }
    }
}
