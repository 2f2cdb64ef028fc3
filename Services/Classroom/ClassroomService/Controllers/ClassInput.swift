import Contracts
import Foundation
import ServerKit

/// The writable fields of a class, checked against the seed's rules. Every refusal is a 422 naming the field.
struct ClassInput {
    let parameters: SkytapParameters
    let course: CourseRecord
    let now: Date

    static func invalid(_ field: String, _ rule: String) -> ServiceFailure {
        ServiceFailure(.invalid, "\(field) \(rule)", field: field)
    }

    static let timeFormat = "YYYY/MM/DD HH:MM:SS"

    func apply(to record: inout ClassRecord, creating: Bool) throws {
        let p = parameters
        let provisioned = !creating && record.progress >= .provisioned
        let begun = !creating && record.progress >= .begun
        if let zone = try p.string("time_zone") {
            guard TimeZone(identifier: zone) != nil, zone.contains("/") || zone == "UTC" || zone == "GMT" else {
                throw Self.invalid("time_zone", "must be an IANA time zone name such as America/Los_Angeles or UTC")
            }
            record.timeZone = zone
        }
        let zone = record.zone
        if let name = try p.string("name") {
            let trimmed = name.trimmingCharacters(in: .whitespacesAndNewlines)
            guard trimmed.count <= 64 else { throw Self.invalid("name", "must be at most 64 characters") }
            record.name = trimmed.isEmpty ? course.name : trimmed
        }
        if let description = try p.string("description") {
            guard description.count <= 1000 else { throw Self.invalid("description", "must be at most 1000 characters") }
            record.description = description.isEmpty ? course.description : description
        }
        if p.has("start_at") {
            guard let start = try time("start_at", zone: zone) else { throw Self.invalid("start_at", "is required") }
            if start != record.startAt || creating {
                guard !provisioned else {
                    throw Self.invalid("start_at", "cannot change once the class's labs are provisioned")
                }
                guard start >= now.addingTimeInterval(-60) else { throw Self.invalid("start_at", "must not be in the past") }
                record.startAt = start
            }
        }
        if p.has("end_at") {
            let end = try time("end_at", zone: zone)
            if end != record.endAt {
                if begun {
                    // Ending an in-progress class.
                    guard record.state == .running else {
                        throw Self.invalid("end_at", "can only be changed after the class starts while its state is running")
                    }
                    guard let end, end >= now.addingTimeInterval(-60) else {
                        throw Self.invalid("end_at", "must not be in the past")
                    }
                }
                record.endAt = end
            }
        }
        if let end = record.endAt, end <= record.startAt {
            throw Self.invalid("end_at", "must be after start_at")
        }
        if let hours = try int("provision_hours", 1...336) {
            guard !provisioned || hours == record.provisionHours else {
                throw Self.invalid("provision_hours", "cannot change once the class's labs are provisioned")
            }
            record.provisionHours = hours
        }
        if let hours = try int("run_hours", 1...336) {
            guard !provisioned || hours == record.runHours || record.progress < .run else {
                throw Self.invalid("run_hours", "cannot change once the class's labs have been run")
            }
            record.runHours = hours
        }
        guard record.runHours <= record.provisionHours else {
            throw Self.invalid("run_hours", "must be less than or equal to provision_hours (\(record.provisionHours))")
        }
        if p.has("cleanup_hours") { record.cleanupHours = p.isNull("cleanup_hours") ? nil : try int("cleanup_hours", 0...8760) }
        if p.has("shutdown_hours") {
            record.shutdownHours = p.isNull("shutdown_hours") ? nil : try int("shutdown_hours", 0...8760)
        }
        if let shutdown = record.shutdownHours, let cleanup = record.cleanupHours, shutdown > cleanup {
            throw Self.invalid("shutdown_hours", "must be less than or equal to cleanup_hours (\(cleanup))")
        }
        (record.dailyStartupTime, record.dailyShutdownTime) = try pair(
            "daily_startup_time", "daily_shutdown_time", current: (record.dailyStartupTime, record.dailyShutdownTime))
        (record.startTime, record.endTime) = try pair(
            "start_time", "end_time", current: (record.startTime, record.endTime))
        if p.has("runtime_limit") {
            record.runtimeLimit = p.isNull("runtime_limit") ? nil : try int("runtime_limit", 1...525_600)
        }
        if p.has("expiration_date") { record.expirationDate = try time("expiration_date", zone: zone) }
        if p.has("password") {
            let password = try p.string("password") ?? ""
            if password.isEmpty {
                record.passwordHash = nil
            } else {
                guard !course.ssoRequired else {
                    throw Self.invalid("password", "must be empty: the course requires SSO")
                }
                guard password.count <= 128 else { throw Self.invalid("password", "must be at most 128 characters") }
                record.passwordHash = try Secrets.hashPassword(password)
            }
        }
    }

    func int(_ name: String, _ range: ClosedRange<Int>) throws -> Int? {
        do {
            return try parameters.int(name, in: range)
        } catch let failure as ServiceFailure {
            throw ServiceFailure(.invalid, failure.publicMessage, field: name)
        }
    }

    /// A timestamp in the class's time zone; nil when given as null or empty.
    func time(_ name: String, zone: TimeZone) throws -> Date? {
        guard !parameters.isNull(name), let text = try parameters.string(name), !text.isEmpty else { return nil }
        guard let date = SkytapTime.parse(text, in: zone) else {
            throw Self.invalid(name, "must be a time in the format \(Self.timeFormat) (ISO 8601 is accepted too)")
        }
        return date
    }

    /// Two `HH:MM` times set as a pair: the first time both at once; once set, either alone; null for both removes
    /// them.
    func pair(_ first: String, _ second: String, current: (String?, String?)) throws -> (String?, String?) {
        let p = parameters
        guard p.has(first) || p.has(second) else { return current }
        func value(_ name: String) throws -> String?? {
            guard p.has(name) else { return .none }
            if p.isNull(name) { return .some(nil) }
            let text = try p.string(name) ?? ""
            if text.isEmpty { return .some(nil) }
            guard ClassSchedule.minutes(text) != nil else { throw Self.invalid(name, "must be a time of day as HH:MM") }
            return .some(text)
        }
        let a = try value(first)
        let b = try value(second)
        let result = (a ?? current.0, b ?? current.1)
        switch result {
        case (nil, nil):
            return result
        case (.some, .some):
            if current.0 == nil && current.1 == nil && (a == nil || b == nil) {
                throw Self.invalid(first, "and \(second) must be entered as a pair")
            }
            if result.0 == result.1 { throw Self.invalid(second, "must differ from \(first)") }
            return result
        default:
            // Name the one the request touched (the non-null one when it sent both).
            let given = p.has(first) != p.has(second) ? (p.has(first) ? first : second) : (result.0 == nil ? second : first)
            let other = given == first ? second : first
            throw Self.invalid(given, "must be entered as a pair with \(other) (null for both removes them)")
        }
    }
}
