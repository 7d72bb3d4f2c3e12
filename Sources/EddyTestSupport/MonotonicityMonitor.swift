import Foundation
import Synchronization

/// A reader of counts during a run: on its own thread it samples the values of `keys` every `interval` (a
/// sampling rate, not a wait: it runs until `finish()`), and records any value that moves backwards, or vanishes
/// once seen. What a client of Redis would have seen, for "no value ever moves backwards".
public final class MonotonicityMonitor: @unchecked Sendable {
    /// Reads the values of the keys, in order (nil: absent). A reader that throws skips that sample; it is made
    /// on the monitor's thread, so it may keep a connection of its own.
    public typealias Reader = (_ keys: [String]) throws -> [Int?]

    private let keys: [String]
    private let interval: Duration
    private let state = Mutex<(last: [String: Int], decreases: [String], polls: Int)>(([:], [], 0))
    private let stopped = Atomic<Bool>(false)
    private let done = DispatchSemaphore(value: 0)

    public init(keys: [String], interval: Duration = .milliseconds(2), makeReader: @escaping @Sendable () -> Reader) {
        self.keys = keys
        self.interval = interval
        Thread.detachNewThread { [self] in run(makeReader()) }
    }

    private func run(_ read: Reader) {
        defer { done.signal() }
        while !stopped.load(ordering: .relaxed) {
            if let values = try? read(keys) {
                state.withLock { state in
                    state.polls += 1
                    for (key, value) in zip(keys, values) {
                        guard let value else {
                            if let last = state.last[key] { state.decreases.append("\(key) vanished after \(last)") }
                            continue
                        }
                        if let previous = state.last[key], value < previous { state.decreases.append("\(key): \(previous) → \(value)") }
                        state.last[key] = value
                    }
                }
            }
            Thread.sleep(forTimeInterval: Double(interval.components.attoseconds) / 1e18 + Double(interval.components.seconds))
        }
    }

    /// Stops sampling; returns every decrease seen and the number of samples.
    public func finish() -> (decreases: [String], polls: Int) {
        stopped.store(true, ordering: .relaxed)
        done.wait()
        return state.withLock { ($0.decreases, $0.polls) }
    }
}
