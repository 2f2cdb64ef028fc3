import Foundation
import Logging
import NIOCore
import NIOExtras
import NIOPosix

/// Where notification emails go: a plain SMTP relay (the operator's local MTA or mail relay).
public struct SMTPSettings: Sendable {
    public var host: String
    public var port: Int
    /// The sender address.
    public var from: String
    public var timeout: Duration

    public init(host: String, port: Int = 25, from: String, timeout: Duration = .seconds(15)) {
        self.host = host
        self.port = port
        self.from = from
        self.timeout = timeout
    }
}

public struct SMTPError: Error, CustomStringConvertible {
    public var description: String
}

/// A minimal SMTP client (RFC 5321): EHLO, MAIL FROM, RCPT TO, DATA, QUIT, with dot-stuffing and a deadline on the
/// whole exchange.
public struct SMTPClient: Sendable {
    public let settings: SMTPSettings

    public init(settings: SMTPSettings) { self.settings = settings }

    /// An RFC 5322 plain-text message.
    public static func message(from: String, to: String, subject: String, body: String, date: Date = Date()) -> String {
        let formatter = DateFormatter()
        formatter.locale = Locale(identifier: "en_US_POSIX")
        formatter.timeZone = TimeZone(identifier: "UTC")
        formatter.dateFormat = "EEE, dd MMM yyyy HH:mm:ss '+0000'"
        let headers = [
            "From: LabPortal <\(from)>",
            "To: <\(to)>",
            "Subject: \(subject)",
            "Date: \(formatter.string(from: date))",
            "Message-ID: <\(UUID().uuidString.lowercased())@labportal>",
            "MIME-Version: 1.0",
            "Content-Type: text/plain; charset=utf-8",
            "Content-Transfer-Encoding: 8bit",
        ]
        return headers.joined(separator: "\r\n") + "\r\n\r\n" + body.replacingOccurrences(of: "\r\n", with: "\n")
            .replacingOccurrences(of: "\n", with: "\r\n")
    }

    public func send(to recipient: String, message: String) async throws {
        try await withThrowingTaskGroup(of: Void.self) { group in
            group.addTask { try await self.exchange(to: recipient, message: message) }
            group.addTask {
                try await Task.sleep(for: settings.timeout)
                throw SMTPError(description: "the mail server \(settings.host):\(settings.port) did not answer within \(settings.timeout)")
            }
            try await group.next()
            group.cancelAll()
        }
    }

    private func exchange(to recipient: String, message: String) async throws {
        let channel: NIOAsyncChannel<ByteBuffer, ByteBuffer>
        do {
            channel = try await ClientBootstrap(group: MultiThreadedEventLoopGroup.singleton)
                .connectTimeout(.seconds(5))
                .connect(host: settings.host, port: settings.port) { channel in
                    channel.eventLoop.makeCompletedFuture {
                        try channel.pipeline.syncOperations.addHandler(
                            ByteToMessageHandler(LineBasedFrameDecoder(), maximumBufferSize: 64 * 1024))
                        return try NIOAsyncChannel<ByteBuffer, ByteBuffer>(wrappingChannelSynchronously: channel)
                    }
                }
        } catch {
            throw SMTPError(description: "cannot connect to the mail server \(settings.host):\(settings.port): \(error)")
        }
        try await channel.executeThenClose { inbound, outbound in
            var lines = inbound.makeAsyncIterator()
            func reply() async throws -> (code: Int, text: String) {
                var text = ""
                while true {
                    guard let buffer = try await lines.next() else {
                        throw SMTPError(description: "the mail server closed the connection")
                    }
                    let line = String(buffer: buffer).trimmingCharacters(in: CharacterSet(charactersIn: "\r"))
                    text += line + " "
                    guard line.count >= 3, let code = Int(line.prefix(3)) else {
                        throw SMTPError(description: "the mail server answered something that is not SMTP: \(line)")
                    }
                    if line.count == 3 || line.dropFirst(3).first == " " { return (code, text) }
                }
            }
            func expect(_ codes: ClosedRange<Int>, after command: String?) async throws {
                if let command { try await outbound.write(ByteBuffer(string: command + "\r\n")) }
                let (code, text) = try await reply()
                guard codes.contains(code) else {
                    throw SMTPError(description: "the mail server refused \(command?.split(separator: " ").first.map(String.init) ?? "the connection"): \(text.trimmingCharacters(in: .whitespaces))")
                }
            }
            try await expect(220...220, after: nil)
            try await expect(250...250, after: "EHLO labportal")
            try await expect(250...250, after: "MAIL FROM:<\(settings.from)>")
            try await expect(250...251, after: "RCPT TO:<\(recipient)>")
            try await expect(354...354, after: "DATA")
            // Dot-stuffing: a line that starts with "." gets another.
            let body = message.split(separator: "\r\n", omittingEmptySubsequences: false)
                .map { $0.hasPrefix(".") ? "." + $0 : String($0) }.joined(separator: "\r\n")
            try await expect(250...250, after: body + "\r\n.")
            // The server has taken the message: from here nothing may fail the send, or a retry would send it twice.
            // QUIT is a courtesy, and its answer is not waited for.
            try? await outbound.write(ByteBuffer(string: "QUIT\r\n"))
        }
    }
}
