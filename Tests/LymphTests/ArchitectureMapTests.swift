import Foundation
import Testing

/// docs/architecture.md's map of files ("Targets and files") against `Sources/`: every Swift file
/// is named under its folder, and every name in the map is a file.
@Suite("Architecture map")
struct ArchitectureMapTests {
    /// The map's files as `Sources/<target>/<folder>/<Name>.swift` paths.
    static func mappedFiles() -> Set<String> {
        let text = PipelineDocsTests.page("docs/architecture.md")
        guard let section = PipelineDocsTests.section(named: "Targets and files", heading: true, in: text),
            let open = section.range(of: "```text\n"),
            let close = section.range(of: "\n```", range: open.upperBound..<section.endIndex)
        else { return [] }
        var files = Set<String>()
        var target = "", folder = ""
        for line in section[open.upperBound..<close.lowerBound].split(separator: "\n") {
            let indent = line.prefix { $0 == " " }.count
            let first = line.split(separator: " ").first.map(String.init) ?? ""
            switch indent {
            case 0: target = first; folder = target
            case 2: folder = first == "(top)" ? target : target + first
            default: for name in line.split(separator: " ") { files.insert(folder + name + ".swift") }
            }
        }
        return files
    }

    static func sourceFiles() -> Set<String> {
        let root = PipelineDocsTests.repository.appendingPathComponent("Sources").path
        let all = FileManager.default.enumerator(atPath: root)?.compactMap { $0 as? String } ?? []
        return Set(all.filter { $0.hasSuffix(".swift") }.map { "Sources/" + $0 })
    }

    @Test("every Swift file under Sources is in the map, under its folder")
    func everyFileIsMapped() {
        let mapped = Self.mappedFiles()
        #expect(!mapped.isEmpty, "docs/architecture.md has no ```text map under \"Targets and files\"")
        for file in Self.sourceFiles().subtracting(mapped).sorted() {
            Issue.record("docs/architecture.md's map does not name \(file)")
        }
    }

    @Test("every file the map names exists")
    func everyMappedFileExists() {
        for file in Self.mappedFiles().subtracting(Self.sourceFiles()).sorted() {
            Issue.record("docs/architecture.md's map names \(file), which does not exist")
        }
    }
}
