import Foundation
import HTTPTypes
import Hummingbird
import HummingbirdCore
import Logging
import Lymph
import NIOCore
import NIOPosix
import ServiceLifecycle
import Synchronization

/// `lymph serve`: takes IMMUNE webhooks over HTTP, stores each durably in the spool before
/// answering 202, and drains the spool through the pipeline in a worker.
///
/// The HTTP server and the worker are `Service`s in one `ServiceGroup`. Graceful shutdown goes
/// in reverse order: the server stops accepting and answers the requests in flight, then the
/// worker finishes its batches and the store is closed. Nothing that got a 202 is lost: it is
/// in the spool until its event has left the pipeline.
public final class WebhookServer: Sendable {
    public struct Options: Sendable {
        public var host: String
        public var port: Int
        public var path: String
        public var maxBody: Int
        public var maxSpool: Int
        public var maxConnections: Int
        /// Idle keep-alive connections (and stalled requests) are closed after this
        /// (`serve.idle_timeout`).
        public var idleTimeout: Duration = .seconds(30)
        /// Threads reading and writing sockets; a connection's handlers run on its loop too. The
        /// pipeline worker and the spool writer have threads of their own: on a small machine one
        /// loop leaves them a core (on two cores a second loop competes with them for it).
        public var eventLoops = max(1, ProcessInfo.processInfo.activeProcessorCount / 2)
        /// How long graceful shutdown may take before in-flight work is cancelled.
        public var shutdownTimeout: Duration = .seconds(30)
        /// Reload the pipeline when its file changes (`--watch`).
        public var watch = false
        /// The server's group takes SIGTERM and SIGINT (graceful shutdown) and SIGHUP (reload).
        public var handleSignals = false

        public init(settings: ServeSettings, watch: Bool = false) {
            self.watch = watch
            let listen = ServeSettings.parseListen(settings.listen) ?? ("127.0.0.1", 8080)
            host = listen.host
            port = listen.port
            path = settings.path
            maxBody = settings.maxBody
            maxSpool = settings.maxSpool
            maxConnections = settings.maxConnections
            idleTimeout = .milliseconds(Int64(settings.idleTimeout * 1000))
        }
    }

    let pipeline: Pipeline
    let options: Options
    let logger: Logger
    /// Where accepted webhooks wait for the worker (the SQLite file beside the state file).
    let spool: Spool<AnySpoolBackend>
    /// The spool's group-commit writer, which every webhook goes through.
    let writer: SpoolWriter
    let worker: PipelineWorker<AnySpoolBackend>
    /// With a PostgreSQL state: keeps this instance's spool lane and takes over dead instances'.
    let laneKeeper: PostgresLaneKeeper?
    public let metrics: ServeMetrics
    /// The pipeline as loaded, and its replacement on reload.
    let served: ServedPipeline
    let shuttingDown = Atomic<Bool>(false)
    /// Appends queued but not yet committed: counted against `max_spool` too.
    let queued = Atomic<Int>(0)
    /// Bytes of those appends: memory held for a slow disk is bounded by this, whatever
    /// `max_connections` and `max_body` allow.
    let queuedBytes = Atomic<Int>(0)
    static let maxQueuedBytes = 64 << 20
    /// A request waits at most this long for the spool's commit (IMMUNE waits 5 s in all).
    static let appendDeadline: Duration = .seconds(3)
    let group = Mutex<ServiceGroup?>(nil)
    /// Lines that could repeat on every request (503s under load; refused signatures, which
    /// anyone can send without a secret) are logged once a second: one line per request would
    /// let a sender fill the disk the log goes to, and slow the event loop that writes it.
    let spoolFullLog = LogThrottle(), spoolBusyLog = LogThrottle(), storeErrorLog = LogThrottle()
    let signatureRefusedLog = LogThrottle()

    static let signatureField = HTTPField.Name(WebhookSignature.header)!
    static let retryAfterSeconds = "5"

    /// `pipeline` must have been opened with a store (the spool lives in it), from `served`'s spec.
    public init(pipeline: Pipeline, served: ServedPipeline, options: Options, logger: Logger) throws {
        guard let store = pipeline.store, store.location != ":memory:" else {
            throw ServeError(
                message: "lymph serve needs the pipeline's state file for its spool; 'state: memory' cannot keep accepted webhooks across a restart")
        }
        self.pipeline = pipeline
        self.served = served
        self.options = options
        self.logger = logger
        metrics = served.metrics
        // Every webhook spooled passed `served.verifier` first (see `SpoolSource.handoffSignaturesChecked`).
        if let postgres = store.postgres {
            let lane = try postgres.blocking { try await PostgresSpool.open(holder: postgres.holder, lane: postgres.instance) }
            let keeper = PostgresLaneKeeper(spool: lane, logger: logger)
            laneKeeper = keeper
            spool = try Spool.open(
                postgres: postgres, keeper: keeper, maxItemBytes: pipeline.spec.parse.maxBytes,
                handoffSignaturesChecked: pipeline.verifyStageCount == 1, metrics: metrics, deadline: Self.appendDeadline)
        } else {
            laneKeeper = nil
            spool = try Spool.open(
                forState: store, maxItemBytes: pipeline.spec.parse.maxBytes, handoffSignaturesChecked: pipeline.verifyStageCount == 1,
                metrics: metrics, deadline: Self.appendDeadline, logger: logger)
        }
        writer = spool.writer
        var gate: (@Sendable () async throws -> Void)?
        if let keeper = laneKeeper {
            let (source, writer) = (spool.source, spool.writer)
            gate = {
                // Entries this process appended before it held its lane and that another instance
                // took over meanwhile (its lease was running out) are done: skipped, and out of
                // the depth. Nobody else appends to this lane, so they are consecutive.
                let done = try await keeper.waitForOwnLane()
                source.skip(through: done)
                let first = writer.firstSeq.load(ordering: .relaxed)
                if first > 0, done >= first { source.deleted.add(Int(done - first + 1), ordering: .relaxed) }
            }
        }
        worker = PipelineWorker(
            pipeline: pipeline, served: served, source: spool.source, metrics: metrics, logger: logger, startGate: gate)
    }

    /// Entries accepted and not yet committed as done.
    var spoolDepth: Int { spool.depth }

    /// Runs until `shutdown()`; `onListening` gets the bound address (port 0 picks one).
    public func run(onListening: @escaping @Sendable (String, Int) -> Void) async throws {
        // POSTs to the webhook path never reach the router: WebhookRequestHandler answers them
        // on the connection's event loop.
        let router = Router(context: BasicRequestContext.self)
        router.add(middleware: StatusCountMiddleware(metrics: metrics))
        router.get(RouterPath(options.path)) { _, _ in
            Response(
                status: .methodNotAllowed, headers: [.allow: "POST", .contentType: "application/json"],
                body: ResponseBody(byteBuffer: ByteBuffer(bytes: Self.jsonBytes(["error": "method_not_allowed", "message": "webhooks are POSTed here"]))))
        }
        router.get("/healthz") { _, _ in await self.health() }
        router.get("/metrics") { _, _ in await self.renderMetrics() }
        let host = options.host
        let app = Application(
            router: router,
            server: HTTPServerBuilder { responder in WebhookHTTP1Channel(responder: responder, server: self) },
            configuration: .init(
                address: .hostname(host, port: options.port), serverName: "lymph",
                availableConnectionsDelegate: MaximumAvailableConnections(options.maxConnections)),
            onServerRunning: { channel in onListening(host, channel.localAddress?.port ?? -1) },
            eventLoopGroupProvider: .shared(MultiThreadedEventLoopGroup(numberOfThreads: options.eventLoops)),
            logger: logger
        )
        // Shut down in reverse order: HTTP first (no new 202s), then the worker drains, then the
        // spool's writer commits what is left and stops.
        var services: [any Service] = [spool, worker, HTTPService(app: app, server: self)]
        if let laneKeeper { services.insert(laneKeeper, at: 1) }
        if options.watch { services.append(PipelineFileWatcher(served: served)) }
        if options.handleSignals { services.append(HangupReload(served: served)) }
        var configuration = ServiceGroupConfiguration(services: services, logger: logger)
        if options.handleSignals { configuration.gracefulShutdownSignals = [.sigterm, .sigint] }
        configuration.maximumGracefulShutdownDuration = options.shutdownTimeout
        let serviceGroup = ServiceGroup(configuration: configuration)
        group.withLock { $0 = serviceGroup }
        // A shutdown asked for before the group existed.
        if shuttingDown.load(ordering: .relaxed) { await serviceGroup.triggerGracefulShutdown() }
        // Closed by its service, and here too when the group fails before running it.
        defer { spool.close() }
        do {
            try await serviceGroup.run()
        } catch let error as IOError where error.errnoCode == EADDRINUSE {
            throw ServeError(message: "\(host):\(options.port) is already in use (another server listens there)", isAddressInUse: true)
        } catch let error as IOError where error.errnoCode == EADDRNOTAVAIL {
            throw ServeError(
                message:
                    "cannot listen on \(host):\(options.port): \(host) is not an address of this machine (127.0.0.1 for this machine only, 0.0.0.0 for all)",
                isAddressInUse: true)
        } catch let error as SocketAddressError.UnknownHost {
            throw ServeError(
                message: "cannot listen on \(host):\(options.port): no address found for '\(host)' (\(error.errorDescription))", isAddressInUse: true)
        }
    }

    /// Stops accepting (new requests get 503), answers those in flight, lets the worker finish
    /// its batches, then `run` returns.
    public func shutdown() async {
        shuttingDown.store(true, ordering: .relaxed)
        // A worker waiting for disk space stops waiting: what it had not finished stays spooled.
        pipeline.diskFull?.stop()
        if let g = group.withLock({ $0 }) { await g.triggerGracefulShutdown() }
    }

    // MARK: - Webhook decisions
    //
    // `WebhookRequestHandler` reads each webhook on its connection's event loop and asks these
    // what to answer; they do no I/O of their own, so a request is decided without a task hop.

    /// The answer due before the body is read: 503 while shutting down, 413 for a declared
    /// length over the limit. Nil when the body should be read.
    func refuseBeforeBody(_ headers: RequestHeaders) -> WebhookAnswer? {
        if shuttingDown.load(ordering: .relaxed) {
            return WebhookAnswer(
                .serviceUnavailable, ["error": "shutting_down", "message": "the server is shutting down; retry later"],
                retryAfter: Self.retryAfterSeconds)
        }
        // A declared length over the limit is refused before reading any of the body.
        if let declared = headers.contentLength, let n = Int(declared), n > options.maxBody { return tooLarge() }
        return nil
    }

    /// 413 (see `WebhookAnswer.tooLarge`).
    func tooLarge() -> WebhookAnswer { .tooLarge(maxBody: options.maxBody) }

    /// What to do with a complete webhook body: answer at once (401, 400, 503), or store it.
    /// A `.store` holds a place against `max_spool` until `stored` is called with its outcome.
    func admit(body: [UInt8], headers: RequestHeaders) -> WebhookAdmission {
        metrics.requestBytes.increment(by: Int64(body.count))
        let (verifier, keptHeaders) = served.intake
        if let verifier {
            if let problem = verifier.checkSignature(header: { headers.value($0) }, body: body[...], now: Timestamp.now()) {
                metrics.signatureFailure(reason: problem.reason)
                if let skipped = signatureRefusedLog.allow() {
                    logger.notice(
                        "signature refused", metadata: ["reason": "\(problem.reason)", "bytes": "\(body.count)", "since_last_line": "\(skipped)"])
                }
                return .answer(WebhookAnswer(.unauthorized, ["error": problem.reason, "message": problem.message]))
            }
        }
        let document: JSONDocument
        do { document = try JSONDocument(parsing: body) } catch {
            return .answer(WebhookAnswer(.badRequest, ["error": "invalid_json", "message": "the body is not valid JSON: \(error)"]))
        }
        guard document.root.kind == .object else {
            return .answer(WebhookAnswer(.badRequest, ["error": "not_an_object", "message": "the body must be a JSON object (an IMMUNE event)"]))
        }
        guard let id = document.root.member("id")?.string, !id.isEmpty else {
            return .answer(WebhookAnswer(.badRequest, ["error": "missing_id", "message": "the event has no string 'id'"]))
        }
        // The rest of parse's envelope (type, created_at, data): refused here, the sender told,
        // rather than accepted and then a dead letter.
        if let problem = ParseStage.envelopeProblem(document) {
            return .answer(WebhookAnswer(.badRequest, ["error": problem.reason, "message": problem.message]))
        }
        // max_age is judged at arrival (the worker judges by received_at too), so a backlog
        // never turns an accepted event into a rejected one.
        if let verifier, let problem = verifier.checkAge(document.root.member("created_at")?.stringBytes, now: Timestamp.now()) {
            metrics.signatureFailure(reason: problem.reason)
            return .answer(WebhookAnswer(.unauthorized, ["error": problem.reason, "message": problem.message]))
        }
        let waiting = queued.wrappingAdd(1, ordering: .relaxed).newValue
        if spoolDepth + waiting > options.maxSpool {
            queued.wrappingSubtract(1, ordering: .relaxed)
            if let skipped = spoolFullLog.allow() {
                logger.warning(
                    "spool full; answering 503", metadata: ["depth": "\(spoolDepth)", "max_spool": "\(options.maxSpool)", "since_last_line": "\(skipped)"])
            }
            return .answer(
                WebhookAnswer(
                    .serviceUnavailable, ["error": "spool_full", "message": "\(options.maxSpool) webhooks are waiting to be processed; retry later"],
                    retryAfter: Self.retryAfterSeconds))
        }
        let (item, replaced) = Self.spoolItem(body: body, headers: headers, kept: keptHeaders)
        // A body that was not UTF-8 is spooled with U+FFFD in its place: not the parsed bytes.
        let parsed = replaced ? nil : document
        let bytesWaiting = queuedBytes.wrappingAdd(Self.queuedSize(item, parsed), ordering: .relaxed).newValue
        if bytesWaiting > Self.maxQueuedBytes && waiting > 1 {
            release(itemBytes: Self.queuedSize(item, parsed))
            if let skipped = spoolBusyLog.allow() {
                logger.warning("spool commits are behind; answering 503", metadata: ["queued_bytes": "\(bytesWaiting)", "since_last_line": "\(skipped)"])
            }
            return .answer(
                WebhookAnswer(
                    .serviceUnavailable, ["error": "spool_busy", "message": "the spool is writing too slowly; retry later"],
                    retryAfter: Self.retryAfterSeconds))
        }
        return .store(item: item, id: id, body: parsed)
    }

    /// The answer once the spool has had its say on an admitted webhook: 202 when its entry is
    /// on disk; 503 when the store failed or missed the deadline (a stalled disk answers in
    /// bounded time; the entry may still be committed later, and the sender's retry is then
    /// dropped by dedup).
    func stored(_ outcome: Result<Int64, any Error>, id: String, itemBytes: Int) -> WebhookAnswer {
        release(itemBytes: itemBytes)
        switch outcome {
        case .success:
            metrics.spoolAppended.increment()
            return WebhookAnswer(.accepted, ["accepted": id])
        case .failure(let error):
            if let skipped = storeErrorLog.allow() {
                logger.error("could not store a webhook: \(error)", metadata: ["since_last_line": "\(skipped)"])
            }
            return WebhookAnswer(
                .serviceUnavailable, ["error": "store_unavailable", "message": "the webhook could not be stored; retry later"],
                retryAfter: Self.retryAfterSeconds)
        }
    }

    /// What a webhook waiting for its commit holds in memory: its entry, and its parsed body.
    static func queuedSize(_ item: [UInt8], _ body: JSONDocument?) -> Int { item.count + (body?.memorySize ?? 0) }

    private func release(itemBytes: Int) {
        queued.wrappingSubtract(1, ordering: .relaxed)
        queuedBytes.wrappingSubtract(itemBytes, ordering: .relaxed)
    }

    /// Counts a webhook request's answer and its time.
    func answered(status: HTTPResponse.Status, since start: ContinuousClock.Instant) {
        metrics.request(status: Int(status.code))
        metrics.requestDuration.record(ContinuousClock.now - start)
    }

    /// The delivery as the parse stage reads it: the headers that matter, and the raw body;
    /// `replaced`: the body was not UTF-8, and the entry holds U+FFFD for what was not.
    /// The headers kept are the content type and `kept` (`ServedPipeline.keptHeaders`: those
    /// the signature scheme and a dedup key read). IMMUNE's signature, the usual case, is taken
    /// as `RequestHeaders` found it, without a lookup.
    static func spoolItem(body: [UInt8], headers: RequestHeaders, kept: [String] = [WebhookSignature.header]) -> (item: [UInt8], replaced: Bool) {
        var out: [UInt8] = []
        out.reserveCapacity(body.count + body.count / 8 + 200)
        out.append(contentsOf: #"{"headers":{"#.utf8)
        var first = true
        func add(_ name: String, _ value: String?) {
            guard let value else { return }
            if !first { out.append(UInt8(ascii: ",")) }
            first = false
            JSONStringEncoder.append(name, to: &out)
            out.append(UInt8(ascii: ":"))
            JSONStringEncoder.append(value, to: &out)
        }
        add(HTTPField.Name.contentType.canonicalName, headers.contentType)
        for name in kept {
            if name == WebhookSignature.header {
                add(signatureField.canonicalName, headers.signature)
            } else {
                add(name, headers.value(Array(name.utf8)).map { String(decoding: $0, as: UTF8.self) })
            }
        }
        out.append(contentsOf: #"},"body":"#.utf8)
        let replaced = JSONStringEncoder.append(body, to: &out)
        out.append(contentsOf: #","received_at":"#.utf8)
        JSONStringEncoder.append(Timestamp.format(Timestamp.now()), to: &out)
        out.append(UInt8(ascii: "}"))
        return (out, replaced)
    }

    /// Store calls for `/healthz` and `/metrics` run here, not on Swift's threads, and are given
    /// a deadline: a slow disk makes them answer late or unhealthy, never stall the handlers.
    static let storeQueue = DispatchQueue(label: "lymph.serve.store", attributes: .concurrent)
    static let storeCallDeadline: Duration = .seconds(2)

    struct StoreCallTimeout: Error, CustomStringConvertible {
        var description: String { "no answer within \(WebhookServer.storeCallDeadline)" }
    }

    /// One kind of store call (the health probe, the metrics' depth), one at a time: a call given
    /// up at its deadline runs on until the store answers, and on a disk that hangs, each request
    /// starting another held another thread of Dispatch's pool for as long as the hang lasted.
    /// On Linux Swift's tasks run on that pool too: a few concurrent health checks took all of
    /// it, and every answer, the deadline's own timer among them, waited for the disk. A request
    /// while a call is in flight waits for that call's answer instead, within its own deadline.
    final class StoreCallGate<T: Sendable>: Sendable {
        let inFlight = Mutex<Task<T, any Error>?>(nil)
    }

    let probeGate = StoreCallGate<Void>(), depthGate = StoreCallGate<Double?>()

    func storeCall<T: Sendable>(_ gate: StoreCallGate<T>, _ body: @escaping @Sendable () throws -> T) async throws -> T {
        let call = gate.inFlight.withLock { current -> Task<T, any Error> in
            if let current { return current }
            // Its last step takes the lock, so it cannot end before it is recorded here.
            let task = Task<T, any Error> {
                let result = await withCheckedContinuation { (c: CheckedContinuation<Result<T, any Error>, Never>) in
                    Self.storeQueue.async { c.resume(returning: Result { try body() }) }
                }
                gate.inFlight.withLock { $0 = nil }
                return try result.get()
            }
            current = task
            return task
        }
        return try await FirstOf.value(within: Self.storeCallDeadline, timeoutError: StoreCallTimeout()) { try await call.value }
    }

    func health() async -> Response {
        var problems: [String] = []
        let backend = spool.backend
        do {
            try await storeCall(probeGate) { try backend.probeWritable() }
            // A write went through: the last append's failure is over (no webhook may have
            // come since to clear it).
            writer.clearProblem()
        } catch {
            problems.append("the spool is not writable: \(error)")
        }
        if let p = writer.problem { problems.append("the spool cannot be written: \(p)") }
        // The problem says what it waits for (space, or the database).
        if let p = pipeline.diskFull?.problem { problems.append("the pipeline worker waits: \(p)") }
        if let p = worker.problem { problems.append(p) }
        if let p = laneKeeper?.problem { problems.append(p) }
        if let p = pipeline.store?.postgres?.problem { problems.append(p) }
        if shuttingDown.load(ordering: .relaxed) { problems.append("shutting down") }
        var out: [UInt8] = Array(#"{"status":"#.utf8)
        JSONStringEncoder.append(problems.isEmpty ? "ok" : "unhealthy", to: &out)
        let loaded = served.current
        out.append(contentsOf: #","spool_depth":\#(spoolDepth),"pipeline":{"sha256":"#.utf8)
        JSONStringEncoder.append(loaded.sha256, to: &out)
        out.append(contentsOf: #","loaded_at":"#.utf8)
        JSONStringEncoder.append(Timestamp.format(loaded.loadedAt), to: &out)
        out.append(contentsOf: #"},"problems":["#.utf8)
        for (i, p) in problems.enumerated() {
            if i > 0 { out.append(UInt8(ascii: ",")) }
            JSONStringEncoder.append(p, to: &out)
        }
        out.append(contentsOf: "]}\n".utf8)
        return Response(
            status: problems.isEmpty ? .ok : .serviceUnavailable, headers: [.contentType: "application/json"],
            body: ResponseBody(byteBuffer: ByteBuffer(bytes: out)))
    }

    func renderMetrics() async -> Response {
        var oldestAge = 0.0
        let backend = spool.backend
        if spoolDepth > 0, let oldest = try? await storeCall(depthGate, { try backend.depth().oldestReceivedAt }) ?? nil {
            oldestAge = max(0, Timestamp.now() - oldest)
        }
        let bytes = metrics.render(depth: spoolDepth, oldestAge: oldestAge)
        return Response(
            status: .ok, headers: [.contentType: "text/plain; version=0.0.4; charset=utf-8"],
            body: ResponseBody(byteBuffer: ByteBuffer(bytes: bytes)))
    }

    static func jsonBytes(_ fields: KeyValuePairs<String, String>) -> [UInt8] {
        var out: [UInt8] = [UInt8(ascii: "{")]
        for (i, (k, v)) in fields.enumerated() {
            if i > 0 { out.append(UInt8(ascii: ",")) }
            JSONStringEncoder.append(k, to: &out)
            out.append(UInt8(ascii: ":"))
            JSONStringEncoder.append(v, to: &out)
        }
        out.append(contentsOf: "}\n".utf8)
        return out
    }
}

/// The HTTP application as a service that also marks the server as shutting down the moment
/// graceful shutdown starts, so requests still arriving on open connections get 503.
struct HTTPService<App: Service>: Service {
    let app: App
    let server: WebhookServer

    func run() async throws {
        try await withGracefulShutdownHandler {
            try await app.run()
        } onGracefulShutdown: {
            server.shuttingDown.store(true, ordering: .relaxed)
        }
    }
}

/// The result of `operation`, or `timeoutError` once `deadline` passes, whichever is first. The
/// operation is not cancelled (a spool append that finishes late still counts). Hand-made because
/// a task group waits for its children, and a store call blocked on a stalled disk cannot be
/// cancelled: racing the two in a group would wait for the very call it gives up on.
enum FirstOf {
    final class Settler<T: Sendable>: Sendable {
        struct State {
            var waiter: CheckedContinuation<T, any Error>?
            var early: Result<T, any Error>?
            var settled = false
        }
        let state = Mutex(State())

        func settle(_ result: Result<T, any Error>) {
            let waiter: CheckedContinuation<T, any Error>? = state.withLock { s in
                if s.settled { return nil }
                s.settled = true
                if let w = s.waiter { return w }
                s.early = result
                return nil
            }
            waiter?.resume(with: result)
        }

        func wait() async throws -> T {
            try await withCheckedThrowingContinuation { (c: CheckedContinuation<T, any Error>) in
                let early: Result<T, any Error>? = state.withLock { s in
                    if let r = s.early { return r }
                    s.waiter = c
                    return nil
                }
                if let early { c.resume(with: early) }
            }
        }
    }

    static func value<T: Sendable>(
        within deadline: Duration, timeoutError: any Error & Sendable,
        _ operation: @escaping @Sendable () async throws -> T
    ) async throws -> T {
        let settler = Settler<T>()
        Task {
            do { settler.settle(.success(try await operation())) } catch { settler.settle(.failure(error)) }
        }
        let timer = Task {
            if (try? await Task.sleep(for: deadline)) != nil { settler.settle(.failure(timeoutError)) }
        }
        defer { timer.cancel() }
        return try await settler.wait()
    }
}

public struct ServeError: Error, CustomStringConvertible {
    public let message: String
    /// The listening address is taken or not this machine's: a usage problem (exit 2), not a
    /// failure while serving.
    public var isAddressInUse = false
    public var description: String { message }
}
