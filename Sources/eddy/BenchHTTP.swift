#if canImport(Glibc)
import Glibc
#endif
import Foundation

/// What `eddy bench` reads from the daemon's HTTP side (`--http 127.0.0.1:PORT`): `/api/status` and `/metrics`.
enum BenchHTTP {
    /// The body of `GET path` on 127.0.0.1:`port` (HTTP/1.1, `Connection: close`, read to the end); throws unless
    /// the answer is 200.
    static func get(port: Int, path: String) throws -> Data {
        let descriptor = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
        guard descriptor >= 0 else { throw BenchError(reason: "GET \(path): socket: \(String(cString: strerror(errno)))") }
        defer { close(descriptor) }
        var timeout = timeval(tv_sec: 10, tv_usec: 0)
        setsockopt(descriptor, SOL_SOCKET, SO_RCVTIMEO, &timeout, socklen_t(MemoryLayout<timeval>.size))
        var address = sockaddr_in()
        address.sin_family = sa_family_t(AF_INET)
        address.sin_port = in_port_t(UInt16(port).bigEndian)
        address.sin_addr.s_addr = in_addr_t(0x7F00_0001).bigEndian
        let connected = withUnsafePointer(to: &address) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { connect(descriptor, $0, socklen_t(MemoryLayout<sockaddr_in>.size)) }
        }
        guard connected == 0 else { throw BenchError(reason: "GET http://127.0.0.1:\(port)\(path): \(String(cString: strerror(errno)))") }
        let request = Array("GET \(path) HTTP/1.1\r\nHost: 127.0.0.1:\(port)\r\nConnection: close\r\n\r\n".utf8)
        guard request.withUnsafeBytes({ send(descriptor, $0.baseAddress, $0.count, Int32(MSG_NOSIGNAL)) }) == request.count else {
            throw BenchError(reason: "GET http://127.0.0.1:\(port)\(path): cannot send the request")
        }
        var response = Data()
        var chunk = [UInt8](repeating: 0, count: 65_536)
        while true {
            let received = chunk.withUnsafeMutableBytes { recv(descriptor, $0.baseAddress, $0.count, 0) }
            if received <= 0 { break }
            response.append(contentsOf: chunk[0..<received])
        }
        guard let headerEnd = response.range(of: Data("\r\n\r\n".utf8)) else {
            throw BenchError(reason: "GET http://127.0.0.1:\(port)\(path): no HTTP answer")
        }
        let head = String(decoding: response[..<headerEnd.lowerBound], as: UTF8.self)
        guard head.hasPrefix("HTTP/1.1 200") || head.hasPrefix("HTTP/1.0 200") else {
            throw BenchError(reason: "GET http://127.0.0.1:\(port)\(path): \(head.split(separator: "\r\n").first ?? "")")
        }
        let body = response[headerEnd.upperBound...]
        // Hummingbird answers with a length or chunked; only chunked needs undoing.
        guard head.lowercased().contains("transfer-encoding: chunked") else { return Data(body) }
        return dechunk(Data(body))
    }

    private static func dechunk(_ body: Data) -> Data {
        var result = Data()
        var index = body.startIndex
        while let lineEnd = body[index...].range(of: Data("\r\n".utf8)) {
            let sizeText = String(decoding: body[index..<lineEnd.lowerBound], as: UTF8.self).split(separator: ";").first ?? ""
            guard let size = Int(sizeText.trimmingCharacters(in: .whitespaces), radix: 16), size > 0 else { break }
            let start = lineEnd.upperBound
            let end = min(body.endIndex, start + size)
            result.append(body[start..<end])
            index = min(body.endIndex, end + 2)
        }
        return result
    }

    /// A Prometheus histogram from `/metrics` text: cumulative bucket counts by upper bound, the count and sum.
    struct Histogram: Equatable {
        var buckets: [(upperBound: Double, count: Double)] = []
        var count = 0.0
        var sum = 0.0

        static func == (lhs: Histogram, rhs: Histogram) -> Bool {
            lhs.count == rhs.count && lhs.sum == rhs.sum && lhs.buckets.map(\.upperBound) == rhs.buckets.map(\.upperBound)
                && lhs.buckets.map(\.count) == rhs.buckets.map(\.count)
        }

        /// The histogram `name` (no labels besides `le`), or nil when the text has none.
        init?(named name: String, in text: String) {
            for line in text.split(separator: "\n") where !line.hasPrefix("#") {
                guard let space = line.lastIndex(of: " "), let value = Double(line[line.index(after: space)...]) else { continue }
                let series = line[..<space]
                if series.hasPrefix(name + "_bucket{le=\""), let close = series.lastIndex(of: "\"") {
                    let bound = series[series.index(series.startIndex, offsetBy: name.count + 12)..<close]
                    buckets.append((bound == "+Inf" ? .infinity : Double(bound) ?? .infinity, value))
                } else if series == name + "_count" {
                    count = value
                } else if series == name + "_sum" {
                    sum = value
                }
            }
            guard !buckets.isEmpty else { return nil }
            buckets.sort { $0.upperBound < $1.upperBound }
        }

        /// The `q` quantile, linearly interpolated within its bucket as Prometheus' `histogram_quantile` does
        /// (a quantile in the +Inf bucket is the largest finite bound); nil with no observations.
        func quantile(_ q: Double) -> Double? {
            guard count > 0 else { return nil }
            let rank = q * count
            var lower = 0.0
            var below = 0.0
            for bucket in buckets {
                if bucket.count >= rank {
                    guard bucket.upperBound.isFinite else { return lower }
                    let inBucket = bucket.count - below
                    return inBucket > 0 ? lower + (bucket.upperBound - lower) * (rank - below) / inBucket : bucket.upperBound
                }
                lower = bucket.upperBound.isFinite ? bucket.upperBound : lower
                below = bucket.count
            }
            return lower
        }
    }
}
