import Foundation
import Lymph
import Testing

/// Verification never fails open: not through its options, not through a missing stage.
@Suite("verify fails closed, end to end", .serialized)
struct VerifyHardeningTests {
    static let unsignedPipeline = """
        pipeline: open
        state: .lymph/open.sqlite
        output: out.ndjson
        dead_letter: dead.ndjson
        stages:
          - parse
          - dedup
        """

    @Test("verify with an empty secrets list: check, run and serve all refuse it with its position, exit 2")
    func emptySecrets() throws {
        let dir = LymphBinary.workDirectory()
        try "stages:\n  - parse\n  - verify: {secrets: []}\n".write(toFile: dir + "/p.yaml", atomically: true, encoding: .utf8)
        let expected = "p.yaml:3:23: secrets is empty; verify needs at least one secret (env:NAME or file:PATH) to check signatures with"
        for arguments in [["check", "p.yaml"], ["run", "p.yaml"], ["serve", "p.yaml", "--listen", "127.0.0.1:0"]] {
            let r = try LymphBinary.run(arguments, in: dir, stdin: Data(ServeHarness.event("e1") + [0x0A]), timeout: 30)
            #expect(r.status == 2, "\(arguments): \(r.stderr)")
            #expect(r.stderr.contains(expected), "\(arguments): \(r.stderr)")
            #expect(r.stdout.isEmpty)
        }
    }

    @Test("a secret reference that resolves to an empty value stops run and serve at start")
    func emptySecretValue() throws {
        let dir = LymphBinary.workDirectory()
        try "state: memory\nstages:\n  - parse\n  - verify: {secrets: [env:WEBHOOK_SECRET]}\n".write(toFile: dir + "/p.yaml", atomically: true, encoding: .utf8)
        try "state: s.sqlite\nstages:\n  - parse\n  - verify: {secrets: [env:WEBHOOK_SECRET]}\n".write(
            toFile: dir + "/s.yaml", atomically: true, encoding: .utf8)
        for arguments in [["run", "p.yaml"], ["serve", "s.yaml", "--listen", "127.0.0.1:0"]] {
            let r = try LymphBinary.run(arguments, in: dir, environment: ["WEBHOOK_SECRET": ""], stdin: Data(), timeout: 30)
            #expect(r.status == 2, "\(arguments): \(r.stderr)")
            #expect(r.stderr.contains("environment variable WEBHOOK_SECRET is empty"), "\(r.stderr)")
        }
    }

    @Test("serve refuses a pipeline without verify unless --allow-unsigned, which it then warns about")
    func serveWithoutVerify() throws {
        let h = ServeHarness(pipeline: Self.unsignedPipeline)
        let refused = try LymphBinary.run(["serve", "serve.yaml", "--listen", "127.0.0.1:0"], in: h.dir, timeout: 30)
        #expect(refused.status == 2)
        #expect(refused.stderr.contains("the pipeline has no verify stage, so lymph serve would accept unsigned webhooks"), "\(refused.stderr)")
        #expect(refused.stderr.contains("--allow-unsigned"))

        try h.start(arguments: ["--allow-unsigned"])
        #expect(h.stderrText.get().contains("warning: --allow-unsigned: the pipeline has no verify stage; unsigned webhooks are accepted"))
        #expect(try h.post(ServeHarness.event("u1"), signature: .some(nil)).status == 202)
        #expect(h.stop() == 0)
    }

    @Test("signatures are hex in either case: uppercase is the same MAC and is accepted; anything else is not")
    func hexCase() throws {
        let dir = LymphBinary.workDirectory()
        try "state: memory\ndead_letter: dead.ndjson\nstages:\n  - parse\n  - verify: {secrets: [env:IMMUNE_WEBHOOK_SECRET]}\n"
            .write(toFile: dir + "/p.yaml", atomically: true, encoding: .utf8)
        let body = ServeHarness.event("h1")
        let lower = ServeHarness.sign(body)
        #expect(lower == lower.lowercased())
        func delivery(_ signature: String) -> String {
            let escaped = String(decoding: body, as: UTF8.self).replacingOccurrences(of: "\"", with: "\\\"")
            return #"{"headers":{"x-immune-signature":"\#(signature)"},"body":"\#(escaped)"}"#
        }
        let lines = [delivery(lower), delivery(lower.uppercased()), delivery("sha256=" + lower.uppercased()), delivery(String(lower.dropLast()) + "g")]
        let r = try LymphBinary.run(
            ["run", "p.yaml", "--summary", "json"], in: dir, environment: ["IMMUNE_WEBHOOK_SECRET": ServeHarness.secret],
            stdin: Data(lines.joined(separator: "\n").utf8))
        #expect(r.stdoutLines.count == 3, "\(r.stderr)")
        let dead = LymphBinary.lines(dir + "/dead.ndjson")
        #expect(dead.count == 1)
        #expect(dead.first?.contains(#""reason":"malformed_signature""#) == true)
    }
}

/// A regex whose worst case on a value would take more than its bound is not run: the event is a
/// dead letter, never silently kept (under `not:`) or dropped.
@Suite("regex cost bound, end to end")
struct RegexBoundTests {
    @Test("filter, not: and when: on a value too long for a big pattern: dead letters with the reason; short values match as usual")
    func bound() throws {
        let dir = LymphBinary.workDirectory()
        try """
        state: memory
        output: out.ndjson
        dead_letter: dead.ndjson
        stages:
          - parse
          - filter: { match: { not: { data.x: { regex: '(a{1,30}){1,30}$' } } } }
          - log: { path: seen.log, when: { match: { data.y: { regex: '(b{1,30}){1,30}$' } } } }
        """.write(toFile: dir + "/p.yaml", atomically: true, encoding: .utf8)
        let long = String(repeating: "a", count: 5_000)
        let lines = [
            #"{"id":"short","type":"t","created_at":"2026-06-01T00:00:00Z","data":{"x":"zzz","y":"bbb"}}"#,
            #"{"id":"longx","type":"t","created_at":"2026-06-01T00:00:00Z","data":{"x":"\#(long)","y":"b"}}"#,
            #"{"id":"longy","type":"t","created_at":"2026-06-01T00:00:00Z","data":{"x":"z","y":"\#(String(repeating: "b", count: 5_000))"}}"#,
        ]
        let start = Date()
        let r = try LymphBinary.run(["run", "p.yaml", "--summary", "json"], in: dir, stdin: Data(lines.joined(separator: "\n").utf8))
        #expect(Date().timeIntervalSince(start) < 10)
        #expect(r.status == 1, "\(r.stderr)")
        #expect(LymphBinary.lines(dir + "/out.ndjson").count == 1)
        let dead = LymphBinary.lines(dir + "/dead.ndjson")
        #expect(dead.count == 2)
        #expect(dead.allSatisfy { $0.contains(#""reason":"regex_too_costly""#) }, "\(dead.map { $0.prefix(300) })")
        #expect(dead.first?.contains("data.x is 5000 bytes") == true)
        #expect(dead.last?.contains("data.y is 5000 bytes") == true)
    }
}
