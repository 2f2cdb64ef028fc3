import Contracts
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

    public typealias Portal = PortalSettings
    public typealias SessionLimits = Contracts.SessionLimits
    public typealias Workshop = WorkshopDefinition
    public typealias Content = WorkshopContent
    public typealias VM = WorkshopVM
    public typealias Parameter = RequestParameter
    public typealias Environment = EnvironmentSettings
}

extension WorkshopDefinition {
    /// A stable id from the content source, independent of the workshop's name: the hex MD5 of
    /// `"<image>:<files>:<url>"`, as Educates computed it.
    public var id: String { md5Hex("\(content.image):\(content.files):\(url)") }
}

/// A problem with the portal file, naming the field (`environments[1].reserved`) and the rule.
public struct PortalDefinitionError: Error, Equatable, CustomStringConvertible {
    public var field: String
    public var problem: String

    public var description: String { "portal file: \(field) \(problem)" }
}

/// The lowercase hex MD5 of a text. An identifier, not a security measure.
func md5Hex(_ text: String) -> String {
    let digits = Array("0123456789abcdef".utf8)
    var bytes: [UInt8] = []
    bytes.reserveCapacity(32)
    for byte in Insecure.MD5.hash(data: Data(text.utf8)) {
        bytes.append(digits[Int(byte >> 4)])
        bytes.append(digits[Int(byte & 0x0f)])
    }
    return String(decoding: bytes, as: UTF8.self)
}
