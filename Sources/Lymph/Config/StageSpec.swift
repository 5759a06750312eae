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
    public var usesStore: Bool { false }
    public var secrets: [SecretReference] { [] }
}

/// What a stage may use while it is being built.
public struct StageBuildEnvironment: Sendable {
    public let pipelineName: String
    public let stageName: String
    /// Whether the stage's name was written in the file (rather than defaulted).
    public let hasExplicitName: Bool
    public let stageIndex: Int
    public let store: StateStore?
    /// The pipeline's one ticket book (present with a store): every stage that opens tickets
    /// shares it, so two stages never open the same job twice in one commit.
    public let tickets: TicketBook?
    public let sinks: SinkRegistry
    public let environment: [String: String]
    public let now: Double
}

/// A stage line of a pipeline file: common options plus the kind's own.
public struct StageEntry: Sendable {
    public let kind: String
    public let name: String
    public let hasExplicitName: Bool
    public let line: Int
    public let column: Int
    /// Events that do not match skip the stage unchanged.
    public let when: Condition?
    public let spec: any StageSpec
}

/// One kind of built-in stage: its name, its option keys and how to read them.
public struct StageKind: Sendable {
    public let name: String
    public let optionKeys: [String]
    public let configure: @Sendable (ConfigMapping, inout ConfigDiagnostics) -> (any StageSpec)?

    public init(name: String, optionKeys: [String], configure: @escaping @Sendable (ConfigMapping, inout ConfigDiagnostics) -> (any StageSpec)?) {
        self.name = name
        self.optionKeys = optionKeys
        self.configure = configure
    }
}
