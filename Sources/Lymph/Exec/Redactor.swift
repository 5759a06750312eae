/// Replaces secret values (the stage's `env:`/`file:` references) in anything a plugin wrote
/// before it reaches a log line or a dead letter.
struct Redactor: Sendable {
    let secrets: [String]

    /// Secrets shorter than this are not searched for: they would blank out ordinary words.
    static let minimumLength = 4

    init(_ secrets: [String]) {
        self.secrets = secrets.filter { $0.count >= Self.minimumLength }
    }

    func callAsFunction(_ text: String) -> String {
        guard !secrets.isEmpty else { return text }
        return secrets.reduce(text) { $0.replacingOccurrences(of: $1, with: "[redacted]") }
    }

    /// The longest secret, in bytes: a line is redacted before being cut, with this much slack.
    var longest: Int { secrets.map(\.utf8.count).max() ?? 0 }
}
