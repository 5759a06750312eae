/// A problem in a pipeline file, with its position: `FILE:LINE:COLUMN: message`.
public struct ConfigDiagnostic: Sendable, Equatable, CustomStringConvertible {
    public enum Severity: Sendable, Equatable { case error, warning }

    public var file: String
    public var line: Int
    public var column: Int
    public var message: String
    public var severity: Severity

    public init(file: String, line: Int, column: Int, message: String, severity: Severity = .error) {
        self.file = file
        self.line = line
        self.column = column
        self.message = message
        self.severity = severity
    }

    public var description: String {
        "\(file):\(line):\(column): \(severity == .warning ? "warning: " : "")\(message)"
    }
}

/// The problems found while reading a pipeline file; reading goes on after each one so that
/// `lymph check` can report them all at once.
public struct ConfigDiagnostics: Sendable {
    public let file: String
    public private(set) var items: [ConfigDiagnostic] = []

    public init(file: String) { self.file = file }

    public var errors: [ConfigDiagnostic] { items.filter { $0.severity == .error } }
    public var hasErrors: Bool { items.contains { $0.severity == .error } }

    public mutating func error(_ message: String, at value: ConfigValue) {
        add(message, line: value.line, column: value.column, severity: .error)
    }

    public mutating func warning(_ message: String, at value: ConfigValue) {
        add(message, line: value.line, column: value.column, severity: .warning)
    }

    /// Past this many, one more line says the rest were left out: a generated or pasted file
    /// can hold tens of thousands of bad keys.
    static let maxItems = 100

    mutating func add(_ message: String, line: Int, column: Int, severity: ConfigDiagnostic.Severity = .error) {
        if items.count == Self.maxItems {
            items.append(ConfigDiagnostic(file: file, line: line, column: column, message: "too many problems; the rest are not listed", severity: .error))
        }
        guard items.count < Self.maxItems else { return }
        items.append(ConfigDiagnostic(file: file, line: line, column: column, message: message, severity: severity))
    }
}

/// A pipeline file with errors; `description` lists every one, a line each.
public struct PipelineFileError: Error, Sendable, CustomStringConvertible {
    public let diagnostics: [ConfigDiagnostic]
    public var description: String { diagnostics.map(\.description).joined(separator: "\n") }
}
