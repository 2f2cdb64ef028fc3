import Foundation

/// What a user is allowed to be: the operator (`admin`), the front end's service account (`robot`), a registered
/// `user`, or an `anonymous` user that a session request created.
public enum UserRole: String, Sendable, Codable, CaseIterable {
    case admin
    case robot
    case user
    case anonymous
}

/// A caller that `identity.authenticate` recognised.
public struct AuthenticatedUser: Sendable, Equatable, Codable {
    /// Decimal, as Skytap user ids are.
    public var id: String
    /// The Educates `user` value: what a session request returns and `/workshops/user/<u>/sessions/` takes.
    public var username: String
    public var email: String
    public var firstName: String
    public var lastName: String
    public var role: UserRole
    public var classroomsAccess: Bool
    /// May change other users' `classrooms_access`.
    public var userManager: Bool

    public init(
        id: String, username: String, email: String, firstName: String, lastName: String, role: UserRole,
        classroomsAccess: Bool, userManager: Bool
    ) {
        self.id = id
        self.username = username
        self.email = email
        self.firstName = firstName
        self.lastName = lastName
        self.role = role
        self.classroomsAccess = classroomsAccess
        self.userManager = userManager
    }

    public var isAdmin: Bool { role == .admin }
    /// Robots and admins may use the Educates session-management API.
    public var isRobotOrAdmin: Bool { role == .robot || role == .admin }
}

/// `identity.authenticate`: checks the `Authorization` header of a REST caller (`Bearer <token>` or
/// `Basic <user:api_token>`). Answers the user, or fails with kind `unauthenticated`.
public enum IdentityAuthenticate {
    public struct Params: Sendable, Equatable, Codable {
        public var authorization: String

        public init(authorization: String) { self.authorization = authorization }
    }

    public typealias Result = AuthenticatedUser
}
