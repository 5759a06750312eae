import ArgumentParser
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
        subcommands: [RunCommand.self, CheckCommand.self, SampleCommand.self]
    )
}
