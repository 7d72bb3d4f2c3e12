import EddyWorkload

/// One scenario of `eddy bench`: the load (how many users, how large each message, how many partitions) and the
/// pipeline's views, each with a Redis sink whose expected contents the bench computes by replaying the load.
struct BenchScenario: Sendable {
    /// A field of the generator's events a view groups by.
    enum Field: String, Sendable {
        case user, page, event
    }

    /// What a view computes, so that its expected Redis contents can be replayed from the messages.
    enum Shape: Sendable {
        /// `SELECT fields…, COUNT(*) AS count FROM user_events GROUP BY fields…`.
        case count(by: [Field])
        /// `SELECT count, COUNT(*) AS users FROM <view> GROUP BY count` over a `.count` view: how many groups
        /// have each count (a view over a view).
        case countOfCounts(of: String)
    }

    /// A materialized view and its sink.
    struct View: Sendable {
        var name: String
        var shape: Shape
        /// Text put before the sink's key (so that the views' keys never collide in one Redis).
        var keyPrefix: String

        /// The view's output columns: the grouped fields (or the counted count), then the count.
        var keyColumns: [String] {
            switch shape {
            case .count(let fields): fields.map(\.rawValue)
            case .countOfCounts: ["n"]
            }
        }

        var valueColumn: String {
            switch shape {
            case .count: "n"
            case .countOfCounts: "users"
            }
        }

        var sinkName: String { name + "_sink" }

        func createStatements(redisURL: String) -> String {
            let select: String
            switch shape {
            case .count(let fields):
                let columns = fields.map(\.rawValue).joined(separator: ", ")
                select = "SELECT \(columns), COUNT(*) AS n FROM user_events GROUP BY \(columns)"
            case .countOfCounts(let view):
                select = "SELECT n, COUNT(*) AS users FROM \(view) GROUP BY n"
            }
            let keyFormat = keyPrefix + keyColumns.map { "{\($0)}" }.joined(separator: "|")
            // As the seed pipeline says, for counts (their rows never leave); a count of counts' rows do, and
            // their keys must go with them.
            let appendOnly = if case .count = shape { "force_append_only='true', " } else { "" }
            return """
                CREATE MATERIALIZED VIEW \(name) AS \(select);
                CREATE SINK \(sinkName) FROM \(name) WITH (connector='redis', primary_key='\(keyColumns.joined(separator: ","))', \
                redis.url='\(redisURL)') FORMAT PLAIN ENCODE TEMPLATE (\(appendOnly)key_format='\(keyFormat)', \
                value_format='{\(valueColumn)}');

                """
        }
    }

    var name: String
    var summary: String
    /// Distinct user logins the generator draws from (`eddy produce --users`).
    var users = 1_000
    /// Pad each message to at least this many bytes (`eddy produce --pad`); 0: the natural ~130 bytes.
    var padding = 0
    /// Partitions of the topic; nil: as many as the dev broker needs to keep every message.
    var partitions: Int?
    /// Messages as a multiple of `--messages`. The keys curve (seed, users-1k, page-user-100k, keys-1m) runs 3 times
    /// the base, so that start-up (about 0.1 CPU-second, and the consumer's first fetches) weighs little in ratios
    /// of a run of a second or two: 3 million messages by default, as issue 13 measured.
    var messageScale = 1.0
    /// At most this many messages, whatever `--messages` says (one partition of the dev broker keeps only
    /// about 20,000 of the natural messages).
    var maximumMessages: Int?
    var views: [View]

    static let topic = "bench"

    /// librdkafka's fetch.max.bytes for the daemon and the floor alike, written out so that both read alike: EddyKafka's
    /// own default since the bench found that 16 MiB less 512 bytes (just under receive.message.max.bytes) let the dev
    /// broker, which overshoots fetch.max.bytes, send responses librdkafka refuses forever ("Invalid response size").
    static let fetchMaxBytes = 8 << 20

    /// The pipeline file: one source read from the earliest offset, the views and their sinks.
    func pipeline(brokers: String, redisURL: String) -> String {
        """
        CREATE SOURCE user_events (event_timestamp TIMESTAMP, user VARCHAR, page VARCHAR, event VARCHAR) WITH (connector='kafka', \
        topic='\(Self.topic)', properties.bootstrap.server='\(brokers)', scan.startup.mode='earliest', \
        properties.fetch.max.bytes='\(Self.fetchMaxBytes)') FORMAT PLAIN ENCODE JSON;

        """ + views.map { $0.createStatements(redisURL: redisURL) }.joined()
    }

    /// The messages this scenario runs with `--messages base`.
    func messageCount(base: Int) -> Int {
        let scaled = max(1, Int((Double(base) * messageScale).rounded()))
        return maximumMessages.map { min($0, scaled) } ?? scaled
    }

    /// The dev broker keeps about 5 MB per partition and drops a partition's oldest messages beyond (DESIGN §5):
    /// one partition per 2.5 MB of messages keeps them all, with room for the latency phase's.
    func partitionCount(messages: Int) -> Int {
        if let partitions { return partitions }
        let bytes = Double(messages) * Double(max(padding, Self.naturalMessageBytes))
        return min(256, max(4, Int((bytes / 2_500_000).rounded(.up))))
    }

    /// About the size of an unpadded message of the generator.
    static let naturalMessageBytes = 130

    /// Every scenario, in the order a run without arguments runs them.
    static let all: [BenchScenario] = [
        BenchScenario(
            name: "seed", summary: "the seed pipeline: COUNT(*) GROUP BY event (5 keys)",
            messageScale: 3,
            views: [View(name: "events_statisics_mv", shape: .count(by: [.event]), keyPrefix: "")]),
        BenchScenario(
            name: "users-1k", summary: "GROUP BY user (1,000 keys)",
            messageScale: 3,
            views: [View(name: "per_user", shape: .count(by: [.user]), keyPrefix: "u:")]),
        BenchScenario(
            name: "page-user-100k", summary: "GROUP BY page, user (up to 100,000 keys: 100 pages × 1,000 users)",
            messageScale: 3,
            views: [View(name: "per_page_user", shape: .count(by: [.page, .user]), keyPrefix: "pu:")]),
        BenchScenario(
            name: "keys-1m", summary: "GROUP BY user over 1,000,000 users (distinct keys: most of them, by message count)",
            users: 1_000_000, messageScale: 3,
            views: [View(name: "per_user", shape: .count(by: [.user]), keyPrefix: "u:")]),
        BenchScenario(
            name: "size-1k", summary: "the seed pipeline over messages padded to 1 KB",
            padding: 1_024, messageScale: 0.025,
            views: [View(name: "events_statisics_mv", shape: .count(by: [.event]), keyPrefix: "")]),
        BenchScenario(
            name: "size-4k", summary: "the seed pipeline over messages padded to 4 KB",
            padding: 4_096, messageScale: 0.00625,
            views: [View(name: "events_statisics_mv", shape: .count(by: [.event]), keyPrefix: "")]),
        BenchScenario(
            name: "partitions-1", summary: "the seed pipeline on 1 partition (at most 20,000 messages: what the dev broker keeps in one)",
            partitions: 1, maximumMessages: 20_000,
            views: [View(name: "events_statisics_mv", shape: .count(by: [.event]), keyPrefix: "")]),
        BenchScenario(
            name: "partitions-64", summary: "the seed pipeline on 64 partitions",
            partitions: 64,
            views: [View(name: "events_statisics_mv", shape: .count(by: [.event]), keyPrefix: "")]),
        BenchScenario(
            name: "views-3", summary: "three views at once: by event, by page, by page and event (each message decoded once)",
            views: [
                View(name: "by_event", shape: .count(by: [.event]), keyPrefix: "e:"),
                View(name: "by_page", shape: .count(by: [.page]), keyPrefix: "p:"),
                View(name: "by_page_event", shape: .count(by: [.page, .event]), keyPrefix: "pe:"),
            ]),
        BenchScenario(
            name: "cascade", summary: "a two-level cascade: per-user counts, and how many users have each count (a view over a view)",
            views: [
                View(name: "per_user", shape: .count(by: [.user]), keyPrefix: "u:"),
                View(name: "count_of_counts", shape: .countOfCounts(of: "per_user"), keyPrefix: "n:"),
            ]),
    ]

    static func named(_ name: String) -> BenchScenario? { all.first { $0.name == name } }
}

/// The Redis contents a scenario's sinks must hold, computed by replaying the generator: counts per group of
/// every message produced (same seeds, same users), rendered as the sinks' templates render them.
struct BenchExpectation {
    private var counts: [[[UInt8]: Int]]
    private let scenario: BenchScenario

    init(scenario: BenchScenario) {
        self.scenario = scenario
        counts = Array(repeating: [:], count: scenario.views.count)
    }

    /// Adds the first `count` messages of the generator seeded with `seed`.
    mutating func replay(seed: UInt64, count: Int) {
        var generator = UserEventGenerator(seed: seed, userCount: scenario.users)
        var buffer: [UInt8] = []
        buffer.reserveCapacity(512)
        let timestamp = EventTimestamp(epochSeconds: 0)
        var key: [UInt8] = []
        for _ in 0..<count {
            buffer.removeAll(keepingCapacity: true)
            _ = generator.appendMessage(timestamp: timestamp, to: &buffer)
            for (index, view) in scenario.views.enumerated() {
                guard case .count(let fields) = view.shape else { continue }
                key.removeAll(keepingCapacity: true)
                for (position, field) in fields.enumerated() {
                    if position > 0 { key.append(UInt8(ascii: "|")) }
                    key.append(contentsOf: Self.value(of: field, in: buffer))
                }
                counts[index][key, default: 0] += 1
            }
        }
    }

    /// The string value of `field` in one of the generator's messages (its values hold no quote or escape).
    private static func value(of field: BenchScenario.Field, in message: [UInt8]) -> ArraySlice<UInt8> {
        let marker: [UInt8] = switch field {
        case .user: userMarker
        case .page: pageMarker
        case .event: eventMarker
        }
        guard let start = message.indices.first(where: { message[$0...].starts(with: marker) }).map({ $0 + marker.count }),
            let end = message[start...].firstIndex(of: UInt8(ascii: "\""))
        else { return [] }
        return message[start..<end]
    }

    private static let userMarker = Array(#""user": ""#.utf8)
    private static let pageMarker = Array(#""page": ""#.utf8)
    private static let eventMarker = Array(#""event": ""#.utf8)

    /// Per sink, Redis key → value.
    var redisContents: [(sink: String, values: [String: String])] {
        scenario.views.enumerated().map { index, view in
            var values: [String: String] = [:]
            switch view.shape {
            case .count:
                values.reserveCapacity(counts[index].count)
                for (key, count) in counts[index] { values[view.keyPrefix + String(decoding: key, as: UTF8.self)] = String(count) }
            case .countOfCounts(let of):
                let below = scenario.views.firstIndex { $0.name == of }!
                var histogram: [Int: Int] = [:]
                for count in counts[below].values { histogram[count, default: 0] += 1 }
                for (count, groups) in histogram { values[view.keyPrefix + String(count)] = String(groups) }
            }
            return (view.sinkName, values)
        }
    }

    /// Groups of the first view (the scenario's key count).
    var groups: Int { counts.first?.count ?? 0 }
}
