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
/// Not ready while starting or stopping, while paused for backpressure, while a sink is unhealthy or its
/// writes are stalled, while no Kafka broker has answered for a few seconds, or while the summed lag of a
/// source is above `maximumLag`.
public struct ReadinessRules: Sendable, Equatable {
    /// Lag (messages, summed over a source's partitions) above which the pipeline is not caught up.
    /// Default 10,000: a few seconds of a busy topic.
    public var maximumLag: Int64
    /// How long no Kafka broker may stay silent. Default 3 s: a healthy consumer hears from its brokers at
    /// least every fetch wait (0.5 s), and the runner learns of it once a second, so 3 s is an outage, not a
    /// slow answer.
    public var maximumBrokerSilence: Duration
    /// How long committed epochs may wait without a sink write being applied. Default 3 s: a write takes
    /// milliseconds; one in flight for seconds is stuck (a paused Redis answers only after its pause, or the
    /// command times out after 10 s).
    public var maximumSinkWait: Duration

    public init(maximumLag: Int64 = 10_000, maximumBrokerSilence: Duration = .seconds(3), maximumSinkWait: Duration = .seconds(3)) {
        self.maximumLag = maximumLag
        self.maximumBrokerSilence = maximumBrokerSilence
        self.maximumSinkWait = maximumSinkWait
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
        for sink in status.sinks {
            if !sink.healthy {
                reasons.append("sink \(sink.name) unhealthy: \(sink.lastError ?? "its target is unreachable")")
            } else if sink.waitingForOtherWriter {
                reasons.append("sink \(sink.name): another writer is ahead of this daemon on the same keys; nothing is written until it has consumed as far")
            } else if let waiting = sink.secondsWaitingForWrite, waiting > maximumSinkWait / .seconds(1) {
                reasons.append("sink \(sink.name) stalled: \(sink.pendingEpochs) committed epochs have waited \(Self.seconds(waiting)) s for a write")
            }
        }
        for source in status.sources {
            if let silence = source.secondsSinceBrokerAnswered, silence > maximumBrokerSilence / .seconds(1) {
                reasons.append(
                    "source \(source.name): no Kafka broker has answered for \(Self.seconds(silence)) s"
                        + (source.lastBrokerError.map { " (last error: \($0))" } ?? ""))
            }
            if source.lag > maximumLag {
                reasons.append("source \(source.name) not caught up: lag \(source.lag) > \(maximumLag) messages")
            }
        }
        return reasons
    }

    /// Seconds with one decimal, for a reason.
    private static func seconds(_ value: Double) -> String {
        let tenths = Int((value * 10).rounded())
        return "\(tenths / 10).\(tenths % 10)"
    }

    /// `status` with `ready` and `notReadyReasons` filled in by these rules.
    public func apply(to status: PipelineStatus) -> PipelineStatus {
        var result = status
        result.notReadyReasons = notReadyReasons(for: status)
        result.ready = result.notReadyReasons.isEmpty
        return result
    }
}
