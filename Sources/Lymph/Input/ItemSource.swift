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
    /// What to write in the runner's store transaction (taken on the ordered path, written on
    /// the commit thread; see `Stage.takePending`).
    func takePending() throws -> PendingWrite?
    /// After that transaction committed.
    func pendingWritten()
    /// That transaction failed and rolled back: what was taken is written by the next one.
    func pendingNotWritten()
}

extension ItemSource {
    /// Nothing to do, for a source that keeps no position.
    public func batchFinished() {}
    /// Nothing to write, for a source that keeps no position.
    public func takePending() throws -> PendingWrite? { nil }
    /// Nothing to do, for a source that keeps no position.
    public func pendingWritten() {}
    /// Nothing to take back, for a source that keeps no position.
    public func pendingNotWritten() {}
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

    /// How far the run got over its files, for the runner's transaction (when continuing
    /// interrupted runs).
    public func takePending() throws -> PendingWrite? {
        guard let checkpoint else { return nil }
        checkpoint.complete = finished
        return checkpoint.takePending()
    }

    /// The recorded position is committed.
    public func pendingWritten() {
        checkpoint?.written()
    }

    /// The recorded position is to be written again.
    public func pendingNotWritten() {
        checkpoint?.notWritten()
    }
}
