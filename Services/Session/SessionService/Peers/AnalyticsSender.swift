import AsyncHTTPClient
import NIOCore

/// Where analytics events go: an HTTP POST of the event's JSON to the session's `analytics_url`.
public struct AnalyticsSender: Sendable {
    public var post: @Sendable (_ url: String, _ body: [UInt8]) async throws -> Void

    public init(post: @escaping @Sendable (_ url: String, _ body: [UInt8]) async throws -> Void) { self.post = post }

    /// Posts with AsyncHTTPClient; an answer other than 2xx, or none within `timeout`, is a failure.
    public static func http(_ client: HTTPClient = .shared, timeout: TimeAmount = .seconds(10)) -> AnalyticsSender {
        AnalyticsSender { url, body in
            var request = HTTPClientRequest(url: url)
            request.method = .POST
            request.headers.add(name: "Content-Type", value: "application/json")
            request.headers.add(name: "User-Agent", value: "LabPortal session-service")
            request.body = .bytes(body)
            let response = try await client.execute(request, timeout: timeout)
            // Drain (at most 64 KB) so that the connection can be reused.
            _ = try? await response.body.collect(upTo: 1 << 16)
            guard (200..<300).contains(Int(response.status.code)) else {
                throw AnalyticsDeliveryError(message: "the analytics endpoint answered \(response.status.code)")
            }
        }
    }
}

struct AnalyticsDeliveryError: Error, CustomStringConvertible {
    var message: String
    var description: String { message }
}
