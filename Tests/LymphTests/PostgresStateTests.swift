import Foundation
import PostgresNIO
import Synchronization
import TestSupport
import Testing

@testable import Lymph

/// The state's parts on PostgreSQL that the end-to-end tests reach only in passing: the replay
/// ledger shared between processes, and ticket merges from two processes' commits.
@Suite struct PostgresStateTests {
    static func open(_ instance: String, url: String) async throws -> PostgresState {
        try await PostgresState.open(
            PostgresStateSpec(url: .environment("DB")), instance: instance, environment: ["DB": url], operationTimeout: .seconds(60))
    }

    static func freshURL() throws -> String {
        let cluster = try PostgresCluster.shared.get()
        return cluster.url(database: try cluster.makeDatabase("state"))
    }

    /// The request of event `e<n>` for one job, due at 1000.
    static func numbered(_ n: Int, _ priority: Ticket.Priority = .medium) -> TicketRequest {
        TicketRequest(equipmentID: "pump_1", action: "Replace seal", priority: priority, dueBy: 1000, sourceEventID: "e\(n)", at: 100)
    }

    /// Writes `write` in one transaction, as the runner does.
    static func commit(_ state: PostgresState, _ write: PendingWrite?) async throws {
        guard let write else { return }
        try await state.database.perform("commit") { client in
            try await client.withTransaction(logger: state.database.logger) { conn in
                try await state.holder.checkLease(on: conn)
                try await write.write(conn)
            }
        }
    }

    /// The spool's calls (`blockingOperation`) keep the operation deadline themselves: one that
    /// passes it fails as unavailable (the server answers 503, the worker waits), soon, and its
    /// task is cancelled, so a wait for a pool connection does not outlive it.
    @Test func aBlockingOperationPastItsDeadlineFailsAsUnavailableAndIsCancelled() async throws {
        // Opened with a deadline a busy suite cannot miss; the slow operation gets 1 s of its own.
        let state = try await PostgresState.open(
            PostgresStateSpec(url: .environment("DB")), instance: "slow", environment: ["DB": try Self.freshURL()],
            operationTimeout: .seconds(60))
        let cancelled = Mutex(false)
        let started = ContinuousClock.now
        // From a thread that may block, as the spool's writer and worker call it.
        let outcome: Result<Int, any Error> = await withCheckedContinuation { c in
            DispatchQueue.global().async {
                c.resume(
                    returning: Result {
                        try state.blockingOperation(within: .seconds(1)) {
                            do {
                                try await Task.sleep(for: .seconds(30))
                            } catch {
                                cancelled.withLock { $0 = true }
                                throw error
                            }
                            return 1
                        }
                    })
            }
        }
        let waited = ContinuousClock.now - started
        #expect((try? outcome.get()) == nil)
        if case .failure(let error) = outcome {
            #expect((error as? StoreError)?.isUnavailable == true)
        }
        #expect(waited >= .seconds(1) && waited < .seconds(10))
        let deadline = ContinuousClock.now + .seconds(5)
        while !cancelled.withLock({ $0 }) && ContinuousClock.now < deadline { try await Task.sleep(for: .milliseconds(20)) }
        #expect(cancelled.withLock { $0 })
        // A quick operation still answers.
        let answer: Result<Int, any Error> = await withCheckedContinuation { c in
            DispatchQueue.global().async { c.resume(returning: Result { try state.blockingOperation { 2 } }) }
        }
        #expect((try? answer.get()) == 2)
        await state.close()
    }

    @Test func aRecordReplayedByOneProcessIsKnownToAnother() async throws {
        let url = try Self.freshURL()
        let a = try await Self.open("a", url: url), b = try await Self.open("b", url: url)
        let ledgerA = try ReplayLedger(store: try StateStore.postgres(a), now: Timestamp.now())
        let ledgerB = try ReplayLedger(store: try StateStore.postgres(b), now: Timestamp.now())
        let key: [UInt8] = Array(repeating: 7, count: 16)
        #expect(try await ledgerA.begin([key]) == [false])
        ledgerA.batchDidFinish(FinishedBatch(completed: [DedupClaim(stageIndex: ReplayLedger.claimIndex, key: key)], failed: [], now: 1))
        try await Self.commit(a, try ledgerA.takePending())
        ledgerA.pendingWritten()
        #expect(try await ledgerB.begin([key]) == [true])
        await a.close()
        await b.close()
    }

    @Test func ticketsFromTwoProcessesMergeIntoOneOpenTicket() async throws {
        let url = try Self.freshURL()
        let a = try await Self.open("a", url: url), b = try await Self.open("b", url: url)
        let bookA = TicketBook(store: try StateStore.postgres(a)), bookB = TicketBook(store: try StateStore.postgres(b))
        func request(_ event: String, _ priority: Ticket.Priority, due: Double) -> TicketRequest {
            TicketRequest(equipmentID: "pump_1", action: "Replace seal", priority: priority, dueBy: due, sourceEventID: event, at: 100)
        }
        // Both open the job's ticket before either commits: the second commit merges.
        guard case .opened = try await bookA.record([request("e1", .medium, due: 1000)])[0] else { Issue.record("a did not open"); return }
        guard case .opened = try await bookB.record([request("e2", .critical, due: 2000)])[0] else { Issue.record("b did not open"); return }
        try await Self.commit(a, bookA.takePending())
        bookA.pendingWritten()
        try await Self.commit(b, bookB.takePending())
        bookB.pendingWritten()
        let tickets = try await a.tickets(status: nil, equipment: nil)
        #expect(tickets.count == 1)
        #expect(tickets.first?.priority == .critical && tickets.first?.dueBy == 1000)
        #expect(Set(tickets.first?.sourceEventIDs ?? []) == ["e1", "e2"])
        // An event applied by one process is applied already for the other.
        #expect(try await bookB.record([request("e1", .low, due: 10)]) == [.alreadyApplied])
        await a.close()
        await b.close()
    }

    /// A change to a ticket with many source events lists the latest 100 and counts them all,
    /// with the other process's events among them and this one's commit landed unheard; the
    /// count of a ticket from before it was kept is made by the migration.
    @Test func aChangeListsTheLatestSourcesAndCountsThem() async throws {
        let url = try Self.freshURL()
        let a = try await Self.open("a", url: url), b = try await Self.open("b", url: url)
        let bookA = TicketBook(store: try StateStore.postgres(a)), bookB = TicketBook(store: try StateStore.postgres(b))
        for c in 0..<4 {
            let book = c.isMultiple(of: 2) ? bookA : bookB, state = c.isMultiple(of: 2) ? a : b
            _ = try await book.record((c * 30 + 1...c * 30 + 30).map { Self.numbered($0) })
            try await Self.commit(state, book.takePending())
            book.pendingWritten()
        }
        // Five more from a, committed without a's hearing of it.
        _ = try await bookA.record((121...125).map { Self.numbered($0) })
        try await Self.commit(a, bookA.takePending())
        guard case .merged(let t, changed: true) = try await bookA.record([Self.numbered(126, .high)])[0] else {
            Issue.record("the raise did not change the ticket")
            return
        }
        #expect(t.sourceEventIDs == (27...126).map { "e\($0)" } && t.sourceEventCount == 126)
        bookA.pendingWritten()
        try await Self.commit(a, bookA.takePending())
        bookA.pendingWritten()
        guard case .merged(let u, changed: true) = try await bookB.record([Self.numbered(127, .critical)])[0] else {
            Issue.record("the other process's raise did not change the ticket")
            return
        }
        #expect(u.sourceEventIDs == (28...127).map { "e\($0)" } && u.sourceEventCount == 127)
        // As before the count was kept: the migration counts the stored events.
        try await a.database.perform("forget the count") { client in
            let (tickets, migrations) = (a.database.table("lymph_tickets"), a.database.table("lymph_migrations"))
            let sources = a.database.table("lymph_ticket_sources")
            try await client.command("DROP TRIGGER lymph_count_ticket_sources ON \(unescaped: sources)", logger: a.database.logger)
            try await client.command("DROP FUNCTION \(unescaped: a.database.table("lymph_count_ticket_sources"))()", logger: a.database.logger)
            try await client.command("ALTER TABLE \(unescaped: tickets) DROP COLUMN source_count", logger: a.database.logger)
            try await client.command("DELETE FROM \(unescaped: migrations) WHERE id = 'state-v2'", logger: a.database.logger)
        }
        await a.close()
        let again = try await Self.open("a", url: url)
        let fresh = TicketBook(store: try StateStore.postgres(again))
        var sooner = Self.numbered(128, .critical)
        sooner.dueBy = 500
        guard case .merged(let v, changed: true) = try await fresh.record([sooner])[0] else {
            Issue.record("the raise after the migration did not change the ticket")
            return
        }
        #expect(v.sourceEventCount == 127 && v.sourceEventIDs == (28...126).map { "e\($0)" } + ["e128"])
        // An instance of an older version (a rolling upgrade) inserts events without counting
        // them: the table's trigger counts them.
        try await again.database.perform("insert as an older version") { client in
            let sources = again.database.table("lymph_ticket_sources")
            try await client.command(
                "INSERT INTO \(unescaped: sources) (event_id, ticket_id) VALUES ('old1', \(v.ticketID)), ('old2', \(v.ticketID))",
                logger: again.database.logger)
        }
        let counted = try await again.tickets(status: .open, equipment: nil).first
        #expect(counted?.sourceEventIDs.count == 128)
        var latest = Self.numbered(129, .critical)
        latest.dueBy = 400
        guard case .merged(let w, changed: true) = try await TicketBook(store: try StateStore.postgres(again)).record([latest])[0] else {
            Issue.record("the raise after the older version's events did not change the ticket")
            return
        }
        #expect(w.sourceEventCount == 129 && w.sourceEventIDs.suffix(3) == ["old1", "old2", "e129"])
        await again.close()
        await b.close()
    }

    /// This process's commit in flight has not landed, but the other process applied one of its
    /// events first: that one is counted as stored, the rest as this process's, each once.
    @Test func anEventOfTheCommitInFlightAppliedElsewhereIsCountedOnce() async throws {
        let url = try Self.freshURL()
        let a = try await Self.open("a", url: url), b = try await Self.open("b", url: url)
        let bookA = TicketBook(store: try StateStore.postgres(a)), bookB = TicketBook(store: try StateStore.postgres(b))
        _ = try await bookA.record([Self.numbered(1)])
        try await Self.commit(a, bookA.takePending())
        bookA.pendingWritten()
        _ = try await bookA.record((2...5).map { Self.numbered($0) })
        let inFlight = bookA.takePending()
        _ = try await bookB.record([Self.numbered(3)])
        try await Self.commit(b, bookB.takePending())
        bookB.pendingWritten()
        guard case .merged(let t, changed: true) = try await bookA.record([Self.numbered(6, .high)])[0] else {
            Issue.record("the raise did not change the ticket")
            return
        }
        #expect(t.sourceEventIDs == ["e1", "e3", "e2", "e4", "e5", "e6"] && t.sourceEventCount == nil)
        try await Self.commit(a, inFlight)
        bookA.pendingWritten()
        try await Self.commit(a, bookA.takePending())
        bookA.pendingWritten()
        #expect(try await a.tickets(status: nil, equipment: nil).first?.sourceEventIDs.count == 6)
        await a.close()
        await b.close()
    }
}
