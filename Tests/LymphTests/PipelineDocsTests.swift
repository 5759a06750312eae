import Foundation
@testable import Lymph
import Testing

/// docs/pipeline.md and docs/serve.md against the loader's own lists: a stage, an option, a
/// top-level key, a `serve:` setting or a `match` operator that the code accepts and the page
/// does not name fails here.
@Suite("Pipeline docs cover every option")
struct PipelineDocsTests {
    static let repository = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent()

    static func page(_ relative: String) -> String {
        (try? String(contentsOf: repository.appendingPathComponent(relative), encoding: .utf8)) ?? ""
    }

    /// The text under the first heading that names `` `title` `` (any level; with `heading`,
    /// that holds `title` as plain text), up to the next heading of the same or a higher level.
    static func section(named title: String, heading plain: Bool = false, in text: String) -> String? {
        let mark = plain ? title : "`\(title)`"
        let lines = text.split(separator: "\n", omittingEmptySubsequences: false)
        func level(_ line: Substring) -> Int? {
            let hashes = line.prefix { $0 == "#" }.count
            return hashes > 0 && line.dropFirst(hashes).first == " " ? hashes : nil
        }
        guard let start = lines.firstIndex(where: { level($0) != nil && $0.contains(mark) }), let depth = level(lines[start]) else {
            return nil
        }
        let end = lines[(start + 1)...].firstIndex { level($0).map { $0 <= depth } ?? false } ?? lines.endIndex
        return lines[start..<end].joined(separator: "\n")
    }

    /// The options of a stage of this kind described in its own section: its kind's, and for
    /// `parse` its `name` (the options every other stage takes are described once, below).
    static func options(of kind: StageKind) -> [String] {
        kind.name == "parse" ? kind.optionKeys + ["name"] : kind.optionKeys
    }

    @Test("the options every stage takes are described once, before the first stage's section")
    func commonOptions() throws {
        let stages = try #require(Self.section(named: "Stages", heading: true, in: Self.page("docs/pipeline.md")), "docs/pipeline.md has no \"Stages\" heading")
        let intro = stages.components(separatedBy: "\n### ").first ?? ""
        for option in PipelineLoader.commonStageKeys {
            #expect(intro.contains("`\(option)`"), "docs/pipeline.md, \"Stages\": option `\(option)` (taken by every stage) is not described")
        }
    }

    @Test("every stage kind has a section in docs/pipeline.md naming each of its options", arguments: StageCatalog.kinds.map(\.name))
    func stageOptions(_ name: String) throws {
        let kind = try #require(StageCatalog.kind(named: name))
        let section = try #require(
            Self.section(named: name, in: Self.page("docs/pipeline.md")),
            "docs/pipeline.md has no heading naming `\(name)`")
        for option in Self.options(of: kind) {
            #expect(section.contains("`\(option)`"), "docs/pipeline.md, section `\(name)`: option `\(option)` is not described")
        }
    }

    @Test("the keys under schedule_maintenance's fields are in its section")
    func maintenanceFields() throws {
        let section = try #require(Self.section(named: "schedule_maintenance", in: Self.page("docs/pipeline.md")))
        for key in ScheduleMaintenanceSpec.fieldKeys {
            #expect(section.contains("`\(key)`"), "docs/pipeline.md, section `schedule_maintenance`: fields key `\(key)` is not described")
        }
    }

    @Test("every top-level key of a pipeline file is in docs/pipeline.md")
    func topLevelKeys() {
        let text = Self.page("docs/pipeline.md")
        for key in PipelineLoader.topLevelKeys {
            #expect(text.contains("`\(key)`"), "docs/pipeline.md does not describe the top-level key `\(key)`")
        }
    }

    @Test("every match operator and combinator is in docs/pipeline.md's conditions")
    func matchOperators() throws {
        let section = try #require(Self.section(named: "match", in: Self.page("docs/pipeline.md")), "docs/pipeline.md has no heading naming `match`")
        for op in ConditionParser.operators + ConditionParser.combinators {
            #expect(section.contains("`\(op)`"), "docs/pipeline.md, conditions: operator `\(op)` is not described")
        }
    }

    @Test("every key of the serve: section is in docs/serve.md")
    func serveKeys() throws {
        let section = try #require(Self.section(named: "serve:", in: Self.page("docs/serve.md")), "docs/serve.md has no heading naming `serve:`")
        for key in ServeSettings.keys {
            #expect(section.contains("`\(key)`"), "docs/serve.md, section `serve:`: setting `\(key)` is not described")
        }
    }

    @Test("the section finder stops at the next heading of the same level")
    func sectionFinder() {
        let text = "# Top\n## `a`\nx `k`\n### sub\ny\n## `b`\nz\n"
        #expect(Self.section(named: "a", in: text) == "## `a`\nx `k`\n### sub\ny")
        #expect(Self.section(named: "b", in: text) == "## `b`\nz\n")
        #expect(Self.section(named: "c", in: text) == nil)
    }
}
