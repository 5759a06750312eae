import Foundation

/// `exec`: a stage that is an external program (a shell script, `jq`, a Python script) speaking
/// JSON over stdin/stdout. See docs/stages.md for the contract.
public struct ExecSpec: StageSpec {
    /// `mode:`: one process per event (`event`), or long-lived processes answering a line per event
    /// (`stream`).
    public enum Mode: String, Sendable { case event, stream }
    /// `output:`: the plugin's output replaces the event (`events`), or is logged and the event
    /// goes on unchanged (`ignore`).
    public enum Output: String, Sendable { case events, ignore }
    /// `on_error:`: what a failure does once retries are spent: dead-letter the event, drop it, or
    /// end the run (exit 3).
    public enum OnError: String, Sendable { case deadLetter = "dead_letter", drop, stop }

    /// `command:`: the program and its arguments.
    public var command: ExecCommand
    /// `mode:`, `event` by default.
    public var mode: Mode
    /// `output:`, `events` by default.
    public var output: Output
    /// Seconds allowed per event (event mode: the whole process; stream mode: one answer).
    public var timeout: Double
    /// `workers:`: processes at once (1 to 256, default 1); events still leave in input order.
    public var workers: Int
    /// `retries:`: attempts after the first failure (0 to 20, default 0).
    public var retries: Int
    /// First retry delay in seconds; doubles on each further attempt.
    public var backoff: Double
    /// `on_error:`, `dead_letter` by default.
    public var onError: OnError
    /// Extra environment: plain values, or references read when the stage is built.
    public var environment: [(name: String, value: ExecEnvironmentValue)]
    /// `max_output:`: most bytes of stdout per event in event mode, of one answer line in stream
    /// mode.
    public var maxOutput: Int
    /// `max_in_flight:`: stream mode's most unanswered events per process.
    public var maxInFlight: Int

    /// The command, mode, output, timeout and workers, then retries when any and `on_error`.
    public var summary: String {
        var s = "\(command.display), mode \(mode.rawValue), output \(output.rawValue), timeout \(DedupSpec.describe(timeout)), workers \(workers)"
        if retries > 0 { s += ", retries \(retries)" }
        s += ", on_error \(onError.rawValue)"
        return s
    }

    /// The `env:` values that are `env:NAME` or `file:PATH` references.
    public var secrets: [SecretReference] {
        environment.compactMap { if case .reference(let r) = $0.value { return r } else { return nil } }
    }

    /// Reads the `env:` references and builds the stage with the plugin's environment; the resolved
    /// secrets are redacted from whatever plugin output is logged.
    public func build(_ env: StageBuildEnvironment) throws -> any Stage {
        var extra: [(String, String)] = []
        var redactions: [String] = []
        for (name, value) in environment {
            switch value {
            case .plain(let text):
                extra.append((name, text))
            case .reference(let r):
                let bytes = try r.resolve(environment: env.environment)
                if bytes.contains(0) { throw SecretError(reference: r, message: "holds a NUL character, which no environment variable can carry") }
                let secret = String(decoding: bytes, as: UTF8.self)
                extra.append((name, secret))
                redactions.append(secret)
            }
        }
        let processEnvironment = ExecEnvironment(inherited: env.environment, pipeline: env.pipelineName, stage: env.stageName, extra: extra)
        return ExecStage(spec: self, stageName: env.stageName, environment: processEnvironment, redactions: redactions)
    }

    static let modes = ["event", "stream"]
    static let outputs = ["events", "ignore"]
    static let onErrors = ["dead_letter", "drop", "stop"]
    static let defaultMaxOutput = 1 << 20

    static let kind = StageKind(
        name: "exec",
        optionKeys: [
            "command", "mode", "output", "timeout", "workers", "retries", "backoff",
            "on_error", "env", "max_output", "max_in_flight", "schema",
        ]
    ) { m, d in
        let folder = PathParent.of(d.file)
        var command: ExecCommand?
        if let c = m["command"] {
            command = ExecCommand.configure(c, pipelineFolder: folder.isEmpty ? "." : folder, &d)
        } else {
            d.error("exec needs 'command:', the program to run (a list like [plugins/x.sh, --flag] or a string)", at: m.owner)
        }
        func choice<T: RawRepresentable<String>>(_ key: String, _ allowed: [String], _ fallback: T) -> T {
            guard let v = m[key], let text = v.string(&d, key) else { return fallback }
            guard let value = T(rawValue: text) else {
                d.error("\(key) must be one of \(allowed.joined(separator: ", "))\(Suggestion.didYouMean(text, in: allowed))", at: v)
                return fallback
            }
            return value
        }
        let mode: Mode = choice("mode", modes, .event)
        let output: Output = choice("output", outputs, .events)
        let onError: OnError = choice("on_error", onErrors, .deadLetter)
        let timeout = m["timeout"].flatMap { $0.duration(&d, "timeout") } ?? 5
        if let t = m["timeout"], timeout > 3600 { d.error("timeout must be at most 1h", at: t) }
        let workers = m["workers"].flatMap { $0.int(&d, "workers", range: 1...256) } ?? 1
        let retries = m["retries"].flatMap { $0.int(&d, "retries", range: 0...20) } ?? 0
        let backoff = m["backoff"].flatMap { $0.duration(&d, "backoff") } ?? 0.1
        let maxOutput = m["max_output"].flatMap { $0.byteSize(&d, "max_output", range: 64...(256 << 20)) } ?? defaultMaxOutput
        let maxInFlight = m["max_in_flight"].flatMap { $0.int(&d, "max_in_flight", range: 1...4096) } ?? 64
        if mode == .event, let v = m["max_in_flight"] {
            d.error("max_in_flight applies to 'mode: stream' only (event mode runs one process per event)", at: v)
        }
        var environment: [(String, ExecEnvironmentValue)] = []
        if let e = m["env"], let em = ConfigMapping(e, context: "env", diagnostics: &d) {
            for entry in em.entries {
                guard ExecEnvironment.isValidName(entry.key) else {
                    d.error(
                        "environment variable name '\(entry.key.cutForMessage())' must be letters, digits and '_', not starting with a digit",
                        at: entry.keyValue)
                    continue
                }
                if ExecEnvironment.reservedNames.contains(entry.key) {
                    d.error("\(entry.key) is set by Lymph for every process and cannot be overridden", at: entry.keyValue)
                    continue
                }
                guard let text = entry.value.string(&d, "env.\(entry.key)") else { continue }
                if text.utf8.contains(0) {
                    d.error("env.\(entry.key) holds a NUL character, which no environment variable can carry", at: entry.value)
                    continue
                }
                if let reference = SecretReference(text) {
                    environment.append((entry.key, .reference(reference)))
                } else {
                    environment.append((entry.key, .plain(text)))
                }
            }
        }
        guard let command else { return nil }
        return ExecSpec(
            command: command, mode: mode, output: output, timeout: timeout, workers: workers, retries: retries,
            backoff: backoff, onError: onError, environment: environment, maxOutput: maxOutput, maxInFlight: maxInFlight)
    }
}

/// A value of `exec.env`: written in the file, or read from the environment or a file at start.
public enum ExecEnvironmentValue: Sendable {
    case plain(String)
    case reference(SecretReference)
}
