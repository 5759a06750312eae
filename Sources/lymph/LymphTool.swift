import ArgumentParser
import Foundation
import Lymph

@main
struct LymphTool: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "lymph",
        abstract: "Carry IMMUNE webhook events through YAML pipelines.",
        discussion: """
            Exit status: 0 every item processed (passed, filtered or a duplicate); 1 at least one \
            item went to the dead letters; 2 usage or pipeline-file error (nothing processed); \
            3 the run could not continue (store or output unusable); 130/143 stopped by SIGINT/SIGTERM.
            """,
        version: Lymph.version,
        subcommands: [RunCommand.self, CheckCommand.self, ServeCommand.self, SendCommand.self, SignCommand.self, SampleCommand.self, TicketsCommand.self, SensorsCommand.self]
    )

    /// ArgumentParser exits 64 on usage errors; Lymph documents 2 for every usage error.
    static func main() async {
        LogSetup.bootstrap()
        do {
            var command = try parseAsRoot()
            if var asyncCommand = command as? AsyncParsableCommand {
                try await asyncCommand.run()
            } else {
                try command.run()
            }
        } catch {
            if exitCode(for: error) == .validationFailure {
                FileHandle.standardError.write(Data((fullMessage(for: error) + "\n").utf8))
                Foundation.exit(2)
            }
            exit(withError: error)
        }
    }
}
