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

    @Test("a signature header sent twice (both valid) is refused, 401, saying it was sent more than once, not that it is not hex")
    func signatureSentTwice() throws {
        let h = ServeHarness(pipeline: ServeCommandTests.pipeline())
        try h.start()
        defer { h.stop() }
        let body = ServeHarness.event("twice")
        let signature = ServeHarness.sign(body)
        let r = try h.post(body, signature: .some(nil), headers: [("x-immune-signature", signature), ("X-Immune-Signature", signature)])
        #expect(r.status == 401)
        #expect(r.body.contains("holds more than one value (the header sent twice?): send one signature"), "\(r.body)")
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

    static let sealedPipeline = """
        pipeline: sealed
        state: .lymph/sealed.sqlite
        output: out.ndjson
        dead_letter: dead.ndjson
        stages:
          - parse
          - verify: { secrets: [env:IMMUNE_WEBHOOK_SECRET] }
          - dedup: { key: id }
          - schedule_maintenance: { name: tickets }
        """

    /// A line shaped like a dead-letter record whose resume point skips verify.
    static func forgedRecord(event: String, claimedKey: String, seal: String? = nil) -> String {
        let key = Data(claimedKey.utf8).base64EncodedString()
        let sealed = seal.map { #","seal":"\#($0)""# } ?? ""
        return
            #"{"error":{"stage":"tickets","reason":"invalid_field","message":"m"},"source":{"file":"x","line":1},"at":"2026-06-01T00:00:00Z","resume":{"stage":"tickets","kind":"schedule_maintenance","event":\#(event),"claims":[{"stage":"dedup-3","key":"\#(key)"}]\#(sealed)}}"#
    }

    @Test("a dead-letter record lymph did not seal cannot skip verify: the forged event is a dead letter, and its claim does not hide a genuine event")
    func forgedResumePoint() throws {
        let dir = LymphBinary.workDirectory()
        try Self.sealedPipeline.write(toFile: dir + "/p.yaml", atomically: true, encoding: .utf8)
        let env = ["IMMUNE_WEBHOOK_SECRET": "s3cret-seal"]
        let forged = #"{"id":"FORGED","type":"prediction.created","created_at":"2026-06-01T00:00:00Z","data":{}}"#
        let lines = [
            Self.forgedRecord(event: forged, claimedKey: "evt_genuine"),
            Self.forgedRecord(event: forged, claimedKey: "evt_genuine", seal: String(repeating: "ab", count: 32)),
        ]
        try (lines.joined(separator: "\n") + "\n").write(toFile: dir + "/forged.ndjson", atomically: true, encoding: .utf8)
        let r = try LymphBinary.run(["run", "p.yaml", "forged.ndjson", "--summary", "none"], in: dir, environment: env)
        #expect(r.status == 1, "\(r.stderr)")
        #expect(!((try? String(contentsOfFile: dir + "/out.ndjson", encoding: .utf8)) ?? "").contains("FORGED"))
        let dead = LymphBinary.lines(dir + "/dead.ndjson")
        #expect(dead.count == 2)
        #expect(dead.allSatisfy { $0.contains(#""reason":"invalid_dead_letter""#) && $0.contains("not sealed") }, "\(dead)")
        // The genuine event whose key the forged record claimed goes through.
        let body = Array(#"{"id":"evt_genuine","type":"alert.triggered","created_at":"2026-06-01T00:00:00Z","data":{"severity":"low"}}"#.utf8)
        let genuine = SendReportTests.delivery(body, signature: ServeHarness.sign(body, secret: "s3cret-seal"))
        try (genuine + "\n").write(toFile: dir + "/genuine.ndjson", atomically: true, encoding: .utf8)
        let g = try LymphBinary.run(["run", "p.yaml", "genuine.ndjson", "--summary", "json"], in: dir, environment: env)
        #expect(g.status == 0, "\(g.stderr)")
        #expect(g.summary["duplicates"] as? Int == 0)
        #expect(((try? String(contentsOfFile: dir + "/out.ndjson", encoding: .utf8)) ?? "").contains("evt_genuine"))
    }

    @Test("a record lymph sealed resumes past verify on replay; the same record edited by hand, or replayed under another secret, does not")
    func sealedResumePoint() throws {
        let dir = LymphBinary.workDirectory()
        try Self.sealedPipeline.write(toFile: dir + "/p.yaml", atomically: true, encoding: .utf8)
        let env = ["IMMUNE_WEBHOOK_SECRET": "s3cret-seal"]
        // A confidence past 1: schedule_maintenance fails it, after verify and dedup.
        let body = Array(
            #"{"id":"evt_bad","type":"prediction.created","created_at":"2026-06-01T00:00:00Z","data":{"equipment_id":"pump_1","confidence":1.5,"predicted_failure_time":"2026-06-09T00:00:00Z","recommended_action":"Replace seal"}}"#
                .utf8)
        try (SendReportTests.delivery(body, signature: ServeHarness.sign(body, secret: "s3cret-seal")) + "\n").write(
            toFile: dir + "/in.ndjson", atomically: true, encoding: .utf8)
        let first = try LymphBinary.run(["run", "p.yaml", "in.ndjson", "--summary", "none"], in: dir, environment: env)
        #expect(first.status == 1)
        let record = try #require(LymphBinary.lines(dir + "/dead.ndjson").first)
        #expect(record.contains(#""seal":""#))
        // Replayed as written: it resumes at the stage and fails there again, as before.
        let again = try LymphBinary.run(["replay", "p.yaml", "--summary", "none"], in: dir, environment: env)
        #expect(again.status == 1)
        let replayed = try #require(LymphBinary.lines(dir + "/dead.ndjson").first)
        #expect(replayed.contains(#""reason":"invalid_field""#) && replayed.contains(#""resume":{"stage":"tickets""#), "\(replayed)")
        // Edited by hand: no longer resumes.
        try (replayed.replacingOccurrences(of: #""confidence":1.5"#, with: #""confidence":0.95"#) + "\n").write(
            toFile: dir + "/dead.ndjson", atomically: true, encoding: .utf8)
        let edited = try LymphBinary.run(["replay", "p.yaml", "--summary", "none"], in: dir, environment: env)
        #expect(edited.status == 1)
        #expect(LymphBinary.lines(dir + "/dead.ndjson").first?.contains(#""reason":"invalid_dead_letter""#) == true)
        // A sealed record under a secret the pipeline no longer lists.
        try (replayed + "\n").write(toFile: dir + "/dead.ndjson", atomically: true, encoding: .utf8)
        let rotated = try LymphBinary.run(["replay", "p.yaml", "--summary", "none"], in: dir, environment: ["IMMUNE_WEBHOOK_SECRET": "another"])
        #expect(rotated.status == 1)
        #expect(LymphBinary.lines(dir + "/dead.ndjson").first?.contains(#""reason":"invalid_dead_letter""#) == true)
        #expect(!rotated.stderr.contains("s3cret-seal") && !rotated.stderr.contains("another"))
    }
}
