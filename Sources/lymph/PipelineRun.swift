import ArgumentParser
import Dispatch
import Foundation
import Lymph

/// The options `lymph run` and `lymph replay` share.
struct RunOptions: ParsableArguments {
    enum SummaryFormat: String, ExpressibleByArgument, CaseIterable {
        case text, json, none
    }

    @Option(help: "How to print the summary on stderr.")
    var summary: SummaryFormat = .text

    @Flag(name: .customLong("no-progress"), help: "Never show the progress line.")
    var noProgress = false

    @Option(help: "Use this store instead of the file's 'state' ('memory' keeps nothing).", completion: .file())
    var state: String?

    @Option(help: "Write events here instead of the file's 'output' ('-' stdout, 'none').", completion: .file())
    var output: String?

    @Option(
        name: .customLong("dead-letter"), help: "Write dead letters here instead of the file's 'dead_letter'.",
        completion: .file())
    var deadLetter: String?

    @Flag(
        name: .customLong("from-start"),
        help: "Read the inputs from the start even when an interrupted run over the same files was recorded.")
    var fromStart = false

    /// The dead-letter file this run writes.
    func deadLetter(of spec: PipelineSpec) -> String { deadLetter ?? spec.deadLetter }
}

/// `lymph run`'s way from a loaded pipeline to its summary, which `lymph replay` takes too:
/// inputs checked, the pipeline's own dead-letter file moved aside (`OwnOutputGuard`), the
/// pipeline opened, the run under SIGINT/SIGTERM/SIGHUP with a progress line, the summary on
/// stderr.
enum PipelineRun {
    struct Outcome {
        /// Dead-letter files moved aside to be read.
        let moved: [OwnOutputGuard.Moved]
        /// Nil when the run stopped on an error (said on stderr).
        let summary: RunSummary?
        /// A broken input (corrupt or truncated gzip) that ended reading: what came before it
        /// was processed and is in the summary.
        var inputFailure: InputError? = nil

        /// Whether every input was read to its end (no signal, no error).
        var readToEnd: Bool { summary.map { $0.interruptedBy == 0 } == true && inputFailure == nil }

        /// `lymph run`'s exit status for the outcome: nil for 0.
        var exitCode: ExitCode? {
            guard let summary, inputFailure == nil else { return ExitCode(3) }
            if summary.interruptedBy != 0 { return ExitCode(128 + summary.interruptedBy) }
            if summary.deadLetters > 0 { return ExitCode(1) }
            return nil
        }
    }

    /// Runs the pipeline at `path` (loaded as `spec`) over `inputs` (stdin when empty). Problems
    /// found before anything is read are printed and thrown as exit status 2 or 3; a dead-letter
    /// file moved aside by then gets its name back. A run that stops on an error is an outcome
    /// without a summary (exit 3), after its plugin processes are killed.
    static func run(pipeline path: String, spec: PipelineSpec, inputs given: [String], options: RunOptions) async throws -> Outcome {
        let unreadable = ItemReader.checkReadable(given)
        if !unreadable.isEmpty {
            unreadable.forEach { Console.error("lymph: \($0)") }
            throw ExitCode(2)
        }
        let deadLetter = options.deadLetter(of: spec)
        if let out = options.output ?? spec.output, PipelineLoader.sameSink(out, deadLetter) {
            Console.error("lymph: the output and the dead letters would both go to '\(out)': rejected items would mix with passed events")
            throw ExitCode(2)
        }
        var written = [OwnOutputGuard.Written]()
        if let out = options.output ?? spec.output { written.append(.init(path: out, role: "output")) }
        for stage in spec.stages {
            if let log = stage.spec as? LogSpec { written.append(.init(path: log.path, role: "log file (stage '\(stage.name)')")) }
        }
        // The pipeline's files as given on the command line too (the file's own were checked
        // when it was loaded): nothing appended may land in the store or the pipeline file.
        if let given = options.state,
            let problem = PipelineLoader.stateNotationProblem(given) ?? PipelineLoader.keywordLookalikeProblem(given, "state", keywords: ["memory"])
        {
            Console.error("lymph: --state: \(problem)")
            throw ExitCode(2)
        }
        for (flag, given) in [("--output", options.output), ("--dead-letter", options.deadLetter)] {
            guard let given else { continue }
            let problem: String?
            if given.isEmpty {
                problem = "an empty path names no file"
            } else if flag == "--dead-letter" && given == "none" {
                problem = "dead letters cannot go nowhere: rejected events are never discarded; name a file, '-' or 'stderr'"
            } else {
                problem = PipelineLoader.keywordLookalikeProblem(given, String(flag.dropFirst(2)), keywords: ["none", "stdout", "stderr"])
            }
            if let problem {
                Console.error("lymph: \(flag): \(problem)")
                throw ExitCode(2)
            }
        }
        let state = options.state.map { $0 == "memory" ? nil : $0 } ?? spec.statePath
        if let problem = OwnOutputGuard.overwritten(written + [.init(path: deadLetter, role: "dead-letter file")], state: state, pipelineFile: path) {
            Console.error("lymph: \(problem)")
            throw ExitCode(2)
        }
        let prepared: OwnOutputGuard.Prepared
        do {
            prepared = try OwnOutputGuard.prepare(inputs: given, deadLetter: deadLetter, written: written)
        } catch {
            Console.error("lymph: \(error)")
            throw ExitCode(2)
        }
        prepared.notes.forEach { Console.error("lymph: \($0)") }
        let inputs = prepared.inputs == ["-"] && given.isEmpty ? [] : prepared.inputs
        let opened: Pipeline
        let postgres: PostgresState?
        do {
            // A run's output files are this machine's: its instance is the machine.
            postgres = try await PipelineFile.openPostgres(path, spec, stateOverride: options.state, instance: "run@" + PipelineFile.hostName)
            do {
                opened = try PipelineFile.open(path) {
                    try Pipeline.open(
                        spec, overrides: .init(statePath: options.state, output: options.output, deadLetter: options.deadLetter), postgres: postgres)
                }
            } catch {
                await postgres?.close()
                throw error
            }
        } catch {
            // Nothing was read: the dead letters stay where the operator left them.
            for moved in prepared.moved { Console.error("lymph: \(OwnOutputGuard.putBack(moved))") }
            throw error
        }
        defer { opened.close() }

        let control = RunControl()
        let signals = SignalTrap(control: control)
        defer { signals.cancel() }
        let progress = (options.noProgress || isatty(2) == 0) ? nil : ProgressLine(control: control)
        progress?.start()

        let runner = PipelineRunner(pipeline: opened, control: control, maxBatchesInFlight: 2 * ProcessInfo.processInfo.activeProcessorCount)
        var result: RunSummary
        let reader = ItemReader(paths: inputs, maxItemBytes: spec.parse.maxRecordBytes)
        do {
            if let store = opened.store, opened.outputs != nil, store.postgres == nil {
                // Only with a state file: its outputs are cut back to the same commit. (On
                // PostgreSQL a run is not continued: running it again is safe with dedup.)
                switch try reader.continueInterrupted(recordedIn: store, pipeline: spec.name, fromStart: options.fromStart) {
                case .continuing(let done):
                    let total = done.reduce(0, +)
                    if total > 0 {
                        Console.error(
                            "lymph: continuing an interrupted run over the same inputs: the \(total) items whose work was committed are skipped (--from-start reads them again)"
                        )
                    }
                case .replaced(let paths):
                    Console.error(
                        "lymph: an interrupted run of '\(spec.name)' over other inputs (\(paths.joined(separator: ", "))) was recorded; these inputs are read from the start"
                    )
                case .fresh, .unavailable:
                    break
                }
            }
            result = try await runner.run(reader: reader)
            result.skippedDone = reader.skippedDone
            await postgres?.close()
        } catch {
            await postgres?.close()
            progress?.stop()
            // Plugin processes of stages that did not get to finish must not outlive the run.
            ChildProcesses.killAll()
            Console.error("lymph: run stopped: \(error)")
            return Outcome(moved: prepared.moved, summary: nil)
        }
        progress?.stop()
        switch options.summary {
        case .text: Console.error(result.text())
        case .json: Console.error(result.json())
        case .none: break
        }
        for path in reader.changedSinceInterrupted {
            Console.error(
                "lymph: input '\(path)' changed since the interrupted run (the item where it stopped is not the one it did last): it was read from its start, not continued"
            )
        }
        for cut in reader.cutWhileRead {
            Console.error(
                "lymph: warning: input '\(cut.path)' was cut to \(cut.length) bytes while it was read, after \(cut.read) had been read: whatever it held past byte \(cut.length) was not read (rotate it by renaming, not with copytruncate)"
            )
        }
        if let failure = reader.failure {
            Console.error("lymph: \(failure); reading stopped there: the items before it were processed (above), later inputs were not read")
        }
        return Outcome(moved: prepared.moved, summary: result, inputFailure: reader.failure)
    }
}
