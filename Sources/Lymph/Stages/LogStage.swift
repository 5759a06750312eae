import Foundation

/// Appends each event to a file (or stdout/stderr) as a JSON line or a line from a template,
/// and passes it on. Lines are written once per batch, in event order.
public struct LogStage: Stage {
    /// How each event becomes a line.
    public enum Format: Sendable {
        case json
        case text(LogTemplate)
    }

    let sink: FileSink
    let format: Format
    let fsync: Bool

    /// A stage appending to `sink`; with `fsync`, each batch's lines are synced to disk before it
    /// goes on.
    public init(sink: FileSink, format: Format, fsync: Bool) {
        self.sink = sink
        self.format = format
        self.fsync = fsync
    }

    /// False: lines are written in event order, batch after batch.
    public var runsConcurrently: Bool { false }

    /// Writes the batch's lines in one write, syncs when asked, and passes every event on.
    public func process(_ events: [Event], context: StageContext) async throws -> [StageOutcome] {
        var out: [UInt8] = []
        out.reserveCapacity(events.count * 256)
        for event in events {
            switch format {
            case .json:
                appendWithoutLineBreaks(event.document.bytes, to: &out)
            case .text(let template):
                template.render(event, into: &out)
            }
            out.append(0x0A)
        }
        try sink.write(out)
        if fsync { try sink.sync() }
        return [StageOutcome](repeating: .pass, count: events.count)
    }
}

/// `"{created_at} {type} {data.equipment_id}"`: each `{path}` is replaced by the value there
/// (strings without quotes, other values as JSON; missing values are empty). `{{` and `}}`
/// stand for literal braces.
public struct LogTemplate: Sendable {
    enum Part: Sendable {
        case literal([UInt8])
        case path(JSONPath)
    }

    let parts: [Part]

    /// Parses a template: `{path}` for a value, `{{` and `}}` for literal braces; throws on a `{`
    /// without its `}` or an invalid path.
    public init(parsing text: String) throws(JSONPath.ParseError) {
        var parts: [Part] = []
        var literal: [UInt8] = []
        var chars = Array(text.utf8)[...]
        while let c = chars.popFirst() {
            if c == UInt8(ascii: "{") {
                if chars.first == UInt8(ascii: "{") {
                    chars.removeFirst()
                    literal.append(c)
                    continue
                }
                guard let close = chars.firstIndex(of: UInt8(ascii: "}")) else {
                    throw JSONPath.ParseError(description: "template has a '{' without a closing '}'")
                }
                let name = String(decoding: chars[chars.startIndex..<close], as: UTF8.self).trimmingCharacters(in: .whitespaces)
                if !literal.isEmpty { parts.append(.literal(literal)); literal = [] }
                parts.append(.path(try JSONPath(parsing: name)))
                chars = chars[(close + 1)...]
            } else if c == UInt8(ascii: "}") && chars.first == UInt8(ascii: "}") {
                chars.removeFirst()
                literal.append(c)
            } else {
                literal.append(c)
            }
        }
        if !literal.isEmpty { parts.append(.literal(literal)) }
        self.parts = parts
    }

    func render(_ event: Event, into out: inout [UInt8]) {
        for part in parts {
            switch part {
            case .literal(let bytes):
                out.append(contentsOf: bytes)
            case .path(let path):
                guard let v = event.value(at: path) else { continue }
                if let s = v.stringBytes {
                    // A text log is one line per event: control characters become spaces.
                    for b in s { out.append(b < 0x20 ? 0x20 : b) }
                } else {
                    appendWithoutLineBreaks(v.rawBytes, to: &out)
                }
            }
        }
    }
}
