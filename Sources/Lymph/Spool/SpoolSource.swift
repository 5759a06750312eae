import GRDB
import Synchronization

/// Reads `lymph serve`'s spool in arrival order, for the pipeline worker: the engine sees the
/// spool only through this `ItemSource`.
///
/// An entry is done once its batch has left the pipeline (written out, dropped or
/// dead-lettered) and the dedup keys, tickets and output lengths it produced are committed to
/// the state file, in the same transaction as `lymph_spool_progress` (the last entry done). It
/// is deleted from the spool after that commit, through `deleter`; a crash in between leaves it
/// in the spool, and the next start skips it (`skipDone`). A crash before the commit leaves it
/// to be processed again, never lost.
///
/// Entries come from `handoff` while it holds the ones that follow the last taken, else from
/// `backend`. Only handed-over entries carry what the server already did (`RawItem.prepared`).
public final class SpoolSource<Backend: SpoolBackend>: ItemSource, @unchecked Sendable {
    /// The spool, read through an instance (a connection) of the worker's own.
    let backend: Backend
    /// Deletes done entries after each state commit.
    let deleter: any SpoolEntryDeleter
    /// Entries the writer has just committed, taken from memory instead of the backend.
    let handoff: SpoolHandoff?
    let doorbell: Doorbell
    let maxItemBytes: Int
    /// The file name in an entry's `SourcePosition` (its line is the entry's sequence number).
    public static var sourceName: String { "spool" }
    /// Entries per batch. Small on purpose: a batch is one uninterrupted job on one of Swift's
    /// few threads, which the HTTP handlers share, so a long one shows up as request latency.
    public var batchLimit = 256
    /// How long an empty spool is waited on before an idle batch lets the runner commit.
    static var idleWait: Duration { .milliseconds(200) }
    static var maxBatchBytes: Int { 1 << 20 }

    /// Handed-over entries were checked, before they were spooled, with the secrets of the
    /// running pipeline's only verify stage. The worker says so for each pipeline it runs
    /// (`Pipeline.verifyStageCount == 1`: with a second verify stage one check could not say
    /// which it stands for). Entries read from the backend are always checked again: they may
    /// come from before a restart, under another configuration.
    package var handoffSignaturesChecked: Bool

    // Touched by the runner's loop only (one task).
    var lastFetched: Int64 = 0
    var batchEnds: FIFO<(end: Int64, count: Int)> = FIFO()
    var finishedThrough: Int64 = 0
    var finishedCount = 0
    var deletedThrough: Int64 = 0
    /// The last entry recorded as done in the state file.
    var recordedThrough: Int64 = 0
    /// What the state transaction in flight records: through which entry, and how many entries.
    var writingThrough: (through: Int64, count: Int)?
    /// Entries committed as done but not yet deleted (a delete failed; the next one covers them).
    var unDeletedCount = 0
    /// The source was stopped: the runner reports the run as finished, not interrupted.
    public private(set) var finished = false
    /// Set once the spool's file was found deleted or replaced and everything it held was
    /// taken (`SpoolBackend.fileProblem`): the worker stops when this run ends.
    public private(set) var fileGone: String?
    /// Entries handed to the pipeline so far.
    public let taken = Atomic<Int>(0)
    /// Entries handed to `deleter` (their work committed) so far.
    public let deleted = Atomic<Int>(0)
    /// Set when the worker is asked to stop: the batch in hand is finished, nothing more is taken.
    let stopping = Atomic<Bool>(false)

    /// `deleter` removes done entries: `lymph serve` passes its spool writer, which folds the
    /// deletes into its next append commit (two connections writing one file would make each
    /// wait for the other's lock, and SQLite's busy wait sleeps in steps of milliseconds, which
    /// answers would feel); anything else may pass the backend itself.
    /// `handoffSignaturesChecked`: see the property.
    public init(
        backend: Backend, deleter: any SpoolEntryDeleter, handoff: SpoolHandoff? = nil, handoffSignaturesChecked: Bool = false,
        doorbell: Doorbell, maxItemBytes: Int
    ) {
        self.backend = backend
        self.deleter = deleter
        self.handoff = handoff
        self.handoffSignaturesChecked = handoffSignaturesChecked
        self.doorbell = doorbell
        self.maxItemBytes = maxItemBytes
    }

    /// Rouses a wait for new entries: the runner then sees its control's stop at once.
    public func wake() { doorbell.ring() }

    /// Finishes the batch in hand and takes nothing more (graceful shutdown).
    public func stop() {
        stopping.store(true, ordering: .relaxed)
        doorbell.ring()
    }

    /// Why the spool's file is no longer where it was opened, or nil (`SpoolBackend.fileProblem`).
    public var spoolFileProblem: String? { backend.fileProblem() }

    /// `stop` was called.
    public var isStopping: Bool { stopping.load(ordering: .relaxed) }

    /// Up to `batchLimit` entries after the last taken, oldest first; when there are none it
    /// waits on the doorbell, and returns an idle batch (so the runner commits) once `idleWait`
    /// has passed without any; nil once stopped.
    public func nextBatch(control: RunControl) async throws -> InputBatch? {
        // A spool whose file was deleted is drained to its end whatever is asked: what it holds
        // is in no other file, and is gone when this process ends.
        let gone = backend.fileProblem()
        if gone == nil && (control.isStopRequested || isStopping || Task.isCancelled) { finished = true; return nil }
        var (entries, handedOver) = try fetch(afterWait: false)
        if entries.isEmpty, let gone {
            fileGone = gone
            finished = true
            return nil
        }
        if entries.isEmpty {
            // The writer rings after every group it commits, and under load the worker often
            // takes a group before it waits for that group's ring. Such a ring ends the next wait
            // with nothing new, so only a spool quiet for the whole idle wait makes an idle
            // batch: each one makes the runner commit, and a commit of a few hundred keys writes
            // about a page per key.
            let deadline = ContinuousClock.now + Self.idleWait
            while true {
                await doorbell.wait(timeout: ContinuousClock.now.duration(to: deadline))
                let gone = backend.fileProblem()
                if gone == nil && (control.isStopRequested || isStopping || Task.isCancelled) { finished = true; return nil }
                (entries, handedOver) = try fetch(afterWait: true)
                if !entries.isEmpty { break }
                if let gone {
                    fileGone = gone
                    finished = true
                    return nil
                }
                if ContinuousClock.now >= deadline { return InputBatch(items: [], idle: true) }
            }
        }
        if let gather = backend.gatherFor, handedOver, entries.count < batchLimit / 2, !isStopping {
            // Every batch costs about the same whatever its size (`SpoolBackend.gatherFor`), so
            // a small one waits a moment for the next entries the writer hands over to join it.
            // Only those: a batch's entries all come one way, and what the server did for them
            // (`RawItem.prepared`) is said per batch. Entries read back from the file (after a
            // restart, or past the handoff's bound) come in full batches anyway.
            try? await Task.sleep(for: gather)
            let first = lastFetched
            lastFetched = entries.last!.seq
            let (more, moreHandedOver) = try fetch(afterWait: false)
            lastFetched = first
            if moreHandedOver { entries += more.prefix(batchLimit - entries.count) }
        }
        let checked = handedOver && handoffSignaturesChecked
        var items: [RawItem] = []
        items.reserveCapacity(entries.count)
        for entry in entries {
            let oversize = entry.item.count > maxItemBytes
            var item = RawItem(bytes: entry.item[...], source: SourcePosition(file: Self.sourceName, line: Int(entry.seq)), oversize: oversize)
            if checked || entry.body != nil { item.prepared = PreparedDelivery(body: entry.body, signatureChecked: checked) }
            items.append(item)
        }
        lastFetched = entries.last!.seq
        batchEnds.append((lastFetched, entries.count))
        taken.add(entries.count, ordering: .relaxed)
        return InputBatch(items: items, idle: false)
    }

    /// The entries after `lastFetched`: from the handoff when it holds the next ones, else from
    /// the backend (`handedOver` false, and no body). When the handoff says there is nothing
    /// newer, that is trusted once; after a wait the backend is read anyway, so an entry
    /// committed without passing through the handoff waits at most one idle wait.
    func fetch(afterWait: Bool) throws -> (entries: [SpoolHandoff.Entry], handedOver: Bool) {
        if let taken = handoff?.take(after: lastFetched, limit: batchLimit, maxBytes: Self.maxBatchBytes), !(taken.isEmpty && afterWait) {
            return (taken, true)
        }
        return (try backend.fetch(after: lastFetched, limit: batchLimit, maxBytes: Self.maxBatchBytes).map { ($0.seq, $0.item, nil) }, false)
    }

    /// The oldest batch handed out has left the pipeline: its entries are done once committed.
    public func batchFinished() {
        if let batch = batchEnds.popFirst() {
            finishedThrough = batch.end
            finishedCount += batch.count
        }
    }

    /// Skips (and deletes, through the backend) the entries the state file records as done:
    /// their work was committed before a crash kept their deletion from the spool. Call before
    /// the first batch, and before anything else writes the spool.
    @discardableResult
    public func skipDone(recordedIn state: StateStore) throws -> SpoolDoneEntries {
        // A spool in the state's own database deletes done entries with their work.
        guard backend.keepsProgressApart else { return .skipped(0) }
        guard let done = try state.spoolDoneThrough(), done > 0 else { return .skipped(0) }
        guard done <= (try backend.highestSeq()) else {
            try state.clearSpoolProgress()
            return .recordDropped(doneThrough: done)
        }
        lastFetched = max(lastFetched, done)
        finishedThrough = max(finishedThrough, done)
        recordedThrough = max(recordedThrough, done)
        deletedThrough = max(deletedThrough, done)
        return .skipped(try backend.delete(through: done))
    }

    /// Entries through `seq` are done already (a shared spool's lane, as its holder found it):
    /// never taken, whatever the handoff holds. Call before the first batch.
    public func skip(through seq: Int64) {
        lastFetched = max(lastFetched, seq)
        finishedThrough = max(finishedThrough, seq)
        recordedThrough = max(recordedThrough, seq)
        deletedThrough = max(deletedThrough, seq)
    }

    /// For the state file's transaction: entries through `finishedThrough` (now) are done.
    public func takePending() throws -> PendingWrite? {
        guard finishedThrough > recordedThrough else { return nil }
        let through = finishedThrough
        writingThrough = (through, finishedCount)
        finishedCount = 0
        return backend.progressWrite(doneThrough: through)
    }

    /// After the state file committed: the entries whose work is now remembered can go.
    public func pendingWritten() {
        guard let (through, count) = writingThrough else { return }
        writingThrough = nil
        recordedThrough = max(recordedThrough, through)
        unDeletedCount += count
        guard through > deletedThrough else { return }
        do {
            try deleter.deleteEntries(through: through)
        } catch {
            // Left in the spool: the next call covers them, and a restart skips them (`skipDone`).
            return
        }
        deletedThrough = through
        deleted.add(unDeletedCount, ordering: .relaxed)
        unDeletedCount = 0
    }

    /// The state file's transaction rolled back: those entries are recorded by the next one.
    public func pendingNotWritten() {
        guard let (_, count) = writingThrough else { return }
        writingThrough = nil
        finishedCount += count
    }
}

/// What `SpoolSource.skipDone` found.
public enum SpoolDoneEntries: Sendable, Equatable {
    /// This many entries were done but still in the spool, and are deleted now.
    case skipped(Int)
    /// The state file said entries through this one were done, but this spool never gave
    /// that number (the spool file was replaced): the record is dropped, nothing skipped.
    case recordDropped(doneThrough: Int64)
}
