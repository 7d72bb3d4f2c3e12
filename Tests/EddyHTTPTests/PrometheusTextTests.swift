import EddyTestSupport
import Testing

/// The strict parser in EddyTestSupport is what `/metrics` is judged by, so it is tested here first.
@Suite("PrometheusText strict parser")
struct PrometheusTextTests {
    @Test("parses the format's own example: help, types, labels with escapes, timestamps, NaN/Inf, histogram, summary")
    func goodExposition() throws {
        let text = #"""
            # HELP http_requests_total The total number of HTTP requests.
            # TYPE http_requests_total counter
            http_requests_total{method="post",code="200"} 1027 1395066363000
            http_requests_total{method="post",code="400"}    3 1395066363000

            # A normal comment.
            msdos_file_access_time_seconds{path="C:\\DIR\\FILE.TXT",error="Cannot find file:\n\"FILE.TXT\""} 1.458255915e9
            # HELP metric_without_timestamp_and_labels A help with a \\ backslash and a \n newline.
            metric_without_timestamp_and_labels 12.47
            something_weird{problem="division by zero"} +Inf -3982045
            not_a_number NaN
            trailing_comma{a="1",} -0.5
            # HELP http_request_duration_seconds A histogram of the request duration.
            # TYPE http_request_duration_seconds histogram
            http_request_duration_seconds_bucket{le="0.05"} 24054
            http_request_duration_seconds_bucket{le="0.1"} 33444
            http_request_duration_seconds_bucket{le="+Inf"} 144320
            http_request_duration_seconds_sum 53423
            http_request_duration_seconds_count 144320
            # TYPE rpc_duration_seconds summary
            rpc_duration_seconds{quantile="0.5"} 4773
            rpc_duration_seconds{quantile="0.99"} 76656
            rpc_duration_seconds_sum 1.7560473e+07
            rpc_duration_seconds_count 2693

            """#
        let samples = try PrometheusText.parse(text)
        #expect(samples.count == 16)
        let first = samples[0]
        #expect(first.name == "http_requests_total" && first.type == .counter && first.value == 1027 && first.timestamp == 1_395_066_363_000)
        #expect(first.help == "The total number of HTTP requests.")
        #expect(first.labels.map(\.name) == ["method", "code"])
        let weird = try #require(samples.first { $0.name == "msdos_file_access_time_seconds" })
        #expect(weird.label("path") == #"C:\DIR\FILE.TXT"#)
        #expect(weird.label("error") == "Cannot find file:\n\"FILE.TXT\"")
        #expect(weird.type == .untyped)
        #expect(samples.first { $0.name == "metric_without_timestamp_and_labels" }?.help == "A help with a \\ backslash and a \n newline.")
        #expect(PrometheusText.value(in: samples, name: "something_weird") == .infinity)
        #expect(PrometheusText.value(in: samples, name: "not_a_number")?.isNaN == true)
        #expect(PrometheusText.value(in: samples, name: "trailing_comma") == -0.5)
        #expect(PrometheusText.value(in: samples, name: "http_request_duration_seconds_bucket", labels: ["le": "+Inf"]) == 144_320)
        #expect(samples.filter { $0.family == "http_request_duration_seconds" }.allSatisfy { $0.type == .histogram })
        #expect(samples.filter { $0.family == "rpc_duration_seconds" }.count == 4)
        #expect(try PrometheusText.parse("").isEmpty)
    }

    @Test(
        "rejects each kind of violation, naming the line",
        arguments: [
            ("no_newline 1", 1, "line feed"),
            ("crlf 1\r\n", 1, "carriage return"),
            ("1bad_name 1\n", 1, "invalid metric name"),
            ("bad-name 1\n", 1, "invalid metric name"),
            ("m{1a=\"x\"} 1\n", 1, "invalid label name"),
            ("m{__name__=\"x\"} 1\n", 1, "reserved"),
            ("m{a=\"x\",a=\"y\"} 1\n", 1, "appears twice"),
            ("m{a=x} 1\n", 1, "not quoted"),
            ("m{a=\"x} 1\n", 1, "not closed"),
            ("m{a=\"\\t\"} 1\n", 1, "invalid escape"),
            ("m{a=\"x\" b=\"y\"} 1\n", 1, "',' or '}' expected"),
            ("m\n", 1, "no value"),
            ("m one\n", 1, "is not a number"),
            ("m 0x1F\n", 1, "is not a number"),
            ("m 1_000\n", 1, "is not a number"),
            ("m 1e\n", 1, "is not a number"),
            ("m 1 12.5\n", 1, "timestamp"),
            ("m 1 2 3\n", 1, "unexpected text"),
            ("m 1\nm 2\n", 2, "duplicate series"),
            ("a 1\nb 1\na{x=\"1\"} 1\n", 3, "more than one group"),
            ("# TYPE m counter\n# TYPE m gauge\nm 1\n", 2, "second # TYPE"),
            ("# HELP m one\n# HELP m two\nm 1\n", 2, "second # HELP"),
            ("m 1\n# TYPE m counter\n", 2, "after its samples"),
            ("# TYPE m countr\nm 1\n", 1, "unknown type"),
            ("# TYPE m counter extra\nm 1\n", 1, "unexpected text after the type"),
            ("# TYPE m counter\nm -1\n", 2, "negative"),
            ("# HELP m bad \\t escape\nm 1\n", 1, "invalid escape"),
            ("# TYPE h histogram\nh_bucket 1\n", 2, "without an le label"),
            ("# TYPE h histogram\nh_bucket{le=\"1\"} 5\nh_bucket{le=\"2\"} 4\nh_bucket{le=\"+Inf\"} 5\n", 3, "fewer than the one before"),
            ("# TYPE h histogram\nh_bucket{le=\"2\"} 1\nh_bucket{le=\"1\"} 1\n", 3, "does not increase"),
            ("# TYPE h histogram\nh_bucket{le=\"1\"} 1\nh_count 1\n", 3, "no le=\"+Inf\" bucket"),
            ("# TYPE h histogram\nh_bucket{le=\"+Inf\"} 2\nh_count 3\n", 3, "differs from the +Inf bucket"),
            ("# TYPE h histogram\nh 1\n", 2, "expected _bucket, _sum, _count"),
            ("# TYPE s summary\ns 1\n", 2, "without a quantile"),
        ]
    )
    func badExposition(text: String, line: Int, fragment: String) {
        let error = #expect(throws: PrometheusText.ParseError.self) { try PrometheusText.parse(text) }
        #expect(error?.line == line, "\(error?.description ?? "")")
        #expect(error?.reason.contains(fragment) == true, "\(error?.description ?? "")")
    }
}
