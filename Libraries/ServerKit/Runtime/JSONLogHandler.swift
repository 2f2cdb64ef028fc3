import Foundation
import Logging

/// Structured logs: one JSON object per line on stderr, with the time, level, service, message, source and every
/// metadata key (`hb.request.id`, `request_id`, `caller`, `method`, …) as fields.
public struct JSONLogHandler: LogHandler {
    public var metadata: Logger.Metadata = [:]
    public var logLevel: Logger.Level = .info
    public var metadataProvider: Logger.MetadataProvider?
    private let label: String
    private let service: String
    private let replica: String?

    public init(label: String, service: String, replica: String? = nil) {
        self.label = label
        self.service = service
        self.replica = replica
    }

    public subscript(metadataKey key: String) -> Logger.Metadata.Value? {
        get { metadata[key] }
        set { metadata[key] = newValue }
    }

    public func log(event: LogEvent) {
        write(level: event.level, message: event.message, metadata: event.metadata, source: event.source)
    }

    public func log(
        level: Logger.Level, message: Logger.Message, metadata explicit: Logger.Metadata?, source: String,
        file: String, function: String, line: UInt
    ) {
        write(level: level, message: message, metadata: explicit, source: source)
    }

    private func write(level: Logger.Level, message: Logger.Message, metadata explicit: Logger.Metadata?, source: String) {
        var fields: [String: Any] = [:]
        for (key, value) in metadata { fields[key] = Self.plain(value) }
        if let provided = metadataProvider?.get() { for (key, value) in provided { fields[key] = Self.plain(value) } }
        if let explicit { for (key, value) in explicit { fields[key] = Self.plain(value) } }
        fields["ts"] = Date().formatted(.iso8601.year().month().day().time(includingFractionalSeconds: true))
        fields["level"] = level.rawValue
        fields["service"] = service
        if let replica { fields["replica"] = replica }
        fields["msg"] = message.description
        fields["source"] = source
        guard var data = try? JSONSerialization.data(withJSONObject: fields, options: [.sortedKeys, .withoutEscapingSlashes])
        else { return }
        data.append(UInt8(ascii: "\n"))
        FileHandle.standardError.write(data)
    }

    static func plain(_ value: Logger.Metadata.Value) -> Any {
        switch value {
        case .string(let string): string
        case .stringConvertible(let convertible): convertible.description
        case .array(let array): array.map(plain)
        case .dictionary(let dictionary): dictionary.mapValues(plain)
        }
    }
}

public enum LoggingSetup {
    /// Bootstraps swift-log once per process, for the given service.
    public static func bootstrap(service: String, format: LogFormat, level: Logger.Level, replica: String? = nil) {
        LoggingSystem.bootstrap { label in
            var handler: any LogHandler
            switch format {
            case .json: handler = JSONLogHandler(label: label, service: service, replica: replica)
            case .text: handler = StreamLogHandler.standardError(label: label)
            }
            handler.logLevel = level
            return handler
        }
    }
}
