import ArgumentParser
import Foundation
import Lymph

struct CheckCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "check",
        abstract: "Validate pipeline files without running them.",
        discussion: """
            Prints every error as FILE:LINE:COLUMN: message and exits 2; with none, prints the stages in order and \
            exits 0. The pipeline is also read against IMMUNE's four event types and their payloads, following \
            which types reach each stage (filter, when, and the maintenance.scheduled events schedule_maintenance \
            emits): a type no event has, a path no event reaching the stage has, a comparison with a value of \
            another JSON type, two writers on stdout and a side effect that sees emitted and source events alike \
            are warnings (FILE:LINE:COLUMN: warning: ...), which do not change the exit status unless --strict. \
            A pipeline without a verify stage gets a warning when it has a serve: section, and a note (never an \
            error, even with --strict) when it only reads files.
            """
    )

    @Argument(help: "Pipeline files to check.", completion: .pipelineFile)
    var pipelines: [String]

    @Flag(help: "Treat warnings as errors (exit 2).")
    var strict = false

    @Flag(help: "For each stage, print the IMMUNE event types that can reach it and the fields it reads.")
    var explain = false

    func run() async throws {
        var failed = false
        for path in pipelines {
            let (spec, diagnostics) = PipelineLoader.load(checking: path)
            for item in diagnostics { Console.error(item.description) }
            guard let spec, !diagnostics.contains(where: { $0.severity == .error }) else {
                failed = true
                continue
            }
            let warnings = diagnostics.filter { $0.severity == .warning }.count
            if strict && warnings > 0 {
                Console.error("\(path): \(warnings) warning\(warnings == 1 ? "" : "s") (--strict: an error)")
                failed = true
                continue
            }
            print("\(path): pipeline '\(spec.name)' is valid")
            print("  state: \(spec.postgres?.description ?? spec.statePath ?? "memory")   output: \(spec.output ?? "none")   dead letters: \(spec.deadLetter)")
            let rows =
                [("1", spec.parse.name, "parse", "max_bytes \(spec.parse.maxBytes)")]
                + spec.stages.enumerated().map { (String($0 + 2), $1.name, $1.kind, ($1.when.map { "when \($0); " } ?? "") + $1.spec.summary) }
            let nameWidth = rows.map(\.1.count).max() ?? 0
            let kindWidth = max(8, rows.map(\.2.count).max() ?? 0)
            for (n, name, kind, summary) in rows {
                print(
                    "  \(n.leftPadded(2)). \(name.padding(toLength: nameWidth, withPad: " ", startingAt: 0))  \(kind.padding(toLength: kindWidth, withPad: " ", startingAt: 0))  \(summary)"
                )
            }
            if explain {
                print("  what reaches each stage (IMMUNE types) and what it reads:")
                for stage in spec.flow {
                    let types = stage.types.map { $0.isEmpty ? "none" : $0.joined(separator: ", ") } ?? "unknown (a plugin upstream replaces events)"
                    let reads = stage.reads.isEmpty ? "" : "; reads \(stage.reads.joined(separator: ", "))"
                    print("    \(stage.name.padding(toLength: nameWidth, withPad: " ", startingAt: 0))  \(types)\(reads)")
                }
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
