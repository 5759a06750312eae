/// A step of a pipeline: receives a batch of events in order, says what became of each.
///
/// The runner owns everything around a stage: `when:` conditions (a stage only sees events that
/// match), counting, dead letters, ordering and the store commit at the end of the batch. A stage
/// that throws stops the whole run (exit 3); a problem with one event is a `.fail` outcome instead.
public protocol Stage: Sendable {
    /// Whether several batches may be inside this stage at once, on different threads.
    /// Stages holding state that depends on batch order (dedup) must say false.
    var runsConcurrently: Bool { get }

    /// One outcome per input event, in the same order.
    func process(_ events: [Event], context: StageContext) async throws -> [StageOutcome]

    /// Called, in batch order, once every event of a batch has left the pipeline (written out,
    /// dropped or dead-lettered) and outputs are flushed. Work that may now be remembered is
    /// set aside here for the next `takePending`.
    func batchDidFinish(_ batch: FinishedBatch) throws

    /// Takes what was set aside, as a write for the runner's store transaction: every stage
    /// writes in the same transaction, so dedup keys and the actions of their events commit
    /// together. The runner groups batches into one transaction (`commitGroup` events or one second)
    /// and writes it on its commit thread while later batches go on: what was taken stays
    /// claimed in memory (duplicates are still caught) until `pendingWritten`. At most one
    /// transaction is in flight; the runner calls `pendingWritten` or `pendingNotWritten` for it
    /// before it takes the next. Called on the ordered path (with a store only).
    func takePending() throws -> PendingWrite?

    /// Events the runner's commit groups should hold for this stage, at the least: the runner
    /// commits every `max` of its stages' (or after a second). A stage whose every commit
    /// rewrites all it changed since the last (tickets, sensors: a cost that grows with the
    /// fleet, not with the events) asks for more than the default, whose cost is memory.
    var commitGroup: Int { get }

    /// Called after that transaction committed (also when the pipeline has no store).
    func pendingWritten()

    /// Called when that transaction failed and rolled back: what `takePending` took is to be
    /// written by the next one.
    func pendingNotWritten()

    /// Called once when the run has read its input to the end, after the last batch and before
    /// `finish`; not when a signal stopped it first, since a later run continues that input.
    func inputEnded() async throws

    /// Called once at the end of the run, after the last batch; flush and close here.
    func finish() async throws
}

extension Stage {
    /// Concurrent unless the stage says otherwise.
    public var runsConcurrently: Bool { true }
    /// Nothing to set aside, for a stage that keeps no state.
    public func batchDidFinish(_ batch: FinishedBatch) throws {}
    /// Nothing to write, for a stage that keeps no state.
    public func takePending() throws -> PendingWrite? { nil }
    /// The runner's default (`PipelineRunner.commitEvery`).
    public var commitGroup: Int { PipelineRunner.commitEvery }
    /// Nothing to do, for a stage that keeps no state.
    public func pendingWritten() {}
    /// Nothing to take back, for a stage that keeps no state.
    public func pendingNotWritten() {}
    /// Nothing to judge at the end of the input.
    public func inputEnded() async throws {}
    /// Nothing to flush or close.
    public func finish() async throws {}
}

/// What a stage decided for one event.
public enum StageOutcome: Sendable {
    /// The event goes on unchanged.
    case pass
    /// The event goes on unchanged, holding this dedup claim until it leaves the pipeline.
    case claim(DedupClaim)
    /// The event is replaced by these (zero or more) events, which go on in this order.
    case replace([Event])
    /// The event stops here, counted under `reason` (not an error).
    case drop(reason: String)
    /// The event is rejected: it goes to the dead letters with this reason and message.
    case fail(reason: String, message: String)
}

/// What a stage may know about where it runs.
public struct StageContext: Sendable {
    /// The pipeline's name.
    public let pipeline: String
    /// The stage's `name:`, else its default `KIND-N`.
    public let stageName: String
    /// The stage's place among the stages after parse, counting from 1.
    public let stageIndex: Int
    /// Wall-clock time the batch started this stage, seconds since the epoch.
    public let now: Double
    /// The run's control: whether, and since when, it is asked to stop (nil outside a run).
    public var control: RunControl? = nil
}

/// The events of a batch that left the pipeline, handed to `Stage.batchDidFinish`.
public struct FinishedBatch: Sendable {
    /// Claims of events that were written out or dropped: the work on them is done.
    public let completed: [DedupClaim]
    /// Claims of events that went to the dead letters: not done, to be processed again.
    public let failed: [DedupClaim]
    /// When the batch left the pipeline, in seconds since 1970.
    public let now: Double
}
