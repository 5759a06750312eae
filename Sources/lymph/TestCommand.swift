import ArgumentParser
import Foundation
import Lymph

struct TestCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "test",
        abstract: "Run pipeline tests: NAME.test.yaml files of inputs and expected results.",
        discussion: """
            Finds *.test.yaml files under each path (recursively; the current folder by default) and runs their \
            tests, each on its own pipeline with state in memory, the file's now: as the clock, its secrets: and \
            stubs:, and the output, log stages and dead letters captured instead of written. Prints ok or FAIL \
            per test, and for a failure what was expected against what happened. Exit status: 0 every test \
            passed; 1 a test failed; 2 a broken test file (FILE:LINE:COLUMN: message), or nothing to run; 3 the \
            results could not be written to stdout. \
            See docs/testing-pipelines.md.
            """
    )

    enum Format: String, ExpressibleByArgument, CaseIterable { case text, json }

    @Argument(help: "Test files, or folders to search for *.test.yaml (default: the current folder).", completion: .file(extensions: ["yaml"]))
    var paths: [String] = []

    @Option(help: "Run only the tests whose names contain this text.")
    var filter: String?

    @Option(help: "text (ok/FAIL lines with diffs) or json (one object, for scripts).")
    var format: Format = .text

    func run() async throws {
        let format = self.format
        let report = await PipelineTestSuite.run(
            paths: paths, filter: filter,
            problems: { problems in
                for problem in problems { Console.error(problem.description) }
            },
            progress: { result in
                guard format == .text else { return }
                Self.output(PipelineTestReport.lines(for: result).joined(separator: "\n"))
            })
        for path in report.missing { Console.error("lymph test: \(path): no such file or folder") }
        if let nothing = report.nothingToRun { Console.error("lymph test: \(nothing)") }
        switch format {
        case .text:
            if !report.results.isEmpty || !report.problems.isEmpty { Self.output(report.summaryLine) }
        case .json:
            Self.output(report.json())
        }
        if report.exitStatus != 0 { throw ExitCode(report.exitStatus) }
    }

    /// Straight to stdout, unbuffered: each result shows as it comes, in order with stderr. A
    /// reader that went away (`| head`) is not an error; any other failed write is exit 3, as a
    /// run's output would be.
    static func output(_ text: String) {
        let code = Console.write(text + "\n", to: 1)
        guard code != 0, code != EPIPE else { return }
        Console.error("lymph: could not write to stdout: \(String(cString: strerror(code)))")
        Foundation.exit(3)
    }
}
