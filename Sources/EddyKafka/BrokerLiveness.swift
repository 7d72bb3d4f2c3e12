import Foundation

/// When a Kafka broker last answered this client, judged from librdkafka's statistics (one report per
/// `statistics.interval.ms`). Pure: fed parsed reports, so it is tested without a broker.
///
/// A broker counts as answering now when its connection is up and it owes no reply (nothing sent is waiting
/// for an answer: a paused consumer asks nothing); when it owes one, it last answered `rxidle` ago. A broker
/// whose connection is down, or that keeps a request unanswered, stops moving the instant, so "no broker
/// answered for N seconds" is `now - lastAnswer > N` — and it recovers at the first report after a broker
/// answers again.
struct BrokerLiveness: Sendable {
    /// One broker of a statistics report (librdkafka's names; see its STATISTICS.md).
    struct Broker: Decodable, Equatable, Sendable {
        /// `UP` once connected and past the API-version exchange; `DOWN`, `CONNECT`, `TRY_CONNECT`, … otherwise.
        var state: String
        /// Requests sent and waiting for their reply.
        var waitresp_cnt: Int?
        /// Requests queued, not yet sent.
        var outbuf_cnt: Int?
        /// Microseconds since the last byte received on this connection (-1 before the first).
        var rxidle: Int64?
    }

    /// The instant a broker last answered (or the tracker was made, which is when a broker had just answered
    /// the start-up metadata request).
    private(set) var lastAnswer: ContinuousClock.Instant

    init(answeredAt start: ContinuousClock.Instant) { lastAnswer = start }

    /// Takes one statistics report's brokers, as of `now`.
    mutating func record(_ brokers: [Broker], at now: ContinuousClock.Instant) {
        for broker in brokers where broker.state == "UP" {
            let owed = (broker.waitresp_cnt ?? 0) + (broker.outbuf_cnt ?? 0)
            let answered: ContinuousClock.Instant? =
                if owed == 0 { now } else if let idle = broker.rxidle, idle >= 0 { now - .microseconds(idle) } else { nil }
            if let answered, answered > lastAnswer { lastAnswer = answered }
        }
    }

    /// The brokers of a librdkafka statistics JSON document; nil if it cannot be read (then nothing moves).
    static func brokers(inStatistics json: String) -> [Broker]? {
        struct Report: Decodable { var brokers: [String: Broker]? }
        guard let report = try? JSONDecoder().decode(Report.self, from: Data(json.utf8)) else { return nil }
        return report.brokers.map { Array($0.values) } ?? []
    }
}
