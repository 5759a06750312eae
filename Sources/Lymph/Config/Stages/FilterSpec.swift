/// `filter`: passes the events that match `types:` and `match:` (either or both) and drops the
/// rest.
public struct FilterSpec: StageSpec {
    /// The `types:` and `match:` options, as one condition.
    public var condition: Condition

    /// The condition, as it reads in the file.
    public var summary: String { condition.description }

    /// The stage; it needs nothing from the environment.
    public func build(_ env: StageBuildEnvironment) throws -> any Stage {
        FilterStage(condition: condition)
    }

    static let kind = StageKind(name: "filter", optionKeys: ["types", "match"]) { m, d in
        guard let condition = ConditionParser.typesAndMatch(m, &d) else {
            if m["types"] == nil && m["match"] == nil { d.error("filter needs 'types:' and/or 'match:'", at: m.owner) }
            return nil
        }
        return FilterSpec(condition: condition)
    }
}
