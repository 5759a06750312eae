import Foundation
import Lymph
import TestSupport
import Testing

/// Two and three `lymph serve` instances on one PostgreSQL, fed the way a load balancer would:
/// each webhook to the next instance, and to another one when that one does not answer 202.
/// Checked through the store and the instances' own files: every accepted event processed
/// exactly once across instances (the log lines of all of them, the dedup keys), and tickets
/// equal to a single-instance `lymph run` over the same events.
@Suite("several lymph serve instances on one PostgreSQL", .serialized)
struct MultiInstanceTests {
    static func pipeline(lease: String) -> String {
        """
        pipeline: shared
        state:
          postgres: env:LYMPH_DATABASE_URL
          lease: \(lease)
        output: none
        dead_letter: dead.ndjson
        stages:
          - parse
          - verify: { secrets: [env:IMMUNE_WEBHOOK_SECRET] }
          - dedup
          - log: { path: processed.log, format: text, template: "{id} {type}" }
          - schedule_maintenance
          - track_sensors
        """
    }

    /// The same stages on one machine's SQLite, over the events unsigned.
    static let reference = """
        pipeline: reference
        state: ref.sqlite
        output: none
        dead_letter: dead.ndjson
        stages:
          - parse
          - dedup
          - schedule_maintenance
          - track_sensors
        """

    struct Sample {
        let lines: [[UInt8]]
        let ids: [String]
        let types: Set<String>
    }

    /// `lymph sample` events (maintenance-heavy: tickets open and merge).
    static func sample(count: Int, seed: Int) throws -> Sample {
        let dir = LymphBinary.workDirectory()
        let r = try LymphBinary.run(["sample", "--count", "\(count)", "--seed", "\(seed)"], in: dir)
        try #require(r.status == 0, "\(r.stderr)")
        var lines: [[UInt8]] = [], ids: [String] = [], types: Set<String> = []
        for line in r.stdout.split(separator: "\n") {
            let object = try JSONSerialization.jsonObject(with: Data(line.utf8)) as! [String: Any]
            lines.append(Array(line.utf8))
            ids.append(object["id"] as! String)
            types.insert(object["type"] as! String)
        }
        return Sample(lines: lines, ids: ids, types: types)
    }

    /// Sends each line to the next instance; one that does not answer 202 (down, restarting, or
    /// its database gone) is skipped for the next, round after round, for up to a minute.
    /// `duplicateEvery`: every so many lines is sent again to another instance. Returns the
    /// ids of lines some instance accepted, and those none did.
    final class LoadBalancer: @unchecked Sendable {
        let servers: [ServeHarness]
        let accepted = Locked(0)
        init(_ servers: [ServeHarness]) { self.servers = servers }

        func send(_ sample: Sample, duplicateEvery: Int = 0) -> (accepted: Set<String>, refused: [String]) {
            var ok: Set<String> = []
            var refused: [String] = []
            for (i, line) in sample.lines.enumerated() {
                var targets = [i % servers.count]
                if duplicateEvery > 0, i % duplicateEvery == 0 { targets.append((i + 1) % servers.count) }
                for first in targets {
                    if deliver(line, startingAt: first) {
                        ok.insert(sample.ids[i])
                        accepted.update { $0 += 1 }
                    } else {
                        refused.append(sample.ids[i])
                    }
                }
            }
            return (ok, refused)
        }

        func deliver(_ line: [UInt8], startingAt first: Int) -> Bool {
            let deadline = Date().addingTimeInterval(60)
            while Date() < deadline {
                for k in 0..<servers.count {
                    let server = servers[(first + k) % servers.count]
                    if server.process == nil { continue }
                    if let reply = try? server.post(line), reply.status == 202 { return true }
                }
                Thread.sleep(forTimeInterval: 0.1)
            }
            return false
        }
    }

    /// Starts `count` instances named i1, i2... on `url`, each in a folder of its own.
    static func instances(_ count: Int, url: String, lease: String) throws -> [ServeHarness] {
        try (1...count).map { n in
            let h = ServeHarness(
                pipeline: pipeline(lease: lease), environment: ["IMMUNE_WEBHOOK_SECRET": ServeHarness.secret, "LYMPH_DATABASE_URL": url])
            try h.start(arguments: ["--instance", "i\(n)"])
            return h
        }
    }

    /// Waits until no lane of the shared spool holds an entry.
    static func waitForSharedSpool(_ cluster: PostgresCluster, database: String, timeout: Double = 90) throws {
        let deadline = Date().addingTimeInterval(timeout)
        while Date() < deadline {
            if (try? cluster.psql("SELECT count(*) FROM lymph.lymph_spool", database: database))?.trimmingCharacters(in: .whitespacesAndNewlines) == "0" {
                return
            }
            Thread.sleep(forTimeInterval: 0.2)
        }
        Issue.record("the shared spool did not drain within \(timeout)s")
    }

    /// Every accepted event in exactly one instance's log, once; nothing else; every accepted
    /// key done in the shared dedup table; tickets as one instance on SQLite makes them.
    static func check(_ sample: Sample, accepted: Set<String>, servers: [ServeHarness], cluster: PostgresCluster, database: String, url: String)
        throws
    {
        var seen: [String: Int] = [:]
        let sent = Set(sample.ids)
        for server in servers {
            for line in LymphBinary.lines(server.dir + "/processed.log") {
                // Not the maintenance.scheduled events the pipeline emits: they have ids of their own.
                let parts = line.split(separator: " ")
                guard parts.count == 2, sent.contains(String(parts[0])) else { continue }
                seen[String(parts[0]), default: 0] += 1
            }
        }
        let twice = seen.filter { $0.value > 1 }
        #expect(twice.isEmpty, "processed more than once: \(twice.keys.sorted().prefix(10))")
        let missing = accepted.subtracting(seen.keys)
        #expect(missing.isEmpty, "accepted but not processed: \(missing.sorted().prefix(10))")
        #expect(Set(seen.keys).subtracting(accepted).isEmpty)
        let done = try cluster.psql("SELECT count(*) FROM lymph.lymph_dedup WHERE holder IS NULL", database: database)
        #expect(Int(done.trimmingCharacters(in: .whitespacesAndNewlines)) == accepted.count)
        for server in servers {
            #expect(LymphBinary.lines(server.dir + "/dead.ndjson").isEmpty, "dead letters in \(server.dir)")
        }

        // Tickets: the same as one instance running the same events.
        let dir = LymphBinary.workDirectory()
        FileManager.default.createFile(atPath: dir + "/ref.yaml", contents: Data(reference.utf8))
        let input = sample.lines.enumerated().filter { accepted.contains(sample.ids[$0.offset]) }.map { String(decoding: $0.element, as: UTF8.self) }
        FileManager.default.createFile(atPath: dir + "/events.ndjson", contents: Data((input.joined(separator: "\n") + "\n").utf8))
        let run = try LymphBinary.run(["run", "ref.yaml", "events.ndjson"], in: dir)
        #expect(run.status == 0, "\(run.stderr)")
        let expected = try LymphBinary.run(["tickets", "--pipeline", "ref.yaml", "--format", "json"], in: dir)
        let shared = try LymphBinary.run(
            ["tickets", "--pipeline", "serve.yaml", "--format", "json"], in: servers[0].dir, environment: ["LYMPH_DATABASE_URL": url])
        #expect(shared.status == 0, "\(shared.stderr)")
        let want = try normalized(expected.stdout), got = try normalized(shared.stdout)
        #expect(!want.isEmpty)
        #expect(got == want)
    }

    /// Tickets without what depends on which instance opened them (id, creation and update
    /// times): job, priority, due date, status and the set of source events.
    static func normalized(_ json: String) throws -> [String] {
        try json.split(separator: "\n").map { line in
            let t = try JSONSerialization.jsonObject(with: Data(line.utf8)) as! [String: Any]
            let sources = (t["source_event_ids"] as! [String]).sorted().joined(separator: ",")
            return "\(t["equipment_id"]!)|\(t["action"]!)|\(t["priority"]!)|\(t["due_by"]!)|\(t["status"]!)|\(sources)"
        }.sorted()
    }

    @Test("three instances fed by lymph send at once, duplicates sent to different instances: each event processed once, tickets as one instance makes them")
    func threeInstancesShareDedupAndTickets() async throws {
        try await onOwnThread { try Self.threeInstancesShareDedupAndTicketsBody() }
    }

    static func threeInstancesShareDedupAndTicketsBody() throws {
        let cluster = try PostgresCluster.shared.get()
        let database = try cluster.makeDatabase("multi")
        let url = cluster.url(database: database)
        let servers = try Self.instances(3, url: url, lease: "20s")
        defer { for s in servers { s.stop() } }
        let sample = try Self.sample(count: 900, seed: 31)
        // `lymph send` to each instance at once, as three senders (or a balancer's three
        // backends) would: each line to one instance, every fourth to the next one too.
        var files: [[String]] = [[], [], []]
        for (i, line) in sample.lines.enumerated() {
            files[i % 3].append(String(decoding: line, as: UTF8.self))
            if i % 4 == 0 { files[(i + 1) % 3].append(String(decoding: line, as: UTF8.self)) }
        }
        let senders = try servers.enumerated().map { n, server in
            let file = server.dir + "/to-send.ndjson"
            FileManager.default.createFile(atPath: file, contents: Data((files[n].joined(separator: "\n") + "\n").utf8))
            let p = Process()
            p.executableURL = URL(fileURLWithPath: LymphBinary.path)
            p.arguments = ["send", "http://127.0.0.1:\(server.port)/webhooks", file, "--secret", "env:IMMUNE_WEBHOOK_SECRET", "--concurrency", "4"]
            p.environment = ProcessInfo.processInfo.environment.merging(["IMMUNE_WEBHOOK_SECRET": ServeHarness.secret]) { $1 }
            p.standardOutput = FileHandle.nullDevice
            p.standardError = FileHandle.nullDevice
            try p.run()
            return p
        }
        for p in senders {
            p.waitUntilExit()
            #expect(p.terminationStatus == 0)  // every request answered 2xx
        }
        let accepted = Set(sample.ids)
        try Self.waitForSharedSpool(cluster, database: database)
        for s in servers { try s.waitForDrain() }
        for s in servers { #expect(s.stop() == 0, "\(s.stderrText.get().suffix(3000))") }
        try Self.check(sample, accepted: accepted, servers: servers, cluster: cluster, database: database, url: url)
        // `lymph spool` shows each instance's lane, drained; the lanes' numbers add up to what was
        // accepted (each duplicate sent twice is in two lanes).
        let spool = try LymphBinary.run(["spool", "serve.yaml", "--format", "json"], in: servers[0].dir, environment: ["LYMPH_DATABASE_URL": url])
        #expect(spool.status == 0, "\(spool.stderr)")
        let lanes = try spool.stdout.split(separator: "\n").map { try JSONSerialization.jsonObject(with: Data($0.utf8)) as! [String: Any] }
        #expect(lanes.map { $0["lane"] as! String } == ["i1", "i2", "i3"])
        #expect(lanes.allSatisfy { $0["entries"] as! Int == 0 && $0["done_through"] as! Int == $0["highest_seq"] as! Int })
        #expect(lanes.reduce(0) { $0 + ($1["highest_seq"] as! Int) } == sample.lines.count + (sample.lines.count + 3) / 4)
    }

    @Test("kill -9 of one of two instances under load: the other takes its spooled webhooks over; after a restart every event is processed once")
    func killedInstanceIsTakenOver() async throws {
        try await onOwnThread { try Self.killedInstanceIsTakenOverBody() }
    }

    static func killedInstanceIsTakenOverBody() throws {
        let cluster = try PostgresCluster.shared.get()
        let database = try cluster.makeDatabase("multi")
        let url = cluster.url(database: database)
        let servers = try Self.instances(2, url: url, lease: "3s")
        defer { for s in servers { s.stop() } }
        let sample = try Self.sample(count: 1200, seed: 37)
        let balancer = LoadBalancer(servers)
        let result = Locked<(Set<String>, [String])?>(nil)
        let sending = Thread { result.set(balancer.send(sample, duplicateEvery: 10)) }
        sending.start()
        // Killed mid-stream, with webhooks in its spool and uncommitted work in its files.
        while balancer.accepted.get() < 400 { Thread.sleep(forTimeInterval: 0.01) }
        #expect(servers[0].stop(SIGKILL) == SIGKILL)
        while result.get() == nil { Thread.sleep(forTimeInterval: 0.05) }
        let (accepted, refused) = result.get()!
        #expect(refused.isEmpty)
        // The survivor takes the dead instance's lane over once its lease has run out.
        try Self.waitForSharedSpool(cluster, database: database)
        #expect(servers[1].stderrText.get().contains("took over"))
        // The killed instance comes back: its log is cut back to its committed work (the rest
        // was done again by the survivor).
        try servers[0].start(arguments: ["--instance", "i1"])
        for s in servers { try s.waitForDrain() }
        for s in servers { #expect(s.stop() == 0, "\(s.stderrText.get().suffix(3000))") }
        try Self.check(sample, accepted: accepted, servers: servers, cluster: cluster, database: database, url: url)
    }

    @Test("PostgreSQL restarted under load: 503s while it is down, and nothing that got a 202 is lost or done twice")
    func databaseRestartLosesNothing() async throws {
        try await onOwnThread { try Self.databaseRestartLosesNothingBody() }
    }

    static func databaseRestartLosesNothingBody() throws {
        // A server of its own: the shared one serves other tests at the same time.
        let cluster = try PostgresCluster.start()
        defer { cluster.destroy() }
        let database = try cluster.makeDatabase("multi")
        let url = cluster.url(database: database)
        let servers = try Self.instances(2, url: url, lease: "20s")
        defer { for s in servers { s.stop() } }
        let sample = try Self.sample(count: 900, seed: 41)
        let balancer = LoadBalancer(servers)
        let result = Locked<(Set<String>, [String])?>(nil)
        let sending = Thread { result.set(balancer.send(sample)) }
        sending.start()
        while balancer.accepted.get() < 300 { Thread.sleep(forTimeInterval: 0.01) }
        try cluster.stopServer(mode: "immediate")
        // Down: no 202 without a durable write. (One of the sample's events: the balancer sends
        // it too, so whether this attempt was stored after all changes nothing.)
        let down = try servers[1].post(sample.lines.last!)
        #expect(down.status == 503)
        #expect(down.headers["retry-after"] != nil)
        let health = try servers[0].get("/healthz")
        #expect(health.status == 503, "\(health.body)")
        Thread.sleep(forTimeInterval: 1)
        try cluster.startServer()
        while result.get() == nil { Thread.sleep(forTimeInterval: 0.05) }
        let (accepted, refused) = result.get()!
        #expect(refused.isEmpty)
        try Self.waitForSharedSpool(cluster, database: database)
        for s in servers { try s.waitForDrain() }
        for s in servers { #expect(s.stop() == 0, "\(s.stderrText.get().suffix(3000))") }
        try Self.check(sample, accepted: accepted, servers: servers, cluster: cluster, database: database, url: url)
    }
}
