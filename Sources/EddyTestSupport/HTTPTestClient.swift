import Foundation
#if canImport(FoundationNetworking)
import FoundationNetworking
#endif

/// One HTTP answer, as a test looks at it.
public struct HTTPTestResponse: Sendable {
    public let status: Int
    /// Header names lowercased.
    public let headers: [String: String]
    public let body: Data
    public var text: String { String(decoding: body, as: UTF8.self) }
}

/// A plain HTTP/1.1 client for tests of Eddy's HTTP side (no cache, no cookies, no redirects followed).
public enum HTTPTestClient {
    private static let session: URLSession = {
        let configuration = URLSessionConfiguration.ephemeral
        configuration.requestCachePolicy = .reloadIgnoringLocalAndRemoteCacheData
        configuration.urlCache = nil
        configuration.timeoutIntervalForRequest = 10
        return URLSession(configuration: configuration)
    }()

    /// GETs `url` and returns whatever status came back (only transport failures throw).
    public static func get(_ url: String, headers: [String: String] = [:]) async throws -> HTTPTestResponse {
        try await send(method: "GET", url, headers: headers)
    }

    /// Sends a request without a body (`GET`, `HEAD`, `DELETE`, ...) and returns whatever came back.
    public static func send(method: String, _ url: String, headers: [String: String] = [:]) async throws -> HTTPTestResponse {
        guard let parsed = URL(string: url) else { throw URLError(.badURL) }
        var request = URLRequest(url: parsed)
        request.httpMethod = method
        for (name, value) in headers { request.setValue(value, forHTTPHeaderField: name) }
        let (data, response) = try await session.data(for: request)
        guard let http = response as? HTTPURLResponse else { throw URLError(.badServerResponse) }
        var fields: [String: String] = [:]
        for (name, value) in http.allHeaderFields {
            if let name = name as? String, let value = value as? String { fields[name.lowercased()] = value }
        }
        return HTTPTestResponse(status: http.statusCode, headers: fields, body: data)
    }
}
