import Foundation
import Logging

/// Runs an external program as a stage (`exec`), in event mode (a process per event) or stream
/// mode (long-lived processes answering line by line). See docs/stages.md for the contract.
///
/// Outcomes keep input order whatever order processes finish in. A failed event is retried
/// (`retries`, exponential backoff from `backoff`) unless it cannot succeed (exit 65, bad
/// output), then handled by `on_error`.
public final class ExecStage: Stage {
    let spec: ExecSpec
    let stageName: String
    let logger: Logger
    let eventRunner: ExecEventRunner?
    let slots: ProcessSlots
    let streamWorkers: [StreamWorker]
    let redact: Redactor

    /// Event mode with one worker runs one batch at a time, so a side-effect plugin (a pager,
    /// a chat message) sees events in input order across batches too; one process at a time
    /// gains nothing from overlapping batches anyway. Otherwise batches overlap (the output
    /// order is kept either way).
    public var runsConcurrently: Bool { spec.mode == .stream || spec.workers > 1 }

    init(spec: ExecSpec, stageName: String, environment: ExecEnvironment, redactions: [String]) {
        let redact = Redactor(redactions)
        self.redact = redact
        self.spec = spec
        self.stageName = stageName
        var logger = Logger(label: "lymph.exec")
        logger[metadataKey: "stage"] = "\(stageName)"
        self.logger = logger
        self.slots = ProcessSlots(spec.workers)
        // A plugin that exits before reading its stdin must cost an EPIPE, not Lymph's life.
        signal(SIGPIPE, SIG_IGN)
        // Inherited as ignored (some supervisors do that), SIGCHLD would have the kernel reap
        // plugins by itself, and their exit statuses would be lost.
        signal(SIGCHLD, SIG_DFL)
        switch spec.mode {
        case .event:
            eventRunner = ExecEventRunner(
                command: spec.command, environment: environment, stageName: stageName, timeout: spec.timeout,
                maxOutput: spec.maxOutput, logger: logger, redact: redact)
            streamWorkers = []
        case .stream:
            eventRunner = nil
            streamWorkers = (0..<spec.workers).map { n in
                var l = logger
                l[metadataKey: "worker"] = "\(n + 1)"
                return StreamWorker(
                    command: spec.command, environment: environment, stageName: stageName, timeout: spec.timeout,
                    maxInFlight: spec.maxInFlight, maxLineBytes: spec.maxOutput, logger: l, redact: redact)
            }
        }
    }

    /// How long plugins may go on working once the run is asked to stop (a first SIGTERM, SIGINT
    /// or SIGHUP): the batches in flight are finished, but a plugin that hangs would hold the
    /// stop for its timeout, event after event, until a supervisor's SIGKILL threw all of it
    /// away. Past this, what is still running is stopped, and its events, and those of the
    /// batches after it, are dead letters (`plugin_cancelled`) for `lymph replay`.
    public static let stopGrace = RunControl.stopGrace
    /// The longest wait before a retry, however far `backoff` doubles.
    public static let maxBackoff = 60.0

    /// Runs the plugin on every event, retrying the failures that may succeed on another attempt,
    /// and turns what is still failed into a dead letter, a drop or a thrown `StageStopped`
    /// (`on_error`).
    public func process(_ events: [Event], context: StageContext) async throws -> [StageOutcome] {
        var results = [Result<StageOutcome, ExecFailure>?](repeating: nil, count: events.count)
        var attempts = [Int](repeating: 0, count: events.count)
        var todo = Array(events.indices)
        var attempt = 0
        // Events a retry was due for when the stop grace ended: not retried, so a stopping run
        // is not held up by back-off waits; their dead letters are replayed later.
        var notRetried: [Int] = []
        while !todo.isEmpty {
            let batch = todo.map { events[$0] }
            let pass = await untilStopGraceEnds(context.control, then: abandonStreamWork) { await self.runPass(batch) }
            var again: [Int] = []
            for (k, index) in todo.enumerated() {
                attempts[index] += 1
                results[index] = pass[k]
                if case .failure(let f) = pass[k], f.retryable, attempt < spec.retries { again.append(index) }
            }
            todo = again
            if !todo.isEmpty {
                let wait = min(Self.maxBackoff, spec.backoff * Double(1 << min(attempt, 16)))
                if let control = context.control { await control.pause(seconds: wait) } else { try? await Task.sleep(for: .seconds(wait)) }
                if let control = context.control, control.stopGraceEnded {
                    notRetried = todo
                    control.workCutShort()
                    break
                }
                attempt += 1
            }
        }
        if let control = context.control, results.contains(where: { if case .failure(let f)? = $0 { f.reason == .pluginCancelled } else { false } }) {
            control.workCutShort()
        }
        var outcomes: [StageOutcome] = []
        outcomes.reserveCapacity(events.count)
        for (index, result) in results.enumerated() {
            switch result! {
            case .success(let outcome):
                outcomes.append(outcome)
            case .failure(var failure):
                // Anything a plugin wrote may be quoted here (its error, its output, stderr).
                failure.message = redact(failure.message)
                if notRetried.contains(index) {
                    failure.message += " (attempt \(attempts[index]); not retried: the run was stopping)"
                } else if attempts[index] > 1 {
                    failure.message += " (gave up after \(attempts[index]) attempts)"
                }
                outcomes.append(try handle(failure, event: events[index]))
            }
        }
        return outcomes
    }

    /// One event's result of an attempt.
    typealias PassResult = Result<StageOutcome, ExecFailure>

    /// What ended first: the attempt, or the grace after a stop request.
    enum PassFinished: Sendable {
        case body([PassResult])
        case graceEnded
        case watchStopped
    }

    /// Stream mode, once the stop grace is over: the workers answer what they hold as cancelled
    /// and kill their plugins (event mode's plugins are stopped by the cancellation itself).
    @Sendable func abandonStreamWork() {
        let failure = cancelledFailure
        for worker in streamWorkers { worker.abandonForStop(failure) }
    }

    /// What an event becomes when its plugin was stopped because the run is ending.
    var cancelledFailure: ExecFailure {
        ExecFailure(reason: .pluginCancelled, message: "stage '\(stageName)': \(spec.command.name) was stopped because the run is ending", retryable: false)
    }

    /// Whether the run was asked to stop `stopGrace` ago or more.
    static func stopGraceEnded(_ control: RunControl?) -> Bool {
        guard let waited = control?.stoppingFor else { return false }
        return waited >= .seconds(stopGrace)
    }

    /// `body`, cancelled once the run has been asked to stop `stopGrace` ago (at once, when it
    /// was already): its plugins are stopped, and the events they had not answered come back as
    /// `plugin_cancelled`.
    func untilStopGraceEnds(
        _ control: RunControl?, then graceEnded: @escaping @Sendable () -> Void, _ body: @escaping @Sendable () async -> [PassResult]
    ) async -> [PassResult] {
        guard let control else { return await body() }
        return await withTaskGroup(of: PassFinished.self) { group in
            group.addTask { .body(await body()) }
            group.addTask {
                while !Task.isCancelled {
                    if Self.stopGraceEnded(control) { return .graceEnded }
                    try? await Task.sleep(for: .milliseconds(100))
                }
                return .watchStopped
            }
            var result: [PassResult]? = nil
            for await finished in group {
                switch finished {
                case .body(let value):
                    result = value
                    group.cancelAll()
                case .graceEnded:
                    graceEnded()
                    group.cancelAll()
                case .watchStopped:
                    break
                }
            }
            return result!
        }
    }

    /// `on_error`: what a failed event becomes. One stopped because the run was ending is a dead
    /// letter whatever `on_error` says: the plugin never answered for it, and `lymph replay` is
    /// how it gets its turn (dropped, it would be lost; `stop` would end a run already ending).
    func handle(_ failure: ExecFailure, event: Event) throws -> StageOutcome {
        if failure.reason == .pluginCancelled { return .fail(failure.reason, message: failure.message) }
        switch spec.onError {
        case .deadLetter:
            return .fail(failure.reason, message: failure.message)
        case .drop:
            logger.warning("event \(event.id) dropped (on_error: drop): \(failure.message)")
            return .drop(.onErrorDrop)
        case .stop:
            throw StageStopped(stage: stageName, event: event, message: failure.message)
        }
    }

    /// One attempt for each of `events`, results in the same order.
    func runPass(_ events: [Event]) async -> [Result<StageOutcome, ExecFailure>] {
        switch spec.mode {
        case .event:
            return await runEventMode(events)
        case .stream:
            let box = AnswerBox(events: events)
            var perWorker = [[StreamWorker.Item]](repeating: [], count: streamWorkers.count)
            for (slot, event) in events.enumerated() {
                perWorker[(slot / 16) % streamWorkers.count].append(StreamWorker.Item(line: Self.line(event), slot: slot, box: box))
            }
            for (worker, items) in zip(streamWorkers, perWorker) { worker.submit(items) }
            return await box.wait(ifCancelled: cancelledFailure)
        }
    }

    func runEventMode(_ events: [Event]) async -> [Result<StageOutcome, ExecFailure>] {
        guard let runner = eventRunner else { return [] }
        let output = spec.output
        let stageName = self.stageName
        let logger = self.logger
        let redact = self.redact
        var results = [Result<StageOutcome, ExecFailure>?](repeating: nil, count: events.count)
        await withTaskGroup(of: (Int, Result<StageOutcome, ExecFailure>).self) { group in
            // Slots are taken here, in event order (so with `workers: 1` side effects happen in
            // input order, and only `workers` tasks exist at once). A slot is freed once its
            // process has exited and its group is cleared, not after the bookkeeping that
            // follows, so the next process starts meanwhile.
            for (index, event) in events.enumerated() {
                await slots.acquire()
                let slot = SlotRelease(slots)
                group.addTask {
                    defer { slot.release() }
                    let ran = await runner.run(
                        Self.line(event), eventID: event.id, eventType: String(decoding: event.typeBytes, as: UTF8.self),
                        processEnded: { slot.release() })
                    switch ran {
                    case .failure(let f):
                        return (index, .failure(f))
                    case .success(let written):
                        let stdout = written.stdout
                        switch output {
                        case .events:
                            // The event itself, unchanged (a filter that kept it): no re-parse.
                            if ExecOutputParser.trim(stdout[...]).elementsEqual(event.document.bytes) { return (index, .success(.pass)) }
                            let parsed = ExecOutputParser.events(fromOutput: stdout, replacing: event, stage: stageName, redact: redact)
                            // What the plugin said on stderr often says why its output is not events.
                            return (
                                index,
                                parsed.mapError { failure in
                                    var f = failure
                                    f.message += written.stderrTail
                                    return f
                                }
                            )
                        case .ignore:
                            if !stdout.isEmpty {
                                let text = redact(String(decoding: stdout.prefix(2048 + redact.longest), as: UTF8.self)).trimmingCharacters(
                                    in: .whitespacesAndNewlines)
                                var l = logger
                                l[metadataKey: "event_id"] = "\(event.id)"
                                l.info("plugin stdout: \(text)\(stdout.count > 2048 ? "…" : "")")
                            }
                            return (index, .success(.pass))
                        }
                    }
                }
            }
            for await (index, result) in group { results[index] = result }
        }
        return results.map { $0! }
    }

    /// The event as one line of JSON with its newline: what a plugin reads.
    static func line(_ event: Event) -> [UInt8] {
        var out: [UInt8] = []
        out.reserveCapacity(event.document.bytes.count + 1)
        appendWithoutLineBreaks(event.document.bytes, to: &out)
        out.append(0x0A)
        return out
    }

    /// Closes every stream worker at once (each may take `timeout` to exit).
    public func finish() async throws {
        await withTaskGroup(of: Void.self) { group in
            for worker in streamWorkers { group.addTask { await worker.close() } }
        }
    }
}
