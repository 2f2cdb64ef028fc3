import Foundation
import ServerKit
import SQLKit
import Storage

// How the list filters become SQL (the parsing is in Model/ListFilter.swift).

extension DateRange {
    func apply(to query: SQLSelectBuilder, column: String) -> SQLSelectBuilder {
        var query = query
        if let from { query = query.where(SQLIdentifier(column), .greaterThanOrEqual, SQLBind(from)) }
        if let to { query = query.where(SQLIdentifier(column), .lessThanOrEqual, SQLBind(to)) }
        return query
    }
}

extension ListSort {
    /// Keyset pages in this sort's order, then by id. A null `last_deployed` sorts as the earliest time on both
    /// backends.
    var keyset: Keyset {
        let key: Keyset.SortKey = switch column {
        case "id": .none
        case "name", "owner_name": .text(SQLFunction("LOWER", args: SQLIdentifier(column)))
        case "last_deployed":
            .time(SQLFunction("COALESCE", args: SQLIdentifier("last_deployed"), SQLBind(Date(timeIntervalSince1970: 0))))
        default: column.hasSuffix("name") ? .text(SQLIdentifier(column)) : .time(SQLIdentifier(column))
        }
        return Keyset(key: key, tiebreak: .integer("id"), descending: descending)
    }

    func apply(to query: SQLSelectBuilder) -> SQLSelectBuilder {
        // Names sort as people read them, not by byte value.
        let key: any SQLExpression = column.hasSuffix("name")
            ? SQLFunction("LOWER", args: SQLIdentifier(column)) : SQLIdentifier(column)
        return query.orderBy(key, descending ? SQLDirection.descending : SQLDirection.ascending)
            .orderBy("id", descending ? .descending : .ascending)
    }
}

extension ListFilter {
    /// `name:` is a keyword: a case-insensitive substring.
    func nameCondition(_ query: SQLSelectBuilder) -> SQLSelectBuilder {
        guard let name, !name.isEmpty else { return query }
        let pattern = "%" + name.lowercased().replacingOccurrences(of: "\\", with: "\\\\")
            .replacingOccurrences(of: "%", with: "\\%").replacingOccurrences(of: "_", with: "\\_") + "%"
        let condition: SQLQueryString = "LOWER(name) LIKE \(bind: pattern) ESCAPE '\\'"
        return query.where(condition)
    }

    func applyCourses(to query: SQLSelectBuilder) -> SQLSelectBuilder {
        var query = nameCondition(query)
        if let userID { query = query.where("owner_id", .equal, userID) }
        if let createdAt { query = createdAt.apply(to: query, column: "created_at") }
        if let lastDeployed { query = lastDeployed.apply(to: query, column: "last_deployed") }
        return query
    }

    func applyClasses(to query: SQLSelectBuilder) -> SQLSelectBuilder {
        var query = nameCondition(query)
        if let userID { query = query.where("owner_id", .equal, userID) }
        if let courseID { query = query.where("course_id", .equal, courseID) }
        if let state {
            if state == "error" {
                let failed: SQLQueryString =
                    "(error_message IS NOT NULL OR state IN (\(binds: ClassState.errors.map(\.rawValue))))"
                query = query.where(failed)
            } else {
                query = query.where("state", .equal, state)
            }
        }
        if let region { query = query.where("region", .equal, region) }
        if let createdAt { query = createdAt.apply(to: query, column: "created_at") }
        if let lastDeployed { query = lastDeployed.apply(to: query, column: "labs_created_at") }
        return query
    }
}
