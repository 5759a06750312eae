import ArgumentParser
import Lymph

/// `lymph tiket`: a word where a command name belongs that names none, told as such with the
/// nearest command (ArgumentParser's own message, "Unexpected argument 'tiket'", does not say
/// that a command was meant).
enum UnknownCommand {
    /// The message for `arguments` (without the program name) when they fail to parse because a
    /// word that should name a subcommand names none; nil when they name commands all the way
    /// to the first option or to a command without subcommands, so the parser's error stands.
    /// Under a command with a default subcommand (`tickets`, `dead-letters`), another word may
    /// be that subcommand's argument: only a near miss of a subcommand's name is taken as one.
    static func message(for arguments: [String], root: any ParsableCommand.Type = LymphTool.self) -> String? {
        var command = root
        var path: [String] = []
        for word in arguments {
            let subcommands = command.configuration.subcommands
            if word.hasPrefix("-") || word == "help" || subcommands.isEmpty { return nil }
            if let next = subcommands.first(where: { names(of: $0).contains(word) }) {
                command = next
                path.append(next._commandName)
                continue
            }
            let suggestion = Suggestion.closest(to: word, in: subcommands.map { $0._commandName })
            if command.configuration.defaultSubcommand != nil && suggestion == nil { return nil }
            let prefix = path.map { $0 + " " }.joined()
            let commandPath = ([root._commandName] + path).joined(separator: " ")
            var text = "Error: unknown command '\(prefix)\(word.cutForMessage())'."
            if let suggestion { text += " Did you mean '\(prefix)\(suggestion)'?" }
            return text + "\nUsage: " + LymphTool.usageString(for: command)
                + "\n  See '\(commandPath) --help' for the commands."
        }
        return nil
    }

    /// The words that select `command`: its name and its aliases.
    static func names(of command: any ParsableCommand.Type) -> [String] {
        [command._commandName] + command.configuration.aliases
    }
}
