import Foundation
import Testing
@testable import Lymph

@Suite("linear-time regular expressions")
struct LinearRegexTests {
    static func matches(_ pattern: String, _ text: String) throws -> Bool {
        try LinearRegex(pattern).matches(text)
    }

    static func refusal(_ pattern: String) -> String? {
        do {
            _ = try LinearRegex(pattern)
            return nil
        } catch {
            return error.description
        }
    }

    @Test(
        "supported syntax",
        arguments: [
            // literals and escaped metacharacters
            ("pump", "main pump 7", true),
            ("pump", "main pmup", false),
            (#"a\.b"#, "a.b", true),
            (#"a\.b"#, "axb", false),
            (#"\\\/\-\[\]\(\)\{\}"#, #"\/-[](){}"#, true),
            (#"\*\+\?\|\^\$"#, "*+?|^$", true),
            (#"\*"#, "a", false),
            (##"a\#b\ c"##, "a#b c", true),
            // control and code escapes
            (#"a\nb"#, "a\nb", true),
            (#"a\tb"#, "a\tb", true),
            (#"\r\f\v\a\e"#, "\r\u{0C}\u{0B}\u{07}\u{1B}", true),
            (#"\0"#, "\0", true),
            (#"\0101"#, "A", true),
            (#"\x41\x{42}\u0043\U00000044"#, "ABCD", true),
            (#"\x{1F600}"#, "smile 😀", true),
            (#"\u00e9"#, "café", true),
            (#"\u00e9"#, "cafe", false),
            (#"\Qa.b*\E+"#, "a.b**", true),
            (#"\Qa.b*\E"#, "axbb", false),
            // dot
            ("a.c", "abc", true),
            ("a.c", "a😀c", true),
            ("a.c", "a\nc", false),
            ("a.c", "a\rc", true),
            ("(?s)a.c", "a\nc", true),
            // classes
            ("[abc]", "xxbxx", true),
            ("[abc]", "xyz", false),
            ("[^abc]", "abcd", true),
            ("[^abc]", "cab", false),
            ("^[a-z0-9]+$", "pump007", true),
            ("^[a-z0-9]+$", "Pump007", false),
            (#"[\d_]"#, "_", true),
            (#"[\w-]+@"#, "ops-team@", true),
            (#"[\s,]"#, "a,b", true),
            (#"[\.]"#, "a", false),
            ("[.]", ".", true),
            ("[]a]", "]", true),
            ("[a-]", "-", true),
            ("[-a]", "-", true),
            (#"[\]\[]"#, "[", true),
            (#"[\x41-\x43]"#, "B", true),
            ("[é-ë]", "ê", true),
            ("[[:digit:]][[:upper:]]", "7A", true),
            ("[[:^alpha:]]", "abc", false),
            // shorthands are ASCII, as in RE2
            (#"\d\D\w\W\s\S"#, "1a_ x ", false),
            (#"^\d\D\w\W\s\S$"#, "1a_ \tx", true),
            (#"\d"#, "٣", false),
            (#"\w"#, "é", false),
            (#"\s"#, "\u{A0}", false),
            (#"\s"#, "\u{0B}", true),
            // anchors
            ("^pump", "pump_1", true),
            ("^pump", "a pump", false),
            ("pump$", "a pump", true),
            ("pump$", "pump a", false),
            ("pump$", "pump\n", true),
            ("pump$", "pump\r\n", true),
            ("pump$", "pump\n\n", false),
            (#"\Apump"#, "pump", true),
            (#"pump\z"#, "pump\n", false),
            (#"pump\Z"#, "pump\n", true),
            ("^$", "", true),
            ("(?m)^b$", "a\nb\nc", true),
            ("^b$", "a\nb\nc", false),
            ("(?m)^$", "a\n", false),
            ("(?m)a$", "a\r\nb", true),
            // word boundaries
            (#"\bbearing\b"#, "main bearing failure", true),
            (#"\bbearing\b"#, "bearings", false),
            (#"\Bear"#, "bearing", true),
            (#"\Bbear"#, "bearing", false),
            (#"\b"#, "", false),
            (#"\B"#, "", true),
            // groups and alternation
            ("(pump|fan)_1", "fan_1", true),
            ("(pump|fan)_1", "fab_1", false),
            ("(?:ab)+c", "ababc", true),
            ("(?:ab)+c", "aabc", true),
            ("(?:ab)+c", "acbc", false),
            ("(?<kind>pump|fan)-(?P<n>\\d+)", "fan-12", true),
            ("a(|b)c", "ac", true),
            ("(?#a comment)pump", "pump", true),
            ("x|", "anything", true),
            ("((((a))))b", "ab", true),
            // quantifiers, greedy and lazy
            ("^ab*c$", "ac", true),
            ("^ab+c$", "ac", false),
            ("^ab?c$", "abbc", false),
            ("^a{3}$", "aaa", true),
            ("^a{3}$", "aa", false),
            ("^a{2,}$", "aaaaa", true),
            ("^a{2,}$", "a", false),
            ("^a{2,3}$", "aaaa", false),
            ("^a{0}b$", "b", true),
            ("^a*?b+?c??d{1,2}?$", "aabbdd", true),
            ("^(a|b){1,3}?$", "abab", false),
            // flags
            ("(?i)^main\\s", "MAIN pump", true),
            ("^main", "MAIN", false),
            ("(?i:main) pump", "MAIN pump", true),
            ("(?i:main) pump", "MAIN PUMP", false),
            ("(?i)main(?-i)PUMP", "mainpump", false),
            ("(?i)[a-z]+_\\d", "PUMP_1", true),
            ("(?i)[^a]", "A", false),
            ("(?i)é", "É", true),
            ("(?i)σ", "ς", true),
            ("(?i)s", "ſ", true),
            ("(?i)k", "\u{212A}", true),
            ("(?i)i", "ı", false),
            ("a(?i)b|c", "C", true),
            ("(a(?i)b)|c", "C", false),
            ("(?m)(?s)a.^b", "a\nb", true),
        ])
    func supported(_ pattern: String, _ text: String, _ expected: Bool) throws {
        #expect(try Self.matches(pattern, text) == expected, "\(pattern) on \(text.debugDescription)")
    }

    @Test(
        "refused syntax names what is wrong",
        arguments: [
            (#"(a)\1"#, #"backreferences ('\1' at offset 3)"#),
            (#"(?<n>a)\k<n>"#, "backreferences"),
            ("(?P<n>a)(?P=n)", "backreferences"),
            ("a(?=b)", "lookahead ('(?=' at offset 1)"),
            ("a(?!b)", "lookahead"),
            ("(?<=a)b", "lookbehind ('(?<='"),
            ("(?<!a)b", "lookbehind"),
            ("(?>a+)b", "atomic groups"),
            ("a*+", "possessive quantifiers ('*+' at offset 1)"),
            ("a++", "possessive"),
            ("a?+", "possessive"),
            ("a{1,2}+", "possessive"),
            ("(?x)a b", "unsupported flag 'x'"),
            ("(?R)", "unsupported group syntax '(?R'"),
            ("(?'n'a)", "unsupported group syntax"),
            (#"\y"#, #"unknown escape '\y' at offset 0"#),
            (#"[\q]"#, "unknown escape"),
            (#"\p{L}"#, "Unicode property classes"),
            (#"\1"#, "backreferences"),
            ("ab)", "unbalanced ')' at offset 2"),
            ("(ab", "unbalanced '(' at offset 0"),
            ("[ab", "unbalanced '[' at offset 0"),
            ("*a", "quantifier '*' at offset 0 has nothing to repeat"),
            ("a|+", "nothing to repeat"),
            ("(?)", "empty flag group"),
            ("(?i)*", "nothing to repeat"),
            ("{2}", "nothing to repeat"),
            ("a**", "nested quantifier"),
            ("a{2}{3}", "nested quantifier"),
            ("^*", "anchor"),
            (#"\b+"#, "anchor"),
            ("a{", "does not start a repetition"),
            ("a{,3}", "does not start a repetition"),
            ("a{3,2}", "maximum below its minimum"),
            ("a{1001}", "repetition count over 1000"),
            ("a{1,5000}", "repetition count over 1000"),
            ("(a{1000}){1000}", "pattern is too large"),
            ("((a{100}){100}){100}", "pattern is too large"),
            ("[z-a]", "out of order"),
            (#"[a-\d]"#, "bad range"),
            ("[[a]]", "nested class"),
            ("[a&&b]", "intersection"),
            ("[[:vowel:]]", "unknown class name"),
            (#"ab\"#, "trailing"),
            (#"\x{110000}"#, "not a Unicode scalar value"),
            (#"\xZZ"#, "expected hexadecimal digits"),
            (#"\u12"#, "expected 4 hexadecimal digits"),
            ("(?<1n>a)", "bad group name"),
            ("(?<n>a)(?<n>b)", "duplicate group name 'n'"),
            ("(?#open", "unterminated comment"),
            (#"[\b]"#, "inside a class"),
        ])
    func refused(_ pattern: String, _ fragment: String) {
        let message = Self.refusal(pattern)
        #expect(message?.contains(fragment) == true, "\(pattern): \(message ?? "accepted")")
    }

    @Test("a syntax error carries its offset")
    func errorOffset() {
        do {
            _ = try LinearRegex("ab)")
            Issue.record("accepted")
        } catch {
            #expect(error.offset == 2)
        }
        do {
            _ = try LinearRegex("(a{1000}){1000}")
            Issue.record("accepted")
        } catch {
            #expect(error.offset == nil)
        }
        #expect(throws: LinearRegex.SyntaxError.self) { _ = try LinearRegex("(?=x)") }
    }

    @Test("the pattern is kept")
    func pattern() throws {
        #expect(try LinearRegex("^pump_\\d+$").pattern == "^pump_\\d+$")
    }

    // Each of these takes a backtracking engine (NSRegularExpression included) seconds to
    // years; here each costs at most the text's length times the program's size.
    @Test(
        "pathological patterns stay fast",
        arguments: [
            ("(a+)+$", String(repeating: "a", count: 30) + "!", false),
            ("(a+)+$", String(repeating: "a", count: 10_000) + "!", false),
            ("(a|aa)+$", String(repeating: "a", count: 10_000) + "!", false),
            ("(a|a)+$", String(repeating: "a", count: 10_000) + "!", false),
            ("(a*)*b", String(repeating: "a", count: 10_000), false),
            ("(x+x+)+y", String(repeating: "x", count: 10_000), false),
            (#"(\w+\s?)+$"#, String(repeating: "word ", count: 2_000) + "!", false),
            (#"^(\w+\s?)+$"#, String(repeating: "word ", count: 2_000), true),
            ("(.*a){20}", String(repeating: "a" + String(repeating: "b", count: 100), count: 19), false),
            ("(.*a){20}", String(repeating: "a", count: 10_000), true),
            (
                #"^([a-zA-Z0-9])(([\-.]|[_]+)?([a-zA-Z0-9]+))*(@){1}[a-z0-9]+[.]{1}(([a-z]{2,3})|([a-z]{2,3}[.]{1}[a-z]{2,3}))$"#,
                String(repeating: "a", count: 5_000) + "!", false
            ),
            (#"^(\d+)*$"#, String(repeating: "1", count: 10_000) + "x", false),
        ])
    func pathological(_ pattern: String, _ text: String, _ expected: Bool) throws {
        let regex = try LinearRegex(pattern)
        let clock = ContinuousClock()
        let start = clock.now
        let result = regex.matches(text)
        let elapsed = clock.now - start
        #expect(result == expected)
        #expect(elapsed < .milliseconds(50), "\(pattern) took \(elapsed) on \(text.unicodeScalars.count) scalars")
    }

    @Test("construction is bounded")
    func boundedConstruction() throws {
        let clock = ContinuousClock()
        for pattern in [
            String(repeating: "a", count: 65_536),
            String(repeating: "(?:a|b)", count: 9_362),
            String(repeating: "[a-z]", count: 13_107),
            String(repeating: "((((", count: 16_384),
        ] {
            let start = clock.now
            _ = try? LinearRegex(pattern)
            #expect(clock.now - start < .milliseconds(500), "a \(pattern.utf8.count)-byte pattern")
        }
        let nested = String(repeating: "(", count: 100) + "a" + String(repeating: ")*", count: 100)
        #expect(try LinearRegex(nested).matches("aaa"))
        let deeper = String(repeating: "(", count: 101) + "a" + String(repeating: ")", count: 101)
        #expect(Self.refusal(deeper)?.contains("nested deeper than 100") == true)
        #expect(try LinearRegex("(?:(?:a{10}){10}){10}").matches(String(repeating: "a", count: 1000)))
        #expect(try LinearRegex("(?:(?:(?:){1000}){1000}){1000}x").matches("x"))
    }

    @Test("long texts need no stack")
    func longText() throws {
        let text = String(repeating: "ab", count: 200_000) + "c"
        #expect(try LinearRegex("^(a|b)*c$").matches(text))
        #expect(try !LinearRegex("^(a|b)*d$").matches(text))
        #expect(try LinearRegex(#"b\z"#).matches(String(repeating: "ab", count: 200_000)))
    }

    @Test("a compiled pattern is shared across tasks")
    func sendable() async throws {
        let regex = try LinearRegex(#"^pump_\d+$"#)
        let results = await withTaskGroup(of: Bool.self) { group in
            for k in 0..<8 { group.addTask { regex.matches("pump_\(k)") } }
            return await group.reduce(into: 0) { $0 += $1 ? 1 : 0 }
        }
        #expect(results == 8)
    }

    /// Patterns of the kind operators write, where NSRegularExpression (which filters used
    /// before) and this engine must agree.
    @Test(
        "agrees with NSRegularExpression on ordinary patterns",
        arguments: [
            (#"^pump_\d+$"#, "pump_007"),
            (#"^pump_\d+$"#, "pump_007x"),
            (#"^pump_\d+$"#, "pump_"),
            (#"(?i)^main\s"#, "Main Pump"),
            (#"(?i)^main\s"#, "mainpump"),
            ("error|fail", "disk failure"),
            ("error|fail", "all good"),
            (#"^[A-Z]{2}-\d{3,5}$"#, "AB-1234"),
            (#"^[A-Z]{2}-\d{3,5}$"#, "AB-12"),
            (#"^[A-Z]{2}-\d{3,5}$"#, "ab-1234"),
            (#"^[A-Z]{2}-\d{3,5}$"#, "AB-123456"),
            (#"\bbearing\b"#, "main bearing failure"),
            (#"\bbearing\b"#, "bearings worn"),
            (#"^[\w.+-]+@[\w-]+\.[\w.]+$"#, "ops+alerts@example.com"),
            (#"^[\w.+-]+@[\w-]+\.[\w.]+$"#, "not an email"),
            (#"^[\w.+-]+@[\w-]+\.[\w.]+$"#, "a@b"),
            (#"^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}(\.\d+)?(Z|[+-]\d{2}:\d{2})$"#, "2026-06-02T00:00:00Z"),
            (#"^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}(\.\d+)?(Z|[+-]\d{2}:\d{2})$"#, "2026-06-02T00:00:00.123+02:00"),
            (#"^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}(\.\d+)?(Z|[+-]\d{2}:\d{2})$"#, "2026-06-02 00:00:00"),
            ("^evt_[0-9a-f]{20}$", "evt_0123456789abcdef0123"),
            ("^evt_[0-9a-f]{20}$", "evt_0123456789abcdef012"),
            (#"(pump|compressor|turbine)_\d{4}"#, "turbine_0042"),
            (#"(pump|compressor|turbine)_\d{4}"#, "fan_0042"),
            (#"^alert\.(triggered|resolved)$"#, "alert.triggered"),
            (#"^alert\.(triggered|resolved)$"#, "alertXtriggered"),
            (#"temp(erature)?\s*[>=]+\s*\d+"#, "temperature >= 90"),
            (#"^(?:[0-9]{1,3}\.){3}[0-9]{1,3}$"#, "192.168.0.1"),
            (#"^(?:[0-9]{1,3}\.){3}[0-9]{1,3}$"#, "192.168.0"),
            (#"^https?://[^/\s]+/"#, "https://example.com/hooks"),
            (#"^https?://[^/\s]+/"#, "ftp://example.com/"),
            (#"^v\d+\.\d+\.\d+(-[0-9A-Za-z.]+)?$"#, "v1.2.3-rc.1"),
            ("(?i)critical|severe", "SEVERE vibration"),
            (#"^\s*$"#, "   "),
            (#"^\s*$"#, " x "),
            (#"[^\x00-\x7F]"#, "café"),
            (#"[^\x00-\x7F]"#, "cafe"),
            ("^.{1,10}$", "short"),
            ("^.{1,10}$", "this is much too long"),
            ("^line1$", "line1\n"),
            ("(?m)^b$", "a\nb\nc"),
            (#"\$\d+\.\d{2}"#, "cost $12.50"),
            (#"\(\d{3}\) \d{3}-\d{4}"#, "(555) 123-4567"),
            ("^[^,]+,[^,]+,[^,]+$", "a,b,c"),
            ("^[^,]+,[^,]+,[^,]+$", "a,b"),
            ("colou?r", "colour"),
            ("colou?r", "colr"),
            ("^[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}$", "123e4567-e89b-12d3-a456-426614174000"),
            (#"^(?:\+|-)?\d+(?:\.\d+)?$"#, "-12.5"),
            (#"^(?:\+|-)?\d+(?:\.\d+)?$"#, "12."),
            (#"\.(?:log|txt)$"#, "app.log"),
            (#"\.(?:log|txt)$"#, "app.logs"),
            (#"^\S+$"#, "no-spaces"),
            (#"^\S+$"#, "has space"),
            ("(?s)begin.*end", "begin\nmiddle\nend"),
            ("begin.*end", "begin\nmiddle\nend"),
            ("^[A-Z][a-z]+ [A-Z][a-z]+$", "Main Pump"),
            (#"pump_0*7\b"#, "pump_007 ok"),
            (#"^\d{3}$"#, "123\n"),
            ("^(low|medium|high)$", "HIGH"),
            ("(?i)^(low|medium|high)$", "HIGH"),
            (#"\Aabc\z"#, "abc\n"),
            (#"\Aabc\Z"#, "abc\n"),
            ("^(?:[a-z]+-)*[a-z]+$", "main-pump-left"),
            ("x*", ""),
        ])
    func agreesWithFoundation(_ pattern: String, _ text: String) throws {
        let reference = try NSRegularExpression(pattern: pattern)
        let expected = reference.firstMatch(in: text, range: NSRange(text.startIndex..., in: text)) != nil
        #expect(try Self.matches(pattern, text) == expected, "\(pattern) on \(text.debugDescription)")
    }
}
