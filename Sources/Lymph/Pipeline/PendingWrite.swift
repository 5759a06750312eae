import GRDB
import PostgresNIO

/// What one participant of a run (a stage, the source, the output ledger, the replay ledger)
/// set aside for the next store transaction, taken on the runner's ordered path and written
/// later, on the commit thread, while the next batches go on.
///
/// It holds values, not references to the participant's state: work finished after it was taken
/// is not in it (that work's output lines may not be written yet), and belongs to the next
/// transaction. A participant writes for the store it has: SQLite (`init(_:)`) or PostgreSQL
/// (`init(postgres:)`).
public struct PendingWrite: Sendable {
    private let sqlite: (@Sendable (Database) throws -> Void)?
    private let postgres: (@Sendable (PostgresConnection) async throws -> Void)?

    /// A write of `body` to SQLite, which must capture only values.
    public init(_ body: @escaping @Sendable (Database) throws -> Void) {
        sqlite = body
        postgres = nil
    }

    /// A write of `body` to PostgreSQL, which must capture only values.
    public init(postgres body: @escaping @Sendable (PostgresConnection) async throws -> Void) {
        sqlite = nil
        postgres = body
    }

    /// The store of the write does not match the transaction's: a participant built for one
    /// store ran over the other.
    struct WrongStore: Error, CustomStringConvertible {
        var description: String { "a write for one kind of store reached the other's transaction" }
    }

    /// Writes, inside the runner's SQLite transaction.
    public func write(_ db: Database) throws {
        guard let sqlite else { throw WrongStore() }
        try sqlite(db)
    }

    /// Writes, inside the runner's PostgreSQL transaction.
    public func write(_ connection: PostgresConnection) async throws {
        guard let postgres else { throw WrongStore() }
        try await postgres(connection)
    }
}
