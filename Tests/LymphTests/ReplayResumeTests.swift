import Foundation
import Synchronization
import Testing
@testable import Lymph

/// Remembers the ids of the events a stage saw (did a stage run again on replay?).
final class SeenIDs: Sendable {
    let ids = Mutex<[String]>([])
    var all: [String] { ids.withLock { $0 } }
}

struct SeeSpec: StageSpec {
    let seen: SeenIDs
    var summary: String { "see" }
    func build(_ environment: StageBuildEnvironment) throws -> any Stage { SeeStage(seen: seen) }
}

struct SeeStage: Stage {
    let seen: SeenIDs
    func process(_ events: [Event], context: StageContext) async throws -> [StageOutcome] {
        seen.ids.withLock { $0.append(contentsOf: events.map(\.id)) }
        return events.map { _ in .pass }
    }
}

/// Changes each event (adds `"marked":true`), so a record shows the event as it entered the
/// next stage, and a second run of this stage would show as a second mark.
struct MarkSpec: StageSpec {
    var summary: String { "mark" }
    func build(_ environment: StageBuildEnvironment) throws -> any Stage { MarkStage() }
}

struct MarkStage: Stage {
    func process(_ events: [Event], context: StageContext) async throws -> [StageOutcome] {
        try events.map { e in
            let bytes = Array(#"{"marked":true,"#.utf8) + e.document.bytes.dropFirst()
            return .replace([Event(document: try JSONDocument(parsing: bytes), source: e.source, origin: e.origin)])
        }
    }
}

@Suite("replay resumes at the stage that failed")
struct ReplayResumeTests {
    let dir = Fixture.temporaryDirectory()
    let seen = SeenIDs()

    func entry(_ kind: String, _ name: String, _ spec: any StageSpec) -> StageEntry {
        StageEntry(kind: kind, name: name, hasExplicitName: true, line: 1, column: 1, when: nil, spec: spec)
    }

    /// dedup, see, mark, reject: the event that `reject` fails passed dedup and was changed.
    func spec(rejecting ids: Set<String>?, verify: Bool = false) -> PipelineSpec {
        var stages: [StageEntry] = []
        if verify { stages.append(entry("verify", "verify", VerifySpec(secretReferences: [SecretReference("env:RESUME_TEST_SECRET")!], maxAge: nil))) }
        stages += [
            entry("dedup", "dedup", DedupSpec(key: .path(try! JSONPath(parsing: "id")), window: 86_400, inMemory: false)),
            entry("see", "see", SeeSpec(seen: seen)),
            entry("mark", "mark", MarkSpec()),
        ]
        if let ids { stages.append(entry("reject", "notify", RejectSpec(ids: ids))) }
        return PipelineSpec(
            name: "t", file: "t.yaml", statePath: dir + "/state.sqlite", output: dir + "/out.ndjson",
            deadLetter: dir + "/dead.ndjson", parse: ParseStage(), stages: stages)
    }

    func run(_ spec: PipelineSpec, _ input: String) async throws -> RunSummary {
        try await Fixture.runToRelease({ try Pipeline.open(spec, environment: ["RESUME_TEST_SECRET": "s3cret"]) }, input: input)
    }

    func write(_ lines: [String]) -> String {
        let path = dir + "/in-\(UUID().uuidString).ndjson"
        FileManager.default.createFile(atPath: path, contents: Data((lines.joined(separator: "\n") + "\n").utf8))
        return path
    }

    func lines(_ file: String) -> [String] {
        ((try? String(contentsOfFile: dir + "/" + file, encoding: .utf8)) ?? "").split(separator: "\n").map(String.init)
    }

    func records(_ file: String) -> [[String: Any]] {
        lines(file).map { try! JSONSerialization.jsonObject(with: Data($0.utf8)) as! [String: Any] }
    }

    /// Moves the dead letters aside, as `lymph replay` does, and returns the moved file.
    func takeDeadLetters() throws -> String {
        let moved = dir + "/dead-\(UUID().uuidString).ndjson"
        try FileManager.default.moveItem(atPath: dir + "/dead.ndjson", toPath: moved)
        return moved
    }

    func dedupKeys() throws -> Int {
        let store = try StateStore.open(path: dir + "/state.sqlite")
        return try store.dedupCount(scope: store.dedupScope("dedup"))
    }

    @Test("a dead letter from a later stage records the stage, the event as it entered it, its source and its claims")
    func recordHoldsResumePoint() async throws {
        let input = write([Fixture.eventText(id: "ok"), Fixture.eventText(id: "bad")])
        let first = try await run(spec(rejecting: ["bad"]), input)
        #expect(first.passed == 1 && first.deadLetters == 1)
        let record = try #require(records("dead.ndjson").first)
        let resume = try #require(record["resume"] as? [String: Any])
        #expect(resume["stage"] as? String == "notify" && resume["kind"] as? String == "reject")
        let event = try #require(resume["event"] as? [String: Any])
        #expect(event["id"] as? String == "bad" && event["marked"] as? Bool == true)
        let claims = try #require(resume["claims"] as? [[String: Any]])
        #expect(claims.count == 1 && claims[0]["stage"] as? String == "dedup" && claims[0]["key"] as? String == Data("bad".utf8).base64EncodedString())
        #expect((record["source"] as? [String: Any])?["line"] as? Int == 2)
        // The item as it came in is kept too, unchanged.
        #expect((record["raw"] as? String) == Fixture.eventText(id: "bad"))
    }

    @Test("replay re-enters at the failed stage: earlier stages do not run again, the claim commits, a second replay of the original is a duplicate")
    func resumesAtStage() async throws {
        let input = write([Fixture.eventText(id: "ok"), Fixture.eventText(id: "bad")])
        _ = try await run(spec(rejecting: ["bad"]), input)
        #expect(seen.all == ["ok", "bad"])
        #expect(try dedupKeys() == 1)
        let replay = try await run(spec(rejecting: []), try takeDeadLetters())
        #expect(replay.passed == 1 && replay.deadLetters == 0)
        #expect(seen.all == ["ok", "bad"], "the stages before the failed one ran again")
        #expect(replay.stages.first { $0.name == "see" }?.stats.resumedPast == 1)
        #expect(replay.stages.first { $0.name == "notify" }?.stats.received == 1)
        let out = lines("out.ndjson")
        #expect(out.count == 2)
        // Marked once: the event went on as it entered the failed stage, not through `mark` again.
        #expect(out[1].components(separatedBy: #""marked":true"#).count == 2)
        #expect(lines("dead.ndjson").isEmpty)
        // The claim the first run released is settled now: the original is a duplicate.
        #expect(try dedupKeys() == 2)
        let again = try await run(spec(rejecting: []), input)
        #expect(again.passed == 0 && again.duplicates == 2)
    }

    @Test("a stage that fails again makes a record that resumes there again, and the claim stays unsettled")
    func failsAgain() async throws {
        let input = write([Fixture.eventText(id: "bad")])
        _ = try await run(spec(rejecting: ["bad"]), input)
        let replay = try await run(spec(rejecting: ["bad"]), try takeDeadLetters())
        #expect(replay.deadLetters == 1 && seen.all == ["bad"])
        let record = try #require(records("dead.ndjson").first)
        #expect((record["resume"] as? [String: Any])?["stage"] as? String == "notify")
        #expect(((record["resume"] as? [String: Any])?["claims"] as? [Any])?.count == 1)
        #expect((record["source"] as? [String: Any])?["file"] as? String == input, "the first run's position is kept")
        #expect(try dedupKeys() == 0)
        let fixed = try await run(spec(rejecting: []), try takeDeadLetters())
        #expect(fixed.passed == 1 && seen.all == ["bad"])
        #expect(try dedupKeys() == 1)
    }

    @Test("a record whose stage is gone from the edited pipeline is a dead letter again, replay_stage_missing, and still resumes there")
    func stageMissing() async throws {
        let input = write([Fixture.eventText(id: "bad")])
        _ = try await run(spec(rejecting: ["bad"]), input)
        let replay = try await run(spec(rejecting: nil), try takeDeadLetters())
        #expect(replay.passed == 0 && replay.deadLetters == 1)
        #expect(seen.all == ["bad"], "never re-run from the top")
        let record = try #require(records("dead.ndjson").first)
        let error = try #require(record["error"] as? [String: Any])
        #expect(error["reason"] as? String == "replay_stage_missing" && error["stage"] as? String == "parse")
        #expect((error["message"] as? String)?.contains("'notify'") == true)
        #expect((record["resume"] as? [String: Any])?["stage"] as? String == "notify")
        // The stage is back: the record resumes there.
        let back = try await run(spec(rejecting: []), try takeDeadLetters())
        #expect(back.passed == 1 && seen.all == ["bad"])
        #expect(try dedupKeys() == 1)
    }

    @Test("a record without a resume point replays from the top")
    func oldRecord() async throws {
        var line: [UInt8] = []
        JSONStringEncoder.append(Fixture.eventText(id: "old"), to: &line)
        let record =
            #"{"error":{"stage":"notify","reason":"rejected","message":"x"},"source":{"file":"f","line":3},"at":"2026-06-01T00:00:00Z","raw":"#
            + String(decoding: line, as: UTF8.self) + "}"
        let replay = try await run(spec(rejecting: []), write([record]))
        #expect(replay.passed == 1 && seen.all == ["old"])
    }

    @Test("a failure in verify, or before it, replays the delivery from the top; after it, the event resumes")
    func verifyReplaysFromTop() async throws {
        let body = Fixture.eventText(id: "signed")
        let forged = Fixture.delivery(Fixture.eventText(id: "forged"), secret: "wrong")
        let input = write([Fixture.delivery(body, secret: "s3cret"), forged])
        let first = try await run(spec(rejecting: ["signed"], verify: true), input)
        #expect(first.deadLetters == 2)
        let byStage = Dictionary(uniqueKeysWithValues: records("dead.ndjson").map { (($0["error"] as! [String: Any])["stage"] as! String, $0) })
        #expect(byStage["verify"]?["resume"] == nil && byStage["verify"]?["delivery"] != nil)
        #expect((byStage["notify"]?["resume"] as? [String: Any])?["stage"] as? String == "notify")
        let replay = try await run(spec(rejecting: [], verify: true), try takeDeadLetters())
        // The resumed event passes; the forged delivery is checked again, and fails again.
        #expect(replay.passed == 1 && replay.deadLetters == 1)
        #expect(records("dead.ndjson").first.flatMap { ($0["error"] as? [String: Any])?["reason"] as? String } == "bad_signature")
    }
}

extension ReplayResumeTests {
    @Test("a record replayed twice (a kept file, an interrupted replay run again) does its stage's work once; one that failed stays replayable")
    func replayedOnce() async throws {
        let input = write([Fixture.eventText(id: "a"), Fixture.eventText(id: "b")])
        _ = try await run(spec(rejecting: ["a", "b"]), input)
        let kept = try takeDeadLetters()
        let copy = dir + "/copy.ndjson"
        try FileManager.default.copyItem(atPath: kept, toPath: copy)
        // "b" still fails: it stays replayable; "a" completes.
        let first = try await run(spec(rejecting: ["b"]), kept)
        #expect(first.passed == 1 && first.deadLetters == 1)
        let again = try await run(spec(rejecting: []), copy)
        #expect(again.passed == 1 && again.deadLetters == 0)
        #expect(again.stages.first?.stats.dropped["already_replayed"] == 1)
        // The same record twice in one run: once.
        try FileManager.default.removeItem(atPath: dir + "/dead.ndjson")
        _ = try await run(spec(rejecting: ["c"]), write([Fixture.eventText(id: "c")]))
        let twice = try takeDeadLetters()
        let both = write(lines((twice as NSString).lastPathComponent) + lines((twice as NSString).lastPathComponent))
        let once = try await run(spec(rejecting: []), both)
        #expect(once.passed == 1 && once.stages.first?.stats.dropped["already_replayed"] == 1)
        let out = lines("out.ndjson").filter { $0.contains(#""marked":true"#) }
        #expect(out.filter { $0.contains(#""id":"a""#) }.count == 1 && out.filter { $0.contains(#""id":"b""#) }.count == 1)
        #expect(out.filter { $0.contains(#""id":"c""#) }.count == 1)
    }
}

@Suite("the first source positions records give")
struct RecordedSourceTests {
    func record(file: String, line: Int) -> RawItem {
        let text =
            #"{"error":{"stage":"notify","reason":"r","message":"m"},"source":{"file":"\#(file)","line":\#(line)},"at":"2026-01-01T00:00:00Z","#
            + #""resume":{"stage":"notify","kind":"exec","event":{"id":"evt_1","type":"alert.triggered","created_at":"2026-01-01T00:00:00Z","data":{}},"claims":[]}}"#
        return RawItem(bytes: Array(text.utf8)[...], source: SourcePosition(file: "records.ndjson", line: 7))
    }

    func source(_ result: ParseStage.Result) -> SourcePosition? {
        if case .event(let event) = result { return event.source }
        return nil
    }

    @Test("a resumed event keeps the first position its record gives")
    func keepsFirstPosition() {
        let given = source(ParseStage().parse(record(file: "first-\(UUID().uuidString).ndjson", line: 3)))
        #expect(given?.file.hasPrefix("first-") == true && given?.line == 3)
    }

    @Test("a resumed event is taken as a stage of the pipeline passed it on, a member given twice too (an older record stays replayable)")
    func resumedEventNotCheckedAgain() {
        let text =
            #"{"error":{"stage":"notify","reason":"r","message":"m"},"source":{"file":"f","line":1},"at":"2026-01-01T00:00:00Z","#
            + #""resume":{"stage":"notify","kind":"exec","event":{"id":"evt_1","type":"t","created_at":"2026-01-01T00:00:00Z","data":{},"data":{"x":1}},"claims":[]}}"#
        guard case .event = ParseStage().parse(RawItem(bytes: Array(text.utf8)[...], source: SourcePosition(file: "r", line: 1))) else {
            Issue.record("the resumed event was refused")
            return
        }
    }

    @Test("records naming a new file each do not grow the table of file names without end: past its limit an event keeps where it was read")
    func fileNamesBounded() {
        // A limit the table has reached already (the real one, 1,024, is shared by every test
        // in this process, so it is not filled here).
        var parse = ParseStage()
        parse.recordedFileNames = 0
        let known = "known-\(UUID().uuidString).ndjson"
        _ = SourcePosition(file: known, line: 1)
        let new = source(parse.parse(record(file: "made-up-\(UUID().uuidString).ndjson", line: 3)))
        #expect(new?.file == "records.ndjson" && new?.line == 7)
        let again = source(parse.parse(record(file: known, line: 3)))
        #expect(again?.file == known && again?.line == 3)
        let long = source(ParseStage().parse(record(file: String(repeating: "x", count: SourceFiles.recordedLimit.bytes + 1), line: 1)))
        #expect(long?.file == "records.ndjson")
    }
}
