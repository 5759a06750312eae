import ArgumentParser
import Foundation
import Lymph

/// Where the store is: `--state PATH`, or the `state:` of `--pipeline FILE`.
struct StateOptions: ParsableArguments {
    @Option(help: "The store (SQLite file) to read.", completion: .file())
    var state: String?

    @Option(help: "Take the store from this pipeline file's 'state:'.", completion: .pipelineFile)
    var pipeline: String?

    /// The store, for reading; with `writing`, also its lock (kept until the process exits), so
    /// a change never races a server or a run that owns the store.
    func open(writing: Bool = false) async throws -> StateStore {
        let path: String
        if let state {
            path = state
        } else if let pipeline {
            let spec = try PipelineFile.load(pipeline)
            if let postgres = try await PipelineFile.openPostgres(pipeline, spec, instance: "cli@" + PipelineFile.hostName) {
                return try withStore(postgres) { postgres throws(StoreError) in try StateStore.postgres(postgres) }
            }
            guard let p = spec.statePath else {
                Console.error("lymph: \(pipeline) keeps its state in memory: there is no store to read")
                throw ExitCode(2)
            }
            path = p
        } else {
            throw ValidationError("say where the store is: --state PATH or --pipeline FILE")
        }
        guard FileManager.default.fileExists(atPath: path) else {
            Console.error("lymph: no store at '\(path)' (has the pipeline run yet?)")
            throw ExitCode(2)
        }
        if writing {
            // Held until the process exits (commands that write end right after their change).
            do { _ = Unmanaged.passRetained(try StoreLock.acquire(forState: path)) } catch {
                Console.error("lymph: \(error)")
                throw ExitCode(2)
            }
        }
        do { return try writing ? StateStore.open(path: path) : StateStore.openForReading(path: path) } catch {
            Console.error("lymph: \(error)")
            throw ExitCode(3)
        }
    }
}

/// Runs `body` on the store; a store that fails is exit 3 (1 means dead letters in Lymph).
func withStore<S, T>(_ store: S, _ body: (S) throws(StoreError) -> T) throws -> T {
    do {
        return try body(store)
    } catch {
        Console.error("lymph: \(error)")
        throw ExitCode(3)
    }
}

enum OutputFormat: String, ExpressibleByArgument, CaseIterable {
    case table, json

    /// A table on a terminal, JSON lines for scripts.
    static var automatic: OutputFormat { isatty(1) != 0 ? .table : .json }
}

/// Left-aligned columns with a header row.
func renderTable(_ header: [String], _ rows: [[String]]) -> String {
    // Cells come from events (ids, a store written before its values were checked): a control
    // character would reach the terminal as a command, or a line break forge a row.
    let rows = rows.map { $0.map { PrintableText.of($0) } }
    var widths = header.map(\.count)
    for row in rows { for (i, cell) in row.enumerated() { widths[i] = max(widths[i], cell.count) } }
    func line(_ cells: [String]) -> String {
        cells.enumerated().map { i, c in i == cells.count - 1 ? c : c.padding(toLength: widths[i], withPad: " ", startingAt: 0) }
            .joined(separator: "  ")
    }
    return ([line(header)] + rows.map(line)).joined(separator: "\n")
}
