import Foundation
import Testing
@testable import Lymph

@Suite("JSON reader")
struct JSONParserTests {
    func accepts(_ text: String) -> Bool {
        (try? JSONDocument(parsing: Array(text.utf8))) != nil
    }

    @Test(
        "accepts valid documents",
        arguments: [
            "{}", "[]", "0", "-0", "1.5e10", "-1E-7", "\"\"", "true", "false", "null",
            #"{"a":[1,2,{"b":null}],"c":"\u00e9\ud83d\ude00"}"#, " \t\n{ \"a\" : 1 }\r\n",
            #""\"\\\/\b\f\n\r\t""#, "1.7976931348623157e308", "5e-324", "123456789012345678901234567890",
            "\"h\u{e9}llo \u{1F600}\"",
        ])
    func acceptsValid(_ text: String) {
        #expect(accepts(text))
    }

    @Test(
        "rejects invalid documents",
        arguments: [
            "", " ", "{", "[1,]", "{\"a\":1,}", "[01]", "-", "1.", ".5", "1e", "+1", "[1 2]", "{\"a\" 1}",
            "{a:1}", "'x'", "\"\\x\"", "\"\\u12\"", "\"\\uD800\"", "\"\\uDC00\"", "\"\\uD800\\u0041\"",
            "\"a\tb\"", "\"line\nbreak\"", "tru", "nul", "[1]]", "{} {}", "NaN", "Infinity", "[\"\\u00G1\"]",
            "\u{FEFF}{}",
        ])
    func rejectsInvalid(_ text: String) {
        #expect(!accepts(text))
    }

    @Test("rejects invalid UTF-8 inside strings")
    func rejectsBadUTF8() {
        let cases: [[UInt8]] = [
            [0x22, 0xFF, 0x22], [0x22, 0xC0, 0xAF, 0x22], [0x22, 0xE0, 0x80, 0xAF, 0x22],
            [0x22, 0xED, 0xA0, 0x80, 0x22], [0x22, 0xF4, 0x90, 0x80, 0x80, 0x22], [0x22, 0xC3, 0x22],
        ]
        for bytes in cases {
            #expect((try? JSONDocument(parsing: bytes)) == nil, "\(bytes)")
        }
    }

    @Test("deep nesting is rejected without recursion, shallow nesting accepted")
    func nesting() {
        let deep = String(repeating: "[", count: 100_000)
        #expect(throws: JSONSyntaxError.self) { try JSONDocument(parsing: Array(deep.utf8)) }
        let ok = String(repeating: "[", count: 500) + String(repeating: "]", count: 500)
        #expect(accepts(ok))
        let tooDeep = String(repeating: "[", count: 513) + String(repeating: "]", count: 513)
        #expect(!accepts(tooDeep))
    }

    @Test("error messages name the byte and the problem")
    func errorMessages() {
        do {
            _ = try JSONDocument(parsing: Array(#"{"a":1,}"#.utf8))
            Issue.record("expected an error")
        } catch {
            #expect(error.offset == 7)
            #expect(error.description == "invalid JSON at byte 8: unexpected '}', expected a string key")
        }
    }

    @Test("documents appended to one tape get the same entries as each parsed alone, with nested containers closed in the right order")
    func sharedTape() throws {
        let documents = [
            #"{"a":[1,[2,[3,{"b":[]}]],{}],"c":{"d":{"e":[{"f":null}]}},"g":[[],[[]]]}"#,
            "[[[[[[1]]]]],{\"x\":{\"y\":{}}},[]]",
            #"{"id":"e1","type":"alert.triggered","data":{"v":[1,2,{"w":"z"}],"s":{}}}"#,
            "7", #""text""#, "[]",
        ]
        var builder = JSONTapeBuilder(capacity: 0)
        for text in documents {
            let alone = try JSONParser.parse(Array(text.utf8)[...])
            let start = builder.count
            try JSONParser.parse(Array(text.utf8)[...], appendingTo: &builder)
            #expect(Array(UnsafeBufferPointer(start: builder.base + start, count: builder.count - start)) == alone, "\(text)")
            // Every container ends at its closing bracket and skips exactly its contents.
            let bytes = Array(text.utf8)
            for (i, entry) in alone.enumerated() where entry.kind == .object || entry.kind == .array {
                #expect(bytes[Int(entry.end) - 1] == (entry.kind == .object ? UInt8(ascii: "}") : UInt8(ascii: "]")))
                let after = Int(entry.next)
                #expect(after > i && after <= alone.count)
                for inner in alone[(i + 1)..<after] { #expect(inner.start >= entry.start && inner.end <= entry.end) }
                if after < alone.count { #expect(alone[after].start >= entry.end) }
            }
        }
        let doc = try JSONDocument(parsing: Array(documents[0].utf8))
        #expect(doc.root.value(at: try JSONPath(parsing: "c.d.e[0]"))?.member("f")?.isNull == true)
        #expect(doc.root.value(at: try JSONPath(parsing: "a[1][1][1].b"))?.elements.map { Array($0).isEmpty } == true)
        #expect(doc.root.value(at: try JSONPath(parsing: "g[1][0]"))?.elements.map { Array($0).isEmpty } == true)
        #expect(doc.root.member("g")?.elements.map { Array($0).count } == 2)
    }

    @Test("a tape builder grows as documents need, and a document that fails leaves it as it was, even after it grew for that document")
    func tapeBuilderGrowth() throws {
        let wide = "[" + Array(repeating: "1", count: 3000).joined(separator: ",") + "]"
        let deep = String(repeating: "[", count: 300) + String(repeating: "]", count: 300)
        let event = #"{"id":"e1","type":"alert.triggered","data":{"v":[1,2,{"w":"z"}],"s":{}}}"#
        // Thousands of entries, then a stray byte: the builder moved to a larger buffer before the error.
        let broken = "[" + Array(repeating: "\"x\"", count: 2000).joined(separator: ",") + ",}"
        var builder = JSONTapeBuilder(capacity: 1)
        var expected: [[JSONTapeEntry]] = []
        var spans: [Range<Int>] = []
        for text in [event, wide, broken, deep, broken, event] {
            let bytes = Array(text.utf8)[...]
            let start = builder.count
            if text == broken {
                #expect(throws: JSONSyntaxError.self) { try JSONParser.parse(bytes, appendingTo: &builder) }
                #expect(builder.count == start)
                continue
            }
            try JSONParser.parse(bytes, appendingTo: &builder)
            spans.append(start..<builder.count)
            expected.append(try JSONParser.parse(bytes))
        }
        let tape = builder.finish()
        #expect(tape.count == expected.reduce(0) { $0 + $1.count })
        for (span, alone) in zip(spans, expected) { #expect(Array(tape[span]) == alone) }
        #expect(expected[1].count == 3001 && expected[2].count == 300)
    }

    @Test("validate accepts and refuses exactly what parse does, with the same error; an http body template is checked by it")
    func validateAgreesWithParse() throws {
        for text in ["{\"a\":[1,2,{}]}", "7", "[", "{\"a\":}", "[1,]", "\"\\uD800\"", "{} x", "", " [ ] "] {
            let bytes = Array(text.utf8)[...]
            let parsed = Result { () throws(JSONSyntaxError) in _ = try JSONParser.parse(bytes) }
            let validated = Result { () throws(JSONSyntaxError) in try JSONParser.validate(bytes) }
            switch (parsed, validated) {
            case (.success, .success): break
            case (.failure(let a), .failure(let b)): #expect(a.description == b.description && a.truncated == b.truncated, "\(text)")
            default: Issue.record("parse and validate disagree on \(text)")
            }
        }
        #expect(throws: JSONPath.ParseError.self) { try HTTPBodyTemplate(parsing: #"{"id": {id}"#) }
        _ = try HTTPBodyTemplate(parsing: #"{"id": "{id}"}"#)
    }

    @Test("a quote, backslash, control character or non-ASCII byte is found at every place in an eight-byte word")
    func specialBytesAtEveryOffset() throws {
        for offset in 0..<17 {
            let run = String(repeating: "a", count: offset)
            for (inner, expected) in [("\\\"", "\""), ("\\n", "\n"), ("\u{e9}", "\u{e9}"), ("\u{1F600}", "\u{1F600}"), ("\\u00e9", "\u{e9}")] {
                let text = #"{"k":""# + run + inner + run + #"","z":1}"#
                let doc = try JSONDocument(parsing: Array(text.utf8))
                #expect(doc.root.member("k")?.string == run + expected + run, "\(text)")
                #expect(doc.root.member("z")?.double == 1)
            }
            #expect(!accepts(#"{"k":""# + run + "\t" + run + #""}"#))
            var bad = Array((#"{"k":""# + run).utf8)
            bad += [0xFF]
            bad += Array((run + #""}"#).utf8)
            #expect((try? JSONDocument(parsing: bad)) == nil)
            // The closing quote at every place: the key and the value that follow are read.
            let closing = #"{""# + run + #"":""# + run + #"","n":2}"#
            let doc = try JSONDocument(parsing: Array(closing.utf8))
            #expect(doc.root.member(run)?.string == run)
            #expect(doc.root.member("n")?.double == 2)
        }
    }

    @Test("tape lookups: members, elements, paths, escapes")
    func lookups() throws {
        let doc = try JSONDocument(parsing: Array(#"{"id":"e\"1","n":-2.5,"data":{"list":[10,{"k":"v"}],"a\u0062":true,"nil":null}}"#.utf8))
        #expect(doc.root.member("id")?.string == "e\"1")
        #expect(doc.root.member("n")?.double == -2.5)
        #expect(doc.root.value(at: try JSONPath(parsing: "data.list[1].k"))?.string == "v")
        #expect(doc.root.value(at: try JSONPath(parsing: "data.list[0]"))?.double == 10)
        #expect(doc.root.value(at: try JSONPath(parsing: "data.ab"))?.bool == true)
        #expect(doc.root.value(at: try JSONPath(parsing: "data.nil"))?.isNull == true)
        #expect(doc.root.value(at: try JSONPath(parsing: "data.list[2]")) == nil)
        #expect(doc.root.value(at: try JSONPath(parsing: "data.missing")) == nil)
        #expect(String(decoding: doc.root.member("data")!.member("list")!.rawBytes, as: UTF8.self) == #"[10,{"k":"v"}]"#)
    }

    @Test("strings decode as Foundation decodes them: every escape, runs, surrogate pairs, escapes at either end")
    func unescapeMatchesFoundation() throws {
        let pieces = [
            "plain run", #"\""#, #"\\"#, #"\/"#, #"\b"#, #"\f"#, #"\n"#, #"\r"#, #"\t"#, #"\u0041"#, #"\u00e9"#,
            #"\u20AC"#, #"\ud83d\ude00"#, #"\u0000"#, "h\u{e9}", "\u{1F600}", "{", "",
        ]
        var generator = SystemRandomNumberGenerator()
        var cases = pieces.map { [$0] }
        for _ in 0..<500 {
            cases.append((0..<Int.random(in: 1...12, using: &generator)).map { _ in pieces.randomElement(using: &generator)! })
        }
        for parts in cases {
            let literal = "\"" + parts.joined() + "\""
            let expected = try JSONSerialization.jsonObject(with: Data(literal.utf8), options: .fragmentsAllowed) as? String
            let doc = try JSONDocument(parsing: Array(literal.utf8))
            let decoded = try #require(doc.root.stringBytes)
            #expect(String(decoding: decoded, as: UTF8.self) == expected, "\(literal)")
        }
    }

    @Test("numbers at the edges of Double")
    func numberEdges() throws {
        func value(_ s: String) throws -> Double? { try JSONDocument(parsing: Array(s.utf8)).root.double }
        #expect(try value("1.7976931348623157e308") == Double.greatestFiniteMagnitude)
        #expect(try value("4.9e-324") == Double.leastNonzeroMagnitude)
        #expect(try value("1e400") == Double.infinity)
        #expect(try value("-1e400") == -Double.infinity)
        #expect(try value("1e-400") == 0)
        #expect(try value("-0") == 0)
        // Long numbers are valid JSON too, and have a value whatever their length (past 511 characters included).
        #expect(try value("0.5" + String(repeating: "0", count: 600)) == 0.5)
        #expect(try value("-2" + String(repeating: "0", count: 600)) == -Double.infinity)
        #expect(try value(String(repeating: "0", count: 1) + "." + String(repeating: "0", count: 700) + "1e700") == 0.1)
    }

    @Test("path syntax errors")
    func pathErrors() {
        for bad in ["", "a..b", "a.", ".a", "a[x]", "a[1]b", "a]"] {
            #expect(throws: JSONPath.ParseError.self, "\(bad)") { try JSONPath(parsing: bad) }
        }
    }

    /// JSONTestSuite (shared/conformance): y_ accepted, n_ rejected, i_ either way without crashing.
    @Test("JSONTestSuite parsing cases")
    func jsonTestSuite() throws {
        let root = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent()
        let suite = root.deletingLastPathComponent().appendingPathComponent("shared/conformance/JSONTestSuite")
        guard let files = try? FileManager.default.contentsOfDirectory(atPath: suite.path) else {
            print("JSONTestSuite skipped: \(suite.path) does not exist (it is in the workplace's shared/ folder, not in this repository)")
            return
        }
        var checked = 0
        for name in files.sorted() where name.hasSuffix(".json") {
            let bytes = [UInt8](try Data(contentsOf: suite.appendingPathComponent(name)))
            let ok = (try? JSONDocument(parsing: bytes)) != nil
            if name.hasPrefix("y_") { #expect(ok, "\(name) must be accepted") }
            if name.hasPrefix("n_") { #expect(!ok, "\(name) must be rejected") }
            checked += 1
        }
        #expect(checked > 300)
    }
}
