import PostgresNIO

/// Which pipeline each unnamed dedup stage's scope belongs to, in PostgreSQL (see
/// `DedupScopeTaken`).
extension PostgresState {
    /// Claims scope `name` for `pipeline`: nil when it is that pipeline's (or was no pipeline's
    /// until now), else the name of the pipeline it belongs to.
    func claimDedupScope(_ name: String, pipeline: String) async throws(StoreError) -> String? {
        let (table, logger) = (database.table("lymph_dedup_scopes"), database.logger)
        return try await database.perform("cannot claim dedup scope") { client in
            let rows = try await client.query(
                """
                WITH added AS (
                    INSERT INTO \(unescaped: table) (scope, pipeline) VALUES (\(name), \(pipeline))
                    ON CONFLICT (scope) DO NOTHING RETURNING pipeline
                )
                SELECT pipeline FROM added UNION ALL SELECT pipeline FROM \(unescaped: table) WHERE scope = \(name)
                """, logger: logger)
            var owner: String?
            for try await found in rows.decode(String.self) where owner == nil { owner = found }
            return owner == pipeline ? nil : owner
        }
    }

    /// Claims the scope of each unnamed dedup stage of `spec` that keeps its keys here; throws
    /// for one that another pipeline's is.
    public func claimDedupScopes(of spec: PipelineSpec) async throws {
        for entry in spec.stages where !entry.hasExplicitName {
            guard let dedup = entry.spec as? DedupSpec, !dedup.inMemory else { continue }
            let scope = dedup.scope(stageName: entry.name, hasExplicitName: false)
            if let owner = try await claimDedupScope(scope, pipeline: spec.name) {
                throw DedupScopeTaken(stage: entry.name, scope: scope, pipeline: spec.name, owner: owner)
            }
        }
    }
}
