#if canImport(Glibc)
import Glibc
#endif
import EddyEngine
import EddyRedis
import Foundation
import Logging
import Synchronization

/// Polls Redis (`MGET` of the view's keys and the sinks' markers) every couple of milliseconds on a thread of its
/// own and records every value that moves backwards or vanishes (DESIGN §3: no Redis value ever moves backwards).
/// Counts are compared as numbers; a marker (`eddy:<sink>:epoch`, the source offsets of the values Redis holds)
/// moves backwards when any partition's offset does, which covers views whose values are not monotone: a sink
/// writes its values and its marker in one transaction.
///
/// After the drill empties Redis on purpose (`forgetValues`), values are compared only with what was seen since:
/// the guarantee's weak form once Redis has lost its data.
final class DrillMonitor: Sendable {
    /// What the monitor has seen so far.
    struct Snapshot: Sendable {
        /// The last value of each key (absent keys left out).
        var values: [String: Int] = [:]
        var total: Int { values.values.reduce(0, +) }
        /// The last marker of each sink (absent ones left out).
        var markers: [String: SinkProgress] = [:]
        /// Messages every sink's values in Redis stand for: the least, over the sinks, of the sum of their marker's
        /// offsets (0 while a marker is absent). Grows as the pipeline writes; what recovery waits for.
        var progress: Int = 0
        var decreases: [String] = []
        var polls = 0
    }

    private struct State {
        var snapshot = Snapshot()
        /// Bumped by `forgetValues`: a reply to an `MGET` sent before it is not compared.
        var generation = 0
        var isForgetting = false
    }

    private let url: RedisURL
    private let keys: [String]
    private let markerKeys: [String]
    private let state = Mutex(State())
    private let stopped = Atomic<Bool>(false)
    private let finished = DispatchSemaphore(value: 0)
    private let started: ContinuousClock.Instant

    init(url: RedisURL, keys: [String], markerKeys: [String], started: ContinuousClock.Instant) {
        self.url = url
        self.keys = keys
        self.markerKeys = markerKeys
        self.started = started
        Thread.detachNewThread { [self] in poll() }
    }

    var snapshot: Snapshot { state.withLock { $0.snapshot } }

    /// Runs `emptyRedis` (a restart without persistence) without counting what it removes as decreases; from then
    /// on, values are compared only with values seen after it.
    func forgetValues<T>(while emptyRedis: () throws -> T) rethrows -> T {
        state.withLock {
            $0.isForgetting = true
            $0.generation += 1
        }
        defer {
            state.withLock {
                $0.isForgetting = false
                $0.generation += 1
                $0.snapshot.values = [:]
                $0.snapshot.markers = [:]
                $0.snapshot.progress = 0
            }
        }
        return try emptyRedis()
    }

    /// Stops polling; what was seen.
    func finish() -> Snapshot {
        stopped.store(true, ordering: .relaxed)
        finished.wait()
        return snapshot
    }

    private func poll() {
        defer { finished.signal() }
        let command = (["MGET"] + keys + markerKeys).map { Array($0.utf8) }
        var connection: RedisConnection?
        while !stopped.load(ordering: .relaxed) {
            let generation = state.withLock { $0.generation }
            do {
                if connection == nil {
                    connection = try RedisConnection.connect(
                        url: url, connectTimeout: .milliseconds(200), commandTimeout: .milliseconds(500), logger: Logger(label: "eddy.drill.monitor"))
                }
                if case .array(let replies) = try connection!.command(command) { record(replies, sentIn: generation) }
            } catch {
                connection = nil  // Redis restarting: connect again on the next poll.
            }
            usleep(2_000)
        }
    }

    private func record(_ replies: [RedisReply], sentIn generation: Int) {
        let at = String(format: "%.3f s", (ContinuousClock.now - started) / .seconds(1))
        state.withLock { state in
            guard state.generation == generation, !state.isForgetting else { return }
            state.snapshot.polls += 1
            for (key, reply) in zip(markerKeys, replies.dropFirst(keys.count)) {
                let previous = state.snapshot.markers[key]
                guard case .string(let bytes) = reply, case .progress(let marker)? = SinkProgress.parseMarker(bytes) else {
                    if let previous { state.snapshot.decreases.append("\(at): \(key) vanished (was \(previous.markerText))") }
                    state.snapshot.markers[key] = nil
                    continue
                }
                if let previous, !marker.hasReached(previous) {
                    state.snapshot.decreases.append("\(at): \(key) went back from \(previous.markerText) to \(marker.markerText)")
                }
                state.snapshot.markers[key] = marker
            }
            state.snapshot.progress = state.snapshot.markers.count < markerKeys.count
                ? 0 : markerKeys.map { key in state.snapshot.markers[key]!.offsets.values.reduce(0) { $0 + Int($1) } }.min() ?? 0
            for (key, reply) in zip(keys, replies) {
                let previous = state.snapshot.values[key]
                guard let value = reply.text.flatMap({ Int($0) }) else {
                    if let previous { state.snapshot.decreases.append("\(at): \(key) vanished (was \(previous))") }
                    state.snapshot.values[key] = nil
                    continue
                }
                if let previous, value < previous {
                    state.snapshot.decreases.append("\(at): \(key) went from \(previous) to \(value)")
                }
                state.snapshot.values[key] = value
            }
        }
    }
}
