import Crypto
import Foundation
import ServerKit

extension Secrets {
    /// The activation token of a session allocation: an HMAC of the session name and the allocation's nonce under
    /// the service's key. The database keeps the nonce and the token's digest, never the token; a reacquired
    /// session answers the same token by deriving it again.
    static func activationToken(key: SymmetricKey, session: String, nonce: String) -> String {
        let mac = HMAC<SHA256>.authenticationCode(for: Data("activate:\(session):\(nonce)".utf8), using: key)
        // 32 characters from [A-Za-z0-9], as Educates' tokens look; 32 × log2(62) ≈ 190 bits.
        var result: [UInt8] = []
        var material = Array(mac)
        var counter: UInt8 = 0
        while result.count < 32 {
            for byte in material where result.count < 32 && byte < 248 {
                result.append(alphabet[Int(byte % 62)])
            }
            counter += 1
            material = Array(
                HMAC<SHA256>.authenticationCode(for: Data("activate:\(session):\(nonce):\(counter)".utf8), using: key))
        }
        return String(decoding: result, as: UTF8.self)
    }
}
