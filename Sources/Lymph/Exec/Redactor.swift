import Foundation

/// Replaces secret values (the stage's `env:`/`file:` references) in anything a plugin wrote
/// before it reaches a log line or a dead letter.
struct Redactor: Sendable {
    let secrets: [String]

    /// Secrets shorter than this are not searched for: they would blank out ordinary words.
    static let minimumLength = 4

    init(_ secrets: [String]) {
        var seen = Set<String>()
        let all = secrets.flatMap(Self.forms).filter { $0.count >= Self.minimumLength && seen.insert($0).inserted }
        // Longest first: a form inside a longer one (a line of a key) must not break it up first.
        self.secrets = all.sorted { $0.utf8.count > $1.utf8.count }
    }

    /// How a secret may show in text: as it is; without the line break a file or a variable
    /// ends with; each of its lines alone (text is often redacted line by line: a PEM key is
    /// several); and escaped as in a JSON string, or as Swift shows it in an error (a quote, a
    /// backslash or a line break written `\"`, `\\`, `\n`).
    static func forms(of secret: String) -> [String] {
        let trimmed = secret.trimmingCharacters(in: .whitespacesAndNewlines)
        var forms = [secret, trimmed]
        for whole in [secret, trimmed] {
            var escaped: [UInt8] = []
            JSONStringEncoder.append(whole, to: &escaped)
            forms.append(String(decoding: escaped.dropFirst().dropLast(), as: UTF8.self))
        }
        let lines = trimmed.split(whereSeparator: \.isNewline).map { $0.trimmingCharacters(in: .whitespaces) }
        if lines.count > 1 {
            // A file of several lines: each long line alone, and the long words of each (the
            // value of `token: VALUE`, printed as `token=VALUE`). Short lines (`kind: Config`)
            // are ordinary words, not secrets.
            for line in lines where line.count >= minimumLineLength { forms += sentParts(of: line) }
        }
        return forms
    }

    /// Lines of a secret of several lines shorter than this are not searched for alone.
    static let minimumLineLength = 16

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
