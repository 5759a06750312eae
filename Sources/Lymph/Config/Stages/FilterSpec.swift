public struct FilterSpec: StageSpec {
    public var condition: Condition

    public var summary: String { condition.description }

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
