import ArgumentParser
import Dispatch
import Foundation
import Logging
import Lymph
import LymphServe

struct ServeCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "serve",
        abstract: "Receive IMMUNE webhooks over HTTP, store them durably, and run them through a pipeline.",
        discussion: """
            POST <path>: 202 {"accepted": ID} once the delivery is in the spool (durable on disk); 401 bad or \
            missing signature (when the pipeline verifies); 400 not a JSON object with an id; 413 body over \
            max_body; 503 with Retry-After when the spool is full or the server is stopping. GET /healthz, \
            GET /metrics (Prometheus). SIGTERM/SIGINT: stop accepting, answer requests in flight, finish the \
            batches in hand, exit 0; a second signal exits at once (the spool keeps everything accepted). \
            SIGHUP (or a change of the file, with --watch) reloads the pipeline file: an invalid one is \
            refused with its errors in the log and the running pipeline stays; a valid one checks the next \
            request's signature at once and takes over the worker between two batches. 'serve:' settings \
            and 'state' apply at the next restart.
            """
    )

    @Argument(help: "The pipeline file.", completion: .pipelineFile)
    var pipeline: String

    @Option(help: "HOST:PORT to listen on (default: the file's serve.listen, else 127.0.0.1:8080; port 0 picks a free one).")
    var listen: String?

    @Option(help: "Path that takes webhooks (default: the file's serve.path, else /webhooks).")
    var path: String?

    @Flag(help: "Serve a pipeline that has no verify stage: anyone who can reach the port can submit events.")
    var allowUnsigned = false

    @Option(
        help: ArgumentHelp(
            "With a PostgreSQL state: this instance's name, unique among the instances on the database and the same across its restarts (default: HOST:PORT).",
            valueName: "name"))
    var instance: String?

    @Flag(help: "Reload the pipeline when its file changes (checked every second), as SIGHUP does.")
    var watch = false

    @Option(name: .customLong("log-format"), help: "Log lines on stderr as text or json.")
    var logFormat: String = "text"

    @Option(name: .customLong("log-level"), help: "trace, debug, info, notice, warning, error or critical.")
    var logLevel: String = "info"

    func validate() throws {
        guard ["text", "json"].contains(logFormat) else { throw ValidationError("--log-format must be text or json") }
        guard Logger.Level(rawValue: logLevel) != nil else {
            throw ValidationError("--log-level must be one of trace, debug, info, notice, warning, error, critical")
        }
        if let listen, ServeSettings.parseListen(listen) == nil { throw ValidationError("--listen must be HOST:PORT, such as 127.0.0.1:8080") }
        if let path, let problem = ServeSettings.pathProblem(path) { throw ValidationError("--path \(problem)") }
    }

    func run() async throws {
        let file: PipelineSpec, sha256: String
        do {
            let loaded = try PipelineLoader.loadWithDigest(path: pipeline)
            for w in loaded.warnings { Console.error(w.description) }
            (file, sha256) = (loaded.spec, loaded.sha256)
        } catch {
            Console.error(error.description)
            throw ExitCode(2)
        }
        let spec: PipelineSpec
        do {
            spec = try ServedPipeline.prepare(file, file: pipeline, listen: listen, path: path, allowUnsigned: allowUnsigned)
        } catch {
            Console.error("lymph: \(error)")
            throw ExitCode(2)
        }
        if let warning = OpenFileLimit.raise(for: spec.serve.maxConnections) { Console.error("lymph serve: warning: \(warning)") }
        if !spec.verifiesSignatures {
            Console.error("lymph serve: warning: --allow-unsigned: the pipeline has no verify stage; unsigned webhooks are accepted")
        }
        // The state file syncs on commit too: the spool forgets an entry only after its
        // work is committed, and that must hold across a power cut, not only a crash.
        // A full disk pauses the worker until space returns, instead of ending the server.
        let port = ServeSettings.parseListen(spec.serve.listen)?.port ?? 0
        let postgres = try await PipelineFile.openPostgres(pipeline, spec, instance: instance ?? "\(PipelineFile.hostName):\(port)")
        let opened: Pipeline
        do {
            opened = try PipelineFile.open(pipeline) {
                try Pipeline.open(
                    spec, requireStore: true, storeDurability: .full, concurrentReads: false, diskFull: Self.diskFullWait(), postgres: postgres)
            }
        } catch {
            await postgres?.close()
            throw error
        }
        defer { opened.close() }
        let logger = Logger(label: "lymph.serve")
        let served = ServedPipeline(
            path: pipeline, file: file, sha256: sha256, prepared: spec, verifier: opened.verifier,
            allowUnsigned: allowUnsigned, metrics: ServeMetrics(), logger: logger)
        let server: WebhookServer
        do {
            var options = WebhookServer.Options(settings: spec.serve, watch: watch)
            options.handleSignals = true
            server = try WebhookServer(pipeline: opened, served: served, options: options, logger: logger)
        } catch let error as StoreLockError {
            await postgres?.close()
            Console.error("lymph: \(pipeline): \(error)")
            throw ExitCode(2)
        } catch {
            await postgres?.close()
            Console.error("lymph: \(error)")
            throw ExitCode(3)
        }
        // The server's service group shuts down gracefully on SIGTERM/SIGINT and reloads on
        // SIGHUP. SignalTrap says so on stderr and turns a second SIGTERM/SIGINT into an exit
        // at once (the spool still holds everything accepted), which the group cannot: it
        // ignores a second shutdown signal, and its cancellation waits for tasks to end.
        let signals = SignalTrap(stopOn: [SIGINT, SIGTERM], handling: [SIGHUP: {}]) { sig in
            Console.error("lymph serve: \(SignalTrap.name(sig)): finishing requests in flight and the batches in hand (again to exit at once)")
        }
        defer { signals.cancel() }
        let route = spec.serve.path
        do {
            try await server.run { host, port in
                // On stderr for people and scripts: the port is known only now when 0 was asked for.
                Console.error("lymph serve: listening on http://\(host.contains(":") ? "[\(host)]" : host):\(port)\(route)")
            }
        } catch let error as ServeError where error.isAddressInUse {
            await postgres?.close()
            ChildProcesses.killAll()
            Console.error("lymph serve: \(error)")
            throw ExitCode(2)
        } catch {
            await postgres?.close()
            ChildProcesses.killAll()
            Console.error("lymph serve: stopped: \(error)")
            throw ExitCode(3)
        }
        // The lease given up: another instance takes what this one left in the spool at once.
        await postgres?.close()
        Console.error("lymph serve: stopped")
    }

    /// The worker's wait for disk space (or the database), said in the log as it starts and ends.
    static func diskFullWait() -> DiskFullWait {
        let logger = Logger(label: "lymph.serve")
        return DiskFullWait { problem in
            if let problem {
                logger.error("the worker waits: \(problem)")
            } else {
                logger.notice("the worker's write went through after waiting: it goes on")
            }
        }
    }
}
