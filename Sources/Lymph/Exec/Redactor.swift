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

    /// Parts of a secret shorter than this are not searched for alone.
    static let minimumPartLength = 12

    /// A secret sent in a request, and the parts of it a receiver's answer may repeat alone: the
    /// words of a header's value (the token of `Bearer <token>`), and of a URL its path and
    /// query, and their segments (a chat webhook's URL is secret by its path). Longest first, so
    /// a part inside a longer secret does not break it up before it is found.
    static func sentParts(of secret: String) -> [String] {
        var parts = [secret]
        if let scheme = secret.range(of: "://"), let slash = secret[scheme.upperBound...].firstIndex(where: { $0 == "/" || $0 == "?" }) {
            parts.append(String(secret[slash...]))
        }
        let separators: Set<Character> = [" ", "\t", "/", "?", "&", "=", "#", ":", ","]
        parts += secret.split(whereSeparator: { separators.contains($0) }).map(String.init).filter { $0.count >= minimumPartLength }
        return parts
    }

    /// A redactor of these secrets and their parts (`sentParts`).
    static func sent(_ secrets: [String]) -> Redactor {
        var seen = Set<String>()
        let all = secrets.flatMap(sentParts).filter { seen.insert($0).inserted }
        return Redactor(all.sorted { $0.count > $1.count })
    }
}
