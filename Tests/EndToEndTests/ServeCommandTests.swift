import Foundation
import Lymph
import Testing

/// `lymph serve` on a real loopback port, driven over HTTP the way IMMUNE would.
@Suite("lymph serve, end to end", .serialized)
struct ServeCommandTests {
    /// verify + dedup + maintenance + log; `extra` goes before the log stage.
    static func pipeline(secrets: String = "[env:IMMUNE_WEBHOOK_SECRET]", serve: String = "", extra: String = "") -> String {
        """
        pipeline: serve-test
        state: .lymph/serve.sqlite
        output: out.ndjson
        dead_letter: dead.ndjson
        \(serve.isEmpty ? "" : "serve:\n" + serve)
        stages:
          - parse
          - verify: { secrets: \(secrets) }
          - dedup
          - schedule_maintenance
        \(extra)
          - log: { path: processed.log, format: text, template: "{id}", when: { types: [prediction.created] } }
        """
    }

    static func lines(_ h: ServeHarness, _ file: String) -> [String] { LymphBinary.lines(h.dir + "/" + file) }

    /// A stage that holds each event `seconds` (a stream plugin), so work waits in the spool.
    static let slowStage = "  - exec: { name: slow, command: ./slow.sh, mode: stream, timeout: 30s }"

    static func writeSlowPlugin(_ h: ServeHarness, seconds: String) {
        _ = FileManager.default.createFile(
            atPath: h.dir + "/slow.sh",
            contents: Data("#!/bin/bash\nwhile IFS= read -r line; do sleep \(seconds); printf '%s\\n' \"$line\"; done\n".utf8),
            attributes: [.posixPermissions: 0o755])
    }

    static func tickets(_ h: ServeHarness) throws -> Int {
        let r = try LymphBinary.run(["tickets", "--state", ".lymph/serve.sqlite", "--status", "all", "--format", "json"], in: h.dir)
        return r.stdoutLines.count
    }

    @Test("pipelines/serve.yaml: the example deliveries sent with lymph send open tickets")
    func examplePipeline() throws {
        let yaml = try String(contentsOfFile: LymphBinary.repo("pipelines/serve.yaml"), encoding: .utf8)
        let h = ServeHarness(pipeline: yaml, environment: ["IMMUNE_WEBHOOK_SECRET": "whsec_lymph_example_only"])
        try h.start()
        defer { h.stop() }
        // The captured deliveries keep their own signatures (no --secret): the malformed ones get 4xx.
        let send = try LymphBinary.run(["send", "http://127.0.0.1:\(h.port)/webhooks", LymphBinary.repo("examples/deliveries.ndjson")], in: h.dir)
        #expect(send.stderr.contains("202: "), "\(send.stderr)")
        try h.waitForDrain()
        let tickets = try LymphBinary.run(["tickets", "--pipeline", "serve.yaml", "--status", "all", "--format", "json"], in: h.dir)
        #expect(tickets.status == 0)
        #expect(!tickets.stdoutLines.isEmpty)
        #expect(!LymphBinary.lines(h.dir + "/logs/serve.log").isEmpty)
        #expect(try h.metric(#"lymph_http_requests_total{status="401"}"#) ?? 0 >= 1)
    }

    @Test("a good signature gets 202 {accepted: id}, and the event goes through the pipeline")
    func accepted() throws {
        let h = ServeHarness(pipeline: Self.pipeline())
        try h.start()
        defer { h.stop() }
        let r = try h.post(ServeHarness.event("evt_1"))
        #expect(r.status == 202)
        #expect(r.body.contains(#""accepted":"evt_1""#))
        try h.waitForDrain()
        #expect(Self.lines(h, "processed.log") == ["evt_1"])
        #expect(try h.get("/healthz").status == 200)
    }

    @Test("bad, missing, wrong-secret and tampered signatures get 401 and nothing is stored")
    func unauthorized() throws {
        let h = ServeHarness(pipeline: Self.pipeline())
        try h.start()
        defer { h.stop() }
        let body = ServeHarness.event("evt_x")
        var tampered = body
        tampered[tampered.count - 3] = UInt8(ascii: "7")
        let cases: [(String, HTTPReply)] = [
            ("missing", try h.post(body, signature: .some(nil))),
            ("malformed", try h.post(body, signature: "not-hex")),
            ("wrong secret", try h.post(body, signature: ServeHarness.sign(body, secret: "whsec_some_other"))),
            ("tampered", try h.post(tampered, signature: ServeHarness.sign(body))),
        ]
        for (what, r) in cases {
            #expect(r.status == 401, "\(what): \(r.status) \(r.body)")
            #expect(!r.body.contains(ServeHarness.secret))
        }
        #expect(cases[0].1.body.contains("missing_signature"))
        #expect(cases[2].1.body.contains("bad_signature"))
        #expect(try h.metric("lymph_spool_appended_total") == 0)
        #expect(try h.metric(#"lymph_signature_failures_total{reason="bad_signature"}"#) == 2)
        #expect(try h.metric(#"lymph_http_requests_total{status="401"}"#) == 4)
        Thread.sleep(forTimeInterval: 0.5)
        #expect(Self.lines(h, "processed.log").isEmpty)
        #expect(!h.stderrText.get().contains(ServeHarness.secret))
    }

    @Test("a flood of webhooks with bad signatures is logged a line a second at most, each saying how many it stands for, not a line a request")
    func refusedSignaturesAreThrottledInTheLog() throws {
        let h = ServeHarness(pipeline: Self.pipeline())
        try h.start()
        defer { h.stop() }
        let body = ServeHarness.event("evt_flood")
        let started = Date()
        for _ in 0..<60 { #expect(try h.post(body, signature: "0000").status == 401) }
        let seconds = Date().timeIntervalSince(started)
        Thread.sleep(forTimeInterval: 1.1)
        // One more after the second is up: its line counts the ones skipped.
        #expect(try h.post(body, signature: "0000").status == 401)
        Thread.sleep(forTimeInterval: 0.3)
        let lines = h.stderrText.get().split(separator: "\n").filter { $0.contains("signature refused") }
        #expect(lines.count <= Int(seconds) + 2, "\(lines.count) lines for 61 requests in \(seconds) s")
        #expect(lines.count >= 2)
        let skipped = lines.compactMap { line -> Int? in
            guard let r = line.range(of: "since_last_line=") else { return nil }
            return Int(line[r.upperBound...].prefix { $0.isNumber })
        }
        #expect(skipped.reduce(0, +) + lines.count == 61, "\(lines)")
        #expect(try h.metric(#"lymph_http_requests_total{status="401"}"#) == 61)
    }

    @Test("secret rotation: the old and the new secret are both accepted")
    func rotation() throws {
        let h = ServeHarness(
            pipeline: Self.pipeline(secrets: "[env:NEW_SECRET, env:OLD_SECRET]"),
            environment: ["NEW_SECRET": "whsec_new_5678", "OLD_SECRET": "whsec_old_1234"])
        try h.start()
        defer { h.stop() }
        let a = ServeHarness.event("evt_new"), b = ServeHarness.event("evt_old")
        #expect(try h.post(a, signature: ServeHarness.sign(a, secret: "whsec_new_5678")).status == 202)
        #expect(try h.post(b, signature: ServeHarness.sign(b, secret: "whsec_old_1234")).status == 202)
        #expect(try h.post(a, signature: ServeHarness.sign(a, secret: "whsec_other_9")).status == 401)
        try h.waitForDrain()
        #expect(Self.lines(h, "processed.log") == ["evt_new", "evt_old"])
    }

    @Test("a second verify stage checks every webhook itself: one the server let in under the first stage's secret is dead-lettered by the second")
    func secondVerifyStage() throws {
        // The server checks with the first verify stage and skips nothing for a pipeline with
        // two: the second stage's secrets must still be applied by the worker.
        let yaml = """
            pipeline: serve-test
            state: .lymph/serve.sqlite
            output: out.ndjson
            dead_letter: dead.ndjson
            stages:
              - parse
              - verify: { secrets: [env:IMMUNE_WEBHOOK_SECRET] }
              - verify: { name: partner-check, secrets: [env:PARTNER_SECRET] }
              - log: { path: processed.log, format: text, template: "{id}" }
            """
        let h = ServeHarness(pipeline: yaml, environment: ["IMMUNE_WEBHOOK_SECRET": ServeHarness.secret, "PARTNER_SECRET": "whsec_partner_5678"])
        try h.start()
        defer { h.stop() }
        let a = ServeHarness.event("evt_first_only")
        #expect(try h.post(a).status == 202)
        try h.waitForDrain()
        #expect(Self.lines(h, "processed.log").isEmpty)
        let dead = Self.lines(h, "dead.ndjson")
        #expect(dead.count == 1)
        #expect(dead.first?.contains("partner-check") == true)
        #expect(dead.first?.contains("bad_signature") == true)
    }

    @Test("413 for a body over max_body, answered before the body is read (declared or chunked)")
    func tooLarge() throws {
        let h = ServeHarness(pipeline: Self.pipeline(serve: "  max_body: 64KiB"))
        try h.start()
        defer { h.stop() }
        // Declares 50 MiB but sends only the head: the answer must come without the body.
        let fd = try RawHTTP.connect(port: h.port)
        RawHTTP.send(
            fd,
            RawHTTP.head(
                method: "POST", path: "/webhooks", headers: [("content-length", String(50 << 20)), ("x-immune-signature", String(repeating: "0", count: 64))]))
        let start = Date()
        let r = try RawHTTP.readReply(fd)
        close(fd)
        #expect(r.status == 413)
        #expect(r.body.contains("max_body"))
        #expect(Date().timeIntervalSince(start) < 5)
        // Chunked: the limit is counted while reading; sending stops being accepted.
        let fd2 = try RawHTTP.connect(port: h.port)
        RawHTTP.send(fd2, RawHTTP.head(method: "POST", path: "/webhooks", headers: [("transfer-encoding", "chunked")]))
        let chunk = Array(String(repeating: "a", count: 16384).utf8)
        for _ in 0..<8 { if !RawHTTP.send(fd2, Array("4000\r\n".utf8) + chunk + Array("\r\n".utf8)) { break } }
        let r2 = try RawHTTP.readReply(fd2)
        close(fd2)
        #expect(r2.status == 413)
        #expect(try h.metric("lymph_spool_appended_total") == 0)
        // A body within the limit still works.
        #expect(try h.post(ServeHarness.event("evt_small")).status == 202)
    }

    @Test("400 for a body that is not a JSON object with an id, or whose envelope parse would refuse (the sender is told, not given a 202 and a dead letter)")
    func badRequest() throws {
        let h = ServeHarness(pipeline: Self.pipeline())
        try h.start()
        defer { h.stop() }
        for body in ["not json", "[1,2,3]", #"{"type":"x"}"#, ""] {
            let r = try h.post(Array(body.utf8))
            #expect(r.status == 400, "\(body): \(r.status) \(r.body)")
        }
        let envelopes = [
            (#"{"id":"e1","type":"alert.triggered","data":{}}"#, "missing_field", "the event has no 'created_at' field"),
            (#"{"id":"e2","type":"alert.triggered","created_at":"yesterday","data":{}}"#, "invalid_field", "'created_at' must be an RFC 3339 timestamp"),
            (#"{"id":"e3","type":"","created_at":"2026-06-01T00:00:00Z","data":{}}"#, "invalid_field", "'type' must be a non-empty string"),
            (#"{"id":"e4","type":"alert.triggered","created_at":"2026-06-01T00:00:00Z","data":[]}"#, "invalid_field", "'data' must be an object"),
        ]
        for (body, reason, message) in envelopes {
            let r = try h.post(Array(body.utf8))
            #expect(r.status == 400 && r.body.contains(#""error":"\#(reason)""#) && r.body.contains(message), "\(body): \(r.status) \(r.body)")
        }
        #expect(try h.metric("lymph_spool_appended_total") == 0)
        #expect(try h.post(ServeHarness.event("evt_whole")).status == 202)
    }

    @Test("the same delivery sent three times is accepted three times and processed once")
    func duplicates() throws {
        let h = ServeHarness(pipeline: Self.pipeline())
        try h.start()
        defer { h.stop() }
        for _ in 0..<3 { #expect(try h.post(ServeHarness.event("evt_dup")).status == 202) }
        try h.waitForDrain()
        #expect(Self.lines(h, "processed.log") == ["evt_dup"])
        #expect(try h.metric(#"lymph_stage_events_total{stage="dedup-3",outcome="dropped"}"#) == 2)
        #expect(try Self.tickets(h) == 1)
    }

    @Test(
        "pipelined requests on one keep-alive connection are answered in order, webhooks and router requests alike, a parse error's 400 included; Connection: close ends it"
    )
    func pipelinedKeepAlive() throws {
        let h = ServeHarness(pipeline: Self.pipeline())
        try h.start()
        defer { h.stop() }
        func request(_ method: String, _ path: String, body: [UInt8] = [], close: Bool = false) -> [UInt8] {
            var text = "\(method) \(path) HTTP/1.1\r\nhost: 127.0.0.1\r\n"
            if close { text += "connection: close\r\n" }
            if method == "POST" {
                text += "content-type: application/json\r\nx-immune-signature: \(ServeHarness.sign(body))\r\ncontent-length: \(body.count)\r\n"
            }
            return Array((text + "\r\n").utf8) + body
        }
        // All sent at once: the first webhook's answer waits for a disk commit, and the router's
        // answers behind it must not overtake it. The path's variants are the webhook path too.
        let fd = try RawHTTP.connect(port: h.port)
        defer { close(fd) }
        RawHTTP.send(
            fd,
            request("POST", "/webhooks", body: ServeHarness.event("evt_p1"))
                + request("GET", "/healthz")
                + request("POST", "/webhooks/?source=test", body: ServeHarness.event("evt_p2"))
                + request("GET", "/webhooks")
                + request("POST", "/webhooks", body: Array("not json".utf8))
                + request("POST", "/webhooks", body: ServeHarness.event("evt_p3"), close: true))
        let data = RawHTTP.readUntilClose(fd)
        var replies: [HTTPReply] = []
        var rest = data[...]
        while let (reply, complete) = RawHTTP.parse(Array(rest)), complete {
            replies.append(reply)
            let headEnd = rest.indices.first { i in i + 3 < rest.endIndex && rest[i] == 13 && rest[i + 1] == 10 && rest[i + 2] == 13 && rest[i + 3] == 10 }!
            rest = rest[(headEnd + 4 + Int(reply.headers["content-length"] ?? "0")!)...]
        }
        #expect(replies.map(\.status) == [202, 200, 202, 405, 400, 202])
        #expect(replies.count == 6 && replies[0].body.contains("evt_p1") && replies[2].body.contains("evt_p2") && replies[5].body.contains("evt_p3"))
        #expect(replies.last?.headers["connection"] == "close")
        #expect(rest.isEmpty)
        // A webhook, then bytes that are not HTTP: its 202 comes first, then the 400 for the
        // garbage, and a webhook pipelined after the garbage is never stored.
        let fd2 = try RawHTTP.connect(port: h.port)
        defer { close(fd2) }
        RawHTTP.send(
            fd2,
            request("POST", "/webhooks", body: ServeHarness.event("evt_p4"))
                + Array("NOT HTTP AT ALL\r\n\r\n".utf8)
                + request("POST", "/webhooks", body: ServeHarness.event("evt_p5")))
        let data2 = RawHTTP.readUntilClose(fd2)
        let text = String(decoding: data2, as: UTF8.self)
        let statuses = text.split(separator: "\n").filter { $0.hasPrefix("HTTP/1.1 ") }.map { String($0.prefix(12)) }
        #expect(statuses == ["HTTP/1.1 202", "HTTP/1.1 400"], "\(text)")
        #expect(text.contains("evt_p4") && !text.contains("evt_p5"))
        try h.waitForDrain()
        #expect(Self.lines(h, "processed.log") == ["evt_p1", "evt_p2", "evt_p3", "evt_p4"])
    }

    @Test("a client that shuts down its side after sending the webhook still gets its 202")
    func halfClose() throws {
        // Two pipelined webhooks and then the half-close: LymphServeTests (WebhookRequestHandler).
        let h = ServeHarness(pipeline: Self.pipeline())
        try h.start()
        defer { h.stop() }
        for i in 0..<5 {
            let body = ServeHarness.event("evt_half\(i)")
            let fd = try RawHTTP.connect(port: h.port)
            defer { close(fd) }
            RawHTTP.send(
                fd,
                RawHTTP.head(
                    method: "POST", path: "/webhooks",
                    headers: [
                        ("content-type", "application/json"), ("x-immune-signature", ServeHarness.sign(body)),
                        ("content-length", String(body.count)),
                    ]) + body)
            shutdown(fd, Int32(SHUT_WR))
            let reply = try RawHTTP.readReply(fd)
            #expect(reply.status == 202)
            #expect(reply.body.contains("evt_half\(i)"))
        }
        try h.waitForDrain()
        #expect(Self.lines(h, "processed.log") == (0..<5).map { "evt_half\($0)" })
    }

    /// One webhook request that keeps the connection open (HTTP/1.1 without `Connection: close`).
    static func keepAliveWebhook(_ id: String, version: String = "HTTP/1.1") -> [UInt8] {
        let body = ServeHarness.event(id)
        return Array(
            "POST /webhooks \(version)\r\nhost: 127.0.0.1\r\ncontent-type: application/json\r\nx-immune-signature: \(ServeHarness.sign(body))\r\ncontent-length: \(body.count)\r\n\r\n"
                .utf8) + body
    }

    @Test("serve.idle_timeout closes a keep-alive connection left idle after its answer")
    func idleConnections() throws {
        // A request stalled inside its head, and HTTP/1.0's close after the answer: LymphServeTests.
        let h = ServeHarness(pipeline: Self.pipeline(serve: "  idle_timeout: 1s"))
        try h.start()
        defer { h.stop() }
        // Answered, then left open and silent: closed about a second later.
        let idle = try RawHTTP.connect(port: h.port)
        defer { close(idle) }
        RawHTTP.send(idle, Self.keepAliveWebhook("evt_idle_1"))
        #expect(try RawHTTP.readReply(idle).status == 202)
        let afterAnswer = RawHTTP.readUntilCloseTimed(idle)
        #expect(afterAnswer.data.isEmpty)
        #expect(afterAnswer.seconds > 0.5 && afterAnswer.seconds < 5, "closed after \(afterAnswer.seconds) s")
        try h.waitForDrain()
        #expect(Self.lines(h, "processed.log") == ["evt_idle_1"])
    }

    @Test("request forms: an absolute-form target, a signature with trailing blanks, HTTP/1.0 with and without keep-alive on both paths")
    func requestForms() throws {
        let h = ServeHarness(pipeline: Self.pipeline())
        try h.start()
        defer { h.stop() }
        // The absolute form, as a proxy sends it.
        let body = ServeHarness.event("evt_form_absolute")
        let absolute = try RawHTTP.request(
            port: h.port, method: "POST", path: "http://127.0.0.1:\(h.port)/webhooks",
            headers: [("x-immune-signature", ServeHarness.sign(body))], body: body)
        #expect(absolute.status == 202, "\(absolute.body)")
        // Blanks around a field's value are not part of it.
        let padded = ServeHarness.event("evt_form_padded")
        let blanks = try RawHTTP.request(
            port: h.port, method: "POST", path: "/webhooks",
            headers: [("x-immune-signature", ServeHarness.sign(padded) + " \t")], body: padded)
        #expect(blanks.status == 202, "\(blanks.body)")
        // HTTP/1.0 keep-alive: told so, and the connection takes a second request.
        let fd = try RawHTTP.connect(port: h.port)
        defer { close(fd) }
        var request = Self.keepAliveWebhook("evt_form_http10_a", version: "HTTP/1.0")
        request.insert(contentsOf: Array("connection: keep-alive\r\n".utf8), at: request.firstIndex(of: UInt8(ascii: "\n"))! + 1)
        RawHTTP.send(fd, request)
        let first = try RawHTTP.readReply(fd)
        #expect(first.status == 202 && first.headers["connection"]?.lowercased() == "keep-alive", "\(first.headers)")
        RawHTTP.send(fd, Self.keepAliveWebhook("evt_form_http10_b", version: "HTTP/1.0"))
        let second = RawHTTP.readUntilClose(fd)
        #expect(String(decoding: second, as: UTF8.self).hasPrefix("HTTP/1.0 202"))
        // A router request over HTTP/1.0 without keep-alive: answered, then closed at once.
        let router = try RawHTTP.connect(port: h.port)
        defer { close(router) }
        RawHTTP.send(router, Array("GET /healthz HTTP/1.0\r\n\r\n".utf8))
        let closed = RawHTTP.readUntilCloseTimed(router)
        let health = String(decoding: closed.data, as: UTF8.self)
        #expect(health.contains(" 200 "), "\(health)")
        #expect(closed.seconds < 5, "closed after \(closed.seconds) s")
        try h.waitForDrain()
        #expect(Self.lines(h, "processed.log") == ["evt_form_absolute", "evt_form_padded", "evt_form_http10_a", "evt_form_http10_b"])
    }

    @Test("SIGTERM during an upload the router already answered: the connection closes when the upload ends, and lymph serve exits promptly")
    func sigtermAfterEarlyRouterAnswer() throws {
        let h = ServeHarness(pipeline: Self.pipeline())
        try h.start()
        let fd = try RawHTTP.connect(port: h.port)
        defer { close(fd) }
        let upload = [UInt8](repeating: UInt8(ascii: "x"), count: 100_000)
        RawHTTP.send(fd, Array("POST /elsewhere HTTP/1.1\r\nhost: x\r\ncontent-length: \(upload.count)\r\n\r\n".utf8) + upload.prefix(1000))
        #expect(try RawHTTP.readReply(fd).status == 404)
        let started = Date()
        kill(h.process!.processIdentifier, SIGTERM)
        Thread.sleep(forTimeInterval: 0.3)
        RawHTTP.send(fd, Array(upload.dropFirst(1000)))
        #expect(RawHTTP.readUntilClose(fd).isEmpty)
        #expect(h.stop(0) == 0)
        #expect(Date().timeIntervalSince(started) < 10, "exit took \(Date().timeIntervalSince(started)) s")
    }

    @Test("SIGTERM closes an idle keep-alive connection at once (not after the 30 s idle timeout) and lymph serve exits 0")
    func sigtermClosesIdleConnections() throws {
        let h = ServeHarness(pipeline: Self.pipeline())
        try h.start()
        let fd = try RawHTTP.connect(port: h.port)
        defer { close(fd) }
        RawHTTP.send(fd, Self.keepAliveWebhook("evt_term_idle"))
        #expect(try RawHTTP.readReply(fd).status == 202)
        let started = Date()
        #expect(h.stop(SIGTERM) == 0)
        #expect(Date().timeIntervalSince(started) < 10, "exit took \(Date().timeIntervalSince(started)) s")
        #expect(RawHTTP.readUntilClose(fd).isEmpty)
        let left = try SQLiteSpoolStore.open(path: h.dir + "/.lymph/serve.spool.sqlite").depth().count
        #expect(left + Self.lines(h, "processed.log").filter { $0 == "evt_term_idle" }.count == 1)
    }

    @Test("503 with Retry-After when the spool is full")
    func spoolFull() throws {
        let h = ServeHarness(pipeline: Self.pipeline(serve: "  max_spool: 3", extra: Self.slowStage))
        Self.writeSlowPlugin(h, seconds: "1")
        try h.start()
        defer { h.stop() }
        var statuses: [Int] = []
        var retryAfter: String?
        for i in 0..<6 {
            let r = try h.post(ServeHarness.event("evt_full_\(i)"))
            statuses.append(r.status)
            if r.status == 503 { retryAfter = r.headers["retry-after"] }
        }
        #expect(statuses.filter { $0 == 202 }.count == 3, "\(statuses)")
        #expect(statuses.filter { $0 == 503 }.count == 3)
        #expect(retryAfter == "5")
        #expect(try h.metric("lymph_spool_depth_entries") == 3)
    }

    /// Holds the spool file's write lock from another process (python3's sqlite3) for `seconds`;
    /// returns once the lock is held.
    static func lockSpool(_ h: ServeHarness, seconds: Double) throws -> Process {
        let locker = Process()
        locker.executableURL = URL(fileURLWithPath: "/usr/bin/env")
        locker.arguments = [
            "python3", "-c",
            """
            import sqlite3, sys, time
            c = sqlite3.connect(sys.argv[1], isolation_level=None)
            c.execute("BEGIN IMMEDIATE")
            print("locked", flush=True)
            time.sleep(float(sys.argv[2]))
            c.execute("ROLLBACK")
            """, h.dir + "/.lymph/serve.spool.sqlite", "\(seconds)",
        ]
        let out = Pipe()
        locker.standardOutput = out
        try locker.run()
        #expect(String(decoding: out.fileHandleForReading.readData(ofLength: 7), as: UTF8.self) == "locked\n")
        return locker
    }

    @Test("/healthz answers 503 with the reason, within its 2 s deadline, while the spool cannot be written; 200 again after")
    func healthWhenSpoolLocked() throws {
        let h = ServeHarness(pipeline: Self.pipeline())
        try h.start()
        defer { h.stop() }
        #expect(try h.get("/healthz").status == 200)
        let locker = try Self.lockSpool(h, seconds: 3.5)
        let started = Date()
        let health = try h.get("/healthz")
        let waited = Date().timeIntervalSince(started)
        #expect(health.status == 503, "\(health.status) \(health.body)")
        #expect(health.body.contains(#""status":"unhealthy""#))
        #expect(health.body.contains("the spool is not writable"), "\(health.body)")
        #expect(waited > 1.5 && waited < 3.3, "answered after \(waited) s")
        locker.waitUntilExit()
        #expect(try h.get("/healthz").status == 200)
    }

    @Test(
        "health checks while the spool's disk hangs share one probe: each is answered 503 within its deadline, none waits for the disk (a probe each took the threads Swift's tasks run on)"
    )
    func healthChecksShareOneProbe() throws {
        let h = ServeHarness(pipeline: Self.pipeline())
        try h.start()
        defer { h.stop() }
        #expect(try h.get("/healthz").status == 200)
        // The probe waits for the lock up to the spool's 5 s busy timeout.
        let locker = try Self.lockSpool(h, seconds: 6)
        let answers = Locked([(status: Int, seconds: Double)]())
        for _ in 0..<24 {
            Thread {
                let started = Date()
                let status = (try? h.get("/healthz").status) ?? 0
                answers.update { $0.append((status, Date().timeIntervalSince(started))) }
            }.start()
        }
        while answers.get().count < 24 { Thread.sleep(forTimeInterval: 0.05) }
        let all = answers.get()
        #expect(all.allSatisfy { $0.status == 503 }, "\(all.map(\.status))")
        #expect(all.allSatisfy { $0.seconds < 3.5 }, "answered after \(all.map { Int($0.seconds * 10) }) tenths of a second")
        locker.waitUntilExit()
        Thread.sleep(forTimeInterval: 0.3)
        #expect(try h.get("/healthz").status == 200)
    }

    @Test("a spool that cannot commit (its file locked by another program) answers 503 within the 3 s deadline; the sender's retry is processed once")
    func stalledSpool() throws {
        let h = ServeHarness(pipeline: Self.pipeline())
        try h.start()
        defer { h.stop() }
        #expect(try h.post(ServeHarness.event("evt_before_lock")).status == 202)
        // Another program (a backup, say) holds the spool's write lock for 4.5 s.
        let locker = try Self.lockSpool(h, seconds: 4.5)
        let started = Date()
        let stalled = try h.post(ServeHarness.event("evt_stalled"))
        let waited = Date().timeIntervalSince(started)
        #expect(stalled.status == 503, "\(stalled.status) \(stalled.body)")
        #expect(stalled.headers["retry-after"] == "5")
        #expect(stalled.body.contains("store_unavailable"))
        #expect(waited > 2.5 && waited < 4.4, "answered after \(waited) s")
        locker.waitUntilExit()
        // The entry committed once the lock went (or not at all); the sender's retry is
        // accepted, and the event goes through the pipeline once either way.
        #expect(try h.post(ServeHarness.event("evt_stalled")).status == 202)
        try h.waitForDrain()
        #expect(Self.lines(h, "processed.log") == ["evt_before_lock", "evt_stalled"])
    }

    @Test("a webhook still queued behind a stalled commit when its 3 s run out is answered 503 and dropped, not stored later")
    func stalledQueueDropped() throws {
        let h = ServeHarness(pipeline: Self.pipeline())
        try h.start()
        defer { h.stop() }
        let locker = try Self.lockSpool(h, seconds: 4.5)
        // The first request's commit waits on the lock; the second queues behind it.
        let statuses = Locked<[String: Int]>([:])
        let group = DispatchGroup()
        // Threads of their own, not Dispatch's: with the other suites running, Dispatch's
        // threads can be busy for over a second, and the second request would then come after
        // the lock went and be stored (202).
        for (delay, id) in [(0.0, "evt_in_commit"), (0.5, "evt_queued")] {
            group.enter()
            Thread {
                Thread.sleep(forTimeInterval: delay)
                let status = (try? h.post(ServeHarness.event(id)).status) ?? -1
                statuses.update { $0[id] = status }
                group.leave()
            }.start()
        }
        #expect(group.wait(timeout: .now() + 10) == .success)
        #expect(statuses.get() == ["evt_in_commit": 503, "evt_queued": 503])
        locker.waitUntilExit()
        // The commit lands when SQLite's busy wait next looks at the lock, which under load can
        // be after the spool already reads empty: wait for the line, then for the spool.
        let deadline = Date().addingTimeInterval(15)
        while Self.lines(h, "processed.log").isEmpty && Date() < deadline { Thread.sleep(forTimeInterval: 0.05) }
        try h.waitForDrain()
        // The entry in the commit landed once the lock went; the queued one was let go (its
        // sender retries), so a stalled disk does not pile up bodies nobody waits for.
        #expect(Self.lines(h, "processed.log") == ["evt_in_commit"])
        #expect(try h.metric("lymph_spool_appended_total") == 0)
        #expect(try h.metric("lymph_spool_timeouts_total") == 2)
    }

    @Test("the pipeline worker, and the plugins it starts, run at a lower priority than the thread answering requests")
    func workerPriority() throws {
        let h = ServeHarness(
            pipeline: Self.pipeline(
                extra: """
                      - exec: { name: nice-stream, command: ./nice-stream.sh, mode: stream }
                      - exec: { name: nice-event, command: ./nice-event.sh, output: ignore }
                    """))
        // Each plugin records its own nice value (field 19 of /proc/PID/stat, the 17th after the
        // command name in parentheses), after a moment: Lymph sets it just after the start. The
        // stream one then echoes its events.
        let record = #"sleep 0.2; awk '{ sub(/.*\) /, ""); print $17 }' /proc/$$/stat"#
        for (name, rest) in [("nice-event", ""), ("nice-stream", "exec cat\n")] {
            _ = FileManager.default.createFile(
                atPath: h.dir + "/\(name).sh", contents: Data("#!/bin/sh\n\(record) >> \(name).txt\n\(rest)".utf8),
                attributes: [.posixPermissions: 0o755])
        }
        try h.start()
        defer { h.stop() }
        let pid = h.process!.processIdentifier
        // /proc/PID/task/TID/stat: field 19 is the nice value (after the comm in parentheses).
        var nice: [String: Int] = [:]
        for tid in try FileManager.default.contentsOfDirectory(atPath: "/proc/\(pid)/task") {
            guard let comm = try? String(contentsOfFile: "/proc/\(pid)/task/\(tid)/comm", encoding: .utf8),
                let stat = try? String(contentsOfFile: "/proc/\(pid)/task/\(tid)/stat", encoding: .utf8),
                let close = stat.lastIndex(of: ")")
            else { continue }
            let fields = stat[stat.index(after: close)...].split(separator: " ")
            nice[comm.trimmingCharacters(in: .whitespacesAndNewlines)] = Int(fields[16])
        }
        #expect(nice["lymph-worker"] == 5, "\(nice)")
        #expect(nice["lymph-spool"] == 0, "\(nice)")
        #expect(nice.first { $0.key.hasPrefix("NIO-ELT") }?.value == 0, "\(nice)")
        #expect(try h.post(ServeHarness.event("evt_nice")).status == 202)
        try h.waitForDrain()
        #expect(Self.lines(h, "processed.log") == ["evt_nice"])
        // Plugins get the worker's priority, whichever starts first (the stream one here, from a
        // task of its own): a busy plugin cannot slow the answers either.
        let event = Self.lines(h, "nice-event.txt"), stream = Self.lines(h, "nice-stream.txt")
        #expect(!event.isEmpty && event.allSatisfy { $0 == "5" }, "\(event)")
        #expect(stream == ["5"])
    }

    @Test("kill -9 after a burst of 202s: after a restart every accepted event is processed exactly once")
    func crashAndRestart() throws {
        let h = ServeHarness(pipeline: Self.pipeline(extra: Self.slowStage))
        Self.writeSlowPlugin(h, seconds: "0.05")
        try h.start()
        var accepted: [String] = []
        for i in 0..<60 {
            let id = "evt_crash_\(i)"
            if try h.post(ServeHarness.event(id)).status == 202 { accepted.append(id) }
        }
        #expect(accepted.count == 60)
        #expect(h.stop(SIGKILL) == 9)
        // Some were still in the spool: a restart takes them up.
        try h.start()
        defer { h.stop() }
        try h.waitForDrain(timeout: 60)
        // Each accepted event opened exactly one ticket, whatever was written before the crash.
        #expect(try Self.tickets(h) == 60)
        let store = try SQLiteSpoolStore.open(path: h.dir + "/.lymph/serve.spool.sqlite")
        #expect(try store.depth().count == 0)
        #expect(Set(Self.lines(h, "processed.log")) == Set(accepted))
    }

    @Test("SIGTERM: requests in flight are answered, the worker finishes, exit 0, and nothing accepted is lost")
    func gracefulShutdown() throws {
        let h = ServeHarness(pipeline: Self.pipeline(extra: Self.slowStage))
        Self.writeSlowPlugin(h, seconds: "0.1")
        try h.start()
        var accepted = 0
        for i in 0..<20 where try h.post(ServeHarness.event("evt_term_\(i)")).status == 202 { accepted += 1 }
        #expect(accepted == 20)
        #expect(h.stop(SIGTERM) == 0)
        #expect(h.stderrText.get().contains("stopped"))
        // Processed, or still in the spool for the next start: never both, never neither.
        let store = try SQLiteSpoolStore.open(path: h.dir + "/.lymph/serve.spool.sqlite")
        let left = try store.depth().count
        let processed = Set(Self.lines(h, "processed.log")).count
        #expect(processed + left == 20, "processed \(processed), left \(left)")
        try h.start()
        defer { h.stop() }
        try h.waitForDrain(timeout: 60)
        #expect(Set(Self.lines(h, "processed.log")).count == 20)
    }

    @Test(
        "the spool file deleted while serving: later webhooks get 503, what it held is processed (through a SIGTERM too), then the server stops, exit 3",
        arguments: [false, true])
    func spoolDeleted(terminated: Bool) throws {
        let h = ServeHarness(pipeline: Self.pipeline(extra: Self.slowStage))
        Self.writeSlowPlugin(h, seconds: "0.1")
        try h.start()
        let ids = (0..<15).map { "evt_gone_\($0)" }
        var accepted = 0
        for id in ids where try h.post(ServeHarness.event(id)).status == 202 { accepted += 1 }
        #expect(accepted == 15)
        // A careless cleanup, while most of them wait in the spool.
        for suffix in ["", "-wal", "-shm"] { unlink(h.dir + "/.lymph/serve.spool.sqlite" + suffix) }
        let late = try h.post(ServeHarness.event("evt_gone_late"))
        #expect(late.status == 503, "\(late.status) \(late.body)")
        let p = try #require(h.process)
        if terminated { kill(p.processIdentifier, SIGTERM) }
        let deadline = Date().addingTimeInterval(30)
        while p.isRunning && Date() < deadline { Thread.sleep(forTimeInterval: 0.05) }
        #expect(!p.isRunning, "the server went on with its spool gone")
        #expect(h.stop() == 3)
        #expect(h.stderrText.get().contains(".lymph/serve.spool.sqlite' was deleted or replaced while lymph serve used it"), "\(h.stderrText.get())")
        #expect(Set(Self.lines(h, "processed.log")) == Set(ids))
    }

    @Test("SIGTERM while a plugin is busy: it is stopped after the 5 s grace, its batch and what follows stay in the spool (no dead letters), exit 0")
    func sigtermWhilePluginBusy() throws {
        let h = ServeHarness(pipeline: Self.pipeline(extra: "  - exec: { name: hold, command: ./hold.sh, timeout: 120s }"))
        _ = FileManager.default.createFile(
            atPath: h.dir + "/hold.sh",
            contents: Data(
                "#!/bin/bash\ne=$(cat)\ncase \"$e\" in *evt_hold_slow*) [ -e \"$(dirname \"$0\")/fast\" ] || sleep 200;; esac\nprintf '%s\\n' \"$e\"\n".utf8),
            attributes: [.posixPermissions: 0o755])
        try h.start()
        #expect(try h.post(ServeHarness.event("evt_hold_slow")).status == 202)
        #expect(try h.post(ServeHarness.event("evt_hold_ok")).status == 202)
        Thread.sleep(forTimeInterval: 0.5)
        let stopped = Date()
        #expect(h.stop(SIGTERM) == 0)
        let took = Date().timeIntervalSince(stopped)
        #expect(took < 15, "stopping took \(took)s")
        #expect(h.stderrText.get().contains("the batch in hand stays in the spool for the next start"), "\(h.stderrText.get())")
        #expect(!FileManager.default.fileExists(atPath: h.dir + "/dead.ndjson") || Self.lines(h, "dead.ndjson").isEmpty, "\(Self.lines(h, "dead.ndjson"))")
        let store = try SQLiteSpoolStore.open(path: h.dir + "/.lymph/serve.spool.sqlite")
        #expect(try store.depth().count == 2)
        // The next start processes both.
        _ = FileManager.default.createFile(atPath: h.dir + "/fast", contents: Data())
        try h.start()
        defer { h.stop() }
        try h.waitForDrain(timeout: 60)
        #expect(Set(Self.lines(h, "processed.log")) == ["evt_hold_slow", "evt_hold_ok"])
    }

    @Test("a request in flight when SIGTERM arrives is answered 202 and its event is not lost")
    func inFlightAtSigterm() throws {
        let h = ServeHarness(pipeline: Self.pipeline())
        try h.start()
        let body = ServeHarness.event("evt_inflight")
        // Head and half the body, then the signal, then the rest.
        let fd = try RawHTTP.connect(port: h.port)
        defer { close(fd) }
        RawHTTP.send(
            fd,
            RawHTTP.head(
                method: "POST", path: "/webhooks",
                headers: [
                    ("content-length", String(body.count)),
                    ("x-immune-signature", ServeHarness.sign(body)),
                ]))
        RawHTTP.send(fd, Array(body.prefix(body.count / 2)))
        Thread.sleep(forTimeInterval: 0.3)
        kill(h.process!.processIdentifier, SIGTERM)
        Thread.sleep(forTimeInterval: 0.3)
        // New connections are refused while the one in flight is finished.
        #expect(
            (try? RawHTTP.connect(port: h.port)).map {
                close($0); return false
            } ?? true)
        RawHTTP.send(fd, Array(body.suffix(from: body.count / 2)))
        let reply = try RawHTTP.readReply(fd)
        #expect(reply.status == 202, "\(reply.status) \(reply.body)")
        #expect(h.stop(0) == 0)  // signal 0: only wait for the exit the first SIGTERM started
        let left = try SQLiteSpoolStore.open(path: h.dir + "/.lymph/serve.spool.sqlite").depth().count
        #expect(left + Self.lines(h, "processed.log").filter { $0 == "evt_inflight" }.count == 1)
    }

    @Test("a second SIGTERM exits at once; everything accepted is still in the spool or processed")
    func secondSignal() throws {
        let h = ServeHarness(pipeline: Self.pipeline(extra: Self.slowStage))
        // 2 s an event: whatever the batch in hand holds (one event when the posts come
        // slowly, on a loaded machine), the second signal lands while it is being worked on.
        Self.writeSlowPlugin(h, seconds: "2")
        try h.start()
        for i in 0..<30 { #expect(try h.post(ServeHarness.event("evt_sig_\(i)")).status == 202) }
        let pid = h.process!.processIdentifier
        kill(pid, SIGTERM)
        Thread.sleep(forTimeInterval: 0.2)
        let start = Date()
        let status = h.stop(SIGTERM, timeout: 10)
        #expect(status == 128 + SIGTERM)
        #expect(Date().timeIntervalSince(start) < 3)
        // SIGKILL is sent to the plugins' groups just before the exit, and a killed process
        // lingers in /proc for a moment on a loaded machine; one left running sleeps on for
        // its 2 s.
        let killedBy = Date().addingTimeInterval(1)
        while !processes(containing: "slow.sh").isEmpty && Date() < killedBy { Thread.sleep(forTimeInterval: 0.05) }
        #expect(processes(containing: "slow.sh").isEmpty)
        let left = try SQLiteSpoolStore.open(path: h.dir + "/.lymph/serve.spool.sqlite").depth().count
        #expect(left > 0)
        Self.writeSlowPlugin(h, seconds: "0")
        try h.start()
        defer { h.stop() }
        try h.waitForDrain(timeout: 60)
        #expect(Set(Self.lines(h, "processed.log")).count == 30)
    }

    @Test("a port already in use stops lymph serve with exit 2 and a message naming the address, not a hang")
    func bindFailure() throws {
        let first = ServeHarness(pipeline: Self.pipeline())
        try first.start()
        defer { first.stop() }
        let yaml = Self.pipeline()
        let dir = LymphBinary.workDirectory()
        _ = FileManager.default.createFile(atPath: dir + "/serve.yaml", contents: Data(yaml.utf8))
        let start = Date()
        let r = try LymphBinary.run(
            ["serve", "serve.yaml", "--listen", "127.0.0.1:\(first.port)"], in: dir,
            environment: ["IMMUNE_WEBHOOK_SECRET": ServeHarness.secret], timeout: 30)
        #expect(r.status == 2, "\(r.stderr)")
        #expect(r.stderr.contains("lymph serve: 127.0.0.1:\(first.port) is already in use"), "\(r.stderr)")
        #expect(!r.stderr.contains("bind(descriptor"))
        #expect(Date().timeIntervalSince(start) < 20)
    }

    @Test(
        "a listen address that is not this machine's, or a host with no address, stops lymph serve with exit 2 and a plain reason",
        arguments: [
            ("10.255.255.1:8080", "10.255.255.1 is not an address of this machine"),
            ("256.1.1.1:8080", "no address found for '256.1.1.1'"),
        ])
    func listenAddressProblems(_ listen: String, _ expected: String) throws {
        let dir = LymphBinary.workDirectory()
        _ = FileManager.default.createFile(atPath: dir + "/serve.yaml", contents: Data(Self.pipeline().utf8))
        let r = try LymphBinary.run(
            ["serve", "serve.yaml", "--listen", listen], in: dir, environment: ["IMMUNE_WEBHOOK_SECRET": ServeHarness.secret], timeout: 30)
        #expect(r.status == 2, "\(r.stderr)")
        #expect(r.stderr.contains("lymph serve: cannot listen on \(listen): \(expected)"), "\(r.stderr)")
        #expect(!r.stderr.contains("bind(descriptor") && !r.stderr.contains("SocketAddressError"), "\(r.stderr)")
    }

    @Test("max_age is judged when a webhook arrives: a backlog or a restart does not turn accepted events into too_old")
    func maxAgeAtArrival() throws {
        let yaml = Self.pipeline(extra: Self.slowStage).replacingOccurrences(
            of: "- verify: { secrets: [env:IMMUNE_WEBHOOK_SECRET] }",
            with: "- verify: { secrets: [env:IMMUNE_WEBHOOK_SECRET], max_age: 2s }")
        let h = ServeHarness(pipeline: yaml)
        Self.writeSlowPlugin(h, seconds: "0.2")
        try h.start()
        func fresh(_ id: String) -> [UInt8] {
            let now = Timestamp.format(Timestamp.now()), later = Timestamp.format(Timestamp.now() + 8 * 86_400)
            return Array(
                String(decoding: ServeHarness.event(id), as: UTF8.self).replacingOccurrences(of: "2026-06-01T00:00:00Z", with: now)
                    .replacingOccurrences(of: "2026-06-09T00:00:00Z", with: later).utf8)
        }
        // An old event is refused at the door.
        let stale = try h.post(ServeHarness.event("evt_stale"))
        #expect(stale.status == 401 && stale.body.contains("too_old"))
        for i in 0..<10 { #expect(try h.post(fresh("evt_age_\(i)")).status == 202) }
        h.stop(SIGKILL)
        Thread.sleep(forTimeInterval: 2.5)  // longer than max_age
        try h.start()
        defer { h.stop() }
        try h.waitForDrain(timeout: 60)
        #expect(Set(Self.lines(h, "processed.log")) == Set((0..<10).map { "evt_age_\($0)" }))
        #expect(!LymphBinary.lines(h.dir + "/dead.ndjson").contains { $0.contains("too_old") })
    }

    @Test("a body near max_body full of escapes is stored and processed (the spool entry is longer than the body)")
    func escapedBody() throws {
        let h = ServeHarness(pipeline: Self.pipeline())
        try h.start()
        defer { h.stop() }
        let note = String(repeating: #"\""#, count: 400_000)  // 800 KB of \" in the raw body
        let body = Array(#"{"id":"evt_escaped","type":"note.added","created_at":"2026-06-01T00:00:00Z","data":{"note":"\#(note)"}}"#.utf8)
        #expect(body.count < 1 << 20)
        #expect(try h.post(body).status == 202)
        try h.waitForDrain()
        #expect(LymphBinary.lines(h.dir + "/dead.ndjson").isEmpty)
        #expect(try h.metric(#"lymph_stage_events_total{stage="verify-2",outcome="out"}"#) == 1)
    }

    @Test("/metrics is Prometheus text and its counters match what was sent; /healthz says ok")
    func metricsAndHealth() throws {
        let h = ServeHarness(pipeline: Self.pipeline())
        try h.start()
        defer { h.stop() }
        for i in 0..<5 { _ = try h.post(ServeHarness.event("evt_m_\(i)")) }
        _ = try h.post(ServeHarness.event("evt_bad"), signature: .some(nil))
        _ = try h.post(Array("x".utf8))
        try h.waitForDrain()
        let m = try h.get("/metrics")
        #expect(m.status == 200)
        #expect(m.headers["content-type"]?.hasPrefix("text/plain; version=0.0.4") == true)
        // Every sample line is `name{labels} number`; every family has TYPE.
        var families = Set<String>()
        for line in m.body.split(separator: "\n") {
            if line.hasPrefix("# TYPE ") { families.insert(String(line.split(separator: " ")[2])); continue }
            if line.hasPrefix("#") { continue }
            let parts = line.split(separator: " ")
            #expect(parts.count == 2 && Double(parts[1]) != nil, "bad sample line: \(line)")
            let name = String(parts[0].prefix { $0 != "{" })
            #expect(families.contains { name == $0 || name.hasPrefix($0 + "_") }, "no TYPE for \(name)")
        }
        #expect(try h.metric(#"lymph_http_requests_total{status="202"}"#) == 5)
        #expect(try h.metric(#"lymph_http_requests_total{status="401"}"#) == 1)
        #expect(try h.metric(#"lymph_http_requests_total{status="400"}"#) == 1)
        // What the router answers is counted too (a POST to a mistyped path, a GET on the
        // webhook path); probes and scrapes are not.
        #expect(try h.post(ServeHarness.event("evt_lost"), path: "/webhook").status == 404)
        #expect(try h.get("/webhooks").status == 405)
        _ = try h.get("/healthz")
        // The same routes as the router matches them, by their components.
        for path in ["/healthz/", "//metrics", "/metrics/"] { #expect(try h.get(path).status == 200, "\(path)") }
        #expect(try h.metric(#"lymph_http_requests_total{status="404"}"#) == 1)
        #expect(try h.metric(#"lymph_http_requests_total{status="405"}"#) == 1)
        #expect(try h.metric(#"lymph_http_requests_total{status="200"}"#) == nil)
        #expect(try h.metric("lymph_spool_appended_total") == 5)
        // Sent one by one, each append is its own commit; the worker's deletes add at most one each.
        let commits = try h.metric("lymph_spool_commits_total") ?? 0
        #expect(commits >= 5 && commits <= 10, "\(commits) commits")
        #expect(try h.metric("lymph_pipeline_items_total") == 5)
        #expect(try h.metric(#"lymph_stage_events_total{stage="verify-2",outcome="in"}"#) == 5)
        #expect(try h.metric("lymph_spool_depth_entries") == 0)
        #expect(m.body.contains("lymph_http_request_duration_seconds_bucket"))
        #expect(m.body.contains(#"lymph_stage_batch_duration_seconds_count{stage="dedup-3"}"#))
        let health = try h.get("/healthz")
        #expect(health.status == 200 && health.body.contains(#""status":"ok""#))
    }

    @Test("the spool's write-ahead log stays small under a steady stream of webhooks (its writer checkpoints as it goes)")
    func spoolLogStaysSmall() throws {
        let h = ServeHarness(pipeline: Self.pipeline())
        try h.start()
        defer { h.stop() }
        let wal = h.dir + "/.lymph/serve.spool.sqlite-wal"
        let sample = try LymphBinary.run(["sample", "--count", "6000", "--seed", "9"], in: h.dir)
        let largest = Locked(0)
        let watching = Locked(true)
        let watcher = Thread {
            while watching.get() {
                let size = (try? FileManager.default.attributesOfItem(atPath: wal))?[.size] as? Int ?? 0
                largest.update { $0 = max($0, size) }
                Thread.sleep(forTimeInterval: 0.02)
            }
        }
        watcher.start()
        let r = try LymphBinary.run(
            ["send", "http://127.0.0.1:\(h.port)/webhooks", "--secret", "env:S", "--concurrency", "16"], in: h.dir,
            environment: ["S": ServeHarness.secret], stdin: Data(sample.stdout.utf8))
        try h.waitForDrain()
        watching.set(false)
        #expect(r.stderr.contains("202: 6000"), "\(r.stderr)")
        // 6,000 webhooks put several MiB through the log; checkpointed every 256 pages, the
        // file stays near 1 MiB (the last transaction may run past it).
        #expect(largest.get() > 0)
        #expect(largest.get() < 2 << 20, "the spool log reached \(largest.get()) bytes")
    }

    @Test("lymph send posts sample events signed, and prints statuses and latency percentiles")
    func sendCommand() throws {
        let h = ServeHarness(pipeline: Self.pipeline())
        try h.start()
        defer { h.stop() }
        let sample = try LymphBinary.run(["sample", "--count", "100", "--seed", "5"], in: h.dir)
        let r = try LymphBinary.run(
            ["send", "http://127.0.0.1:\(h.port)/webhooks", "--secret", "env:S", "--concurrency", "4"], in: h.dir,
            environment: ["S": ServeHarness.secret], stdin: Data(sample.stdout.utf8))
        #expect(r.status == 0, "\(r.stderr)")
        #expect(r.stderr.contains("sent 100"))
        #expect(r.stderr.contains("202: 100"))
        #expect(r.stderr.contains("p99"))
        #expect(!r.stderr.contains(ServeHarness.secret))
        try h.waitForDrain()
        #expect(try h.metric("lymph_spool_appended_total") == 100)
    }
}

@Suite("lymph send and logging")
struct SendAndLogTests {
    @Test("lymph send retries connection errors with backoff, then reports the failure and exits 1")
    func sendRetries() throws {
        let dir = LymphBinary.workDirectory()
        // A port nothing listens on: every attempt is a connection error.
        let fd = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
        var addr = sockaddr_in()
        addr.sin_family = sa_family_t(AF_INET)
        addr.sin_addr.s_addr = inet_addr("127.0.0.1")
        _ = withUnsafePointer(to: &addr) { $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { bind(fd, $0, socklen_t(MemoryLayout<sockaddr_in>.size)) } }
        var len = socklen_t(MemoryLayout<sockaddr_in>.size)
        _ = withUnsafeMutablePointer(to: &addr) { $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { getsockname(fd, $0, &len) } }
        let port = Int(UInt16(bigEndian: addr.sin_port))
        close(fd)
        let start = Date()
        let r = try LymphBinary.run(
            ["send", "http://127.0.0.1:\(port)/webhooks", "--secret", "env:S", "--retries", "2"], in: dir,
            environment: ["S": "whsec_x_1234"], stdin: Data(ServeHarness.event("evt_nowhere") + [0x0A]))
        #expect(r.status == 1)
        #expect(r.stderr.contains("retried 2; failed 1"), "\(r.stderr)")
        // 0.5 s then 1 s of backoff between the three attempts.
        #expect(Date().timeIntervalSince(start) >= 1.4)
    }

    @Test("--log-format json writes one JSON object per line, without the secret")
    func jsonLogs() throws {
        let h = ServeHarness(pipeline: ServeCommandTests.pipeline())
        let p = Process()
        p.executableURL = URL(fileURLWithPath: LymphBinary.path)
        p.arguments = ["serve", "serve.yaml", "--listen", "127.0.0.1:0", "--log-format", "json", "--log-level", "debug"]
        p.currentDirectoryURL = URL(fileURLWithPath: h.dir)
        p.environment = ProcessInfo.processInfo.environment.merging(h.environment) { $1 }
        let err = Pipe()
        p.standardError = err
        p.standardOutput = FileHandle.nullDevice
        try p.run()
        Thread.sleep(forTimeInterval: 1.5)
        kill(p.processIdentifier, SIGTERM)
        p.waitUntilExit()
        let text = String(decoding: err.fileHandleForReading.readDataToEndOfFile(), as: UTF8.self)
        let logLines = text.split(separator: "\n").filter { $0.hasPrefix("{") }
        #expect(!logLines.isEmpty, "\(text)")
        for line in logLines {
            let object = try JSONSerialization.jsonObject(with: Data(line.utf8)) as? [String: Any]
            #expect(object?["level"] != nil && object?["msg"] != nil)
        }
        #expect(!text.contains(ServeHarness.secret))
        #expect(p.terminationStatus == 0)
    }
}

/// Signatures checked against an independent implementation: Node.js `crypto.createHmac` and
/// `timingSafeEqual`, as IMMUNE's documentation shows (scripts/immune_hmac.mjs).
@Suite("signatures against Node.js crypto", .serialized)
struct NodeSignatureTests {
    static var node: String? {
        for dir in (ProcessInfo.processInfo.environment["PATH"] ?? "").split(separator: ":") where FileManager.default.isExecutableFile(atPath: "\(dir)/node") {
            return "\(dir)/node"
        }
        return nil
    }

    static func runNode(_ args: [String], stdin: [UInt8], secret: String) throws -> (Int32, String) {
        let p = Process()
        p.executableURL = URL(fileURLWithPath: node!)
        p.arguments = [LymphBinary.repo("scripts/immune_hmac.mjs")] + args
        p.environment = ["SECRET": secret, "PATH": ProcessInfo.processInfo.environment["PATH"] ?? "/usr/bin"]
        let input = Pipe(), output = Pipe()
        p.standardInput = input
        p.standardOutput = output
        p.standardError = FileHandle.nullDevice
        try p.run()
        input.fileHandleForWriting.write(Data(stdin))
        try input.fileHandleForWriting.close()
        let out = output.fileHandleForReading.readDataToEndOfFile()
        p.waitUntilExit()
        return (p.terminationStatus, String(decoding: out, as: UTF8.self).trimmingCharacters(in: .whitespacesAndNewlines))
    }

    @Test("node signs, lymph serve accepts; node verifies what lymph sign prints")
    func bothWays() throws {
        guard Self.node != nil else {
            print("skipped: node is not on PATH (scripts/setup installs nodejs)")
            return
        }
        let h = ServeHarness(pipeline: ServeCommandTests.pipeline())
        try h.start()
        defer { h.stop() }
        let body = ServeHarness.event("evt_node")
        let (status, header) = try Self.runNode(["sign"], stdin: body, secret: ServeHarness.secret)
        #expect(status == 0)
        let value = String(header.split(separator: ":", maxSplits: 1)[1]).trimmingCharacters(in: .whitespaces)
        #expect(try h.post(body, signature: value).status == 202)
        let (_, wrong) = try Self.runNode(["sign"], stdin: body, secret: "whsec_not_it")
        #expect(try h.post(body, signature: String(wrong.split(separator: " ")[1])).status == 401)
        // The other way: what `lymph sign` prints, node's timingSafeEqual accepts, for the same bytes only.
        let sign = try LymphBinary.run(["sign", "--secret", "env:S"], in: h.dir, environment: ["S": ServeHarness.secret], stdin: Data(body))
        #expect(sign.status == 0)
        #expect(sign.stdout.hasPrefix("x-immune-signature: "))
        let line = sign.stdout.trimmingCharacters(in: .whitespacesAndNewlines)
        #expect(try Self.runNode(["verify", line], stdin: body, secret: ServeHarness.secret).0 == 0)
        #expect(try Self.runNode(["verify", line], stdin: body + [0x20], secret: ServeHarness.secret).0 == 1)
        #expect(try Self.runNode(["verify", line], stdin: body, secret: "whsec_not_it").0 == 1)
    }
}
