#if canImport(FoundationEssentials)
import FoundationEssentials
#else
import Foundation
#endif
import Hummingbird
import Prometheus

/// The request handlers of `EddyHTTPServer`, apart from the listening so that each answer is easy to read.
struct Routes: Sendable {
    let registry: PrometheusCollectorRegistry
    let dataSource: any EddyHTTPDataSource

    /// Largest `limit` a client may ask for; beyond it the answer would be too big to poll each second.
    static let maximumLimit = 10_000

    func makeRouter() -> Router<BasicRequestContext> {
        // HEAD answered for every GET: load balancers often probe health with HEAD.
        let router = Router(options: .autoGenerateHeadEndpoints)
        router.get("/healthz") { _, _ in text("ok\n") }
        router.get("/readyz") { request, _ in await readiness(request) }
        router.get("/metrics") { _, _ in metrics() }
        router.get("/api/status") { _, _ in json(await dataSource.status()) }
        router.get("/api/views") { request, _ in
            guard let limit = limit(request) else { return badLimit(request) }
            return json(await dataSource.views().map { $0.top(limit) })
        }
        router.get("/api/views/:name") { request, context in
            guard let limit = limit(request) else { return badLimit(request) }
            let name = percentDecoded(context.parameters.get("name") ?? "")
            if let view = await dataSource.view(named: name) { return json(view.top(limit)) }
            let known = await dataSource.views().map(\.name)
            return jsonError(.notFound, "no view named '\(name)'", extra: ["views": known])
        }
        router.get("/api/**") { request, _ in
            jsonError(.notFound, "no API endpoint \(request.uri.path)", extra: ["endpoints": ["/api/status", "/api/views", "/api/views/NAME"]])
        }
        router.get("/") { _, _ in
            Response(
                status: .ok,
                headers: [.contentType: "text/html; charset=utf-8", .cacheControl: "no-store"],
                body: ResponseBody(byteBuffer: ByteBuffer(string: DashboardPage.html))
            )
        }
        return router
    }

    private func readiness(_ request: Request) async -> Response {
        let status = await dataSource.status()
        let wantsJSON = request.uri.queryParameters.get("format") == "json"
            || (request.headers[.accept]?.contains("application/json") ?? false)
        let code: HTTPResponse.Status = status.ready ? .ok : .serviceUnavailable
        if wantsJSON {
            return json(ReadinessDocument(ready: status.ready, state: status.state, reasons: status.notReadyReasons), status: code)
        }
        if status.ready { return text("ready\n") }
        let reasons = status.notReadyReasons.isEmpty ? ["not ready"] : status.notReadyReasons
        return text("not ready\n" + reasons.map { "- \($0)\n" }.joined(), status: code)
    }

    private func metrics() -> Response {
        var bytes: [UInt8] = []
        bytes.reserveCapacity(16_384)
        registry.emit(into: &bytes)
        ProcessMetrics.sample().emit(into: &bytes)
        return Response(
            status: .ok,
            headers: [.contentType: "text/plain; version=0.0.4; charset=utf-8", .cacheControl: "no-store"],
            body: ResponseBody(byteBuffer: ByteBuffer(bytes: bytes))
        )
    }

    /// `?limit=N` capped at `maximumLimit` (default: `maximumLimit`); nil when it is not a whole number.
    private func limit(_ request: Request) -> Int? {
        guard let text = request.uri.queryParameters.get("limit") else { return Self.maximumLimit }
        guard let value = Int(text), value >= 0 else { return nil }
        return min(value, Self.maximumLimit)
    }

    private func badLimit(_ request: Request) -> Response {
        let text = request.uri.queryParameters.get("limit") ?? ""
        return jsonError(.badRequest, "limit '\(text)' is not a whole number from 0 to \(Self.maximumLimit)")
    }
}

private struct ReadinessDocument: Encodable {
    let ready: Bool
    let state: PipelineRunState
    let reasons: [String]
}

private func text(_ body: String, status: HTTPResponse.Status = .ok) -> Response {
    Response(
        status: status,
        headers: [.contentType: "text/plain; charset=utf-8", .cacheControl: "no-store"],
        body: ResponseBody(byteBuffer: ByteBuffer(string: body))
    )
}

private func json(_ value: some Encodable, status: HTTPResponse.Status = .ok) -> Response {
    let encoder = JSONEncoder()
    encoder.outputFormatting = [.sortedKeys]
    do {
        let data = try encoder.encode(value)
        return Response(
            status: status,
            headers: [.contentType: "application/json; charset=utf-8", .cacheControl: "no-store"],
            body: ResponseBody(byteBuffer: ByteBuffer(bytes: data))
        )
    } catch {
        return jsonError(.internalServerError, "could not encode the answer: \(error)")
    }
}

/// `{"error": message, ...extra}`: every API failure has this shape.
private func jsonError(_ status: HTTPResponse.Status, _ message: String, extra: [String: [String]] = [:]) -> Response {
    var object: [String: JSONErrorValue] = ["error": .string(message)]
    for (key, values) in extra { object[key] = .list(values) }
    let encoder = JSONEncoder()
    encoder.outputFormatting = [.sortedKeys]
    let data = (try? encoder.encode(object)) ?? Data(#"{"error":"internal error"}"#.utf8)
    return Response(
        status: status,
        headers: [.contentType: "application/json; charset=utf-8", .cacheControl: "no-store"],
        body: ResponseBody(byteBuffer: ByteBuffer(bytes: data))
    )
}

private enum JSONErrorValue: Encodable {
    case string(String)
    case list([String])

    func encode(to encoder: any Encoder) throws {
        var container = encoder.singleValueContainer()
        switch self {
        case .string(let value): try container.encode(value)
        case .list(let values): try container.encode(values)
        }
    }
}

/// `%XX` escapes decoded (path parameters arrive raw); malformed escapes are kept as written.
func percentDecoded(_ text: String) -> String {
    guard text.contains("%") else { return text }
    var bytes: [UInt8] = []
    var utf8 = Array(text.utf8)[...]
    while let byte = utf8.popFirst() {
        if byte == UInt8(ascii: "%"), utf8.count >= 2,
            let value = UInt8(String(decoding: utf8.prefix(2), as: UTF8.self), radix: 16)
        {
            bytes.append(value)
            utf8 = utf8.dropFirst(2)
        } else {
            bytes.append(byte)
        }
    }
    return String(decoding: bytes, as: UTF8.self)
}
