import Contracts

/// The errors report-service's rules raise more than once, each with its kind and message in one place.
enum ReportError: KindedError, Equatable {
    case noSuchReport(String)
    case noClassroomsAccess

    var kind: ErrorKind {
        switch self {
        case .noSuchReport: .notFound
        case .noClassroomsAccess: .forbidden
        }
    }

    var publicMessage: String {
        switch self {
        case .noSuchReport(let file): "no such report: \(file)"
        case .noClassroomsAccess: "your account does not have access to the Classrooms extension"
        }
    }
}
