import Foundation
import Logging
import Lymph

/// Lymph's log goes to stderr (stdout may carry events), as text or one JSON object per line.
/// The level comes from `--log-level`, else `LYMPH_LOG_LEVEL`, else info.
enum LogSetup {
    enum Format: String, CaseIterable { case text, json }

    /// Bootstraps from the command line before parsing (logging is set once per process, and
    /// libraries may log while the command is set up). Bad values are reported by the parser.
    static func bootstrap(arguments: [String] = CommandLine.arguments, environment: [String: String] = ProcessInfo.processInfo.environment) {
        func value(_ flag: String) -> String? {
            for (i, a) in arguments.enumerated() {
                if a == flag, i + 1 < arguments.count { return arguments[i + 1] }
                if a.hasPrefix(flag + "=") { return String(a.dropFirst(flag.count + 1)) }
            }
            return nil
        }
        let level = (value("--log-level") ?? environment["LYMPH_LOG_LEVEL"]).flatMap { Logger.Level(rawValue: $0.lowercased()) } ?? .info
        let format = value("--log-format").flatMap(Format.init(rawValue:)) ?? .text
        LoggingSystem.bootstrap { label in
            switch format {
            case .text:
                return TextLogHandler(label: label, level: level)
            case .json:
                return JSONLogHandler(label: label, level: level)
            }
        }
    }
}

/// swift-log's text handler, with metadata kept as set and rendered only when a line is
/// logged. StreamLogHandler renders its metadata string on every change, and Hummingbird sets a
/// request id on each request's logger: the server's loop would render a string per request
/// even at notice level, where nothing is logged.
struct TextLogHandler: LogHandler {
    var stream: StreamLogHandler
    var metadata: Logger.Metadata = [:]

    init(label: String, level: Logger.Level) {
        stream = StreamLogHandler.standardError(label: label)
        stream.logLevel = level
    }

    var logLevel: Logger.Level {
        get { stream.logLevel }
        set { stream.logLevel = newValue }
    }

    subscript(metadataKey key: String) -> Logger.Metadata.Value? {
        get { metadata[key] }
        set { metadata[key] = newValue }
    }

    func log(event: LogEvent) {
        var stream = self.stream
        var event = event
        // What a log line quotes may come from outside (an event's id, a plugin's stderr): a line
        // break in it would start a forged line, an escape sequence would drive the terminal.
        let message = event.message.description
        if Self.needsEscaping(message) { event.message = Logger.Message(stringLiteral: Self.escaped(message)) }
        stream.metadata = Self.escaped(metadata)
        event.metadata = event.metadata.map(Self.escaped)
        stream.log(event: event)
    }

    static func needsEscaping(_ text: String) -> Bool {
        text.unicodeScalars.contains { ($0.properties.generalCategory == .control && $0 != "\t") || $0.properties.isBidiControl }
    }

    /// Control characters (a tab aside) and bidirectional controls written as Swift escapes.
    static func escaped(_ text: String) -> String {
        var out = ""
        for scalar in text.unicodeScalars {
            switch scalar {
            case "\n": out += "\\n"
            case "\r": out += "\\r"
            case "\t": out += "\t"
            case _ where scalar.properties.generalCategory == .control || scalar.properties.isBidiControl:
                out += "\\u{\(String(scalar.value, radix: 16, uppercase: true))}"
            default: out.unicodeScalars.append(scalar)
            }
        }
        return out
    }

    static func escaped(_ metadata: Logger.Metadata) -> Logger.Metadata {
        guard metadata.values.contains(where: { needsEscaping($0.description) }) else { return metadata }
        return metadata.mapValues { needsEscaping($0.description) ? .string(escaped($0.description)) : $0 }
    }
}

/// One JSON object per line on stderr, written with a single write(2) so lines from several
/// threads never interleave: `{"ts":"…","level":"info","label":"…","msg":"…", metadata…}`.
struct JSONLogHandler: LogHandler {
    let label: String
    var logLevel: Logger.Level
    var metadata: Logger.Metadata = [:]

    init(label: String, level: Logger.Level) {
        self.label = label
        self.logLevel = level
    }

    subscript(metadataKey key: String) -> Logger.Metadata.Value? {
        get { metadata[key] }
        set { metadata[key] = newValue }
    }

    func log(event: LogEvent) {
        var merged = metadata
        if let extra = event.metadata { merged.merge(extra) { _, new in new } }
        var line = "{\"ts\":\(Self.quote(Timestamp.format(Timestamp.now())))"
        line += ",\"level\":\"\(event.level.rawValue)\",\"label\":\(Self.quote(label)),\"msg\":\(Self.quote(event.message.description))"
        for (key, value) in merged.sorted(by: { $0.key < $1.key }) {
            line += ",\(Self.quote(key)):\(Self.quote(value.description))"
        }
        line += "}\n"
        _ = Console.write(line, to: 2)
    }

    static func quote(_ s: String) -> String {
        var out = "\""
        for scalar in s.unicodeScalars {
            switch scalar {
            case "\"": out += "\\\""
            case "\\": out += "\\\\"
            case "\n": out += "\\n"
            case "\r": out += "\\r"
            case "\t": out += "\\t"
            case _ where scalar.value < 0x20: out += String(format: "\\u%04x", scalar.value)
            default: out.unicodeScalars.append(scalar)
            }
        }
        return out + "\""
    }
}
