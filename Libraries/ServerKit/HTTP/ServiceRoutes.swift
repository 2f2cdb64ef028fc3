import HTTPTypes
import Hummingbird
import NIOConcurrencyHelpers

/// The routes of a service, as Hummingbird's router holds them, plus a table of which methods each path answers, so
/// that a known path asked with another method gets `405 Method Not Allowed` with `Allow` instead of a 404.
///
/// Controllers add their routes through it exactly as through a `Router` (`get`, `post`, groups, middleware).
public struct ServiceRoutes: RouterMethods {
    public typealias Context = BasicRequestContext

    public let router: Router<BasicRequestContext>
    let shapes: RouteShapes

    /// Wraps `router` and answers 405 for it: add no routes to `router` directly afterwards.
    public init(_ router: Router<BasicRequestContext>) {
        self.router = router
        self.shapes = RouteShapes()
        router.middlewares.add(MethodNotAllowedMiddleware(shapes: shapes))
    }

    @discardableResult
    public func on<Responder: HTTPResponder>(_ path: RouterPath, method: HTTPRequest.Method, responder: Responder)
        -> ServiceRoutes where Responder.Context == BasicRequestContext
    {
        router.on(path, method: method, responder: responder)
        shapes.record(path, method: method)
        return self
    }

    @discardableResult
    public func add(middleware: any MiddlewareProtocol<Request, Response, BasicRequestContext>) -> ServiceRoutes {
        router.add(middleware: middleware)
        return self
    }
}

/// Which methods each route path answers: a second router whose endpoints only say "here", built on first use.
final class RouteShapes: Sendable {
    static let methods: [HTTPRequest.Method] = [.get, .head, .post, .put, .patch, .delete, .options]

    private struct State: @unchecked Sendable {
        // @unchecked: the builder is used under the lock only, before `responder` exists.
        var builder = Router(context: BasicRequestContext.self)
        var responder: RouterResponder<BasicRequestContext>?
    }

    private let state = NIOLockedValueBox(State())

    func record(_ path: RouterPath, method: HTTPRequest.Method) {
        state.withLockedValue { state in
            state.builder.on(path, method: method) { _, _ in HTTPResponse.Status.ok }
            state.responder = nil
        }
    }

    /// The methods `path` answers; empty when no route has that path.
    func allowed(path: String, context: BasicRequestContext) async -> [HTTPRequest.Method] {
        let responder = state.withLockedValue { state in
            if let responder = state.responder { return responder }
            let built = state.builder.buildResponder()
            state.responder = built
            return built
        }
        var allowed: [HTTPRequest.Method] = []
        for method in Self.methods {
            let probe = Request(
                head: HTTPRequest(method: method, scheme: nil, authority: nil, path: path),
                body: .init(buffer: .init()))
            if let response = try? await responder.respond(to: probe, context: context), response.status == .ok {
                allowed.append(method)
            }
        }
        if allowed.contains(.get) && !allowed.contains(.head) { allowed.insert(.head, at: 1) }
        return allowed
    }
}

/// Turns the router's "no route" 404 into a 405 with `Allow` when the path is known under other methods.
struct MethodNotAllowedMiddleware: RouterMiddleware {
    typealias Context = BasicRequestContext
    let shapes: RouteShapes

    func handle(_ request: Request, context: Context, next: (Request, Context) async throws -> Response) async throws
        -> Response
    {
        do {
            return try await next(request, context)
        } catch let error as HTTPError where error.status == .notFound {
            let allowed = await shapes.allowed(path: request.uri.path, context: context)
            guard !allowed.isEmpty, !allowed.contains(request.method) else { throw error }
            throw HTTPError(
                .methodNotAllowed,
                headers: [.allow: allowed.map(\.rawValue).joined(separator: ", ")],
                message: "\(request.method) is not allowed on \(request.uri.path); use \(allowed.map(\.rawValue).joined(separator: ", "))")
        }
    }
}
