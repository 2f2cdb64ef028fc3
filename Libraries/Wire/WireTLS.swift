import Foundation
import NIOCore
import NIOSSL
import X509

/// Where a process finds its identity and the deployment's CA, as PEM files.
public struct WireTLSFiles: Sendable, Equatable {
    public var certificate: String
    public var privateKey: String
    public var trustRoots: String

    public init(certificate: String, privateKey: String, trustRoots: String) {
        self.certificate = certificate
        self.privateKey = privateKey
        self.trustRoots = trustRoots
    }
}

public enum WireTLSError: Error, CustomStringConvertible {
    case unreadable(path: String, reason: String)

    public var description: String {
        switch self {
        case .unreadable(let path, let reason): "cannot load TLS material from \(path): \(reason)"
        }
    }
}

/// Builds the NIOSSL contexts for mutual TLS. TLS 1.2 is the floor; TLS 1.3 is negotiated when both sides can.
public enum WireTLS {
    /// The server side: presents its certificate and requires a client certificate that chains to the CA.
    public static func serverContext(_ files: WireTLSFiles) throws -> NIOSSLContext {
        let (chain, key, roots) = try load(files)
        var configuration = TLSConfiguration.makeServerConfigurationWithMTLS(
            certificateChain: chain.map { .certificate($0) },
            privateKey: .privateKey(key),
            trustRoots: .certificates(roots))
        configuration.minimumTLSVersion = .tlsv12
        return try NIOSSLContext(configuration: configuration)
    }

    /// The client side: presents its certificate (if any) and verifies the server against the CA and its name.
    public static func clientContext(_ files: WireTLSFiles) throws -> NIOSSLContext {
        let (chain, key, roots) = try load(files)
        var configuration = TLSConfiguration.makeClientConfiguration()
        configuration.certificateChain = chain.map { .certificate($0) }
        configuration.privateKey = .privateKey(key)
        configuration.trustRoots = .certificates(roots)
        configuration.minimumTLSVersion = .tlsv12
        configuration.certificateVerification = .fullVerification
        return try NIOSSLContext(configuration: configuration)
    }

    /// A client context with no certificate of its own (used to prove that such clients are refused).
    public static func anonymousClientContext(trustRoots: String) throws -> NIOSSLContext {
        var configuration = TLSConfiguration.makeClientConfiguration()
        configuration.trustRoots = .certificates(try loadCertificates(trustRoots))
        configuration.minimumTLSVersion = .tlsv12
        return try NIOSSLContext(configuration: configuration)
    }

    static func load(_ files: WireTLSFiles) throws -> ([NIOSSLCertificate], NIOSSLPrivateKey, [NIOSSLCertificate]) {
        let chain = try loadCertificates(files.certificate)
        let key: NIOSSLPrivateKey
        do {
            key = try NIOSSLPrivateKey(file: files.privateKey, format: .pem)
        } catch {
            throw WireTLSError.unreadable(path: files.privateKey, reason: "\(error)")
        }
        return (chain, key, try loadCertificates(files.trustRoots))
    }

    static func loadCertificates(_ path: String) throws -> [NIOSSLCertificate] {
        do {
            let certificates = try NIOSSLCertificate.fromPEMFile(path)
            guard !certificates.isEmpty else { throw WireTLSError.unreadable(path: path, reason: "no certificate") }
            return certificates
        } catch let error as WireTLSError {
            throw error
        } catch {
            throw WireTLSError.unreadable(path: path, reason: "\(error)")
        }
    }

    /// The name a certificate gives its holder: the subject's common name.
    public static func name(of certificate: NIOSSLCertificate) -> String? {
        if let der = try? certificate.toDERBytes(), let parsed = try? Certificate(derEncoded: der) {
            for rdn in parsed.subject.reversed() {
                for attribute in rdn where attribute.type == .RDNAttributeType.commonName {
                    if let name = String(attribute.value) { return name }
                }
            }
        }
        return nil
    }
}
