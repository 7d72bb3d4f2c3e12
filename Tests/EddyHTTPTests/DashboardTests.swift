import EddyHTTP
import EddyTestSupport
import Foundation
import Testing

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
            let dom = try await chromium.dumpDOM(of: server.baseURL + "/", virtualTime: .seconds(6))
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
            try await chromium.screenshot(of: server.baseURL + "/", to: screenshot, virtualTime: .seconds(125), windowSize: size)
            try await chromium.screenshot(of: "data:text/html,<html><body></body></html>", to: blank, virtualTime: .seconds(1), windowSize: size)
            let picture = try PNGSummary(Data(contentsOf: screenshot))
            let empty = try PNGSummary(Data(contentsOf: blank))
            #expect(picture.width == size.width && picture.height == size.height)
            #expect(picture.imageDataBytes > 20 * empty.imageDataBytes, "dashboard PNG \(picture.imageDataBytes) B vs blank \(empty.imageDataBytes) B")
        }
    }
}
