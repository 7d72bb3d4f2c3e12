import Metrics
import Synchronization

/// The PostgreSQL side's metrics, created once per server (handles, not per connection or query).
///
/// | name | kind | what |
/// |---|---|---|
/// | `eddy_pg_connections_total` | counter | connections accepted (start-up not yet done) |
/// | `eddy_pg_connections_refused_total{reason}` | counter | `limit`: over `--pg-max-connections` |
/// | `eddy_pg_connections_closed_total{reason}` | counter | `idle`, `protocol` (malformed message), `authentication`, `client` |
/// | `eddy_pg_connections_open` | gauge | connections open now |
/// | `eddy_pg_queries_total{outcome}` | counter | statements answered: `ok`, `error`, `timeout` |
public final class PostgresMetrics: Sendable {
    public enum Outcome: String, Sendable, CaseIterable { case ok, error, timeout }
    public enum CloseReason: String, Sendable, CaseIterable { case idle, `protocol`, authentication, client }

    let accepted = Counter(label: "eddy_pg_connections_total")
    let refusedOverLimit = Counter(label: "eddy_pg_connections_refused_total", dimensions: [("reason", "limit")])
    private let closed: [CloseReason: Counter]
    private let openGauge = Gauge(label: "eddy_pg_connections_open")
    private let queries: [Outcome: Counter]
    private let openCount = Atomic<Int>(0)

    public init() {
        closed = Dictionary(uniqueKeysWithValues: CloseReason.allCases.map { ($0, Counter(label: "eddy_pg_connections_closed_total", dimensions: [("reason", $0.rawValue)])) })
        queries = Dictionary(uniqueKeysWithValues: Outcome.allCases.map { ($0, Counter(label: "eddy_pg_queries_total", dimensions: [("outcome", $0.rawValue)])) })
        openGauge.record(0)
    }

    func recordQuery(_ outcome: Outcome) { queries[outcome]!.increment() }
    func recordClose(_ reason: CloseReason) { closed[reason]!.increment() }

    /// A connection opened; false (and counted as refused) when `limit` are open already.
    func open(limit: Int) -> Bool {
        let (exchanged, _) = openCount.compareExchangeLoop(limit: limit)
        guard exchanged else {
            refusedOverLimit.increment()
            return false
        }
        accepted.increment()
        openGauge.record(openCount.load(ordering: .relaxed))
        return true
    }

    func didClose() {
        openGauge.record(openCount.subtract(1, ordering: .relaxed).newValue)
    }

    /// Connections open now.
    public var openConnections: Int { openCount.load(ordering: .relaxed) }
}

extension Atomic<Int> {
    /// Adds one unless the value is `limit` already.
    fileprivate func compareExchangeLoop(limit: Int) -> (Bool, Int) {
        var current = load(ordering: .relaxed)
        while current < limit {
            let (exchanged, original) = compareExchange(expected: current, desired: current + 1, ordering: .relaxed)
            if exchanged { return (true, current + 1) }
            current = original
        }
        return (false, current)
    }
}
