import Contracts

/// The errors classroom-service's rules raise more than once, each with its kind and message in one place.
enum ClassroomError: KindedError, Equatable {
    case noSuchCourse(String)
    case noSuchClass(String)
    case noSuchLab(String)
    case noSuchTemplate(String)
    /// A REST id that is not a positive number: no such thing (`what` names it).
    case noSuch(what: String, id: String)
    /// The caller's account lacks `classrooms_access`.
    case noClassroomsAccess

    var kind: ErrorKind {
        switch self {
        case .noSuchCourse, .noSuchClass, .noSuchLab, .noSuchTemplate, .noSuch: .notFound
        case .noClassroomsAccess: .forbidden
        }
    }

    var publicMessage: String {
        switch self {
        case .noSuchCourse(let id): "no such course: \(id)"
        case .noSuchClass(let id): "no such class: \(id)"
        case .noSuchLab(let id): "no such lab: \(id)"
        case .noSuchTemplate(let id): "no such template: \(id)"
        case .noSuch(let what, let id): "no such \(what): \(id)"
        case .noClassroomsAccess: "your account does not have access to the Classrooms extension"
        }
    }
}
