import ArgumentParser

extension CompletionKind {
    /// A pipeline file: shells offer `.yaml` and `.yml` files, and directories to descend into.
    static var pipelineFile: CompletionKind { .file(extensions: ["yaml", "yml"]) }
}
