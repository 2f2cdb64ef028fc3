import Contracts
import Foundation
import NIOCore
import ServerKit
import Wire

/// One page of a report's rows, as its peer answered it.
public struct ExportPage: Sendable {
    public enum Rows: Sendable {
        /// Rows of CSV cells.
        case cells([[String?]])
        /// A `RowPage` as JSON, whose cells are copied straight into the CSV (no string per cell); `columns` are the
        /// page's names of the report's columns, in the report's order.
        case rowPage(ByteBuffer, columns: [String])
    }

    public var rows: Rows
    /// The cursor of the next page (nil after the last).
    public var next: String?

    public init(rows: Rows, next: String?) {
        self.rows = rows
        self.next = next
    }

    public static func cells(_ rows: [[String?]], next: String?) -> ExportPage { .init(rows: .cells(rows), next: next) }
}

/// Where report rows come from: classroom-service's and session-service's `*.page` methods, one page at a time.
public struct DataPeer: Sendable {
    public typealias Fetch = @Sendable (ExportKind, ExportFilters, _ cursor: String?, _ limit: Int) async throws
        -> ExportPage

    public var fetch: Fetch

    public init(fetch: @escaping Fetch) { self.fetch = fetch }

    public static func live(classroom: WireClient, session: WireClient) -> DataPeer {
        DataPeer { kind, filters, cursor, limit in
            let classroomRequest = PageRequest(cursor: cursor, limit: limit, filters: filters)
            switch kind {
            case .courses:
                let page = try await classroom.call(CoursesPage.self, classroomRequest)
                return .cells(page.items.map(Cells.row), next: page.nextCursor)
            case .classes:
                let page = try await classroom.call(ClassesPage.self, classroomRequest)
                return .cells(page.items.map(Cells.row), next: page.nextCursor)
            case .labs:
                // The compact row form, copied cell by cell into the CSV: a million labs are read several times
                // faster than as objects. Its cells are the report's columns as they are (`Cells.row(_: LabItem)`).
                let raw = try await classroom.call(LabRows.self, classroomRequest)
                let next: String?
                do {
                    next = try RowPage.nextCursor(json: raw.readableBytesView)
                } catch {
                    throw WireError.internal("classroom-service answered labs.rows with a page that cannot be read: \(error)")
                }
                return ExportPage(rows: .rowPage(raw, columns: LabItem.rowColumns), next: next)
            case .audit:
                let page = try await classroom.call(AuditPage.self, classroomRequest)
                return .cells(page.items.map(Cells.row), next: page.nextCursor)
            case .sessions:
                let request = PageRequest(
                    cursor: cursor, limit: limit,
                    filters: SessionsPage.Filters(query: filters.query, createdAt: filters.createdAt))
                let page = try await session.call(SessionsPage.self, request)
                return .cells(page.items.map(Cells.row), next: page.nextCursor)
            }
        }
    }
}
