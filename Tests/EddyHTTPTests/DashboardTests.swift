import EddyHTTP
import EddyTestSupport
import Foundation
import Testing

extension HeadlessChromium.PageDump {
    /// The DOM without the page's own script, whose string literals would otherwise match anything.
    var rendered: String { dom.components(separatedBy: "<script>")[0] }
}

/// The package root, for `test-output/` (git-ignored).
private let packageRoot = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent()

@Suite("Dashboard in headless Chromium")
struct DashboardTests {
    @Test(
        "the dashboard draws every view from the live API and renders a real picture",
        .enabled(if: HeadlessChromium.find() != nil, "chromium is not installed: ops/install-deps.sh installs Debian's chromium")
    )
    func drawsInBrowser() async throws {
        let chromium = try #require(HeadlessChromium.find())
        let pipeline = TestPipeline(simulates: true)
        try await withRunningServer(pipeline) { server in
            // A few seconds of page time: several polls, so rates and lines exist.
            let page = try await chromium.dumpDOM(of: server.baseURL + "/", virtualTime: .seconds(6))
            #expect(page.consoleMessages.isEmpty, "the page wrote to its console: \(page.consoleMessages)")
            let dom = page.rendered
            #expect(dom.contains(#"data-chart-drawn="true""#), "the page never set its chart-drawn marker")
            for text in ["seed_pipeline", "user_events", "events_statisics_mv", "redis_sink"] {
                #expect(dom.contains(text), "the page does not show \(text)")
            }
            // One bar per event, largest first (the example's counts are ordered by weight).
            let bars = try #require(dom.range(of: #"aria-label="events_statisics_mv rows""#))
            let barsMarkup = dom[bars.upperBound...]
            var previous = barsMarkup.startIndex
            for event in TestPipeline.eventNames {
                let found = try #require(barsMarkup.range(of: ">\(event)</text>", range: previous..<barsMarkup.endIndex), "no bar for \(event) after the larger ones")
                previous = found.upperBound
            }
            let polls = try #require(dom.firstMatch(of: /data-polls="(\d+)"/).flatMap { Int($0.output.1) })
            #expect(polls >= 2, "the page polled \(polls) times in 6 s of page time")

            // Two minutes of page time fill the line charts; compared with a blank page of the same size.
            let outputDirectory = packageRoot.appendingPathComponent("test-output")
            try FileManager.default.createDirectory(at: outputDirectory, withIntermediateDirectories: true)
            let screenshot = outputDirectory.appendingPathComponent("dashboard.png")
            let blank = outputDirectory.appendingPathComponent("blank.png")
            let size = HeadlessChromium.WindowSize(width: 1440, height: 1080)
            let (picture, empty) = try await chromium.screenshotBesideBlank(of: server.baseURL + "/", to: screenshot, blank: blank, virtualTime: .seconds(125), windowSize: size)
            #expect(picture.width == size.width && picture.height == size.height)
            #expect(picture.imageDataBytes > 20 * empty.imageDataBytes, "dashboard PNG \(picture.imageDataBytes) B vs blank \(empty.imageDataBytes) B")
        }
    }

    @Test(
        "any view is drawn generically: several key columns joined, doubles, NULL keys, an empty view, no value column",
        .enabled(if: HeadlessChromium.find() != nil, "chromium is not installed: ops/install-deps.sh installs Debian's chromium")
    )
    func drawsAnyView() async throws {
        let chromium = try #require(HeadlessChromium.find())
        let pipeline = TestPipeline()
        let pageStats = ViewRows(
            name: "page_stats",
            columns: [
                ViewColumn(name: "page", type: "VARCHAR", isGroupKey: true), ViewColumn(name: "event", type: "VARCHAR", isGroupKey: true),
                ViewColumn(name: "avg_ms", type: "DOUBLE", isGroupKey: false),
            ],
            rows: [
                [.string("/pricing"), .string("click"), .double(41.5)], [.null, .string("scroll"), .double(97.25)],
                [.string("/"), .string("focus"), .null],
            ],
            epoch: 9,
            isLive: false
        )
        let empty = ViewRows(name: "nothing_yet", columns: [ViewColumn(name: "event", type: "VARCHAR", isGroupKey: true)], rows: [], epoch: 0, isLive: true)
        let labelsOnly = ViewRows(
            name: "labels_only", columns: [ViewColumn(name: "user", type: "VARCHAR", isGroupKey: true)], rows: [[.string("anna")]], epoch: 1, isLive: true
        )
        pipeline.update {
            $0.views += [pageStats, empty, labelsOnly]
            $0.status.views += [
                ViewSummary(name: "page_stats", source: "user_events", groups: 3), ViewSummary(name: "nothing_yet", source: "user_events", groups: 0),
                ViewSummary(name: "labels_only", source: "user_events", groups: 1),
            ]
            $0.status.sinks = []
        }
        try await withRunningServer(pipeline) { server in
            let page = try await chromium.dumpDOM(of: server.baseURL + "/", virtualTime: .seconds(4))
            #expect(page.consoleMessages.isEmpty, "the page wrote to its console: \(page.consoleMessages)")
            let dom = page.rendered
            #expect(dom.contains(#"data-chart-drawn="true""#))
            // Key columns joined; NULL shown as such; the largest average first; a row without a value left out.
            let bars = try #require(dom.range(of: #"aria-label="page_stats rows""#))
            let scroll = try #require(dom.range(of: ">NULL · scroll</text>", range: bars.upperBound..<dom.endIndex))
            #expect(dom.range(of: ">/pricing · click</text>", range: scroll.upperBound..<dom.endIndex) != nil)
            #expect(!dom.contains(">/ · focus</text>"))
            #expect(dom.contains("checkpoint · epoch 9"))
            #expect(dom.components(separatedBy: "No rows yet").count - 1 == 1, "the empty view says so")
            #expect(dom.contains("No numeric column to chart: 1 row"), "the view without numbers says so")
            #expect(dom.contains("no sink"))
        }
    }
}
