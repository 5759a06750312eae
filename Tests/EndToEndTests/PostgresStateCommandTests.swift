import Foundation
import Lymph
import TestSupport
import Testing

/// The commands on a pipeline whose state is in PostgreSQL, as an operator runs them: the URL is a
/// secret that no message shows, and `lymph run` shares dedup keys and tickets with whatever else
/// uses the database.
@Suite("commands on a PostgreSQL state")
struct PostgresStateCommandTests {
    static let pipeline = """
        pipeline: shared-run
        state:
          postgres: env:LYMPH_DATABASE_URL
        output: out.ndjson
        dead_letter: dead.ndjson
        stages:
          - parse
          - dedup
          - schedule_maintenance
        """

    static func folder() -> String {
        let dir = LymphBinary.workDirectory()
        FileManager.default.createFile(atPath: dir + "/p.yaml", contents: Data(pipeline.utf8))
        let events = (1...50).map { String(decoding: ServeHarness.event("evt_\($0)", equipment: "pump_\($0 % 7)"), as: UTF8.self) }
        FileManager.default.createFile(atPath: dir + "/events.ndjson", contents: Data((events.joined(separator: "\n") + "\n").utf8))
        return dir
    }

    @Test("a wrong password or a missing variable: the message names the host and the reference, never the password")
    func secretsStayOut() async throws {
        try await onOwnThread { try Self.secretsStayOutBody() }
    }

    static func secretsStayOutBody() throws {
        let cluster = try PostgresCluster.shared.get()
        let database = try cluster.makeDatabase("cmd")
        let dir = Self.folder()
        let wrong = "postgres://lymph:Wr0ngSecretPw@127.0.0.1:\(cluster.port)/\(database)?sslmode=disable"
        let r = try LymphBinary.run(["run", "p.yaml", "events.ndjson"], in: dir, environment: ["LYMPH_DATABASE_URL": wrong])
        #expect(r.status == 3)
        #expect(r.stderr.contains("127.0.0.1"), "\(r.stderr)")
        #expect(!r.stderr.contains("Wr0ngSecretPw") && !r.stdout.contains("Wr0ngSecretPw"))
        let missing = try LymphBinary.run(["tickets", "--pipeline", "p.yaml"], in: dir)
        #expect(missing.status == 2)
        #expect(missing.stderr.contains("LYMPH_DATABASE_URL"), "\(missing.stderr)")
        let check = try LymphBinary.run(["check", "p.yaml"], in: dir)
        #expect(check.stdout.contains("state: postgres (env:LYMPH_DATABASE_URL, schema lymph)"), "\(check.stdout)")
    }

    @Test("lymph run on a PostgreSQL state: a second run, from another folder, finds every key done and every ticket there")
    func runsShareKeysAndTickets() async throws {
        try await onOwnThread { try Self.runsShareKeysAndTicketsBody() }
    }

    static func runsShareKeysAndTicketsBody() throws {
        let cluster = try PostgresCluster.shared.get()
        let env = ["LYMPH_DATABASE_URL": cluster.url(database: try cluster.makeDatabase("cmd"))]
        let first = Self.folder(), second = Self.folder()
        let a = try LymphBinary.run(["run", "p.yaml", "events.ndjson"], in: first, environment: env)
        #expect(a.status == 0, "\(a.stderr)")
        #expect(LymphBinary.lines(first + "/out.ndjson").count == 50 + 7)  // the events and one ticket per pump
        let b = try LymphBinary.run(["run", "p.yaml", "events.ndjson"], in: second, environment: env)
        #expect(b.status == 0, "\(b.stderr)")
        #expect(LymphBinary.lines(second + "/out.ndjson").isEmpty)
        #expect(b.stderr.contains("50 duplicates"), "\(b.stderr)")
        let tickets = try LymphBinary.run(["tickets", "--pipeline", "p.yaml", "--format", "json"], in: second, environment: env)
        #expect(tickets.status == 0, "\(tickets.stderr)")
        #expect(tickets.stdout.split(separator: "\n").count == 7)
    }
}

extension PostgresStateCommandTests {
    @Test(
        "two pipelines on one PostgreSQL state: the second's unnamed dedup stage is refused (exit 2) rather than drop every event as a duplicate; named, it has keys of its own"
    )
    func unnamedScopeBelongsToOnePipeline() async throws {
        try await onOwnThread { try Self.unnamedScopeBelongsToOnePipelineBody() }
    }

    static func unnamedScopeBelongsToOnePipelineBody() throws {
        let cluster = try PostgresCluster.shared.get()
        let env = ["LYMPH_DATABASE_URL": cluster.url(database: try cluster.makeDatabase("scopes"))]
        let first = Self.folder(), second = Self.folder()
        let a = try LymphBinary.run(["run", "p.yaml", "events.ndjson"], in: first, environment: env)
        #expect(a.status == 0, "\(a.stderr)")
        let other = pipeline.replacingOccurrences(of: "pipeline: shared-run", with: "pipeline: audit")
        FileManager.default.createFile(atPath: second + "/p.yaml", contents: Data(other.utf8))
        let b = try LymphBinary.run(["run", "p.yaml", "events.ndjson"], in: second, environment: env)
        #expect(b.status == 2, "\(b.stderr)")
        #expect(b.stderr.contains("belong to pipeline 'shared-run'"), "\(b.stderr)")
        #expect(LymphBinary.lines(second + "/out.ndjson").isEmpty)
        let named = other.replacingOccurrences(of: "  - dedup\n", with: "  - dedup: {name: audit-dedup}\n")
        FileManager.default.createFile(atPath: second + "/p.yaml", contents: Data(named.utf8))
        let c = try LymphBinary.run(["run", "p.yaml", "events.ndjson", "--summary", "text"], in: second, environment: env)
        #expect(c.status == 0, "\(c.stderr)")
        #expect(c.stderr.contains("0 duplicates"), "\(c.stderr)")
    }
}
