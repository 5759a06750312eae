/// A pipeline file, read and validated: nothing opened yet.
public struct PipelineSpec: Sendable {
    /// `pipeline:`, else the file's name without its extension: shown in summaries and messages,
    /// and the default state and dead-letter file names.
    public var name: String
    /// The pipeline file's path, as given.
    public var file: String
    /// Path of the SQLite store, or nil for `state: memory` (and for PostgreSQL).
    public var statePath: String?
    /// `state: {postgres: ...}`: the state in a shared PostgreSQL database instead.
    public var postgres: PostgresStateSpec?
    /// `-` (stdout), a file path, or nil for `none`.
    public var output: String?
    /// Where rejected events go: a file path, `-` or `stderr` (`.lymph/NAME.dead.ndjson` by
    /// default).
    public var deadLetter: String
    /// The parse stage every pipeline starts with, as configured by its `parse` entry.
    public var parse: ParseStage
    /// The stages after parse, in order.
    public var stages: [StageEntry]
    /// `serve:`: how `lymph serve` takes this pipeline's webhooks.
    public var serve = ServeSettings()
    /// Stage by stage, the IMMUNE types that can reach it and the fields it reads (`lymph check --explain`).
    public var flow: [StageFlow] = []

    /// Whether a verify stage checks every event's signature.
    public var verifiesSignatures: Bool { stages.contains { $0.kind == "verify" } }

    /// Whether the file has a `serve:` section: it is meant for `lymph serve`.
    public var declaresServe = false

    /// Whether the file names its state (`state:` with a file or PostgreSQL, not `memory`): such a
    /// store is opened whatever the stages keep, for the lengths of the output files, how far the
    /// inputs were read and the replays done. The default store is opened only for a stage that
    /// keeps state, so a pipeline that keeps none and names none takes no store and no lock.
    public var namesState = false

    /// Said by `lymph check` (a warning for a pipeline with `serve:`, a note for one that reads
    /// files) and refused by `lymph serve` (unless `--allow-unsigned`).
    public static let unsignedWarning =
        "the pipeline has no verify stage: it accepts unsigned events, and lymph serve refuses it unless started with --allow-unsigned"

    /// Whether any stage keeps state in the store.
    public var usesStore: Bool { stages.contains { $0.spec.usesStore } }
}
