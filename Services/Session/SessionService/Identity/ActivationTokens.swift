import Crypto
import Foundation
import ServerKit

extension Secrets {
    /// The activation token of a session allocation: an HMAC of the session name and the allocation's nonce under
    /// the service's key. The database keeps the nonce and the token's digest, never the token; a reacquired
    /// session answers the same token by deriving it again.
    static func activationToken(key: SymmetricKey, session: String, nonce: String) -> String {
        derived(key: key, label: "activate:\(session):\(nonce)")
    }

    /// The password of a session (`config/` answers it, and its lab gets it as `SESSION_PASSWORD`): derived from
    /// the key and the session name, so every replica knows it and nothing is stored.
    static func sessionPassword(key: SymmetricKey, session: String) -> String {
        derived(key: key, label: "password:\(session)")
    }

    /// 32 characters from [A-Za-z0-9] (as Educates' tokens look; 32 × log2(62) ≈ 190 bits), an HMAC of `label`.
    private static func derived(key: SymmetricKey, label: String) -> String {
        var result: [UInt8] = []
        var material = Array(HMAC<SHA256>.authenticationCode(for: Data(label.utf8), using: key))
        var counter: UInt8 = 0
        while result.count < 32 {
            for byte in material where result.count < 32 && byte < 248 {
                result.append(alphabet[Int(byte % 62)])
            }
            counter += 1
            material = Array(HMAC<SHA256>.authenticationCode(for: Data("\(label):\(counter)".utf8), using: key))
        }
        return String(decoding: result, as: UTF8.self)
    }
}
