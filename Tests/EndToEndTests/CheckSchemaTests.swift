import Foundation
import Testing

/// `lymph check` reads pipelines against IMMUNE's event types and payloads: mistakes that are
/// valid YAML and valid options, but would do the wrong thing in `run`, are warnings at their line.
@Suite("lymph check knows the IMMUNE schema")
struct CheckSchemaTests {
    /// Checks `yaml` (written as `p.yaml` in a fresh folder); stderr and the exit status.
    static func check(_ yaml: String, _ extra: [String] = []) throws -> (status: Int32, stderr: String, stdout: String) {
        let dir = LymphBinary.workDirectory()
        defer { try? FileManager.default.removeItem(atPath: dir) }
        try Data(yaml.utf8).write(to: URL(fileURLWithPath: dir + "/p.yaml"))
        try Data("#!/bin/sh\ncat\n".utf8).write(to: URL(fileURLWithPath: dir + "/notify.sh"))
        chmod(dir + "/notify.sh", 0o755)
        let r = try LymphBinary.run(["check", "p.yaml"] + extra, in: dir)
        return (r.status, r.stderr, r.stdout)
    }

    static let head = """
        pipeline: mistakes
        state: memory
        output: out.ndjson
        stages:
          - parse

        """

    @Test(
        "a misspelled path in match: a warning at its line, with the field meant",
        arguments: [
            (
                "  - filter: { match: { data.confidnce: { gte: 0.8 } } }", "p.yaml:6:24: warning: no event that reaches this stage has 'data.confidnce'",
                "did you mean 'data.confidence'?"
            ),
            (
                "  - filter: { types: [alert.trigered] }", "p.yaml:6:23: warning: no IMMUNE event has the type 'alert.trigered'",
                "did you mean 'alert.triggered'?"
            ),
            (
                "  - filter: { match: { data.confidence: { gte: \"0.85\" } } }", "p.yaml:6:48: warning: '0.85' is a string, but data.confidence is a number",
                "write 0.85 without quotes"
            ),
        ])
    func pathTypeAndValue(stage: String, warning: String, suggestion: String) throws {
        let r = try Self.check(Self.head + stage + "\n")
        #expect(r.status == 0, "warnings do not change the exit status: \(r.stderr)")
        let line = r.stderr.split(separator: "\n").first { $0.hasPrefix(warning) }
        #expect(line != nil, "\(r.stderr)")
        #expect(line?.contains(suggestion) == true, "\(r.stderr)")
    }

    @Test("a log template field that no event reaching the stage has: data.tiket_id, after schedule_maintenance")
    func templateField() throws {
        let r = try Self.check(
            Self.head + """
                  - schedule_maintenance
                  - log: { path: t.log, format: text, template: "TICKET {data.equipment_id} {data.tiket_id}", when: { types: [maintenance.scheduled] } }

                """)
        #expect(r.stderr.contains("p.yaml:7:5") == false)
        #expect(
            r.stderr.contains(
                "p.yaml:7:49: warning: no event that reaches this stage has 'data.tiket_id' (types: maintenance.scheduled); did you mean 'data.ticket_id'?"),
            "\(r.stderr)")
    }

    @Test("the fields schedule_maintenance adds to what it emits are known: source_event_count draws no warning")
    func emittedFieldsKnown() throws {
        let r = try Self.check(
            Self.head + """
                  - schedule_maintenance
                  - log: { path: t.log, format: text, template: "{data.ticket_id} {data.source_event_count}", when: { types: [maintenance.scheduled] } }

                """)
        #expect(!r.stderr.contains("source_event_count"), "\(r.stderr)")
    }

    @Test("a bare log stage while the output is stdout too: every event twice")
    func twoWritersOnStdout() throws {
        let r = try Self.check(Self.head.replacingOccurrences(of: "output: out.ndjson", with: "output: \"-\"") + "  - log\n")
        #expect(r.stderr.contains("p.yaml:6:5: warning: this log stage and the pipeline's output both write to stdout"), "\(r.stderr)")
        let quiet = try Self.check(Self.head + "  - log\n")
        #expect(!quiet.stderr.contains("both write to stdout"), "\(quiet.stderr)")
    }

    @Test("log and exec stages after schedule_maintenance without when: they see the source events too, and the warning names the types")
    func sideEffectsAfterTickets() throws {
        let r = try Self.check(
            Self.head + """
                  - schedule_maintenance
                  - log: { path: t.log, format: text, template: "TICKET {data.equipment_id}: {data.ticket_id} (due {data.due_by})" }
                  - exec: { command: ./notify.sh, output: ignore }

                """)
        #expect(
            r.stderr.contains(
                "p.yaml:7:5: warning: this log stage comes after schedule_maintenance and has no 'when:', so it sees the source events and the maintenance.scheduled events emitted for them alike (types: alert.triggered, maintenance.scheduled, prediction.created, sensor.status_changed)"
            ), "\(r.stderr)")
        #expect(r.stderr.contains("p.yaml:8:5: warning: this exec stage comes after schedule_maintenance"), "\(r.stderr)")
        // With when: nothing to say.
        let fixed = try Self.check(
            Self.head + """
                  - schedule_maintenance
                  - log: { path: t.log, format: text, template: "TICKET {data.ticket_id}", when: { types: [maintenance.scheduled] } }

                """)
        #expect(!fixed.stderr.contains("warning: this log stage"), "\(fixed.stderr)")
    }

    @Test(
        "after a plugin that replaces events, paths are not judged; schema.add declares what it adds; --strict makes warnings an error; --explain shows what reaches each stage"
    )
    func pluginsStrictAndExplain() throws {
        let unknown = try Self.check(
            Self.head + """
                  - exec: { command: ./notify.sh }
                  - filter: { match: { data.site: plant-1 } }

                """)
        #expect(!unknown.stderr.contains("warning: no event"), "\(unknown.stderr)")
        let declared = try Self.check(
            Self.head + """
                  - exec: { command: ./notify.sh, schema: { add: { data.site: string } } }
                  - filter: { match: { data.site: plant-1, data.sight: x } }

                """, ["--explain"])
        #expect(!declared.stderr.contains("has 'data.site'"), "\(declared.stderr)")
        #expect(declared.stderr.contains("p.yaml:7:44: warning: no event that reaches this stage has 'data.sight'"), "\(declared.stderr)")
        #expect(declared.stdout.contains("reads data.site, data.sight"), "\(declared.stdout)")
        let strict = try Self.check(Self.head + "  - filter: { types: [alert.trigered] }\n", ["--strict"])
        #expect(strict.status == 2, "\(strict.stderr)")
    }

    /// A value, valid for its use, for every environment variable the example pipelines name.
    static let exampleEnvironment = [
        "IMMUNE_WEBHOOK_SECRET": "x",
        "SW_WEBHOOK_SECRET": "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw",
        "FORWARD_URL": "https://lymph.example.com/webhooks",
        "FORWARD_SECRET": "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw",
        "CHAT_WEBHOOK_URL": "https://hooks.example.com/T000/B000/XXX",
        "PAGERDUTY_ROUTING_KEY": "R0000000000000000000000000000000",
    ]

    @Test("the example pipelines get no warning: each passes --strict (the secrets they name set)")
    func examplesAreClean() throws {
        let pipelines = try FileManager.default.contentsOfDirectory(atPath: LymphBinary.repo("pipelines"))
            .filter { $0.hasSuffix(".yaml") && !$0.hasSuffix(".test.yaml") }.sorted()
        #expect(pipelines.count >= 5)
        for name in pipelines {
            let r = try LymphBinary.run(["check", "--strict", "pipelines/" + name], in: LymphBinary.repo("."), environment: Self.exampleEnvironment)
            #expect(r.status == 0, "\(name): \(r.stderr)")
            let warnings = r.stderr.split(separator: "\n").filter { $0.contains("warning:") }
            #expect(warnings.isEmpty, "\(name): \(warnings)")
        }
    }

    @Test("no verify stage: a warning for a pipeline with serve: (--strict fails), a note for one that reads files (--strict passes)")
    func unsignedNoteOrWarning() throws {
        let files = try Self.check(Self.head + "  - log: { path: log.txt }\n", ["--strict"])
        #expect(files.status == 0, "\(files.stderr)")
        #expect(files.stderr.contains("p.yaml:1:1: note: the pipeline has no verify stage"), "\(files.stderr)")
        #expect(!files.stderr.contains("warning:"), "\(files.stderr)")

        let served = Self.head.replacingOccurrences(of: "stages:\n", with: "serve: { listen: 127.0.0.1:8080 }\nstages:\n") + "  - log: { path: log.txt }\n"
        let plain = try Self.check(served)
        #expect(plain.status == 0, "\(plain.stderr)")
        #expect(plain.stderr.contains("p.yaml:1:1: warning: the pipeline has no verify stage"), "\(plain.stderr)")
        let strict = try Self.check(served, ["--strict"])
        #expect(strict.status == 2, "\(strict.stderr)")
    }

    @Test("the kind column fits the longest stage kind, and --explain lists dedup's default key")
    func checkTable() throws {
        let r = try Self.check(
            Self.head + """
                  - dedup: {}
                  - schedule_maintenance: {}
                  - log: { path: log.txt, when: { types: [maintenance.scheduled] } }

                """, ["--explain"])
        #expect(r.status == 0, "\(r.stderr)")
        #expect(r.stdout.contains("schedule_maintenance  "), "\(r.stdout)")
        let dedup = r.stdout.split(separator: "\n").last { $0.contains("dedup-2") } ?? ""
        #expect(dedup.hasSuffix("; reads id"), "\(r.stdout)")
    }
}
