import Dispatch
import Logging
import Lymph
import ServiceLifecycle
import Synchronization

/// `lymph serve`'s spool, put together: the HTTP side appends through `writer` (group commit,
/// on its own thread), and the pipeline worker drains `source`, which takes what the writer has
/// just committed from the in-memory handoff and reads the backend otherwise.
///
/// `Backend` is where the entries are kept; `open(forState:…)` builds the SQLite one. Another
/// backend is another `SpoolBackend` and its own `open`: the writer, the source and the server
/// stay as they are.
final class Spool<Backend: SpoolBackend>: Sendable {
    /// The writer's instance: `/healthz` probes it and `/metrics` reads the oldest entry there.
    let backend: Backend
    let writer: SpoolWriter
    let source: SpoolSource<Backend>
    /// Entries waiting when the server started.
    let initialDepth: Int
    /// The spool file's lock (one process per spool), held as long as the spool.
    private let lock: StoreLock?

    /// Entries moved into this spool from other instances' lanes (PostgreSQL), counted into the depth.
    let adopted: (@Sendable () -> Int)?

    init(
        backend: Backend, writer: SpoolWriter, source: SpoolSource<Backend>, initialDepth: Int, lock: StoreLock?,
        adopted: (@Sendable () -> Int)? = nil
    ) {
        self.adopted = adopted
        self.backend = backend
        self.writer = writer
        self.source = source
        self.initialDepth = initialDepth
        self.lock = lock
    }

    /// Entries accepted and not yet committed as done. Counted, not queried: every request reads it.
    var depth: Int {
        initialDepth + writer.appended.load(ordering: .relaxed) + (adopted?() ?? 0) - source.deleted.load(ordering: .relaxed)
    }

    /// Commits what the writer has queued and stops it.
    func close() { writer.close() }
}

/// The spool is the server's first service, so the group stops it last: after HTTP (no more
/// appends) and the worker (whose deletes go through the writer).
extension Spool: Service {
    func run() async {
        try? await gracefulShutdown()
        // The close waits for the writer's thread (up to its timeout): off the cooperative pool.
        await withCheckedContinuation { (done: CheckedContinuation<Void, Never>) in
            DispatchQueue.global().async {
                self.close()
                done.resume()
            }
        }
    }
}

extension Spool where Backend == AnySpoolBackend {
    /// The spool file beside `state`'s file, locked for this process, with two connections:
    /// the writer's (`synchronous = FULL`, checkpointing its own log) and the worker's.
    /// Entries `state` records as done are deleted first (before the writer takes appends).
    /// `handoffSignaturesChecked`: see `SpoolSource`.
    static func open(
        forState state: StateStore, maxItemBytes: Int, handoffSignaturesChecked: Bool, metrics: ServeMetrics,
        deadline: Duration, logger: Logger
    ) throws -> Spool {
        let path = SQLiteSpoolStore.path(forState: state.location)
        // The spool is a store file too: nothing else may open it as its state.
        let lock = try StoreLock.acquire(forState: path)
        let file = try SQLiteSpoolStore.open(path: path, durability: .full)
        let backend = AnySpoolBackend(file)
        let reader = AnySpoolBackend(try SQLiteSpoolStore.open(path: path))
        let doorbell = Doorbell()
        let handoff = SpoolHandoff()
        let writer = SpoolWriter(
            backend: backend, doorbell: doorbell, handoff: handoff, deadline: deadline,
            onCommit: { metrics.spoolCommits.increment() },
            onTimeout: { metrics.spoolTimeouts.increment(by: Int64($0)) })
        // The writer is the spool's only writer once appends start: the worker's deletes go through it.
        let source = SpoolSource(
            backend: reader, deleter: writer, handoff: handoff, handoffSignaturesChecked: handoffSignaturesChecked,
            doorbell: doorbell, maxItemBytes: maxItemBytes)
        let initialDepth: Int
        do {
            // Entries whose work committed just before a crash are done: not again. Nothing is
            // appended yet, so the worker's connection may delete them itself.
            switch try source.skipDone(recordedIn: state) {
            case .skipped(0): break
            case .skipped(let n):
                logger.notice("skipped \(n) spool entries processed before the last stop (their work was committed, their deletion from the spool was not)")
            case .recordDropped(let done):
                logger.warning(
                    "the state file says spool entries through \(done) are done, but this spool never held that many (it was replaced): the record is dropped and every entry in the spool is processed"
                )
            }
            initialDepth = try backend.depth().count
            try file.checkpointEvery(pages: 256)
        } catch {
            writer.close()
            throw error
        }
        return Spool(backend: backend, writer: writer, source: source, initialDepth: initialDepth, lock: lock)
    }
}

extension Spool where Backend == AnySpoolBackend {
    /// This instance's lane of the spool in `postgres` (`PostgresSpoolBackend`), shared with
    /// the other instances on that database; `keeper` takes over the lanes of instances that
    /// die. Nothing needs skipping at start: done entries go with their work's commit.
    static func open(
        postgres: PostgresState, keeper: PostgresLaneKeeper, maxItemBytes: Int, handoffSignaturesChecked: Bool, metrics: ServeMetrics,
        deadline: Duration
    ) throws -> Spool {
        let spool = keeper.spool
        let backend = AnySpoolBackend(PostgresSpoolBackend(spool: spool, state: postgres))
        let handoff = SpoolHandoff()
        let writer = SpoolWriter(
            backend: backend, doorbell: keeper.doorbell, handoff: handoff, deadline: deadline,
            onCommit: { metrics.spoolCommits.increment() },
            onTimeout: { metrics.spoolTimeouts.increment(by: Int64($0)) })
        let source = SpoolSource(
            backend: backend, deleter: backend, handoff: handoff, handoffSignaturesChecked: handoffSignaturesChecked,
            doorbell: keeper.doorbell, maxItemBytes: maxItemBytes)
        let initialDepth: Int
        do {
            initialDepth = try backend.depth().count
        } catch {
            writer.close()
            throw error
        }
        return Spool(
            backend: backend, writer: writer, source: source, initialDepth: initialDepth, lock: nil,
            adopted: { keeper.adopted.load(ordering: .relaxed) })
    }
}
