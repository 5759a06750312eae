/// An http stage's body template: JSON with `{path}` placeholders for the event's values, and
/// `{env:NAME}` and `{file:PATH}` for secrets read when the stage is built (an API key in the
/// body). A `{` starts a placeholder only when a path or reference follows it directly, up to
/// the next `}`; every other brace is the JSON's own (`{{` is a literal `{` where one would be
/// taken for a placeholder).
///
/// Every value is written JSON-escaped, as the contents of a string (a string's text, any other
/// value's JSON), so an event's field can never end a string, break the body or add keys: write
/// placeholders inside quotes. A missing value is empty.
public struct HTTPBodyTemplate: Sendable {
    enum Part: Sendable {
        case literal([UInt8])
        case path(JSONPath)
        case reference(SecretReference)
    }

    let parts: [Part]

    /// Parses a template; throws on a placeholder that is neither a path nor a reference, or a
    /// template that is not JSON once each placeholder holds a value.
    public init(parsing text: String) throws(JSONPath.ParseError) {
        var parts: [Part] = []
        var literal: [UInt8] = []
        var chars = Array(text.utf8)[...]
        while let c = chars.popFirst() {
            guard c == UInt8(ascii: "{") else {
                literal.append(c)
                continue
            }
            if chars.first == UInt8(ascii: "{") {
                chars.removeFirst()
                literal.append(c)
                continue
            }
            let close = chars.firstIndex(of: UInt8(ascii: "}"))
            let name = close.map { chars[chars.startIndex..<$0] } ?? []
            // JSON's own brace: `{"key": ...}`, `{ }`.
            guard let close, !name.isEmpty, !name.contains(where: Self.endsPlaceholder) else {
                literal.append(c)
                continue
            }
            let text = String(decoding: name, as: UTF8.self)
            if !literal.isEmpty {
                parts.append(.literal(literal))
                literal = []
            }
            if let reference = SecretReference(text) {
                if let problem = reference.problem { throw JSONPath.ParseError(description: "placeholder {\(text.cutForMessage())}: \(problem)") }
                parts.append(.reference(reference))
            } else {
                parts.append(.path(try JSONPath(parsing: text)))
            }
            chars = chars[(close + 1)...]
        }
        if !literal.isEmpty { parts.append(.literal(literal)) }
        self.parts = parts
        // Each placeholder as a plain word: what is left must be JSON.
        var sample: [UInt8] = []
        for part in parts {
            if case .literal(let bytes) = part { sample += bytes } else { sample.append(UInt8(ascii: "0")) }
        }
        if (try? JSONParser.validate(sample[...])) == nil {
            throw JSONPath.ParseError(description: "the template is not JSON (placeholders go inside quotes: \"{data.ticket_id}\")")
        }
    }

    /// Bytes that cannot be in a placeholder: a brace with one of these after it is JSON's.
    private static func endsPlaceholder(_ b: UInt8) -> Bool {
        b == UInt8(ascii: "\"") || b == UInt8(ascii: "{") || b == UInt8(ascii: ",") || b == 0x20 || b == 0x09 || b == 0x0A || b == 0x0D
    }

    private init(parts: [Part]) { self.parts = parts }

    /// The references among the placeholders.
    var references: [SecretReference] {
        parts.compactMap {
            if case .reference(let r) = $0 { return r }
            return nil
        }
    }

    /// The template with each reference's value in its place, JSON-escaped.
    func resolved(environment: [String: String]) throws -> HTTPBodyTemplate {
        var out: [Part] = []
        for part in parts {
            guard case .reference(let reference) = part else {
                out.append(part)
                continue
            }
            var bytes: [UInt8] = []
            let value = try reference.resolve(environment: environment)
            value.withUnsafeBufferPointer { _ = JSONStringEncoder.appendContents($0, to: &bytes) }
            out.append(.literal(bytes))
        }
        return HTTPBodyTemplate(parts: out)
    }

    /// The body for `event`.
    func render(_ event: Event) -> [UInt8] {
        var out: [UInt8] = []
        for part in parts {
            switch part {
            case .literal(let bytes):
                out.append(contentsOf: bytes)
            case .path(let path):
                guard let v = event.value(at: path) else { continue }
                Array(v.stringBytes ?? v.rawBytes).withUnsafeBufferPointer { _ = JSONStringEncoder.appendContents($0, to: &out) }
            case .reference:
                break  // resolved when the stage is built
            }
        }
        return out
    }
}
