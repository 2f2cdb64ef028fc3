import Crypto
import Foundation
import _CryptoExtras

/// Random tokens, their digests, and password hashes.
///
/// Tokens (access, refresh, API, activation, browser) are 30–32 random characters from `[A-Za-z0-9]` (more than
/// 176 bits), stored only as SHA-256 digests and compared in constant time. Passwords of people use PBKDF2.
public enum Secrets {
    public static let alphabet = Array("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789".utf8)

    /// A random token of `length` characters from `[A-Za-z0-9]`, drawn without modulo bias.
    public static func token(length: Int = 32) -> String {
        var generator = SystemRandomNumberGenerator()
        var bytes: [UInt8] = []
        bytes.reserveCapacity(length)
        while bytes.count < length {
            let value = UInt8.random(in: 0...255, using: &generator)
            if value < 248 { bytes.append(alphabet[Int(value % 62)]) }
        }
        return String(decoding: bytes, as: UTF8.self)
    }

    /// The hex SHA-256 of a token: what the database keeps.
    public static func digest(_ token: String) -> String {
        hex(SHA256.hash(data: Data(token.utf8)))
    }

    public static func hex<D: Sequence>(_ bytes: D) -> String where D.Element == UInt8 {
        var text = ""
        text.reserveCapacity(64)
        for byte in bytes {
            text.append(Character(Unicode.Scalar(hexDigits[Int(byte >> 4)])))
            text.append(Character(Unicode.Scalar(hexDigits[Int(byte & 0x0f)])))
        }
        return text
    }

    private static let hexDigits = Array("0123456789abcdef".utf8)

    /// Compares two strings in time that depends only on their lengths.
    public static func constantTimeEquals(_ a: String, _ b: String) -> Bool {
        let x = Array(a.utf8)
        let y = Array(b.utf8)
        guard x.count == y.count else { return false }
        var difference: UInt8 = 0
        for index in x.indices { difference |= x[index] ^ y[index] }
        return difference == 0
    }

    // MARK: Passwords

    public static let passwordRounds = 210_000

    /// `pbkdf2-sha256$<rounds>$<salt hex>$<hash hex>`.
    public static func hashPassword(_ password: String, rounds: Int = passwordRounds) throws -> String {
        let salt = (0..<16).map { _ in UInt8.random(in: 0...255) }
        let key = try KDF.Insecure.PBKDF2.deriveKey(
            from: Array(password.utf8), salt: salt, using: .sha256, outputByteCount: 32, rounds: rounds)
        return "pbkdf2-sha256$\(rounds)$\(hex(salt))$\(key.withUnsafeBytes { hex($0) })"
    }

    public static func verifyPassword(_ password: String, against stored: String) -> Bool {
        let parts = stored.split(separator: "$")
        guard parts.count == 4, parts[0] == "pbkdf2-sha256", let rounds = Int(parts[1]), rounds >= passwordRounds,
            let salt = unhex(String(parts[2]))
        else { return false }
        guard
            let key = try? KDF.Insecure.PBKDF2.deriveKey(
                from: Array(password.utf8), salt: salt, using: .sha256, outputByteCount: 32, rounds: rounds)
        else { return false }
        return constantTimeEquals(key.withUnsafeBytes { hex($0) }, String(parts[3]))
    }

    public static func unhex(_ text: String) -> [UInt8]? {
        let digits = Array(text.utf8)
        guard digits.count % 2 == 0 else { return nil }
        var bytes: [UInt8] = []
        var index = 0
        while index < digits.count {
            guard let high = nibble(digits[index]), let low = nibble(digits[index + 1]) else { return nil }
            bytes.append(high << 4 | low)
            index += 2
        }
        return bytes
    }

    private static func nibble(_ c: UInt8) -> UInt8? {
        switch c {
        case UInt8(ascii: "0")...UInt8(ascii: "9"): c - UInt8(ascii: "0")
        case UInt8(ascii: "a")...UInt8(ascii: "f"): c - UInt8(ascii: "a") + 10
        case UInt8(ascii: "A")...UInt8(ascii: "F"): c - UInt8(ascii: "A") + 10
        default: nil
        }
    }
}
