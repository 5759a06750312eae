import ArgumentParser
import Foundation
import Lymph

struct ReplayCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "replay",
        abstract: "Run a pipeline again over its dead letters, once their cause is fixed.",
        discussion: """
            Without FILE, replays the pipeline's own dead-letter file: it is moved aside to \
            FILE.replay-<UTC time> (atomically), the pipeline runs over it exactly as 'lymph run \
            PIPELINE FILE' would (same summary, exit status and signals), and records that fail again \
            go to a fresh dead-letter file. The moved file is deleted only when the replay read it to \
            the end with no new dead letters; otherwise it is kept and named on stderr. A missing or \
            empty dead-letter file is 'nothing to replay', exit 0, and nothing changes, so a second \
            replay does nothing. A file an earlier replay kept is deleted by the same rule when \
            named; another FILE is read in place, never moved or deleted.
            """
    )

    @Argument(help: "The pipeline file.", completion: .pipelineFile)
    var pipeline: String

    @Argument(help: "The dead-letter file to replay (default: the pipeline's 'dead_letter', or --dead-letter).", completion: .file())
    var file: String?

    @OptionGroup var options: RunOptions

    func run() async throws {
        let spec = try PipelineFile.load(pipeline)
        let deadLetter = options.deadLetter(of: spec)
        let source: DeadLetterReplay.Source
        do {
            source = try DeadLetterReplay.source(file: file, deadLetter: deadLetter)
        } catch {
            Console.error("lymph: \(error)")
            throw ExitCode(2)
        }
        let path: String
        switch source {
        case .nothing(let why):
            Console.error("lymph: \(why)")
            // An earlier replay that stopped (killed, or with records failing again) kept its
            // moved file: without a word here, "nothing" reads as "all done".
            if file == nil {
                for kept in DeadLetterReplay.keptReplays(of: deadLetter) {
                    Console.error(
                        "lymph: kept by an earlier replay: '\(kept.path)' (\(kept.records) record\(kept.records == 1 ? "" : "s")); replay it with 'lymph replay \(pipeline) \(kept.path)'"
                    )
                }
            }
            return
        case .own(let p), .other(let p):
            path = p
        }
        let outcome = try await PipelineRun.run(pipeline: pipeline, spec: spec, inputs: [path], options: options)
        for moved in outcome.moved {
            let ending = DeadLetterReplay.finish(
                moved: moved.aside, deadLetters: outcome.inputFailure == nil ? outcome.summary?.deadLetters : nil,
                interruptedBy: outcome.summary?.interruptedBy ?? 0, into: moved.original)
            Console.error("lymph: \(ending.message)")
        }
        // A file an earlier replay kept, named as 'nothing to replay' suggests: it goes when it
        // went through, as the moved file does.
        if let file, DeadLetterReplay.isKeptReplay(file, of: deadLetter) {
            let ending = DeadLetterReplay.finish(
                moved: file, deadLetters: outcome.inputFailure == nil ? outcome.summary?.deadLetters : nil,
                interruptedBy: outcome.summary?.interruptedBy ?? 0, into: deadLetter)
            Console.error("lymph: \(ending.message)")
        }
        if let code = outcome.exitCode { throw code }
    }
}
