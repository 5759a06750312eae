import ArgumentParser
import Dispatch
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
            signal exits at once (nothing unwritten is remembered as done, so a re-run processes it).
            """
    )

    enum SummaryFormat: String, ExpressibleByArgument, CaseIterable {
        case text, json, none
    }

    @Argument(help: "The pipeline file.")
    var pipeline: String

    @Argument(help: "Input files (NDJSON, a JSON array, or one JSON object); stdin when none or '-'.")
    var inputs: [String] = []

    @Option(help: "How to print the summary on stderr.")
    var summary: SummaryFormat = .text

    @Flag(name: .customLong("no-progress"), help: "Never show the progress line.")
    var noProgress = false

    @Option(help: "Use this store instead of the file's 'state' ('memory' keeps nothing).")
    var state: String?

    @Option(help: "Write events here instead of the file's 'output' ('-' stdout, 'none').")
    var output: String?

    @Option(name: .customLong("dead-letter"), help: "Write dead letters here instead of the file's 'dead_letter'.")
    var deadLetter: String?

    func run() async throws {
        let spec = try PipelineFile.load(pipeline)
        let unreadable = ItemReader.checkReadable(inputs)
        if !unreadable.isEmpty {
            unreadable.forEach { Console.error("lymph: \($0)") }
            throw ExitCode(2)
        }
        if let out = output ?? spec.output, PipelineLoader.sameSink(out, deadLetter ?? spec.deadLetter) {
            Console.error("lymph: the output and the dead letters would both go to '\(out)': rejected items would mix with passed events")
            throw ExitCode(2)
        }
        var written = [OwnOutputGuard.Written]()
        if let out = output ?? spec.output { written.append(.init(path: out, role: "output")) }
        for stage in spec.stages {
            if let log = stage.spec as? LogSpec { written.append(.init(path: log.path, role: "log file (stage '\(stage.name)')")) }
        }
        let inputs: [String]
        do {
            let prepared = try OwnOutputGuard.prepare(inputs: self.inputs, deadLetter: deadLetter ?? spec.deadLetter, written: written)
            prepared.notes.forEach { Console.error("lymph: \($0)") }
            inputs = prepared.inputs == ["-"] && self.inputs.isEmpty ? [] : prepared.inputs
        } catch {
            Console.error("lymph: \(error)")
            throw ExitCode(2)
        }
        let opened = try PipelineFile.open(pipeline) {
            try Pipeline.open(spec, overrides: .init(statePath: state, output: output, deadLetter: deadLetter))
        }
        defer { opened.close() }

        let control = RunControl()
        let signals = SignalTrap(control: control)
        defer { signals.cancel() }
        let progress = (noProgress || isatty(2) == 0) ? nil : ProgressLine(control: control)
        progress?.start()

        let runner = PipelineRunner(pipeline: opened, control: control, maxBatchesInFlight: 2 * ProcessInfo.processInfo.activeProcessorCount)
        let result: RunSummary
        do {
            result = try await runner.run(reader: ItemReader(paths: inputs, maxItemBytes: spec.parse.maxRecordBytes))
        } catch {
            progress?.stop()
            // Plugin processes of stages that did not get to finish must not outlive the run.
            ChildProcesses.killAll()
            Console.error("lymph: run stopped: \(error)")
            throw ExitCode(3)
        }
        progress?.stop()
        switch summary {
        case .text: Console.error(result.text())
        case .json: Console.error(result.json())
        case .none: break
        }
        if result.interruptedBy != 0 { throw ExitCode(128 + result.interruptedBy) }
        if result.deadLetters > 0 { throw ExitCode(1) }
    }
}
