import Synchronization

/// Runs work with a time limit that holds even when the work ignores cancellation (a checkpoint read
/// waits on a queue of its own): the caller gets `Exceeded` at the limit, the work is cancelled and its
/// late result dropped.
enum TimeLimit {
    struct Exceeded: Error {}

    static func run<T: Sendable>(_ limit: Duration, _ work: @escaping @Sendable () async throws -> T) async -> Result<T, any Error> {
        let race = Race<T>()
        return await withCheckedContinuation { continuation in
            race.start(continuation)
            let worker = Task {
                do { race.finish(.success(try await work())) } catch { race.finish(.failure(error)) }
            }
            let timer = Task {
                guard (try? await Task.sleep(for: limit)) != nil else { return }
                race.finish(.failure(Exceeded()))
            }
            race.track([worker, timer])
        }
    }

    /// The first of work and timer to finish resumes the caller and cancels the other.
    private final class Race<T: Sendable>: Sendable {
        private let state = Mutex<(continuation: CheckedContinuation<Result<T, any Error>, Never>?, tasks: [Task<Void, Never>], done: Bool)>((nil, [], false))

        func start(_ continuation: CheckedContinuation<Result<T, any Error>, Never>) {
            state.withLock { $0.continuation = continuation }
        }

        func track(_ tasks: [Task<Void, Never>]) {
            let done = state.withLock { state in
                state.tasks = tasks
                return state.done
            }
            if done { for task in tasks { task.cancel() } }
        }

        func finish(_ result: Result<T, any Error>) {
            let (continuation, tasks) = state.withLock { state in
                defer {
                    state.continuation = nil
                    state.done = true
                }
                return (state.done ? nil : state.continuation, state.tasks)
            }
            guard let continuation else { return }
            for task in tasks { task.cancel() }
            continuation.resume(returning: result)
        }
    }
}
