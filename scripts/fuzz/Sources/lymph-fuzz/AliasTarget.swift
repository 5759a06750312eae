import Foundation
@testable import Lymph

extension FuzzTargets {
    /// LYMPH_FUZZ_SHOW=1: write each generated pipeline and what it gave to stderr (to see what an input means).
    static let showText = ProcessInfo.processInfo.environment["LYMPH_FUZZ_SHOW"] == "1"

    /// Pipeline files built around YAML anchors and aliases (see `AliasPipeline` for how the
    /// input's bytes become one): `PipelineLoader.parse` (what `lymph check` runs) gives a spec
    /// or diagnostics within 1 second, however the aliases nest and wherever they are used. An
    /// alias bomb (nine levels of `&aN [*aN-1, *aN-1]` under a filter's `any:`) must be refused,
    /// not expanded.
    static func yamlAlias(_ bytes: [UInt8]) {
        let text = AliasPipeline(bytes).text
        // A larger file is refused by `PipelineLoader.load` before it is parsed.
        guard text.utf8.count <= PipelineLoader.maxFileBytes else { return }
        if showText { FileHandle.standardError.write(Data("---\n\(text)\n".utf8)) }
        timed(.seconds(1), "PipelineLoader.parse of an alias-heavy file (\(text.utf8.count) bytes: \(text.prefix(600).debugDescription))", bytes) {
            let (spec, diagnostics) = PipelineLoader.parse(yaml: text, file: "fuzz-alias.yaml")
            // `lymph check` prints them, so they are part of the cost.
            let shown = diagnostics.items.map { "\($0)" }
            _ = spec?.stages.count
            if showText {
                FileHandle.standardError.write(Data("=> \(spec == nil ? "no spec" : "a spec"), \(shown.count) diagnostics: \(shown.prefix(3))\n".utf8))
            }
        }
    }
}

/// A pipeline text with a chain of anchors, each level aliasing the one before it, and uses of
/// the last one in the places a pipeline holds nested options. The first four input bytes are
/// the shape, the rest is free text:
///
/// - byte 0: depth, 1...12 levels of anchors (`&a0` ... `&a11`);
/// - byte 1: low four bits the fan-out, 1...6 aliases of the level below in each level; high
///   four bits n: the leaf is the free text repeated 2^n times (within the loader's 1 MiB file
///   limit), so one byte makes a long scalar that every use repeats;
/// - byte 2: where the last anchor is used, one bit a place (filter `any:`/`all:`/`not:`, a
///   field's `in:` and value, `types:`, a log stage's `when:` and template, a whole stage's
///   options, a stage itself and top-level keys); none set means the first;
/// - byte 3: bits 0-1 the levels' kind (sequence, condition, mapping, merge key `<<`); bits 2-3
///   where the anchors are defined (a top-level key, the first filter's `any:` list, an unknown
///   option of the first filter, a log stage's `when: {match: {any:}}`); bit 4 every other
///   alias skips a level; bits 5-6 the free text's part (a quoted leaf, a raw leaf, a quoted
///   leaf and raw lines appended at the end, a field name); bit 7 block style for the levels;
/// - the rest: the free text. As a leaf it is anchored once (`&s`) and aliased everywhere else,
///   so a long one is counted once in the file and once per use in the expanded tree.
struct AliasPipeline {
    let text: String

    init(_ bytes: [UInt8]) {
        let shape = Array(bytes.prefix(4)) + [UInt8](repeating: 0, count: max(0, 4 - bytes.count))
        let depth = 1 + Int(shape[0] % 12)
        let fanOut = 1 + Int(shape[1] & 0x0F) % 6
        let repeats = 1 << Int(shape[1] >> 4)
        let places = shape[2] == 0 ? 1 : shape[2]
        let kind = Int(shape[3] & 3)
        let location = Int(shape[3] >> 2 & 3)
        let skip = shape[3] & 0x10 != 0
        let textMode = Int(shape[3] >> 5 & 3)
        let block = shape[3] & 0x80 != 0
        let free = String(decoding: bytes.dropFirst(4), as: UTF8.self)

        // The leaf as written, repeated within the loader's file limit (`load` refuses a larger
        // file before parsing it); escaping is per scalar, so repeating the escaped text is
        // escaping the repeated text.
        let written = textMode == 1 ? (free.isEmpty ? "x" : free) : Self.escaped(free)
        let fits = max(1, (PipelineLoader.maxFileBytes - 65536) / max(1, written.utf8.count))
        let long = String(repeating: written, count: min(repeats, fits))
        let leaf = textMode == 1 ? long : "\"\(long)\""
        let field = textMode == 3 ? Self.quoted("data.\(free)") : "data.v"

        // Level i: "&ai <node>" whose children alias level i-1 (or i-2 when skipping).
        func aliases(_ i: Int) -> [String] {
            (0..<fanOut).map { j in "*a\(skip && j % 2 == 1 && i >= 2 ? i - 2 : i - 1)" }
        }
        // One level as a list item at `indent`, flow style or block style.
        func level(_ i: Int, indent: String) -> String {
            let children = i == 0 ? ["&s \(leaf)"] + Array(repeating: "*s", count: fanOut - 1) : aliases(i)
            switch kind {
            case 0:
                if block { return "\(indent)- &a\(i)\n" + children.map { "\(indent)  - \($0)\n" }.joined() }
                return "\(indent)- &a\(i) [\(children.joined(separator: ", "))]\n"
            case 1:
                if i == 0 {
                    if block { return "\(indent)- &a0\n\(indent)  \(field):\n\(indent)    in:\n" + children.map { "\(indent)      - \($0)\n" }.joined() }
                    return "\(indent)- &a0 {\(field): {in: [\(children.joined(separator: ", "))]}}\n"
                }
                let combinator = fanOut == 1 && i % 3 == 0 ? "not" : (i % 2 == 0 ? "all" : "any")
                if combinator == "not" {
                    if block { return "\(indent)- &a\(i)\n\(indent)  not: \(children[0])\n" }
                    return "\(indent)- &a\(i) {not: \(children[0])}\n"
                }
                if block { return "\(indent)- &a\(i)\n\(indent)  \(combinator):\n" + children.map { "\(indent)    - \($0)\n" }.joined() }
                return "\(indent)- &a\(i) {\(combinator): [\(children.joined(separator: ", "))]}\n"
            case 2:
                let pairs = children.enumerated().map { "k\($0.offset): \($0.element)" }
                if block { return "\(indent)- &a\(i)\n" + pairs.map { "\(indent)  \($0)\n" }.joined() }
                return "\(indent)- &a\(i) {\(pairs.joined(separator: ", "))}\n"
            default:
                if i == 0 { return "\(indent)- &a0 {k: &s \(leaf)}\n" }
                if block { return "\(indent)- &a\(i)\n\(indent)  <<: [\(children.joined(separator: ", "))]\n\(indent)  k\(i): *s\n" }
                return "\(indent)- &a\(i) {<<: [\(children.joined(separator: ", "))], k\(i): *s}\n"
            }
        }
        func levels(indent: String) -> String { (0..<depth).map { level($0, indent: indent) }.joined() }

        let top = "*a\(depth - 1)"
        var out = "pipeline: fuzz\nstate: memory\n"
        if location == 0 { out += "x-anchors:\n" + levels(indent: "  ") }
        out += "stages:\n  - parse\n"
        switch location {
        case 1: out += "  - filter:\n      match:\n        any:\n" + levels(indent: "          ")
        case 2: out += "  - filter:\n      types: [\"*\"]\n      x-anchors:\n" + levels(indent: "        ")
        case 3: out += "  - log:\n      when:\n        match:\n          any:\n" + levels(indent: "            ")
        default: break
        }
        let uses = [
            "  - filter:\n      match:\n        any: [\(top), \(top)]\n",
            "  - filter:\n      match:\n        all: [\(top)]\n        not: \(top)\n",
            "  - filter:\n      match:\n        \(field): {in: \(top)}\n        data.w: \(top)\n",
            "  - filter:\n      types: \(top)\n",
            "  - log:\n      when: {match: {any: [\(top)]}}\n      template: \(top)\n",
            "  - dedup: \(top)\n",
            "  - verify:\n      secrets: \(top)\n",
            "  - \(top)\n",
        ]
        for (bit, use) in uses.enumerated() where places & (1 << bit) != 0 { out += use }
        if places & 0x80 != 0 { out += "output: \(top)\nserve: \(top)\n" }
        if textMode == 2 { out += free }
        text = out
    }

    /// A YAML double-quoted scalar holding `s` exactly.
    static func quoted(_ s: String) -> String { "\"\(escaped(s))\"" }

    /// `s` escaped for a YAML double-quoted scalar (without the quotes).
    static func escaped(_ s: String) -> String {
        var out = ""
        for scalar in s.unicodeScalars {
            switch scalar {
            case "\"": out += "\\\""
            case "\\": out += "\\\\"
            case " "..."~": out.unicodeScalars.append(scalar)
            default:
                let hex = String(scalar.value, radix: 16)
                out +=
                    scalar.value <= 0xFFFF
                    ? "\\u" + String(repeating: "0", count: 4 - hex.count) + hex
                    : "\\U" + String(repeating: "0", count: 8 - hex.count) + hex
            }
        }
        return out
    }
}
