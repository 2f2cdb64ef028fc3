import Contracts
import NIOCore
import Wire

extension WireAccess {
    /// The wire library's form: caller names as on certificates.
    public var callers: WireCallers {
        switch self {
        case .any: .any
        case .only(let names): .only(Set(names.map(\.rawValue)))
        }
    }
}

extension WireRouter {
    /// Serves `method`: its name, params, result and allowed callers come from its type.
    public mutating func register<Method: WireMethod>(
        _ method: Method.Type, _ handler: @escaping @Sendable (Method.Params, WireCallContext) async throws -> Method.Result
    ) {
        register(Method.name, allowed: Method.access.callers, params: Method.Params.self, handler)
    }

    /// Serves a method whose handler writes its result's JSON itself.
    public mutating func register<Method: RawWireMethod>(
        _ method: Method.Type, _ handler: @escaping @Sendable (Method.Params, WireCallContext) async throws -> [UInt8]
    ) {
        registerRaw(Method.name, allowed: Method.access.callers, params: Method.Params.self, handler)
    }
}

extension WireClient {
    /// Calls `method`; a method that is idempotent is retried once on another endpoint when its peer is unavailable.
    public func call<Method: WireMethod>(
        _ method: Method.Type, _ params: Method.Params, deadline: TimeAmount? = nil
    ) async throws -> Method.Result {
        try await call(
            Method.name, params, returning: Method.Result.self, deadline: deadline, idempotent: Method.idempotent)
    }

    /// Calls a raw method and answers the bytes of its result.
    public func call<Method: RawWireMethod>(_ method: Method.Type, _ params: Method.Params) async throws -> ByteBuffer {
        try await callRaw(Method.name, params, idempotent: Method.idempotent)
    }
}
