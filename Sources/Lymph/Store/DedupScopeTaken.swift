/// An unnamed dedup stage whose keys, in this store, belong to another pipeline: its scope is
/// its key path, so two pipelines sharing a store would drop each other's events as duplicates.
public struct DedupScopeTaken: Error, Sendable, CustomStringConvertible {
    /// The stage's name in this pipeline.
    public let stage: String
    /// What its keys are filed under (`dedup:PATH`).
    public let scope: String
    /// This pipeline's name, and the one the scope belongs to.
    public let pipeline: String
    public let owner: String

    public var description: String {
        "stage '\(stage)': this store's dedup keys under '\(scope.cutForMessage())' belong to pipeline '\(owner.cutForMessage())', "
            + "so pipeline '\(pipeline.cutForMessage())' would drop its events as duplicates of that pipeline's. Give this pipeline a state file "
            + "of its own, or the stage a name: of its own (its keys then start empty). To share that pipeline's keys on purpose, or to keep "
            + "them when this is that pipeline renamed, give the stage name: \(scope.cutForMessage())"
    }

    /// The unnamed dedup stages of `spec` that keep keys in a store: their names and scopes.
    static func unnamedScopes(of spec: PipelineSpec) -> [(stage: String, scope: String)] {
        spec.stages.compactMap { entry in
            guard !entry.hasExplicitName, let dedup = entry.spec as? DedupSpec, !dedup.inMemory else { return nil }
            return (entry.name, dedup.scope(stageName: entry.name, hasExplicitName: false))
        }
    }

    /// Claims the scopes of `spec`'s unnamed dedup stages in `store` (SQLite or PostgreSQL), all
    /// or none; throws for the first that another pipeline's is.
    static func claim(_ spec: PipelineSpec, in store: StateStore) throws {
        let scopes = unnamedScopes(of: spec)
        if scopes.isEmpty { return }
        let names = scopes.map(\.scope)
        let taken: (index: Int, owner: String)?
        if let postgres = store.postgres {
            let pipeline = spec.name
            taken = try postgres.blocking { try await postgres.claimDedupScopes(names, pipeline: pipeline) }
        } else {
            taken = try store.claimDedupScopes(names, pipeline: spec.name)
        }
        if let (index, owner) = taken {
            throw DedupScopeTaken(stage: scopes[index].stage, scope: scopes[index].scope, pipeline: spec.name, owner: owner)
        }
    }

    /// A scope found another pipeline's inside a PostgreSQL transaction (thrown to roll it back).
    struct Found: Error {
        let index: Int
        let owner: String
    }
}
