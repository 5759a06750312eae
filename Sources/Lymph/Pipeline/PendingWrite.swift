import GRDB

/// What one participant of a run (a stage, the source, the output ledger, the replay ledger)
/// set aside for the next store transaction, taken on the runner's ordered path and written
/// later, on the commit thread, while the next batches go on.
///
/// It holds values, not references to the participant's state: work finished after it was taken
/// is not in it (that work's output lines may not be written yet), and belongs to the next
/// transaction.
public struct PendingWrite: Sendable {
    private let body: @Sendable (Database) throws -> Void

    /// A write of `body`, which must capture only values.
    public init(_ body: @escaping @Sendable (Database) throws -> Void) {
        self.body = body
    }

    /// Writes, inside the runner's transaction.
    public func write(_ db: Database) throws {
        try body(db)
    }
}
