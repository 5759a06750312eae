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
            item went to the dead letters (lymph send: a request got no 2xx, or a line could not be sent); 2 usage or pipeline-file \
            error, or an unreadable secret or input (nothing processed); 3 the run could not continue \
            (store or output unusable, a full disk, corrupt gzip input); 130/143/129 stopped by \
            SIGINT/SIGTERM/SIGHUP after finishing the batches in flight.
            """,
        version: Lymph.version,
        subcommands: [
            RunCommand.self, ReplayCommand.self, CheckCommand.self, TestCommand.self, ServeCommand.self, SendCommand.self, SignCommand.self, SampleCommand.self,
            TicketsCommand.self, SensorsCommand.self, DeadLettersCommand.self, SpoolCommand.self,
        ]
    )

    /// ArgumentParser exits 64 on usage errors; Lymph documents 2 for every usage error.
    static func main() async {
        StandardDescriptors.reserve()
        // A reader that goes away (`| head`) is a failed write (EPIPE), which each command
        // reports as its own, not a signal that ends the process before it can say anything.
        signal(SIGPIPE, SIG_IGN)
        LogSetup.bootstrap()
        AllocatorSettings.apply()
        var parsed: (any ParsableCommand.Type)?
        do {
            var command = try parseAsRoot()
            parsed = type(of: command)
            if var asyncCommand = command as? AsyncParsableCommand {
                try await asyncCommand.run()
            } else {
                try command.run()
            }
            Self.checkStandardOutput()
        } catch {
            if parsed == nil, exitCode(for: error) == .validationFailure,
                let message = UnknownCommand.message(for: Array(CommandLine.arguments.dropFirst()))
            {
                Console.error(message)
                Foundation.exit(2)
            }
            if exitCode(for: error) == .validationFailure {
                Console.error(usageMessage(for: error, in: parsed))
                Foundation.exit(2)
            }
            exit(withError: error)
        }
    }

    /// What a command printed must have reached stdout: a table or JSON lost to a full disk (or
    /// a closed descriptor) is exit 3, as a run's output would be, not 0. A reader that went away
    /// (`| head`) is not an error.
    static func checkStandardOutput() {
        errno = 0
        // Every stream: stdout itself is a C global Swift 6 will not touch. What a failed flush
        // could not write is still buffered, so the last one fails too.
        guard fflush(nil) != 0 else { return }
        let code = errno
        if code == EPIPE { return }
        let why = code != 0 ? String(cString: strerror(code)) : "a write failed"
        Console.error("lymph: could not write to stdout: \(why)")
        Foundation.exit(3)
    }

    /// The error with the usage of the command it came from. ArgumentParser knows that command
    /// for errors found while parsing; for a `ValidationError` thrown by `run()` it would show
    /// the root's usage (`lymph <subcommand>`), so the command that ran is named here.
    static func usageMessage(for error: any Error, in command: (any ParsableCommand.Type)?) -> String {
        guard let command, command != LymphTool.self, let path = names(to: command) else { return fullMessage(for: error) }
        return "Error: \(message(for: error))\n" + "Usage: " + usageString(for: command)
            + "\n  See '\(path.joined(separator: " ")) --help' for more information."
    }

    /// The command names from `lymph` down to `target`, or nil when it is not a subcommand.
    static func names(to target: any ParsableCommand.Type, from root: any ParsableCommand.Type = LymphTool.self) -> [String]? {
        if root == target { return [root._commandName] }
        for sub in root.configuration.subcommands {
            if let rest = names(to: target, from: sub) { return [root._commandName] + rest }
        }
        return nil
    }
}
