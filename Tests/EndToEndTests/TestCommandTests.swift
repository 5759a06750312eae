import Foundation
import Testing

@Suite("lymph test, end to end")
struct TestCommandTests {
    static let pipeline = """
        pipeline: shop
        state: .lymph/shop.sqlite
        output: out.ndjson
        dead_letter: dead.ndjson
        stages:
          - parse
          - verify:
              secrets: [env:SHOP_SECRET]
          - dedup
          - filter:
              types: [prediction.created, alert.triggered]
          - schedule_maintenance
          - log:
              path: logs/shop.log
              format: text
              template: "{type} {data.equipment_id}"
        """

    static let tests = """
        pipeline: shop.yaml
        now: 2026-06-01T12:00:00Z
        secrets:
          SHOP_SECRET: sekrit-value-42
        tests:
          - name: an alert opens a ticket
            signed: true
            input:
              - { id: a1, type: alert.triggered, created_at: 2026-06-01T11:00:00Z,
                  data: { equipment_id: pump_1, metric: pressure, severity: high } }
            expect:
              output: [ { id: a1 }, { type: maintenance.scheduled, data: { equipment_id: pump_1, priority: high } } ]
              tickets: [ { equipment_id: pump_1, priority: high } ]
              logs: { log-6: [ alert.triggered pump_1, maintenance.scheduled pump_1 ] }
          - name: a sensor event passes (it does not)
            signed: true
            input:
              - { id: s1, type: sensor.status_changed, created_at: 2026-06-01T11:00:00Z, data: { sensor_id: x, status: offline } }
              - { id: s2, type: alert.triggered, created_at: 2026-06-01T11:00:00Z, data: { equipment_id: pump_2, severity: low, note: sekrit-value-42 } }
            expect:
              output: [ { id: s1 }, { id: s2, data: { severity: high } } ]
          - name: an unsigned event is a dead letter
            input:
              - { id: u1, type: alert.triggered, created_at: 2026-06-01T11:00:00Z, data: {} }
            expect:
              dead_letters: [ { id: u1, stage: verify-2, reason: unsigned } ]
        """

    /// A folder with the pipeline and its tests (`tests` in `shop.test.yaml`).
    static func folder(tests: String = tests) throws -> String {
        let dir = LymphBinary.workDirectory()
        try pipeline.write(toFile: dir + "/shop.yaml", atomically: true, encoding: .utf8)
        try tests.write(toFile: dir + "/shop.test.yaml", atomically: true, encoding: .utf8)
        return dir
    }

    @Test("every example pipeline's tests pass, and no file the pipelines name is written")
    func examples() throws {
        let dir = LymphBinary.workDirectory()
        let r = try LymphBinary.run(["test", LymphBinary.repo("pipelines")], in: dir)
        #expect(r.status == 0, "\(r.stdout)\n\(r.stderr)")
        let files = ["maintenance-http", "maintenance-notify", "maintenance", "plugins", "quickstart", "serve", "standard-webhooks", "verified"]
        for name in files {
            #expect(r.stdout.contains("ok    \(LymphBinary.repo("pipelines/\(name).test.yaml")): "), "no passing test for \(name)")
        }
        #expect(r.stdoutLines.last?.hasSuffix("in 9 files: \(r.stdoutLines.count - 1) passed, 0 failed") == true, "\(r.stdout)")
        #expect(try FileManager.default.contentsOfDirectory(atPath: dir).isEmpty)
    }

    @Test("a failing test prints ok/FAIL, a diff naming the stage that dropped the event, and exits 1; the secret never shows")
    func failingTest() throws {
        let dir = try Self.folder()
        let r = try LymphBinary.run(["test"], in: dir)
        #expect(r.status == 1)
        #expect(
            r.stdoutLines == [
                "ok    shop.test.yaml: an alert opens a ticket",
                "FAIL  shop.test.yaml:15: a sensor event passes (it does not)",
                "      output: expected 2 entries, got 1",
                #"        - missing  {"id":"s1"}"#,
                "            s1 was dropped by filter-4 (type)",
                #"        ~ expected {"id":"s2","data":{"severity":"high"}}"#,
                #"               got {"id":"s2","type":"alert.triggered","created_at":"2026-06-01T11:00:00Z","data":{"equipment_id":"pump_2","severity":"low","note":"[redacted]"}}"#,
                #"            data.severity: expected "high", got "low""#,
                "ok    shop.test.yaml: an unsigned event is a dead letter",
                "3 tests in 1 file: 2 passed, 1 failed",
            ])
        #expect(!r.stdout.contains("sekrit") && !r.stderr.contains("sekrit"))
        // Captured, not written: the pipeline's output, log, dead letters and state are not there.
        #expect(try FileManager.default.contentsOfDirectory(atPath: dir).sorted() == ["shop.test.yaml", "shop.yaml"])
    }

    @Test("--filter runs the tests whose names contain the text; one that matches none is exit 2")
    func filter() throws {
        let dir = try Self.folder()
        let r = try LymphBinary.run(["test", "shop.test.yaml", "--filter", "unsigned"], in: dir)
        #expect(r.status == 0, "\(r.stdout)\(r.stderr)")
        #expect(r.stdoutLines == ["ok    shop.test.yaml: an unsigned event is a dead letter", "1 test in 1 file: 1 passed, 0 failed"])
        let none = try LymphBinary.run(["test", "--filter", "nothing like it"], in: dir)
        #expect(none.status == 2)
        #expect(none.stderr.contains("no test's name contains 'nothing like it'"))
    }

    @Test("--format json: one object with the counts, each test's status and its failures' entries")
    func json() throws {
        let dir = try Self.folder()
        let r = try LymphBinary.run(["test", ".", "--format", "json"], in: dir)
        #expect(r.status == 1)
        #expect(!r.stdout.contains("sekrit"))
        let object = try #require(try JSONSerialization.jsonObject(with: Data(r.stdout.utf8)) as? [String: Any])
        #expect(object["passed"] as? Int == 2)
        #expect(object["failed"] as? Int == 1)
        let tests = try #require(object["tests"] as? [[String: Any]])
        #expect(tests.map { $0["status"] as? String } == ["ok", "fail", "ok"])
        let failures = try #require(tests[1]["failures"] as? [[String: Any]])
        #expect(failures.map { $0["key"] as? String } == ["output"])
        let entries = try #require(failures[0]["entries"] as? [[String: Any]])
        #expect(entries.map { $0["status"] as? String } == ["missing", "changed"])
        #expect(entries[0]["note"] as? String == "s1 was dropped by filter-4 (type)")
    }

    @Test("a broken test file is exit 2 with FILE:LINE:COLUMN and did-you-mean; the other files still run")
    func brokenFile() throws {
        let dir = try Self.folder()
        try FileManager.default.createDirectory(atPath: dir + "/more", withIntermediateDirectories: true)
        try """
        pipeline: ../shop.yaml
        now: 2026-06-01T12:00:00Z
        secrets: { SHOP_SECRET: x }
        stubs: { verify-2: pass }
        tests:
          - name: typo
            input: [ {id: e1} ]
            expect:
              dropped: [ { id: e1, stage: dedup-3, reson: duplicate } ]
              logs: { log-5: [] }
        """.write(toFile: dir + "/more/broken.test.yaml", atomically: true, encoding: .utf8)
        let r = try LymphBinary.run(["test"], in: dir)
        #expect(r.status == 2)
        #expect(
            r.stderr.split(separator: "\n").map(String.init) == [
                "more/broken.test.yaml:4:10: stage 'verify-2' is a verify stage; only exec and http stages can be stubbed",
                "more/broken.test.yaml:9:44: unknown key 'reson' in an entry of dropped; did you mean 'reason'?",
                "more/broken.test.yaml:10:15: no log stage named 'log-5' in the pipeline; did you mean 'log-6'?",
            ])
        #expect(r.stdoutLines.last == "3 tests in 2 files: 2 passed, 1 failed, 1 broken file (see above)")
        let yaml = try LymphBinary.run(["test", "more/broken.test.yaml"], in: dir, environment: [:])
        #expect(yaml.status == 2)
        try "pipeline: shop.yaml\ntests: [ {name: x\n".write(toFile: dir + "/more/broken.test.yaml", atomically: true, encoding: .utf8)
        let syntax = try LymphBinary.run(["test", "more/broken.test.yaml"], in: dir)
        #expect(syntax.status == 2)
        #expect(syntax.stderr.hasPrefix("more/broken.test.yaml:3:1: YAML syntax: "), "\(syntax.stderr)")
    }

    @Test("a test passes only on what the pipeline made: text byte for byte (no Unicode twins), a string in an event is not the JSON it holds")
    func exactComparisons() throws {
        let dir = try Self.folder(
            tests: """
                pipeline: shop.yaml
                now: 2026-06-01T12:00:00Z
                secrets: { SHOP_SECRET: x }
                tests:
                  - name: composed against decomposed
                    signed: true
                    input:
                      - { id: p1, type: prediction.created, created_at: 2026-06-01T11:00:00Z, data: { equipment_id: "cafe\\u0301", confidence: 0.1 } }
                    expect:
                      output: [ { id: p1, data: { equipment_id: "caf\\u00e9" } } ]
                  - name: a string holding JSON against a mapping
                    signed: true
                    input:
                      - { id: p2, type: prediction.created, created_at: 2026-06-01T11:00:00Z, data: { equipment_id: e, confidence: 0.1, payload: '{"a":1}' } }
                    expect:
                      output: [ { id: p2, data: { payload: { a: 1 } } } ]
                  - name: the same text and an integer written with a zero fraction still match
                    signed: true
                    input:
                      - { id: p3, type: prediction.created, created_at: 2026-06-01T11:00:00Z, data: { equipment_id: "caf\\u00e9", confidence: 0.1, n: 9007199254740993 } }
                    expect:
                      output: [ { id: p3, data: { equipment_id: "caf\\u00e9", n: 9007199254740993.0 } } ]
                """)
        let r = try LymphBinary.run(["test"], in: dir)
        #expect(r.status == 1, "\(r.stdout) \(r.stderr)")
        #expect(r.stdoutLines.last == "3 tests in 1 file: 1 passed, 2 failed", "\(r.stdout)")
    }

    @Test("a stage named in dropped or dead_letters that the pipeline lacks is a broken file (exit 2, with its place), not a failing test")
    func unknownStageInExpectations() throws {
        let dir = try Self.folder(
            tests: """
                pipeline: shop.yaml
                now: 2026-06-01T12:00:00Z
                secrets: { SHOP_SECRET: x }
                tests:
                  - name: typo
                    input: [ { id: e1, type: alert.triggered, created_at: 2026-06-01T11:00:00Z, data: {} } ]
                    expect:
                      dropped: [ { id: e1, stage: dedup-2 } ]
                      dead_letters: [ { id: e1, stage: verfy-2 } ]
                """)
        let r = try LymphBinary.run(["test"], in: dir)
        #expect(r.status == 2)
        #expect(
            r.stderr.split(separator: "\n").map(String.init) == [
                "shop.test.yaml:8:35: no stage named 'dedup-2' in the pipeline; did you mean 'dedup-3'?",
                "shop.test.yaml:9:40: no stage named 'verfy-2' in the pipeline; did you mean 'verify-2'?",
            ], "\(r.stderr)")
    }

    @Test("a broken test file whose problems are also in the pipeline file it names counts as one broken file")
    func brokenFilesCounted() throws {
        let dir = LymphBinary.workDirectory()
        try FileManager.default.createDirectory(atPath: dir + "/sub", withIntermediateDirectories: true)
        try "pipeline: ../\ntests:\n  - name: x\n    input: [ {id: a} ]\n    expect: { output: [] }\n".write(
            toFile: dir + "/sub/a.test.yaml", atomically: true, encoding: .utf8)
        let r = try LymphBinary.run(["test"], in: dir)
        #expect(r.status == 2)
        #expect(r.stdoutLines.last == "0 tests in 1 file: 0 passed, 0 failed, 1 broken file (see above)", "\(r.stdout)")
    }

    @Test("lymph --help lists the command")
    func help() throws {
        let r = try LymphBinary.run(["--help"], in: LymphBinary.workDirectory())
        #expect(r.stdout.contains("  test "))
    }
}
