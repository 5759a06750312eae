import Foundation
import Lymph
import Testing

/// Every signature scheme against code Lymph did not write: Standard Webhooks' own test vectors
/// and its Python package (`standardwebhooks`, PyPI), and GitHub's, Stripe's and a generic
/// HMAC written with Python's `hmac` from each sender's documentation
/// (scripts/signature_conformance.py), in both directions: what Python signs, `lymph run` and
/// `lymph serve` accept; what `lymph sign` signs, Python accepts; and a changed byte fails both.
@Suite("signature schemes: conformance with independent implementations", .serialized)
struct SignatureConformanceTests {
    /// The Standard Webhooks spec's test secret; the others use a plain one.
    static let swSecret = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"
    static let plainSecret = "It's a Secret to Everybody"
    static let schemes = ["standard_webhooks", "github", "stripe", "hmac"]

    static func secret(_ scheme: String) -> String { scheme == "standard_webhooks" ? swSecret : plainSecret }

    /// The verify options of `scheme` in a pipeline.
    static func verifyOptions(_ scheme: String) -> String {
        scheme == "hmac"
            ? "{scheme: hmac, header: X-Signature, algorithm: sha512, encoding: base64, prefix: 'sha512=', secrets: [env:S]}"
            : "{scheme: \(scheme), secrets: [env:S]}"
    }

    /// `lymph sign`'s options for `scheme`.
    static func signOptions(_ scheme: String) -> [String] {
        scheme == "hmac"
            ? ["--scheme", "hmac", "--header", "X-Signature", "--algorithm", "sha512", "--encoding", "base64", "--prefix", "sha512="]
            : ["--scheme", scheme]
    }

    /// A Python with `standardwebhooks`, in a venv made once under .build (PyPI is reachable
    /// where the tests run; scripts/setup installs python3).
    static let python: String = {
        let venv = LymphBinary.repo(".build/conformance-venv")
        let python = venv + "/bin/python"
        if !FileManager.default.fileExists(atPath: venv + "/.ready") {
            for command in [["python3", "-m", "venv", venv], [python, "-m", "pip", "install", "-q", "standardwebhooks==1.1.0"]] {
                let r = Shell.run(command, timeout: 300)
                precondition(r.status == 0, "\(command.joined(separator: " ")): \(r.stderr)")
            }
            _ = FileManager.default.createFile(atPath: venv + "/.ready", contents: Data())
        }
        return python
    }()

    static func conformance(_ command: String, _ scheme: String, input: String, timestamp: Int? = nil) -> [String] {
        var env = ["CONFORMANCE_SECRET": secret(scheme)]
        if let timestamp { env["CONFORMANCE_TIMESTAMP"] = String(timestamp) }
        let r = Shell.run([python, LymphBinary.repo("scripts/signature_conformance.py"), command, scheme], environment: env, stdin: input, timeout: 60)
        #expect(r.status == 0, "\(r.stderr)")
        return r.stdout.split(separator: "\n").map(String.init)
    }

    static func bodies(_ n: Int, prefix: String) -> [String] {
        (1...n).map { #"{"id":"\#(prefix)-\#($0)","type":"alert.triggered","created_at":"2026-06-01T10:00:00Z","data":{"note":"é \"quoted\" \#($0)"}}"# }
    }

    @Test("Standard Webhooks' own test vectors: the signing vector, several signatures, secrets with and without prefix and padding")
    func standardWebhooksVectors() throws {
        let dir = LymphBinary.workDirectory()
        let payload = #"{"test": 2432232314}"#
        let signed = try LymphBinary.run(
            ["sign", "--scheme", "standard_webhooks", "--secret", "env:S", "--id", "msg_p5jXN8AQM9LWM0D4loKWxJek", "--timestamp", "1614265330"],
            in: dir, environment: ["S": Self.swSecret], stdin: Data(payload.utf8))
        #expect(signed.status == 0, "\(signed.stderr)")
        #expect(signed.stdoutLines.last == "webhook-signature: v1,g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OE=")

        // The library tests' other cases, as verify sees them: a valid signature among others
        // (one of an unknown version), the same secret without its prefix and without padding.
        // (An IMMUNE event as the body: the parse stage wants one.)
        let now = Int(Date().timeIntervalSince1970)
        let event = #"{"id":"vector","type":"alert.triggered","created_at":"2026-06-01T10:00:00Z","data":{"test":2432232314}}"#
        func delivery(_ secret: String, signature: (String) -> String) throws -> String {
            let r = try LymphBinary.run(
                ["sign", "--scheme", "standard_webhooks", "--secret", "env:S", "--id", "msg_p5jXN8AQM9LWM0D4loKWxJek", "--timestamp", String(now), "--value"],
                in: dir, environment: ["S": secret], stdin: Data(event.utf8))
            let headers = [
                "webhook-id": "msg_p5jXN8AQM9LWM0D4loKWxJek", "webhook-timestamp": String(now),
                "webhook-signature": signature(r.stdout.trimmingCharacters(in: .newlines)),
            ]
            return String(decoding: try JSONSerialization.data(withJSONObject: ["headers": headers, "body": event]), as: UTF8.self)
        }
        let multi = try delivery(Self.swSecret) { "v1,Ceo5qEr07ixe2NLpvHk3FH9bwy/WavXrAFQ/9tdO6mc= v2,Ceo5qEr07ixe2NLpvHk3FH9bwy/WavXrAFQ/9tdO6mc= \($0)" }
        let wrong = try delivery(Self.swSecret) { _ in "v1,g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OA=" }
        let unpadded = try delivery("whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSwBr==") { $0 }
        try "state: memory\ndead_letter: dead.ndjson\nstages:\n  - parse\n  - verify: {scheme: standard_webhooks, secrets: [env:S]}\n"
            .write(toFile: dir + "/p.yaml", atomically: true, encoding: .utf8)
        for (secret, lines, passing) in [
            (Self.swSecret, [multi, wrong], 1), ("MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw", [multi], 1), ("MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSwBr", [unpadded], 1),
        ] {
            try? FileManager.default.removeItem(atPath: dir + "/dead.ndjson")
            let r = try LymphBinary.run(["run", "p.yaml"], in: dir, environment: ["S": secret], stdin: Data(lines.joined(separator: "\n").utf8))
            #expect(r.stdoutLines.count == passing, "\(r.stderr)")
            #expect(LymphBinary.lines(dir + "/dead.ndjson").count == lines.count - passing)
        }
        #expect(LymphBinary.lines(dir + "/dead.ndjson").isEmpty)
    }

    @Test("GitHub's documented example: sha256=757107ea... for 'Hello, World!'")
    func gitHubExample() throws {
        let r = try LymphBinary.run(
            ["sign", "--scheme", "github", "--secret", "env:S"], in: LymphBinary.workDirectory(), environment: ["S": Self.plainSecret],
            stdin: Data("Hello, World!".utf8))
        #expect(r.stdout == "X-Hub-Signature-256: sha256=757107ea0eb2509fc211221cce984b8a37570b6d7586c22c46f4379c8b043e17\n", "\(r.stderr)")
    }

    @Test("what Python signs, lymph run accepts; a changed byte is bad_signature", arguments: schemes)
    func pythonSignsLymphRunVerifies(scheme: String) throws {
        let dir = LymphBinary.workDirectory()
        try "state: memory\ndead_letter: dead.ndjson\nstages:\n  - parse\n  - verify: \(Self.verifyOptions(scheme))\n"
            .write(toFile: dir + "/p.yaml", atomically: true, encoding: .utf8)
        var deliveries = Self.conformance("sign", scheme, input: Self.bodies(20, prefix: scheme).joined(separator: "\n"))
        #expect(deliveries.count == 20)
        // The last one's body altered after signing.
        deliveries[19] = deliveries[19].replacingOccurrences(of: "\(scheme)-20", with: "\(scheme)-21")
        let r = try LymphBinary.run(["run", "p.yaml"], in: dir, environment: ["S": Self.secret(scheme)], stdin: Data(deliveries.joined(separator: "\n").utf8))
        #expect(r.status == 0 || r.status == 1, "\(r.stderr)")
        #expect(r.stdoutLines.count == 19, "\(r.stderr)")
        let dead = LymphBinary.lines(dir + "/dead.ndjson")
        #expect(dead.count == 1)
        #expect(dead.first?.contains(#""reason":"bad_signature""#) == true)
        #expect(dead.first?.contains(Self.secret(scheme)) == false)
    }

    @Test("what lymph sign signs, Python accepts; a changed byte it refuses", arguments: schemes)
    func lymphSignsPythonVerifies(scheme: String) throws {
        let dir = LymphBinary.workDirectory()
        var deliveries: [String] = []
        for body in Self.bodies(5, prefix: scheme) {
            let r = try LymphBinary.run(
                ["sign", "--secret", "env:S"] + Self.signOptions(scheme), in: dir, environment: ["S": Self.secret(scheme)], stdin: Data(body.utf8))
            #expect(r.status == 0, "\(r.stderr)")
            var headers: [String: String] = [:]
            for line in r.stdoutLines {
                let parts = line.split(separator: ":", maxSplits: 1).map { $0.trimmingCharacters(in: .whitespaces) }
                headers[parts[0]] = parts[1]
            }
            let json = try JSONSerialization.data(withJSONObject: ["headers": headers, "body": body])
            deliveries.append(String(decoding: json, as: UTF8.self))
        }
        let tampered = deliveries[0].replacingOccurrences(of: "\(scheme)-1", with: "\(scheme)-9")
        let verdicts = Self.conformance("verify", scheme, input: (deliveries + [tampered]).joined(separator: "\n"))
        #expect(verdicts == Array(repeating: "ok", count: 5) + [verdicts.last ?? ""])
        #expect(verdicts.last?.hasPrefix("fail") == true, "\(verdicts)")
    }

    @Test("timestamps: Standard Webhooks and Stripe signatures older or newer than the tolerance are too_old and in_future")
    func tolerance() throws {
        let dir = LymphBinary.workDirectory()
        for scheme in ["standard_webhooks", "stripe"] {
            try "state: memory\ndead_letter: dead.ndjson\nstages:\n  - parse\n  - verify: {scheme: \(scheme), secrets: [env:S], tolerance: 1m}\n"
                .write(toFile: dir + "/p.yaml", atomically: true, encoding: .utf8)
            try? FileManager.default.removeItem(atPath: dir + "/dead.ndjson")
            let now = Int(Date().timeIntervalSince1970)
            let lines: [String] = [now - 600, now + 600, now - 10].flatMap { (t: Int) -> [String] in
                Self.conformance("sign", scheme, input: Self.bodies(1, prefix: "t\(t)")[0], timestamp: t)
            }
            let r = try LymphBinary.run(["run", "p.yaml"], in: dir, environment: ["S": Self.secret(scheme)], stdin: Data(lines.joined(separator: "\n").utf8))
            #expect(r.stdoutLines.count == 1, "\(scheme): \(r.stderr)")
            let reasons = LymphBinary.lines(dir + "/dead.ndjson").compactMap { line in
                ["too_old", "in_future"].first { line.contains(#""reason":"\#($0)""#) }
            }
            #expect(reasons == ["too_old", "in_future"], "\(scheme)")
        }
    }

    @Test("lymph serve checks Standard Webhooks signatures before the spool (401 for a forged one) and dedups by webhook-id")
    func serveStandardWebhooks() throws {
        let h = ServeHarness(
            pipeline: """
                pipeline: sw
                state: state.sqlite
                output: out.ndjson
                dead_letter: dead.ndjson
                stages:
                  - parse
                  - verify: {scheme: standard_webhooks, secrets: [env:S]}
                  - dedup: {key: "header:webhook-id"}
                """, environment: ["S": Self.swSecret])
        try h.start()
        let signed = Self.conformance("sign", "standard_webhooks", input: Self.bodies(3, prefix: "serve").joined(separator: "\n"))
        var ids: [String] = []
        for line in signed {
            let delivery = try #require(try JSONSerialization.jsonObject(with: Data(line.utf8)) as? [String: Any])
            let headers = try #require(delivery["headers"] as? [String: String])
            let body = Array((try #require(delivery["body"] as? String)).utf8)
            ids.append(headers["webhook-id"] ?? "")
            #expect(try h.post(body, signature: .some(nil), headers: headers.map { ($0.key, $0.value) }).status == 202)
            // The same message again (a sender's retry): accepted, then dropped by its id.
            #expect(try h.post(body, signature: .some(nil), headers: headers.map { ($0.key, $0.value) }).status == 202)
        }
        let forged = try h.post(
            Self.bodies(1, prefix: "forged")[0].utf8.map { $0 }, signature: .some(nil),
            headers: [
                ("webhook-id", "msg_forged"), ("webhook-timestamp", String(Int(Date().timeIntervalSince1970))),
                ("webhook-signature", "v1,g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OE="),
            ])
        #expect(forged.status == 401)
        #expect(forged.body.contains("bad_signature"))
        try h.waitForDrain()
        #expect(h.stop() == 0)
        let out = LymphBinary.lines(h.dir + "/out.ndjson")
        #expect(out.count == 3, "\(out)")
        #expect(!h.stderrText.get().contains(Self.swSecret))
        _ = ids
    }

    @Test("lymph send --scheme signs each request as the receiver checks it: all 202 with the right secret, all 401 with another")
    func sendWithScheme() throws {
        for scheme in ["github", "stripe", "standard_webhooks"] {
            let h = ServeHarness(
                pipeline: """
                    pipeline: s
                    state: state.sqlite
                    output: out.ndjson
                    stages:
                      - parse
                      - verify: {scheme: \(scheme), secrets: [env:S]}
                    """, environment: ["S": Self.secret(scheme)])
            try h.start()
            let input = Data(Self.bodies(10, prefix: "send").joined(separator: "\n").utf8)
            let url = "http://127.0.0.1:\(h.port)/webhooks"
            let good = try LymphBinary.run(
                ["send", url, "--scheme", scheme, "--secret", "env:S"], in: h.dir, environment: ["S": Self.secret(scheme)], stdin: input, timeout: 60)
            #expect(good.status == 0, "\(scheme): \(good.stderr)")
            #expect(good.stderr.contains("202: 10"), "\(scheme): \(good.stderr)")
            let other = scheme == "standard_webhooks" ? "whsec_c29tZW9uZSBlbHNlJ3Mgc2VjcmV0" : "someone else's secret"
            let bad = try LymphBinary.run(
                ["send", url, "--scheme", scheme, "--secret", "env:S"], in: h.dir, environment: ["S": other], stdin: input, timeout: 60)
            #expect(bad.status == 1)
            #expect(bad.stderr.contains("401: 10 (bad_signature: 10)"), "\(scheme): \(bad.stderr)")
            #expect(h.stop() == 0)
        }
    }
}
