import Foundation
import Testing

/// `lymph tickets` and `lymph sensors` as the README describes them: `--format` on `show`, a
/// close that changes nothing says so, misuse shows the command's own usage.
@Suite("tickets and sensors commands")
struct TicketsAndSensorsCommandTests {
    static let secret = ["IMMUNE_WEBHOOK_SECRET": "whsec_lymph_example_only"]

    /// A folder whose store holds the maintenance tickets of the example deliveries, and the
    /// `--pipeline` arguments that find it.
    func maintenanceStore() throws -> (dir: String, pipeline: [String], ticket: String) {
        let dir = LymphBinary.workDirectory()
        try LymphBinary.run(["run", LymphBinary.repo("pipelines/maintenance.yaml"), LymphBinary.repo("examples/deliveries.ndjson"),
                             "--summary", "none", "--output", "none"], in: dir, environment: Self.secret)
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

    @Test("without --state or --pipeline, tickets and sensors show their own usage, not lymph's", arguments: [
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
        try LymphBinary.run(["run", LymphBinary.repo("pipelines/maintenance.yaml"), LymphBinary.repo("examples/deliveries.ndjson"),
                             "--summary", "none", "--output", "none"], in: maintenance, environment: Self.secret)
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
        let r = try LymphBinary.run(["send", "http://127.0.0.1:\(h.port)/webhooks", "--secret", "env:S"], in: h.dir,
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
        let lines = good.map { Self.delivery($0, signature: ServeHarness.sign($0)) } + [Self.delivery(bad, signature: ServeHarness.sign(bad, secret: "whsec_other"))]
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

    @Test("an unreachable URL reports the connection error, counts it as failed, and fails fast without retries")
    func unreachable() throws {
        let port = Self.closedPort()
        let start = Date()
        let r = try LymphBinary.run(["send", "http://127.0.0.1:\(port)/webhooks", "--retries", "0"], in: LymphBinary.workDirectory(),
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
        let r = try LymphBinary.run(["send", "http://127.0.0.1:\(port)/webhooks", "events.ndjson", "--retries", "0", "--timeout", "1", "--concurrency", "2"],
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
        let r = try LymphBinary.run(["send", "http://127.0.0.1:\(h.port)/webhooks", "events.ndjson", "--secret", "env:S", "--retries", String(retries),
                                     "--rate", "200", "--concurrency", "4"], in: h.dir, environment: ["S": ServeHarness.secret], timeout: 90)
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

/// A gzip file given as input is refused before anything runs.
@Suite("gzip input")
struct GzipInputTests {
    /// `{"id":"evt_gz1",...}` and a newline, through `gzip -9n`.
    static let gzipped: [UInt8] = [
        0x1f, 0x8b, 0x08, 0x00, 0x00, 0x00, 0x00, 0x00, 0x02, 0x03, 0xab, 0x56, 0xca, 0x4c, 0x51, 0xb2, 0x52, 0x4a, 0x2d, 0x2b, 0x89, 0x4f,
        0xaf, 0x32, 0x54, 0xd2, 0x51, 0x2a, 0xa9, 0x2c, 0x48, 0x05, 0x0a, 0x14, 0x14, 0xa5, 0xa6, 0x64, 0x26, 0x97, 0x64, 0xe6, 0xe7, 0xe9,
        0x25, 0x17, 0xa5, 0x26, 0x96, 0xa4, 0xa6, 0x00, 0xe5, 0xa0, 0xac, 0xf8, 0xc4, 0x12, 0xa0, 0x0a, 0x23, 0x03, 0x23, 0x33, 0x5d, 0x03,
        0x20, 0x32, 0x0c, 0x31, 0x30, 0xb0, 0x02, 0xa3, 0x28, 0xa0, 0x9a, 0x94, 0xc4, 0x92, 0x44, 0x25, 0xab, 0xea, 0xda, 0x5a, 0x2e, 0x00,
        0x9c, 0x19, 0x2a, 0x6e, 0x5b, 0x00, 0x00, 0x00,
    ]

    static let pipeline = """
        pipeline: gz
        state: memory
        output: out.ndjson
        dead_letter: dead.ndjson
        stages:
          - parse
        """

    @Test("lymph run refuses a gzip file with exit 2 and the zcat advice, processing nothing (not even earlier files)")
    func runRefusesGzip() throws {
        let dir = LymphBinary.workDirectory()
        _ = FileManager.default.createFile(atPath: dir + "/p.yaml", contents: Data(Self.pipeline.utf8))
        _ = FileManager.default.createFile(atPath: dir + "/events.ndjson.gz", contents: Data(Self.gzipped))
        let r = try LymphBinary.run(["run", "p.yaml", LymphBinary.repo("examples/events.ndjson"), "events.ndjson.gz"], in: dir)
        #expect(r.status == 2)
        #expect(r.stderr.contains("lymph: input 'events.ndjson.gz' is gzip-compressed; use zcat events.ndjson.gz | lymph run"), "\(r.stderr)")
        #expect(LymphBinary.lines(dir + "/out.ndjson").isEmpty)
        #expect(LymphBinary.lines(dir + "/dead.ndjson").isEmpty)
    }

    @Test("lymph send refuses a gzip file with exit 2 before sending anything")
    func sendRefusesGzip() throws {
        let dir = LymphBinary.workDirectory()
        _ = FileManager.default.createFile(atPath: dir + "/events.ndjson.gz", contents: Data(Self.gzipped))
        let r = try LymphBinary.run(["send", "http://127.0.0.1:\(SendReportTests.closedPort())/webhooks", "events.ndjson.gz"], in: dir)
        #expect(r.status == 2)
        #expect(r.stderr.contains("lymph send: input 'events.ndjson.gz' is gzip-compressed; use zcat events.ndjson.gz | lymph send URL"), "\(r.stderr)")
        #expect(!r.stderr.contains("sent "))
    }
}

@Suite("gzip on stdin, end to end")
struct GzipStdinTests {
    @Test("gzip bytes on stdin are dead letters whose message says to zcat the input")
    func gzipStdin() throws {
        let dir = LymphBinary.workDirectory()
        try "state: memory\noutput: out.ndjson\ndead_letter: dead.ndjson\nstages: [parse]\n".write(toFile: dir + "/p.yaml", atomically: true, encoding: .utf8)
        let gz = Data([0x1F, 0x8B, 0x08, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x03, 0x0A, 0x41, 0x42])
        let r = try LymphBinary.run(["run", "p.yaml", "--summary", "none"], in: dir, stdin: gz)
        #expect(r.status == 1)
        let dead = LymphBinary.lines(dir + "/dead.ndjson")
        #expect(dead.first?.contains("the input looks gzip-compressed: use zcat FILE | lymph run PIPELINE") == true, "\(dead)")
    }
}
