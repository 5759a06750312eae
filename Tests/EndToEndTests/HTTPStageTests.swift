import Foundation
import Testing

/// The http stage against a real local receiver that fails on purpose
/// (scripts/http_receiver.py): 503s, a 400, a hang past the timeout, a refused connection.
/// Every event is checked: delivered exactly once (one 2xx) at the receiver, or in the dead
/// letters with the right reason.
@Suite("http stage, end to end", .serialized)
struct HTTPStageTests {
    /// A running receiver and what it logged.
    final class Receiver {
        let process: Process
        let port: Int
        let log: String

        init(_ arguments: [String] = []) throws {
            log = LymphBinary.workDirectory() + "/received.ndjson"
            process = Process()
            process.executableURL = URL(fileURLWithPath: "/usr/bin/env")
            process.arguments = ["python3", LymphBinary.repo("scripts/http_receiver.py"), "--log", log] + arguments
            let out = Pipe()
            process.standardOutput = out
            process.standardError = FileHandle.nullDevice
            try process.run()
            let line = String(decoding: out.fileHandleForReading.availableDataOrFirstLine(), as: UTF8.self)
            port = Int(line.split(separator: " ").last?.trimmingCharacters(in: .whitespacesAndNewlines) ?? "") ?? 0
        }

        /// Each request: its key and the status answered.
        var requests: [(key: String, status: Int, body: String, headers: [String: String])] {
            LymphBinary.lines(log).compactMap { line in
                guard let o = try? JSONSerialization.jsonObject(with: Data(line.utf8)) as? [String: Any] else { return nil }
                let headers = (o["headers"] as? [String: String] ?? [:]).reduce(into: [String: String]()) { $0[$1.key.lowercased()] = $1.value }
                return (o["key"] as? String ?? "", o["status"] as? Int ?? 0, o["body"] as? String ?? "", headers)
            }
        }

        /// SIGKILL: the receiver inherits the test process's blocked signals, SIGTERM among them.
        deinit {
            kill(process.processIdentifier, SIGKILL)
            process.waitUntilExit()
        }
    }

    static func events(_ ids: [String]) -> String {
        ids.map {
            #"{"id":"\#($0)","type":"maintenance.scheduled","created_at":"2026-06-01T10:00:00Z","data":{"ticket_id":"T-\#($0)","equipment_id":"pump_1"}}"#
        }
        .joined(separator: "\n") + "\n"
    }

    static func pipeline(_ http: String) -> String {
        "state: memory\ndead_letter: dead.ndjson\nstages:\n  - parse\n  - http: \(http)\n"
    }

    /// Writes `pipeline(http)` as `dir/p.yaml`.
    static func writePipeline(_ http: String, in dir: String) throws {
        try pipeline(http).write(toFile: dir + "/p.yaml", atomically: true, encoding: .utf8)
    }

    static func deadLetters(_ dir: String) -> [String: String] {
        var out: [String: String] = [:]
        for line in LymphBinary.lines(dir + "/dead.ndjson") {
            guard let o = try? JSONSerialization.jsonObject(with: Data(line.utf8)) as? [String: Any], let error = o["error"] as? [String: Any],
                let raw = o["raw"] as? String, let event = try? JSONSerialization.jsonObject(with: Data(raw.utf8)) as? [String: Any],
                let id = event["id"] as? String
            else { continue }
            out[id] = "\(error["reason"] ?? "") \(error["message"] ?? "")"
        }
        return out
    }

    @Test("503s are retried, a 400 is a dead letter at once: every good event reaches the receiver exactly once, in order downstream")
    func retriesAndRefusals() throws {
        let receiver = try Receiver(["--fail-every", "7", "--status", "bad=400", "--flaky", "flaky=2"])
        let dir = LymphBinary.workDirectory()
        try Self.writePipeline("{url: 'http://127.0.0.1:\(receiver.port)/hook', allow_private: true, concurrency: 8, retries: 6, backoff: 10ms}", in: dir)
        let good = (1...150).map { "e\($0)" } + (1...5).map { "flaky\($0)" }
        let bad = ["bad1", "bad2"]
        var ids = good
        ids.insert(contentsOf: bad, at: 40)
        let r = try LymphBinary.run(["run", "p.yaml"], in: dir, stdin: Data(Self.events(ids).utf8), timeout: 120)
        #expect(r.status == 1, "\(r.stderr)")
        // Downstream order is input order, the refused ones left out.
        #expect(r.stdoutLines.compactMap { $0.split(separator: "\"")[safe: 3].map(String.init) } == good)
        let requests = receiver.requests
        for id in good {
            #expect(requests.filter { $0.key == id && $0.status == 200 }.count == 1, "\(id)")
        }
        #expect(requests.contains { $0.status == 503 })
        // A 400 is not retried: it is the last request for its event. The receiver's 503 to every
        // seventh request can land on one before it, which is retried like any 503.
        for id in bad {
            let statuses = requests.filter { $0.key == id }.map(\.status)
            #expect(statuses.last == 400 && statuses.dropLast().allSatisfy { $0 == 503 }, "a 400 is not retried: \(id) answered \(statuses)")
        }
        let dead = Self.deadLetters(dir)
        #expect(dead.count == 2)
        for id in bad {
            #expect(dead[id]?.hasPrefix("http_status ") == true, "\(dead)")
            #expect(dead[id]?.contains("answered 400: {\"error\": \"answered 400 on purpose\"}") == true, "\(dead)")
        }
        // Each attempt carried the event's id and its JSON.
        #expect(requests.allSatisfy { !$0.key.isEmpty && $0.body.contains(#""id":"\#($0.key)""#) })
    }

    @Test("a status past 599 is no HTTP status: refused at once (http_status), not retried as a 5xx")
    func statusPast599() throws {
        let receiver = try Receiver(["--status", "odd=999"])
        let dir = LymphBinary.workDirectory()
        try Self.writePipeline("{url: 'http://127.0.0.1:\(receiver.port)/hook', allow_private: true, retries: 3, backoff: 10ms}", in: dir)
        let r = try LymphBinary.run(["run", "p.yaml"], in: dir, stdin: Data(Self.events(["odd1"]).utf8))
        #expect(r.status == 1, "\(r.stderr)")
        #expect(receiver.requests.filter { $0.key == "odd1" }.map(\.status) == [999])
        #expect(Self.deadLetters(dir)["odd1"]?.hasPrefix("http_status ") == true, "\(Self.deadLetters(dir))")
    }

    @Test("a destination that hangs past the timeout, and one that refuses connections: http_unavailable after the retries")
    func unavailable() throws {
        let receiver = try Receiver(["--hang", "slow"])
        let dir = LymphBinary.workDirectory()
        try Self.writePipeline("{url: 'http://127.0.0.1:\(receiver.port)/hook', allow_private: true, timeout: 300ms, retries: 2, backoff: 10ms}", in: dir)
        let r = try LymphBinary.run(["run", "p.yaml"], in: dir, stdin: Data(Self.events(["slow1", "fine1"]).utf8), timeout: 60)
        #expect(r.stdoutLines.count == 1, "\(r.stderr)")
        let dead = Self.deadLetters(dir)
        #expect(dead["slow1"]?.hasPrefix("http_unavailable ") == true, "\(dead)")
        #expect(dead["slow1"]?.contains("after 3 attempts") == true, "\(dead)")
        #expect(receiver.requests.filter { $0.key == "fine1" && $0.status == 200 }.count == 1)

        // Nothing listens on this port.
        let closed = try Receiver()
        let port = closed.port
        kill(closed.process.processIdentifier, SIGKILL)
        closed.process.waitUntilExit()
        try? FileManager.default.removeItem(atPath: dir + "/dead.ndjson")
        try Self.writePipeline("{url: 'http://127.0.0.1:\(port)/hook', allow_private: true, retries: 1, backoff: 10ms}", in: dir)
        let refused = try LymphBinary.run(["run", "p.yaml"], in: dir, stdin: Data(Self.events(["r1"]).utf8), timeout: 60)
        #expect(refused.stdoutLines.isEmpty)
        #expect(Self.deadLetters(dir)["r1"]?.hasPrefix("http_unavailable ") == true, "\(Self.deadLetters(dir))")
    }

    @Test(
        "the SSRF guard refuses loopback, private, link-local and a name resolving to loopback, before connecting; allow_private lifts it",
        arguments: [
            "http://127.0.0.1:PORT/hook", "http://10.20.30.40/hook", "http://169.254.169.254/latest/meta-data", "http://localhost:PORT/hook",
            "http://[::1]:PORT/hook",
        ])
    func ssrfGuard(url: String) throws {
        let receiver = try Receiver()
        let dir = LymphBinary.workDirectory()
        let target = url.replacingOccurrences(of: "PORT", with: String(receiver.port))
        try Self.writePipeline("{url: '\(target)', retries: 3, backoff: 10ms}", in: dir)
        let r = try LymphBinary.run(["run", "p.yaml"], in: dir, stdin: Data(Self.events(["x1"]).utf8), timeout: 60)
        #expect(r.stdoutLines.isEmpty)
        let dead = Self.deadLetters(dir)
        #expect(dead["x1"]?.hasPrefix("http_forbidden_address ") == true, "\(dead)")
        #expect(receiver.requests.isEmpty, "nothing may reach the receiver")
        if url.contains("localhost") {
            #expect(dead["x1"]?.contains("localhost resolves to") == true, "\(dead)")
            try Self.writePipeline("{url: '\(target)', allow_private: true}", in: dir)
            let allowed = try LymphBinary.run(["run", "p.yaml"], in: dir, stdin: Data(Self.events(["x2"]).utf8), timeout: 60)
            #expect(allowed.stdoutLines.count == 1, "\(allowed.stderr)")
            #expect(receiver.requests.map(\.key) == ["x2"])
        }
    }

    @Test("a destination that answers at once but sends its body a byte at a time is given up at the timeout, not held for as long as it drips")
    func drippingAnswerTimesOut() throws {
        let receiver = try Receiver(["--drip", "drip"])
        let dir = LymphBinary.workDirectory()
        try Self.writePipeline("{url: 'http://127.0.0.1:\(receiver.port)/hook', allow_private: true, timeout: 1s, retries: 1, backoff: 10ms}", in: dir)
        let started = Date()
        let r = try LymphBinary.run(["run", "p.yaml"], in: dir, stdin: Data(Self.events(["drip1", "fine1"]).utf8), timeout: 60)
        let seconds = Date().timeIntervalSince(started)
        // Two attempts of a second each, and the back-off: the body takes 20 s each time.
        #expect(seconds < 10, "the run took \(seconds) s")
        #expect(r.stdoutLines.count == 1, "\(r.stderr)")
        let dead = Self.deadLetters(dir)
        #expect(dead["drip1"]?.hasPrefix("http_unavailable ") == true, "\(dead)")
        #expect(dead["drip1"]?.contains("no whole answer within the timeout") == true, "\(dead)")
        #expect(receiver.requests.filter { $0.key == "drip1" }.count == 2)
    }

    @Test("a template's values are JSON-escaped: a field cannot end its string or add keys; {env:NAME} puts a secret in the body")
    func templateEscaping() throws {
        let receiver = try Receiver()
        let dir = LymphBinary.workDirectory()
        let yaml = """
            state: memory
            dead_letter: dead.ndjson
            stages:
              - parse
              - http:
                  url: http://127.0.0.1:\(receiver.port)/hook
                  allow_private: true
                  body: template
                  template: '{"text": "Ticket {data.ticket_id} for {data.equipment_id}", "key": "{env:ROUTING_KEY}", "nested": {"n": {data.n}}}'
            """
        try yaml.write(toFile: dir + "/p.yaml", atomically: true, encoding: .utf8)
        let hostile =
            #"{"id":"h1","type":"maintenance.scheduled","created_at":"2026-06-01T10:00:00Z","data":{"ticket_id":"T\",\"injected\":\"yes","equipment_id":"p\u0000\n","n":3}}"#
        let r = try LymphBinary.run(["run", "p.yaml"], in: dir, environment: ["ROUTING_KEY": "rk-\"quoted\""], stdin: Data((hostile + "\n").utf8))
        #expect(r.stdoutLines.count == 1, "\(r.stderr)")
        let body = try #require(receiver.requests.first?.body)
        let json = try #require(try JSONSerialization.jsonObject(with: Data(body.utf8)) as? [String: Any])
        #expect(Set(json.keys) == ["text", "key", "nested"])
        #expect(json["text"] as? String == "Ticket T\",\"injected\":\"yes for p\u{0}\n")
        #expect(json["key"] as? String == "rk-\"quoted\"")
        #expect((json["nested"] as? [String: Any])?["n"] as? Int == 3)
    }

    @Test("signed requests: a lymph serve receiving Standard Webhooks accepts what the http stage forwards, once per event id")
    func forwardSigned() throws {
        let h = ServeHarness(
            pipeline: """
                pipeline: downstream
                state: state.sqlite
                output: out.ndjson
                stages:
                  - parse
                  - verify: {scheme: standard_webhooks, secrets: [env:S]}
                  - dedup: {key: "header:webhook-id"}
                """, environment: ["S": "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"])
        try h.start()
        let dir = LymphBinary.workDirectory()
        try Self.writePipeline("{url: 'http://127.0.0.1:\(h.port)/webhooks', allow_private: true, sign: {scheme: standard_webhooks, secret: env:S}}", in: dir)
        let ids = (1...20).map { "f\($0)" }
        // Sent twice: the downstream drops the second copy by its webhook-id (the event id).
        for _ in 0..<2 {
            let r = try LymphBinary.run(
                ["run", "p.yaml"], in: dir, environment: ["S": "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"], stdin: Data(Self.events(ids).utf8))
            #expect(r.stdoutLines.count == 20, "\(r.stderr)")
        }
        try h.waitForDrain()
        #expect(h.stop() == 0)
        #expect(LymphBinary.lines(h.dir + "/out.ndjson").count == 20)
    }

    @Test("on_error: drop counts a failed request as dropped; on_error: stop ends the run with exit 3, naming the event")
    func onError() throws {
        let receiver = try Receiver(["--status", "bad=404"])
        let dir = LymphBinary.workDirectory()
        try Self.writePipeline("{url: 'http://127.0.0.1:\(receiver.port)/hook', allow_private: true, on_error: drop}", in: dir)
        let dropped = try LymphBinary.run(["run", "p.yaml", "--summary", "json"], in: dir, stdin: Data(Self.events(["ok1", "bad1"]).utf8))
        #expect(dropped.status == 0, "\(dropped.stderr)")
        #expect(dropped.stdoutLines.count == 1)
        #expect(dropped.stderr.contains("on_error_drop"), "\(dropped.stderr)")
        try Self.writePipeline("{url: 'http://127.0.0.1:\(receiver.port)/hook', allow_private: true, on_error: stop}", in: dir)
        let stopped = try LymphBinary.run(["run", "p.yaml"], in: dir, stdin: Data(Self.events(["bad2"]).utf8))
        #expect(stopped.status == 3)
        #expect(stopped.stderr.contains("failed on event bad2"), "\(stopped.stderr)")
    }

    @Test(
        "a receiver that repeats the request in its refusal: the secrets the request carried (a header, a URL from env:, a template's) are redacted in the dead letter and the log, whole or in part"
    )
    func answerRepeatingSecrets() throws {
        let receiver = try Receiver(["--echo", "echo"])
        let dir = LymphBinary.workDirectory()
        let token = "s3cr3t-T0KEN-0123456789", path = "/hooks/T0ABCDEF/B0ABCDEF/SECRETPATHPART123456789"
        let environment = [
            "API_TOKEN": "Bearer \(token)", "HOOK_URL": "http://127.0.0.1:\(receiver.port)\(path)", "BODY_SECRET": "body-secret-0123456789",
        ]
        let http =
            #"{url: env:HOOK_URL, allow_private: true, headers: {Authorization: env:API_TOKEN}, "#
            + #"body: template, template: '{"id": "{id}", "k": "{env:BODY_SECRET}"}'"#
        try Self.writePipeline(http + ", on_error: drop}", in: dir)
        let dropped = try LymphBinary.run(["run", "p.yaml"], in: dir, environment: environment, stdin: Data(Self.events(["echo1"]).utf8))
        try Self.writePipeline(http + "}", in: dir)
        let dead = try LymphBinary.run(["run", "p.yaml"], in: dir, environment: environment, stdin: Data(Self.events(["echo2"]).utf8))
        #expect(dead.status == 1, "\(dead.stderr)")
        let letter = try String(contentsOfFile: dir + "/dead.ndjson", encoding: .utf8)
        // The receiver did repeat them: the request reached it with each.
        let seen = receiver.requests.map { "\($0.headers["authorization"] ?? "") \($0.body)" }.joined()
        #expect(seen.contains(token) && seen.contains("body-secret-0123456789"))
        for text in [dropped.stderr, letter] {
            #expect(text.contains("answered 401: invalid token for POST [redacted]"), "\(text)")
            for secret in [token, "SECRETPATHPART123456789", "T0ABCDEF/B0ABCDEF", "body-secret-0123456789"] {
                #expect(!text.contains(secret), "\(secret) in \(text)")
            }
        }
    }

    @Test("SIGTERM while a 503's Retry-After is waited out ends the run at once (exit 143): the event is http_unavailable, not retried, for replay")
    func stopDuringRetryWait() throws {
        let receiver = try Receiver(["--status", "busy=503", "--retry-after", "60"])
        let dir = LymphBinary.workDirectory()
        try Self.writePipeline("{url: 'http://127.0.0.1:\(receiver.port)/hook', allow_private: true, retries: 5}", in: dir)
        try Self.events(["busy1"]).write(toFile: dir + "/events.ndjson", atomically: true, encoding: .utf8)
        let process = try LymphBinary.launch(["run", "p.yaml", "events.ndjson", "--summary", "none"], in: dir, stdin: Pipe(), stderr: Pipe())
        let deadline = Date().addingTimeInterval(20)
        while receiver.requests.isEmpty && Date() < deadline { Thread.sleep(forTimeInterval: 0.05) }
        let signalled = Date()
        kill(process.processIdentifier, SIGTERM)
        process.waitUntilExit()
        #expect(Date().timeIntervalSince(signalled) < 8)
        #expect(process.terminationStatus == 143)
        #expect(receiver.requests.count == 1)
        let letter = Self.deadLetters(dir)["busy1"] ?? ""
        #expect(letter.hasPrefix("http_unavailable") && letter.contains("not retried: the run was stopping"), "\(letter)")
    }

    @Test("a refused connection fails the attempt at once, saying so, not at the timeout as 'no whole answer'")
    func refusedAtOnce() throws {
        let closed = try Receiver()
        let port = closed.port
        kill(closed.process.processIdentifier, SIGKILL)
        closed.process.waitUntilExit()
        let dir = LymphBinary.workDirectory()
        try Self.writePipeline("{url: 'http://127.0.0.1:\(port)/hook', allow_private: true, timeout: 20s, retries: 0}", in: dir)
        let started = Date()
        let r = try LymphBinary.run(["run", "p.yaml"], in: dir, stdin: Data(Self.events(["r1"]).utf8), timeout: 60)
        #expect(r.status == 1)
        #expect(Date().timeIntervalSince(started) < 10, "took \(Date().timeIntervalSince(started))s")
        let letter = Self.deadLetters(dir)["r1"] ?? ""
        #expect(letter.hasPrefix("http_unavailable") && letter.hasSuffix("127.0.0.1: connection refused"), "\(letter)")
    }

    @Test("SIGTERM while a request waits for an answer with a long timeout stops it after the 5 s grace (exit 143): http_unavailable saying so, for replay")
    func stopDuringRequest() throws {
        let receiver = try Receiver(["--hang", "slow"])
        let dir = LymphBinary.workDirectory()
        try Self.writePipeline("{url: 'http://127.0.0.1:\(receiver.port)/hook', allow_private: true, timeout: 5m}", in: dir)
        try Self.events(["slow1"]).write(toFile: dir + "/events.ndjson", atomically: true, encoding: .utf8)
        let process = try LymphBinary.launch(["run", "p.yaml", "events.ndjson", "--summary", "none"], in: dir, stdin: Pipe(), stderr: Pipe())
        Thread.sleep(forTimeInterval: 1.5)
        let signalled = Date()
        kill(process.processIdentifier, SIGTERM)
        let deadline = Date().addingTimeInterval(30)
        while process.isRunning && Date() < deadline { Thread.sleep(forTimeInterval: 0.05) }
        if process.isRunning { kill(process.processIdentifier, SIGKILL) }
        process.waitUntilExit()
        #expect(Date().timeIntervalSince(signalled) < 12)
        #expect(process.terminationStatus == 143)
        let letter = Self.deadLetters(dir)["slow1"] ?? ""
        #expect(letter.hasPrefix("http_unavailable") && letter.contains("was stopped because the run is ending"), "\(letter)")
    }

    @Test("an event id with a line break, which no Idempotency-Key header can carry, fails at once (invalid_field) instead of being retried as unavailable")
    func idNoHeaderCanCarry() throws {
        let receiver = try Receiver()
        let dir = LymphBinary.workDirectory()
        try Self.writePipeline("{url: 'http://127.0.0.1:\(receiver.port)/hook', allow_private: true, retries: 6, backoff: 200ms}", in: dir)
        let input = Self.events(["good1"]) + Self.events(["bad\\nline"])
        let started = Date()
        let r = try LymphBinary.run(["run", "p.yaml"], in: dir, stdin: Data(input.utf8))
        #expect(r.status == 1, "\(r.stderr)")
        #expect(Date().timeIntervalSince(started) < 10)
        #expect(receiver.requests.map(\.key) == ["good1"])
        let letter = Self.deadLetters(dir)["bad\nline"] ?? ""
        #expect(letter.hasPrefix("invalid_field") && letter.contains("Idempotency-Key"), "\(letter)")
    }

    @Test("a template secret with a quote and a backslash is redacted as the body carries it, JSON-escaped, when the receiver repeats the body")
    func escapedTemplateSecret() throws {
        let receiver = try Receiver(["--echo", "echo"])
        let dir = LymphBinary.workDirectory()
        try Self.writePipeline(
            #"{url: 'http://127.0.0.1:\#(receiver.port)/hook', allow_private: true, body: template, template: '{"id": "{id}", "k": "{env:TPL_KEY}"}'}"#,
            in: dir)
        let r = try LymphBinary.run(
            ["run", "p.yaml"], in: dir, environment: ["TPL_KEY": #"pa"ss\word_secret_value_123"#], stdin: Data(Self.events(["echo1"]).utf8))
        #expect(r.status == 1, "\(r.stderr)")
        let letter = try String(contentsOfFile: dir + "/dead.ndjson", encoding: .utf8)
        #expect(receiver.requests.first?.body.contains("word_secret_value_123") == true)
        for text in [r.stderr, letter] {
            #expect(!text.contains("word_secret_value_123"), "\(text)")
        }
    }

    @Test(
        "a URL with a user and password is refused by check and by run (lymph would send the request without them); a header secret with a line break is refused at start, and not shown"
    )
    func credentialsAndBrokenHeaders() throws {
        let dir = LymphBinary.workDirectory()
        try Self.writePipeline("{url: 'http://admin:hunter2pass@127.0.0.1:9/hook', allow_private: true}", in: dir)
        let check = try LymphBinary.run(["check", "p.yaml"], in: dir)
        #expect(check.status == 2, "\(check.stdout) \(check.stderr)")
        #expect((check.stdout + check.stderr).contains("carries a user or password"), "\(check.stdout) \(check.stderr)")
        #expect(!(check.stdout + check.stderr).contains("hunter2pass"))

        try Self.writePipeline("{url: env:HOOK_URL, allow_private: true}", in: dir)
        let fromEnv = try LymphBinary.run(
            ["run", "p.yaml"], in: dir, environment: ["HOOK_URL": "http://admin:hunter2pass@127.0.0.1:9/hook"], stdin: Data(Self.events(["a1"]).utf8))
        #expect(fromEnv.status == 2, "\(fromEnv.stderr)")
        #expect(fromEnv.stderr.contains("the URL in env:HOOK_URL carries a user or password"), "\(fromEnv.stderr)")
        #expect(!fromEnv.stderr.contains("hunter2pass"))

        try Self.writePipeline("{url: 'http://127.0.0.1:9/hook', allow_private: true, headers: {Authorization: env:AUTH_HDR}}", in: dir)
        let header = try LymphBinary.run(
            ["run", "p.yaml"], in: dir, environment: ["AUTH_HDR": "Bearer tok_abcdefghijklmnop1234\r\nX-Other: 1"], stdin: Data(Self.events(["a1"]).utf8))
        #expect(header.status == 2, "\(header.stderr)")
        #expect(header.stderr.contains("header 'Authorization' from env:AUTH_HDR holds a line break"), "\(header.stderr)")
        #expect(!header.stderr.contains("tok_abcdefghijklmnop1234"))
    }

    @Test("a receiver's answer is quoted without its control characters: no forged log line, no terminal escape")
    func hostileAnswer() throws {
        let receiver = try Receiver(["--hostile", "evil"])
        let dir = LymphBinary.workDirectory()
        try Self.writePipeline("{url: 'http://127.0.0.1:\(receiver.port)/hook', allow_private: true, on_error: drop}", in: dir)
        let dropped = try LymphBinary.run(["run", "p.yaml"], in: dir, stdin: Data(Self.events(["evil1"]).utf8))
        #expect(dropped.status == 0, "\(dropped.stderr)")
        let warning = dropped.stderr.split(separator: "\n").filter { $0.contains("evil1") }
        #expect(warning.count == 1 && warning[0].contains("answered 400: no?2026-12-04T00:00:00Z info forged line ?[31mred?"), "\(dropped.stderr)")
        #expect(!dropped.stderr.contains("\u{1B}") && !dropped.stderr.contains("\n2026-12-04T00:00:00Z info forged"), "\(dropped.stderr)")
        try Self.writePipeline("{url: 'http://127.0.0.1:\(receiver.port)/hook', allow_private: true}", in: dir)
        let dead = try LymphBinary.run(["run", "p.yaml"], in: dir, stdin: Data(Self.events(["evil2"]).utf8))
        #expect(dead.status == 1, "\(dead.stderr)")
        let letter = try String(contentsOfFile: dir + "/dead.ndjson", encoding: .utf8)
        #expect(letter.contains("answered 400: no?2026-12-04T00:00:00Z info forged line ?[31mred?"), "\(letter)")
    }
}

extension FileHandle {
    /// The first line written (the receiver's "listening PORT"), waiting for it.
    func availableDataOrFirstLine() -> Data {
        var data = Data()
        while !data.contains(0x0A) {
            let chunk = availableData
            if chunk.isEmpty { break }
            data.append(chunk)
        }
        return data
    }
}

extension Array {
    fileprivate subscript(safe index: Int) -> Element? { indices.contains(index) ? self[index] : nil }
}
