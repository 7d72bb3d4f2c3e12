import Foundation

/// `eddy bench --plot FILE.svg`: throughput (as a ratio to librdkafka's floor, the daemon's and kcat's) and peak
/// resident memory against the number of group keys, one point per scenario of the keys curve that ran
/// (the scenarios whose messages differ only in how many keys they are drawn from), on a log scale of keys.
enum BenchPlot {
    /// The keys curve's scenarios, in order of keys.
    static let keysCurve = ["seed", "users-1k", "page-user-100k", "keys-1m"]

    /// An SVG document, or nil when fewer than two keys-curve scenarios ran.
    static func svg(of report: BenchReport) -> String? {
        let points = keysCurve.compactMap { name in report.scenarios.first { $0.name == name } }.filter { $0.groups > 0 }
        guard points.count >= 2 else { return nil }
        let keys = points.map { Double($0.groups) }
        let throughput = Panel(
            title: "messages/s vs librdkafka's floor (same run)", unit: "×",
            series: [
                Series(name: "eddy run", color: "#1f77b4", values: points.map(\.throughputVersusFloor)),
                Series(name: "kcat", color: "#ff7f0e", values: points.map { ratio($0.kcat, $0.floor) }),
            ])
        let memory = Panel(
            title: "peak resident memory of eddy run", unit: " MiB",
            series: [Series(name: "eddy run", color: "#2ca02c", values: points.map { Double($0.memory.peakResidentBytes) / 1_048_576 })])
        let width = 920.0
        let height = 410.0
        var svg = """
            <svg xmlns="http://www.w3.org/2000/svg" width="\(Int(width))" height="\(Int(height))" viewBox="0 0 \(Int(width)) \(Int(height))" font-family="sans-serif" font-size="12">
            <rect width="100%" height="100%" fill="white"/>
            <text x="\(width / 2)" y="20" text-anchor="middle" font-size="14">eddy bench: the keys curve (\(report.messagesBase) messages base, checkpoints every \(format(report.checkpointIntervalSeconds)) s)</text>

            """
        svg += throughput.draw(keys: keys, labels: points.map(\.name), x: 60, y: 50, width: 380, height: 270)
        svg += memory.draw(keys: keys, labels: points.map(\.name), x: 520, y: 50, width: 380, height: 270)
        svg += "</svg>\n"
        return svg
    }

    private static func ratio(_ rate: BenchReport.Rate?, _ floor: BenchReport.Rate) -> Double {
        guard let rate, floor.messagesPerSecond > 0 else { return .nan }
        return rate.messagesPerSecond / floor.messagesPerSecond
    }

    private struct Series {
        var name: String
        var color: String
        var values: [Double]
    }

    /// One chart: keys on a log x axis, the series on a linear y axis from 0.
    private struct Panel {
        var title: String
        var unit: String
        var series: [Series]

        func draw(keys: [Double], labels: [String], x: Double, y: Double, width: Double, height: Double) -> String {
            let finite = series.flatMap(\.values).filter(\.isFinite)
            let top = niceCeiling(max(finite.max() ?? 1, 1e-9))
            let lowKey = log10(keys.min()!)
            let highKey = max(log10(keys.max()!), lowKey + 1)
            func px(_ key: Double) -> Double { x + (log10(key) - lowKey) / (highKey - lowKey) * width }
            func py(_ value: Double) -> Double { y + height - value / top * height }
            var out = "<text x=\"\(x + width / 2)\" y=\"\(y - 8)\" text-anchor=\"middle\">\(escaped(title))</text>\n"
            out += "<rect x=\"\(x)\" y=\"\(y)\" width=\"\(width)\" height=\"\(height)\" fill=\"none\" stroke=\"#999\"/>\n"
            for step in 0...4 {
                let value = top * Double(step) / 4
                out += "<line x1=\"\(x)\" x2=\"\(x + width)\" y1=\"\(py(value))\" y2=\"\(py(value))\" stroke=\"#eee\"/>"
                out += "<text x=\"\(x - 6)\" y=\"\(py(value) + 4)\" text-anchor=\"end\">\(format(value))\(escaped(unit))</text>\n"
            }
            var previous = -Double.infinity
            var lowered = false
            for (key, label) in zip(keys, labels) {
                // Points closer than a label's width take turns one line lower.
                lowered = px(key) - previous < 90 ? !lowered : false
                previous = px(key)
                let drop = lowered ? 28.0 : 0
                out += "<text x=\"\(px(key))\" y=\"\(y + height + 16 + drop)\" text-anchor=\"middle\">\(format(key))</text>"
                out += "<text x=\"\(px(key))\" y=\"\(y + height + 30 + drop)\" text-anchor=\"middle\" fill=\"#666\">\(escaped(label))</text>\n"
            }
            for (index, line) in series.enumerated() {
                let drawn = zip(keys, line.values).filter { $0.1.isFinite }
                guard !drawn.isEmpty else { continue }
                let path = drawn.map { "\(px($0.0)),\(py($0.1))" }.joined(separator: " ")
                out += "<polyline points=\"\(path)\" fill=\"none\" stroke=\"\(line.color)\" stroke-width=\"2\"/>\n"
                for (key, value) in drawn {
                    out += "<circle cx=\"\(px(key))\" cy=\"\(py(value))\" r=\"3.5\" fill=\"\(line.color)\"><title>\(escaped(line.name)): \(format(value))\(escaped(unit))</title></circle>\n"
                }
                out += "<text x=\"\(x + 8)\" y=\"\(y + 16 + Double(index) * 15)\" fill=\"\(line.color)\">\(escaped(line.name))</text>\n"
            }
            out += "<text x=\"\(x + width / 2)\" y=\"\(y + height + 72)\" text-anchor=\"middle\">group keys (log scale)</text>\n"
            return out
        }
    }

    /// 1, 2, 2.5 or 5 times a power of ten, at least `value`.
    static func niceCeiling(_ value: Double) -> Double {
        let magnitude = pow(10, floor(log10(value)))
        return [1, 2, 2.5, 5, 10].map { $0 * magnitude }.first { $0 >= value } ?? 10 * magnitude
    }

    static func format(_ value: Double) -> String {
        if value >= 1_000_000 { return String(format: "%.3gM", value / 1_000_000) }
        if value >= 1_000 { return String(format: "%.3gK", value / 1_000) }
        return String(format: "%.3g", value)
    }

    private static func escaped(_ text: String) -> String {
        text.replacingOccurrences(of: "&", with: "&amp;").replacingOccurrences(of: "<", with: "&lt;").replacingOccurrences(of: ">", with: "&gt;")
            .replacingOccurrences(of: "'", with: "&#39;").replacingOccurrences(of: "\"", with: "&quot;")
    }
}
