/// Every built-in stage kind. A new built-in stage adds its `StageKind` here.
public enum StageCatalog {
    public static let kinds: [StageKind] = [
        StageKind(name: "parse", optionKeys: ["max_bytes"]) { _, _ in nil },  // read by PipelineLoader
        VerifySpec.kind,
        DedupSpec.kind,
        FilterSpec.kind,
        LogSpec.kind,
        ScheduleMaintenanceSpec.kind,
        TrackSensorsSpec.kind,
        ExecSpec.kind,
    ]

    public static let names = kinds.map(\.name)

    public static func kind(named name: String) -> StageKind? {
        kinds.first { $0.name == name }
    }
}
