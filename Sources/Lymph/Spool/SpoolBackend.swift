/// Where `lymph serve`'s spool keeps accepted webhooks: the durable queue between the HTTP
/// handlers and the pipeline worker. `SQLiteSpoolStore` is the backend there is; another (a
/// shared database) is another type conforming to this, and the writer, the worker's source
/// and the server take it as it is.
///
/// What every backend keeps:
/// - `append` returns only once its entries are durable (the 202 follows), all of them in one
///   transaction, with increasing sequence numbers in the order given. A number is never given
///   twice, even after deletes and restarts: arrival order is sequence order.
/// - `fetch` gives entries in sequence order, and sees every `append` that returned.
/// - One writer (`SpoolWriter`, on its own thread) appends and deletes; the worker's source
///   fetches, on an instance of its own, while the writer goes on.
public protocol SpoolBackend: SpoolEntryDeleter {
    /// Appends `items` in one transaction (a group commit) and returns their sequence numbers,
    /// in order. Entries through `deleteThrough` are deleted in the same transaction, so the
    /// worker's deletes need no commit of their own.
    func append(_ items: [[UInt8]], receivedAt: Double, deleteThrough: Int64?) throws(StoreError) -> [Int64]

    /// Up to `limit` entries after `seq`, oldest first; stops at the first entry that brings the
    /// total of their items to `maxBytes` or more.
    func fetch(after seq: Int64, limit: Int, maxBytes: Int) throws(StoreError) -> [SpoolEntry]

    /// Deletes entries through `seq`; returns how many there were.
    @discardableResult
    func delete(through seq: Int64) throws(StoreError) -> Int

    /// The newest sequence number this spool ever gave (0 for none), deleted or not.
    func highestSeq() throws(StoreError) -> Int64

    /// The oldest entry's sequence number, nil when the spool is empty.
    func oldestSeq() throws(StoreError) -> Int64?

    /// Entries waiting, and when the oldest arrived.
    func depth() throws(StoreError) -> SpoolDepth

    /// A real write that changes no entry, for `/healthz`.
    func probeWritable() throws(StoreError)

    /// For the state transaction: entries through `seq` are done (their work commits in it).
    func progressWrite(doneThrough seq: Int64) -> PendingWrite

    /// Whether the state records progress in a table of its own, to be reconciled at start
    /// (`SpoolSource.skipDone`); false when the spool shares the state's database, and done
    /// entries go in the transaction that commits their work.
    var keepsProgressApart: Bool { get }

    /// How long the worker lets a small batch wait for more entries (nil: not at all). Every
    /// batch costs the same whatever its size: on a database server round trips, anywhere a
    /// wake-up of the worker beside the event loops, the stages' calls and a log write.
    var gatherFor: Duration? { get }

    /// The least time from one append's start to the next while more webhooks arrive (nil:
    /// none). An append costs round trips and a commit whatever its size, on a database server
    /// shared by every instance; a pause lets the next group grow instead.
    var appendInterval: Duration? { get }

    /// Why the spool's file is no longer where it was opened (deleted or replaced), or nil.
    /// Appends go on into the open file, but no later start reads it: the writer refuses new
    /// webhooks, and the worker drains what the file holds before the server stops.
    func fileProblem() -> String?
}

extension SpoolBackend {
    /// The SQLite state file's row (`lymph_spool_progress`).
    public func progressWrite(doneThrough seq: Int64) -> PendingWrite {
        PendingWrite { db in try StateStore.recordSpoolProgress(db, doneThrough: seq) }
    }

    /// A spool file beside the state file: yes.
    public var keepsProgressApart: Bool { true }

    /// Batches go as they come.
    public var gatherFor: Duration? { nil }

    /// Appends go as soon as the last one is durable.
    public var appendInterval: Duration? { nil }

    /// A backend with no file of its own: nothing to lose.
    public func fileProblem() -> String? { nil }

    /// The first entry `fetch` gives.
    public func oldestSeq() throws(StoreError) -> Int64? {
        try fetch(after: 0, limit: 1, maxBytes: .max).first?.seq
    }
}

/// Any backend, as one type: `lymph serve` picks the backend when it starts.
public struct AnySpoolBackend: SpoolBackend {
    public let base: any SpoolBackend

    public init(_ base: any SpoolBackend) { self.base = base }

    public func append(_ items: [[UInt8]], receivedAt: Double, deleteThrough: Int64?) throws(StoreError) -> [Int64] {
        try base.append(items, receivedAt: receivedAt, deleteThrough: deleteThrough)
    }
    public func fetch(after seq: Int64, limit: Int, maxBytes: Int) throws(StoreError) -> [SpoolEntry] {
        try base.fetch(after: seq, limit: limit, maxBytes: maxBytes)
    }
    @discardableResult
    public func delete(through seq: Int64) throws(StoreError) -> Int { try base.delete(through: seq) }
    public func highestSeq() throws(StoreError) -> Int64 { try base.highestSeq() }
    public func oldestSeq() throws(StoreError) -> Int64? { try base.oldestSeq() }
    public func depth() throws(StoreError) -> SpoolDepth { try base.depth() }
    public func probeWritable() throws(StoreError) { try base.probeWritable() }
    public func progressWrite(doneThrough seq: Int64) -> PendingWrite { base.progressWrite(doneThrough: seq) }
    public var keepsProgressApart: Bool { base.keepsProgressApart }
    public var gatherFor: Duration? { base.gatherFor }
    public var appendInterval: Duration? { base.appendInterval }
    public func fileProblem() -> String? { base.fileProblem() }
    public func deleteEntries(through seq: Int64) throws { try base.deleteEntries(through: seq) }
}

/// Removes spool entries whose work is committed: the worker's source calls it after each
/// state commit. The spool's writer is one (it folds the delete into its next transaction),
/// and so is every backend (a transaction of its own).
public protocol SpoolEntryDeleter: Sendable {
    /// Entries through `seq` are done and may go. It may return before they are gone; one that
    /// fails is covered by the next call, whose `seq` is higher.
    func deleteEntries(through seq: Int64) throws
}

extension SpoolBackend {
    /// Deletes at once, in a transaction of the backend's own.
    public func deleteEntries(through seq: Int64) throws {
        try delete(through: seq)
    }
}

/// One accepted webhook as the spool holds it: a delivery line
/// (`{"headers": {...}, "body": "...", "received_at": ...}`), the form `lymph run` reads, so
/// the worker parses it with the parse stage it already has.
public struct SpoolEntry: Sendable {
    /// Its place in arrival order (see `SpoolBackend`).
    public let seq: Int64
    /// When it was stored, in seconds since the epoch.
    public let receivedAt: Double
    /// The delivery line.
    public let item: [UInt8]

    /// An entry as a backend read it.
    public init(seq: Int64, receivedAt: Double, item: [UInt8]) {
        self.seq = seq
        self.receivedAt = receivedAt
        self.item = item
    }
}

/// How many entries wait, and since when.
public struct SpoolDepth: Sendable, Equatable {
    /// Entries in the spool.
    public let count: Int
    /// When the oldest entry arrived (seconds since the epoch); nil when there is none.
    public let oldestReceivedAt: Double?

    /// A depth as a backend counted it.
    public init(count: Int, oldestReceivedAt: Double?) {
        self.count = count
        self.oldestReceivedAt = oldestReceivedAt
    }
}
