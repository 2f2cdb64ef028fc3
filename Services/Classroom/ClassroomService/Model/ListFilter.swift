import Contracts
import Foundation
import ServerKit


/// The sort orders of the lists.
public struct ListSort: Sendable, Hashable {
    public var column: String
    public var descending: Bool

    public static let byID = ListSort(column: "id", descending: false)
}

/// What a list is filtered and sorted by: `query=name:…,user_id:…,course_id:…,state:…,region:…`, `created_at=`,
/// `last_deployed=` and `sort=`. The wire `*.page` methods take the same strings.
public struct ListFilter: Sendable, Hashable {
    public var name: String?
    public var userID: String?
    public var courseID: Int64?
    public var state: String?
    public var region: String?
    public var createdAt: DateRange?
    public var lastDeployed: DateRange?
    public var sort: ListSort = .byID

    public init() {}

    public enum Resource: Sendable {
        case courses
        case classes
        case labs
        case audit

        var queryKeys: Set<String> {
            switch self {
            case .courses: ["name", "user_id"]
            case .classes: ["name", "user_id", "course_id", "state", "region"]
            case .labs: ["name", "state"]
            case .audit: ["user_id"]
            }
        }

        /// sort value → column.
        var sorts: [String: String] {
            switch self {
            case .courses: ["created_at": "created_at", "last_deployed": "last_deployed", "name": "name"]
            case .classes: ["created_at": "created_at", "name": "name", "owner_name": "owner_name"]
            case .labs: ["created_at": "created_at", "name": "name"]
            case .audit: ["created_at": "created_at"]
            }
        }
    }

    /// The class states `query=state:` accepts (`error` matches classes with an error).
    static let classStates: Set<String> = Set(ClassState.allCases.map(\.rawValue)).union(["error"])

    public static func parse(
        query: String?, createdAt: String?, lastDeployed: String?, sort: String?, resource: Resource, now: Date,
        timeZone: TimeZone = SkytapTime.utc
    ) throws -> ListFilter {
        var filter = ListFilter()
        if let query, !query.isEmpty {
            for part in query.split(separator: ",") {
                let pieces = part.split(separator: ":", maxSplits: 1)
                let key = pieces.first.map { String($0).trimmingCharacters(in: .whitespaces) } ?? ""
                guard pieces.count == 2, resource.queryKeys.contains(key) else {
                    throw ServiceFailure(
                        .badRequest,
                        "query must be key:value pairs separated by commas, with keys \(resource.queryKeys.sorted().joined(separator: ", "))",
                        field: "query")
                }
                let value = String(pieces[1]).trimmingCharacters(in: .whitespaces)
                switch key {
                case "name": filter.name = value
                case "user_id": filter.userID = value
                case "course_id":
                    guard let id = Int64(value) else {
                        throw ServiceFailure(.badRequest, "query course_id must be a course id", field: "query")
                    }
                    filter.courseID = id
                case "state":
                    guard resource != .classes || classStates.contains(value) else {
                        throw ServiceFailure(
                            .badRequest, "query state must be one of \(classStates.sorted().joined(separator: ", "))",
                            field: "query")
                    }
                    filter.state = value
                case "region": filter.region = value
                default: break
                }
            }
        }
        if let createdAt, !createdAt.isEmpty {
            filter.createdAt = try DateRange.parse(createdAt, field: "created_at", now: now, timeZone: timeZone)
        }
        if let lastDeployed, !lastDeployed.isEmpty {
            guard resource == .courses || resource == .classes else {
                throw ServiceFailure(.badRequest, "last_deployed is not a filter of this list", field: "last_deployed")
            }
            filter.lastDeployed = try DateRange.parse(lastDeployed, field: "last_deployed", now: now, timeZone: timeZone)
        }
        if let sort, !sort.isEmpty {
            let descending = sort.hasSuffix("_desc")
            let key = descending ? String(sort.dropLast(5)) : sort
            guard let column = resource.sorts[key] else {
                let options = resource.sorts.keys.sorted().flatMap { [$0, "\($0)_desc"] }
                throw ServiceFailure(.badRequest, "sort must be one of \(options.joined(separator: ", "))", field: "sort")
            }
            filter.sort = ListSort(column: column, descending: descending)
        }
        return filter
    }

    /// The filters of a REST list's query string.
    public static func parse(_ query: FormParameters, resource: Resource, now: Date) throws -> ListFilter {
        try parse(
            query: query["query"], createdAt: query["created_at"], lastDeployed: query["last_deployed"],
            sort: query["sort"], resource: resource, now: now)
    }
}
