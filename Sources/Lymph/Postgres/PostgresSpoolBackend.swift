import NIOCore
import PostgresNIO

/// `lymph serve`'s spool in PostgreSQL, as the `SpoolBackend` the writer and the worker use:
/// this instance's lane of the shared spool (`PostgresSpool`). The writer and the worker call it
/// from threads of their own, which wait for the database (within its operation deadline).
///
/// Done entries are deleted in the state transaction that commits their work (`progressWrite`,
/// fenced to this process's hold on the lane), so there is no progress to reconcile at start.
public struct PostgresSpoolBackend: SpoolBackend {
    public let spool: PostgresSpool
    let state: PostgresState

    public init(spool: PostgresSpool, state: PostgresState) {
        self.spool = spool
        self.state = state
    }

    /// `body` is one database operation (see `PostgresState.blockingOperation`).
    func call<T: Sendable>(_ body: @escaping @Sendable () async throws -> T) throws(StoreError) -> T {
        try StateStore.storeErrors(state.location) { try state.blockingOperation(body) }
    }

    /// On the spool's connection of its own: the writer's thread waits on it directly, with
    /// no task or cooperative thread between it and the event loop, on every append.
    public func append(_ items: [[UInt8]], receivedAt: Double, deleteThrough: Int64?) throws(StoreError) -> [Int64] {
        try spool.appendBlocking(items, receivedAt: receivedAt)
    }

    /// Nothing while the database cannot be reached: the worker waits and asks again (the
    /// entries are safe there; `/healthz` reports the outage).
    public func fetch(after seq: Int64, limit: Int, maxBytes: Int) throws(StoreError) -> [SpoolEntry] {
        let spool = spool
        do {
            return try call { try await spool.fetch(lane: spool.lane, after: seq, limit: limit, maxBytes: maxBytes) }
                .map { SpoolEntry(seq: $0.seq, receivedAt: $0.receivedAt, item: $0.item) }
        } catch  where error.isUnavailable {
            return []
        }
    }

    /// Nothing to do: entries go in the state transaction (`progressWrite`).
    @discardableResult
    public func delete(through seq: Int64) throws(StoreError) -> Int { 0 }

    public func deleteEntries(through seq: Int64) throws {}

    public func highestSeq() throws(StoreError) -> Int64 {
        let spool = spool
        return try call { try await spool.highestSeq() }
    }

    /// This instance's lane: what `max_spool` bounds.
    public func depth() throws(StoreError) -> SpoolDepth {
        let spool = spool
        return try call { try await spool.depth(lane: spool.lane) }
    }

    public func probeWritable() throws(StoreError) {
        let spool = spool
        try call { try await spool.probeWritable() }
    }

    public func progressWrite(doneThrough seq: Int64) -> PendingWrite {
        let spool = spool
        return PendingWrite(postgres: { conn in try await spool.markDone(lane: spool.lane, through: seq, on: conn) })
    }

    public var keepsProgressApart: Bool { false }

    /// 20 ms: processing lags a little more behind (the 202s do not), and a worker under light
    /// load makes a tenth of the round trips.
    public var gatherFor: Duration? { .milliseconds(20) }
    /// Every append is a transaction on the server all instances share, with its round trips
    /// and its WAL flush, whatever its size. Under load, a pause of 2 ms between appends makes
    /// each carry more webhooks: fewer transactions, less CPU per webhook in lymph and in
    /// PostgreSQL, for at most 2 ms more before a 202.
    public var appendInterval: Duration? { .milliseconds(2) }
}
