import ArgumentParser
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
}
