import GRDB
import Synchronization

/// The ticket rules over the store, with the changes of events not yet committed kept in
/// memory until the runner's transaction writes them (with the dedup keys of those events).
///
/// Rules: at most one open ticket per (equipment, action); a later request merges into it (adds
/// its event, keeps the earlier due date, raises the priority); a source event applies once.
///
/// In the overlay a ticket's `sourceEventIDs` holds only the events added since the last
/// commit; the store keeps the rest (`lymph_ticket_source_lists`, one row per ticket per
/// commit, each naming the ticket's row before it, so a commit appends instead of inserting
/// into an index all over).
/// A change that opens a ticket or moves its due date or priority reports the latest
/// `listedSources` of its events and how many it has (`lymph_tickets.source_count`), read from
/// the end of its lists, or from its tail kept in memory (`SourceTail`): a job requested again
/// and again costs each change the same. The commit that writes a ticket's row of events links
/// and counts it; a trigger does so for a row an older version writes. A merge that changes
/// neither reports the ticket with the one event it added.
///
/// On SQLite, the source events applied are a set kept like a dedup scope's keys
/// (`sourceScope`, `DedupGenerations`): in generations, with fingerprint filters in front, so
/// a new event is known to be new without a lookup and a commit only touches the newest
/// generation's pages. The set remembers `sourceMemory`: older generations are purged, as a
/// dedup window's, so a process that runs for months keeps a bounded set in memory and in the
/// store; an event replayed after that long applies again.
public final class TicketBook: Sendable {
    let store: StateStore
    private let overlay = Mutex<Overlay>(Overlay())
    /// The source events the store holds (built on the first apply): their dedup scope in the
    /// store and its generations. A new event, nearly every one, is known to be new without a
    /// lookup; a hit is checked in the store. The rule and its order are the dedup stage's.
    private let knownSources = Mutex<(scope: Int64, generations: DedupGenerations)?>(nil)
    /// The dedup scope of applied source events: no stage's name or key path starts with NUL.
    static let sourceScope = "\u{0}ticket-sources"
    /// On SQLite: every open ticket as committed (without its source events), by
    /// `pairKey`, so a request for a job costs no lookup; nil until the first apply loads it,
    /// or when there are more than `maxKnownOpen`. This process is the store's only writer
    /// but for `lymph tickets close`, which counts its closes in the store: a batch that sees
    /// the count move loads the open tickets again.
    private let committedOpen = Mutex<CommittedOpen>(CommittedOpen())
    /// Open tickets kept in memory at most; beyond that each job's is read from the store.
    let maxKnownOpen: Int
    /// The time commits are stamped with (a test's own clock).
    let clock: @Sendable () -> Double
    /// When applied events older than `sourceMemory` are purged (as the dedup stage's keys).
    private let purges = GenerationPurgeSchedule()
    /// How long an applied source event is remembered (see the type's comment): 90 days, far
    /// longer than a dedup window.
    public static let sourceMemory = 90 * 86_400.0

    struct CommittedOpen {
        var tickets: [KeyBytes: Ticket]?
        /// `lymph_ticket_closes.count` when `tickets` was loaded; nil before the first load.
        var closes: Int64?
        /// Tickets this book opened and has not committed since: a written ticket joins
        /// `tickets` only when it is there already or opened here. One closed elsewhere was left
        /// out of the last load, and is not put back by the commit of a change to it.
        var openedHere: Set<String> = []
    }

    /// An open ticket the overlay holds, with what the next and the current transaction do with
    /// it: found with one lookup of its job per request. A class, changed where it is: reading
    /// a dictionary's value copies it, and a copy of a ticket retains each of its strings.
    /// Only ever touched under the overlay's lock.
    final class OpenEntry {
        var ticket: Ticket
        /// Changed since the last `takePending` (its key is in `dirtyKeys`).
        var dirty: Bool
        /// How many of the first events of its list the transaction in flight writes.
        var writing: Int

        init(ticket: Ticket, dirty: Bool, writing: Int) {
            self.ticket = ticket
            self.dirty = dirty
            self.writing = writing
        }
    }

    struct Overlay {
        /// Open tickets touched since the last commit, by equipment + action.
        var open: [KeyBytes: OpenEntry] = [:]
        /// The keys of the dirty entries of `open`.
        var dirtyKeys: [KeyBytes] = []
        /// Source events applied since the last `takePending` (the events of `newSources`).
        var sources = EventIDSet()
        /// Source events in the transaction in flight (the events of `writingSources`): two
        /// sets, so that a commit lets go of its events at once rather than one by one.
        var writingSourceSet = EventIDSet()
        /// The tickets the transaction in flight writes, and their keys.
        var writing: [Ticket] = []
        var writingKeys: [KeyBytes] = []
        var writingSources: [(String, String)] = []
        var newSources: [(String, String)] = []
        /// On SQLite: tickets' latest committed source events, for a change to list (see
        /// `SourceTail`). Kept for every ticket opened here, and for one read from the store
        /// once nothing of it is in flight; each commit appends what it wrote.
        var tails = SourceTails(budget: TicketBook.tailBudget)

        /// Marks `entry`, held for `key`, changed.
        mutating func markDirty(_ entry: OpenEntry, key: KeyBytes) {
            if entry.dirty { return }
            entry.dirty = true
            dirtyKeys.append(key)
        }
    }

    /// Bytes the kept tails may take (`SourceTails`): a tail holds up to 200 ids of about 25
    /// bytes before it is trimmed to 100, so some 2,500 tickets at least.
    static let tailBudget = 16 << 20

    /// The commit group the stages over a book ask for (`Stage.commitGroup`): each commit
    /// writes every ticket changed since the last, and the stages' sensors, and takes them out
    /// of memory again, a cost per ticket, not per event: a busy fleet changes most of its open
    /// tickets in every group of the default size. A larger group spares commits that cost, and
    /// holds more keys in memory until it commits (docs/benchmarks.md, case 4).
    public static let commitGroup = 60_000

    /// A book over `store`, with nothing pending yet, keeping up to `maxKnownOpen` open
    /// tickets in memory.
    public init(
        store: StateStore, maxKnownOpen: Int = 100_000, clock: @escaping @Sendable () -> Double = { Timestamp.now() }
    ) {
        self.store = store
        self.maxKnownOpen = maxKnownOpen
        self.clock = clock
    }

    /// A job's key in memory, by the bytes of its equipment and action, as the store's unique
    /// index compares them: Swift's `String` equality would take two ids that are canonically
    /// equivalent but spelled differently (a precomposed `é` and `e` with a combining accent)
    /// for one job, and merge what the store keeps apart. Neither may hold a NUL
    /// (`IdentifierCheck`), so the one between them is unambiguous.
    static func pairKey(_ equipment: String, _ action: String) -> KeyBytes {
        var bytes = Array(equipment.utf8)
        bytes.append(0)
        bytes.append(contentsOf: action.utf8)
        return KeyBytes(bytes)
    }

    /// Source events a reported change lists at most (the latest): a ticket merges every request
    /// for its job while it is open, and each event that moves it would otherwise carry, and
    /// read, the whole list, so a job predicted again and again cost work that grew with the
    /// square of its requests. `lymph tickets` lists them all.
    public static let listedSources = 100

    /// Applies requests in order (one store read for all of them), following the rules above.
    public func apply(_ requests: [TicketRequest]) throws -> [TicketChange] {
        if requests.isEmpty { return [] }
        let (scope, generations) = try sourceIndex()
        // One deferred transaction per batch, as the dedup stage reads: `read` would also switch
        // the connection to read-only and back, four statements parsed for every batch.
        return try store.readInDeferredTransaction { db in
            let reads = SQLiteTicketReads(db: db, scope: scope, generations: generations, open: try committedOpenTickets(db))
            // One transaction is in flight at most, and lands whole: one of its events tells.
            let last = overlay.withLock { $0.writingSources.last?.0 }
            let commit: CommitInFlight = try last.map { try reads.isApplied($0) } == false ? .notLanded : .landed
            return try requests.map { try apply($0, reads: reads, commit: commit) }
        }
    }

    /// `apply`, from a stage: on PostgreSQL, what the requests need is read in one round trip
    /// first (the tickets open for their jobs, which of their events are applied already).
    public func record(_ requests: [TicketRequest]) async throws -> [TicketChange] {
        guard let postgres = store.postgres else { return try apply(requests) }
        if requests.isEmpty { return [] }
        // The events of the commit in flight too (the runner waits for each commit on
        // PostgreSQL, so there are none but after a failure): whether it landed decides which of
        // a ticket's events the store holds. Another instance may have applied some of them.
        let inFlight = overlay.withLock { $0.writingSources.map(\.0) }
        let reads = try await postgres.ticketSnapshot(
            jobs: requests.map { ($0.equipmentID, $0.action) }, events: requests.map(\.sourceEventID) + inFlight,
            listing: Self.listedSources)
        let stored = inFlight.count(where: { reads.isApplied($0) })
        let commit: CommitInFlight = stored == inFlight.count ? .landed : stored == 0 ? .notLanded : .partly
        return try requests.map { try apply($0, reads: reads, commit: commit) }
    }

    /// Applies one request (see `apply(_:)` for a list).
    public func apply(_ r: TicketRequest) throws -> TicketChange {
        try apply([r])[0]
    }

    /// How many tickets are marked as opened here and not yet written (for tests).
    var openedHereCountForTests: Int { committedOpen.withLock { $0.openedHere.count } }

    /// The generations and filters of the applied source events, once built (for tests).
    var sourceGenerationsForTests: DedupGenerations? { knownSources.withLock { $0?.generations } }

    /// The applied source events' scope and generations, built from the store the first time.
    private func sourceIndex() throws -> (Int64, DedupGenerations) {
        if let built = knownSources.withLock({ $0 }) { return built }
        let scope = try store.dedupScope(Self.sourceScope)
        let generations = try store.dedupGenerations(scope: scope)
        return knownSources.withLock { known in
            if let built = known { return built }
            known = (scope, generations)
            return (scope, generations)
        }
    }

    /// The committed open tickets, loaded again when `lymph tickets close` closed one since
    /// (nil: too many to keep, read each from the store).
    private func committedOpenTickets(_ db: Database) throws -> [KeyBytes: Ticket]? {
        let closes = try Int64.fetchOne(db.cachedStatement(sql: "SELECT count FROM lymph_ticket_closes WHERE id = 1")) ?? 0
        // Unchanged since the load: the kept tickets, or nil when there were too many to keep.
        if let kept = committedOpen.withLock({ c in c.closes == closes ? Optional(c.tickets) : nil }) { return kept }
        let count = try Int.fetchOne(db, sql: "SELECT COUNT(*) FROM lymph_tickets WHERE status = 'open'") ?? 0
        var tickets: [KeyBytes: Ticket]? = nil
        if count <= maxKnownOpen {
            var loaded: [KeyBytes: Ticket] = [:]
            for row in try Row.fetchAll(db, sql: "SELECT * FROM lymph_tickets WHERE status = 'open'") {
                let t = try Self.ticket(from: row)
                loaded[Self.pairKey(t.equipmentID, t.action)] = t
            }
            tickets = loaded
        }
        committedOpen.withLock { c in
            c.tickets = tickets
            c.closes = closes
        }
        return tickets
    }

    /// What the overlay knows of a request: its event applied since the last commit, its
    /// merge into a ticket the overlay holds, or nothing.
    private enum InOverlay {
        case applied
        case merged(Ticket, changed: Bool, writing: Int, tail: SourceTail?)
        case absent
    }

    /// What the store holds of the transaction in flight, as a batch's reads see it.
    enum CommitInFlight {
        /// All of its events (or there is none).
        case landed
        /// None of them.
        case notLanded
        /// Some: on PostgreSQL another instance may have applied an event of it first. Each is
        /// asked of the reads.
        case partly
    }

    /// One request, with the store read through `reads`.
    func apply(_ r: TicketRequest, reads: some TicketReads, commit: CommitInFlight) throws -> TicketChange {
        // Applied and committed: the filters say no for nearly every event, without a lookup.
        if try reads.isApplied(r.sourceEventID) { return .alreadyApplied }
        // The overlay's sets hold this process's fingerprints, not the store's.
        let fingerprint = DedupKeyFilter.fingerprint(r.sourceEventID)
        let key = Self.pairKey(r.equipmentID, r.action)
        // Applied since the last commit, or a merge into a ticket the overlay holds, in one
        // hold of the lock. Such a ticket is merged where it is: no copy of its list of source
        // events, and no removal and insertion in the dictionary.
        let found = overlay.withLock { o -> InOverlay in
            if o.sources.contains(r.sourceEventID, fingerprint: fingerprint) || o.writingSourceSet.contains(r.sourceEventID, fingerprint: fingerprint) {
                return .applied
            }
            guard let entry = o.open[key], entry.ticket.status == .open else { return .absent }
            let changed = Self.merge(r, into: &entry.ticket)
            o.sources.insert(r.sourceEventID, fingerprint: fingerprint)
            o.markDirty(entry, key: key)
            o.newSources.append((r.sourceEventID, entry.ticket.ticketID))
            return .merged(
                changed ? entry.ticket : Self.withOnly(r.sourceEventID, entry.ticket), changed: changed,
                writing: entry.writing, tail: changed ? o.tails[entry.ticket.ticketID] : nil)
        }
        let change: TicketChange
        // How many of the first events of the ticket's list in the overlay are being written.
        var writing = 0
        // The ticket's committed tail, when kept: taken with its list in one hold of the lock,
        // so both describe the same commit.
        var tail: SourceTail? = nil
        switch found {
        case .applied: return .alreadyApplied
        case .merged(let t, changed: false, _, _): return .merged(t, changed: false)
        case .merged(let t, changed: true, let w, let kept):
            change = .merged(t, changed: true)
            writing = w
            tail = kept
        case .absent:
            let ticket: Ticket
            if var t = try reads.openTicket(equipment: r.equipmentID, action: r.action), t.status == .open {
                let changed = Self.merge(r, into: &t)
                ticket = t
                change = .merged(changed ? t : Self.withOnly(r.sourceEventID, t), changed: changed)
            } else {
                let id = Ticket.makeID(equipment: r.equipmentID, action: r.action, openedBy: r.sourceEventID)
                // The ticket this event opens exists (closed since): the event opened it once
                // already, and the applied set has forgotten it (`sourceMemory`).
                if try reads.ticketExists(id) { return .alreadyApplied }
                ticket = Ticket(
                    ticketID: id,
                    equipmentID: r.equipmentID, action: r.action, priority: r.priority, dueBy: r.dueBy, status: .open,
                    sourceEventIDs: [r.sourceEventID], createdAt: r.at, updatedAt: r.at, note: nil)
                change = .opened(ticket)
                // Kept while the tickets are not: a load before its commit lands leaves it out.
                committedOpen.withLock { c in _ = c.openedHere.insert(ticket.ticketID) }
            }
            let keepsTails = store.postgres == nil
            tail = overlay.withLock { o in
                // Nothing of this ticket is in flight: an entry for the job is of another ticket.
                let replaced = o.open.updateValue(OpenEntry(ticket: ticket, dirty: true, writing: 0), forKey: key)
                if replaced?.dirty != true { o.dirtyKeys.append(key) }
                o.sources.insert(r.sourceEventID, fingerprint: fingerprint)
                o.newSources.append((r.sourceEventID, ticket.ticketID))
                // A ticket opened here has no events in the store yet.
                if keepsTails, case .opened = change {
                    o.tails.keep(SourceTail(latest: [], count: 0, limit: Self.listedSources), for: ticket.ticketID)
                }
                return o.tails[ticket.ticketID]
            }
            if case .merged(_, changed: false) = change { return change }
        }
        // The latest sources and their count, for the caller (an emitted event carries them).
        func complete(_ t: Ticket) throws -> Ticket {
            var full = t
            // The overlay lists the events of the transaction in flight first, until the runner
            // hears it committed (a batch or more later): those the store holds already are
            // listed and counted as its.
            let list = t.sourceEventIDs
            // The overlay's list holds every event of the ticket not yet heard committed (those in
            // flight first), and the tail every one heard committed: together, all of them,
            // whether the transaction in flight has landed or not.
            if let tail {
                full.sourceEventIDs = tail.latest(max(0, Self.listedSources - list.count)) + list.suffix(Self.listedSources)
                let count = tail.count + list.count
                full.sourceEventCount = count > full.sourceEventIDs.count ? count : nil
                return full
            }
            let inFlight = min(writing, list.count)
            let unstored: ArraySlice<String>
            switch commit {
            case .landed: unstored = list[inFlight...]
            case .notLanded: unstored = list[...]
            case .partly: unstored = ArraySlice(try list[..<inFlight].filter { try !reads.isApplied($0) } + list[inFlight...])
            }
            // With nothing of the ticket in flight, what the store holds is what it was heard to
            // commit: kept as its tail, the next change reads nothing.
            let keep = store.postgres == nil && writing == 0
            var stored = try reads.storedSources(of: t.ticketID, latest: keep ? Self.listedSources : max(0, Self.listedSources - unstored.count))
            if keep {
                let kept = SourceTail(latest: stored.latest, count: stored.count, limit: Self.listedSources)
                overlay.withLock { $0.tails.keep(kept, for: t.ticketID) }
                stored.latest = Array(stored.latest.suffix(max(0, Self.listedSources - unstored.count)))
            }
            full.sourceEventIDs = stored.latest + unstored.suffix(Self.listedSources)
            let count = stored.count + unstored.count
            full.sourceEventCount = count > full.sourceEventIDs.count ? count : nil
            return full
        }
        switch change {
        case .opened(let t): return .opened(try complete(t))
        case .merged(let t, let changed): return .merged(try complete(t), changed: changed)
        case .alreadyApplied: return .alreadyApplied
        }
    }

    /// An unchanged merge's ticket for the caller, listing only the event it added: the
    /// overlay's list is not shared with the caller, so the next merge appends without a copy.
    static func withOnly(_ eventID: String, _ ticket: Ticket) -> Ticket {
        var t = ticket
        t.sourceEventIDs = [eventID]
        return t
    }

    /// Merges the request into the open ticket: the earlier due date, the higher priority, its
    /// event added. True when the due date or the priority moved.
    static func merge(_ r: TicketRequest, into t: inout Ticket) -> Bool {
        let newDue = min(t.dueBy, r.dueBy)
        let newPriority = max(t.priority, r.priority)
        let changed = newDue != t.dueBy || newPriority != t.priority
        t.dueBy = newDue
        t.priority = newPriority
        t.sourceEventIDs.append(r.sourceEventID)
        t.updatedAt = max(t.updatedAt, r.at)
        return changed
    }

    /// Takes the changes made since the last commit, for the runner's transaction. Several
    /// stages share one book and each calls this: later calls for a transaction find nothing new.
    func takePending() -> PendingWrite? {
        let (tickets, sources) = overlay.withLock { o in
            var tickets: [Ticket] = []
            tickets.reserveCapacity(o.dirtyKeys.count)
            for key in o.dirtyKeys {
                guard let entry = o.open[key] else { continue }
                entry.dirty = false
                entry.writing = entry.ticket.sourceEventIDs.count
                tickets.append(entry.ticket)
                o.writingKeys.append(key)
            }
            let sources = o.newSources
            o.writing += tickets
            o.writingSources += sources
            if o.writingSourceSet.isEmpty {
                swap(&o.writingSourceSet, &o.sources)
            } else {
                o.writingSourceSet.formUnion(o.sources)
                o.sources.removeAll()
            }
            o.dirtyKeys = []
            o.newSources = []
            return (tickets, sources)
        }
        if tickets.isEmpty && sources.isEmpty { return nil }
        if let postgres = store.postgres {
            return PendingWrite(postgres: { conn in try await postgres.writeTickets(tickets, sources: sources, on: conn) })
        }
        // Built already: the sources came through `apply`.
        guard let (scope, generations) = knownSources.withLock({ $0 }) else {
            return PendingWrite { db in for t in tickets { try Self.upsert(db, t) } }
        }
        // Into the filters before the commit, as the dedup stage does: in the filters and not
        // yet in the store costs a lookup; the other way round would apply an event twice.
        let at = clock()
        let events = sources.map { Array($0.0.utf8) }
        let fingerprints = events.map(generations.fingerprinter.fingerprint)
        let generation = events.isEmpty ? 0 : generations.assign(fingerprints, at: at)
        // Each ticket's new events, in the order they came: one row per ticket, found by one
        // lookup an event.
        var rowOf: [String: Int] = [:]
        var rows: [(ticket: String, list: [UInt8], events: Int64)] = []
        for (event, ticket) in sources {
            let i: Int
            if let found = rowOf[ticket] {
                i = found
                rows[i].list.append(UInt8(ascii: ","))
            } else {
                i = rows.count
                rowOf[ticket] = i
                rows.append((ticket, [UInt8(ascii: "[")], 0))
            }
            JSONStringEncoder.append(event, to: &rows[i].list)
            rows[i].events += 1
        }
        for i in rows.indices { rows[i].list.append(UInt8(ascii: "]")) }
        let lists = rows
        // Never the generation this commit writes to (transactions commit in order, so every
        // older one's keys are in the store by now).
        let purgeBefore = !events.isEmpty && purges.due(at: at) ? at - Self.sourceMemory : nil
        let purges = purges
        return PendingWrite { db in
            try StateStore.dedupInsert(db, scope: scope, generation: generation, keys: events, fingerprints: fingerprints, at: at)
            if let purgeBefore {
                purges.deleted(try StateStore.dedupPurge(db, scope: scope, before: purgeBefore, below: generation).generations)
            }
            // Each ticket's row of new events, linked after its latest (none yet for a ticket
            // this commit opens), then the ticket's row, pointed at it and counting its events.
            let insert = try RawStatement(
                db,
                sql: """
                    INSERT INTO lymph_ticket_source_lists (ticket_id, event_ids, prev, linked)
                    VALUES (?1, ?2, (SELECT last_list FROM lymph_tickets WHERE ticket_id = ?1), 1)
                    """)
            var written: [String: NewList] = [:]
            written.reserveCapacity(lists.count)
            for (ticket, list, count) in lists {
                try insert.bind(1, ticket)
                try insert.bind(2, text: list)
                _ = try insert.run()
                written[ticket] = NewList(row: db.lastInsertedRowID, events: count)
            }
            for t in tickets { try Self.upsert(db, t, list: written.removeValue(forKey: t.ticketID)) }
            // Events of a ticket no longer in the overlay (another one opened for its job since).
            if !written.isEmpty {
                let link = try RawStatement(db, sql: "UPDATE lymph_tickets SET last_list = ?1, source_count = source_count + ?2 WHERE ticket_id = ?3")
                for (ticket, list) in written {
                    try link.bind(1, list.row)
                    try link.bind(2, list.events)
                    try link.bind(3, ticket)
                    _ = try link.run()
                }
            }
        }
    }

    /// The transaction rolled back: what it was writing is dirty again, for the next one.
    func pendingNotWritten() {
        purges.rolledBack()
        overlay.withLock { o in
            for key in o.writingKeys {
                guard let entry = o.open[key] else { continue }
                entry.writing = 0
                o.markDirty(entry, key: key)
            }
            o.newSources = o.writingSources + o.newSources
            o.sources.formUnion(o.writingSourceSet)
            o.writing = []
            o.writingKeys = []
            o.writingSources = []
            o.writingSourceSet.removeAll()
        }
    }

    /// After the commit the store holds the truth; the overlay keeps only what came since.
    func pendingWritten() {
        purges.committed(forgettingIn: knownSources.withLock { $0 }?.generations)
        let (written, keys) = overlay.withLock { ($0.writing, $0.writingKeys) }
        committedOpen.withLock { c in
            for (var t, key) in zip(written, keys) {
                // Removed whether or not the tickets are kept: one opened here and written is the
                // store's now, and a later load finds it.
                let openedHere = c.openedHere.remove(t.ticketID) != nil
                guard c.tickets != nil, c.tickets![key]?.ticketID == t.ticketID || openedHere else { continue }
                if c.tickets![key] == nil && c.tickets!.count >= maxKnownOpen {
                    // More open tickets than are kept: each job's is read from the store from now on.
                    c.tickets = nil
                    continue
                }
                t.sourceEventIDs = []
                c.tickets![key] = t
            }
        }
        overlay.withLock { o in
            for (t, key) in zip(o.writing, o.writingKeys) {
                // Each written ticket's list there is what this commit wrote of it.
                o.tails.committed(t.sourceEventIDs, of: t.ticketID)
                guard let index = o.open.index(forKey: key), case let entry = o.open.values[index], entry.ticket.ticketID == t.ticketID else {
                    continue
                }
                if !entry.dirty {
                    o.open.remove(at: index)
                } else {
                    // Changed again while the commit was in flight: its list keeps only the
                    // events not yet committed, those after the ones written.
                    entry.ticket.sourceEventIDs.removeFirst(entry.writing)
                    entry.writing = 0
                }
            }
            // Sources applied since takePending (while the commit was in flight) stay in `sources`.
            o.writing = []
            o.writingKeys = []
            o.writingSources = []
            o.writingSourceSet.removeAll()
        }
    }

    /// The updates of a ticket written before, tried in turn. Most merges move neither the due
    /// date nor the priority: then the first sets only `updated_at`, and the index of due dates
    /// is left alone (an UPDATE that sets an indexed column works on its index even when the
    /// value stays).
    static let ticketUpdates = [
        """
        UPDATE lymph_tickets SET updated_at = ?3, last_list = COALESCE(?5, last_list), source_count = source_count + ?6
        WHERE ticket_id = ?4 AND priority = ?1 AND due_by = ?2
        """,
        """
        UPDATE lymph_tickets SET priority = ?1, due_by = ?2, updated_at = ?3, last_list = COALESCE(?5, last_list),
        source_count = source_count + ?6 WHERE ticket_id = ?4
        """,
    ]

    /// A commit's row of a ticket's new events: its id and how many it lists.
    struct NewList {
        var row: Int64
        var events: Int64
    }

    /// Writes a ticket's row. A ticket written before (nearly every one: a merge) is updated by
    /// its id, without an insert's checks of both unique indexes first; a new one is inserted.
    /// Either way a row that exists keeps its status, equipment, action and creation time.
    /// With `list`, the commit's row of its new events: the ticket points at it and counts them.
    static func upsert(_ db: Database, _ t: Ticket, list: NewList? = nil) throws {
        for sql in ticketUpdates {
            let update = try RawStatement(db, sql: sql)
            try update.bind(1, t.priority.description)
            try update.bind(2, t.dueBy)
            try update.bind(3, t.updatedAt)
            try update.bind(4, t.ticketID)
            if let list { try update.bind(5, list.row) }
            try update.bind(6, list?.events ?? 0)
            if try update.run() > 0 { return }
        }
        let insert = try RawStatement(
            db,
            sql: """
                INSERT INTO lymph_tickets (ticket_id, equipment_id, action, priority, due_by, status, created_at, updated_at, note, last_list, source_count)
                VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11)
                """)
        if let list { try insert.bind(10, list.row) }
        try insert.bind(11, list?.events ?? 0)
        try insert.bind(1, t.ticketID)
        try insert.bind(2, t.equipmentID)
        try insert.bind(3, t.action)
        try insert.bind(4, t.priority.description)
        try insert.bind(5, t.dueBy)
        try insert.bind(6, t.status.rawValue)
        try insert.bind(7, t.createdAt)
        try insert.bind(8, t.updatedAt)
        try insert.bind(9, t.note)
        try insert.run()
    }

    static func fetchOpen(_ db: Database, equipment: String, action: String) throws -> Ticket? {
        let statement = try db.cachedStatement(sql: "SELECT * FROM lymph_tickets WHERE equipment_id = ? AND action = ? AND status = 'open'")
        return try Row.fetchOne(statement, arguments: [equipment, action]).map(ticket(from:))
    }

    /// A ticket from a row; `source_event_ids` (a JSON array) when the query selected it. Throws
    /// when a value is not of its column's type (the store changed by hand).
    static func ticket(from row: Row) throws -> Ticket {
        let idsText: String? = try row.decode(forColumn: "source_event_ids")
        let ids = idsText.flatMap { try? JSONDocument(parsing: Array($0.utf8)) }?.root.elements.map { $0.compactMap(\.string) } ?? []
        return Ticket(
            ticketID: try row.decode(forColumn: "ticket_id"), equipmentID: try row.decode(forColumn: "equipment_id"),
            action: try row.decode(forColumn: "action"), priority: Ticket.Priority(name: try row.decode(forColumn: "priority")) ?? .medium,
            dueBy: try row.decode(forColumn: "due_by"), status: Ticket.Status(rawValue: try row.decode(forColumn: "status")) ?? .open,
            sourceEventIDs: ids, createdAt: try row.decode(forColumn: "created_at"), updatedAt: try row.decode(forColumn: "updated_at"),
            note: try row.decode(forColumn: "note"))
    }
}

/// What applying a ticket request reads from the store.
protocol TicketReads {
    /// Whether the event was applied to a ticket already.
    func isApplied(_ eventID: String) throws -> Bool
    /// The open ticket of the job, without its source events.
    func openTicket(equipment: String, action: String) throws -> Ticket?
    /// Whether a ticket with this id is in the store, open or closed.
    func ticketExists(_ ticketID: String) throws -> Bool
    /// The latest `limit` events the store holds for a ticket, in the order they came, and how
    /// many it holds.
    func storedSources(of ticketID: String, latest limit: Int) throws -> StoredSources
}

/// The end of a ticket's list of source events as the store holds it (`TicketReads.storedSources`).
struct StoredSources {
    var latest: [String]
    var count: Int
}

/// Reads through a SQLite read transaction, with the source-event filters in front, and the
/// committed open tickets when they are kept in memory.
struct SQLiteTicketReads: TicketReads {
    let db: Database
    /// The applied source events' dedup scope and its generations.
    let scope: Int64
    let generations: DedupGenerations
    let open: [KeyBytes: Ticket]?

    func isApplied(_ eventID: String) throws -> Bool {
        let candidates = generations.lazyCandidates(generations.fingerprinter.fingerprint(eventID))
        if candidates.isCertainlyNew { return false }
        return try StateStore.dedupLookup(db, scope: scope, keys: [Array(eventID.utf8)], generations: [candidates], since: -.infinity)[0]
    }

    func openTicket(equipment: String, action: String) throws -> Ticket? {
        if let open { return open[TicketBook.pairKey(equipment, action)] }
        return try TicketBook.fetchOpen(db, equipment: equipment, action: action)
    }

    func ticketExists(_ ticketID: String) throws -> Bool {
        try Bool.fetchOne(db.cachedStatement(sql: "SELECT 1 FROM lymph_tickets WHERE ticket_id = ?"), arguments: [ticketID]) ?? false
    }

    /// Reads the ticket's lists from the newest back, only as many as `limit` needs.
    func storedSources(of ticketID: String, latest limit: Int) throws -> StoredSources {
        if limit == 0 {
            let count = try Int.fetchOne(db.cachedStatement(sql: "SELECT source_count FROM lymph_tickets WHERE ticket_id = ?"), arguments: [ticketID])
            return StoredSources(latest: [], count: count ?? 0)
        }
        // The ticket's latest row, then each row's one before it, by id.
        let ticket = try db.cachedStatement(sql: "SELECT source_count, last_list FROM lymph_tickets WHERE ticket_id = ?")
        guard let head = try Row.fetchOne(ticket, arguments: [ticketID]) else { return StoredSources(latest: [], count: 0) }
        let count: Int = try head.decode(atIndex: 0)
        var next: Int64? = try head.decode(atIndex: 1)
        let list = try db.cachedStatement(sql: "SELECT prev, event_ids FROM lymph_ticket_source_lists WHERE id = ?")
        var newestFirst: [[String]] = []
        var read = 0
        while read < limit, let rowid = next, let row = try Row.fetchOne(list, arguments: [rowid]) {
            // Only back to older rows, so the walk ends whatever a store changed by hand says.
            next = try (row.decode(atIndex: 0) as Int64?).flatMap { $0 < rowid ? $0 : nil }
            let text: String = try row.decode(atIndex: 1)
            let ids = (try? JSONDocument(parsing: Array(text.utf8)))?.root.elements?.compactMap(\.string) ?? []
            newestFirst.append(ids)
            read += ids.count
        }
        return StoredSources(latest: Array(newestFirst.reversed().joined().suffix(limit)), count: count)
    }
}

/// What a batch of requests needs from PostgreSQL, read in one go (`PostgresState.ticketSnapshot`).
struct TicketSnapshot: TicketReads {
    /// Of the events asked about (the requests' and those of the commit in flight), those the
    /// store holds.
    /// By their bytes, as PostgreSQL compares them (see `TicketBook.pairKey`).
    var applied: Set<KeyBytes> = []
    /// Open tickets by `TicketBook.pairKey`.
    var open: [KeyBytes: Ticket] = [:]
    /// Those tickets' latest source events and how many they have, by ticket id.
    var sources: [String: StoredSources] = [:]

    func isApplied(_ eventID: String) -> Bool { applied.contains(KeyBytes(Array(eventID.utf8))) }
    func openTicket(equipment: String, action: String) -> Ticket? { open[TicketBook.pairKey(equipment, action)] }
    /// False: on PostgreSQL the applied events are the tickets' own lists, never forgotten, so
    /// an event that opened a ticket is found applied first (`isApplied`).
    func ticketExists(_ ticketID: String) -> Bool { false }
    func storedSources(of ticketID: String, latest limit: Int) -> StoredSources {
        let stored = sources[ticketID] ?? StoredSources(latest: [], count: 0)
        return StoredSources(latest: Array(stored.latest.suffix(limit)), count: stored.count)
    }
}
