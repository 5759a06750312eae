import Foundation
import TestSupport
import Testing

@testable import Lymph

/// The shared spool and the database under it, against a real PostgreSQL (a throwaway cluster).
@Suite struct PostgresSpoolTests {
    /// A fresh database on the test process's server.
    static func freshLocation() throws -> (PostgresCluster, PostgresLocation) {
        let cluster = try PostgresCluster.shared.get()
        let name = try cluster.makeDatabase("spool")
        return (cluster, try PostgresLocation(url: cluster.url(database: name)))
    }

    static func items(_ texts: [String]) -> [[UInt8]] { texts.map { Array($0.utf8) } }

    /// `spool.appendBlocking` of one entry, from a thread that may block, as the spool writer's.
    static func appendBlocking(_ text: String, to spool: PostgresSpool) async -> Result<[Int64], StoreError> {
        await withCheckedContinuation { c in
            DispatchQueue.global().async {
                c.resume(returning: Result { () throws(StoreError) in try spool.appendBlocking(items([text]), receivedAt: 1) })
            }
        }
    }

    /// Every lease here is far longer than a test (600 s): on a loaded machine a test's steps
    /// have taken more than 30 s, and a lease that ran out by itself would fail it for nothing.
    /// The tests end leases themselves, with this.
    ///
    /// Ends `holder`'s lease now, as if its process had died a lease ago: by the database's clock,
    /// which is what every instance judges leases by (a test that waited for it would depend on
    /// how long the rest of the suite keeps it from running).
    static func expire(_ holder: PostgresHolder) throws {
        let cluster = try PostgresCluster.shared.get()
        try cluster.psql(
            "UPDATE \(holder.database.schema).lymph_holders SET lease_until = now() - interval '1 second' WHERE holder = '\(holder.name)'",
            database: holder.database.location.database)
    }

    /// Opens with deadlines long enough for a machine busy with the rest of the suite (whose
    /// blocking end-to-end tests can hold Swift's few threads for many seconds).
    static func open(_ location: PostgresLocation, schema: String = "lymph", maxConnections: Int = 8) async throws -> PostgresDatabase {
        try await PostgresDatabase.open(
            location: location, schema: schema, maxConnections: maxConnections, connectTimeout: .seconds(60), operationTimeout: .seconds(60))
    }

    @Test func concurrentFirstStartsMigrateOnce() async throws {
        let (cluster, location) = try Self.freshLocation()
        let databases = try await withThrowingTaskGroup(of: PostgresDatabase.self) { group in
            for _ in 0..<6 { group.addTask { try await Self.open(location) } }
            var all: [PostgresDatabase] = []
            for try await d in group { all.append(d) }
            return all
        }
        #expect(databases.count == 6)
        for d in databases { d.close() }
        let applied = try cluster.psql("SELECT count(*) FROM lymph.lymph_migrations", database: location.database)
        #expect(applied == "\(PostgresDatabase.migrations.count)")
        // And a later start finds nothing to do.
        let again = try await Self.open(location)
        again.close()
        #expect(try cluster.psql("SELECT count(*) FROM lymph.lymph_migrations", database: location.database) == applied)
    }

    @Test func aWrongPasswordNamesTheServerNotThePassword() async throws {
        let (cluster, location) = try Self.freshLocation()
        var wrong = location
        wrong.password = "not-the-password-\(UUID().uuidString)"
        let error = await #expect(throws: StoreError.self) {
            try await PostgresDatabase.open(location: wrong, connectTimeout: .seconds(60), operationTimeout: .seconds(60))
        }
        let text = "\(error!)"
        #expect(text.contains("127.0.0.1:\(cluster.port)/\(location.database)"))
        #expect(!text.contains(wrong.password!))
        #expect(!text.contains(cluster.password))
    }

    @Test func aSchemaNameOutsidePlainIdentifiersIsRefused() async throws {
        let (_, location) = try Self.freshLocation()
        for bad in ["", "Lymph", "a-b", "1abc", "x\"; DROP TABLE y; --", String(repeating: "a", count: 64)] {
            await #expect(throws: StoreError.self) { try await Self.open(location, schema: bad) }
        }
    }

    @Test func appendsAreNumberedInCommitOrderWithinALane() async throws {
        let (_, location) = try Self.freshLocation()
        let db = try await Self.open(location, maxConnections: 8)
        defer { db.close() }
        // Two processes of one instance name append at once: numbers are never given twice
        // and none is skipped.
        let a = try await PostgresSpool.open(holder: PostgresHolder(database: db, instance: "alpha", lease: .seconds(600)), lane: "alpha")
        let b = try await PostgresSpool.open(holder: PostgresHolder(database: db, instance: "alpha", lease: .seconds(600)), lane: "alpha")
        let seqs = try await withThrowingTaskGroup(of: [Int64].self) { group in
            for i in 0..<40 {
                let spool = i.isMultiple(of: 2) ? a : b
                group.addTask { try await spool.append(Self.items(["{\"n\":\(i)}", "{\"m\":\(i)}"]), receivedAt: Double(i)) }
            }
            var all: [Int64] = []
            for try await s in group {
                #expect(s.count == 2 && s[1] == s[0] + 1)
                all += s
            }
            return all
        }
        #expect(seqs.sorted() == Array(1...80))
        let entries = try await a.fetch(lane: "alpha", after: 0, limit: 1000, maxBytes: 1 << 20)
        #expect(entries.map(\.seq) == Array(1...80))
        #expect(try await a.depth().count == 80)
    }

    @Test func fetchStopsAtTheByteLimitAndTheBound() async throws {
        let (_, location) = try Self.freshLocation()
        let db = try await Self.open(location)
        defer { db.close() }
        let spool = try await PostgresSpool.open(holder: PostgresHolder(database: db, instance: "a", lease: .seconds(600)), lane: "a")
        _ = try await spool.append(Self.items((1...10).map { String(repeating: "x", count: 100) + "\($0)" }), receivedAt: 1)
        #expect(try await spool.fetch(lane: "a", after: 0, limit: 100, maxBytes: 250).map(\.seq) == [1, 2, 3])
        #expect(try await spool.fetch(lane: "a", after: 3, through: 5, limit: 100, maxBytes: 1 << 20).map(\.seq) == [4, 5])
        let e = try await spool.fetch(lane: "a", after: 9, limit: 100, maxBytes: 1 << 20)
        #expect(e.count == 1 && e[0].item == Array((String(repeating: "x", count: 100) + "10").utf8) && e[0].receivedAt == 1)
    }

    @Test func aLaneIsHeldByOneProcessAndTakenOverWhenItsLeaseRunsOut() async throws {
        let (_, location) = try Self.freshLocation()
        let db = try await Self.open(location)
        defer { db.close() }
        let a = try await PostgresSpool.open(holder: PostgresHolder(database: db, instance: "a", lease: .seconds(600)), lane: "a")
        let b = try await PostgresSpool.open(holder: PostgresHolder(database: db, instance: "b", lease: .seconds(600)), lane: "b")
        _ = try await a.append(Self.items(["1", "2", "3"]), receivedAt: 1)
        #expect(try await a.claimLanes().map(\.lane) == ["a"])
        // b sees a's lane held: it takes only its own.
        #expect(try await b.claimLanes().map(\.lane) == ["b"])
        // a does some of its work, then stops renewing (it died).
        try await a.markDone(lane: "a", through: 1)
        try Self.expire(a.holder)
        let claims = try await b.claimLanes()
        #expect(claims.map(\.lane) == ["b", "a"])
        let taken = try #require(claims.first { $0.lane == "a" })
        #expect(taken.doneThrough == 1 && taken.drainThrough == 3)
        #expect(try await b.fetch(lane: "a", after: taken.doneThrough, through: taken.drainThrough, limit: 10, maxBytes: 1 << 20).map(\.seq) == [2, 3])
        // The old process comes back to life: its commit is refused, its work is b's now.
        await #expect(throws: StoreError.self) { try await a.markDone(lane: "a", through: 3) }
        try await b.markDone(lane: "a", through: 3)
        #expect(try await b.depth().count == 0)
    }

    @Test func aNewLaneIsItsInstancesBeforeItFirstClaimsIt() async throws {
        let (_, location) = try Self.freshLocation()
        let db = try await Self.open(location)
        defer { db.close() }
        let ha = PostgresHolder(database: db, instance: "a", lease: .seconds(600))
        try await ha.renew()
        let a = try await PostgresSpool.open(holder: ha, lane: "a")
        // The server takes webhooks at once; its lane keeper has not claimed yet.
        _ = try await a.append(Self.items(["1", "2"]), receivedAt: 1)
        let hb = PostgresHolder(database: db, instance: "b", lease: .seconds(600))
        try await hb.renew()
        let b = try await PostgresSpool.open(holder: hb, lane: "b")
        #expect(try await b.claimLanes().map(\.lane) == ["b"])
        #expect(try await a.claimLanes().map(\.lane) == ["a"])
    }

    @Test func aDrainedLaneGoesBackToItsInstance() async throws {
        let (_, location) = try Self.freshLocation()
        let db = try await Self.open(location)
        defer { db.close() }
        let old = try await PostgresSpool.open(holder: PostgresHolder(database: db, instance: "a", lease: .seconds(600)), lane: "a")
        let b = try await PostgresSpool.open(holder: PostgresHolder(database: db, instance: "b", lease: .seconds(600)), lane: "b")
        _ = try await old.append(Self.items(["1", "2"]), receivedAt: 1)
        _ = try await old.claimLanes()
        try Self.expire(old.holder)
        // Instance a restarts (a new process, same name) while b takes its lane over.
        let restarted = try await PostgresSpool.open(holder: PostgresHolder(database: db, instance: "a", lease: .seconds(600)), lane: "a")
        let claims = try await b.claimLanes()
        #expect(claims.map(\.lane) == ["b", "a"])
        #expect(try await restarted.claimLanes().isEmpty)  // held by b until drained
        _ = try await restarted.append(Self.items(["3"]), receivedAt: 2)  // accepting goes on meanwhile
        try await b.markDone(lane: "a", through: 2)
        try await b.release(lane: "a")
        let back = try await restarted.claimLanes()
        #expect(back == [PostgresSpool.Claim(lane: "a", doneThrough: 2, drainThrough: nil)])
        #expect(try await restarted.fetch(lane: "a", after: 2, limit: 10, maxBytes: 1 << 20).map(\.seq) == [3])
    }

    @Test func aLaneLeftWithEntriesIsTakenAtOnce() async throws {
        let (_, location) = try Self.freshLocation()
        let db = try await Self.open(location)
        defer { db.close() }
        let a = try await PostgresSpool.open(holder: PostgresHolder(database: db, instance: "a", lease: .seconds(600)), lane: "a")
        let b = try await PostgresSpool.open(holder: PostgresHolder(database: db, instance: "b", lease: .seconds(600)), lane: "b")
        _ = try await a.append(Self.items(["1"]), receivedAt: 1)
        _ = try await a.claimLanes()
        #expect(try await b.claimLanes().map(\.lane) == ["b"])
        try await a.release(lane: "a")  // a shuts down with an entry left
        #expect(try await b.claimLanes().map(\.lane) == ["b", "a"])
        // An empty lane that was left is not taken: nothing in it to do.
        try await b.markDone(lane: "a", through: 1)
        try await b.release(lane: "a")
        #expect(try await b.claimLanes().map(\.lane) == ["b"])
    }

    /// Lanes of names that came and went are forgotten by a later start once empty, without a
    /// live holder, and unused for a week; a lane with entries, one in use, a recent one and the
    /// starting instance's own are kept, and a forgotten name that comes back starts anew.
    @Test func idleEmptyLanesAreForgottenAtAStart() async throws {
        let (cluster, location) = try Self.freshLocation()
        let db = try await Self.open(location)
        defer { db.close() }
        func spool(_ name: String) async throws -> PostgresSpool {
            let holder = PostgresHolder(database: db, instance: name, lease: .seconds(600))
            try await holder.renew()
            return try await PostgresSpool.open(holder: holder, lane: name)
        }
        let gone = try await spool("gone"), full = try await spool("full"), live = try await spool("live")
        _ = try await spool("recent")
        _ = try await gone.append(Self.items(["1"]), receivedAt: 1)
        try await gone.markDone(lane: "gone", through: 1)
        _ = try await full.append(Self.items(["1"]), receivedAt: 1)
        _ = try await live.claimLanes()
        for s in [gone, full] { try Self.expire(s.holder) }
        try cluster.psql(
            "UPDATE lymph.lymph_spool_lanes SET used_at = now() - interval '8 days' WHERE lane IN ('gone', 'full', 'live')",
            database: location.database)
        func lanes() throws -> String {
            try cluster.psql("SELECT string_agg(lane, ',' ORDER BY lane) FROM lymph.lymph_spool_lanes", database: location.database)
        }
        #expect(try lanes() == "full,gone,live,recent")
        _ = try await spool("new")
        #expect(try lanes() == "full,live,new,recent")
        #expect(try cluster.psql("SELECT count(*) FROM lymph.lymph_spool_numbers WHERE lane = 'gone'", database: location.database) == "0")
        let back = try await spool("gone")
        #expect(try await back.append(Self.items(["again"]), receivedAt: 2) == [1])
        #expect(try await back.claimLanes().map(\.lane) == ["gone", "full"])
    }

    /// The spool writer's own connection (`appendBlocking`): numbered with the pool's appends in
    /// one lane; a statement held past the deadline fails as unavailable, and the next starts on
    /// a fresh connection; a connection the server ended is replaced.
    @Test func blockingAppendsShareTheLaneAndOutliveALockAndAKilledConnection() async throws {
        let (cluster, location) = try Self.freshLocation()
        // The pool with deadlines a busy suite cannot miss; the appends on the writer's
        // connection with 2 s.
        let db = try await Self.open(location)
        defer { db.close() }
        let spool = try await PostgresSpool.open(
            holder: PostgresHolder(database: db, instance: "a", lease: .seconds(600)), lane: "a", appendTimeout: .seconds(2))
        func blocking(_ text: String) async -> Result<[Int64], StoreError> { await Self.appendBlocking(text, to: spool) }
        #expect(try await blocking("1").get() == [1])
        #expect(try await spool.append(Self.items(["2"]), receivedAt: 2) == [2])
        #expect(try await blocking("3").get() == [3])

        // Another session (psql: the server keeps it, whatever this process's threads are
        // doing) holds the lane's numbering row until it is cancelled below (at most 60 s), so
        // however late a loaded machine sees it take the row, the append meets the lock.
        let holding = Task.detached {
            try cluster.psql(
                "BEGIN; SELECT 1 FROM lymph.lymph_spool_numbers WHERE lane = 'a' FOR UPDATE; SELECT pg_sleep(60); COMMIT;",
                database: location.database)
        }
        // Held once that session sleeps: its statements run in order, so the row is locked by
        // then. (The table's RowShareLock shows a moment before the row's lock is taken, and an
        // append in that moment takes the row first.)
        // In this test's database only: other tests of the suite sleep in sessions of their own.
        let sleeping = "SELECT count(*) FROM pg_stat_activity WHERE wait_event = 'PgSleep' AND datname = '\(location.database)'"
        let lockDeadline = ContinuousClock.now + .seconds(30)
        while try cluster.psql(sleeping, database: location.database) == "0" && ContinuousClock.now < lockDeadline {
            try await Task.sleep(for: .milliseconds(20))
        }
        try #require(try cluster.psql(sleeping, database: location.database) != "0", "the other session never took the lane's row")
        let started = ContinuousClock.now
        let stuck = await blocking("lost")
        #expect(ContinuousClock.now - started < .seconds(10))
        guard case .failure(let error) = stuck else {
            Issue.record("an append behind a lock held past the deadline succeeded")
            return
        }
        #expect(error.isUnavailable)
        #expect(!"\(error)".contains(cluster.password))
        // Cancelled, its transaction rolls back and the row is free (psql then fails: expected).
        _ = try cluster.psql(
            "SELECT pg_cancel_backend(pid) FROM pg_stat_activity WHERE wait_event = 'PgSleep' AND datname = '\(location.database)'")
        _ = try? await holding.value
        let after = try await blocking("4").get()
        #expect(after.count == 1 && after[0] > 3)

        // The server ends every session: the next append connects again. pg_terminate_backend
        // only signals; the wait is for the sessions to be gone from the server (their sockets
        // closed after the message that ends them), then a second for this side to read it.
        let ended = try cluster.psql(
            """
            WITH s AS MATERIALIZED (SELECT pid FROM pg_stat_activity WHERE datname = '\(location.database)' AND pid <> pg_backend_pid())
            SELECT string_agg(pid::text, ',') FROM s WHERE pg_terminate_backend(pid)
            """)
        #expect(!ended.isEmpty)
        let goneDeadline = ContinuousClock.now + .seconds(30)
        while !ended.isEmpty, try cluster.psql("SELECT count(*) FROM pg_stat_activity WHERE pid IN (\(ended))") != "0" && ContinuousClock.now < goneDeadline {
            try await Task.sleep(for: .milliseconds(20))
        }
        try await Task.sleep(for: .seconds(1))
        let reconnected = try await blocking("5").get()
        #expect(reconnected.count == 1 && reconnected[0] > after[0])
        let texts = try await spool.fetch(lane: "a", after: 0, limit: 10, maxBytes: 1 << 20).map { String(decoding: $0.item, as: UTF8.self) }
        #expect(Array(texts.prefix(3)) == ["1", "2", "3"] && texts.suffix(2) == ["4", "5"])
    }

    /// The writer's connection while the server is down: after a failed connect the next
    /// appends fail at once, without connecting, and once the server is back (and the wait has
    /// passed) an append connects again. A refused statement keeps the connection.
    @Test func blockingAppendsBackOffFromAServerThatIsDownAndComeBackWithIt() async throws {
        // A server of its own: this test stops it.
        let cluster = try PostgresCluster.start()
        defer { cluster.destroy() }
        let location = try PostgresLocation(url: cluster.url(database: try cluster.makeDatabase("backoff")))
        let db = try await Self.open(location)
        defer { db.close() }
        let spool = try await PostgresSpool.open(
            holder: PostgresHolder(database: db, instance: "a", lease: .seconds(600)), lane: "a", appendTimeout: .seconds(5))
        func blocking(_ text: String) async -> Result<[Int64], StoreError> { await Self.appendBlocking(text, to: spool) }
        #expect(try await blocking("1").get() == [1])
        func sessions() throws -> Set<String> {
            Set(
                try cluster.psql(
                    "SELECT pid FROM pg_stat_activity WHERE datname = '\(location.database)' AND application_name = 'lymph'"
                ).split(separator: "\n").map(String.init))
        }
        let before = try sessions()

        // The server refuses an entry (a check that fails): the statement fails, and the next
        // append goes on the same session.
        let check = "ALTER TABLE lymph.lymph_spool ADD CONSTRAINT refuse CHECK (item <> convert_to('refused', 'UTF8'))"
        _ = try cluster.psql(check, database: location.database)
        let refused = await blocking("refused")
        #expect((try? refused.get()) == nil)
        _ = try cluster.psql("ALTER TABLE lymph.lymph_spool DROP CONSTRAINT refuse", database: location.database)
        #expect(try await blocking("after").get() == [2])
        #expect(try sessions().isSubset(of: before))

        try cluster.stopServer(mode: "immediate")
        // The first append may fail on the session the server ended, the next connects and is
        // refused; after that, appends fail without connecting and say when the next try is.
        // The wait doubles with each refusal, so even on a busy machine an append soon comes
        // inside it.
        var failures: [StoreError] = []
        for _ in 0..<20 where !failures.contains(where: { "\($0)".contains("not connecting again for another") }) {
            switch await blocking("down") {
            case .failure(let e): failures.append(e)
            case .success: Issue.record("an append succeeded while the server was down")
            }
        }
        #expect(failures.contains { "\($0)".contains("not connecting again for another") })
        #expect(failures.allSatisfy { $0.isUnavailable })
        #expect(!failures.contains { "\($0)".contains(cluster.password) })

        try cluster.startServer()
        var appended: [Int64] = []
        let deadline = ContinuousClock.now + .seconds(30)
        while appended.isEmpty && ContinuousClock.now < deadline {
            appended = (try? await blocking("4").get()) ?? []
            if appended.isEmpty { try await Task.sleep(for: .milliseconds(50)) }
        }
        #expect(appended == [3])
    }

    @Test func healthProbeWritesAndAnOutageIsUnavailableUntilTheServerIsBack() async throws {
        // A server of its own: this test stops it.
        let cluster = try PostgresCluster.start()
        defer { cluster.destroy() }
        let location = try PostgresLocation(url: cluster.url(database: try cluster.makeDatabase("outage")))
        let db = try await Self.open(location)
        defer { db.close() }
        let spool = try await PostgresSpool.open(holder: PostgresHolder(database: db, instance: "a", lease: .seconds(600)), lane: "a")
        // A second process with a short deadline per operation, which the outage is judged by
        // (opened with retries: a busy suite can keep a 3 s operation from its answer).
        let hasty = try await PostgresDatabase.open(location: location, connectTimeout: .seconds(120), operationTimeout: .seconds(3))
        defer { hasty.close() }
        var hastySpool: PostgresSpool?
        for _ in 0..<20 where hastySpool == nil {
            hastySpool = try? await PostgresSpool.open(holder: PostgresHolder(database: hasty, instance: "a", lease: .seconds(600)), lane: "a")
        }
        let other = try #require(hastySpool)
        try await spool.probeWritable()
        #expect(try await spool.append(Self.items(["1"]), receivedAt: 1) == [1])
        try cluster.stopServer(mode: "immediate")
        let error = await #expect(throws: StoreError.self) { try await other.append(Self.items(["2"]), receivedAt: 2) }
        #expect(error?.isUnavailable == true)
        #expect(!"\(error!)".contains(cluster.password))
        try cluster.startServer()
        // The pool connects again; what was committed before the crash is there.
        var appended: [Int64] = []
        for _ in 0..<300 where appended.isEmpty {
            appended = (try? await spool.append(Self.items(["3"]), receivedAt: 3)) ?? []
            if appended.isEmpty { try await Task.sleep(for: .milliseconds(100)) }
        }
        #expect(appended == [2])
        #expect(try await spool.fetch(lane: "a", after: 0, limit: 10, maxBytes: 1 << 20).map { String(decoding: $0.item, as: UTF8.self) } == ["1", "3"])
    }
}

@Suite struct PostgresLocationTests {
    @Test func aURLGivesEveryPart() throws {
        let l = try PostgresLocation(url: "postgres://ops:s%40cr%2Fet@db.example:6432/immune?sslmode=verify-full&sslrootcert=/etc/ca.pem")
        #expect(l.user == "ops" && l.password == "s@cr/et" && l.host == "db.example" && l.port == 6432 && l.database == "immune")
        #expect(l.tls == .verifyFull && l.rootCertificatePath == "/etc/ca.pem")
        #expect(l.description == "postgres://ops@db.example:6432/immune")
        let plain = try PostgresLocation(url: "postgresql://ops@[::1]/immune")
        #expect(plain.port == 5432 && plain.password == nil && plain.tls == .prefer && plain.description == "postgres://ops@[::1]:5432/immune")
    }

    @Test func errorsNeverQuoteTheURL() {
        let secret = "hunter2-\(UUID().uuidString)"
        for bad in [
            "mysql://u:\(secret)@h/db", "postgres://u:\(secret)@/db", "postgres://:\(secret)@h/db", "postgres://u:\(secret)@h",
            "postgres://u:\(secret)@h/db?sslmode=\(secret)", "postgres://u:\(secret)@h/db?\(secret)=1", "postgres://u:\(secret)@h:99999/db",
        ] {
            #expect {
                try PostgresLocation(url: bad)
            } throws: { error in
                !"\(error)".contains(secret) && "\(error)".hasPrefix("the PostgreSQL URL cannot be used: ")
            }
        }
    }
}
