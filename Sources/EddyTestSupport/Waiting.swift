import Foundation

/// Polls `condition` until it holds or `timeout` passes; returns whether it held. For tests that await an
/// outcome (a count in Redis, a process state) rather than sleeping a fixed time.
public func eventually(
    timeout: Duration = .seconds(20), every interval: Duration = .milliseconds(10), _ condition: () throws -> Bool
) rethrows -> Bool {
    let deadline = ContinuousClock.now + timeout
    while true {
        if try condition() { return true }
        if ContinuousClock.now >= deadline { return false }
        Thread.sleep(forTimeInterval: Double(interval.components.attoseconds) / 1e18 + Double(interval.components.seconds))
    }
}

/// `eventually` for a condition that awaits (an HTTP request): polls until it holds or `timeout` passes;
/// returns whether it held.
public func awaitCondition(
    timeout: Duration = .seconds(20), every interval: Duration = .milliseconds(50), _ condition: () async throws -> Bool
) async rethrows -> Bool {
    let deadline = ContinuousClock.now + timeout
    while true {
        if try await condition() { return true }
        if ContinuousClock.now >= deadline { return false }
        try? await Task.sleep(for: interval)
    }
}

/// A fresh directory under /tmp, removed by `remove()`.
public struct ScratchDirectory: Sendable {
    public let path: String

    public init(prefix: String = "eddy-test") throws {
        path = NSTemporaryDirectory() + "/\(prefix)-\(UUID().uuidString)"
        try FileManager.default.createDirectory(atPath: path, withIntermediateDirectories: true)
    }

    public func remove() { try? FileManager.default.removeItem(atPath: path) }
}
