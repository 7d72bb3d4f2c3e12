import Testing

@testable import eddy

/// How `eddy bench` reads the daemon's checkpoint-duration histogram from `/metrics`.
struct BenchHTTPTests {
    private static let metrics = """
        # TYPE eddy_checkpoint_duration_seconds histogram
        eddy_checkpoint_duration_seconds_bucket{le="0.005"} 6
        eddy_checkpoint_duration_seconds_bucket{le="0.01"} 8
        eddy_checkpoint_duration_seconds_bucket{le="0.025"} 10
        eddy_checkpoint_duration_seconds_bucket{le="+Inf"} 10
        eddy_checkpoint_duration_seconds_sum 0.06
        eddy_checkpoint_duration_seconds_count 10
        eddy_checkpoint_epoch 10
        eddy_sink_write_duration_seconds_bucket{le="0.005"} 1

        """

    /// Buckets, count and sum of the named histogram only; quantiles interpolated within the bucket they fall in.
    @Test func aHistogramIsReadAndItsQuantilesInterpolatedWithinBuckets() throws {
        let histogram = try #require(BenchHTTP.Histogram(named: "eddy_checkpoint_duration_seconds", in: Self.metrics))
        #expect(histogram.buckets.map(\.upperBound) == [0.005, 0.01, 0.025, .infinity])
        #expect(histogram.buckets.map(\.count) == [6, 8, 10, 10])
        #expect(histogram.count == 10 && histogram.sum == 0.06)
        // Rank 5 of 10 lies in the first bucket (6 observations in [0, 5 ms]): 5/6 of the way.
        let p50 = try #require(histogram.quantile(0.5))
        #expect(abs(p50 - 0.005 * 5.0 / 6.0) < 1e-12)
        // Rank 9.9 lies in (10 ms, 25 ms], which holds observations 9 and 10.
        let p99 = try #require(histogram.quantile(0.99))
        let expected: Double = 0.01 + 0.015 * 1.9 / 2
        #expect(abs(p99 - expected) < 1e-12)
    }

    /// No such histogram, or no observations: nothing to report.
    @Test func aMissingOrEmptyHistogramGivesNoQuantile() {
        #expect(BenchHTTP.Histogram(named: "eddy_absent_seconds", in: Self.metrics) == nil)
        let empty = BenchHTTP.Histogram(named: "h", in: "h_bucket{le=\"1\"} 0\nh_bucket{le=\"+Inf\"} 0\nh_count 0\nh_sum 0\n")
        #expect(empty != nil && empty?.quantile(0.5) == nil)
    }

    /// A quantile past the largest finite bound is that bound, as Prometheus' histogram_quantile says.
    @Test func aQuantileInTheInfiniteBucketIsTheLargestFiniteBound() throws {
        let histogram = try #require(BenchHTTP.Histogram(named: "h", in: "h_bucket{le=\"1\"} 1\nh_bucket{le=\"+Inf\"} 4\nh_count 4\nh_sum 9\n"))
        #expect(histogram.quantile(0.99) == 1)
    }
}
