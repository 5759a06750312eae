import PostgresNIO

/// Which pipeline each unnamed dedup stage's scope belongs to, in PostgreSQL (see
/// `DedupScopeTaken`).
extension PostgresState {
    /// Claims every scope of `names` for `pipeline`, in one transaction, or none: the index of
    /// the first that another pipeline's is, with that pipeline's name (nil when all are this
    /// pipeline's, or were no pipeline's until now). The upsert locks each row, so two pipelines
    /// claiming a scope at once see one owner.
    func claimDedupScopes(_ names: [String], pipeline: String) async throws(StoreError) -> (index: Int, owner: String)? {
        let (table, logger) = (database.table("lymph_dedup_scopes"), database.logger)
        return try await database.perform("cannot claim dedup scopes") { client -> (index: Int, owner: String)? in
            do {
                try await client.withTransaction(logger: logger) { conn in
                    // In one order whatever the pipeline's: two pipelines claiming scopes they share
                    // wait for each other instead of deadlocking.
                    for (n, name) in names.enumerated().sorted(by: { $0.element < $1.element }) {
                        let rows = try await conn.query(
                            """
                            INSERT INTO \(unescaped: table) (scope, pipeline) VALUES (\(name), \(pipeline))
                            ON CONFLICT (scope) DO UPDATE SET scope = excluded.scope RETURNING pipeline
                            """, logger: logger)
                        var owner: String?
                        for try await found in rows.decode(String.self) where owner == nil { owner = found }
                        if let owner, owner != pipeline {
                            // Rolls the claims of this transaction back.
                            throw DedupScopeTaken.Found(index: n, owner: owner)
                        }
                    }
                }
                return nil
            } catch let failed as PostgresTransactionError {
                // The claims are rolled back; the transaction's error carries what was found.
                guard let found = failed.closureError as? DedupScopeTaken.Found, failed.rollbackError == nil else { throw failed }
                return (found.index, found.owner)
            }
        }
    }
}
