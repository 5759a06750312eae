import Foundation
import Testing

/// A misspelt command is named as a command, with the nearest one, and is a usage error (exit 2).
@Suite("unknown commands")
struct UnknownCommandTests {
    @Test("lymph tiket: unknown command 'tiket', did you mean 'tickets', exit 2, nothing on stdout")
    func misspeltCommand() throws {
        let result = try LymphBinary.run(["tiket"], in: LymphBinary.workDirectory())
        #expect(result.status == 2)
        #expect(result.stdout.isEmpty)
        let lines = result.stderr.split(separator: "\n").map(String.init)
        #expect(lines.first == "Error: unknown command 'tiket'. Did you mean 'tickets'?", "\(result.stderr)")
        #expect(lines.contains("  See 'lymph --help' for the commands."), "\(result.stderr)")
    }

    @Test("a misspelt subcommand is named with its command: lymph tickets shwo, did you mean 'tickets show'")
    func misspeltSubcommand() throws {
        let result = try LymphBinary.run(["tickets", "shwo", "mt_1"], in: LymphBinary.workDirectory())
        #expect(result.status == 2)
        #expect(result.stderr.hasPrefix("Error: unknown command 'tickets shwo'. Did you mean 'tickets show'?\n"), "\(result.stderr)")
        #expect(result.stderr.contains("See 'lymph tickets --help' for the commands."), "\(result.stderr)")
    }

    @Test("a word near no command is still called an unknown command, without a guess")
    func unknownCommandWithoutGuess() throws {
        let result = try LymphBinary.run(["frobnicate"], in: LymphBinary.workDirectory())
        #expect(result.status == 2)
        #expect(result.stderr.hasPrefix("Error: unknown command 'frobnicate'.\n"), "\(result.stderr)")
        #expect(!result.stderr.contains("Did you mean"))
    }

    @Test("a known command's own usage errors are left as they were: lymph run without a pipeline")
    func knownCommandErrorsUnchanged() throws {
        let result = try LymphBinary.run(["run"], in: LymphBinary.workDirectory())
        #expect(result.status == 2)
        #expect(!result.stderr.contains("unknown command"), "\(result.stderr)")
        #expect(result.stderr.contains("Usage: lymph run"), "\(result.stderr)")
    }
}
