import Contracts
import Foundation
import HTTPTypes
import Hummingbird
import Storage
import Logging
import Wire

/// Renders every error as the JSON body of DESIGN §3 and logs the unknown ones at error level with the request id.
public struct JSONErrorMiddleware<Context: RequestContext>: RouterMiddleware {
    public init() {}

    public func handle(_ request: Request, context: Context, next: (Request, Context) async throws -> Response)
        async throws -> Response
    {
        do {
            return try await next(request, context)
        } catch {
            return Self.response(for: error, request: request, context: context)
        }
    }

    public static func response(for error: any Error, request: Request, context: Context) -> Response {
        var kind: ErrorKind
        var message: String
        var field: String?
        var headers = HTTPFields()
        switch error {
        case let error as any KindedError:
            kind = error.kind
            message = error.publicMessage
            field = error.field
            if let retryable = error as? any RetryableError, let seconds = retryable.retryAfterSeconds {
                headers[.retryAfter] = String(seconds)
            }
            if kind == .internal {
                context.logger.error("request failed", metadata: ["error": "\(error)"])
                message = "internal error (request \(context.id))"
            }
        case let error as HTTPError:
            kind = ErrorKind(status: error.status)
            message = error.body ?? Self.defaultMessage(error.status, request: request)
            for field in error.headers { headers.append(field) }
            if error.status.code >= 500 {
                context.logger.error("request failed", metadata: ["error": "\(error)"])
            }
        case _ where StorageError.databaseUnavailable(error):
            context.logger.warning("database unavailable", metadata: ["error": "\(error)"])
            kind = .unavailable
            message = "the database is not reachable right now; try again shortly"
        default:
            if let response = error as? any HTTPResponseError, response.status.code < 500 {
                kind = ErrorKind(status: response.status)
                message = Self.defaultMessage(response.status, request: request)
            } else {
                context.logger.error("unhandled error", metadata: ["error": "\(String(reflecting: error))"])
                kind = .internal
                message = "internal error (request \(context.id))"
            }
        }
        let status = kind.httpStatus
        if status == .unauthorized && headers[.wwwAuthenticate] == nil {
            headers[.wwwAuthenticate] = #"Bearer realm="LabPortal", Basic realm="LabPortal""#
        }
        if (status.code == 423 || status == .tooManyRequests || status == .serviceUnavailable)
            && headers[.retryAfter] == nil
        {
            headers[.retryAfter] = "5"
        }
        headers[.contentType] = "application/json; charset=utf-8"
        let body = ErrorBody(error: message, kind: kind, field: field)
        let data = (try? JSONEncoder().encode(body)) ?? Data(#"{"error":"internal error"}"#.utf8)
        return Response(status: status, headers: headers, body: .init(byteBuffer: ByteBuffer(bytes: data)))
    }

    static func defaultMessage(_ status: HTTPResponse.Status, request: Request) -> String {
        switch status.code {
        case 404: "no such resource: \(request.method) \(request.uri.path)"
        case 405: "\(request.method) is not allowed on \(request.uri.path)"
        case 413: "the request body is too large"
        default: status.reasonPhrase
        }
    }
}

/// An error that tells the client when to retry (`Retry-After`, in whole seconds).
public protocol RetryableError: KindedError {
    var retryAfterSeconds: Int? { get }
}

/// Names the service on every answer (`X-LabPortal-Service`) and echoes the request id (`X-Request-Id`).
public struct ServiceHeaderMiddleware<Context: RequestContext>: RouterMiddleware {
    let service: String

    public init(service: String) { self.service = service }

    public func handle(_ request: Request, context: Context, next: (Request, Context) async throws -> Response)
        async throws -> Response
    {
        var response: Response
        do {
            // Wire calls made while serving this request carry its id (`meta.request_id`).
            response = try await WireMeta.$currentRequestID.withValue(context.id) {
                try await next(request, context)
            }
        } catch {
            response = JSONErrorMiddleware<Context>.response(for: error, request: request, context: context)
        }
        response.headers[HTTPField.Name(ServiceHeader.name)!] = service
        response.headers[HTTPField.Name("X-Request-Id")!] = context.id
        return response
    }
}
