import Contracts
import Foundation
import Wire

/// Where report rows come from: classroom-service's and session-service's `*.page` methods, one page at a time.
public struct DataPeer: Sendable {
    /// One page of rows as CSV cells, and the cursor of the next page (nil after the last).
    public typealias Fetch = @Sendable (ExportKind, ExportFilters, _ cursor: String?, _ limit: Int) async throws
        -> (rows: [[String?]], next: String?)

    public var fetch: Fetch

    public init(fetch: @escaping Fetch) { self.fetch = fetch }

    public static func live(classroom: WireClient, session: WireClient) -> DataPeer {
        DataPeer { kind, filters, cursor, limit in
            let classroomRequest = PageRequest(cursor: cursor, limit: limit, filters: filters)
            switch kind {
            case .courses:
                let page = try await classroom.call(
                    ClassroomPages.courses, classroomRequest, returning: Page<CourseItem>.self, idempotent: true)
                return (page.items.map(Cells.row), page.nextCursor)
            case .classes:
                let page = try await classroom.call(
                    ClassroomPages.classes, classroomRequest, returning: Page<ClassItem>.self, idempotent: true)
                return (page.items.map(Cells.row), page.nextCursor)
            case .labs:
                // The compact row form: a million labs are read several times faster than as objects.
                let raw = try await classroom.callRaw(ClassroomPages.labRows, classroomRequest, idempotent: true)
                let page: Page<LabItem>
                do {
                    page = try RowPage(json: raw.readableBytesView).items(of: LabItem.self)
                } catch {
                    throw WireError.internal("classroom-service answered labs.rows with a page that cannot be read: \(error)")
                }
                return (page.items.map(Cells.row), page.nextCursor)
            case .audit:
                let page = try await classroom.call(
                    ClassroomPages.audit, classroomRequest, returning: Page<AuditItem>.self, idempotent: true)
                return (page.items.map(Cells.row), page.nextCursor)
            case .sessions:
                let request = PageRequest(
                    cursor: cursor, limit: limit,
                    filters: SessionsPage.Filters(query: filters.query, createdAt: filters.createdAt))
                let page = try await session.call(
                    SessionsPage.method, request, returning: Page<SessionItem>.self, idempotent: true)
                return (page.items.map(Cells.row), page.nextCursor)
            }
        }
    }
}
