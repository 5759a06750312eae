/// A stage as configured: validated options, ready to be built into a running `Stage`.
///
/// Building is separate from reading the file so that `lymph check` validates everything
/// without opening stores, files or secrets.
public protocol StageSpec: Sendable {
    /// A one-line description of the options, for `lymph check`.
    var summary: String { get }
    /// Whether the stage keeps state in the pipeline's store.
    var usesStore: Bool { get }
    /// Secrets the stage will read when built (checked by `lymph check` as warnings).
    var secrets: [SecretReference] { get }
    func build(_ environment: StageBuildEnvironment) throws -> any Stage
}

extension StageSpec {
    /// No store unless the stage says so.
    public var usesStore: Bool { false }
    /// No secrets unless the stage says so.
    public var secrets: [SecretReference] { [] }
}

/// What a stage may use while it is being built.
public struct StageBuildEnvironment: Sendable {
    /// The pipeline's name, as `PipelineSpec.name`.
    public let pipelineName: String
    /// The stage's `name:`, else `KIND-N`, N its place in the stage list counting parse as 1.
    public let stageName: String
    /// Whether the stage's name was written in the file (rather than defaulted).
    public let hasExplicitName: Bool
    /// The stage's place among the stages after parse, counting from 1.
    public let stageIndex: Int
    /// The pipeline's open store; nil when it has none (no stage keeps state and none was asked
    /// for).
    public let store: StateStore?
    /// The pipeline's one ticket book (present with a store): every stage that opens tickets
    /// shares it, so two stages never open the same job twice in one commit.
    public let tickets: TicketBook?
    /// The pipeline's output files, so that stages writing to the same path share one.
    public let sinks: SinkRegistry
    /// The environment secrets and plugin variables are read from.
    public let environment: [String: String]
    /// When the pipeline was built, in seconds since 1970.
    public let now: Double
    /// The pipeline's clock (`Pipeline.clock`), for a stage that looks at the time outside a batch.
    public let clock: @Sendable () -> Double
}

/// A stage line of a pipeline file: common options plus the kind's own.
public struct StageEntry: Sendable {
    /// The stage's kind, the key it is written under (`dedup`, `exec`, ...).
    public let kind: String
    /// The stage's `name:`, else `KIND-N`, N its place in the stage list counting parse as 1.
    public let name: String
    /// Whether the stage's name was written in the file (rather than defaulted).
    public let hasExplicitName: Bool
    /// The line of the stage's kind in the file, counted from 1.
    public let line: Int
    /// The column of the stage's kind, counted from 1.
    public let column: Int
    /// Events that do not match skip the stage unchanged.
    public let when: Condition?
    /// The kind's own options, read and validated.
    public let spec: any StageSpec
}

/// One kind of built-in stage: its name, its option keys and how to read them.
struct StageKind: Sendable {
    /// The key a stage of this kind is written under.
    let name: String
    /// The keys of this kind's own options (`name` and `when` are common to every stage).
    let optionKeys: [String]
    /// Reads the options into a spec; nil, with the problems in the diagnostics, when they are not
    /// usable.
    let configure: @Sendable (ConfigMapping, inout ConfigDiagnostics) -> (any StageSpec)?

    init(name: String, optionKeys: [String], configure: @escaping @Sendable (ConfigMapping, inout ConfigDiagnostics) -> (any StageSpec)?) {
        self.name = name
        self.optionKeys = optionKeys
        self.configure = configure
    }
}
