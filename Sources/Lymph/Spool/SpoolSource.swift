import GRDB
import Synchronization

/// Reads `lymph serve`'s spool in arrival order, for the pipeline worker. An entry is done
/// once its batch has left the pipeline (written out, dropped or dead-lettered) and the dedup
/// keys, tickets and output lengths it produced are committed to the state file, in the same
/// transaction as `lymph_spool_progress` (the last entry done). It is deleted from the spool
/// after that commit; a crash in between leaves it in the spool, and the next start skips it
/// (`skipDone`). A crash before the commit leaves it to be processed again, never lost.
public final class SpoolSource: ItemSource, @unchecked Sendable {
    /// The spool file (not the state file).
    let store: StateStore
    let doorbell: Doorbell
    let maxItemBytes: Int
    public static let sourceName = "spool"
    /// Entries per batch. Small on purpose: a batch is one uninterrupted job on one of Swift's
    /// few threads, which the HTTP handlers share, so a long one shows up as request latency.
    public var batchLimit = 256
    /// How long an empty spool is waited on before an idle batch lets the runner commit.
    static let idleWait: Duration = .milliseconds(200)

    // Touched by the runner's loop only (one task).
    var lastFetched: Int64 = 0
    var batchEnds: FIFO<(end: Int64, count: Int)> = FIFO()
    var finishedThrough: Int64 = 0
    var finishedCount = 0
    var deletedThrough: Int64 = 0
    /// The last entry recorded as done in the state file.
    var recordedThrough: Int64 = 0
    public private(set) var finished = false
    /// Entries handed to the pipeline so far.
    public let taken = Atomic<Int>(0)
    /// Entries deleted from the spool (their work committed) so far.
    public let deleted = Atomic<Int>(0)
    /// Set when the worker is asked to stop: the batch in hand is finished, nothing more is taken.
    public let stopping = Atomic<Bool>(false)

    /// Removes entries through a sequence number. By default a transaction on `store`; `lymph
    /// serve` hands the deletes to its spool writer instead, which folds them into its next
    /// append commit: two connections writing one file would make each wait for the other's
    /// lock (SQLite's busy wait sleeps in steps of milliseconds, which answers would feel).
    public var deleteEntries: (@Sendable (Int64) throws -> Void)?
    /// Entries the writer has just committed, taken from memory instead of the file.
    private(set) var handoff: SpoolHandoff?
    /// The server that handed them over checked their signatures with the pipeline's only
    /// verify stage, so that stage need not compute the HMAC again (see `RawItem`). Entries
    /// read from the file are always checked: they may come from before a restart, under
    /// another configuration.
    private(set) var handoffSignatureChecked = false

    /// Takes committed entries from `handoff` (see `SpoolWriter`). `signaturesChecked`: the
    /// server verified every one with the pipeline's only verify stage before spooling it.
    package func takeFrom(_ handoff: SpoolHandoff, signaturesChecked: Bool) {
        self.handoff = handoff
        self.handoffSignatureChecked = signaturesChecked
    }

    public init(store: StateStore, doorbell: Doorbell, maxItemBytes: Int) {
        self.store = store
        self.doorbell = doorbell
        self.maxItemBytes = maxItemBytes
    }

    public func nextBatch(control: RunControl) async throws -> InputBatch? {
        if control.isStopRequested || stopping.load(ordering: .relaxed) || Task.isCancelled { finished = true; return nil }
        var (entries, checked) = try fetch(afterWait: false)
        if entries.isEmpty {
            await doorbell.wait(timeout: Self.idleWait)
            if control.isStopRequested || stopping.load(ordering: .relaxed) || Task.isCancelled { finished = true; return nil }
            (entries, checked) = try fetch(afterWait: true)
            if entries.isEmpty { return InputBatch(items: [], idle: true) }
        }
        var items: [RawItem] = []
        items.reserveCapacity(entries.count)
        for entry in entries {
            let oversize = entry.item.count > maxItemBytes
            var item = RawItem(bytes: entry.item[...], source: SourcePosition(file: Self.sourceName, line: Int(entry.seq)), oversize: oversize)
            item.signatureChecked = checked
            item.parsedBody = entry.body
            items.append(item)
        }
        lastFetched = entries.last!.seq
        batchEnds.append((lastFetched, entries.count))
        taken.add(entries.count, ordering: .relaxed)
        return InputBatch(items: items, idle: false)
    }

    /// The entries after `lastFetched`: from the writer's handoff when it holds the next ones,
    /// else from the file. `checked`: their signatures were checked by this process's server.
    /// When the handoff says there is nothing newer, that is trusted once; after a wait the
    /// file is read anyway, so an entry committed without passing through the handoff waits
    /// at most one idle wait.
    func fetch(afterWait: Bool) throws -> (entries: [SpoolHandoff.Entry], checked: Bool) {
        if let taken = handoff?.take(after: lastFetched, limit: batchLimit, maxBytes: Self.maxBatchBytes), !(taken.isEmpty && afterWait) {
            return (taken, handoffSignatureChecked)
        }
        return (try store.spoolFetch(after: lastFetched, limit: batchLimit, maxBytes: Self.maxBatchBytes).map { ($0.seq, $0.item, nil) }, false)
    }

    static let maxBatchBytes = 1 << 20

    public func batchFinished() {
        if let batch = batchEnds.popFirst() {
            finishedThrough = batch.end
            finishedCount += batch.count
        }
    }

    /// What `skipDone` found.
    public enum DoneEntries: Sendable, Equatable {
        /// This many entries were done but still in the spool, and are deleted now.
        case skipped(Int)
        /// The state file said entries through this one were done, but this spool never gave
        /// that number (the spool file was replaced): the record is dropped, nothing skipped.
        case recordDropped(doneThrough: Int64)
    }

    /// Skips (and deletes) the entries the state file records as done: their work was
    /// committed before a crash kept their deletion from the spool. Call before the first
    /// batch, and before anything else writes the spool.
    @discardableResult
    public func skipDone(recordedIn state: StateStore) throws -> DoneEntries {
        guard let done = try state.spoolDoneThrough(), done > 0 else { return .skipped(0) }
        guard done <= (try store.spoolHighestSeq()) else {
            try state.clearSpoolProgress()
            return .recordDropped(doneThrough: done)
        }
        lastFetched = max(lastFetched, done)
        finishedThrough = max(finishedThrough, done)
        recordedThrough = max(recordedThrough, done)
        deletedThrough = max(deletedThrough, done)
        return .skipped(try store.spoolDelete(through: done))
    }

    /// In the state file's transaction: entries through `finishedThrough` are done.
    public func writePending(_ db: Database) throws {
        guard finishedThrough > recordedThrough else { return }
        try StateStore.recordSpoolProgress(db, doneThrough: finishedThrough)
    }

    /// After the state file committed: the entries whose work is now remembered can go.
    public func pendingWritten() {
        recordedThrough = max(recordedThrough, finishedThrough)
        guard finishedThrough > deletedThrough else { return }
        do {
            if let deleteEntries { try deleteEntries(finishedThrough) } else { try store.spoolDelete(through: finishedThrough) }
        } catch {
            // Left in the spool, they are processed again after a restart and dropped by dedup.
            return
        }
        deletedThrough = finishedThrough
        deleted.add(finishedCount, ordering: .relaxed)
        finishedCount = 0
    }
}
