/// What the HTTP server asks the pipeline for, on every request that needs it (the dashboard polls once a
/// second). Implementations answer from a snapshot they keep under a lock; they must not block on I/O,
/// and are called from NIO event-loop tasks, never from the hot path. Plain synchronous methods satisfy
/// these requirements.
public protocol EddyHTTPDataSource: Sendable {
    /// The pipeline's status now. `ready` and `notReadyReasons` decide `/readyz`.
    func status() async -> PipelineStatus
    /// Every view with its rows, in the order of the SQL file.
    func views() async -> [ViewRows]
    /// One view by name (exactly as in the SQL), or nil when there is no such view.
    func view(named name: String) async -> ViewRows?
}

/// A ready-made readiness policy for the runner: turns a status into the reasons it is not ready.
/// Not ready while starting or stopping, while paused for backpressure, while a sink is unhealthy, or
/// while the summed lag of a source is above `maximumLag`.
public struct ReadinessRules: Sendable, Equatable {
    /// Lag (messages, summed over a source's partitions) above which the pipeline is not caught up.
    /// Default 10,000: a few seconds of a busy topic.
    public var maximumLag: Int64

    public init(maximumLag: Int64 = 10_000) {
        self.maximumLag = maximumLag
    }

    /// The reasons `status` is not ready, one sentence each; empty when ready.
    public func notReadyReasons(for status: PipelineStatus) -> [String] {
        var reasons: [String] = []
        switch status.state {
        case .starting: reasons.append("starting: loading state and re-sending unacknowledged epochs")
        case .stopping: reasons.append("stopping")
        case .paused:
            let pending = status.sinks.map(\.pendingEpochs).max() ?? 0
            reasons.append("consumer paused for backpressure: sink is \(pending) epochs behind")
        case .catchingUp, .running: break
        }
        for sink in status.sinks where !sink.healthy {
            reasons.append("sink \(sink.name) unhealthy: \(sink.lastError ?? "its target is unreachable")")
        }
        for source in status.sources where source.lag > maximumLag {
            reasons.append("source \(source.name) not caught up: lag \(source.lag) > \(maximumLag) messages")
        }
        return reasons
    }

    /// `status` with `ready` and `notReadyReasons` filled in by these rules.
    public func apply(to status: PipelineStatus) -> PipelineStatus {
        var result = status
        result.notReadyReasons = notReadyReasons(for: status)
        result.ready = result.notReadyReasons.isEmpty
        return result
    }
}
