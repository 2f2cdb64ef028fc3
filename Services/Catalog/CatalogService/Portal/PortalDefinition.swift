import Crypto
import Foundation
import Yams

/// The portal file: the portal itself, its workshops and the environments that offer them. It plays the part of
/// Educates' TrainingPortal and Workshop resources. `PortalDefinition.load` parses and validates it; every value is
/// checked once, here, with an error naming the field.
public struct PortalDefinition: Sendable, Equatable, Codable {
    public var portal: Portal
    public var workshops: [Workshop]
    public var environments: [Environment]

    public struct Portal: Sendable, Equatable, Codable {
        public var name: String
        /// Stable across restarts and reloads; derived from the name when the file gives none.
        public var uid: String
        public var url: String
        public var labels: [String: String]
        public var sessions: SessionLimits
        /// Where browsers go back to when no index URL is known.
        public var indexURL: String
    }

    /// 0 means no limit.
    public struct SessionLimits: Sendable, Equatable, Codable {
        public var maximum: Int
        public var registered: Int
        public var anonymous: Int
    }

    public struct Workshop: Sendable, Equatable, Codable {
        public var name: String
        public var title: String
        public var description: String
        public var vendor: String
        public var authors: [String]
        public var difficulty: String
        /// As written in the file (`"30m"`); shown as is in the catalog.
        public var duration: String
        public var tags: [String]
        public var logo: String
        public var url: String
        public var labels: [String: String]
        public var content: Content
        /// Run once per session with `PORT`, `SESSION_NAME` and `WORKSPACE` set (the `local` provisioner).
        public var command: [String]?
        /// Template VMs, for the Skytap side (`vm_ref`s of a course's `vm_access`).
        public var vms: [VM]
        public var region: String
        public var parameters: [Parameter]

        /// A stable id from the content source, independent of the workshop's name: the hex MD5 of
        /// `"<image>:<files>:<url>"`, as Educates computed it.
        public var id: String { md5Hex("\(content.image):\(content.files):\(url)") }
    }

    public struct Content: Sendable, Equatable, Codable {
        public var image: String
        public var files: String
    }

    public struct VM: Sendable, Equatable, Codable {
        public var id: String
        public var name: String
    }

    public struct Parameter: Sendable, Equatable, Codable {
        public var name: String
        public var value: String
    }

    public struct Environment: Sendable, Equatable, Codable {
        public var workshop: String
        public var capacity: Int
        public var reserved: Int
        public var initial: Int
        /// Seconds a session lives after activation; nil for no expiry.
        public var expires: Int?
        /// Seconds after activation beyond which no extension goes; never less than `expires`.
        public var deadline: Int?
        /// Seconds added by one extension; 0 means the Educates threshold rule.
        public var overtime: Int
        /// Seconds of inactivity after which a session counts as orphaned; 0 is off.
        public var orphaned: Int
        public var labels: [String: String]
    }
}

/// A problem with the portal file, naming the field (`environments[1].reserved`) and the rule.
public struct PortalDefinitionError: Error, Equatable, CustomStringConvertible {
    public var field: String
    public var problem: String

    public var description: String { "portal file: \(field) \(problem)" }
}

/// The lowercase hex MD5 of a text. An identifier, not a security measure.
func md5Hex(_ text: String) -> String {
    Insecure.MD5.hash(data: Data(text.utf8)).map { String(format: "%02x", $0) }.joined()
}
