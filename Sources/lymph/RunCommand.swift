import ArgumentParser
import Foundation
import Lymph

struct RunCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "run",
        abstract: "Run a pipeline over event files (or stdin) until the end of input.",
        discussion: """
            Events that leave the last stage go to the pipeline's output (stdout by default); rejected \
            items go to its dead-letter file with their position and the reason. A summary goes to stderr. \
            SIGINT/SIGTERM stop reading, finish the batches in flight, flush, and exit 130/143; a second \
            signal exits at once (nothing unwritten is remembered as done, so a re-run processes it). \
            With a state file, a run over files that was cut short (a signal, kill -9) is continued \
            by the next run over the same files: the items whose work was committed are skipped, so \
            no event, log line or dead letter is written twice ('--from-start' reads them again). \
            An input that is the pipeline's own dead-letter file is moved aside first and read from \
            there ('lymph replay' does this and deletes it when every record went through).
            """
    )

    @Argument(help: "The pipeline file.", completion: .pipelineFile)
    var pipeline: String

    @Argument(help: "Input files (NDJSON, a JSON array, or one JSON object); stdin when none or '-'.", completion: .file())
    var inputs: [String] = []

    @OptionGroup var options: RunOptions

    func run() async throws {
        let spec = try PipelineFile.load(pipeline)
        let outcome = try await PipelineRun.run(pipeline: pipeline, spec: spec, inputs: inputs, options: options)
        if let code = outcome.exitCode { throw code }
    }
}
