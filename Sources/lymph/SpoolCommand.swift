import ArgumentParser
import Foundation
import Lymph

struct SpoolCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "spool",
        abstract: "Show what lymph serve's spool holds: depth, bytes, the oldest entry, pending and done.",
        discussion: """
            Read-only, and safe while lymph serve runs: both SQLite files are opened read-only and no \
            lock is taken. For a pipeline whose state is in PostgreSQL: one line per instance's lane of \
            the shared spool (entries waiting, bytes, done through, the instance working it, the oldest \
            entry); --format json prints one object per lane. pending: not yet committed by the worker; done: committed to the state \
            store, not yet deleted from the spool. A spool file that does not exist means the pipeline \
            has never served: depth 0, exit 0, nothing created. --format json prints one object: spool, \
            exists, entries, bytes, file_bytes, pending, done, done_through, oldest_seq, \
            oldest_received_at, oldest_age_seconds, oldest_pending_received_at.
            """
    )

    @Argument(help: "The pipeline file (the spool is beside its 'state').", completion: .pipelineFile)
    var pipeline: String?

    @Option(help: "The state file whose spool to read (instead of a pipeline).", completion: .file())
    var state: String?

    @Option(help: "The spool file itself (instead of a pipeline).", completion: .file())
    var spool: String?

    @Option(help: "table (default on a terminal) or json (one object).") var format: OutputFormat?

    @OptionGroup var time: TimeZoneOptions

    func run() async throws {
        if let file = pipeline, state == nil, spool == nil {
            let spec = try PipelineFile.load(file)
            if spec.postgres != nil { return try await showShared(file, spec) }
        }
        let (spoolPath, statePath, owner) = try locate()
        let status: SpoolStatus
        do {
            status = try SpoolStatus.read(spoolPath: spoolPath, statePath: statePath)
        } catch {
            Console.error("lymph: \(error)")
            throw ExitCode(3)
        }
        switch format ?? .automatic {
        case .json:
            print(status.json())
        case .table:
            print(Self.details(status, owner: owner, time: time.zone))
        }
    }

    /// The spool's path, its state file's (for the worker's progress), and what to call it.
    func locate() throws -> (spool: String, state: String?, owner: String) {
        guard [pipeline, state, spool].compactMap({ $0 }).count == 1 else {
            throw ValidationError("say which spool: a pipeline file, --state PATH or --spool PATH (one of them)")
        }
        if let spool { return (spool, SpoolStatus.statePath(forSpool: spool), "'\(spool)'") }
        if let state { return (SQLiteSpoolStore.path(forState: state), state, "'\(state)'") }
        let file = pipeline!
        let spec = try PipelineFile.load(file)
        guard let statePath = spec.statePath else {
            Console.error("lymph: \(file) keeps its state in memory: it has no spool (lymph serve needs a state file)")
            throw ExitCode(2)
        }
        return (SQLiteSpoolStore.path(forState: statePath), statePath, file)
    }

    static func details(_ s: SpoolStatus, owner: String, now: Double = Timestamp.now(), time: TimeZoneOptions.Zone = .utc) -> String {
        guard s.exists else { return "no spool: \(owner) has never served ('\(s.path)' does not exist)\nentries  0" }
        var rows: [(String, String)] = [
            ("SPOOL", s.path),
            ("ENTRIES", String(s.entries)),
            ("PENDING", String(s.pending)),
            ("DONE", String(s.done) + (s.doneThrough.map { " (committed through #\($0))" } ?? " (no progress recorded)")),
            ("BYTES", "\(s.bytes) in entries; \(s.fileBytes) on disk"),
        ]
        if let seq = s.oldestSeq, let at = s.oldestReceivedAt {
            rows.append(("OLDEST", "#\(seq), received \(time.show(at, seconds: true)) (\(age(now - at)) ago)"))
        } else {
            rows.append(("OLDEST", "-"))
        }
        if let at = s.oldestPendingReceivedAt, at != s.oldestReceivedAt {
            rows.append(("OLDEST PENDING", "received \(time.show(at, seconds: true)) (\(age(now - at)) ago)"))
        }
        let width = rows.map(\.0.count).max() ?? 0
        return rows.map { $0.0.padding(toLength: width, withPad: " ", startingAt: 0) + "  " + $0.1 }.joined(separator: "\n")
    }

    /// The shared spool of a pipeline on PostgreSQL: one line per instance's lane. Done entries
    /// are deleted with their work's commit, so every entry shown is pending.
    func showShared(_ file: String, _ spec: PipelineSpec) async throws {
        guard let postgres = try await PipelineFile.openPostgres(file, spec, instance: "cli@" + PipelineFile.hostName) else { return }
        let lanes: [PostgresSpoolLane]
        do {
            lanes = try await PostgresSpoolLane.all(in: postgres.database)
        } catch {
            await postgres.close()
            Console.error("lymph: \(error)")
            throw ExitCode(3)
        }
        await postgres.close()
        switch format ?? .automatic {
        case .json:
            for lane in lanes { print(lane.json()) }
        case .table:
            let now = Timestamp.now()
            print(
                renderTable(
                    ["LANE", "ENTRIES", "BYTES", "DONE THROUGH", "WORKED BY", "OLDEST"],
                    lanes.map { l in
                        [
                            l.lane, String(l.entries), String(l.bytes), "#\(l.doneThrough) of #\(l.highestSeq)",
                            l.owner.map { ($0.split(separator: "/").first.map(String.init) ?? $0) + (l.ownerAlive ? "" : " (lease ran out)") } ?? "-",
                            l.oldestReceivedAt.map { "\(time.zone.show($0, seconds: true)) (\(Self.age(now - $0)) ago)" } ?? "-",
                        ]
                    }))
        }
    }

    /// `45s`, `3m12s`, `2h05m`, `3d04h`.
    static func age(_ seconds: Double) -> String {
        let s = max(0, Int(seconds))
        switch s {
        case ..<60: return "\(s)s"
        case ..<3600: return "\(s / 60)m\(String(format: "%02d", s % 60))s"
        case ..<86_400: return "\(s / 3600)h\(String(format: "%02d", s / 60 % 60))m"
        default: return "\(s / 86_400)d\(String(format: "%02d", s / 3600 % 24))h"
        }
    }
}
