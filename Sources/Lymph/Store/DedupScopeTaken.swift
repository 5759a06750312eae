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
            + "of its own, or the stage a name: of its own (its keys then start empty); to share keys on purpose, give the dedup stages of both "
            + "pipelines the same name:"
    }
}
