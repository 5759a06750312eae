/// What a stubbed `exec` stage runs in `lymph test` instead of its plugin: every event gets the
/// same answer, decided without starting a process.
///
/// The answers mean what the plugin's would: an empty answer is a drop counted as `no_output`,
/// `{"error": ...}` is a failure handled by the stage's `on_error` (`plugin_error` for an exec
/// stage; for an http stage `http_status`, a destination's refusal), and events replace the one
/// answered (keeping its source position, as a plugin's do).
struct StubStage: Stage {
    enum Answer: Sendable {
        case pass, drop
        case error(String)
        case events([JSONDocument])
    }

    let answer: Answer
    let stageName: String
    let onError: ExecSpec.OnError
    /// The stubbed stage is an http stage: an error is the destination's, not a plugin's.
    var http = false

    func process(_ events: [Event], context: StageContext) async throws -> [StageOutcome] {
        try events.map { event in
            switch answer {
            case .pass:
                return .pass
            case .drop:
                return .replace([])
            case .events(let documents):
                return .replace(documents.map { Event(document: $0, source: event.source, origin: event.origin) })
            case .error(let text):
                let (reason, message): (Reason, String) =
                    http
                    ? (.httpStatus, "stage '\(stageName)': the destination answered: \(text) (a test's stub)")
                    : (.pluginError, "stage '\(stageName)': the plugin reported: \(text) (a test's stub)")
                switch onError {
                case .deadLetter: return .fail(reason, message: message)
                case .drop: return .drop(.onErrorDrop)
                case .stop: throw StageStopped(stage: stageName, event: event, message: message)
                }
            }
        }
    }
}

/// An `exec` or `http` stage's spec with a test's stub in place of its plugin or destination:
/// a `StubStage`, or for `command:` (exec only) the stage itself running another program (with
/// its own limits and `env:`).
struct StubSpec: StageSpec {
    let original: any StageSpec
    let onError: ExecSpec.OnError
    let stub: TestStub

    var summary: String { "stubbed: " + original.summary }
    /// The stage's own references: a test gives them values whether or not the stub reads them.
    var secrets: [SecretReference] { original.secrets }

    func build(_ env: StageBuildEnvironment) throws -> any Stage {
        switch stub {
        case .pass: return StubStage(answer: .pass, stageName: env.stageName, onError: onError)
        case .drop: return StubStage(answer: .drop, stageName: env.stageName, onError: onError)
        case .error(let text): return StubStage(answer: .error(text), stageName: env.stageName, onError: onError, http: original is HTTPSpec)
        case .events(let values):
            // The loader checked each is an object with an id and a type.
            let documents = values.compactMap { try? JSONDocument(parsing: Array($0.json.utf8)) }
            return StubStage(answer: .events(documents), stageName: env.stageName, onError: onError)
        case .command(let command):
            // The loader allows a command only in place of an exec stage's plugin.
            guard var spec = original as? ExecSpec else { return StubStage(answer: .pass, stageName: env.stageName, onError: onError) }
            spec.command = command
            return try spec.build(env)
        }
    }
}
