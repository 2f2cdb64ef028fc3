import Contracts
import Foundation
import ServerKit
import SQLKit
import Storage

/// `sessions.page`: every workshop session (STOPPED ones too), oldest first, keyset-paged on (created_at, name).
enum SessionPages {
    static let queryKeys: Set<String> = ["state", "environment", "user"]

    static func page(_ request: PageRequest<SessionsPage.Filters>, database: Database, now: Date) async throws
        -> Page<SessionItem>
    {
        guard (1...PageRequest<SessionsPage.Filters>.maximumLimit).contains(request.limit) else {
            throw ServiceFailure(.badRequest, "limit must be from 1 to 1000", field: "limit")
        }
        var query = database.sql.select().column("*").from("sessions")
        if let text = request.filters.query, !text.isEmpty {
            for part in text.split(separator: ",") {
                let pieces = part.split(separator: ":", maxSplits: 1).map { $0.trimmingCharacters(in: .whitespaces) }
                guard pieces.count == 2, queryKeys.contains(pieces[0]) else {
                    throw ServiceFailure(
                        .badRequest, "query must be key:value pairs with keys environment, state, user", field: "query")
                }
                switch pieces[0] {
                case "state":
                    guard let state = SessionState(rawValue: pieces[1].uppercased()) else {
                        throw ServiceFailure(
                            .badRequest,
                            "query state must be one of \(SessionState.allCases.map(\.rawValue).joined(separator: ", "))",
                            field: "query")
                    }
                    query = query.where("state", .equal, state.rawValue)
                case "environment": query = query.where("environment", .equal, pieces[1])
                default: query = query.where("owner_name", .equal, pieces[1])
                }
            }
        }
        if let text = request.filters.createdAt, !text.isEmpty {
            let range = try DateRange.parse(text, field: "created_at", now: now, timeZone: SkytapTime.utc)
            if let from = range.from { query = query.where(SQLIdentifier("created_at"), .greaterThanOrEqual, SQLBind(from)) }
            if let to = range.to { query = query.where(SQLIdentifier("created_at"), .lessThanOrEqual, SQLBind(to)) }
        }
        // The cursor is the last row's (created_at, name), as session-service has always written it.
        let keyset = Keyset(key: .time(SQLIdentifier("created_at")), tiebreak: .text("name"))
        let (rows, next) = try await keyset.read(
            query, after: request.cursor, limit: request.limit, decode: SessionRepository.decode)
        let items = rows.map { session in
            SessionItem(
                name: session.name, environment: session.environment, workshop: session.workshop, state: session.state,
                user: session.ownerName, createdAt: session.createdAt, startedAt: session.startedAt,
                expiresAt: session.expiresAt, stoppedAt: session.stoppedAt, url: session.url,
                errorMessage: session.errorMessage)
        }
        return Page(items: items, nextCursor: next)
    }
}
