import Foundation
import Testing
@testable import Lymph

@Suite("parse stage")
struct ParseStageTests {
    @Test("an envelope member given twice (plainly or escaped) is a dead letter, invalid_field: JSON readers differ on which one counts")
    func repeatedEnvelopeMembers() {
        func parsed(_ text: String) -> ParseStage.Result {
            ParseStage().parse(RawItem(bytes: Array(text.utf8)[...], source: SourcePosition(file: "t", line: 1)))
        }
        let rest = #""created_at":"2026-06-01T00:00:00Z","data":{}"#
        for (text, name) in [
            (#"{"id":"evt_one","id":"evt_two","type":"t",\#(rest)}"#, "id"),
            (#"{"id":"evt_1","type":"a","t\u0079pe":"b",\#(rest)}"#, "type"),
            (#"{"id":"evt_1","type":"t",\#(rest),"data":{"x":1}}"#, "data"),
            (#"{"id":"evt_1","type":"t",\#(rest),"created_at":"2020-01-01T00:00:00Z"}"#, "created_at"),
            (#"{"headers":{"x-immune-signature":"sha256=00"},"body":"{}","body":"{}"}"#, "body"),
        ] {
            guard case .rejected(let dead) = parsed(text) else {
                Issue.record("accepted: \(text)")
                continue
            }
            #expect(dead.reason == "invalid_field" && dead.message.contains("'\(name)' more than once"), "\(dead.message)")
        }
        guard case .event = parsed(#"{"id":"evt_1","type":"t",\#(rest),"extra":{"id":"x","id":"y"}}"#) else {
            Issue.record("a repeated key outside the envelope is the event's own business")
            return
        }
    }

    @Test("an event's value at a path that starts at an envelope member is the one a walk from the top finds, escaped and repeated keys too")
    func valueFromEnvelopeMembers() throws {
        let documents = [
            #"{"id":"evt_1","type":"prediction.created","created_at":"2026-06-01T00:00:00Z","data":{"a":{"b":[1,{"c":"x"}]},"id":"inner"}}"#,
            #"{"i\u0064":"evt_2","type":"t","created_at":"2026-06-01T00:00:00Z","d\u0061ta":{"a":5},"data":{"a":6}}"#,
            #"{"data":{"x":[10,20]},"id":"evt_3","type":"t","created_at":"2026-06-01T00:00:00Z","extra":{"a":1}}"#,
            #"{"id":"evt_5","id":"evt_6","type":"t","created_at":"2026-06-01T00:00:00Z","data":{"a":{"b":[0,{"c":"y"}]}},"data":{"a":7}}"#,
        ]
        let paths = [
            "id", "type", "created_at", "data", "data.a", "data.a.b[1].c", "data.id", "data[1]", "data.x[1]", "data.x[5]", "data.missing",
            "extra.a", "absent", "id.x",
        ]
        var compared = 0
        for text in documents {
            // By hand: parse refuses an envelope member given twice (below), and this is about
            // lookups in any event.
            let event = Event(
                document: try JSONDocument(parsing: Array(text.utf8)), source: SourcePosition(file: "t", line: 1),
                origin: ItemOrigin(form: .raw, bytes: Array(text.utf8)[...]))
            for path in paths {
                let p = try JSONPath(parsing: path)
                let fromMember = event.value(at: p)
                let walked = event.root.value(at: p)
                #expect(fromMember?.index == walked?.index, "\(path) in \(text)")
                compared += 1
            }
        }
        #expect(compared == documents.count * paths.count)
        // Events made by hand need not have the envelope: a member the event lacks, or a
        // document that is not an object, has nothing at any path below it.
        func event(_ text: String) throws -> Event {
            Event(
                document: try JSONDocument(parsing: Array(text.utf8)), source: SourcePosition(file: "t", line: 1),
                origin: ItemOrigin(form: .raw, bytes: Array(text.utf8)[...]))
        }
        let noData = try event(#"{"id":"evt_7","extra":{"data":1}}"#)
        #expect(noData.value(at: try JSONPath(parsing: "data")) == nil)
        #expect(noData.value(at: try JSONPath(parsing: "data.a")) == nil)
        #expect(noData.value(at: try JSONPath(parsing: "type")) == nil)
        #expect(noData.value(at: try JSONPath(parsing: "id"))?.string == "evt_7")
        #expect(noData.value(at: try JSONPath(parsing: "extra.data"))?.double == 1)
        for text in [#"[{"id":"x"},{"data":{"a":1}}]"#, #""data""#, "7"] {
            let notAnObject = try event(text)
            for path in ["id", "data", "data.a", "[0].id"] {
                let found = notAnObject.value(at: try JSONPath(parsing: path))
                #expect((found != nil) == (path == "[0].id" && text.hasPrefix("[")), "\(path) in \(text)")
            }
        }
    }

    func parse(_ text: String) -> ParseStage.Result {
        ParseStage().parse(RawItem(bytes: Array(text.utf8)[...], source: SourcePosition(file: "in.ndjson", line: 7)))
    }

    func rejection(_ text: String) -> DeadLetter? {
        if case .rejected(let dl) = parse(text) { return dl }
        return nil
    }

    @Test("a valid event keeps its exact bytes")
    func keepsBytes() throws {
        let text = #"{"id":"e1", "type":"alert.triggered","created_at":"2026-06-01T00:00:00.5+02:00","data":{}}"#
        guard case .event(let e) = parse(text) else { Issue.record("rejected"); return }
        #expect(String(decoding: e.document.bytes, as: UTF8.self) == text)
        #expect(e.source == SourcePosition(file: "in.ndjson", line: 7))
        #expect(e.delivery == nil)
    }

    @Test(
        "envelope problems are dead letters with a reason",
        arguments: [
            ("not json", "invalid_json", "invalid JSON at byte 2: unexpected 'o', expected a value"),
            ("[1]", "not_an_object", "expected a JSON object (an event or a delivery), found an array"),
            (#"{"type":"a","created_at":"2026-06-01T00:00:00Z","data":{}}"#, "missing_field", "event has no 'id' field"),
            (#"{"id":"","type":"a","created_at":"2026-06-01T00:00:00Z","data":{}}"#, "invalid_field", "event: 'id' must be a non-empty string, found \"\""),
            (#"{"id":"x","type":5,"created_at":"2026-06-01T00:00:00Z","data":{}}"#, "invalid_field", "event: 'type' must be a non-empty string, found 5"),
            (
                #"{"id":"x","type":"a","created_at":"2026-02-30T00:00:00Z","data":{}}"#, "invalid_field",
                "event: 'created_at' must be an RFC 3339 timestamp such as 2026-06-01T12:00:00Z, found \"2026-02-30T00:00:00Z\""
            ),
            (#"{"id":"x","type":"a","created_at":"2026-06-01T00:00:00Z","data":"s"}"#, "invalid_field", "event: 'data' must be an object, found \"s\""),
        ])
    func envelope(_ text: String, _ reason: String, _ message: String) throws {
        let dl = try #require(rejection(text))
        #expect(dl.reason == reason)
        #expect(dl.message == message)
        #expect(dl.source.line == 7)
        #expect(dl.origin.form == .raw)
        #expect(String(decoding: dl.origin.bytes, as: UTF8.self) == text)
    }

    @Test("a delivery keeps the exact body bytes and its headers")
    func delivery() throws {
        let body = "{\n  \"id\": \"e1\",\n  \"type\": \"t\",\n  \"created_at\": \"2026-06-01T00:00:00Z\",\n  \"data\": {}\n}"
        let line = Fixture.delivery(body, signature: "abc", header: "X-Immune-Signature")
        guard case .event(let e) = parse(line) else { Issue.record("rejected"); return }
        #expect(String(decoding: e.delivery!.body, as: UTF8.self) == body)
        #expect(e.delivery!.header("x-immune-signature") == "abc")
        // Output is one event a line: only the line breaks go.
        #expect(String(decoding: e.document.bytes, as: UTF8.self) == body.replacingOccurrences(of: "\n", with: ""))
        #expect(e.origin.form == .delivery)
    }

    @Test("a dead-letter record is replayed as its delivery or raw line")
    func replay() throws {
        let event = #"{"id":"e1","type":"t","created_at":"2026-06-01T00:00:00Z","data":{}}"#
        var out: [UInt8] = []
        DeadLetter(
            stage: "verify", reason: "bad_signature", message: "m", source: SourcePosition(file: "f", line: 1),
            origin: ItemOrigin(form: .delivery, bytes: Array(Fixture.delivery(event).utf8)[...])
        ).encode(at: "t", into: &out)
        guard case .event(let e) = parse(String(decoding: out.dropLast(), as: UTF8.self)) else { Issue.record("rejected"); return }
        #expect(e.delivery != nil)
        #expect(e.id == "e1")
        out = []
        DeadLetter(
            stage: "x", reason: "r", message: "m", source: SourcePosition(file: "f", line: 1),
            origin: ItemOrigin(form: .raw, bytes: Array(event.utf8)[...])
        ).encode(at: "t", into: &out)
        guard case .event(let e2) = parse(String(decoding: out.dropLast(), as: UTF8.self)) else { Issue.record("rejected"); return }
        #expect(String(decoding: e2.document.bytes, as: UTF8.self) == event)
    }

    @Test("a line that is not UTF-8 is dead-lettered with its exact bytes, and replays byte for byte")
    func notUTF8() throws {
        // 0xC3 0x28 is an ill-formed sequence; "raw" can only show it as U+FFFD.
        let line: [UInt8] = Array(#"{"id":"evt_"#.utf8) + [0xC3, 0x28] + Array(#"","type":"t"}"#.utf8)
        guard case .rejected(let dl) = ParseStage().parse(RawItem(bytes: line[...], source: SourcePosition(file: "f", line: 3))) else {
            Issue.record("accepted"); return
        }
        var out: [UInt8] = []
        dl.encode(at: "t", into: &out)
        let record = try #require(try? JSONSerialization.jsonObject(with: Data(out.dropLast())) as? [String: Any])
        #expect((record["raw"] as? String)?.contains("\u{FFFD}") == true)
        #expect(record["raw_base64"] as? String == Data(line).base64EncodedString())
        guard case .rejected(let again) = ParseStage().parse(RawItem(bytes: out.dropLast(), source: SourcePosition(file: "dead", line: 1))) else {
            Issue.record("replay accepted"); return
        }
        #expect(Array(again.origin.bytes) == line)
        #expect(again.reason == dl.reason)
        // Valid UTF-8 needs no copy.
        out = []
        DeadLetter(
            stage: "x", reason: "r", message: "m", source: SourcePosition(file: "f", line: 1),
            origin: ItemOrigin(form: .raw, bytes: Array("caf\u{E9} \u{1F600}".utf8)[...])
        ).encode(at: "t", into: &out)
        #expect(!String(decoding: out, as: UTF8.self).contains("raw_base64"))
    }

    @Test("raw_base64 is replayed only while raw still shows it; a broken one keeps the record")
    func rawBase64Edges() throws {
        let exact: [UInt8] = Array(#"{"id":"evt_"#.utf8) + [0xFF] + Array(#"","type":"t"}"#.utf8)
        let base64 = Data(exact).base64EncodedString()
        let shown = String(decoding: exact, as: UTF8.self)
        func record(raw: String?, base64: String) -> String {
            var fields = [#""error":{"stage":"parse","reason":"invalid_json","message":"m"}"#, #""raw_base64":"\#(base64)""#]
            if let raw {
                var encoded: [UInt8] = []
                JSONStringEncoder.append(raw, to: &encoded)
                fields.append(#""raw":"# + String(decoding: encoded, as: UTF8.self))
            }
            return "{" + fields.joined(separator: ",") + "}"
        }
        // Untouched: the exact bytes.
        let same = try #require(rejection(record(raw: shown, base64: base64)))
        #expect(Array(same.origin.bytes) == exact)
        // The operator fixed raw by hand: the fix is what is replayed.
        let fixed = #"{"id":"evt_1","type":"t","created_at":"2026-06-01T00:00:00Z","data":{}}"#
        guard case .event(let e) = parse(record(raw: fixed, base64: base64)) else { Issue.record("the fixed line was not replayed"); return }
        #expect(e.id == "evt_1")
        // Not base64: rejected, and the dead letter keeps the whole record, not raw alone.
        let broken = record(raw: shown, base64: "!!")
        let dl = try #require(rejection(broken))
        #expect(dl.reason == "invalid_dead_letter")
        #expect(String(decoding: dl.origin.bytes, as: UTF8.self) == broken)
        // raw_base64 without raw is not a replay at all.
        let orphanText = record(raw: nil, base64: Data(fixed.utf8).base64EncodedString())
        let orphan = try #require(rejection(orphanText))
        #expect(orphan.reason == "missing_field")
        #expect(String(decoding: orphan.origin.bytes, as: UTF8.self) == orphanText)
    }

    @Test("a rejected dead-letter record whose delivery is not an object keeps the whole record")
    func recordWithBadDelivery() throws {
        let text = #"{"error":1,"delivery":5,"raw":"x"}"#
        let dl = try #require(rejection(text))
        #expect(dl.reason == "invalid_dead_letter")
        #expect(String(decoding: dl.origin.bytes, as: UTF8.self) == text)
    }

    @Test("a rejected delivery is kept without the blanks around it, as replay reads it back")
    func deliveryBlanks() throws {
        let delivery = #"{"headers":{},"body":"{\"id\":\"e\"}"}"#
        let dl = try #require(rejection("\t  " + delivery + "  "))
        #expect(dl.origin.form == .delivery)
        #expect(String(decoding: dl.origin.bytes, as: UTF8.self) == delivery)
    }

    @Test("a truncated record stays truncated when dead-lettered again")
    func truncatedAgain() throws {
        let dl = try #require(rejection(#"{"error":{"stage":"parse","reason":"too_large","message":"m"},"raw":"{\"id\":","truncated":true}"#))
        #expect(dl.reason == "too_large")
        #expect(dl.origin.truncated && String(decoding: dl.origin.bytes, as: UTF8.self) == #"{"id":"#)
    }

    @Test("a delivery at the nesting limit is dead-lettered as a raw line, so its record still parses")
    func deliveryAtDepthLimit() throws {
        let deep = String(repeating: "[", count: 511) + String(repeating: "]", count: 511)
        let text = #"{"headers":{},"body":"not json","deep":"# + deep + "}"
        let dl = try #require(rejection(text))
        #expect(dl.origin.form == .raw)
        var out: [UInt8] = []
        dl.encode(at: "t", into: &out)
        guard case .rejected(let again) = parse(String(decoding: out.dropLast(), as: UTF8.self)) else { Issue.record("replay accepted"); return }
        #expect(again.reason == dl.reason)
        #expect(String(decoding: again.origin.bytes, as: UTF8.self) == text)
    }

    @Test("an oversize item is a dead letter marked truncated")
    func oversize() {
        let r = ParseStage(maxBytes: 64).parse(
            RawItem(bytes: Array(repeating: UInt8(ascii: "x"), count: 64)[...], source: SourcePosition(file: "f", line: 2), oversize: true))
        guard case .rejected(let dl) = r else { Issue.record("accepted"); return }
        #expect(dl.reason == "too_large")
        #expect(dl.origin.truncated)
    }
}

extension ParseStageTests {
    @Test("a batch parses each delivery's body in shared buffers exactly as one item alone would: escapes, line breaks, bad bodies, sizes")
    func batchBodiesMatchSingleItems() throws {
        let event = #"{"id":"e1","type":"prediction.created","created_at":"2026-06-01T00:00:00Z","data":{"note":"a \"quoted\" \u00e9 \ud83d\ude00 /"}}"#
        let bodies = [
            event,
            #"{"id":"e2","type":"alert.triggered","created_at":"2026-06-01T00:00:00Z","data":{}}"#,
            "{\n\"id\":\"e3\",\"type\":\"a\",\"created_at\":\"2026-06-01T00:00:00Z\",\"data\":{}}",  // line breaks to strip
            #"{"id":"e4","type":"a","created_at":"2026-06-01T00:00:00Z","data":{"#,  // does not parse
            "5",  // not an object
            "",
            #"{"id":"","type":"a","created_at":"2026-06-01T00:00:00Z","data":{}}"#,  // fails the envelope
            #"{"id":"e5","type":"a","created_at":"2026-06-01T00:00:00Z","data":{"pad":""# + String(repeating: "x", count: 300) + #""}}"#,  // too large
        ]
        var lines = bodies.map { Fixture.delivery($0) }
        lines.insert(event, at: 2)  // a plain event among the deliveries
        lines.insert(#"{"headers":{},"body":5}"#, at: 4)  // a body that is not a string
        lines.insert(#"{"headers":[],"body":"{}"}"#, at: 5)  // headers that are not an object
        let stage = ParseStage(maxBytes: 300)
        let items = lines.enumerated().map { RawItem(bytes: Array($1.utf8)[...], source: SourcePosition(file: "in", line: $0 + 1)) }
        var events: [Event] = []
        var dead: [DeadLetter] = []
        stage.parse(items, events: &events, deadLetters: &dead)
        var alone: [Event] = []
        var aloneDead: [DeadLetter] = []
        for item in items {
            switch stage.parse(item) {
            case .event(let e): alone.append(e)
            case .rejected(let d): aloneDead.append(d)
            }
        }
        #expect(events.count == 4 && alone.count == 4)
        #expect(events.map { Array($0.document.bytes) } == alone.map { Array($0.document.bytes) })
        #expect(events.map { $0.id } == alone.map { $0.id })
        #expect(events.map { $0.delivery.map { Array($0.body) } } == alone.map { $0.delivery.map { Array($0.body) } })
        #expect(
            events.map { $0.value(at: try! JSONPath(parsing: "data.note"))?.string } == alone.map { $0.value(at: try! JSONPath(parsing: "data.note"))?.string })
        #expect(events[0].value(at: try JSONPath(parsing: "data.note"))?.string == "a \"quoted\" é 😀 /")
        #expect(dead.map(\.reason) == aloneDead.map(\.reason))
        #expect(dead.map(\.message) == aloneDead.map(\.message))
        #expect(dead.count == 7)
    }
}

@Suite("verify stage")
struct VerifyStageTests {
    static let body = #"{"id":"e1","type":"alert.triggered","created_at":"2026-06-01T00:00:00Z","data":{}}"#

    func outcome(_ line: String, secrets: [String] = ["topsecret"], maxAge: Double? = nil, now: Double = Timestamp.parse("2026-06-01T00:00:00Z")!) async throws
        -> String
    {
        let stage = VerifyStage(secrets: secrets.map { Array($0.utf8) }, maxAge: maxAge)
        return try await stage.process([Fixture.parsed(line)], context: Fixture.context(now: now))[0].label
    }

    @Test("a good signature passes, with or without the sha256= prefix, any header case")
    func good() async throws {
        #expect(try await outcome(Fixture.delivery(Self.body)) == "pass")
        let sig = Fixture.hmacHex(Self.body, secret: "topsecret")
        #expect(try await outcome(Fixture.delivery(Self.body, signature: "sha256=" + sig)) == "pass")
        #expect(try await outcome(Fixture.delivery(Self.body, signature: sig.uppercased(), header: "X-IMMUNE-SIGNATURE")) == "pass")
    }

    @Test("rotation: any configured secret may match")
    func rotation() async throws {
        #expect(try await outcome(Fixture.delivery(Self.body, secret: "new"), secrets: ["old", "new"]) == "pass")
        #expect(try await outcome(Fixture.delivery(Self.body, secret: "old"), secrets: ["old", "new"]) == "pass")
    }

    @Test("failures say which check failed")
    func failures() async throws {
        #expect(try await outcome(Fixture.delivery(Self.body, secret: "wrong")) == "fail(bad_signature)")
        let tampered = Fixture.delivery(Self.body).replacingOccurrences(of: "alert.triggered", with: "alert.triggerex")
        #expect(try await outcome(tampered) == "fail(bad_signature)")
        #expect(try await outcome(Fixture.delivery(Self.body, signature: "xyz")) == "fail(malformed_signature)")
        #expect(try await outcome(Fixture.delivery(Self.body, header: "x-other")) == "fail(missing_signature)")
        #expect(try await outcome(Self.body) == "fail(unsigned)")
    }

    @Test("messages never contain the secret or the expected signature")
    func noSecretsInMessages() async throws {
        let stage = VerifyStage(secrets: [Array("topsecret".utf8)])
        let out = try await stage.process([Fixture.parsed(Fixture.delivery(Self.body, secret: "wrong"))], context: Fixture.context())
        guard case .fail(_, let message) = out[0] else { Issue.record("passed"); return }
        #expect(!message.contains("topsecret"))
        #expect(!message.contains(Fixture.hmacHex(Self.body, secret: "topsecret")))
    }

    @Test("max_age rejects old and future events")
    func maxAge() async throws {
        let t = Timestamp.parse("2026-06-01T00:00:00Z")!
        #expect(try await outcome(Fixture.delivery(Self.body), maxAge: 600, now: t + 300) == "pass")
        #expect(try await outcome(Fixture.delivery(Self.body), maxAge: 600, now: t + 601) == "fail(too_old)")
        #expect(try await outcome(Fixture.delivery(Self.body), maxAge: 600, now: t - 601) == "fail(in_future)")
    }
}

@Suite("filter and log stages")
struct FilterLogTests {
    @Test("filter drops by the first failing part")
    func filter() async throws {
        let (spec, _) = PipelineLoader.parse(
            yaml: "stages:\n  - parse\n  - filter:\n      types: [prediction.created]\n      match: { data.confidence: { gte: 0.8 } }\n", file: "t")
        let stage = FilterStage(condition: (spec!.stages[0].spec as! FilterSpec).condition)
        let out = try await stage.process(
            [
                Fixture.event(),
                Fixture.event(type: "alert.triggered"),
                Fixture.event(data: #"{"confidence":0.5}"#),
            ], context: Fixture.context())
        #expect(out.map(\.label) == ["pass", "drop(type)", "drop(data.confidence gte 0.8)"])
    }

    @Test("log writes JSON lines and templates, creating folders")
    func log() async throws {
        let dir = Fixture.temporaryDirectory()
        let sinks = SinkRegistry()
        let json = LogStage(sink: try sinks.sink(for: dir + "/a/b/json.log"), format: .json, fsync: true)
        let text = LogStage(
            sink: try sinks.sink(for: dir + "/text.log"), format: .text(try LogTemplate(parsing: "{{x}} {type} {data.equipment_id} {data.missing}|{data}")),
            fsync: false)
        let events = [Fixture.event(id: "a"), Fixture.event(id: "b", data: #"{"equipment_id":"line\nbreak"}"#)]
        _ = try await json.process(events, context: Fixture.context())
        _ = try await text.process(events, context: Fixture.context())
        sinks.closeAll()
        let jsonLines = try String(contentsOfFile: dir + "/a/b/json.log", encoding: .utf8).split(separator: "\n")
        #expect(jsonLines.count == 2)
        #expect(
            jsonLines[0] == #"{"id":"a","type":"prediction.created","created_at":"2026-06-01T00:00:00Z","data":{"equipment_id":"pump_001","confidence":0.9}}"#)
        let textLines = try String(contentsOfFile: dir + "/text.log", encoding: .utf8)
        #expect(
            textLines == """
                {x} prediction.created pump_001 |{"equipment_id":"pump_001","confidence":0.9}
                {x} prediction.created line break |{"equipment_id":"line\\nbreak"}

                """)
    }
}

@Suite("timestamps")
struct TimestampTests {
    @Test(
        "RFC 3339 parsing",
        arguments: [
            ("2026-06-01T00:00:00Z", 1_780_272_000.0),
            ("2026-06-01T02:00:00+02:00", 1_780_272_000.0),
            ("2026-06-01t00:00:00.250z", 1_780_272_000.25),
            ("1970-01-01T00:00:00Z", 0.0),
            ("2024-02-29T12:00:00-00:30", 1_709_209_800.0),
        ])
    func parses(_ s: String, _ expected: Double) {
        #expect(Timestamp.parse(s) == expected)
    }

    @Test(
        "rejects",
        arguments: [
            "2026-06-01", "2026-06-01 00:00:00Z", "2026-13-01T00:00:00Z", "2025-02-29T00:00:00Z",
            "2026-06-01T24:00:00Z", "2026-06-01T00:00:00", "2026-06-01T00:00:00.Z", "2026-06-01T00:00:00+0200",
        ])
    func rejects(_ s: String) {
        #expect(Timestamp.parse(s) == nil)
    }

    @Test("formatting round-trips")
    func format() {
        #expect(Timestamp.format(1_780_272_000.25) == "2026-06-01T00:00:00.250Z")
        #expect(Timestamp.parse(Timestamp.format(1_234_567_890.5)) == 1_234_567_890.5)
    }

    /// The date and time are read eight bytes at a time: every byte value at every position
    /// of several timestamps must be judged (and read) as one byte at a time would.
    @Test(
        "every byte at every position, as a byte-at-a-time reading judges it",
        arguments: [
            "2026-06-01T12:34:56Z", "2024-02-29t23:59:60.125z", "1999-12-31T00:00:00+05:30",
            "2026-06-01T09:08:07.000001-11:59", "0000-01-01T00:00:00Z",
        ])
    func everyByte(_ valid: String) {
        let base = Array(valid.utf8)
        #expect(Timestamp.parse(base[...]) == Self.reference(base))
        var disagreements: [String] = []
        for position in base.indices {
            for byte in 0...255 {
                var bytes = base
                bytes[position] = UInt8(byte)
                let expected = Self.reference(bytes)
                let (parsed, valid) = bytes.withUnsafeBufferPointer { (Timestamp.parse(buffer: $0), Timestamp.isValid(buffer: $0)) }
                if parsed != expected || valid != (expected != nil) {
                    disagreements.append("byte \(byte) at \(position): \(String(describing: parsed)), valid \(valid), expected \(String(describing: expected))")
                }
            }
        }
        #expect(disagreements.isEmpty, "\(disagreements.prefix(5))")
    }

    /// RFC 3339 read one byte at a time, as plainly as it can be written.
    static func reference(_ b: [UInt8]) -> Double? {
        func number(_ range: Range<Int>) -> Int? {
            guard range.upperBound <= b.count, range.allSatisfy({ (0x30...0x39).contains(b[$0]) }) else { return nil }
            return range.reduce(0) { $0 * 10 + Int(b[$1] - 0x30) }
        }
        func isByte(_ i: Int, _ options: String) -> Bool { i < b.count && options.utf8.contains(b[i]) }
        guard b.count >= 20, let year = number(0..<4), isByte(4, "-"), let month = number(5..<7), isByte(7, "-"),
            let day = number(8..<10), isByte(10, "Tt"), let hour = number(11..<13), isByte(13, ":"),
            let minute = number(14..<16), isByte(16, ":"), let second = number(17..<19)
        else { return nil }
        let leap = year % 4 == 0 && (year % 100 != 0 || year % 400 == 0)
        let lengths = [31, leap ? 29 : 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31]
        guard (1...12).contains(month), (1...lengths[month - 1]).contains(day), hour < 24, minute < 60, second <= 60 else { return nil }
        var i = 19
        var fraction = 0.0
        if isByte(i, ".") {
            var scale = 0.1
            i += 1
            let start = i
            while let d = number(i..<(i + 1)) {
                fraction += Double(d) * scale
                scale /= 10
                i += 1
            }
            guard i > start else { return nil }
        }
        var offset = 0
        if isByte(i, "Zz") {
            i += 1
        } else if isByte(i, "+-") {
            guard let oh = number((i + 1)..<(i + 3)), isByte(i + 3, ":"), let om = number((i + 4)..<(i + 6)), oh < 24, om < 60 else { return nil }
            offset = (oh * 60 + om) * 60 * (b[i] == UInt8(ascii: "-") ? -1 : 1)
            i += 6
        } else {
            return nil
        }
        guard i == b.count else { return nil }
        let days = Timestamp.daysFromCivil(year: year, month: month, day: day)
        return Double(days * 86_400 + hour * 3600 + minute * 60 + min(second, 59) - offset) + fraction
    }
}
