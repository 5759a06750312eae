/// A problem in a pipeline file, with its position: `FILE:LINE:COLUMN: message`.
public struct ConfigDiagnostic: Sendable, Equatable, CustomStringConvertible {
    /// An error keeps the pipeline from loading; a warning is reported and the pipeline still
    /// loads; a note says something worth knowing that is not a mistake (`lymph check --strict`
    /// does not count it).
    public enum Severity: Sendable, Equatable { case error, warning, note }

    /// The pipeline file's path, as it was given.
    public var file: String
    /// The line of the offending node, counted from 1.
    public var line: Int
    /// The column of the offending node, counted from 1.
    public var column: Int
    /// What is wrong, in one line.
    public var message: String
    /// Whether this problem keeps the pipeline from loading.
    public var severity: Severity

    /// A problem at `file:line:column`; an error unless `severity` says otherwise.
    public init(file: String, line: Int, column: Int, message: String, severity: Severity = .error) {
        self.file = file
        self.line = line
        self.column = column
        self.message = message
        self.severity = severity
    }

    /// `FILE:LINE:COLUMN: message`, with `warning: ` or `note: ` before the message.
    public var description: String {
        let label =
            switch severity {
            case .error: ""
            case .warning: "warning: "
            case .note: "note: "
            }
        return "\(file):\(line):\(column): \(label)\(message)"
    }
}

/// The problems found while reading a pipeline file; reading goes on after each one so that
/// `lymph check` can report them all at once.
public struct ConfigDiagnostics: Sendable {
    /// The pipeline file's path, put into every diagnostic.
    public let file: String
    /// The problems in the order they were found; past `maxItems`, one more says the rest were left
    /// out.
    public private(set) var items: [ConfigDiagnostic] = []

    /// No problems yet, for the pipeline file at `file`.
    public init(file: String) { self.file = file }

    /// The problems that keep the pipeline from loading.
    public var errors: [ConfigDiagnostic] { items.filter { $0.severity == .error } }
    /// Whether any problem keeps the pipeline from loading.
    public var hasErrors: Bool { items.contains { $0.severity == .error } }

    /// Records an error at `value`'s position.
    mutating func error(_ message: String, at value: ConfigValue) {
        add(message, line: value.line, column: value.column, severity: .error)
    }

    /// Records a warning at `value`'s position; a warning does not keep the pipeline from loading.
    mutating func warning(_ message: String, at value: ConfigValue) {
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
    /// The errors, in the order they were found.
    public let diagnostics: [ConfigDiagnostic]
    /// Every diagnostic, one line each.
    public var description: String { diagnostics.map(\.description).joined(separator: "\n") }
}
