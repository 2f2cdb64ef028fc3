import Contracts
import Foundation
import ServerKit

/// Users recognised by HTTP Basic `name:token-name`, for services under test that authenticate through
/// `identity.authenticate`.
public struct StubBasicUsers: Authenticating {
    public let users: [String: AuthenticatedUser]

    public init(_ users: [String: AuthenticatedUser]) { self.users = users }

    public func authenticate(_ authorization: String) async throws -> AuthenticatedUser {
        guard authorization.hasPrefix("Basic "),
            let decoded = Data(base64Encoded: String(authorization.dropFirst(6))).map({ String(decoding: $0, as: UTF8.self) })
        else { throw ServiceFailure(.unauthenticated, "invalid credentials") }
        let parts = decoded.split(separator: ":", maxSplits: 1)
        guard parts.count == 2, parts[1] == "token-\(parts[0])", let user = users[String(parts[0])] else {
            throw ServiceFailure(.unauthenticated, "invalid credentials")
        }
        return user
    }

    /// The `Authorization` value of a user.
    public static func authorization(_ name: String) -> String {
        "Basic \(Data("\(name):token-\(name)".utf8).base64EncodedString())"
    }
}

/// RFC 4180 parsing, for checking what exports wrote (CRLF or LF record ends; quoted fields may hold both).
public enum CSVTable {
    public static func parse(_ text: String) -> [[String]] {
        var rows: [[String]] = []
        var row: [String] = []
        var field = ""
        var quoted = false
        let scalars = Array(text.unicodeScalars)
        var index = 0
        while index < scalars.count {
            let c = scalars[index]
            if quoted {
                if c == "\"" {
                    if index + 1 < scalars.count && scalars[index + 1] == "\"" {
                        field.unicodeScalars.append("\"")
                        index += 1
                    } else {
                        quoted = false
                    }
                } else {
                    field.unicodeScalars.append(c)
                }
            } else if c == "\"" {
                quoted = true
            } else if c == "," {
                row.append(field)
                field = ""
            } else if c == "\n" || (c == "\r" && index + 1 < scalars.count && scalars[index + 1] == "\n") {
                row.append(field)
                rows.append(row)
                row = []
                field = ""
                if c == "\r" { index += 1 }
            } else {
                field.unicodeScalars.append(c)
            }
            index += 1
        }
        if !field.isEmpty || !row.isEmpty {
            row.append(field)
            rows.append(row)
        }
        return rows
    }
}

/// Checks gzip data with the system's `gzip -t` and inflates it with `gzip -dc`; nil when gzip refuses it.
public func systemGunzip(_ data: Data) throws -> Data? {
    let directory = FileManager.default.temporaryDirectory.appendingPathComponent("gunzip-\(UUID().uuidString.prefix(8))")
    try FileManager.default.createDirectory(at: directory, withIntermediateDirectories: true)
    defer { try? FileManager.default.removeItem(at: directory) }
    let file = directory.appendingPathComponent("data.gz")
    try data.write(to: file)
    let (status, _) = runProcess("/bin/sh", ["-c", "gzip -t \"$0\" && gzip -dc \"$0\" > \"$0.out\"", file.path])
    guard status == 0 else { return nil }
    return try Data(contentsOf: URL(fileURLWithPath: file.path + ".out"))
}
