import Foundation
import TestSupport
import Testing
@testable import Lymph

/// Options that would leave a stage unable to do its job, or let unverified events through,
/// are errors with a position: never a silent no-op.
@Suite("Pipeline files fail closed")
struct FailClosedConfigTests {
    func diagnostics(_ yaml: String) -> [String] {
        let (_, d) = PipelineLoader.parse(yaml: yaml, file: "p.yaml")
        return d.errors.map(\.description)
    }

    @Test("an empty secrets list is an error, and verify never vanishes from the pipeline")
    func emptySecrets() {
        #expect(
            diagnostics("stages:\n  - parse\n  - verify: {secrets: []}\n") == [
                "p.yaml:3:23: secrets is empty; verify needs at least one secret (env:NAME or file:PATH) to check signatures with"
            ])
        #expect(
            diagnostics("stages:\n  - parse\n  - verify:\n      secrets: []\n      secret: env:K\n") == [
                "p.yaml:5:15: give either 'secrets' or 'secret', not both",
                "p.yaml:4:16: secrets is empty; verify needs at least one secret (env:NAME or file:PATH) to check signatures with",
            ])
    }

    @Test(
        "a stage whose options build nothing is an error, never dropped",
        arguments: [
            "stages:\n  - parse\n  - verify: {secrets: []}\n",
            "stages:\n  - parse\n  - verify: {secrets: [\"env:A-B\"]}\n",
            "stages:\n  - parse\n  - verify: {secrets: [\"file:  \"]}\n",
        ])
    func neverDropped(_ yaml: String) {
        let (spec, d) = PipelineLoader.parse(yaml: yaml, file: "p.yaml")
        #expect(spec == nil)
        #expect(d.hasErrors)
    }

    @Test(
        "malformed secret references are refused where they are written",
        arguments: [
            ("env:A-B", "p.yaml:3:24: secret env:A-B: 'A-B' is not an environment variable name (letters, digits and '_', not starting with a digit)"),
            ("env: FOO", "p.yaml:3:24: secret env: FOO: ' FOO' is not an environment variable name (letters, digits and '_', not starting with a digit)"),
            ("file:  ", "p.yaml:3:24: secret file:  : the file path is blank"),
        ])
    func badReferences(_ reference: String, _ expected: String) {
        #expect(diagnostics("stages:\n  - parse\n  - verify: {secrets: [\"\(reference)\"]}\n") == [expected])
    }

    @Test("a secret that resolves to an empty or blank value stops the run before it starts")
    func blankSecrets() throws {
        let env = ["EMPTY": "", "BLANK": "  \t", "REAL": "whsec_x"]
        #expect(throws: SecretError.self) { try SecretReference.environment("EMPTY").resolve(environment: env) }
        #expect(throws: SecretError.self) { try SecretReference.environment("BLANK").resolve(environment: env) }
        #expect(try SecretReference.environment("REAL").resolve(environment: env) == Array("whsec_x".utf8))
        let dir = URL(fileURLWithPath: TestScratch.directory("lymph-secret"))
        defer { try? FileManager.default.removeItem(at: dir) }
        let empty = dir.appendingPathComponent("empty").path, blank = dir.appendingPathComponent("blank").path
        _ = FileManager.default.createFile(atPath: empty, contents: Data())
        _ = FileManager.default.createFile(atPath: blank, contents: Data(" \n\n".utf8))
        do {
            _ = try SecretReference.file(empty).resolve()
            Issue.record("an empty secret file was accepted")
        } catch {
            #expect(error.description.hasSuffix("is empty"))
        }
        do {
            _ = try SecretReference.file(blank).resolve()
            Issue.record("a blank secret file was accepted")
        } catch {
            #expect(error.description.hasSuffix("is blank"))
            #expect(!error.description.contains("\n"))
        }
    }

    @Test(
        "a secret file that is a FIFO no one writes to is an error after the wait, not a hang; one whose writer comes is read; an endless device is too large")
    func secretFilesThatDoNotEnd() throws {
        let dir = TestScratch.directory("lymph-secret")
        defer { try? FileManager.default.removeItem(atPath: dir) }
        let fifo = dir + "/fifo"
        #expect(mkfifo(fifo, 0o600) == 0)
        let started = ContinuousClock.now
        do {
            _ = try SecretReference.file(fifo).resolve(fileWait: .milliseconds(300))
            Issue.record("a FIFO without a writer gave a secret")
        } catch {
            #expect(error.description.contains("gave no end within"), "\(error)")
        }
        #expect(ContinuousClock.now - started < .seconds(5))

        let writer = Thread {
            Thread.sleep(forTimeInterval: 0.1)
            let fd = open(fifo, O_WRONLY)
            _ = "whsec_from_fifo\n".withCString { write(fd, $0, 16) }
            close(fd)
        }
        writer.start()
        #expect(try SecretReference.file(fifo).resolve(fileWait: .seconds(20)) == Array("whsec_from_fifo".utf8))

        do {
            _ = try SecretReference.file("/dev/zero").resolve()
            Issue.record("/dev/zero gave a secret")
        } catch {
            #expect(error.description.contains("larger than"), "\(error)")
        }
    }

    @Test("verify cannot be skipped by 'when:' nor placed after stages that act on events")
    func verifyPlacement() {
        #expect(
            diagnostics("stages:\n  - parse\n  - verify: {secrets: [env:K], when: {types: [alert.*]}}\n") == [
                "p.yaml:3:38: verify cannot take 'when:': every event must be verified (the sender controls type and data)"
            ])
        #expect(
            diagnostics("stages:\n  - parse\n  - dedup\n  - verify: {secrets: [env:K]}\n") == [
                "p.yaml:4:5: verify must come right after parse (only filter stages may precede it); 'dedup-2' at line 3 would see unverified events"
            ])
        #expect(diagnostics("stages:\n  - parse\n  - filter: {types: [a]}\n  - verify: {secrets: [env:K]}\n  - log\n").isEmpty)
    }

    @Test(
        "empty conditions and empty operator arguments are errors",
        arguments: [
            ("  - filter:\n      types: [a]\n      match: {}\n", "p.yaml:5:14: match is empty: it would test nothing (remove it, or add a condition)"),
            (
                "  - filter:\n      match: {all: [{}, {data.severity: critical}]}\n",
                "p.yaml:4:21: an empty condition tests nothing; write at least one field test"
            ),
            (
                "  - filter:\n      match: {any: [{}, {data.severity: critical}]}\n",
                "p.yaml:4:21: an empty condition tests nothing; write at least one field test"
            ),
            ("  - filter:\n      match: {not: {}, data.x: 1}\n", "p.yaml:4:20: an empty condition tests nothing; write at least one field test"),
            ("  - filter:\n      match: {data.x: {nin: []}}\n", "p.yaml:4:29: nin needs at least one value (an empty list would match everything)"),
            ("  - filter:\n      match: {data.x: {in: []}}\n", "p.yaml:4:28: in needs at least one value (an empty list would match nothing)"),
            (
                "  - filter:\n      match: {data.x: {prefix: \"\"}}\n",
                "p.yaml:4:32: prefix is empty: every string would match (use 'exists: true' to test presence)"
            ),
            (
                "  - filter:\n      match: {data.x: {contains: \"\"}}\n",
                "p.yaml:4:34: contains is empty: every string would match (use 'exists: true' to test presence)"
            ),
            (
                "  - filter:\n      match: {data.x: {regex: \"\"}}\n",
                "p.yaml:4:31: regex is empty: every string would match (use 'exists: true' to test presence)"
            ),
            ("  - log:\n      when: {types: [a], match: {}}\n", "p.yaml:4:33: match is empty: it would test nothing (remove it, or add a condition)"),
            (
                "  - schedule_maintenance: {alert_severities: []}\n",
                "p.yaml:3:46: alert_severities is empty: no alert would ever open a ticket (leave it out for [high, critical])"
            ),
            ("  - track_sensors: {ticket_due_in: 2h}\n", "p.yaml:3:36: ticket_due_in is only used with offline_ticket (which opens the tickets it dates)"),
            ("  - log: {format: text, template: \"  \"}\n", "p.yaml:3:35: template is empty: every event would log a blank line"),
            ("  - log: {name: \"\"}\n", "p.yaml:3:17: a stage name cannot be empty or blank"),
        ])
    func emptyOptions(_ stage: String, _ expected: String) {
        #expect(diagnostics("stages:\n  - parse\n" + stage) == [expected])
    }

    @Test("a text log's template with a line break or another control character is an error: each event's line would split; a tab is kept")
    func controlCharacterInTemplate() {
        #expect(
            diagnostics("stages:\n  - parse\n  - log: {format: text, template: \"{id}\\n{type}\"}\n") == [
                "p.yaml:3:35: template holds a line break or another control character: a text log is one line per event"
            ])
        #expect(diagnostics("stages:\n  - parse\n  - log:\n      format: text\n      template: |\n        {id}\n").count == 1)
        #expect(diagnostics("stages:\n  - parse\n  - log: {format: text, template: \"{id}\\t{type}\"}\n").isEmpty)
    }

    @Test("a stage name with a control character is an error: a dedup scope named so is Lymph's own")
    func controlCharacterInStageName() {
        #expect(
            diagnostics("stages:\n  - parse\n  - dedup: {name: \"\\0ticket-sources\"}\n") == ["p.yaml:3:19: a stage name cannot contain control characters"])
    }

    @Test(
        "top-level values that would lose state or mix outputs are errors",
        arguments: [
            ("state: \"\"\n", "p.yaml:1:8: state must be a file path, 'memory', or {postgres: env:NAME}"),
            ("output: \"\"\n", "p.yaml:1:9: output must be '-' (stdout), a file path, or 'none'"),
            (
                "output: out.ndjson\ndead_letter: ./out.ndjson\n",
                "p.yaml:2:14: dead_letter and output are the same ('./out.ndjson'): rejected items would mix with passed events"
            ),
            ("dead_letter: \"-\"\n", "p.yaml:1:14: dead_letter and output are the same ('-'): rejected items would mix with passed events"),
            ("serve: {path: /healthz}\n", "p.yaml:1:15: path /healthz is the server's own GET route /healthz; choose another, such as /webhooks"),
            // Compared by components, as the server matches paths: a second route there stopped it.
            ("serve: {path: /metrics/}\n", "p.yaml:1:15: path /metrics/ is the server's own GET route /metrics; choose another, such as /webhooks"),
            ("serve: {path: //healthz}\n", "p.yaml:1:15: path //healthz is the server's own GET route /healthz; choose another, such as /webhooks"),
            (
                "serve: {path: /hooks/:id}\n",
                "p.yaml:1:15: path must be a plain path: ':id' holds a character the router reads as a pattern, a query or a space"
            ),
            ("serve: {path: webhooks}\n", "p.yaml:1:15: path must start with '/', such as /webhooks"),
            // Not quoted back: an escape in a pattern-looking part would reach the terminal.
            ("serve: {path: \"/*\\e[2J\"}\n", "p.yaml:1:15: path must not contain control characters"),
        ])
    func topLevel(_ head: String, _ expected: String) {
        #expect(diagnostics(head + "stages: [parse]\n") == [expected])
    }
}

@Suite("Pipeline files: hostile sizes")
struct HostilePipelineTests {
    @Test("a YAML alias bomb is refused at once, within the node limit")
    func aliasBomb() {
        var bomb = "defs:\n"
        bomb += "  a0: &a0 {data.x: 1}\n"
        for level in 1...9 {
            let refs = Array(repeating: "*a\(level - 1)", count: 10).joined(separator: ", ")
            bomb += "  a\(level): &a\(level) {any: [\(refs)]}\n"
        }
        bomb += "stages:\n  - parse\n  - filter:\n      match: *a9\n"
        let start = ContinuousClock.now
        let (spec, d) = PipelineLoader.parse(yaml: bomb, file: "p.yaml")
        let elapsed = ContinuousClock.now - start
        #expect(spec == nil)
        #expect(d.errors.count == 1)
        #expect(d.errors.first?.message.contains("more than 20000 YAML nodes or 1 MiB of text once its aliases are expanded") == true, "\(d.errors)")
        #expect(elapsed < .seconds(1), "took \(elapsed)")
    }

    @Test("one long scalar aliased many times is refused by its expanded bytes, at once")
    func longScalarBomb() {
        var yaml = "defs:\n  s: &s \"" + String(repeating: "x", count: 200_000) + "\"\n"
        yaml += "  l1: &l1 [" + Array(repeating: "{data.x: {eq: *s}}", count: 10).joined(separator: ", ") + "]\n"
        yaml += "  l2: &l2 [" + Array(repeating: "{any: *l1}", count: 10).joined(separator: ", ") + "]\n"
        yaml += "stages:\n  - parse\n  - filter:\n      match: {any: *l2}\n"
        let start = ContinuousClock.now
        let (spec, d) = PipelineLoader.parse(yaml: yaml, file: "p.yaml")
        #expect(ContinuousClock.now - start < .seconds(1))
        #expect(spec == nil)
        #expect(d.errors.first?.message.contains("1 MiB of text once its aliases are expanded") == true, "\(d.errors)")
    }

    @Test("aliases within the limit still work")
    func smallAliases() throws {
        let (spec, d) = PipelineLoader.parse(
            yaml: """
                stages:
                  - parse
                  - filter:
                      match: &serious { data.severity: { in: [high, critical] } }
                  - log:
                      when: { match: *serious }
                """, file: "p.yaml")
        #expect(d.errors.isEmpty, "\(d.errors)")
        #expect(try #require(spec).stages.count == 2)
    }

    @Test("a 400 KB unknown stage name is reported at once, cut to 80 characters, with no suggestion search")
    func hugeKey() {
        let name = String(repeating: "x", count: 400_000)
        let start = ContinuousClock.now
        let errors = PipelineLoader.parse(yaml: "stages:\n  - parse\n  - \(name)\n", file: "p.yaml").1.errors
        #expect(ContinuousClock.now - start < .seconds(1))
        #expect(errors.count == 1)
        let message = errors.first?.message ?? ""
        #expect(message.hasPrefix("unknown stage '\(String(repeating: "x", count: 80))…'"), "\(message.prefix(200))")
        #expect(message.count < 400)
    }

    @Test("a pipeline name is short and printable; a file of 4,000 bad keys lists 100 problems and says so")
    func namesAndCaps() {
        #expect(
            PipelineLoader.parse(yaml: "pipeline: \"a\\nb\"\nstages: [parse]\n", file: "p.yaml").1.errors.first?.message
                == "pipeline name must be 1 to 100 characters with no '/' and no control characters")
        #expect(PipelineLoader.parse(yaml: "pipeline: \(String(repeating: "n", count: 101))\nstages: [parse]\n", file: "p.yaml").0 == nil)
        let keys = (0..<4_000).map { "k\($0): 1" }.joined(separator: "\n")
        let errors = PipelineLoader.parse(yaml: keys + "\nstages: [parse]\n", file: "p.yaml").1.errors
        #expect(errors.count == 101)
        #expect(errors.last?.message == "too many problems; the rest are not listed")
    }

    @Test("suggestions skip words far from every candidate in length")
    func suggestionBound() {
        #expect(Suggestion.closest(to: "dedupe", in: ["dedup", "parse"]) == "dedup")
        #expect(Suggestion.closest(to: String(repeating: "d", count: 5000), in: ["dedup"]) == nil)
    }
}

@Suite("Pipeline files: alias bombs in keys")
struct AliasKeyBombTests {
    @Test("an alias bomb used as a mapping key is refused before Yams composes it")
    func keyBomb() {
        var yaml = "defs:\n  a0: &a0 [x, x, x, x, x, x, x, x, x, x]\n"
        for level in 1...8 {
            yaml += "  a\(level): &a\(level) [" + Array(repeating: "*a\(level - 1)", count: 10).joined(separator: ", ") + "]\n"
        }
        yaml += "keys:\n  ? *a8\n  : 1\n  ? *a7\n  : 2\nstages: [parse]\n"
        let start = ContinuousClock.now
        let (spec, d) = PipelineLoader.parse(yaml: yaml, file: "p.yaml")
        #expect(ContinuousClock.now - start < .seconds(1))
        #expect(spec == nil)
        #expect(d.errors.map(\.description).first?.hasPrefix("p.yaml:") == true)
        #expect(d.errors.first?.message.contains("alias bomb") == true, "\(d.errors)")
    }
}

@Suite("regex conditions on hostile values")
struct RegexConditionTests {
    static func condition(_ pattern: String, negated: Bool = false) throws -> Condition {
        let match = negated ? "{not: {data.x: {regex: '\(pattern)'}}}" : "{data.x: {regex: '\(pattern)'}}"
        let (spec, d) = PipelineLoader.parse(yaml: "stages:\n  - parse\n  - filter: {match: \(match)}\n", file: "p.yaml")
        let filter = try #require(spec?.stages.first?.spec as? FilterSpec, "\(d.items)")
        return filter.condition
    }

    static func event(_ value: String) throws -> Event {
        Fixture.event(data: #"{"x":"\#(value)"}"#)
    }

    @Test(
        "a catastrophic pattern on a crafted value answers in milliseconds, correctly",
        arguments: [
            ("(a+)+$", String(repeating: "a", count: 30) + "!", false),
            ("(a|aa)+$", String(repeating: "a", count: 5000) + "!", false),
            ("(.*a){20}", String(repeating: "a", count: 20), true),
            ("^(a|b)*$", String(repeating: "a", count: 200_000), true),
        ])
    func linear(_ pattern: String, _ value: String, _ expected: Bool) throws {
        let c = try Self.condition(pattern)
        let e = try Self.event(value)
        let start = ContinuousClock.now
        #expect(try c.matches(e) == expected)
        #expect(ContinuousClock.now - start < .milliseconds(500), "\(pattern) took \(ContinuousClock.now - start)")
    }

    @Test("a match the engine could not finish is never turned into a pass by not:")
    func negatedLongValue() throws {
        let c = try Self.condition("(.*a){20}", negated: true)
        #expect(try c.matches(try Self.event(String(repeating: "a", count: 21) + "!")) == false)
    }
}
