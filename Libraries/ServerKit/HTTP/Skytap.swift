import Contracts
import Foundation
import HTTPTypes
import Hummingbird
import Synchronization

/// A value of a Skytap request parameter: from a JSON body it keeps its JSON type; from a query string or a form it
/// is a string.
public indirect enum ParameterValue: Sendable, Equatable {
    case null
    case bool(Bool)
    case number(String)
    case string(String)
    case array([ParameterValue])
    case object([String: ParameterValue])

    init(json: Any) {
        switch json {
        case is NSNull: self = .null
        case let number as NSNumber:
            // JSONSerialization gives NSNumber for booleans too; tell them apart by their type.
            if String(cString: number.objCType) == "c" {
                self = .bool(number.boolValue)
            } else {
                self = .number(number.stringValue)
            }
        case let text as String: self = .string(text)
        case let array as [Any]: self = .array(array.map(ParameterValue.init(json:)))
        case let object as [String: Any]: self = .object(object.mapValues(ParameterValue.init(json:)))
        default: self = .null
        }
    }

    /// The value as text when it is a scalar.
    public var text: String? {
        switch self {
        case .string(let text), .number(let text): text
        case .bool(let value): value ? "true" : "false"
        default: nil
        }
    }
}

/// The parameters of a Skytap-style request: the JSON body, a form body and the query string merged, as Rails'
/// `params` are (real clients send attributes in the query string with an empty body labelled JSON). The body wins
/// over the query string for a name given in both. Booleans are read case-insensitively (`True`/`False`).
public struct SkytapParameters: Sendable, Equatable {
    public var values: [String: ParameterValue]

    public init(_ values: [String: ParameterValue] = [:]) { self.values = values }

    /// Reads the request's query string and body (up to `limit` bytes). An empty or blank body is `{}`.
    public static func read(_ request: inout Request, limit: Int = 64 << 10) async throws -> SkytapParameters {
        var values: [String: ParameterValue] = [:]
        for item in request.query.items { Self.add(item.name, .string(item.value), to: &values) }
        let body = try await request.bodyData(limit: limit)
        if !body.allSatisfy({ $0 == 0x20 || $0 == 0x0a || $0 == 0x0d || $0 == 0x09 }) {
            let contentType = request.headers[.contentType] ?? ""
            if contentType.contains("x-www-form-urlencoded") {
                for item in FormParameters(String(decoding: body, as: UTF8.self)).items {
                    Self.add(item.name, .string(item.value), to: &values)
                }
            } else {
                guard let json = try? JSONSerialization.jsonObject(with: body, options: [.fragmentsAllowed]) else {
                    throw ServiceFailure(.badRequest, "the body is not valid JSON")
                }
                switch ParameterValue(json: json) {
                case .object(let object):
                    for (key, value) in object { values[key] = value }
                case .array(let array):
                    values["_json"] = .array(array)
                default:
                    throw ServiceFailure(.badRequest, "the body must be a JSON object")
                }
            }
        }
        for name in values.keys.sorted() {
            try TextRules.refuseNUL(name, field: name)
            if let path = values[name]!.pathOfNUL(name) {
                throw ServiceFailure(.invalid, "\(path) must not contain the NUL character (U+0000)", field: path)
            }
        }
        return SkytapParameters(values)
    }

    /// `name[]=a&name[]=b` becomes an array; `name=a` a string.
    static func add(_ name: String, _ value: ParameterValue, to values: inout [String: ParameterValue]) {
        if name.hasSuffix("[]") {
            let key = String(name.dropLast(2))
            if case .array(let existing) = values[key] {
                values[key] = .array(existing + [value])
            } else {
                values[key] = .array([value])
            }
        } else {
            values[name] = value
        }
    }

    public func has(_ name: String) -> Bool { values[name] != nil }

    /// Given explicitly as null (JSON `null`, or the text `null` in a query string or form).
    public func isNull(_ name: String) -> Bool {
        switch values[name] {
        case .null: true
        case .string(let text): text.lowercased() == "null"
        default: false
        }
    }

    public func string(_ name: String) throws -> String? {
        guard let value = values[name] else { return nil }
        if case .null = value { return nil }
        guard let text = value.text else {
            throw ServiceFailure(.badRequest, "\(name) must be a string", field: name)
        }
        return text
    }

    public func int(_ name: String, in range: ClosedRange<Int>) throws -> Int? {
        guard let text = try string(name), !text.isEmpty else { return nil }
        guard let number = Int(text.trimmingCharacters(in: .whitespaces)) ?? Double(text).flatMap({
            $0.rounded() == $0 && abs($0) < 1e15 ? Int($0) : nil
        }), range.contains(number)
        else {
            throw ServiceFailure(
                .invalid, "\(name) must be a whole number from \(range.lowerBound) to \(range.upperBound)", field: name)
        }
        return number
    }

    public func bool(_ name: String) throws -> Bool? {
        guard let value = values[name] else { return nil }
        if case .bool(let flag) = value { return flag }
        guard let text = try string(name) else { return nil }
        switch text.lowercased() {
        case "true", "1", "yes", "on": return true
        case "false", "0", "no", "off", "": return false
        default: throw ServiceFailure(.badRequest, "\(name) must be true or false", field: name)
        }
    }

    /// An array; a single scalar counts as an array of one (clients put `template_ids=123` in a query string).
    public func array(_ name: String) throws -> [ParameterValue]? {
        guard let value = values[name] else { return nil }
        switch value {
        case .null: return nil
        case .array(let items): return items
        case .string(let text) where text.hasPrefix("["):
            guard let json = try? JSONSerialization.jsonObject(with: Data(text.utf8)), case .array(let items) = ParameterValue(json: json)
            else { throw ServiceFailure(.badRequest, "\(name) must be an array", field: name) }
            return items
        case .string, .number: return [value]
        default: throw ServiceFailure(.badRequest, "\(name) must be an array", field: name)
        }
    }
}

/// Skytap list paging: `count` and `offset` in, `Content-Range` and `Link` out.
public struct SkytapPage: Sendable, Hashable {
    public var count: Int
    public var offset: Int

    public static let defaultCount = 100
    public static let maximumCount = 1000

    public init(count: Int, offset: Int) {
        self.count = count
        self.offset = offset
    }

    public init(_ query: FormParameters) throws {
        count = try Self.int(query["count"], field: "count", default: Self.defaultCount, range: 1...Self.maximumCount)
        offset = try Self.int(query["offset"], field: "offset", default: 0, range: 0...Int(Int32.max))
    }

    public static func int(_ text: String?, field: String, default value: Int, range: ClosedRange<Int>) throws -> Int {
        guard let text, !text.isEmpty else { return value }
        guard let number = Int(text), range.contains(number) else {
            throw ServiceFailure(
                .badRequest, "\(field) must be a whole number from \(range.lowerBound) to \(range.upperBound)",
                field: field)
        }
        return number
    }

    /// `Content-Range: items <first>-<last>/<total>` (`items */<total>` for an empty page) and, when more remain,
    /// `Link: <path?…&offset=N&count=M>; rel="next"`.
    public func headers(returned: Int, total: Int, request: Request) -> HTTPFields {
        var headers: HTTPFields = [:]
        headers[HTTPField.Name("Content-Range")!] =
            returned == 0 ? "items */\(total)" : "items \(offset)-\(offset + returned - 1)/\(total)"
        if offset + returned < total {
            var items = request.query.items.filter { $0.name != "offset" && $0.name != "count" }
            items.append(.init(name: "offset", value: String(offset + returned)))
            items.append(.init(name: "count", value: String(count)))
            let query = items.map { "\(FormParameters.encode($0.name))=\(FormParameters.encode($0.value))" }
                .joined(separator: "&")
            headers[HTTPField.Name("Link")!] = "<\(request.uri.path)?\(query)>; rel=\"next\""
        }
        return headers
    }
}

/// Skytap's time format, `YYYY/MM/DD HH:MM:SS ±hhmm`, in a given time zone. Input may omit the offset (the time
/// zone given applies) or be ISO 8601.
public enum SkytapTime {
    public static let utc = TimeZone(identifier: "UTC")!

    public static func string(_ date: Date, in timeZone: TimeZone = utc) -> String {
        let offset = timeZone.secondsFromGMT(for: date)
        let local = Int64((date.timeIntervalSince1970).rounded(.down)) + Int64(offset)
        var days = local >= 0 ? local / 86_400 : (local - 86_399) / 86_400
        let seconds = Int(local - days * 86_400)
        // Civil date from days since 1970-01-01 (Howard Hinnant's algorithm): no Calendar, no format strings.
        days += 719_468
        let era = (days >= 0 ? days : days - 146_096) / 146_097
        let dayOfEra = days - era * 146_097
        let yearOfEra = (dayOfEra - dayOfEra / 1460 + dayOfEra / 36_524 - dayOfEra / 146_096) / 365
        let dayOfYear = dayOfEra - (365 * yearOfEra + yearOfEra / 4 - yearOfEra / 100)
        let monthIndex = (5 * dayOfYear + 2) / 153
        let day = Int(dayOfYear - (153 * monthIndex + 2) / 5 + 1)
        let month = Int(monthIndex < 10 ? monthIndex + 3 : monthIndex - 9)
        let year = Int(yearOfEra + era * 400 + (month <= 2 ? 1 : 0))
        var text = ""
        text.reserveCapacity(25)
        func pad(_ value: Int, _ width: Int) {
            let digits = String(value)
            if digits.count < width { text += String(repeating: "0", count: width - digits.count) }
            text += digits
        }
        pad(year, 4)
        text += "/"
        pad(month, 2)
        text += "/"
        pad(day, 2)
        text += " "
        pad(seconds / 3600, 2)
        text += ":"
        pad(seconds / 60 % 60, 2)
        text += ":"
        pad(seconds % 60, 2)
        let minutes = offset / 60
        text += minutes < 0 ? " -" : " +"
        pad(abs(minutes) / 60, 2)
        pad(abs(minutes) % 60, 2)
        return text
    }

    private static let zones = Mutex<[String: TimeZone]>([:])

    /// A time zone by IANA name, looked up once per name.
    public static func zone(named name: String) -> TimeZone? {
        if let zone = zones.withLock({ $0[name] }) { return zone }
        guard let zone = TimeZone(identifier: name) else { return nil }
        zones.withLock { $0[name] = zone }
        return zone
    }

    public static func string(_ date: Date?, in timeZone: TimeZone = utc) -> String? {
        date.map { string($0, in: timeZone) }
    }

    /// Parses `YYYY/MM/DD HH:MM:SS` (in `timeZone`), the same with a `±hhmm` offset, `YYYY/MM/DD` (midnight) or
    /// ISO 8601. Nil when it is none of these.
    public static func parse(_ text: String, in timeZone: TimeZone = utc) -> Date? {
        let trimmed = text.trimmingCharacters(in: .whitespaces)
        if let date = try? Date(trimmed, strategy: .iso8601) { return date }
        if let date = try? Date(
            trimmed, strategy: Date.ISO8601FormatStyle(includingFractionalSeconds: true, timeZone: utc))
        {
            return date
        }
        let scalars = Array(trimmed.utf8)
        func number(_ range: Range<Int>) -> Int? {
            guard range.upperBound <= scalars.count else { return nil }
            var value = 0
            for index in range {
                let c = scalars[index]
                guard c >= 0x30 && c <= 0x39 else { return nil }
                value = value * 10 + Int(c - 0x30)
            }
            return value
        }
        func separator(_ index: Int, _ characters: String) -> Bool {
            index < scalars.count && characters.utf8.contains(scalars[index])
        }
        guard let year = number(0..<4), separator(4, "/-"), let month = number(5..<7), separator(7, "/-"),
            let day = number(8..<10), (1...12).contains(month), (1...31).contains(day)
        else { return nil }
        var components = DateComponents(year: year, month: month, day: day, hour: 0, minute: 0, second: 0)
        var zone = timeZone
        if scalars.count > 10 {
            guard separator(10, " T"), let hour = number(11..<13), separator(13, ":"), let minute = number(14..<16),
                hour < 24, minute < 60
            else { return nil }
            components.hour = hour
            components.minute = minute
            var index = 16
            if separator(16, ":") {
                guard let second = number(17..<19), second < 60 else { return nil }
                components.second = second
                index = 19
            }
            if index < scalars.count {
                // An offset: " -0800", "+01:00", "Z".
                let rest = String(decoding: scalars[index...], as: UTF8.self).trimmingCharacters(in: .whitespaces)
                if rest == "Z" || rest == "UTC" {
                    zone = utc
                } else {
                    let digits = rest.filter(\.isNumber)
                    guard let sign = rest.first, sign == "+" || sign == "-", digits.count == 4,
                        let hours = Int(digits.prefix(2)), let minutes = Int(digits.suffix(2))
                    else { return nil }
                    let seconds = (hours * 3600 + minutes * 60) * (sign == "-" ? -1 : 1)
                    guard let fixed = TimeZone(secondsFromGMT: seconds) else { return nil }
                    zone = fixed
                }
            }
        }
        var calendar = Calendar(identifier: .gregorian)
        calendar.timeZone = zone
        guard let date = calendar.date(from: components),
            calendar.component(.day, from: date) == day
        else { return nil }
        return date
    }
}

/// A time range of a list filter: `now-Nh|d|m to now`, `to now-Nd`, `<timestamp> to <timestamp>`. (`+` in a query
/// string is a space once decoded; a literal `+to+` is accepted too.)
public struct DateRange: Sendable, Hashable {
    public var from: Date?
    public var to: Date?

    public init(from: Date?, to: Date?) {
        self.from = from
        self.to = to
    }

    public static func parse(_ text: String, field: String, now: Date, timeZone: TimeZone) throws -> DateRange {
        // Whole seconds: the same range within a second (a list read again is then the same query).
        let now = Date(timeIntervalSince1970: now.timeIntervalSince1970.rounded(.down))
        // `+` is a space in the seed's syntax (`now-30d+to+now`), except in a time's UTC offset (`… +0100`).
        let normalized = text.replacingOccurrences(of: "+to+", with: " to ").trimmingCharacters(in: .whitespaces)
        let rule = "\(field) must look like now-30d to now, to now-7d, or 2024/01/01 00:00:00 to 2024/02/01 00:00:00 (units h, d, m)"
        var parts: [String]
        if normalized.hasPrefix("to ") || normalized.hasPrefix("to+") {
            parts = ["", String(normalized.dropFirst(3))]
        } else {
            parts = normalized.components(separatedBy: " to ")
        }
        guard parts.count == 2 else { throw ServiceFailure(.badRequest, rule, field: field) }
        parts = parts.map { $0.trimmingCharacters(in: .whitespaces) }
        func point(_ text: String) throws -> Date? {
            if text.isEmpty { return nil }
            if text == "now" { return now }
            if text.hasPrefix("now-") {
                let amount = text.dropFirst(4)
                guard let unit = amount.last, let value = Int(amount.dropLast()), value >= 0, value <= 100_000 else {
                    throw ServiceFailure(.badRequest, rule, field: field)
                }
                var calendar = Calendar(identifier: .gregorian)
                calendar.timeZone = timeZone
                switch unit {
                case "h": return now.addingTimeInterval(-Double(value) * 3600)
                case "d": return now.addingTimeInterval(-Double(value) * 86_400)
                case "m":
                    guard let date = calendar.date(byAdding: .month, value: -value, to: now) else {
                        throw ServiceFailure(.badRequest, rule, field: field)
                    }
                    return date
                default: throw ServiceFailure(.badRequest, rule, field: field)
                }
            }
            guard let date = SkytapTime.parse(text, in: timeZone)
                ?? SkytapTime.parse(text.replacingOccurrences(of: "+", with: " "), in: timeZone)
            else { throw ServiceFailure(.badRequest, rule, field: field) }
            return date
        }
        let range = DateRange(from: try point(parts[0]), to: try point(parts[1]))
        guard range.from != nil || range.to != nil else { throw ServiceFailure(.badRequest, rule, field: field) }
        if let from = range.from, let to = range.to, from > to {
            throw ServiceFailure(.badRequest, "\(field): the range ends before it starts", field: field)
        }
        return range
    }
}
