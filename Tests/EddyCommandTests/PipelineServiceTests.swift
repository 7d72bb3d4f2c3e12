import Dispatch
import EddyEngine
import Foundation
import Synchronization
import Testing

@testable import eddy

/// What the fake reads and bodies saw, shared with the test.
private final class Probe: Sendable {
    private struct State {
        var epoch: UInt64 = 0
        var available = true
        var reads: [String] = []
        var readsOffQueue = 0
        var threadName: String?
        var sawStop = false
    }
    private let state = Mutex(State())

    var epoch: UInt64 {
        get { state.withLock { $0.epoch } }
        set { state.withLock { $0.epoch = newValue } }
    }
    var available: Bool {
        get { state.withLock { $0.available } }
        set { state.withLock { $0.available = newValue } }
    }
    var reads: [String] { state.withLock { $0.reads } }
    var readsOffQueue: Int { state.withLock { $0.readsOffQueue } }
    var threadName: String? { state.withLock { $0.threadName } }
    var sawStop: Bool { state.withLock { $0.sawStop } }

    func recordRead(_ view: String, onQueue: Bool) {
        state.withLock {
            $0.reads.append(view)
            if !onQueue { $0.readsOffQueue += 1 }
        }
    }
    func recordThread(_ name: String?) { state.withLock { $0.threadName = name } }
    func recordStop() { state.withLock { $0.sawStop = true } }
}

private struct BodyFailed: Error, Equatable {}

@Suite("PipelineService")
struct PipelineServiceTests {
    /// A cache over a fake reader: values are "view@epoch", reads are counted and must run on `queue`.
    private func cache(_ probe: Probe) -> CheckpointedViewCache<String> {
        let queue = DispatchQueue(label: "eddy.test.views")
        let key = DispatchSpecificKey<Bool>()
        queue.setSpecific(key: key, value: true)
        return CheckpointedViewCache(queue: queue, committedEpoch: { probe.epoch }) { view in
            probe.recordRead(view, onQueue: DispatchQueue.getSpecific(key: key) == true)
            return probe.available ? "\(view)@\(probe.epoch)" : nil
        }
    }

    @Test("view rows are read once per view and committed epoch, on the reading queue")
    func readOncePerEpoch() async {
        let probe = Probe()
        let views = cache(probe)
        #expect(await views.value(of: "a") == "a@0")
        #expect(await views.value(of: "a") == "a@0")
        #expect(await views.value(of: "b") == "b@0")
        #expect(probe.reads == ["a", "b"])

        probe.epoch = 1
        #expect(await views.value(of: "a") == "a@1")
        #expect(await views.value(of: "a") == "a@1")
        #expect(probe.reads == ["a", "b", "a"])

        // Asks at the same time wait for one read.
        probe.epoch = 2
        async let first = views.value(of: "b")
        async let second = views.value(of: "b")
        #expect(await [first, second] == ["b@2", "b@2"])
        #expect(probe.reads == ["a", "b", "a", "b"])
        #expect(probe.readsOffQueue == 0)
    }

    @Test("a read that finds nothing (pipeline not running) is not kept")
    func nothingIsNotCached() async {
        let probe = Probe()
        let views = cache(probe)
        #expect(await views.value(of: "a") == "a@0")
        probe.available = false
        probe.epoch = 1
        #expect(await views.value(of: "a") == nil)
        #expect(await views.value(of: "a") == nil)
        probe.available = true
        #expect(await views.value(of: "a") == "a@1")
        #expect(probe.reads == ["a", "a", "a", "a"])
    }

    @Test("cancelling the task requests the stop; the body returns and so does the service")
    func cancellationStops() async throws {
        let probe = Probe()
        let (started, startedContinuation) = AsyncStream.makeStream(of: Void.self)
        let task = Task {
            try await PipelineService.runOnOwnThread(named: "eddy-test-body") { stop in
                probe.recordThread(Thread.current.name)
                startedContinuation.yield()
                // The runner polls its stop signal between batches; so does this stand-in, for at most 30 s (a
                // stop never requested fails `sawStop` below rather than hanging the suite).
                let deadline = ContinuousClock.now + .seconds(30)
                while !stop.isRequested && ContinuousClock.now < deadline { usleep(1_000) }
                if stop.isRequested { probe.recordStop() }
            }
        }
        var iterator = started.makeAsyncIterator()
        await iterator.next()
        task.cancel()
        try await task.value
        #expect(probe.sawStop)
        #expect(probe.threadName == "eddy-test-body")
    }

    @Test("a task cancelled before it starts still runs the body, already asked to stop")
    func cancelledBeforeStart() async throws {
        let probe = Probe()
        let task = Task {
            withUnsafeCurrentTask { $0?.cancel() }
            try await PipelineService.runOnOwnThread(named: "eddy-test-body") { stop in
                if stop.isRequested { probe.recordStop() }
            }
        }
        try await task.value
        #expect(probe.sawStop)
    }

    @Test("the body's error is the service's error")
    func errorsPropagate() async {
        await #expect(throws: BodyFailed.self) {
            try await PipelineService.runOnOwnThread(named: "eddy-test-body") { _ in throw BodyFailed() }
        }
    }
}
