import ArgumentParser
import Foundation
import Lymph

struct DeadLettersCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "dead-letters",
        abstract: "Summarise a dead-letter file, or show one of its records.",
        discussion: """
            lymph dead-letters PIPELINE|FILE summarises (see 'lymph help dead-letters summary'); \
            lymph dead-letters show N PIPELINE|FILE prints record N. A .yaml/.yml argument is a \
            pipeline, whose 'dead_letter' file is read; anything else is the dead-letter file itself. \
            Read-only, without a lock: safe while the pipeline runs or serves.
            """,
        subcommands: [Summary.self, Show.self],
        defaultSubcommand: Summary.self
    )

    /// The positional that says which file: a pipeline (`.yaml`/`.yml`, whose `dead_letter` is
    /// read) or a dead-letter file.
    struct Source: ParsableArguments {
        @Argument(
            help: ArgumentHelp(
                "A pipeline file (.yaml/.yml: its 'dead_letter' is read) or a dead-letter file.",
                valueName: "pipeline-or-file"), completion: .file())
        var source: String

        struct Resolved {
            let file: String
            /// Stage names in pipeline order (parse first); empty for a file named directly.
            let stageOrder: [String]
            /// The longest line read: 16 MiB, or the pipeline's replay limit when larger.
            var maxLineBytes = NDJSONLines.defaultMaxLineBytes
        }

        /// The file to read. A file named directly must exist (exit 2); a pipeline's may not
        /// exist yet (no dead letters).

        func resolve() throws -> Resolved {
            guard source.hasSuffix(".yaml") || source.hasSuffix(".yml") else {
                var st = stat()
                guard stat(source, &st) == 0 else {
                    Console.error("lymph: cannot read '\(source)': \(String(cString: strerror(errno)))")
                    throw ExitCode(2)
                }
                return Resolved(file: source, stageOrder: [])
            }
            let spec = try PipelineFile.load(source)
            if DeadLetterReplay.isStandardStream(spec.deadLetter) {
                Console.error("lymph: \(source) writes its dead letters to \(spec.deadLetter), not to a file: name the file to read")
                throw ExitCode(2)
            }
            return Resolved(
                file: spec.deadLetter, stageOrder: [spec.parse.name] + spec.stages.map(\.name),
                maxLineBytes: max(NDJSONLines.defaultMaxLineBytes, spec.parse.maxRecordBytes))
        }
    }

    struct Summary: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Dead letters grouped by stage and reason: count, how many resume at their stage, oldest and newest, an example message.",
            discussion: """
                Groups follow the pipeline's stage order (a file named directly: the order stages first \
                appear), largest first within a stage. RESUMES counts records that a replay re-enters at \
                their stage; the others replay from the start. Lines that are not dead-letter records are \
                counted as unreadable with their line numbers; lines over 16 MiB (or the pipeline's replay \
                limit, if larger) are not read. Files kept \
                by earlier replays (FILE.replay-*) are listed. No header value is printed. \
                --format json prints one object: file, exists, records, resumes, from_start, groups \
                (stage, reason, count, resumes, from_start, oldest, newest, example, first_line), \
                unreadable (count, lines), blank_lines, kept_replays (file, bytes, records).
                """
        )

        @OptionGroup var source: Source
        @Option(help: "table (default on a terminal) or json (one object).") var format: OutputFormat?

        @OptionGroup var time: TimeZoneOptions
        func run() async throws {
            let resolved = try source.resolve()
            let summary: DeadLetterSummary
            do {
                summary = try DeadLetterSummary.read(path: resolved.file, stageOrder: resolved.stageOrder, maxLineBytes: resolved.maxLineBytes)
            } catch {
                Console.error("lymph: \(error)")
                throw ExitCode(2)
            }
            let kept = DeadLetterReplay.keptReplays(of: resolved.file)
            switch format ?? .automatic {
            case .json:
                print(summary.json(extra: ["kept_replays": kept.map { ["file": $0.path, "bytes": $0.bytes, "records": $0.records] as [String: Any] }]))
            case .table:
                print(Self.table(summary, kept: kept, time: time.zone))
            }
        }

        static func table(_ s: DeadLetterSummary, kept: [DeadLetterReplay.Kept], time zone: TimeZoneOptions.Zone = .utc) -> String {
            var lines: [String] = []
            if !s.groups.isEmpty {
                func time(_ t: String?) -> String { t.map { zone.show($0) } ?? "-" }
                lines.append(
                    renderTable(
                        ["STAGE", "REASON", "COUNT", "RESUMES", "OLDEST", "NEWEST", "EXAMPLE"],
                        s.groups.map {
                            [
                                $0.stage.cutForMessage(30), $0.reason.cutForMessage(30), String($0.count), String($0.resumes), time($0.oldest), time($0.newest),
                                $0.example.cutForMessage(60),
                            ]
                        }))
            }
            if !s.exists {
                lines.append("no dead letters: '\(s.file)' does not exist")
            } else if s.records == 0 {
                lines.append("no dead letters in '\(s.file)'")
            } else {
                lines.append(
                    "\(s.records) dead letter\(s.records == 1 ? "" : "s") in '\(s.file)' (\(s.records - s.resumes) replay from the start, \(s.resumes) resume at their stage)"
                )
            }
            if s.unreadableCount > 0 {
                let listed = s.unreadable.prefix(10).map { "line \($0.line): \($0.why.cutForMessage(60))" }
                let more = s.unreadableCount - listed.count
                lines.append(
                    "\(s.unreadableCount) unreadable line\(s.unreadableCount == 1 ? "" : "s") (not dead-letter records): "
                        + listed.joined(separator: "; ") + (more > 0 ? "; and \(more) more" : ""))
            }
            for k in kept {
                lines.append("kept by an earlier replay: '\(k.path)' (\(k.records) record\(k.records == 1 ? "" : "s"), \(k.bytes) bytes)")
            }
            return lines.joined(separator: "\n")
        }
    }

    struct Show: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Show record N (its line number in the file) in full.",
            discussion: """
                Prints the record's stage, reason, message, time, source and where a replay would \
                re-enter the pipeline, then the record pretty-printed (--format json: one line). \
                Signatures are cut to their first 8 characters and '…': the x-immune-signature \
                header of a delivery, the same header quoted in a raw line (and then its raw_base64). \
                Exit 1 when line N does not exist or is not a dead-letter record.
                """
        )

        @Argument(help: "The record's line number (1 is the first line).") var number: Int
        @OptionGroup var source: Source
        @Option(help: "table (default on a terminal) or json (one line).") var format: OutputFormat?

        @OptionGroup var time: TimeZoneOptions
        func run() async throws {
            let resolved = try source.resolve()
            guard number >= 1 else {
                Console.error("lymph: no record \(number): records are numbered by line, from 1")
                throw ExitCode(1)
            }
            guard FileManager.default.fileExists(atPath: resolved.file) else {
                Console.error("lymph: no dead letters: '\(resolved.file)' does not exist")
                throw ExitCode(1)
            }
            let found: DeadLetterRecord.Lookup
            do {
                found = try DeadLetterRecord.lookUp(line: number, in: resolved.file, maxLineBytes: resolved.maxLineBytes)
            } catch {
                Console.error("lymph: \(error)")
                throw ExitCode(2)
            }
            let record: DeadLetterRecord
            switch found {
            case .record(let r): record = r
            case .beyondEnd(let lines):
                Console.error("lymph: '\(resolved.file)' has \(lines) line\(lines == 1 ? "" : "s"): no record \(number)")
                throw ExitCode(1)
            case .unreadable(let why):
                Console.error("lymph: line \(number) of '\(resolved.file)' is not a dead-letter record: \(why)")
                throw ExitCode(1)
            }
            switch format ?? .automatic {
            case .json:
                print(record.json(file: resolved.file, line: number))
            case .table:
                print(Self.details(record, line: number, file: resolved.file, time: time.zone))
            }
        }

        static func details(_ r: DeadLetterRecord, line: Int, file: String, time: TimeZoneOptions.Zone = .utc) -> String {
            var rows: [(String, String)] = [("LINE", "\(line) of '\(file)'"), ("STAGE", r.stage), ("REASON", r.reason)]
            let message = r.message.split(omittingEmptySubsequences: false, whereSeparator: \.isNewline)
            for (i, part) in message.enumerated() { rows.append((i == 0 ? "MESSAGE" : "", String(part))) }
            if let at = r.at { rows.append(("AT", time.show(at))) }
            if let file = r.sourceFile { rows.append(("SOURCE", file + (r.sourceLine.map { ":\($0)" } ?? ""))) }
            if let stage = r.resumeStage {
                rows.append(("REPLAY", "resumes at stage '\(stage)'" + (r.resumeKind.map { " (\($0))" } ?? "")))
            } else {
                rows.append(("REPLAY", "from the start"))
            }
            let width = rows.map(\.0.count).max() ?? 0
            // Every field comes from the file, which may hold what an input held: control and
            // bidirectional characters are shown as '?', as in the summary's table (the record
            // below is JSON, escaped).
            return rows.map { $0.0.padding(toLength: width, withPad: " ", startingAt: 0) + "  " + PrintableText.of($0.1) }.joined(separator: "\n")
                + "\n" + r.rendered(pretty: true)
        }
    }
}
