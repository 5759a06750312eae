import Foundation
import Testing
@testable import Lymph

/// A stage that stands for a crash: it stops the run (as a dead process would) after dedup.
struct CrashSpec: StageSpec {
    var summary: String { "crash" }
    func build(_ environment: StageBuildEnvironment) throws -> any Stage { CrashStage() }
}

struct CrashStage: Stage {
    struct Crash: Error {}
    func process(_ events: [Event], context: StageContext) async throws -> [StageOutcome] { throw Crash() }
}

/// A stage that rejects events whose id is listed (a later stage failing after dedup).
struct RejectSpec: StageSpec {
    let ids: Set<String>
    var summary: String { "reject" }
    func build(_ environment: StageBuildEnvironment) throws -> any Stage { RejectStage(ids: ids) }
}

struct RejectStage: Stage {
    let ids: Set<String>
    func process(_ events: [Event], context: StageContext) async throws -> [StageOutcome] {
        events.map { ids.contains($0.id) ? .fail(reason: "rejected", message: "test rejection") : .pass }
    }
}

/// A stage that emits each event twice (fan-out).
struct TwiceSpec: StageSpec {
    var summary: String { "twice" }
    func build(_ environment: StageBuildEnvironment) throws -> any Stage { TwiceStage() }
}

struct TwiceStage: Stage {
    func process(_ events: [Event], context: StageContext) async throws -> [StageOutcome] {
        events.map { .replace([$0, $0]) }
    }
}

/// A stage that takes `pause` over each batch (a slow action).
struct SlowSpec: StageSpec {
    let pause: Duration
    var summary: String { "slow" }
    func build(_ environment: StageBuildEnvironment) throws -> any Stage { SlowStage(pause: pause) }
}

struct SlowStage: Stage {
    let pause: Duration
    var runsConcurrently: Bool { false }
    func process(_ events: [Event], context: StageContext) async throws -> [StageOutcome] {
        try await Task.sleep(for: pause)
        return events.map { _ in .pass }
    }
}

/// A stage that asks for commit groups of `events` (`Stage.commitGroup`).
struct GroupSpec: StageSpec {
    let events: Int
    var summary: String { "group" }
    func build(_ environment: StageBuildEnvironment) throws -> any Stage { GroupStage(commitGroup: events) }
}

struct GroupStage: Stage {
    let commitGroup: Int
    func process(_ events: [Event], context: StageContext) async throws -> [StageOutcome] { events.map { _ in .pass } }
}

@Suite("runner and dedup")
struct RunnerTests {
    @Test(
        "drops are counted by reason whatever order the reasons come in",
        arguments: [
            [String](), ["type"], ["type", "type", "type"], ["a", "b", "a", "a", "c", "b"], ["x", "y", "y", "y", "x"],
        ])
    func dropTally(_ reasons: [String]) {
        var tally = DropTally()
        for r in reasons { tally.count(r) }
        var counted = ["earlier": 2, "a": 1]
        tally.add(to: &counted)
        var expected = ["earlier": 2, "a": 1]
        for r in reasons { expected[r, default: 0] += 1 }
        #expect(counted == expected)
    }

    let dir = Fixture.temporaryDirectory()

    func spec(_ extra: [any StageSpec] = [], window: Double = 86_400, state: String? = nil) -> PipelineSpec {
        var stages = [
            StageEntry(
                kind: "dedup", name: "dedup", hasExplicitName: true, line: 1, column: 1, when: nil,
                spec: DedupSpec(key: .path(try! JSONPath(parsing: "id")), window: window, inMemory: false))
        ]
        for (i, s) in extra.enumerated() {
            stages.append(StageEntry(kind: "test", name: "test\(i)", hasExplicitName: true, line: 1, column: 1, when: nil, spec: s))
        }
        return PipelineSpec(
            name: "t", file: "t.yaml", statePath: state ?? dir + "/state.sqlite", output: dir + "/out.ndjson",
            deadLetter: dir + "/dead.ndjson", parse: ParseStage(), stages: stages)
    }

    func write(_ lines: [String]) -> String {
        let path = dir + "/in-\(UUID().uuidString).ndjson"
        FileManager.default.createFile(atPath: path, contents: Data((lines.joined(separator: "\n") + "\n").utf8))
        return path
    }

    func run(_ spec: PipelineSpec, _ input: String) async throws -> RunSummary {
        try await Fixture.runToRelease({ try Pipeline.open(spec) }, input: input)
    }

    func lines(_ file: String) -> [String] {
        ((try? String(contentsOfFile: dir + "/" + file, encoding: .utf8)) ?? "").split(separator: "\n").map(String.init)
    }

    @Test("duplicates inside one run and one batch are caught; a second run sees all as duplicates")
    func duplicates() async throws {
        let input = write(["a", "b", "a", "c", "b"].map { Fixture.eventText(id: $0) })
        let first = try await run(spec(), input)
        #expect(first.passed == 3 && first.duplicates == 2)
        #expect(lines("out.ndjson").count == 3)
        let second = try await run(spec(), input)
        #expect(second.passed == 0 && second.duplicates == 5)
    }

    @Test("a crash between dedup and the end leaves the key uncommitted, so the event is processed again")
    func crashSemantics() async throws {
        let input = write([Fixture.eventText(id: "x1")])
        await #expect(throws: CrashStage.Crash.self) { try await run(spec([CrashSpec()]), input) }
        #expect(lines("out.ndjson").isEmpty)
        let store = try StateStore.open(path: dir + "/state.sqlite")
        #expect(try store.dedupCount(scope: store.dedupScope("dedup")) == 0)
        let rerun = try await run(spec(), input)
        #expect(rerun.passed == 1 && rerun.duplicates == 0)
        #expect(try store.dedupCount(scope: store.dedupScope("dedup")) == 1)
        let again = try await run(spec(), input)
        #expect(again.passed == 0 && again.duplicates == 1)
    }

    @Test("an event dead-lettered after dedup is not remembered, so its replay is processed")
    func deadLetterReleasesKey() async throws {
        let input = write([Fixture.eventText(id: "ok"), Fixture.eventText(id: "bad"), Fixture.eventText(id: "bad")])
        let first = try await run(spec([RejectSpec(ids: ["bad"])]), input)
        #expect(first.passed == 1 && first.deadLetters == 1 && first.duplicates == 1)
        let dead = lines("dead.ndjson")
        #expect(dead.count == 1)
        #expect(dead[0].contains(#""source":{"file":"\#(input)","line":2}"#))
        // The cause is fixed (the stage keeps its name): replaying the dead-letter file
        // processes the event once.
        let replay = try await run(spec([RejectSpec(ids: [])]), dir + "/dead.ndjson")
        #expect(replay.passed == 1 && replay.duplicates == 0)
        #expect(lines("out.ndjson").last?.contains(#""id":"bad""#) == true)
    }

    @Test("keys older than the window are forgotten")
    func window() async throws {
        let input = write([Fixture.eventText(id: "w")])
        _ = try await run(spec(window: 0.2), input)
        try await Task.sleep(for: .milliseconds(400))
        let later = try await run(spec(window: 0.2), input)
        #expect(later.passed == 1)
    }

    @Test("order is kept across many batches, and fan-out events follow their source")
    func ordering() async throws {
        let ids = (0..<20_000).map { "e\($0)" }
        let input = write(ids.map { Fixture.eventText(id: $0) })
        let s = try await run(spec([TwiceSpec()]), input)
        #expect(s.passed == 40_000)
        let out = lines("out.ndjson").map { line in String(line.split(separator: "\"")[3]) }
        #expect(out == ids.flatMap { [$0, $0] })
    }

    @Test("a claim shared by an event's replacements completes once: duplicates across commit groups are still dropped, and each key is stored once")
    func sharedClaimsAcrossCommits() async throws {
        // More than one commit group (PipelineRunner.commitEvery), then the first 5,000 again.
        let ids = (0..<25_000).map { "e\($0)" } + (0..<5_000).map { "e\($0)" }
        let input = write(ids.map { Fixture.eventText(id: $0) })
        let s = try await run(spec([TwiceSpec()]), input)
        #expect(s.itemsRead == 30_000 && s.duplicates == 5_000 && s.passed == 50_000)
        let store = try StateStore.open(path: dir + "/state.sqlite")
        let stored = try store.read { db in try Int.fetchOne(db, sql: "SELECT count(*) FROM lymph_dedup")! }
        let counted = try store.read { db in try Int.fetchOne(db, sql: "SELECT sum(keys) FROM lymph_dedup_generation")! }
        #expect(stored == 25_000 && counted == 25_000)
    }

    @Test("a run commits in groups of the most events any stage asks for, within the runner's bound; the maintenance stages ask for more than the default")
    func commitGroups() throws {
        func group(_ extra: [any StageSpec]) throws -> Int { PipelineRunner(pipeline: try Pipeline.open(spec(extra))).commitGroup }
        #expect(try group([]) == PipelineRunner.commitEvery)
        #expect(try group([GroupSpec(events: 1_000)]) == PipelineRunner.commitEvery)
        #expect(try group([GroupSpec(events: 50_000), GroupSpec(events: 30_000)]) == 50_000)
        #expect(try group([GroupSpec(events: Int.max)]) == PipelineRunner.maxCommitGroup)
        #expect(try group([ScheduleMaintenanceSpec(options: .init())]) == TicketBook.commitGroup)
        #expect(try group([TrackSensorsSpec(offlineTicket: nil, dueIn: 86_400)]) == TicketBook.commitGroup)
        #expect(TicketBook.commitGroup > PipelineRunner.commitEvery && TicketBook.commitGroup <= PipelineRunner.maxCommitGroup)
    }

    @Test("summary counts per stage")
    func summary() async throws {
        let input = write([Fixture.eventText(id: "a"), "garbage", Fixture.eventText(id: "a")])
        let s = try await run(spec(), input)
        #expect(s.itemsRead == 3 && s.passed == 1 && s.deadLetters == 1 && s.duplicates == 1)
        #expect(s.stages.map(\.name) == ["parse", "dedup"])
        #expect(s.stages[0].stats.received == 3 && s.stages[0].stats.deadLetters == 1)
        let json = try JSONSerialization.jsonObject(with: Data(s.json().utf8)) as! [String: Any]
        #expect(json["passed"] as? Int == 1 && json["duplicates"] as? Int == 1 && json["dead_letters"] as? Int == 1)
    }

    @Test("the JSON summary gives each stage's seconds: a slow stage's time is its own, within the run's")
    func stageSeconds() async throws {
        // Several batches (up to 128 KiB of input each) through a stage that takes 0.2 s a batch.
        let input = write((0..<3_000).map { Fixture.eventText(id: "e\($0)") + String(repeating: " ", count: 100) })
        let s = try await run(spec([SlowSpec(pause: .milliseconds(200))]), input)
        #expect(s.itemsRead == 3_000)
        let json = try JSONSerialization.jsonObject(with: Data(s.json().utf8)) as! [String: Any]
        let stages = try #require(json["stages"] as? [[String: Any]])
        let seconds = stages.map { $0["seconds"] as? Double ?? -1 }
        #expect(stages.map { $0["name"] as? String } == ["parse", "dedup", "test0"])
        #expect(seconds.allSatisfy { $0 >= 0 })
        // Each batch is at most 128 KiB of input, so the stage ran at least this many times.
        let size = try #require(try FileManager.default.attributesOfItem(atPath: input)[.size] as? Int)
        let batches = Double((size + (128 << 10) - 1) / (128 << 10))
        #expect(batches >= 3)
        #expect(seconds[2] >= 0.2 * batches - 0.01, "\(seconds), \(batches) batches")
        #expect(seconds[1] < seconds[2] && seconds[1] + seconds[2] <= s.seconds)
    }
}

extension Fixture {
    static func eventText(id: String, type: String = "prediction.created") -> String {
        #"{"id":"\#(id)","type":"\#(type)","created_at":"2026-06-01T00:00:00Z","data":{"confidence":0.9}}"#
    }
}
