import ArgumentParser
import Lymph

/// A `--secret` option: a reference (`env:NAME`, `file:PATH`), never the value, which would
/// show in `ps` and shell history.
enum SecretOption {
    static func validate(_ text: String) throws {
        guard SecretReference(text) != nil else {
            throw ValidationError("--secret must be env:NAME or file:PATH; a secret on the command line would show in ps and shell history")
        }
    }

    /// The secret's bytes; an unreadable one is reported (by reference, never value) as exit 2.
    static func resolve(_ text: String, command: String) throws -> [UInt8] {
        do { return try SecretReference(text)!.resolve() } catch {
            Console.error("lymph \(command): \(error)")
            throw ExitCode(2)
        }
    }
}
