import Testing
@testable import Lymph

@Suite("match conditions")
struct ConditionTests {
    static let event = Fixture.event(
        type: "alert.triggered",
        data: #"{"equipment_id":"pump_007","confidence":0.85,"count":3,"tags":["a","b"],"ok":true,"none":null,"name":"Main Pump","ts":"2026-06-02T00:00:00Z"}"#)

    func holds(_ yaml: String) -> Bool {
        let (spec, d) = PipelineLoader.parse(yaml: "stages:\n  - parse\n  - filter:\n      match:\n" + yaml, file: "t.yaml")
        guard let f = spec?.stages.first?.spec as? FilterSpec else {
            Issue.record("does not load: \(d.items)")
            return false
        }
        return (try? f.condition.matches(Self.event)) ?? false
    }

    @Test(
        "operators",
        arguments: [
            ("        data.confidence: 0.85\n", true),
            ("        data.confidence: { eq: 0.85 }\n", true),
            ("        data.confidence: { ne: 0.85 }\n", false),
            ("        data.missing: { ne: 1 }\n", true),
            ("        data.confidence: { gt: 0.8 }\n", true),
            ("        data.confidence: { gte: 0.85 }\n", true),
            ("        data.confidence: { lt: 0.85 }\n", false),
            ("        data.confidence: { lte: 0.85, gt: 0.5 }\n", true),
            ("        data.count: { in: [1, 2, 3] }\n", true),
            ("        data.count: { nin: [1, 2, 3] }\n", false),
            ("        data.missing: { nin: [1] }\n", true),
            ("        data.ok: true\n", true),
            ("        data.none: null\n", true),
            ("        data.none: { exists: true }\n", true),
            ("        data.missing: { exists: false }\n", true),
            ("        data.equipment_id: { prefix: pump_ }\n", true),
            ("        data.equipment_id: { suffix: \"007\" }\n", true),
            ("        data.name: { contains: \"n P\" }\n", true),
            ("        data.tags: { contains: b }\n", true),
            ("        data.tags[1]: b\n", true),
            ("        data.name: { regex: \"^Main\\\\s\" }\n", true),
            ("        data.ts: { gt: \"2026-06-01T00:00:00Z\" }\n", true),
            ("        any:\n          - data.count: 9\n          - data.ok: true\n", true),
            ("        all:\n          - data.count: 3\n          - data.ok: false\n", false),
            ("        not: { data.count: 3 }\n", false),
        ])
    func operators(_ yaml: String, _ expected: Bool) {
        #expect(holds(yaml) == expected, "\(yaml)")
    }

    @Test("a number never equals or compares with a string")
    func mixedTypes() {
        #expect(!holds("        data.confidence: \"0.85\"\n"))
        #expect(!holds("        data.name: { gt: 1 }\n"))
        #expect(!holds("        data.count: { lt: \"9\" }\n"))
        #expect(holds("        data.count: { ne: \"3\" }\n"))
    }

    @Test("type patterns")
    func types() {
        let m = TypeMatcher(["prediction.created", "alert.*"])
        #expect(m.matches(Array("alert.triggered".utf8)[...]))
        #expect(m.matches(Array("prediction.created".utf8)[...]))
        #expect(!m.matches(Array("alert".utf8)[...]))
        #expect(!m.matches(Array("prediction.created2".utf8)[...]))
        #expect(TypeMatcher(["*"]).matches(Array("x".utf8)[...]))
    }

    @Test("an event's type matches as its decoded text, written plainly or with escapes, and a missing or non-string type matches only *")
    func eventTypes() {
        let m = TypeMatcher(["prediction.created", "alert.*"])
        let cases: [(String, Bool)] = [
            (#""alert.triggered""#, true), (#""alert\u002etriggered""#, true), (#""\u0061lert.x""#, true), (#""prediction.created""#, true),
            (#""prediction.create""#, false), (#""alert.""#, false), (#""alert""#, false), ("7", false), ("null", false),
        ]
        // Built directly: the parse stage would reject the events without a string type.
        func event(_ text: String) -> Event {
            let bytes = Array(text.utf8)
            return Event(
                document: try! JSONDocument(parsing: bytes), source: SourcePosition(file: "t", line: 1), origin: ItemOrigin(form: .raw, bytes: bytes[...]))
        }
        for (type, expected) in cases {
            let e = event(#"{"id":"e","type":"# + type + #","data":{}}"#)
            #expect(e.typeMatches(m) == expected, "\(type)")
            #expect(e.typeMatches(TypeMatcher(["*"])))
        }
        #expect(!event(#"{"id":"e","data":{}}"#).typeMatches(m))
    }
}
