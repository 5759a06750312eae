import GRDB

/// Where a run's items come from: files and stdin (`ItemReader`) or the HTTP spool
/// (`SpoolSource`). The runner asks for batches, says when each has left the pipeline, and lets
/// the source write in the same store transaction as the stages (the spool deletes its
/// finished entries there, so an entry goes exactly when its event's work is committed).
public protocol ItemSource: AnyObject {
    /// The next batch; an empty one (`idle`) when nothing came for a while; nil at the end.
    func nextBatch(control: RunControl) async throws -> InputBatch?
    /// Every item was read (the run was not cut short).
    var finished: Bool { get }
    /// The oldest batch not yet reported has left the pipeline (called in batch order).
    func batchFinished()
    /// Inside the runner's store transaction.
    func writePending(_ db: Database) throws
    /// After that transaction committed.
    func pendingWritten()
}

extension ItemSource {
    /// Nothing to do, for a source that keeps no position.
    public func batchFinished() {}
    /// Nothing to write, for a source that keeps no position.
    public func writePending(_ db: Database) throws {}
    /// Nothing to do, for a source that keeps no position.
    public func pendingWritten() {}
}

extension ItemReader: ItemSource {
    /// The next batch, as `nextBatch(control:)` reads it.
    public func nextBatch(control: RunControl) async throws -> InputBatch? {
        try nextBatch(control: Optional(control))
    }

    /// The oldest batch handed out has left the pipeline: its items count as done once committed.
    public func batchFinished() {
        checkpoint?.batchFinished()
    }

    /// Records how far the run got over its files, in the runner's transaction (when continuing
    /// interrupted runs).
    public func writePending(_ db: Database) throws {
        guard let checkpoint else { return }
        checkpoint.complete = finished
        try checkpoint.write(db)
    }

    /// The recorded position is committed.
    public func pendingWritten() {
        checkpoint?.written()
    }
}
