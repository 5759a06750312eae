import Foundation
import Testing
@testable import Lymph

/// `lymph test`'s parts: the subset matcher, the diff, each stub mode, the loader's errors, and
/// whole tests run in the library.
@Suite("lymph test: matcher, diff, stubs, test files")
struct PipelineTestingTests {
    static func yaml(_ text: String) -> TestValue {
        TestValue(yaml: text)!
    }

    // MARK: the matcher

    @Test("an expected mapping matches when every key it names is equal, whatever else the actual has")
    func subsetOfKeys() {
        let actual = Self.yaml("{id: e1, type: alert.triggered, data: {equipment_id: pump_1, severity: high, value: 9.1}}")
        #expect(SubsetMatcher.matches(Self.yaml("{id: e1}"), actual))
        #expect(SubsetMatcher.matches(Self.yaml("{data: {severity: high}}"), actual))
        #expect(SubsetMatcher.matches(Self.yaml("{}"), actual))
        #expect(!SubsetMatcher.matches(Self.yaml("{data: {severity: low}}"), actual))
        #expect(!SubsetMatcher.matches(Self.yaml("{data: {site: x}}"), actual))
    }

    @Test("the mismatch names the first differing path, and a missing key as missing")
    func mismatchPath() {
        let actual = Self.yaml("{id: e1, data: {priority: high, ids: [a, b]}}")
        #expect(
            SubsetMatcher.mismatch(Self.yaml("{data: {priority: critical}}"), actual)?.description
                == #"data.priority: expected "critical", got "high""#)
        #expect(SubsetMatcher.mismatch(Self.yaml("{data: {site: x}}"), actual)?.description == #"data.site: expected "x", but there is no such key"#)
        #expect(SubsetMatcher.mismatch(Self.yaml("{data: {ids: [a, c]}}"), actual)?.path == "data.ids[1]")
        #expect(SubsetMatcher.mismatch(Self.yaml("{data: {ids: [a]}}"), actual)?.description == #"data.ids: expected 1 entry, got 2: ["a","b"]"#)
    }

    @Test("lists match in order and with the same length; elements are matched as subsets")
    func lists() {
        let actual = Self.yaml("[{id: a, n: 1}, {id: b, n: 2}]")
        #expect(SubsetMatcher.matches(Self.yaml("[{id: a}, {id: b}]"), actual))
        #expect(!SubsetMatcher.matches(Self.yaml("[{id: b}, {id: a}]"), actual))
        #expect(!SubsetMatcher.matches(Self.yaml("[{id: a}]"), actual))
        #expect(SubsetMatcher.matches(Self.yaml("[]"), Self.yaml("[]")))
    }

    @Test("scalars: numbers by value, types strictly, times as instants, a mapping against a JSON string")
    func scalars() {
        #expect(SubsetMatcher.matches(Self.yaml("0.90"), Self.yaml("0.9")))
        #expect(SubsetMatcher.matches(Self.yaml("1e3"), Self.yaml("1000")))
        // Integers by their digits: as doubles 2^53 and 2^53 + 1 are one value.
        #expect(!SubsetMatcher.matches(Self.yaml("9007199254740992"), Self.yaml("9007199254740993")))
        #expect(SubsetMatcher.matches(Self.yaml("9007199254740993"), Self.yaml("9007199254740993")))
        #expect(SubsetMatcher.matches(Self.yaml("-0"), Self.yaml("0")) && SubsetMatcher.matches(Self.yaml("7"), Self.yaml("7.0")))
        #expect(!SubsetMatcher.matches(Self.yaml("'0.9'"), Self.yaml("0.9")), "a quoted number is a string")
        #expect(!SubsetMatcher.matches(Self.yaml("true"), Self.yaml("'true'")))
        #expect(SubsetMatcher.matches(Self.yaml("null"), Self.yaml("~")))
        #expect(SubsetMatcher.matches(.string("2026-06-01T12:00:00Z"), .string("2026-06-01T12:00:00.000Z")))
        #expect(!SubsetMatcher.matches(.string("2026-06-01T12:00:00Z"), .string("2026-06-01T12:00:01.000Z")))
        #expect(SubsetMatcher.matches(Self.yaml("{id: e1}"), .string(#"{"id":"e1","type":"t"}"#)))
        #expect(!SubsetMatcher.matches(Self.yaml("{id: e1}"), .string("e1 t")))
    }

    @Test("YAML scalars: plain ones are null, booleans, JSON numbers or text; quoted ones are text")
    func yamlScalars() {
        #expect(
            Self.yaml("{a: ~, b: true, c: -1.5e2, d: 2026-06-01T10:00:00Z, e: '3', f: 0x1F, g: yes}").json
                == #"{"a":null,"b":true,"c":-1.5e2,"d":"2026-06-01T10:00:00Z","e":"3","f":"0x1F","g":"yes"}"#)
    }

    // MARK: the diff

    @Test("a missing entry is one line, not a shift of every later pair, and says what became of the event")
    func diffAlignsAndExplains() {
        let expected = [Self.yaml("{id: e1}"), Self.yaml("{id: e2}"), Self.yaml("{id: e3}")]
        let actual = [Self.yaml("{id: e1}"), Self.yaml("{id: e3}")]
        let diff = ExpectationDiff(key: "output", expected: expected, actual: actual) { $0["id"]?.string == "e2" ? "e2 was dropped by filter-3 (type)" : nil }
        #expect(!diff.matches)
        #expect(
            diff.lines() == [
                "output: expected 3 entries, got 2",
                #"    {"id":"e1"}"#,
                #"  - missing  {"id":"e2"}"#,
                "      e2 was dropped by filter-3 (type)",
                #"    {"id":"e3"}"#,
            ])
    }

    @Test("a changed entry shows both values and where they differ; an extra one is marked +")
    func diffChangedAndExtra() {
        let diff = ExpectationDiff(
            key: "tickets", expected: [Self.yaml("{equipment_id: p1, priority: critical}")],
            actual: [Self.yaml("{equipment_id: p1, priority: high}"), Self.yaml("{equipment_id: p2}")])
        #expect(
            diff.lines() == [
                "tickets: expected 1 entry, got 2",
                #"  ~ expected {"equipment_id":"p1","priority":"critical"}"#,
                #"         got {"equipment_id":"p1","priority":"high"}"#,
                #"      priority: expected "critical", got "high""#,
                #"  + extra    {"equipment_id":"p2"}"#,
            ])
    }

    @Test("lines of text are quoted when they differ, so a blank shows; [] expected against nothing matches")
    func diffText() {
        let diff = ExpectationDiff(key: "logs.log-4", expected: [.string("a b")], actual: [.string("a b ")])
        #expect(diff.lines().contains(#"  ~ expected "a b""#))
        #expect(diff.lines().contains(#"         got "a b ""#))
        #expect(ExpectationDiff(key: "dropped", expected: [], actual: []).matches)
        #expect(!ExpectationDiff(key: "dropped", expected: [], actual: [.string("x")]).matches)
    }

    // MARK: stubs

    static func run(_ stub: StubStage.Answer, onError: ExecSpec.OnError = .deadLetter) async throws -> [StageOutcome] {
        try await StubStage(answer: stub, stageName: "notify", onError: onError).process(
            [Fixture.event(id: "e1"), Fixture.event(id: "e2")],
            context: Fixture.context())
    }

    @Test("stub pass lets every event on; drop answers nothing (no_output, as a plugin's empty answer)")
    func stubPassAndDrop() async throws {
        #expect(try await Self.run(.pass).map(\.label) == ["pass", "pass"])
        #expect(try await Self.run(.drop).map(\.label) == ["replace(0)", "replace(0)"])
    }

    @Test("stub error is a plugin_error, handled by the stage's on_error")
    func stubError() async throws {
        let outcomes = try await Self.run(.error("down"))
        guard case .fail(let reason, let message) = outcomes[0] else { Issue.record("not a failure"); return }
        #expect(reason == "plugin_error")
        #expect(message == "stage 'notify': the plugin reported: down (a test's stub)")
        #expect(try await Self.run(.error("down"), onError: .drop).map(\.label) == ["drop(on_error_drop)", "drop(on_error_drop)"])
        await #expect(throws: StageStopped.self) { try await Self.run(.error("down"), onError: .stop) }
    }

    @Test("stub error for an http stage is the destination's refusal (http_status), not a plugin's")
    func stubErrorHTTP() async throws {
        let outcomes = try await StubStage(answer: .error("down"), stageName: "page", onError: .deadLetter, http: true).process(
            [Fixture.event(id: "e1")], context: Fixture.context())
        guard case .fail(let reason, let message) = outcomes[0] else { Issue.record("not a failure"); return }
        #expect(reason == "http_status")
        #expect(message == "stage 'page': the destination answered: down (a test's stub)")
    }

    @Test("stub events replace each event, keeping its source position")
    func stubEvents() async throws {
        let doc = try JSONDocument(parsing: Array(#"{"id":"x1","type":"note"}"#.utf8))
        let outcomes = try await Self.run(.events([doc, doc]))
        guard case .replace(let events) = outcomes[1] else { Issue.record("not a replacement"); return }
        #expect(events.map(\.id) == ["x1", "x1"])
        #expect(events[0].source == Fixture.event(id: "e2").source)
    }

    @Test("stub command runs the exec stage itself with the other program")
    func stubCommand() throws {
        let dir = Fixture.temporaryDirectory()
        let file = try Self.write(
            dir, pipeline: "stages: [parse, {exec: {name: enrich, command: /bin/false, timeout: 2s}}]\n",
            tests: """
                pipeline: p.yaml
                now: 2026-06-01T12:00:00Z
                stubs:
                  enrich: { command: [/bin/cat] }
                tests:
                  - { name: t, input: [ {id: e1, type: t, created_at: 2026-06-01T00:00:00Z, data: {}} ], expect: { output: [ {id: e1} ] } }
                """)
        guard case .command(let command) = file.stubs["enrich"] else { Issue.record("not a command stub"); return }
        #expect(command.executable == "/bin/cat")
        let exec = file.spec.stages[0].spec as! ExecSpec
        let spec = StubSpec(original: exec, onError: exec.onError, stub: file.stubs["enrich"]!)
        #expect(spec.summary.hasPrefix("stubbed: "))
    }

    // MARK: the engine's seams

    @Test("a capturing registry opens no file: '-' and 'stdout' are one sink, and a write past the limit fails")
    func capturingSinks() throws {
        let registry = SinkRegistry.capturing(limit: 8)
        let a = try registry.sink(for: "-")
        #expect(try registry.sink(for: "stdout") === a)
        try a.write(Array("1234\n".utf8))
        try a.sync()
        #expect(registry.captured("stdout") == Array("1234\n".utf8))
        #expect(throws: OutputError.self) { try a.write(Array("56789".utf8)) }
        let file = Fixture.temporaryDirectory() + "/never.log"
        try registry.sink(for: file).write([0x41])
        #expect(!FileManager.default.fileExists(atPath: file))
        #expect(registry.captured(file) == [0x41])
    }

    @Test("the runner tells the drop observer each drop with its stage and reason; stages see the pipeline's clock")
    func dropsAndClock() async throws {
        let dir = Fixture.temporaryDirectory()
        let spec = try PipelineLoader.parse(
            yaml: "state: memory\noutput: none\nstages: [parse, dedup, {filter: {name: only-alerts, types: [alert.triggered]}}]\n", file: dir + "/q.yaml"
        ).0!
        let now = Timestamp.parse("2026-06-01T12:00:00Z")!
        let pipeline = try Pipeline.open(spec, sinks: .capturing(limit: 1 << 20), clock: { now })
        defer { pipeline.close() }
        #expect(pipeline.clock() == now)
        let seen = LockedValue<[DroppedEvent]>([])
        var runner = PipelineRunner(pipeline: pipeline)
        runner.dropObserver = { drop in seen.mutate { $0.append(drop) } }
        let items = [Fixture.eventText(id: "a", type: "alert.triggered"), Fixture.eventText(id: "a", type: "alert.triggered"), Fixture.eventText(id: "b")]
            .enumerated().map { RawItem(bytes: Array($1.utf8)[...], source: SourcePosition(file: "input", line: $0 + 1)) }
        _ = try await runner.run(reader: TestInputSource(items))
        #expect(seen.value.map { "\($0.id) \($0.stage) \($0.reason)" } == ["a dedup-2 duplicate", "b only-alerts type"])
    }

    // MARK: test files

    static func write(_ dir: String, pipeline: String, tests: String) throws -> PipelineTestFile {
        try pipeline.write(toFile: dir + "/p.yaml", atomically: true, encoding: .utf8)
        try tests.write(toFile: dir + "/p.test.yaml", atomically: true, encoding: .utf8)
        return try PipelineTestLoader.load(path: dir + "/p.test.yaml")
    }

    static func problems(pipeline: String, tests: String) -> [String] {
        let dir = Fixture.temporaryDirectory()
        try! pipeline.write(toFile: dir + "/p.yaml", atomically: true, encoding: .utf8)
        let (_, diagnostics) = PipelineTestLoader.parse(yaml: tests, file: dir + "/p.test.yaml")
        return diagnostics.map { $0.description.replacingOccurrences(of: dir + "/", with: "") }
    }

    static let verifyPipeline =
        "stages: [parse, {verify: {secrets: [env:HOOK_SECRET, file:/etc/lymph/old]}}, {exec: {name: notify, command: /bin/cat, output: ignore}}, {log: {path: x.log}}]\n"

    @Test("every mistake in a test file is reported at its line and column, with a suggestion")
    func loaderErrors() {
        let problems = Self.problems(
            pipeline: Self.verifyPipeline,
            tests: """
                pipeline: p.yaml
                now: yesterday
                secrets:
                  HOOK_SECRT: s1
                stubs:
                  notfy: pass
                  notify: { events: [ {id: x, type: t} ] }
                tests:
                  - name: t
                    input: [ [3] ]
                    expct: {}
                    signed: maybe
                  - name: u
                    input: [ {id: e1} ]
                    expect:
                      dropped: [ { id: e1, stge: dedup-2 } ]
                      logs: { log-3: [] }
                """)
        #expect(
            problems == [
                "p.test.yaml:2:6: now must be an RFC 3339 time such as 2026-06-01T12:00:00Z, found 'yesterday'",
                "p.test.yaml:4:3: the pipeline reads no secret 'HOOK_SECRT'; did you mean 'HOOK_SECRET'?",
                "p.test.yaml:4:3: the pipeline reads secret env:HOOK_SECRET (stage 'verify-2', line 1); give it a value under 'secrets:' (tests never read real secrets)",
                "p.test.yaml:4:3: the pipeline reads secret file:/etc/lymph/old (stage 'verify-2', line 1); give it a value under 'secrets:' (tests never read real secrets)",
                "p.test.yaml:6:3: no stage named 'notfy' in the pipeline; did you mean 'notify'?",
                "p.test.yaml:7:13: this stage has output: ignore, so its plugin's answer never replaces events; stub it with pass, drop or {error: ...}",
                "p.test.yaml:11:5: unknown key 'expct' in a test; did you mean 'expect'?",
                "p.test.yaml:10:14: each input is an event or a delivery ({headers, body}) written as a mapping, or a raw line as a string; found a list",
                "p.test.yaml:12:13: signed must be true or false, found 'maybe'",
                "p.test.yaml:9:5: a test needs 'expect:' (output, dropped, dead_letters, tickets, sensors, logs)",
                "p.test.yaml:16:28: unknown key 'stge' in an entry of dropped; did you mean 'stage'?",
                "p.test.yaml:17:15: no log stage named 'log-3' in the pipeline; did you mean 'log-4'?",
            ])
    }

    @Test("a raw line with a line break inside, and an error stub with no message, are refused where they are written")
    func rawLinesAndEmptyErrors() {
        let pipeline = "stages: [parse, {exec: {name: notify, command: /bin/cat}}]\n"
        func problems(_ tests: String) -> [String] {
            Self.problems(pipeline: pipeline, tests: "pipeline: p.yaml\nnow: 2026-06-01T00:00:00Z\n" + tests)
        }
        #expect(
            problems("tests:\n  - name: t\n    input: [\"not json\\nsecond\"]\n    expect: {output: []}\n") == [
                "p.test.yaml:5:13: a raw line holds a line break, which a run reads as the end of an item: write one string per line"
            ])
        // A block scalar's own last line break is not inside the line.
        #expect(problems("tests:\n  - name: t\n    input:\n      - |\n        not json\n    expect: {output: []}\n").isEmpty)
        #expect(problems("tests:\n  - name: t\n    input:\n      - |\n        one\n        two\n    expect: {output: []}\n").count == 1)
        #expect(
            problems("stubs:\n  notify: {error: ' '}\ntests:\n  - name: t\n    input: [x]\n    expect: {output: []}\n") == [
                "p.test.yaml:4:19: an error stub needs a message: it is the reason its dead letters give"
            ])
    }

    @Test("an input_file must be a regular file of at most 64 MiB: a device, a FIFO or a folder never ends or is no file")
    func inputFileKinds() throws {
        let dir = Fixture.temporaryDirectory()
        try "stages: [parse]\n".write(toFile: dir + "/p.yaml", atomically: true, encoding: .utf8)
        #expect(mkfifo(dir + "/fifo", 0o600) == 0)
        try FileManager.default.createDirectory(atPath: dir + "/folder", withIntermediateDirectories: true)
        // Sparse: its size says more than 64 MiB without the disk holding it.
        #expect(FileManager.default.createFile(atPath: dir + "/big.ndjson", contents: nil))
        let big = try #require(FileHandle(forWritingAtPath: dir + "/big.ndjson"))
        try big.truncate(atOffset: UInt64(PipelineTestRun.maxInputBytes + 1))
        try big.close()
        try "{}\n".write(toFile: dir + "/ok.ndjson", atomically: true, encoding: .utf8)
        func problems(_ inputFile: String) -> [String] {
            let tests = "pipeline: p.yaml\nnow: 2026-06-01T00:00:00Z\ntests:\n  - name: t\n    input_file: \(inputFile)\n    expect: { output: [] }\n"
            let (_, diagnostics) = PipelineTestLoader.parse(yaml: tests, file: dir + "/p.test.yaml")
            return diagnostics.map { $0.description.replacingOccurrences(of: dir + "/", with: "") }
        }
        #expect(problems("/dev/zero") == ["p.test.yaml:5:17: input_file '/dev/zero' is not a regular file (a device or a FIFO may never end)"])
        #expect(problems("fifo") == ["p.test.yaml:5:17: input_file 'fifo' is not a regular file (a device or a FIFO may never end)"])
        #expect(problems("folder") == ["p.test.yaml:5:17: input_file 'folder' is not a file (the path is relative to the test file's folder)"])
        #expect(problems("big.ndjson") == ["p.test.yaml:5:17: input_file 'big.ndjson' is larger than 64 MiB; a test needs far less"])
        #expect(problems("ok.ndjson").isEmpty)
        // A symlink to a regular file is read through, as the reader opens it.
        try FileManager.default.createSymbolicLink(atPath: dir + "/link.ndjson", withDestinationPath: dir + "/ok.ndjson")
        #expect(problems("link.ndjson").isEmpty)
    }

    @Test("a pipeline with errors is reported at its own positions; YAML syntax and alias bombs at theirs")
    func loaderPipelineAndYAML() {
        let broken = Self.problems(pipeline: "stages: [parse, dedupe]\n", tests: "pipeline: p.yaml\nnow: 2026-06-01T00:00:00Z\ntests: []\n")
        #expect(broken.contains("p.test.yaml:1:11: the pipeline 'p.yaml' has errors (below); `lymph check` it"))
        #expect(broken.contains { $0.hasSuffix("p.yaml:1:17: unknown stage 'dedupe'; did you mean 'dedup'?") })
        #expect(Self.problems(pipeline: "stages: [parse]\n", tests: "pipeline: [p.yaml\n").first?.hasPrefix("p.test.yaml:2:1: YAML syntax") == true)
        var bomb = "a: &a [x, x, x, x, x, x, x, x, x, x]\n"
        for n in 1...6 { bomb += "a\(n): &a\(n) [" + Array(repeating: n == 1 ? "*a" : "*a\(n - 1)", count: 10).joined(separator: ", ") + "]\n" }
        #expect(Self.problems(pipeline: "stages: [parse]\n", tests: bomb).first?.contains("aliases are expanded") == true)
    }

    @Test("a whole test runs in memory: signed inputs, a stub, captured log lines, and a failure's diff without the secret")
    func runsATest() async throws {
        let dir = Fixture.temporaryDirectory()
        let file = try Self.write(
            dir, pipeline: Self.verifyPipeline,
            tests: """
                pipeline: p.yaml
                now: 2026-06-01T12:00:00Z
                secrets: { HOOK_SECRET: hunter2-secret, "file:/etc/lymph/old": older-secret }
                stubs: { notify: { error: "no pager" } }
                tests:
                  - name: passes
                    signed: true
                    input: [ {id: e1, type: t, created_at: 2026-06-01T00:00:00Z, data: {}} ]
                    expect:
                      output: []
                      dead_letters: [ {id: e1, stage: notify, reason: plugin_error} ]
                      logs: { log-4: [] }
                  - name: fails
                    input: [ {id: e2, type: t, created_at: 2026-06-01T00:00:00Z, data: {note: hunter2-secret}} ]
                    expect:
                      output: [ {id: e2} ]
                """)
        let passed = await PipelineTestRun.run(file.tests[0], in: file)
        #expect(passed.passed, "\(passed.failureLines())")
        let failed = await PipelineTestRun.run(file.tests[1], in: file)
        #expect(!failed.passed)
        let text = failed.failureLines().joined(separator: "\n")
        #expect(text.contains("e2 went to the dead letters from verify-2 (unsigned: "))
        #expect(!text.contains("hunter2"))
        // Nothing was written where the pipeline points.
        #expect(!FileManager.default.fileExists(atPath: dir + "/x.log"))
        #expect(!FileManager.default.fileExists(atPath: dir + "/.lymph"))
    }

    @Test("signed: true signs with verify's secret wherever it is under secrets:, not with whichever comes first")
    func signsWithVerifysSecret() async throws {
        let dir = Fixture.temporaryDirectory()
        let file = try Self.write(
            dir,
            pipeline:
                "state: memory\noutput: none\nstages: [parse, {verify: {secrets: [env:WH]}}, {exec: {name: add, command: [cat], env: {TOK: env:A_TOKEN}}}]\n",
            tests: """
                pipeline: p.yaml
                now: 2026-06-01T12:00:00Z
                secrets: { A_TOKEN: token-value, WH: webhook-secret }
                tests:
                  - name: signed passes verify
                    signed: true
                    input: [ {id: e1, type: t, created_at: 2026-06-01T10:00:00Z, data: {}} ]
                    expect: { dead_letters: [] }
                """)
        let result = await PipelineTestRun.run(file.tests[0], in: file)
        #expect(result.passed, "\(result.failureLines())")
    }

    @Test("a test with no input checks nothing and is refused: input: [] or an empty input_file")
    func emptyInputRefused() throws {
        let dir = Fixture.temporaryDirectory()
        FileManager.default.createFile(atPath: dir + "/empty.ndjson", contents: Data())
        let problems = Self.problems(
            pipeline: "state: memory\nstages: [parse]\n",
            tests: """
                pipeline: p.yaml
                now: 2026-06-01T12:00:00Z
                tests:
                  - name: nothing in
                    input: []
                    expect: { output: [] }
                """)
        #expect(problems == ["p.test.yaml:5:12: input is empty: a test with no input checks nothing"], "\(problems)")
        let fromFile = Self.problems(
            pipeline: "state: memory\nstages: [parse]\n",
            tests: """
                pipeline: p.yaml
                now: 2026-06-01T12:00:00Z
                tests:
                  - name: nothing in
                    input_file: \(dir)/empty.ndjson
                    expect: { output: [] }
                """)
        #expect(fromFile.count == 1 && fromFile[0].contains("is empty: a test with no input checks nothing"), "\(fromFile)")
    }

    @Test(
        "a plain YAML scalar is a number only as JSON writes one",
        arguments: [
            ("3", true), ("-0.5", true), ("1e3", true), ("1E+3", true), ("0", true), ("-0", true), ("2.5e-2", true),
            ("01", false), ("1.", false), (".5", false), ("-", false), ("1e", false), ("1e+", false), ("0x10", false),
            ("1_000", false), ("+1", false), ("2026-06-01T00:00:00Z", false), ("", false), ("1 ", false),
        ])
    func plainNumbers(text: String, isNumber: Bool) {
        #expect(TestValue.isJSONNumber(text) == isNumber)
        if isNumber {
            #expect(TestValue.plainScalar(text) == .number(Double(text)!, text: text))
        } else if !text.isEmpty {
            #expect(TestValue.plainScalar(text) == .string(text))
        }
    }
}

/// A value behind a lock, for closures that record from other tasks.
final class LockedValue<T: Sendable>: @unchecked Sendable {
    private var stored: T
    private let lock = NSLock()
    init(_ value: T) { stored = value }
    var value: T { lock.lock(); defer { lock.unlock() }; return stored }
    func mutate(_ change: (inout T) -> Void) { lock.lock(); change(&stored); lock.unlock() }
}
