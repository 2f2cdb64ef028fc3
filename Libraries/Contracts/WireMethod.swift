import Foundation

/// Who may call a wire method: any caller whose certificate chains to the deployment's CA, or only the named ones
/// (operator tools, `admin`, are named where they may call).
public enum WireAccess: Sendable, Equatable {
    case any
    case only(Set<ServiceName>)
}

/// A wire method as a type: its name, its params and result, who may call it, and whether a call may be retried on
/// another endpoint. Servers register a handler for it and clients call it by this type (ServerKit's `WireRouter`
/// and `WireClient` extensions), so a name, a type or a caller list is written once, here.
public protocol WireMethod {
    associatedtype Params: Codable & Sendable & Equatable
    associatedtype Result: Codable & Sendable & Equatable
    static var name: String { get }
    static var access: WireAccess { get }
    /// A read (or a write keyed by the caller's id) that is safe to send twice.
    static var idempotent: Bool { get }
}

/// A wire method whose server writes the result's JSON by hand (bulk reads); clients read the result's bytes.
public protocol RawWireMethod {
    associatedtype Params: Codable & Sendable & Equatable
    static var name: String { get }
    static var access: WireAccess { get }
    static var idempotent: Bool { get }
}

// MARK: The methods of LabPortal

extension WirePing: WireMethod {
    public typealias Params = Empty
    public static let name = "wire.ping"
    public static let access = WireAccess.any
    public static let idempotent = true
}

extension IdentityAuthenticate: WireMethod {
    public static let name = "identity.authenticate"
    public static let access = WireAccess.any
    public static let idempotent = true
}

extension SessionsOverview: WireMethod {
    public static let name = "sessions.overview"
    public static let access = WireAccess.only([.catalog, .report, .admin])
    public static let idempotent = true
}

extension SessionsPage: WireMethod {
    public typealias Params = PageRequest<Filters>
    public typealias Result = Page<SessionItem>
    public static let name = "sessions.page"
    public static let access = WireAccess.only([.report, .admin])
    public static let idempotent = true
}

extension LabsApply: WireMethod {
    public static let name = "labs.apply"
    public static let access = WireAccess.only([.classroom, .admin])
    /// Not retried elsewhere: a lab's first environment is made by the call, and two racing calls could both try.
    public static let idempotent = false
}

extension LabsStatus: WireMethod {
    public static let name = "labs.status"
    public static let access = WireAccess.only([.classroom, .admin])
    public static let idempotent = true
}

extension CatalogPortal: WireMethod {
    public typealias Params = Empty
    public typealias Result = Snapshot
    public static let name = "catalog.portal"
    public static let access = WireAccess.only([.session, .classroom, .report, .admin])
    public static let idempotent = true
}

extension AuditRecord: WireMethod {
    public typealias Result = Empty
    public static let name = "audit.record"
    public static let access = WireAccess.only([.session, .admin])
    /// Recorded once per `id`.
    public static let idempotent = true
}

/// `courses.page`: courses for the courses report, in the list's sort order.
public enum CoursesPage: WireMethod {
    public typealias Params = PageRequest<ListFilters>
    public typealias Result = Page<CourseItem>
    public static let name = "courses.page"
    public static let access = ClassroomPages.access
    public static let idempotent = true
}

/// `classes.page`: classes for the classes report.
public enum ClassesPage: WireMethod {
    public typealias Params = PageRequest<ListFilters>
    public typealias Result = Page<ClassItem>
    public static let name = "classes.page"
    public static let access = ClassroomPages.access
    public static let idempotent = true
}

/// `labs.page`: labs of one class (`class_id`) or of all.
public enum LabsPage: WireMethod {
    public typealias Params = PageRequest<ListFilters>
    public typealias Result = Page<LabItem>
    public static let name = "labs.page"
    public static let access = ClassroomPages.access
    public static let idempotent = true
}

/// `labs.rows`: `labs.page` with the same params, answered as a `RowPage` of `LabItem` rows (the form exports read).
public enum LabRows: RawWireMethod {
    public typealias Params = PageRequest<ListFilters>
    public static let name = "labs.rows"
    public static let access = ClassroomPages.access
    public static let idempotent = true
}

/// `audit.page`: the audit trail, oldest first.
public enum AuditPage: WireMethod {
    public typealias Params = PageRequest<ListFilters>
    public typealias Result = Page<AuditItem>
    public static let name = "audit.page"
    public static let access = ClassroomPages.access
    public static let idempotent = true
}

/// Every method, for the fixture and contract tests.
public enum WireMethods {
    public static let names: [String] = [
        WirePing.name, IdentityAuthenticate.name, SessionsOverview.name, SessionsPage.name, LabsApply.name,
        LabsStatus.name, CatalogPortal.name, AuditRecord.name, CoursesPage.name, ClassesPage.name, LabsPage.name,
        LabRows.name, AuditPage.name,
    ]
}
