import Foundation
import Testing

/// `lymph tickets` and `lymph sensors` as docs/operations.md describes them: `--format` on `show`, a
/// close that changes nothing says so, misuse shows the command's own usage.
@Suite("tickets and sensors commands")
struct TicketsAndSensorsCommandTests {
    static let secret = ["IMMUNE_WEBHOOK_SECRET": "whsec_lymph_example_only"]

    /// A folder whose store holds the maintenance tickets of the example deliveries, and the
    /// `--pipeline` arguments that find it.
    func maintenanceStore() throws -> (dir: String, pipeline: [String], ticket: String) {
        let dir = LymphBinary.workDirectory()
        try LymphBinary.run(
            [
                "run", LymphBinary.repo("pipelines/maintenance.yaml"), LymphBinary.repo("examples/deliveries.ndjson"),
                "--summary", "none", "--output", "none",
            ], in: dir, environment: Self.secret)
        let pipeline = ["--pipeline", LymphBinary.repo("pipelines/maintenance.yaml")]
        let list = try LymphBinary.run(["tickets", "--format", "json"] + pipeline, in: dir)
        let first = try #require(list.stdoutLines.first)
        let ticket = try #require((try JSONSerialization.jsonObject(with: Data(first.utf8)) as? [String: Any])?["ticket_id"] as? String)
        return (dir, pipeline, ticket)
    }

    @Test("tickets show takes --format: json prints the ticket as one JSON line, table one field a line")
    func showFormat() throws {
        let (dir, pipeline, id) = try maintenanceStore()
        let json = try LymphBinary.run(["tickets", "show", id, "--format", "json"] + pipeline, in: dir)
        #expect(json.status == 0, "\(json.stderr)")
        #expect(json.stdoutLines.count == 1)
        let object = try JSONSerialization.jsonObject(with: Data(json.stdout.utf8)) as? [String: Any]
        #expect(object?["ticket_id"] as? String == id)
        #expect((object?["source_event_ids"] as? [String])?.isEmpty == false)

        let table = try LymphBinary.run(["tickets", "show", id, "--format", "table"] + pipeline, in: dir)
        #expect(table.status == 0, "\(table.stderr)")
        let lines = table.stdoutLines
        #expect(lines.first?.hasPrefix("TICKET") == true && lines.first?.hasSuffix(id) == true, "\(table.stdout)")
        #expect(lines.contains { $0.hasPrefix("STATUS") && $0.hasSuffix("open") })
        #expect(lines.contains { $0.hasPrefix("SOURCES") && $0.contains("evt_") })
    }

    @Test("closing or cancelling a ticket already closed says so, changes nothing and exits 1")
    func closeClosedTicket() throws {
        let (dir, pipeline, id) = try maintenanceStore()
        let close = try LymphBinary.run(["tickets", "close", id, "--note", "bearing replaced"] + pipeline, in: dir)
        #expect(close.status == 0)
        #expect(close.stdout == "\(id): done\n")

        let cancel = try LymphBinary.run(["tickets", "close", id, "--cancel", "--note", "changed my mind"] + pipeline, in: dir)
        #expect(cancel.status == 1)
        #expect(cancel.stdout.isEmpty)
        #expect(cancel.stderr.contains("ticket \(id) is already done (closed 20"), "\(cancel.stderr)")
        #expect(cancel.stderr.contains("nothing changed"))

        let again = try LymphBinary.run(["tickets", "close", id] + pipeline, in: dir)
        #expect(again.status == 1)
        #expect(again.stderr.contains("is already done"), "\(again.stderr)")

        // Still done, with the first close's note.
        let shown = try LymphBinary.run(["tickets", "show", id, "--format", "json"] + pipeline, in: dir)
        #expect(shown.stdout.contains(#""status":"done""#) && shown.stdout.contains(#""note":"bearing replaced""#), "\(shown.stdout)")
    }

    @Test("a cancelled ticket closed again says it is already cancelled")
    func closeCancelledTicket() throws {
        let (dir, pipeline, id) = try maintenanceStore()
        let cancel = try LymphBinary.run(["tickets", "close", id, "--cancel"] + pipeline, in: dir)
        #expect(cancel.status == 0)
        #expect(cancel.stdout == "\(id): cancelled\n")
        let close = try LymphBinary.run(["tickets", "close", id] + pipeline, in: dir)
        #expect(close.status == 1)
        #expect(close.stderr.contains("ticket \(id) is already cancelled (closed "), "\(close.stderr)")
    }

    @Test(
        "without --state or --pipeline, tickets and sensors show their own usage, not lymph's",
        arguments: [
            (["tickets"], "lymph tickets list"),
            (["tickets", "show", "mt_0000000000000000"], "lymph tickets show"),
            (["tickets", "close", "mt_0000000000000000"], "lymph tickets close"),
            (["sensors"], "lymph sensors"),
        ])
    func usageWithoutState(arguments: [String], command: String) throws {
        let r = try LymphBinary.run(arguments, in: LymphBinary.workDirectory())
        #expect(r.status == 2)
        #expect(r.stderr.contains("--state PATH or --pipeline FILE"), "\(r.stderr)")
        #expect(r.stderr.contains("Usage: \(command) "), "\(r.stderr)")
        #expect(r.stderr.contains("See '\(command) --help'"), "\(r.stderr)")
        #expect(!r.stderr.contains("<subcommand>"), "\(r.stderr)")
    }

    @Test("sensors on a pipeline without a track_sensors stage says so on stderr and exits 2")
    func sensorsWithoutTrackSensors() throws {
        let dir = LymphBinary.workDirectory()
        let yaml = """
            pipeline: nosensors
            state: .lymph/nosensors.sqlite
            output: out.ndjson
            dead_letter: dead.ndjson
            stages:
              - parse
              - dedup
            """
        _ = FileManager.default.createFile(atPath: dir + "/p.yaml", contents: Data(yaml.utf8))
        // The store exists (the pipeline has run), so the question is only the stage.
        let run = try LymphBinary.run(["run", "p.yaml", LymphBinary.repo("examples/events.ndjson"), "--summary", "none"], in: dir)
        #expect(FileManager.default.fileExists(atPath: dir + "/.lymph/nosensors.sqlite"), "\(run.stderr)")
        for format in ["json", "table"] {
            let r = try LymphBinary.run(["sensors", "--pipeline", "p.yaml", "--format", format], in: dir)
            #expect(r.status == 2)
            #expect(r.stdout.isEmpty)
            #expect(r.stderr.contains("p.yaml tracks no sensors (it has no track_sensors stage)"), "\(r.stderr)")
        }
        // A pipeline that tracks sensors still lists them.
        let maintenance = LymphBinary.workDirectory()
        try LymphBinary.run(
            [
                "run", LymphBinary.repo("pipelines/maintenance.yaml"), LymphBinary.repo("examples/deliveries.ndjson"),
                "--summary", "none", "--output", "none",
            ], in: maintenance, environment: Self.secret)
        let listed = try LymphBinary.run(["sensors", "--pipeline", LymphBinary.repo("pipelines/maintenance.yaml"), "--format", "json"], in: maintenance)
        #expect(listed.status == 0)
        #expect(!listed.stdoutLines.isEmpty)
    }
}

/// `lymph send`: reasons for refusals and for no answer, `failed` agreeing with the exit status,
/// and every wait bounded.
@Suite("lymph send reports and bounds")
struct SendReportTests {
    /// A loopback port nothing listens on.
    static func closedPort() -> Int {
        let fd = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
        defer { close(fd) }
        return bindLoopback(fd)
    }

    /// Binds `fd` to a free loopback port and returns it.
    static func bindLoopback(_ fd: Int32) -> Int {
        var addr = sockaddr_in()
        addr.sin_family = sa_family_t(AF_INET)
        addr.sin_addr.s_addr = inet_addr("127.0.0.1")
        _ = withUnsafePointer(to: &addr) { $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { bind(fd, $0, socklen_t(MemoryLayout<sockaddr_in>.size)) } }
        var len = socklen_t(MemoryLayout<sockaddr_in>.size)
        _ = withUnsafeMutablePointer(to: &addr) { $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { getsockname(fd, $0, &len) } }
        return Int(UInt16(bigEndian: addr.sin_port))
    }

    /// A captured delivery line: `body` with the signature `signature`.
    static func delivery(_ body: [UInt8], signature: String) -> String {
        let text = String(decoding: body, as: UTF8.self)
        let encoded = try! JSONSerialization.data(withJSONObject: ["body": text, "headers": ["x-immune-signature": signature]], options: [.sortedKeys])
        return String(decoding: encoded, as: UTF8.self)
    }

    static func lines(_ lines: [String]) -> Data { Data((lines.joined(separator: "\n") + "\n").utf8) }

    @Test("refusals are counted with the receiver's reason: 401: 3 (bad_signature: 3)")
    func refusalReasons() throws {
        let h = ServeHarness(pipeline: ServeCommandTests.pipeline())
        try h.start()
        defer { h.stop() }
        let events = (1...3).map { String(decoding: ServeHarness.event("evt_wrong_\($0)"), as: UTF8.self) }
        let r = try LymphBinary.run(
            ["send", "http://127.0.0.1:\(h.port)/webhooks", "--secret", "env:S"], in: h.dir,
            environment: ["S": "whsec_not_the_one"], stdin: Self.lines(events))
        #expect(r.status == 1)
        #expect(r.stderr.contains("status 401: 3 (bad_signature: 3)"), "\(r.stderr)")
        #expect(r.stderr.contains("failed 3"), "\(r.stderr)")
    }

    @Test("failed counts every request without a 2xx, so it agrees with the exit status")
    func failedCountsRefusals() throws {
        let h = ServeHarness(pipeline: ServeCommandTests.pipeline())
        try h.start()
        defer { h.stop() }
        let good = (1...2).map { ServeHarness.event("evt_mixed_\($0)") }
        let bad = ServeHarness.event("evt_mixed_bad")
        let lines =
            good.map { Self.delivery($0, signature: ServeHarness.sign($0)) } + [Self.delivery(bad, signature: ServeHarness.sign(bad, secret: "whsec_other"))]
        let r = try LymphBinary.run(["send", "http://127.0.0.1:\(h.port)/webhooks", "--concurrency", "1"], in: h.dir, stdin: Self.lines(lines))
        #expect(r.status == 1)
        #expect(r.stderr.contains("status 202: 2, 401: 1 (bad_signature: 1)"), "\(r.stderr)")
        #expect(r.stderr.contains("failed 1"), "\(r.stderr)")

        // All accepted: failed 0 and exit 0.
        let again = (3...4).map { ServeHarness.event("evt_mixed_\($0)") }.map { Self.delivery($0, signature: ServeHarness.sign($0)) }
        let ok = try LymphBinary.run(["send", "http://127.0.0.1:\(h.port)/webhooks"], in: h.dir, stdin: Self.lines(again))
        #expect(ok.status == 0, "\(ok.stderr)")
        #expect(ok.stderr.contains("failed 0"), "\(ok.stderr)")
    }

    /// Runs lymph in `dir` with stdout and stderr going to `stdout` and `stderr` (paths such as
    /// /dev/full); its exit status, or 128 + the signal that ended it.
    static func runRedirected(_ arguments: [String], in dir: String, stdout: String, stderr: String) throws -> Int32 {
        let p = Process()
        p.executableURL = URL(fileURLWithPath: LymphBinary.path)
        p.arguments = arguments
        p.currentDirectoryURL = URL(fileURLWithPath: dir)
        p.standardOutput = FileHandle(forWritingAtPath: stdout)
        p.standardError = FileHandle(forWritingAtPath: stderr)
        try p.run()
        p.waitUntilExit()
        return p.terminationReason == .exit ? p.terminationStatus : 128 + p.terminationStatus
    }

    @Test(
        "a stderr that cannot be written (a full disk) does not crash lymph: the run does its work and exits as usual; lymph test's results that cannot reach stdout are exit 3"
    )
    func unwritableStandardStreams() throws {
        let dir = LymphBinary.workDirectory()
        try "pipeline: q\nstate: memory\noutput: out.ndjson\nstages:\n  - parse\n  - dedup\n".write(toFile: dir + "/q.yaml", atomically: true, encoding: .utf8)
        let lines = (1...3).map { #"{"id":"e\#($0)","type":"alert.triggered","created_at":"2026-06-01T00:00:00Z","data":{}}"# } + ["not json"]
        try (lines.joined(separator: "\n") + "\n").write(toFile: dir + "/ev.ndjson", atomically: true, encoding: .utf8)
        // One dead letter (to stderr's neighbour, the default file), and a summary that cannot be written.
        let status = try Self.runRedirected(["run", "q.yaml", "ev.ndjson"], in: dir, stdout: "/dev/null", stderr: "/dev/full")
        #expect(status == 1)
        #expect(LymphBinary.lines(dir + "/out.ndjson").count == 3)

        try """
        pipeline: q.yaml
        now: 2026-06-01T12:00:00Z
        tests:
          - name: passes
            input: [ {id: e1, type: alert.triggered, created_at: 2026-06-01T10:00:00Z, data: {}} ]
            expect: { output: [ {id: e1} ] }
        """.write(toFile: dir + "/q.test.yaml", atomically: true, encoding: .utf8)
        #expect(try Self.runRedirected(["test", "q.test.yaml"], in: dir, stdout: "/dev/full", stderr: "/dev/null") == 3)
        #expect(try Self.runRedirected(["test", "q.test.yaml"], in: dir, stdout: "/dev/null", stderr: "/dev/full") == 0)
    }

    @Test(
        "run with stdin closed (<&-) is refused at once as an unreadable input (exit 2), not a hang on a descriptor lymph opened since; stdout closed is an output that cannot be written (exit 3)"
    )
    func closedStandardStreams() throws {
        let dir = LymphBinary.workDirectory()
        try "pipeline: r\nstate: st/r.sqlite\noutput: '-'\nstages:\n  - parse\n  - dedup\n".write(toFile: dir + "/r.yaml", atomically: true, encoding: .utf8)
        try #"{"id":"e1","type":"alert.triggered","created_at":"2026-06-01T00:00:00Z","data":{}}"#.appending("\n").write(
            toFile: dir + "/ev.ndjson", atomically: true, encoding: .utf8)
        func shell(_ command: String) throws -> (status: Int32, stderr: String) {
            let p = Process()
            p.executableURL = URL(fileURLWithPath: "/bin/sh")
            p.arguments = ["-c", "exec timeout 20 \"$0\" " + command, LymphBinary.path]
            p.currentDirectoryURL = URL(fileURLWithPath: dir)
            let err = Pipe()
            p.standardError = err
            p.standardOutput = FileHandle.nullDevice
            try p.run()
            let text = String(decoding: err.fileHandleForReading.readDataToEndOfFile(), as: UTF8.self)
            p.waitUntilExit()
            return (p.terminationStatus, text)
        }
        let closedIn = try shell("run r.yaml --summary none <&-")
        #expect(closedIn.status == 2, "\(closedIn.stderr)")
        #expect(closedIn.stderr.contains("cannot read input 'stdin': it is not open for reading"), "\(closedIn.stderr)")
        let closedOut = try shell("run r.yaml ev.ndjson --summary none >&-")
        #expect(closedOut.status == 3, "\(closedOut.stderr)")
        #expect(closedOut.stderr.contains("output 'stdout': cannot write: Bad file descriptor"), "\(closedOut.stderr)")
        // The store was not written over: it opens, and the event is not in it.
        let again = try shell("run r.yaml ev.ndjson --summary json")
        #expect(again.status == 0, "\(again.stderr)")
        #expect(again.stderr.contains("\"passed\":1,"), "\(again.stderr)")
    }

    @Test("a secret that cannot be read at start is named with its place in the pipeline file, as lymph check names it (exit 2)")
    func unreadableSecretPlace() throws {
        let dir = LymphBinary.workDirectory()
        try "state: memory\noutput: none\nstages:\n  - parse\n  - verify: { secrets: [env:LYMPH_TEST_NOPE] }\n".write(
            toFile: dir + "/v.yaml", atomically: true, encoding: .utf8)
        let r = try LymphBinary.run(["run", "v.yaml", "-"], in: dir, stdin: Data())
        #expect(r.status == 2, "\(r.stderr)")
        #expect(r.stderr.contains("lymph: v.yaml:5:5: secret env:LYMPH_TEST_NOPE: environment variable LYMPH_TEST_NOPE is not set"), "\(r.stderr)")
    }

    @Test(
        "a line no request can be made of (not JSON, a header name that is no HTTP token, a header value with a line break) is counted as not sent with where the first is; the lines after it are sent and the receiver is not blamed"
    )
    func unsendableLines() throws {
        let h = ServeHarness(pipeline: ServeCommandTests.pipeline())
        try h.start()
        defer { h.stop() }
        let good = (1...2).map { ServeHarness.event("evt_unsendable_\($0)") }
        func withHeaders(_ body: [UInt8], _ extra: [String: String]) -> String {
            var headers = extra
            headers["x-immune-signature"] = ServeHarness.sign(body)
            let encoded = try! JSONSerialization.data(
                withJSONObject: ["body": String(decoding: body, as: UTF8.self), "headers": headers], options: [.sortedKeys])
            return String(decoding: encoded, as: UTF8.self)
        }
        let lines = [
            Self.delivery(good[0], signature: ServeHarness.sign(good[0])),
            withHeaders(ServeHarness.event("evt_unsendable_name"), ["bad name": "x"]),
            withHeaders(ServeHarness.event("evt_unsendable_token"), ["Authorization: Bearer secret_token_in_name": ""]),
            withHeaders(ServeHarness.event("evt_unsendable_value"), ["authorization": "Bearer tok\nsecret_value_in_header"]),
            "not json",
            Self.delivery(good[1], signature: ServeHarness.sign(good[1])),
        ]
        let r = try LymphBinary.run(["send", "http://127.0.0.1:\(h.port)/webhooks", "--concurrency", "1"], in: h.dir, stdin: Self.lines(lines))
        #expect(r.status == 1, "\(r.stderr)")
        #expect(r.stderr.contains("status 202: 2"), "\(r.stderr)")
        #expect(r.stderr.contains("failed 0"), "\(r.stderr)")
        #expect(r.stderr.contains("not sent 4 ("), "\(r.stderr)")
        #expect(!r.stderr.contains("secret_token_in_name"), "\(r.stderr)")
        #expect(r.stderr.contains("header name 'bad…' is not an HTTP field name (it holds a byte a name cannot have): 1"), "\(r.stderr)")
        #expect(r.stderr.contains("header 'authorization' holds a line break or another control character: 1"), "\(r.stderr)")
        #expect(r.stderr.contains("not a JSON object: 1"), "\(r.stderr)")
        #expect(r.stderr.contains("the first at stdin:2)"), "\(r.stderr)")
        #expect(!r.stderr.contains("gave up"), "\(r.stderr)")
        #expect(!r.stderr.contains("no answer"), "\(r.stderr)")
        #expect(!r.stderr.contains("secret_value_in_header"), "\(r.stderr)")
    }

    @Test("a redirect is not followed but counted as a request without a 2xx; an answer whose body is cut short is no answer: neither is reported delivered")
    func redirectsAndCutAnswers() throws {
        let dir = LymphBinary.workDirectory()
        let script = """
            import socket, sys, threading
            s = socket.socket(); s.bind(("127.0.0.1", 0)); s.listen(16)
            print(s.getsockname()[1], flush=True)
            log = open(sys.argv[1], "a")
            def serve(c):
                data = b""
                while b"\\r\\n\\r\\n" not in data:
                    more = c.recv(65536)
                    if not more: break
                    data += more
                line = data.split(b"\\r\\n")[0].decode()
                log.write(line + "\\n"); log.flush()
                if " /moved " in line:
                    c.sendall(b"HTTP/1.1 302 Found\\r\\nLocation: /sink\\r\\nContent-Length: 0\\r\\n\\r\\n")
                elif " /sink " in line:
                    c.sendall(b"HTTP/1.1 202 Accepted\\r\\nContent-Length: 0\\r\\n\\r\\n")
                else:
                    c.sendall(b"HTTP/1.1 200 OK\\r\\nContent-Length: 100\\r\\n\\r\\n0123456789")
                c.close()
            while True:
                c, _ = s.accept()
                threading.Thread(target=serve, args=(c,), daemon=True).start()
            """
        try script.write(toFile: dir + "/receiver.py", atomically: true, encoding: .utf8)
        let receiver = Process()
        receiver.executableURL = URL(fileURLWithPath: "/usr/bin/env")
        receiver.arguments = ["python3", dir + "/receiver.py", dir + "/requests.log"]
        let out = Pipe()
        receiver.standardOutput = out
        try receiver.run()
        defer {
            kill(receiver.processIdentifier, SIGKILL)
            receiver.waitUntilExit()
        }
        let port =
            Int(String(decoding: out.fileHandleForReading.availableDataOrFirstLine(), as: UTF8.self).trimmingCharacters(in: .whitespacesAndNewlines)) ?? 0
        let events = (1...3).map { String(decoding: ServeHarness.event("evt_redirect_\($0)"), as: UTF8.self) }
        let moved = try LymphBinary.run(
            ["send", "http://127.0.0.1:\(port)/moved", "--secret", "env:S"], in: dir, environment: ["S": "whsec_x"], stdin: Self.lines(events))
        #expect(moved.status == 1, "\(moved.stderr)")
        #expect(moved.stderr.contains("status 302: 3"), "\(moved.stderr)")
        #expect(moved.stderr.contains("failed 3"), "\(moved.stderr)")
        #expect(!LymphBinary.lines(dir + "/requests.log").contains { $0.contains("/sink") }, "the redirect was followed")

        let cut = try LymphBinary.run(
            ["send", "http://127.0.0.1:\(port)/partial", "--retries", "0", "--timeout", "2"], in: dir, stdin: Self.lines([events[0]]))
        #expect(cut.status == 1, "\(cut.stderr)")
        #expect(cut.stderr.contains("answer 200 cut short"), "\(cut.stderr)")
        #expect(cut.stderr.contains("failed 1"), "\(cut.stderr)")
    }

    @Test("a URL with a user and password is refused before anything is sent (the client would drop them), and the password is not shown")
    func credentialsInURL() throws {
        let r = try LymphBinary.run(
            ["send", "http://admin:pw-s3cret@127.0.0.1:9/webhooks"], in: LymphBinary.workDirectory(),
            stdin: Self.lines([String(decoding: ServeHarness.event("evt_creds"), as: UTF8.self)]))
        #expect(r.status == 2, "\(r.status) \(r.stderr)")
        #expect(r.stderr.contains("the URL carries a user or password, which lymph send does not send"), "\(r.stderr)")
        #expect(!r.stderr.contains("pw-s3cret"))
    }

    @Test("an unreachable URL reports the connection error, counts it as failed, and fails fast without retries")
    func unreachable() throws {
        let port = Self.closedPort()
        let start = Date()
        let r = try LymphBinary.run(
            ["send", "http://127.0.0.1:\(port)/webhooks", "--retries", "0"], in: LymphBinary.workDirectory(),
            stdin: Self.lines([String(decoding: ServeHarness.event("evt_nowhere"), as: UTF8.self)]))
        #expect(r.status == 1)
        #expect(r.stderr.contains("no answer: 1 (connection refused to 127.0.0.1:\(port): 1)"), "\(r.stderr)")
        #expect(!r.stderr.contains("status none"), "\(r.stderr)")
        #expect(r.stderr.contains("failed 1"), "\(r.stderr)")
        // A refused connection is not waited on until the connect timeout (5 s).
        #expect(Date().timeIntervalSince(start) < 4, "took \(Date().timeIntervalSince(start))s")
    }

    @Test("a receiver that takes the connection but never answers is given up on after --timeout")
    func silentReceiver() throws {
        // Listening but never accepting: the kernel completes the connection, nobody answers.
        let fd = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
        defer { close(fd) }
        let port = Self.bindLoopback(fd)
        #expect(listen(fd, 64) == 0)
        let dir = LymphBinary.workDirectory()
        let events = (1...20).map { String(decoding: ServeHarness.event("evt_silent_\($0)"), as: UTF8.self) }
        _ = FileManager.default.createFile(atPath: dir + "/events.ndjson", contents: Self.lines(events))
        let start = Date()
        let r = try LymphBinary.run(
            ["send", "http://127.0.0.1:\(port)/webhooks", "events.ndjson", "--retries", "0", "--timeout", "1", "--concurrency", "2"],
            in: dir, timeout: 60)
        let elapsed = Date().timeIntervalSince(start)
        #expect(r.status == 1)
        #expect(r.stderr.contains("no answer within 1s from 127.0.0.1:\(port)"), "\(r.stderr)")
        #expect(r.stderr.contains("gave up: no answer within 1s"), "\(r.stderr)")
        // One round of attempts (1 s each), not twenty.
        #expect(elapsed < 8, "took \(elapsed)s")
    }

    @Test("when the receiver dies mid-run, send ends in bounded time, prints its summary and exits 1", arguments: [0, 1])
    func receiverDiesMidRun(retries: Int) throws {
        let h = ServeHarness(pipeline: ServeCommandTests.pipeline())
        try h.start()
        // A file, not stdin: send stops reading once the receiver is gone, and a writer to its
        // stdin would get SIGPIPE.
        let events = (1...3000).map { String(decoding: ServeHarness.event("evt_dies_\($0)"), as: UTF8.self) }
        _ = FileManager.default.createFile(atPath: h.dir + "/events.ndjson", contents: Self.lines(events))
        DispatchQueue.global().asyncAfter(deadline: .now() + 1.5) { h.stop(SIGKILL) }
        let start = Date()
        let r = try LymphBinary.run(
            [
                "send", "http://127.0.0.1:\(h.port)/webhooks", "events.ndjson", "--secret", "env:S", "--retries", String(retries),
                "--rate", "200", "--concurrency", "4",
            ], in: h.dir, environment: ["S": ServeHarness.secret], timeout: 90)
        let elapsed = Date().timeIntervalSince(start)
        #expect(r.status == 1)
        #expect(r.stderr.contains("lymph send: sent "), "\(r.stderr)")
        #expect(r.stderr.contains("202: "), "\(r.stderr)")
        #expect(r.stderr.contains("gave up: "), "\(r.stderr)")
        #expect(r.stderr.range(of: #"failed [1-9]"#, options: .regularExpression) != nil, "\(r.stderr)")
        // 3000 lines at 200/s would take 15 s; the rest is not sent once the receiver is gone
        // (with a retry: after 0.5 s of backoff).
        #expect(elapsed < 12, "took \(elapsed)s: \(r.stderr)")
    }
}

/// gzip input, found by its magic bytes: files and stdin are decompressed as they are read.
@Suite("gzip input, end to end")
struct GzipInputTests {
    /// `path` compressed with the system's gzip (`-n`: no name or time in the header).
    static func gzip(_ path: String, to target: String) throws {
        let process = Process()
        process.executableURL = URL(fileURLWithPath: "/bin/sh")
        process.arguments = ["-c", "gzip -cn \"$0\" > \"$1\"", path, target]
        try process.run()
        process.waitUntilExit()
        #expect(process.terminationStatus == 0)
    }

    /// A dead-letter record without what differs between two runs (time, input file name).
    static func comparable(_ line: String) throws -> NSDictionary {
        var record = try #require(try JSONSerialization.jsonObject(with: Data(line.utf8)) as? [String: Any])
        record["at"] = nil
        var source = record["source"] as? [String: Any] ?? [:]
        source["file"] = nil
        record["source"] = source
        return record as NSDictionary
    }

    /// The JSON summary without its times.
    static func comparable(summary: [String: Any]) -> NSDictionary {
        var s = summary
        s["seconds"] = nil
        s["events_per_second"] = nil
        s["stages"] = (summary["stages"] as? [[String: Any]])?.map { stage in
            var stage = stage
            stage["seconds"] = nil
            return stage
        }
        return s as NSDictionary
    }

    @Test("lymph run pipelines/quickstart.yaml events.ndjson.gz gives the uncompressed run's output, summary and dead letters")
    func quickstartGzipFile() throws {
        let plainDir = LymphBinary.workDirectory(), gzDir = LymphBinary.workDirectory()
        try Self.gzip(LymphBinary.repo("examples/events.ndjson"), to: gzDir + "/events.ndjson.gz")
        let pipeline = LymphBinary.repo("pipelines/quickstart.yaml")
        let plain = try LymphBinary.run(["run", pipeline, LymphBinary.repo("examples/events.ndjson"), "--summary", "json"], in: plainDir)
        let gz = try LymphBinary.run(["run", pipeline, "events.ndjson.gz", "--summary", "json"], in: gzDir)
        #expect(plain.status == 1 && gz.status == 1, "\(gz.stderr)")
        #expect(gz.count("events_read") == 300 && gz.count("passed") == 72)
        #expect(gz.stdout == plain.stdout)
        #expect(Self.comparable(summary: gz.summary) == Self.comparable(summary: plain.summary))
        let plainDead = try LymphBinary.lines(plainDir + "/.lymph/quickstart.dead.ndjson").map(Self.comparable)
        let gzDead = LymphBinary.lines(gzDir + "/.lymph/quickstart.dead.ndjson")
        #expect(try gzDead.map(Self.comparable) == plainDead)
        #expect(gzDead.allSatisfy { $0.contains(#""file":"events.ndjson.gz""#) })
        #expect(
            try String(contentsOfFile: gzDir + "/logs/quickstart.log", encoding: .utf8)
                == String(contentsOfFile: plainDir + "/logs/quickstart.log", encoding: .utf8))
    }

    @Test("gzip on stdin (and gzip files concatenated) is read like the uncompressed events")
    func quickstartGzipStdin() throws {
        let plainDir = LymphBinary.workDirectory(), gzDir = LymphBinary.workDirectory()
        try Self.gzip(LymphBinary.repo("examples/events.ndjson"), to: gzDir + "/events.ndjson.gz")
        let gz = try Data(contentsOf: URL(fileURLWithPath: gzDir + "/events.ndjson.gz"))
        let plainEvents = try Data(contentsOf: URL(fileURLWithPath: LymphBinary.repo("examples/events.ndjson")))
        let pipeline = LymphBinary.repo("pipelines/quickstart.yaml")
        let plain = try LymphBinary.run(["run", pipeline, "--summary", "json"], in: plainDir, stdin: plainEvents + plainEvents)
        let r = try LymphBinary.run(["run", pipeline, "--summary", "json"], in: gzDir, stdin: gz + gz)
        #expect(r.status == 1, "\(r.stderr)")
        #expect(r.count("events_read") == 600 && r.count("duplicates") == 19 + 291)
        #expect(r.stdout == plain.stdout)
        #expect(Self.comparable(summary: r.summary) == Self.comparable(summary: plain.summary))
    }

    @Test("a corrupt gzip file: the lines before the damage are processed, then exit 3 naming the file and the byte")
    func corruptFile() throws {
        let dir = LymphBinary.workDirectory()
        try "state: memory\noutput: out.ndjson\ndead_letter: dead.ndjson\nstages: [parse]\n".write(toFile: dir + "/p.yaml", atomically: true, encoding: .utf8)
        try Self.gzip(LymphBinary.repo("examples/events.ndjson"), to: dir + "/good.gz")
        var bytes = try Data(contentsOf: URL(fileURLWithPath: dir + "/good.gz"))
        let good = bytes.count
        // A second member whose first block has an invalid type.
        bytes += Data([0x1F, 0x8B, 0x08, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x03, 0xFF, 0x00])
        try bytes.write(to: URL(fileURLWithPath: dir + "/broken.ndjson.gz"))
        try "{\"id\":\"later\",\"type\":\"t\",\"created_at\":\"2026-06-01T00:00:00Z\",\"data\":{}}\n".write(
            toFile: dir + "/later.ndjson", atomically: true, encoding: .utf8)
        let r = try LymphBinary.run(["run", "p.yaml", "broken.ndjson.gz", "later.ndjson", "--summary", "json"], in: dir)
        #expect(r.status == 3, "\(r.stderr)")
        #expect(r.stderr.contains("lymph: input 'broken.ndjson.gz': gzip data is corrupt at compressed byte \(good + 11)"), "\(r.stderr)")
        #expect(r.count("events_read") == 300)
        #expect(LymphBinary.lines(dir + "/out.ndjson").count == 291)
        #expect(!LymphBinary.lines(dir + "/out.ndjson").contains { $0.contains("later") })
    }

    @Test("truncated gzip on stdin: what came before is processed, the cut line is a dead letter, exit 3")
    func truncatedStdin() throws {
        let dir = LymphBinary.workDirectory()
        try "state: memory\noutput: out.ndjson\ndead_letter: dead.ndjson\nstages: [parse]\n".write(toFile: dir + "/p.yaml", atomically: true, encoding: .utf8)
        let lines = (1...50).map { #"{"id":"evt_\#($0)","type":"t","created_at":"2026-06-01T00:00:00Z","data":{}}"# }.joined(separator: "\n") + "\n"
        try lines.write(toFile: dir + "/e.ndjson", atomically: true, encoding: .utf8)
        try Self.gzip(dir + "/e.ndjson", to: dir + "/e.gz")
        let gz = try Data(contentsOf: URL(fileURLWithPath: dir + "/e.gz"))
        let r = try LymphBinary.run(["run", "p.yaml", "--summary", "json"], in: dir, stdin: gz.prefix(gz.count - 12))
        #expect(r.status == 3, "\(r.stderr)")
        #expect(r.stderr.contains("lymph: input 'stdin': gzip data is truncated"), "\(r.stderr)")
        let out = LymphBinary.lines(dir + "/out.ndjson")
        let dead = LymphBinary.lines(dir + "/dead.ndjson")
        #expect(out.count + dead.count == r.count("events_read") && !out.isEmpty)
        #expect(out == Array(lines.split(separator: "\n").map(String.init).prefix(out.count)))
    }
}

@Suite("what reaches a terminal or a header, end to end")
struct TerminalAndHeaderTests {
    @Test("dead-letters show prints a record's fields with control and bidi characters as '?': an input cannot send escape sequences to the terminal")
    func showSanitises() throws {
        let dir = LymphBinary.workDirectory()
        let record =
            #"{"error":{"stage":"st\u001b]0;PWNED\u0007","reason":"r\u202e","message":"m\u001b[31m"},"source":{"file":"f\u001b[2J","line":3},"at":"2026-06-01T00:00:00Z","raw":"x"}"#
        try (record + "\n").write(toFile: dir + "/dead.ndjson", atomically: true, encoding: .utf8)
        let r = try LymphBinary.run(["dead-letters", "show", "1", "dead.ndjson", "--format", "table"], in: dir)
        #expect(r.status == 0, "\(r.stderr)")
        let table = r.stdout.components(separatedBy: "\n{")[0]
        #expect(!table.unicodeScalars.contains { $0.value == 0x1B || $0.value == 0x07 || $0.value == 0x202E }, "\(table.debugDescription)")
        #expect(table.contains("st?]0;PWNED?") && table.contains("f?[2J:3"), "\(table)")
    }

    @Test("tickets show and close quote an unknown id printable and cut, not raw")
    func ticketIDQuoted() throws {
        let dir = LymphBinary.workDirectory()
        let pipeline = "state: s.sqlite\nstages:\n  - parse\n  - schedule_maintenance\n"
        try pipeline.write(toFile: dir + "/p.yaml", atomically: true, encoding: .utf8)
        _ = try LymphBinary.run(["run", "p.yaml", "--summary", "none"], in: dir, stdin: Data())
        let id = "mt_\u{1B}[31mred\u{07}" + String(repeating: "x", count: 5_000)
        for command in ["show", "close"] {
            let r = try LymphBinary.run(["tickets", command, id, "--state", "s.sqlite"], in: dir)
            #expect(r.status == 1, "\(r.stderr)")
            #expect(r.stderr.contains("no ticket 'mt_?[31mred?x"), "\(r.stderr)")
            #expect(!r.stderr.unicodeScalars.contains { $0.value == 0x1B || $0.value == 0x07 })
            #expect(r.stderr.utf8.count < 300)
        }
    }

    @Test("lymph sign refuses a header value holding a line break (from the body's id, or --id), rather than print a second header line")
    func signRefusesLineBreaks() throws {
        let dir = LymphBinary.workDirectory()
        let env = ["W": "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"]
        let body = Data(#"{"id":"e\r\nX-Evil: 1"}"#.utf8)
        let r = try LymphBinary.run(["sign", "--scheme", "standard_webhooks", "--secret", "env:W"], in: dir, environment: env, stdin: body)
        #expect(r.status == 2, "\(r.stdout)")
        #expect(!r.stdout.contains("X-Evil"))
        #expect(r.stderr.contains("webhook-id") && r.stderr.contains("control character"), "\(r.stderr)")
        let flag = try LymphBinary.run(
            ["sign", "--scheme", "standard_webhooks", "--secret", "env:W", "--id", "a\nX: 1"], in: dir, environment: env, stdin: Data("{}".utf8))
        #expect(flag.status == 2)
        let empty = try LymphBinary.run(
            ["sign", "--scheme", "standard_webhooks", "--secret", "env:W", "--id", ""], in: dir, environment: env, stdin: Data("{}".utf8))
        #expect(empty.status != 0 && empty.stderr.contains("--id must not be empty"), "\(empty.stderr)")
    }
}

@Suite("output a command cannot write, end to end")
struct UnwritableStdoutTests {
    @Test("sample, sign, check and tickets exit 3 with the reason when stdout is a full disk, not 0 (or 1, which means dead letters)")
    func fullDisk() throws {
        let dir = LymphBinary.workDirectory()
        try "state: s.sqlite\nstages:\n  - parse\n  - schedule_maintenance\n".write(toFile: dir + "/p.yaml", atomically: true, encoding: .utf8)
        // One ticket, so that tickets has something to print.
        _ = try LymphBinary.run(["run", "p.yaml", "--summary", "none"], in: dir, stdin: Data(ServeHarness.event("e1") + [0x0A]))
        let lymph = LymphBinary.path
        for command in [
            "\(lymph) sample --count 100000 > /dev/full",
            "echo '{}' | \(lymph) sign --secret env:W > /dev/full",
            "\(lymph) check p.yaml > /dev/full",
            "\(lymph) tickets --state s.sqlite --format json --status all > /dev/full",
            "\(lymph) tickets --state s.sqlite > /dev/full",
        ] {
            let r = Shell.run(["sh", "-c", "cd '\(dir)' && " + command], environment: ["W": "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"])
            #expect(r.status == 3, "\(command): \(r.stderr)")
            #expect(r.stderr.contains("No space left on device"), "\(command): \(r.stderr)")
        }
    }
}
