import CoreMetrics
import EddyHTTP
import EddyTestSupport
import Foundation
import Prometheus
import ServiceLifecycle
import Testing

@Suite("EddyHTTPServer over real HTTP")
struct EddyHTTPServerTests {
    @Test("/healthz answers ok as plain text, to GET and HEAD")
    func health() async throws {
        try await withRunningServer { server in
            let response = try await HTTPTestClient.get(server.baseURL + "/healthz")
            #expect(response.status == 200)
            #expect(response.text == "ok\n")
            #expect(response.headers["content-type"]?.hasPrefix("text/plain") == true)
            let head = try await HTTPTestClient.send(method: "HEAD", server.baseURL + "/healthz")
            #expect(head.status == 200)
            #expect(head.body.isEmpty)
            let post = try await HTTPTestClient.send(method: "POST", server.baseURL + "/healthz")
            #expect(post.status == 404, "only GET and HEAD are served")
        }
    }

    @Test("/readyz flips between 200 and 503 with the data source's readiness, in text and JSON")
    func readiness() async throws {
        let pipeline = TestPipeline()
        try await withRunningServer(pipeline) { server in
            let ready = try await HTTPTestClient.get(server.baseURL + "/readyz")
            #expect(ready.status == 200)
            #expect(ready.text == "ready\n")

            let reasons = ["sink redis_sink unhealthy: connection refused", "consumer paused for backpressure: sink is 8 epochs behind"]
            pipeline.update {
                $0.status.ready = false
                $0.status.state = .paused
                $0.status.notReadyReasons = reasons
            }
            let notReady = try await HTTPTestClient.get(server.baseURL + "/readyz")
            #expect(notReady.status == 503)
            #expect(notReady.text == "not ready\n- \(reasons[0])\n- \(reasons[1])\n")

            let asJSON = try await HTTPTestClient.get(server.baseURL + "/readyz", headers: ["Accept": "application/json"])
            #expect(asJSON.status == 503)
            #expect(asJSON.headers["content-type"]?.hasPrefix("application/json") == true)
            let document = try JSONDecoder().decode(ReadinessAnswer.self, from: asJSON.body)
            #expect(document == ReadinessAnswer(ready: false, state: "paused", reasons: reasons))
            let byQuery = try await HTTPTestClient.get(server.baseURL + "/readyz?format=json")
            #expect(try JSONDecoder().decode(ReadinessAnswer.self, from: byQuery.body) == document)

            pipeline.update {
                $0.status.ready = true
                $0.status.state = .running
                $0.status.notReadyReasons = []
            }
            let readyAgain = try await HTTPTestClient.get(server.baseURL + "/readyz")
            #expect(readyAgain.status == 200)
        }
    }

    @Test("/api/status is the data source's status, field for field")
    func status() async throws {
        let pipeline = TestPipeline()
        try await withRunningServer(pipeline) { server in
            let response = try await HTTPTestClient.get(server.baseURL + "/api/status")
            #expect(response.status == 200)
            #expect(response.headers["content-type"]?.hasPrefix("application/json") == true)
            let decoded = try JSONDecoder().decode(PipelineStatus.self, from: response.body)
            #expect(decoded == pipeline.status())
            #expect(response.text.contains(#""state":"running""#))
        }
    }

    @Test("/api/views and /api/views/NAME serve the rows; limit keeps the largest; unknown names get a JSON 404")
    func views() async throws {
        let pipeline = TestPipeline()
        let odd = ViewRows(
            name: "odd view/ü",
            columns: [ViewColumn(name: "k", type: "BOOLEAN", isGroupKey: true), ViewColumn(name: "avg", type: "DOUBLE", isGroupKey: false)],
            rows: [[.bool(true), .double(2.5)], [.null, .double(.nan)]],
            epoch: 3,
            isLive: false
        )
        pipeline.update { $0.views.append(odd) }
        try await withRunningServer(pipeline) { server in
            let all = try await HTTPTestClient.get(server.baseURL + "/api/views")
            #expect(all.status == 200)
            let decoded = try JSONDecoder().decode([ViewRows].self, from: all.body)
            #expect(decoded.map(\.name) == ["events_statisics_mv", "odd view/ü"])
            #expect(decoded[0] == TestPipeline.exampleView)
            // NaN has no JSON spelling: it travels as null.
            #expect(decoded[1].rows == [[.bool(true), .double(2.5)], [.null, .null]])

            let one = try await HTTPTestClient.get(server.baseURL + "/api/views/events_statisics_mv")
            #expect(try JSONDecoder().decode(ViewRows.self, from: one.body) == TestPipeline.exampleView)

            let escaped = try await HTTPTestClient.get(server.baseURL + "/api/views/odd%20view%2F%C3%BC")
            #expect(escaped.status == 200)
            #expect(try JSONDecoder().decode(ViewRows.self, from: escaped.body).name == "odd view/ü")

            let top = try await HTTPTestClient.get(server.baseURL + "/api/views/events_statisics_mv?limit=2")
            let topRows = try JSONDecoder().decode(ViewRows.self, from: top.body)
            let expected = TestPipeline.exampleView.rows.sorted { ($0[1].numericValue ?? 0) > ($1[1].numericValue ?? 0) }.prefix(2)
            #expect(topRows.rows == Array(expected))
            #expect(topRows.totalRows == TestPipeline.exampleView.rows.count)

            let missing = try await HTTPTestClient.get(server.baseURL + "/api/views/no_such_view")
            #expect(missing.status == 404)
            let error = try JSONDecoder().decode(ErrorAnswer.self, from: missing.body)
            #expect(error.error == "no view named 'no_such_view'")
            #expect(error.views == ["events_statisics_mv", "odd view/ü"])

            let badLimit = try await HTTPTestClient.get(server.baseURL + "/api/views?limit=lots")
            #expect(badLimit.status == 400)
            #expect(try JSONDecoder().decode(ErrorAnswer.self, from: badLimit.body).error.contains("'lots'"))

            let unknownEndpoint = try await HTTPTestClient.get(server.baseURL + "/api/nothing/here")
            #expect(unknownEndpoint.status == 404)
            #expect(try JSONDecoder().decode(ErrorAnswer.self, from: unknownEndpoint.body).error.contains("/api/nothing/here"))
        }
    }

    @Test("/metrics parses strictly, escapes labels, adds process metrics, and counters move between scrapes")
    func metrics() async throws {
        let registry = PrometheusCollectorRegistry()
        let factory = PrometheusMetricsFactory(registry: registry)
        // Handles created once, as the engine does, through the swift-metrics API.
        let consumed = CoreMetrics.Counter(label: "eddy_source_messages_total", dimensions: [("source", "user_events")], factory: factory)
        let errors = CoreMetrics.Counter(label: "eddy_source_errors_total", dimensions: [("reason", #"odd "quoted" \ reason"#)], factory: factory)
        let pending = CoreMetrics.Gauge(label: "eddy_sink_pending_epochs", dimensions: [("sink", "redis_sink")], factory: factory)
        let commit = CoreMetrics.Timer(label: "eddy_checkpoint_duration_seconds", factory: factory)
        consumed.increment(by: 1_000)
        errors.increment()
        pending.record(2)
        commit.recordMilliseconds(3)

        try await withRunningServer(registry: registry) { server in
            let first = try await HTTPTestClient.get(server.baseURL + "/metrics")
            #expect(first.status == 200)
            #expect(first.headers["content-type"] == "text/plain; version=0.0.4; charset=utf-8")
            let before = try PrometheusText.parse(first.text)
            #expect(PrometheusText.value(in: before, name: "eddy_source_messages_total", labels: ["source": "user_events"]) == 1_000)
            #expect(PrometheusText.value(in: before, name: "eddy_source_errors_total", labels: ["reason": #"odd "quoted" \ reason"#]) == 1)
            #expect(PrometheusText.value(in: before, name: "eddy_sink_pending_epochs") == 2)
            #expect(PrometheusText.value(in: before, name: "eddy_checkpoint_duration_seconds_count") == 1)
            #expect(before.first { $0.name == "eddy_source_messages_total" }?.type == .counter)
            let rss = try #require(PrometheusText.value(in: before, name: "process_resident_memory_bytes"))
            #expect(rss > 1_000_000)
            #expect(try #require(PrometheusText.value(in: before, name: "process_open_fds")) > 2)
            let start = try #require(PrometheusText.value(in: before, name: "process_start_time_seconds"))
            #expect(abs(start - Date().timeIntervalSince1970) < 24 * 3600)

            consumed.increment(by: 234)
            let second = try PrometheusText.parse(try await HTTPTestClient.get(server.baseURL + "/metrics").text)
            #expect(PrometheusText.value(in: second, name: "eddy_source_messages_total", labels: ["source": "user_events"]) == 1_234)
            let cpuBefore = try #require(PrometheusText.value(in: before, name: "process_cpu_seconds_total"))
            let cpuAfter = try #require(PrometheusText.value(in: second, name: "process_cpu_seconds_total"))
            #expect(cpuAfter >= cpuBefore)
        }
    }

    @Test("a taken port is a clear portInUse error, and run() returns once shut down")
    func portInUse() async throws {
        try await withRunningServer { first in
            let second = EddyHTTPServer(
                address: HTTPBindAddress(host: "127.0.0.1", port: first.port),
                registry: PrometheusCollectorRegistry(),
                dataSource: TestPipeline(),
                logger: quietLogger
            )
            let error = await #expect(throws: EddyHTTPError.self) { try await second.run() }
            #expect(error?.code == .portInUse)
            #expect(error?.reason.contains("127.0.0.1:\(first.port)") == true)
            #expect(error?.reason.contains("already in use") == true)
            await #expect(throws: EddyHTTPError.self) { _ = try await second.waitUntilListening() }
        }
    }

    @Test("after graceful shutdown the port no longer answers")
    func shutdownClosesPort() async throws {
        let port = try await withRunningServer { server in
            let answer = try await HTTPTestClient.get(server.baseURL + "/healthz")
            #expect(answer.status == 200)
            return server.port
        }
        await #expect(throws: (any Error).self) { _ = try await HTTPTestClient.get("http://127.0.0.1:\(port)/healthz") }
    }

    @Test("an unresolvable host is a bindFailed error naming the host")
    func unknownHost() async throws {
        let server = EddyHTTPServer(
            address: HTTPBindAddress(host: "no-such-host.invalid", port: 0),
            registry: PrometheusCollectorRegistry(),
            dataSource: TestPipeline(),
            logger: quietLogger
        )
        let error = await #expect(throws: EddyHTTPError.self) { try await server.run() }
        #expect(error?.code == .bindFailed)
        #expect(error?.reason.contains("no-such-host.invalid") == true)
    }

    @Test("the dashboard is one self-contained page: no external scripts, styles or fonts")
    func dashboardIsSelfContained() async throws {
        try await withRunningServer { server in
            let page = try await HTTPTestClient.get(server.baseURL + "/")
            #expect(page.status == 200)
            #expect(page.headers["content-type"] == "text/html; charset=utf-8")
            #expect(page.text.hasPrefix("<!doctype html>"))
            for external in ["src=\"http", "href=\"http", "url(http", "@import", "src=\"//", "href=\"//"] {
                #expect(!page.text.contains(external), "the page loads something from elsewhere: \(external)")
            }
            #expect(page.text.contains("chartDrawn"))
        }
    }
}

private struct ReadinessAnswer: Decodable, Equatable {
    let ready: Bool
    let state: String
    let reasons: [String]
}

private struct ErrorAnswer: Decodable {
    let error: String
    let views: [String]?
}
