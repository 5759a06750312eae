import Foundation
import Yams

/// A JSON value as a test file writes it (YAML) or a test run produced it (JSON): what
/// `lymph test` feeds in, expects and compares.
///
/// Objects keep their keys in the order written, so what is printed reads like what was given.
/// Numbers compare by value (`0.90` equals `0.9`), keeping their text for printing.
public indirect enum TestValue: Sendable, Equatable, CustomStringConvertible {
    case null
    case bool(Bool)
    case number(Double, text: String)
    case string(String)
    case array([TestValue])
    case object([Member])

    /// One key and its value, in an object.
    public struct Member: Sendable, Equatable {
        public var key: String
        public var value: TestValue
        public init(_ key: String, _ value: TestValue) {
            self.key = key
            self.value = value
        }

        /// Keys byte for byte (see `sameText`).
        public static func == (a: Member, b: Member) -> Bool { sameText(a.key, b.key) && a.value == b.value }
    }

    /// Text compared byte for byte, as Lymph compares ids and keys: Swift's `==` takes two
    /// spellings of one character (`é` composed, or `e` and a combining accent) as equal, and a
    /// test would pass on output the pipeline did not make.
    public static func sameText(_ a: String, _ b: String) -> Bool { a.utf8.elementsEqual(b.utf8) }

    /// Numbers by value (two integers exactly, by their digits: as doubles, 2^53 and 2^53 + 1
    /// would be one value, and an id or a count that large compared wrong); everything else by
    /// structure, object members in order.
    public static func == (a: TestValue, b: TestValue) -> Bool {
        switch (a, b) {
        case (.null, .null): return true
        case (.bool(let x), .bool(let y)): return x == y
        case (.number(let x, let xText), .number(let y, let yText)):
            if let i = NumberText.integerDigits(xText), let j = NumberText.integerDigits(yText) { return i == j }
            return x == y
        case (.string(let x), .string(let y)): return sameText(x, y)
        case (.array(let x), .array(let y)): return x == y
        case (.object(let x), .object(let y)): return x == y
        default: return false
        }
    }

    /// The member `key` of an object; nil for anything else or a missing key.
    public subscript(key: String) -> TestValue? {
        guard case .object(let members) = self else { return nil }
        return members.first { Self.sameText($0.key, key) }?.value
    }

    /// The string, for a string.
    public var string: String? {
        if case .string(let s) = self { return s }
        return nil
    }

    /// `a mapping`, `a list`, `a string`...: for messages.
    public var kindName: String {
        switch self {
        case .null: return "null"
        case .bool: return "a boolean"
        case .number: return "a number"
        case .string: return "a string"
        case .array: return "a list"
        case .object: return "a mapping"
        }
    }

    /// Compact JSON, keys in their order.
    public var json: String {
        var out = ""
        encode(into: &out)
        return out
    }

    /// Compact JSON: how values are printed in results and diffs.
    public var description: String { json }

    func encode(into out: inout String) {
        switch self {
        case .null: out += "null"
        case .bool(let b): out += b ? "true" : "false"
        case .number(_, let text): out += text
        case .string(let s): out += Self.quoted(s)
        case .array(let items):
            out += "["
            for (n, item) in items.enumerated() {
                if n > 0 { out += "," }
                item.encode(into: &out)
            }
            out += "]"
        case .object(let members):
            out += "{"
            for (n, member) in members.enumerated() {
                if n > 0 { out += "," }
                out += Self.quoted(member.key) + ":"
                member.value.encode(into: &out)
            }
            out += "}"
        }
    }

    static func quoted(_ s: String) -> String {
        var bytes: [UInt8] = []
        JSONStringEncoder.append(s, to: &bytes)
        return String(decoding: bytes, as: UTF8.self)
    }

    /// The value of a JSON document's node.
    init(_ value: JSONValue) {
        switch value.kind {
        case .null: self = .null
        case .true: self = .bool(true)
        case .false: self = .bool(false)
        case .number: self = .number(value.double ?? 0, text: String(decoding: value.rawBytes, as: UTF8.self))
        case .string: self = .string(value.string ?? "")
        case .array: self = .array(value.elements.map { $0.map(TestValue.init) } ?? [])
        case .object:
            self = .object(value.members.map { $0.map { Member($0.key.string ?? "", TestValue($0.value)) } } ?? [])
        }
    }

    /// The value of JSON text; nil when it is not valid JSON.
    public init?(json bytes: some Collection<UInt8>) {
        guard let document = try? JSONDocument(parsing: Array(bytes)) else { return nil }
        self.init(document.root)
    }

    /// Whether `text` is a JSON number as YAML may write one (`3`, `-0.5`, `1e3`); anything else
    /// plain is text. Read by the project's JSON parser (a regular expression would load ICU);
    /// JSON allows whitespace around a value, which a plain YAML scalar never has.
    static func isJSONNumber(_ text: String) -> Bool {
        let bytes = Array(text.utf8)
        let space: Set<UInt8> = [0x20, 0x09, 0x0A, 0x0D]
        guard let first = bytes.first, let last = bytes.last, !space.contains(first), !space.contains(last) else { return false }
        return (try? JSONDocument(parsing: bytes))?.root.kind == .number
    }

    /// The value of a plain (unquoted) YAML scalar: `null`/`~`/nothing, `true`/`false`, a JSON
    /// number, else the text. A timestamp stays a string, as JSON has none.
    static func plainScalar(_ text: String) -> TestValue {
        switch text {
        case "", "~", "null", "Null", "NULL": return .null
        case "true", "True", "TRUE": return .bool(true)
        case "false", "False", "FALSE": return .bool(false)
        default: break
        }
        if isJSONNumber(text), let d = Double(text), d.isFinite {
            return .number(d, text: text)
        }
        return .string(text)
    }

    /// The value of a YAML document; nil when it does not parse, is empty, or expands past the
    /// pipeline loader's alias bound.
    public init?(yaml text: String) {
        guard YAMLAliasBound.firstExcess(in: text, limit: PipelineLoader.maxExpandedNodes, byteLimit: PipelineLoader.maxExpandedBytes) == nil,
            let node = try? PipelineLoader.compose(text)
        else { return nil }
        self.init(yaml: node)
    }

    /// The value of a YAML node: quoted scalars are strings, plain ones as `plainScalar` reads them.
    init(yaml node: Node) {
        switch node {
        case .scalar(let s):
            self = s.style == .plain ? Self.plainScalar(s.string) : .string(s.string)
        case .sequence(let seq):
            self = .array(seq.map { TestValue(yaml: $0) })
        case .mapping(let mapping):
            self = .object(mapping.map { Member($0.key.scalar?.string ?? "", TestValue(yaml: $0.value)) })
        case .alias:
            self = .null
        }
    }
}
