/// A strict parser of the Prometheus text exposition format (version 0.0.4), for tests of `/metrics`.
///
/// Stricter than Prometheus itself where the format says "must": every line ends with `\n` (no `\r`);
/// `# HELP` and `# TYPE` at most once per family and before its samples; a family's samples in one group;
/// metric and label names match their grammars, with no `__` label names; label values and help text
/// use only the escapes the format defines; no label name twice in a sample; no series twice; values
/// are Go-style floats (`NaN`, `+Inf`, `-Inf` included); timestamps are integers. Histograms need `le`
/// on `_bucket`, non-decreasing buckets, a `+Inf` bucket equal to `_count`; summaries need `quantile`.
public enum PrometheusText {
    /// The declared type of a family; `untyped` when it has no `# TYPE` line.
    public enum MetricType: String, Sendable, Equatable {
        case counter, gauge, histogram, summary, untyped
    }

    /// One sample line.
    public struct Sample: Sendable, Equatable {
        /// The sample's own name (`http_requests_total`, `latency_seconds_bucket`).
        public var name: String
        /// Labels in the order written.
        public var labels: [(name: String, value: String)]
        public var value: Double
        /// Milliseconds since the epoch, when written.
        public var timestamp: Int64?
        /// The family the sample belongs to (`latency_seconds` for `latency_seconds_bucket`).
        public var family: String
        public var type: MetricType
        /// The family's `# HELP` text, unescaped.
        public var help: String?

        /// The value of label `name`, if present.
        public func label(_ name: String) -> String? { labels.first { $0.name == name }?.value }

        public static func == (left: Sample, right: Sample) -> Bool {
            left.name == right.name && left.labels.elementsEqual(right.labels) { $0 == $1 }
                && (left.value == right.value || (left.value.isNaN && right.value.isNaN))
                && left.timestamp == right.timestamp && left.family == right.family && left.type == right.type && left.help == right.help
        }
    }

    /// A violation of the format, with the 1-based line it is on.
    public struct ParseError: Error, CustomStringConvertible, Equatable {
        public var line: Int
        public var reason: String
        public var description: String { "line \(line): \(reason)" }
    }

    /// Parses `text`; throws `ParseError` at the first violation.
    public static func parse(_ text: String) throws -> [Sample] {
        var parser = Parser()
        // On bytes: as Characters, "\r\n" is one grapheme and would not end with "\n".
        guard text.isEmpty || text.utf8.last == UInt8(ascii: "\n") else {
            throw ParseError(line: text.split(separator: "\n", omittingEmptySubsequences: false).count, reason: "the last line does not end with a line feed")
        }
        var lineNumber = 0
        for line in text.utf8.split(separator: UInt8(ascii: "\n"), omittingEmptySubsequences: false).dropLast() {
            lineNumber += 1
            do {
                try parser.consume(line: Array(line))
            } catch let error as LineError {
                throw ParseError(line: lineNumber, reason: error.reason)
            }
        }
        do {
            try parser.finish()
        } catch let error as LineError {
            throw ParseError(line: lineNumber, reason: error.reason)
        }
        return parser.samples
    }

    /// The value of the one sample named `name` whose labels include `labels`; nil if none, and a
    /// precondition failure if several match (the caller's query is ambiguous).
    public static func value(in samples: [Sample], name: String, labels: [String: String] = [:]) -> Double? {
        let matches = samples.filter { sample in
            sample.name == name && labels.allSatisfy { sample.label($0.key) == $0.value }
        }
        precondition(matches.count <= 1, "\(matches.count) samples named \(name) match \(labels)")
        return matches.first?.value
    }
}

private struct LineError: Error {
    let reason: String
    init(_ reason: String) { self.reason = reason }
}

private struct Parser {
    var samples: [PrometheusText.Sample] = []
    private var types: [String: PrometheusText.MetricType] = [:]
    private var helps: [String: String] = [:]
    /// Families that already have samples, and the one whose group is open.
    private var familiesWithSamples: Set<String> = []
    private var currentFamily: String?
    private var seriesSeen: Set<String> = []
    /// Histogram bookkeeping per family + label set (without `le`).
    private var buckets: [String: [(bound: Double, count: Double)]] = [:]
    private var counts: [String: Double] = [:]

    mutating func consume(line: [UInt8]) throws {
        if line.contains(UInt8(ascii: "\r")) { throw LineError("carriage return in line (lines end with \\n only)") }
        if line.isEmpty { return }
        var cursor = Cursor(bytes: line)
        if cursor.peek == UInt8(ascii: "#") {
            try comment(&cursor)
        } else {
            try sample(&cursor)
        }
    }

    mutating func finish() throws {
        for (key, list) in buckets {
            guard let infinite = list.last(where: { $0.bound == .infinity }) else {
                throw LineError("histogram series \(key) has no le=\"+Inf\" bucket")
            }
            if let count = counts[key], count != infinite.count {
                throw LineError("histogram series \(key): _count \(count) differs from the +Inf bucket \(infinite.count)")
            }
        }
    }

    private mutating func comment(_ cursor: inout Cursor) throws {
        cursor.advance()  // '#'
        cursor.skipBlanks()
        let keyword = cursor.takeWhile { $0 != UInt8(ascii: " ") && $0 != UInt8(ascii: "\t") }
        guard keyword == "HELP" || keyword == "TYPE" else { return }  // any other comment is ignored
        guard cursor.skipBlanks() else { throw LineError("# \(keyword) without a metric name") }
        let name = cursor.takeWhile { $0 != UInt8(ascii: " ") && $0 != UInt8(ascii: "\t") }
        guard isMetricName(name) else { throw LineError("# \(keyword): invalid metric name '\(name)'") }
        if keyword == "HELP" {
            let text: String
            if cursor.skipBlanks() { text = try unescapeHelp(cursor.rest) } else { text = "" }
            guard helps[name] == nil else { throw LineError("second # HELP for \(name)") }
            guard !familiesWithSamples.contains(name) else { throw LineError("# HELP for \(name) after its samples") }
            helps[name] = text
        } else {
            guard cursor.skipBlanks() else { throw LineError("# TYPE \(name) without a type") }
            let word = cursor.takeWhile { $0 != UInt8(ascii: " ") && $0 != UInt8(ascii: "\t") }
            cursor.skipBlanks()
            guard cursor.atEnd else { throw LineError("# TYPE \(name): unexpected text after the type") }
            guard let type = PrometheusText.MetricType(rawValue: word) else {
                throw LineError("# TYPE \(name): unknown type '\(word)' (counter, gauge, histogram, summary, untyped)")
            }
            guard types[name] == nil else { throw LineError("second # TYPE for \(name)") }
            guard !familiesWithSamples.contains(name) else { throw LineError("# TYPE for \(name) after its samples") }
            types[name] = type
        }
    }

    private mutating func sample(_ cursor: inout Cursor) throws {
        let name = cursor.takeWhile { isNameByte($0) }
        let separated = cursor.atEnd || cursor.peek == UInt8(ascii: " ") || cursor.peek == UInt8(ascii: "\t") || cursor.peek == UInt8(ascii: "{")
        guard isMetricName(name), separated else { throw LineError("invalid metric name '\(name)\(cursor.restPreview)'") }
        var labels: [(name: String, value: String)] = []
        if cursor.peek == UInt8(ascii: "{") {
            cursor.advance()
            labels = try labelSet(&cursor, metric: name)
        }
        guard cursor.skipBlanks() else { throw LineError("\(name): no value") }
        let valueText = cursor.takeWhile { $0 != UInt8(ascii: " ") && $0 != UInt8(ascii: "\t") }
        guard let value = parseFloat(valueText) else { throw LineError("\(name): value '\(valueText)' is not a number") }
        var timestamp: Int64?
        if cursor.skipBlanks(), !cursor.atEnd {
            let text = cursor.takeWhile { $0 != UInt8(ascii: " ") && $0 != UInt8(ascii: "\t") }
            guard let parsed = Int64(text) else { throw LineError("\(name): timestamp '\(text)' is not an integer") }
            timestamp = parsed
            cursor.skipBlanks()
        }
        guard cursor.atEnd else { throw LineError("\(name): unexpected text after the value") }

        let (family, type) = familyOf(name)
        if currentFamily != family {
            guard !familiesWithSamples.contains(family) else {
                throw LineError("samples of \(family) are split into more than one group")
            }
            familiesWithSamples.insert(family)
            currentFamily = family
        }
        let seriesKey = name + "{" + labels.map { "\($0.name)=\($0.value)" }.sorted().joined(separator: ",") + "}"
        guard seriesSeen.insert(seriesKey).inserted else { throw LineError("duplicate series \(seriesKey)") }
        try checkShape(name: name, family: family, type: type, labels: labels, value: value)
        samples.append(
            PrometheusText.Sample(name: name, labels: labels, value: value, timestamp: timestamp, family: family, type: type, help: helps[family])
        )
    }

    private mutating func checkShape(name: String, family: String, type: PrometheusText.MetricType, labels: [(name: String, value: String)], value: Double) throws {
        switch type {
        case .histogram:
            let others = labels.filter { $0.name != "le" }.map { "\($0.name)=\($0.value)" }.sorted().joined(separator: ",")
            let key = family + "{" + others + "}"
            if name == family + "_bucket" {
                guard let le = labels.first(where: { $0.name == "le" })?.value else { throw LineError("\(name) without an le label") }
                guard let bound = parseFloat(le), !bound.isNaN else { throw LineError("\(name): le=\"\(le)\" is not a number") }
                var list = buckets[key] ?? []
                if let last = list.last {
                    guard bound > last.bound else { throw LineError("\(name): le=\"\(le)\" does not increase") }
                    guard value >= last.count else { throw LineError("\(name): bucket le=\"\(le)\" holds fewer than the one before") }
                }
                list.append((bound, value))
                buckets[key] = list
            } else if name == family + "_count" {
                counts[key] = value
            } else if name != family + "_sum" {
                throw LineError("\(name) in histogram \(family) (expected _bucket, _sum, _count)")
            } else if labels.contains(where: { $0.name == "le" }) {
                throw LineError("\(name) must not carry le")
            }
        case .summary:
            if name == family {
                guard let quantile = labels.first(where: { $0.name == "quantile" })?.value, let q = parseFloat(quantile), q >= 0, q <= 1 else {
                    throw LineError("\(name): summary sample without a quantile label from 0 to 1")
                }
            } else if name != family + "_sum" && name != family + "_count" {
                throw LineError("\(name) in summary \(family) (expected quantiles, _sum, _count)")
            }
        case .counter, .gauge, .untyped:
            if type == .counter && value < 0 { throw LineError("counter \(name) is negative (\(value))") }
        }
    }

    /// The family a sample name belongs to: `x` for `x_bucket`/`x_sum`/`x_count` of a histogram or
    /// summary `x`, else the name itself.
    private func familyOf(_ name: String) -> (String, PrometheusText.MetricType) {
        for suffix in ["_bucket", "_sum", "_count"] where name.hasSuffix(suffix) {
            let base = String(name.dropLast(suffix.count))
            if let type = types[base], type == .histogram || (type == .summary && suffix != "_bucket") {
                return (base, type)
            }
        }
        return (name, types[name] ?? .untyped)
    }

    private func labelSet(_ cursor: inout Cursor, metric: String) throws -> [(name: String, value: String)] {
        var labels: [(name: String, value: String)] = []
        while true {
            cursor.skipBlanks()
            if cursor.peek == UInt8(ascii: "}") {
                cursor.advance()
                return labels
            }
            let name = cursor.takeWhile { isNameByte($0) && $0 != UInt8(ascii: ":") }
            guard isLabelName(name) else { throw LineError("\(metric): invalid label name '\(name)\(cursor.restPreview)'") }
            guard !name.hasPrefix("__") else { throw LineError("\(metric): label name '\(name)' is reserved (starts with __)") }
            guard !labels.contains(where: { $0.name == name }) else { throw LineError("\(metric): label '\(name)' appears twice") }
            cursor.skipBlanks()
            guard cursor.take(UInt8(ascii: "=")) else { throw LineError("\(metric): '=' expected after label '\(name)'") }
            cursor.skipBlanks()
            guard cursor.take(UInt8(ascii: "\"")) else { throw LineError("\(metric): label '\(name)' value is not quoted") }
            var value: [UInt8] = []
            while true {
                guard let byte = cursor.next() else { throw LineError("\(metric): label '\(name)' value is not closed") }
                if byte == UInt8(ascii: "\"") { break }
                if byte == UInt8(ascii: "\\") {
                    switch cursor.next() {
                    case UInt8(ascii: "\\"): value.append(UInt8(ascii: "\\"))
                    case UInt8(ascii: "\""): value.append(UInt8(ascii: "\""))
                    case UInt8(ascii: "n"): value.append(UInt8(ascii: "\n"))
                    case let other:
                        let shown = other.map { String(decoding: [$0], as: UTF8.self) } ?? "end of line"
                        throw LineError("\(metric): label '\(name)' has an invalid escape '\\\(shown)'")
                    }
                } else {
                    value.append(byte)
                }
            }
            guard let decoded = String(validating: value, as: UTF8.self) else {
                throw LineError("\(metric): label '\(name)' value is not UTF-8")
            }
            labels.append((name, decoded))
            cursor.skipBlanks()
            if cursor.take(UInt8(ascii: ",")) { continue }
            guard cursor.peek == UInt8(ascii: "}") else { throw LineError("\(metric): ',' or '}' expected after label '\(name)'") }
        }
    }

    private func unescapeHelp(_ bytes: ArraySlice<UInt8>) throws -> String {
        var result: [UInt8] = []
        var iterator = bytes.makeIterator()
        while let byte = iterator.next() {
            guard byte == UInt8(ascii: "\\") else {
                result.append(byte)
                continue
            }
            switch iterator.next() {
            case UInt8(ascii: "\\"): result.append(UInt8(ascii: "\\"))
            case UInt8(ascii: "n"): result.append(UInt8(ascii: "\n"))
            case let other:
                let shown = other.map { String(decoding: [$0], as: UTF8.self) } ?? "end of line"
                throw LineError("# HELP has an invalid escape '\\\(shown)' (only \\\\ and \\n)")
            }
        }
        guard let text = String(validating: result, as: UTF8.self) else { throw LineError("# HELP text is not UTF-8") }
        return text
    }
}

private func isNameByte(_ byte: UInt8) -> Bool {
    (byte >= UInt8(ascii: "a") && byte <= UInt8(ascii: "z")) || (byte >= UInt8(ascii: "A") && byte <= UInt8(ascii: "Z"))
        || (byte >= UInt8(ascii: "0") && byte <= UInt8(ascii: "9")) || byte == UInt8(ascii: "_") || byte == UInt8(ascii: ":")
}

/// `[a-zA-Z_:][a-zA-Z0-9_:]*`
private func isMetricName(_ name: String) -> Bool {
    guard let first = name.utf8.first, !(first >= UInt8(ascii: "0") && first <= UInt8(ascii: "9")) else { return false }
    return name.utf8.allSatisfy(isNameByte)
}

/// `[a-zA-Z_][a-zA-Z0-9_]*`
private func isLabelName(_ name: String) -> Bool {
    isMetricName(name) && !name.contains(":")
}

/// Go's `strconv.ParseFloat` as Prometheus accepts it: decimal or exponent notation, `NaN`, `+Inf`,
/// `-Inf`, `Inf` (any case for those words). No hex floats, no underscores, no surrounding spaces.
func parseFloat(_ text: String) -> Double? {
    switch text.lowercased() {
    case "nan": return .nan
    case "+inf", "inf": return .infinity
    case "-inf": return -.infinity
    default: break
    }
    var bytes = text.utf8[...]
    if bytes.first == UInt8(ascii: "+") || bytes.first == UInt8(ascii: "-") { bytes = bytes.dropFirst() }
    var digits = 0
    var sawDot = false
    var sawExponent = false
    var exponentDigits = 0
    var previous: UInt8 = 0
    for byte in bytes {
        switch byte {
        case UInt8(ascii: "0")...UInt8(ascii: "9"):
            if sawExponent { exponentDigits += 1 } else { digits += 1 }
        case UInt8(ascii: "."):
            guard !sawDot, !sawExponent else { return nil }
            sawDot = true
        case UInt8(ascii: "e"), UInt8(ascii: "E"):
            guard !sawExponent, digits > 0 else { return nil }
            sawExponent = true
        case UInt8(ascii: "+"), UInt8(ascii: "-"):
            guard previous == UInt8(ascii: "e") || previous == UInt8(ascii: "E") else { return nil }
        default:
            return nil
        }
        previous = byte
    }
    guard digits > 0, !sawExponent || exponentDigits > 0 else { return nil }
    return Double(text)
}

/// A read position in one line.
private struct Cursor {
    let bytes: [UInt8]
    var index = 0

    var atEnd: Bool { index >= bytes.count }
    var peek: UInt8? { atEnd ? nil : bytes[index] }
    var rest: ArraySlice<UInt8> { bytes[index...] }
    var restPreview: String { String(decoding: bytes[index..<min(bytes.count, index + 12)], as: UTF8.self) }

    mutating func advance() { index += 1 }

    mutating func next() -> UInt8? {
        guard let byte = peek else { return nil }
        index += 1
        return byte
    }

    mutating func take(_ byte: UInt8) -> Bool {
        guard peek == byte else { return false }
        index += 1
        return true
    }

    /// Skips spaces and tabs; true when at least one was skipped.
    @discardableResult
    mutating func skipBlanks() -> Bool {
        let start = index
        while let byte = peek, byte == UInt8(ascii: " ") || byte == UInt8(ascii: "\t") { index += 1 }
        return index > start
    }

    mutating func takeWhile(_ predicate: (UInt8) -> Bool) -> String {
        let start = index
        while let byte = peek, predicate(byte) { index += 1 }
        return String(decoding: bytes[start..<index], as: UTF8.self)
    }
}
