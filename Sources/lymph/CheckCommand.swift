import ArgumentParser
import Foundation
import Lymph

struct CheckCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "check",
        abstract: "Validate pipeline files without running them.",
        discussion: "Prints every error as FILE:LINE:COLUMN: message and exits 2; with none, prints the stages in order and exits 0."
    )

    @Argument(help: "Pipeline files to check.", completion: .pipelineFile)
    var pipelines: [String]

    func run() async throws {
        var failed = false
        for path in pipelines {
            let (spec, diagnostics) = PipelineLoader.load(checking: path)
            for item in diagnostics { Console.error(item.description) }
            guard let spec, !diagnostics.contains(where: { $0.severity == .error }) else {
                failed = true
                continue
            }
            print("\(path): pipeline '\(spec.name)' is valid")
            print("  state: \(spec.statePath ?? "memory")   output: \(spec.output ?? "none")   dead letters: \(spec.deadLetter)")
            let rows = [("1", spec.parse.name, "parse", "max_bytes \(spec.parse.maxBytes)")]
                + spec.stages.enumerated().map { (String($0 + 2), $1.name, $1.kind, ($1.when.map { "when \($0); " } ?? "") + $1.spec.summary) }
            let nameWidth = rows.map(\.1.count).max() ?? 0
            for (n, name, kind, summary) in rows {
                print("  \(n.leftPadded(2)). \(name.padding(toLength: nameWidth, withPad: " ", startingAt: 0))  \(kind.padding(toLength: 8, withPad: " ", startingAt: 0))  \(summary)")
            }
        }
        if failed { throw ExitCode(2) }
    }
}

extension String {
    func leftPadded(_ width: Int) -> String {
        count >= width ? self : String(repeating: " ", count: width - count) + self
    }
}
