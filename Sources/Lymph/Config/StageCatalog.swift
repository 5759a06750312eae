/// Every built-in stage kind. A new built-in stage adds its `StageKind` here.
enum StageCatalog {
    /// Every kind, `parse` among them for its option keys only: `PipelineLoader` reads parse
    /// itself.
    static let kinds: [StageKind] = [
        StageKind(name: "parse", optionKeys: ["max_bytes"]) { _, _ in nil },  // read by PipelineLoader
        VerifySpec.kind,
        DedupSpec.kind,
        FilterSpec.kind,
        LogSpec.kind,
        ScheduleMaintenanceSpec.kind,
        TrackSensorsSpec.kind,
        ExecSpec.kind,
        HTTPSpec.kind,
    ]

    /// The kinds' names, for suggestions when a stage name is misspelt.
    static let names = kinds.map(\.name)

    /// The kind called `name` in a pipeline file, or nil when there is none.
    static func kind(named name: String) -> StageKind? {
        kinds.first { $0.name == name }
    }
}
