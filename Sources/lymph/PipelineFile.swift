import ArgumentParser
import Foundation
import Lymph

/// Reading a pipeline file for a command: warnings printed, errors printed with their
/// positions and turned into exit status 2 (nothing processed).
enum PipelineFile {
    static func load(_ path: String) throws -> PipelineSpec {
        do {
            let loaded = try PipelineLoader.load(path: path)
            for w in loaded.warnings { Console.error(w.description) }
            return loaded.spec
        } catch {
            Console.error(error.description)
            throw ExitCode(2)
        }
    }

    /// With `state: {postgres: ...}` (and no `--state` replacing it), connects, migrates and takes
    /// this process's lease under `instance`; nil for a SQLite state. A URL that cannot be read is
    /// exit status 2, a database that cannot be opened exit status 3.
    static func openPostgres(_ path: String, _ spec: PipelineSpec, stateOverride: String? = nil, instance: String) async throws -> PostgresState? {
        guard let wanted = spec.postgres, stateOverride == nil else { return nil }
        do {
            return try await PostgresState.open(wanted, instance: instance)
        } catch let error as SecretError {
            Console.error("lymph: \(path): state: \(error)")
            throw ExitCode(2)
        } catch {
            Console.error("lymph: \(path): \(error)")
            throw ExitCode(3)
        }
    }

    /// This machine's name, the default instance name of a process on a PostgreSQL state.
    static var hostName: String { ProcessInfo.processInfo.hostName }

    /// Opens a loaded pipeline: a secret that cannot be read is exit status 2, a store or output
    /// that cannot be opened exit status 3; either way printed with the pipeline's path.
    static func open(_ path: String, _ open: () throws -> Pipeline) throws -> Pipeline {
        do {
            return try open()
        } catch let error as SecretError {
            let place = error.line.map { ":\($0):\(error.column ?? 1)" } ?? ""
            Console.error("lymph: \(path)\(place): \(error)")
            throw ExitCode(2)
        } catch let error as StoreLockError {
            Console.error("lymph: \(path): \(error)")
            throw ExitCode(2)
        } catch let error as DedupScopeTaken {
            Console.error("lymph: \(path): \(error)")
            throw ExitCode(2)
        } catch let error as HTTPStageConfigError {
            Console.error("lymph: \(path): \(error)")
            throw ExitCode(2)
        } catch {
            Console.error("lymph: \(path): \(error)")
            throw ExitCode(3)
        }
    }
}
