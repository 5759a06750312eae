import GRDB

/// How far `lymph serve`'s spool is done (`lymph_spool_progress`), kept in the state file and
/// written in the runner's transaction, so it always matches the committed work. The spool's
/// own deletes commit later, in the spool file: after a crash in between, the worker skips
/// the entries this says are done. `lymph spool` reads the table to tell done entries from
/// pending ones.
extension StateStore {
    /// Spool entries through `seq` are done: their work is committed in this transaction.
    static func recordSpoolProgress(_ db: Database, doneThrough seq: Int64) throws {
        try db.cachedStatement(
            sql: """
                INSERT INTO lymph_spool_progress (id, done_through) VALUES (1, ?)
                ON CONFLICT (id) DO UPDATE SET done_through = excluded.done_through
                """
        ).execute(arguments: [seq])
    }

    /// The last spool entry whose work is committed, or nil when none is recorded.
    public func spoolDoneThrough() throws(StoreError) -> Int64? {
        try read { db in try Int64.fetchOne(db, sql: "SELECT done_through FROM lymph_spool_progress WHERE id = 1") }
    }

    /// Forgets the spool's progress (the spool it counted is gone).
    func clearSpoolProgress() throws(StoreError) {
        try write { db in try db.execute(sql: "DELETE FROM lymph_spool_progress") }
    }
}
