import EddyHTTP
import Foundation
import Testing

@Suite("HTTPBindAddress parsing")
struct HTTPBindAddressTests {
    @Test(
        "accepted forms",
        arguments: [
            ("127.0.0.1:9187", "127.0.0.1", 9187, true),
            (":9187", "127.0.0.1", 9187, true),
            ("[::1]:8080", "::1", 8080, true),
            ("0.0.0.0:80", "0.0.0.0", 80, false),
            ("[::]:9187", "::", 9187, false),
            ("localhost:0", "localhost", 0, true),
            (" eddy.internal:65535 ", "eddy.internal", 65535, false),
        ]
    )
    func accepted(text: String, host: String, port: Int, isLoopback: Bool) throws {
        let address = try HTTPBindAddress(parsing: text)
        #expect(address == HTTPBindAddress(host: host, port: port))
        #expect(address.isLoopback == isLoopback)
    }

    @Test(
        "rejected forms name what is wrong",
        arguments: [
            ("", "empty"),
            ("127.0.0.1", "no port"),
            ("127.0.0.1:", "no port after"),
            ("127.0.0.1:http", "'http' is not a number"),
            ("127.0.0.1:65536", "'65536' is not a number from 0 to 65535"),
            ("127.0.0.1:-1", "'-1'"),
            ("::1:9187", "IPv6 address must be in brackets"),
            ("[::1:9187", "without a closing"),
            ("[::1]9187", "no ':PORT' after"),
            ("[localhost]:9187", "must hold an IPv6 address"),
            ("my host:9187", "not a host name"),
        ]
    )
    func rejected(text: String, fragment: String) {
        let error = #expect(throws: EddyHTTPError.self) { try HTTPBindAddress(parsing: text) }
        #expect(error?.code == .invalidBindAddress)
        #expect(error?.isRetriable == false)
        #expect(error?.reason.contains("'\(text)'") == true)
        #expect(error?.reason.contains(fragment) == true, "\(error?.reason ?? "")")
    }

    @Test("description brackets IPv6 hosts; the default is loopback 9187")
    func description() {
        #expect(HTTPBindAddress(host: "::1", port: 1).description == "[::1]:1")
        #expect(HTTPBindAddress.defaultAddress.description == "127.0.0.1:9187")
        #expect(HTTPBindAddress.defaultAddress.isLoopback)
    }
}

@Suite("View documents")
struct ViewDocumentTests {
    @Test("JSONScalar encodes as bare JSON values and decodes back")
    func scalarCoding() throws {
        let cells: [JSONScalar] = [.null, .bool(false), .int(-42), .double(4.5), .string("a \"quoted\" ü"), .double(.infinity)]
        let encoded = String(decoding: try JSONEncoder().encode(cells), as: UTF8.self)
        #expect(encoded == #"[null,false,-42,4.5,"a \"quoted\" ü",null]"#)
        let decoded = try JSONDecoder().decode([JSONScalar].self, from: Data(encoded.utf8))
        #expect(decoded == [.null, .bool(false), .int(-42), .double(4.5), .string("a \"quoted\" ü"), .null])
        #expect(throws: DecodingError.self) { try JSONDecoder().decode(JSONScalar.self, from: Data("[1]".utf8)) }
    }

    @Test("the value column is the first numeric non-key column, else the first numeric one")
    func valueColumn() {
        let key = ViewColumn(name: "k", type: "BIGINT", isGroupKey: true)
        let label = ViewColumn(name: "name", type: "VARCHAR", isGroupKey: false)
        let count = ViewColumn(name: "count", type: "BIGINT", isGroupKey: false)
        let withValue = ViewRows(name: "v", columns: [key, label, count], rows: [[.int(1), .string("a"), .int(5)]], epoch: 1, isLive: true)
        #expect(withValue.valueColumnIndex == 2)
        let keysOnly = ViewRows(name: "v", columns: [key], rows: [[.int(7)]], epoch: 1, isLive: true)
        #expect(keysOnly.valueColumnIndex == 0)
        let noNumbers = ViewRows(name: "v", columns: [label], rows: [[.string("x")]], epoch: 1, isLive: true)
        #expect(noNumbers.valueColumnIndex == nil)
        let allNull = ViewRows(name: "v", columns: [key, count], rows: [[.int(1), .null]], epoch: 1, isLive: true)
        #expect(allNull.valueColumnIndex == 0)
    }

    @Test("top(n) keeps the n largest values, numbers before non-numbers, ties in order, and counts every row")
    func top() {
        let columns = [ViewColumn(name: "event", type: "VARCHAR", isGroupKey: true), ViewColumn(name: "count", type: "BIGINT", isGroupKey: false)]
        let rows: [[JSONScalar]] = [
            [.string("a"), .int(3)], [.string("b"), .null], [.string("c"), .int(9)], [.string("d"), .double(3)], [.string("e"), .int(1)],
        ]
        let view = ViewRows(name: "v", columns: columns, rows: rows, epoch: 1, isLive: true)
        let top3 = view.top(3)
        #expect(top3.rows.map { $0[0] } == [.string("c"), .string("a"), .string("d")])
        #expect(top3.totalRows == 5)
        #expect(view.top(10).rows.map { $0[0] } == [.string("c"), .string("a"), .string("d"), .string("e"), .string("b")])
        #expect(view.top(0).rows.isEmpty)
    }
}

@Suite("ReadinessRules")
struct ReadinessRulesTests {
    @Test("a running pipeline with healthy sinks and small lag is ready")
    func ready() {
        let status = ReadinessRules(maximumLag: 100).apply(to: TestPipeline.exampleStatus)
        #expect(status.ready)
        #expect(status.notReadyReasons.isEmpty)
    }

    @Test("each cause of unreadiness gives its own reason")
    func notReady() {
        var status = TestPipeline.exampleStatus
        status.state = .paused
        status.sinks[0].healthy = false
        status.sinks[0].pendingEpochs = 9
        status.sinks[0].lastError = "connection refused (127.0.0.1:6379)"
        status.sources[0].partitions[1].lag = 5_000
        let judged = ReadinessRules(maximumLag: 1_000).apply(to: status)
        #expect(!judged.ready)
        #expect(
            judged.notReadyReasons == [
                "consumer paused for backpressure: sink is 9 epochs behind",
                "sink redis_sink unhealthy: connection refused (127.0.0.1:6379)",
                "source user_events not caught up: lag 5032 > 1000 messages",
            ]
        )
        status.state = .starting
        status.sinks[0].healthy = true
        status.sources[0].partitions[1].lag = 0
        #expect(ReadinessRules(maximumLag: 1_000).notReadyReasons(for: status) == ["starting: loading state and re-sending unacknowledged epochs"])
    }

    @Test("silent brokers and stalled sink writes are not ready past their bounds, each with its reason")
    func silentBrokersAndStalledSinks() {
        let rules = ReadinessRules(maximumLag: 1_000, maximumBrokerSilence: .seconds(3), maximumSinkWait: .seconds(3))
        var status = TestPipeline.exampleStatus
        status.sources[0].secondsSinceBrokerAnswered = 0.4
        status.sinks[0].secondsWaitingForWrite = 0.2
        status.sinks[0].pendingEpochs = 1
        #expect(rules.apply(to: status).ready, "within the bounds: \(rules.notReadyReasons(for: status))")

        status.sources[0].secondsSinceBrokerAnswered = 4.26
        status.sources[0].lastBrokerError = "127.0.0.1:9092/1: Connect to ipv4#127.0.0.1:9092 failed: Connection refused"
        status.sinks[0].secondsWaitingForWrite = 3.5
        status.sinks[0].pendingEpochs = 4
        #expect(
            rules.notReadyReasons(for: status) == [
                "sink redis_sink stalled: 4 committed epochs have waited 3.5 s for a write",
                "source user_events: no Kafka broker has answered for 4.3 s (last error: 127.0.0.1:9092/1: Connect to ipv4#127.0.0.1:9092 failed: Connection refused)",
            ])

        // An unhealthy sink already says why; a stall is not repeated for it.
        status.sinks[0].healthy = false
        status.sinks[0].lastError = "timed out"
        status.sources[0].secondsSinceBrokerAnswered = nil
        #expect(rules.notReadyReasons(for: status) == ["sink redis_sink unhealthy: timed out"])

        // Behind another writer: its epochs wait on purpose, and the reason says why.
        status.sinks[0].healthy = true
        status.sinks[0].waitingForOtherWriter = true
        #expect(
            rules.notReadyReasons(for: status) == [
                "sink redis_sink: another writer is ahead of this daemon on the same keys; nothing is written until it has consumed as far"
            ])
    }
}
