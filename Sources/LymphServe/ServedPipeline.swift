import Foundation
import Logging
import Lymph
import Synchronization

/// The pipeline `lymph serve` runs, as loaded from its file, and its replacement when the file
/// is reloaded (SIGHUP, or `--watch`) while the server keeps taking webhooks.
///
/// A reload loads and checks the file, reads its secrets and builds its signature check; any
/// problem is logged with its `FILE:LINE:COLUMN` and the running pipeline stays. Otherwise the
/// new signature check applies to the next request at once, and the worker swaps pipelines
/// between two batches (`PipelineWorker`): connections, the spool and the 202s do not notice.
/// What cannot change while serving (`serve:` settings, `state`) is reported and kept until a
/// restart.
public final class ServedPipeline: Sendable {
    /// The pipeline file as `lymph serve` runs it, and where it came from.
    public struct Loaded: Sendable {
        /// As `prepare` made it.
        public let spec: PipelineSpec
        /// `serve:` and `state` as the file says (before the command line's options).
        let fileServe: ServeSettings
        let fileState: String?
        /// SHA-256 of the file's bytes, in hex (as `sha256sum` prints it).
        public let sha256: String
        public let loadedAt: Double
    }

    /// Why a pipeline cannot be served as written.
    public struct Refusal: Error, Sendable, CustomStringConvertible {
        public let description: String
    }

    /// What a reload did.
    public enum ReloadOutcome: Sendable, Equatable {
        /// The new pipeline takes over between two batches.
        case swapping(sha256: String)
        /// Refused, with the reason logged; the running pipeline stays.
        case refused(String)
    }

    public let path: String
    let allowUnsigned: Bool
    let logger: Logger
    let metrics: ServeMetrics
    private struct State {
        var loaded: Loaded
        var verifier: VerifyStage?
        /// The request headers spooled with each webhook (see `keptHeaders(of:verifier:)`).
        var keptHeaders: [String]
        /// Checked and waiting for the worker to swap it in.
        var pending: Loaded?
        /// The worker's current run, stopped to swap (nil while none runs).
        var control: RunControl?
        var wake: (@Sendable () -> Void)?
    }
    private let state: Mutex<State>

    /// `file` is the spec as loaded from `path`, with the file's `sha256`; `prepared` the same
    /// as `prepare` made it, which the server opened; `verifier` that pipeline's signature check.
    public init(
        path: String, file: PipelineSpec, sha256: String, prepared: PipelineSpec, verifier: VerifyStage?, allowUnsigned: Bool,
        metrics: ServeMetrics, logger: Logger
    ) {
        self.path = path
        self.allowUnsigned = allowUnsigned
        self.metrics = metrics
        self.logger = logger
        let loaded = Loaded(spec: prepared, fileServe: file.serve, fileState: file.statePath, sha256: sha256, loadedAt: Timestamp.now())
        state = Mutex(State(loaded: loaded, verifier: verifier, keptHeaders: Self.keptHeaders(of: prepared, verifier: verifier)))
    }

    /// The spec as `lymph serve` runs it: `listen` and `path` from the command line over the
    /// file's, the parse stage sized for `max_body`. Refused: a pipeline without `verify`
    /// (unless `allowUnsigned`: anyone who can reach the port could submit events), and
    /// `state: memory` (the spool needs a file).
    public static func prepare(
        _ spec: PipelineSpec, file: String, listen: String? = nil, path: String? = nil,
        allowUnsigned: Bool
    ) throws(Refusal) -> PipelineSpec {
        var spec = spec
        if let listen { spec.serve.listen = listen }
        if let path { spec.serve.path = path }
        if !spec.verifiesSignatures && !allowUnsigned {
            throw Refusal(
                description:
                    "\(file): the pipeline has no verify stage, so lymph serve would accept unsigned webhooks from anyone who can reach it; add '- verify: {secrets: [env:IMMUNE_WEBHOOK_SECRET]}' after parse, or pass --allow-unsigned"
            )
        }
        guard spec.statePath != nil || spec.postgres != nil else {
            throw Refusal(description: "\(file): lymph serve keeps accepted webhooks in the pipeline's state file; 'state: memory' cannot (set 'state: PATH')")
        }
        spec.parse = SpoolWriter.parseStage(for: spec)
        return spec
    }

    /// The pipeline loaded last (or being swapped in).
    public var current: Loaded { state.withLock { $0.pending ?? $0.loaded } }

    /// The signature check for the next request.
    var verifier: VerifyStage? { state.withLock { $0.verifier } }

    /// The signature check for the next request, and the headers to spool with it.
    var intake: (verifier: VerifyStage?, keptHeaders: [String]) { state.withLock { ($0.verifier, $0.keptHeaders) } }

    /// The headers a spooled webhook keeps (lowercased), besides its content type: those its
    /// signature scheme reads, and those a dedup stage takes its key from.
    static func keptHeaders(of spec: PipelineSpec, verifier: VerifyStage?) -> [String] {
        var names = verifier?.verifier.scheme.headerNames ?? [WebhookSignature.header]
        for entry in spec.stages {
            if let dedup = entry.spec as? DedupSpec, case .header(let name) = dedup.key, !names.contains(name) { names.append(name) }
        }
        return names
    }

    /// Loads the file again and, when it is valid, has the worker swap it in. `trigger` says
    /// why, for the log.
    @discardableResult
    public func reload(trigger: String, environment: [String: String] = ProcessInfo.processInfo.environment) -> ReloadOutcome {
        let running = current
        let loaded: (spec: PipelineSpec, warnings: [ConfigDiagnostic], sha256: String)
        do {
            loaded = try PipelineLoader.loadWithDigest(path: path)
        } catch {
            return refuse(trigger, "the file has errors; the running pipeline stays", details: error.diagnostics.map(\.description))
        }
        for warning in loaded.warnings { logger.warning("\(warning.description)") }
        // What cannot change while serving stays as the server started, said once per reload.
        var spec = loaded.spec
        var kept: [String] = []
        let changed = spec.serve.changedKeys(from: running.fileServe)
        if !changed.isEmpty { kept.append("serve settings (\(changed.joined(separator: ", ")))") }
        if spec.statePath != running.fileState || spec.postgres != running.spec.postgres { kept.append("state") }
        spec.serve = running.spec.serve
        spec.statePath = running.spec.statePath
        spec.postgres = running.spec.postgres
        let prepared: PipelineSpec
        do {
            prepared = try Self.prepare(spec, file: path, allowUnsigned: allowUnsigned)
        } catch {
            return refuse(trigger, "\(error); the running pipeline stays", details: [])
        }
        // Secrets are read now, so a missing one refuses the reload instead of stopping the worker.
        let verifier: VerifyStage?
        do {
            verifier = try Self.verifier(of: prepared, environment: environment)
        } catch let error as SecretError {
            let place = error.line.map { ":\($0):\(error.column ?? 1)" } ?? ""
            return refuse(trigger, "\(path)\(place): \(error); the running pipeline stays", details: [])
        } catch {
            return refuse(trigger, "\(path): \(error); the running pipeline stays", details: [])
        }
        if !kept.isEmpty {
            logger.warning("\(kept.joined(separator: " and ")) changed in \(path): they apply at the next restart; kept as they are until then")
        }
        let next = Loaded(spec: prepared, fileServe: running.fileServe, fileState: running.fileState, sha256: loaded.sha256, loadedAt: Timestamp.now())
        let (control, wake) = state.withLock { s in
            s.pending = next
            s.verifier = verifier
            s.keptHeaders = Self.keptHeaders(of: prepared, verifier: verifier)
            return (s.control, s.wake)
        }
        control?.requestStopBetweenBatches(signal: SIGHUP)
        wake?()
        logger.notice(
            "pipeline loaded; the worker swaps it in after the batch in hand (webhooks already in the spool are processed by it)",
            metadata: ["trigger": "\(trigger)", "sha256": "\(loaded.sha256)"])
        return .swapping(sha256: loaded.sha256)
    }

    private func refuse(_ trigger: String, _ message: String, details: [String]) -> ReloadOutcome {
        metrics.reloadFailures.increment()
        // The problems first, each with its FILE:LINE:COLUMN, then the verdict.
        for line in details { logger.error("\(line)") }
        logger.error("reload refused: \(message)", metadata: ["trigger": "\(trigger)"])
        return .refused(message)
    }

    /// The signature check `lymph serve` applies before spooling: the pipeline's first verify
    /// stage, secrets read from `environment`.
    static func verifier(of spec: PipelineSpec, environment: [String: String]) throws -> VerifyStage? {
        try Pipeline.checkSecrets(spec, environment: environment)
        guard let verify = spec.stages.lazy.compactMap({ $0.spec as? VerifySpec }).first else { return nil }
        return try verify.stage(environment: environment)
    }

    // MARK: - The worker's side

    /// The worker starts a run: a reload stops it with `control`, and `wake` rouses it when it
    /// waits for the spool.
    func running(_ control: RunControl, wake: @escaping @Sendable () -> Void) {
        state.withLock { s in
            s.control = control
            s.wake = wake
            // A reload that came between two runs.
            if s.pending != nil { control.requestStopBetweenBatches(signal: SIGHUP) }
        }
    }

    /// The pipeline to swap in, if a reload is waiting.
    func takePending() -> Loaded? {
        state.withLock { s in
            defer { s.pending = nil }
            return s.pending
        }
    }

    /// The worker swapped `loaded` in.
    func swapped(_ loaded: Loaded) {
        metrics.reloads.increment()
        state.withLock { $0.loaded = loaded }
    }

    /// The worker could not open `loaded`: the old pipeline runs again, with its signature check.
    func swapFailed(_ loaded: Loaded, keeping old: Loaded, verifier: VerifyStage?, error: any Error) {
        metrics.reloadFailures.increment()
        state.withLock { s in
            if s.pending == nil {
                s.verifier = verifier
                s.keptHeaders = Self.keptHeaders(of: old.spec, verifier: verifier)
            }
        }
        logger.error(
            "reload failed while opening the new pipeline: \(error); the running pipeline stays",
            metadata: ["sha256": "\(loaded.sha256)", "kept": "\(old.sha256)"])
    }
}
