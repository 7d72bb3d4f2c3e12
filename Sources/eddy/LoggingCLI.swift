#if canImport(Glibc)
import Glibc
#endif
import Dispatch
import Foundation
import Logging

/// A logger for a short-lived subcommand (`produce`, `dev-broker`): text to stderr, secrets masked, at the level of
/// `EDDY_LOG_LEVEL` (default `defaultLevel`; librdkafka's own log lines are forwarded at debug, so they stay
/// quiet unless asked for). `eddy run` bootstraps logging with `--log-format` instead.
func makeCLILogger(label: String, defaultLevel: Logger.Level = .warning) -> Logger {
    let requested = ProcessInfo.processInfo.environment["EDDY_LOG_LEVEL"].flatMap { Logger.Level(rawValue: $0.lowercased()) }
    return Logger(label: label) { makeLogHandler(label: $0, format: .text, level: requested ?? defaultLevel) }
}

/// Writes one line to stderr.
func printToStandardError(_ line: String) {
    FileHandle.standardError.write(Data((line + "\n").utf8))
}

/// Routes SIGINT and SIGTERM to `action` (on a Dispatch queue) instead of killing the process. Keep the
/// returned sources alive for as long as the handling should last.
func handleTerminationSignals(_ action: @escaping @Sendable () -> Void) -> [any DispatchSourceSignal] {
    [SIGINT, SIGTERM].map { number in
        signal(number, SIG_IGN)
        let source = DispatchSource.makeSignalSource(signal: number, queue: .global())
        source.setEventHandler(handler: action)
        source.resume()
        return source
    }
}
