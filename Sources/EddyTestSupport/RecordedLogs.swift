import Logging
import Synchronization

/// Keeps every log line a logger writes at `level` or above, for tests that assert what an operator would see
/// (the daemon's default level is `info`).
public final class RecordedLogs: Sendable {
    /// One line: its level and its message with metadata appended as `key=value`.
    public struct Line: Sendable, Equatable {
        public let level: Logger.Level
        public let text: String
    }

    private let stored = Mutex<[Line]>([])
    private let level: Logger.Level

    public init(level: Logger.Level = .info) { self.level = level }

    /// A logger that writes here.
    public func logger(label: String = "eddy.test") -> Logger {
        Logger(label: label) { _ in Handler(logs: self, logLevel: self.level) }
    }

    /// The lines so far.
    public var lines: [Line] { stored.withLock { $0 } }

    /// The lines at `level` or above.
    public func lines(atLeast level: Logger.Level) -> [Line] { lines.filter { $0.level >= level } }

    fileprivate func append(_ line: Line) { stored.withLock { $0.append(line) } }

    private struct Handler: LogHandler {
        let logs: RecordedLogs
        var logLevel: Logger.Level
        var metadata: Logger.Metadata = [:]

        subscript(metadataKey key: String) -> Logger.Metadata.Value? {
            get { metadata[key] }
            set { metadata[key] = newValue }
        }

        func log(event: LogEvent) {
            let all = metadata.merging(event.metadata ?? [:]) { $1 }
            let suffix = all.sorted { $0.key < $1.key }.map { " \($0.key)=\($0.value)" }.joined()
            logs.append(Line(level: event.level, text: "\(event.message)\(suffix)"))
        }
    }
}
