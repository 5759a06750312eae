/// Why a plugin did not handle an event: the dead letter's reason and message, and whether
/// another attempt might succeed.
struct ExecFailure: Error, Sendable {
    /// Short code for the dead letter: `plugin_exit`, `plugin_timeout`, `plugin_output`, ...
    var reason: Reason
    /// A sentence a human can act on; names the stage and quotes the stderr tail.
    var message: String
    var retryable: Bool
}
