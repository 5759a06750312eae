import Foundation

/// A record written out for `lymph dead-letters show`: members in the file's order, strings and
/// numbers exactly as written, except that signatures are cut.
extension DeadLetterRecord {
    /// How much of a signature `show` keeps (then "…").
    public static let signaturePrefix = 8
    static let signatureHeader = Array("x-immune-signature".utf8)

    /// The record as JSON, indented by two spaces (`pretty`) or on one line. Every
    /// `x-immune-signature` member's value keeps only its first 8 characters and "…"; in a
    /// `raw` line the same is done to the text that follows that header name, and a
    /// `raw_base64` holding such a line is cut too (it would hold the signature encoded).
    public func rendered(pretty: Bool) -> String {
        var out: [UInt8] = []
        out.reserveCapacity(document.bytes.count + 256)
        Self.write(document.root, key: nil, depth: 0, pretty: pretty, rawHasSignature: rawHasSignature, into: &out)
        return String(decoding: out, as: UTF8.self)
    }

    /// `{"file", "line", "resume_stage", "record"}` on one line, the record as `rendered`.
    public func json(file: String, line: Int) -> String {
        var out: [UInt8] = Array(#"{"file":"#.utf8)
        JSONStringEncoder.append(file, to: &out)
        out.append(contentsOf: #","line":\#(line),"resume_stage":"#.utf8)
        if let resumeStage { JSONStringEncoder.append(resumeStage, to: &out) } else { out.append(contentsOf: "null".utf8) }
        out.append(contentsOf: #","record":"#.utf8)
        out.append(contentsOf: rendered(pretty: false).utf8)
        out.append(UInt8(ascii: "}"))
        return String(decoding: out, as: UTF8.self)
    }

    /// Whether the raw line quotes a signature header (then `raw_base64` is cut as well).
    var rawHasSignature: Bool {
        guard let raw = document.root.member("raw")?.stringBytes else { return false }
        return Self.range(of: Self.signatureHeader, in: raw) != nil
    }

    private static func write(
        _ value: JSONValue, key: ArraySlice<UInt8>?, depth: Int, pretty: Bool, rawHasSignature: Bool,
        into out: inout [UInt8]
    ) {
        func newline(_ level: Int) {
            guard pretty else { return }
            out.append(0x0A)
            out.append(contentsOf: repeatElement(0x20, count: 2 * level))
        }
        switch value.kind {
        case .object:
            var first = true
            out.append(UInt8(ascii: "{"))
            for (k, v) in value.members! {
                if !first { out.append(UInt8(ascii: ",")) }
                first = false
                newline(depth + 1)
                out.append(contentsOf: k.rawBytes)
                out.append(contentsOf: pretty ? Array(": ".utf8) : [UInt8(ascii: ":")])
                write(v, key: k.stringBytes, depth: depth + 1, pretty: pretty, rawHasSignature: rawHasSignature, into: &out)
            }
            if !first { newline(depth) }
            out.append(UInt8(ascii: "}"))
        case .array:
            var first = true
            out.append(UInt8(ascii: "["))
            for v in value.elements! {
                if !first { out.append(UInt8(ascii: ",")) }
                first = false
                newline(depth + 1)
                write(v, key: nil, depth: depth + 1, pretty: pretty, rawHasSignature: rawHasSignature, into: &out)
            }
            if !first { newline(depth) }
            out.append(UInt8(ascii: "]"))
        case .string:
            guard let key, let text = value.stringBytes else {
                out.append(contentsOf: value.rawBytes)
                return
            }
            if equalIgnoringCase(key, signatureHeader) {
                JSONStringEncoder.append(cutSignature(text), to: &out)
            } else if depth == 1 && key.elementsEqual("raw".utf8) {
                JSONStringEncoder.append(redactSignatures(in: text), to: &out)
            } else if depth == 1 && key.elementsEqual("raw_base64".utf8) && rawHasSignature {
                JSONStringEncoder.append(Array(text.prefix(signaturePrefix)) + Array("…".utf8), to: &out)
            } else {
                out.append(contentsOf: value.rawBytes)
            }
        default:
            out.append(contentsOf: value.rawBytes)
        }
    }

    /// The first 8 characters (not bytes) and "…"; a value that short is shown whole.
    static func cutSignature(_ value: some Collection<UInt8>) -> [UInt8] {
        let text = String(decoding: value, as: UTF8.self)
        guard text.count > signaturePrefix else { return Array(text.utf8) }
        return Array((text.prefix(signaturePrefix) + "…").utf8)
    }

    /// In a line of text (a raw item that may be a delivery's JSON), the value after each
    /// `x-immune-signature` (and its closing quote, colon and opening quote) is cut.
    static func redactSignatures(in text: ArraySlice<UInt8>) -> [UInt8] {
        var out: [UInt8] = []
        out.reserveCapacity(text.count)
        var rest = text
        while let found = range(of: signatureHeader, in: rest) {
            out.append(contentsOf: rest[rest.startIndex..<found.upperBound])
            var i = found.upperBound
            // `"` `:` blanks and `"`, or `:` and blanks (a header line): then the value.
            while i < rest.endIndex, [UInt8(ascii: "\""), UInt8(ascii: "\\"), UInt8(ascii: ":"), 0x20, 0x09].contains(rest[i]) { i += 1 }
            out.append(contentsOf: rest[found.upperBound..<i])
            var end = i
            while end < rest.endIndex, ![UInt8(ascii: "\""), UInt8(ascii: "\\"), 0x20, 0x09, 0x0A, 0x0D].contains(rest[end]) { end += 1 }
            out.append(contentsOf: cutSignature(rest[i..<end]))
            rest = rest[end...]
        }
        out.append(contentsOf: rest)
        return out
    }

    /// Where `needle` (lowercase ASCII) first occurs in `haystack`, ignoring ASCII case.
    static func range(of needle: [UInt8], in haystack: ArraySlice<UInt8>) -> Range<Int>? {
        guard haystack.count >= needle.count else { return nil }
        var i = haystack.startIndex
        while i <= haystack.endIndex - needle.count {
            if equalIgnoringCase(haystack[i..<(i + needle.count)], needle) { return i..<(i + needle.count) }
            i += 1
        }
        return nil
    }

    static func equalIgnoringCase(_ a: some Collection<UInt8>, _ lowercase: [UInt8]) -> Bool {
        a.count == lowercase.count
            && zip(a, lowercase).allSatisfy { x, y in
                (x >= 0x41 && x <= 0x5A ? x | 0x20 : x) == y
            }
    }
}
