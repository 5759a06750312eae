import Foundation
import Logging
import Subprocess
import Synchronization
import SystemPackage

/// `mode: stream`: one long-lived plugin process, restarted when it dies.
///
/// Events are written one per line, up to `maxInFlight` unanswered at once; answers are matched
/// to events in order. A missing answer past `timeout` fails that event and restarts the
/// process; events sent after it go again to the new process. When the process dies, its
/// unanswered events are sent once more; one caught in two crashes fails. Restarts back off
/// from 100 ms doubling to 30 s; after `maxFailedStarts` starts in a row without a single
/// answer, events fail at once while restarts go on in the background.
final class StreamWorker: Sendable {
    struct Item: Sendable {
        /// The event as one line, newline included.
        let line: [UInt8]
        let slot: Int
        let box: AnswerBox
        /// The event's id: what its answer must name.
        let id: String
        var crashes = 0
        var sentAt: ContinuousClock.Instant? = nil

        init(line: [UInt8], slot: Int, box: AnswerBox) {
            self.line = line
            self.slot = slot
            self.box = box
            id = box.events[slot].id
        }
    }

    /// Events sent and not yet answered, oldest first, with a count per id: an answer is matched
    /// by the id it names, so two events with one id are never in flight on a process at once.
    struct InFlight {
        private var items = FIFO<Item>()
        private var ids: [String: Int] = [:]

        var isEmpty: Bool { items.isEmpty }
        var count: Int { items.count }
        var first: Item? { items.first }
        func holds(_ id: String) -> Bool { ids[id] != nil }
        func firstIndex(where predicate: (Item) -> Bool) -> Int? { items.firstIndex(where: predicate) }

        mutating func append(_ item: Item) {
            items.append(item)
            ids[item.id, default: 0] += 1
        }

        mutating func popFirst() -> Item? {
            guard let item = items.popFirst() else { return nil }
            forget(item.id)
            return item
        }

        mutating func removeAll() -> [Item] {
            ids.removeAll(keepingCapacity: true)
            return items.removeAll()
        }

        private mutating func forget(_ id: String) {
            if let n = ids[id], n > 1 { ids[id] = n - 1 } else { ids[id] = nil }
        }
    }

    struct State {
        var pending = FIFO<Item>()
        var inFlight = InFlight()
        /// A process is running and taking events.
        var running = false
        /// The running process was given up on (timeout): its late answers are ignored.
        var abandoned = false
        var stdinClosedAt: ContinuousClock.Instant?
        var closing = false
        var failedStarts = 0
        var lastProblem = ""
        var doorbell: AsyncStream<Void>.Continuation?
        /// When the running process last answered: a late answer is judged from here, so time an
        /// event spends queued behind others in the pipe is not held against it.
        var lastAnswerAt: ContinuousClock.Instant?
        /// The running process's stderr, for the tail quoted in its events' failures.
        var stderr: StderrCollector?
        /// The running process, for stopping it when its answers fall out of step.
        var pid: pid_t?
        var workSignal: AsyncStream<Void>.Continuation?
        var supervisor: Task<Void, Never>?
    }

    static let maxFailedStarts = 5
    static let firstRestartDelay = 0.1
    static let maxRestartDelay = 30.0

    let command: ExecCommand
    let configuration: Configuration
    let stageName: String
    let timeout: Double
    let maxInFlight: Int
    let maxLineBytes: Int
    let logger: Logger
    let redact: Redactor
    let state = Mutex(State())
    /// Rung by `close()`, so a restart backoff does not hold up the end of a run.
    let closeBell = Doorbell()
    let clock = ContinuousClock()

    init(
        command: ExecCommand, environment: ExecEnvironment, stageName: String, timeout: Double, maxInFlight: Int,
        maxLineBytes: Int, logger: Logger, redact: Redactor
    ) {
        self.command = command
        self.configuration = ExecProcess.configuration(command, environment: environment.base)
        self.stageName = stageName
        self.timeout = timeout
        self.maxInFlight = maxInFlight
        self.maxLineBytes = maxLineBytes
        self.logger = logger
        self.redact = redact
    }

    /// Queues events; each result is delivered to its item's box.
    func submit(_ items: [Item]) {
        guard !items.isEmpty else { return }
        let failFast: String? = state.withLock { s in
            if !s.running && s.failedStarts >= Self.maxFailedStarts { return s.lastProblem }
            s.pending.append(contentsOf: items)
            if s.supervisor == nil {
                let (stream, continuation) = AsyncStream.makeStream(of: Void.self, bufferingPolicy: .bufferingNewest(1))
                s.workSignal = continuation
                s.supervisor = Task { await self.supervise(work: stream) }
            }
            s.workSignal?.yield()
            s.doorbell?.yield()
            return nil
        }
        if let problem = failFast {
            for item in items { item.box.deliver(item.slot, .failure(failingFast(problem))) }
        }
    }

    /// The run is ending and its stop grace is over (`ExecStage.stopGrace`): every queued and
    /// unanswered event is answered `failure` at once, the running process group is killed
    /// and none is started again, so the end of the run does not wait on a plugin that hangs.
    func abandonForStop(_ failure: ExecFailure) {
        let (items, pid) = state.withLock { s -> ([Item], pid_t?) in
            s.closing = true
            s.abandoned = true
            s.doorbell?.yield()
            s.workSignal?.finish()
            return (s.pending.removeAll() + s.inFlight.removeAll(), s.pid)
        }
        for item in items { item.box.deliver(item.slot, .failure(failure)) }
        if let pid { kill(-pid, SIGKILL) }
        closeBell.ring()
    }

    func failingFast(_ problem: String) -> ExecFailure {
        ExecFailure(
            reason: .pluginUnavailable,
            message:
                "stage '\(stageName)': \(command.name) failed to start \(Self.maxFailedStarts) times in a row (last: \(problem)); failing events at once while it keeps restarting in the background",
            retryable: false)
    }

    /// Closes stdin once everything queued is answered, gives the process `timeout` to exit,
    /// then stops it. Waits until it is gone.
    func close() async {
        let supervisor: Task<Void, Never>? = state.withLock { s in
            s.closing = true
            s.doorbell?.yield()
            s.workSignal?.finish()
            return s.supervisor
        }
        closeBell.ring()
        await supervisor?.value
    }

    // MARK: - Supervision

    private func supervise(work: AsyncStream<Void>) async {
        var delay = Self.firstRestartDelay
        var workIterator = work.makeAsyncIterator()
        while true {
            let (closing, idle, failedStarts) = state.withLock { ($0.closing, $0.pending.isEmpty && $0.inFlight.isEmpty, $0.failedStarts) }
            if closing && idle { return }
            // Start (again) only for work, except while failing fast: then keep trying.
            if idle && failedStarts < Self.maxFailedStarts {
                if await workIterator.next() == nil && state.withLock({ $0.pending.isEmpty }) { return }
                continue
            }
            let answered = await runProcess()
            let (stillClosing, nowIdle) = state.withLock { ($0.closing, $0.pending.isEmpty && $0.inFlight.isEmpty) }
            if stillClosing && nowIdle { return }
            if answered > 0 {
                delay = Self.firstRestartDelay
            }
            // A restart always waits a little: a plugin that dies at once must not spin.
            // The end of the run cuts the wait short.
            if !stillClosing { await closeBell.wait(timeout: .seconds(delay)) }
            if answered == 0 { delay = min(delay * 2, Self.maxRestartDelay) }
            if state.withLock({ $0.closing && $0.pending.isEmpty && $0.inFlight.isEmpty }) { return }
            if state.withLock({ $0.closing && $0.failedStarts >= Self.maxFailedStarts }) {
                // The run is over and the plugin cannot start: fail what is left and stop.
                let left = state.withLock { s in s.pending.removeAll() + s.inFlight.removeAll() }
                let problem = state.withLock { $0.lastProblem }
                for item in left { item.box.deliver(item.slot, .failure(failingFast(problem))) }
                return
            }
        }
    }

    /// Runs one process until it exits; returns how many answers it gave.
    private func runProcess() async -> Int {
        let (doorbellStream, doorbell) = AsyncStream.makeStream(of: Void.self, bufferingPolicy: .bufferingNewest(1))
        let stderr = StderrCollector(logger: logger, redact: redact)
        var answered = 0
        var problem = ""
        var closedStdoutEarly = false
        do {
            let result = try await Subprocess.run(configuration, input: .inputWriter, output: .sequence, error: .sequence) { execution in
                let pid = execution.processIdentifier.value
                ChildProcesses.started(pid)
                defer { ChildProcesses.ended(pid) }
                state.withLock { s in
                    s.running = true
                    s.abandoned = false
                    s.stdinClosedAt = nil
                    s.doorbell = doorbell
                    s.lastAnswerAt = nil
                    s.stderr = stderr
                    s.pid = pid
                }
                doorbell.yield()
                await withTaskGroup(of: Void.self) { group in
                    group.addTask { await self.writeLoop(doorbellStream, writer: execution.standardInputWriter) }
                    group.addTask { await stderr.drain(execution.standardError) }
                    group.addTask { await self.watchdog(pid: pid) }
                    answered = await self.readLoop(execution.standardOutput)
                    // stdout ended: the process is exiting (or closed stdout, which ends it for us).
                    state.withLock { s in
                        s.running = false
                        s.doorbell = nil
                    }
                    doorbell.finish()
                    group.cancelAll()
                }
                // With events waiting for answers, a process whose stdout ended can give none:
                // it is stopped after a moment instead of after the timeout, and they go again.
                let unanswered = state.withLock { !$0.inFlight.isEmpty }
                closedStdoutEarly = await self.waitForExit(pid, within: unanswered ? min(timeout, 0.5) : timeout) && unanswered
            }
            problem =
                closedStdoutEarly
                ? "closed its stdout while events waited for answers, and was stopped" : ExecProcess.describe(result.terminationStatus)
        } catch {
            problem = "could not start \(command.executable): \(error)"
        }
        let count = answered
        let tail = stderr.tailDescription
        // Whatever was in flight when the process died goes again. The crash is charged to the
        // oldest unanswered event only: answers come in order, so that is the one the plugin
        // was handling; an event charged twice fails, and the events behind it are not hurt.
        var failed: [Item] = []
        state.withLock { s in
            s.running = false
            s.doorbell = nil
            s.stderr = nil
            s.pid = nil
            var again: [Item] = []
            for (n, var item) in s.inFlight.removeAll().enumerated() {
                item.sentAt = nil
                if n == 0 { item.crashes += 1 }
                if item.crashes >= 2 { failed.append(item) } else { again.append(item) }
            }
            s.pending.prepend(again)
            if count > 0 { s.failedStarts = 0 } else { s.failedStarts += 1 }
            s.lastProblem = problem + tail
            if s.failedStarts >= Self.maxFailedStarts && !s.closing {
                failed.append(contentsOf: s.pending.removeAll())
            }
        }
        let closing = state.withLock { $0.closing }
        if !(closing && failed.isEmpty && problem == "exited with status 0") {
            logger.warning("plugin process ended: \(problem)\(tail); \(count) answers")
        }
        let failFast = state.withLock { $0.failedStarts >= Self.maxFailedStarts }
        for item in failed {
            if item.crashes >= 2 {
                item.box.deliver(
                    item.slot,
                    .failure(
                        ExecFailure(
                            reason: .pluginCrash,
                            message: "stage '\(stageName)': plugin crashed twice while handling it (last: \(command.name) \(problem))\(tail)", retryable: false)
                    ))
            } else if failFast {
                item.box.deliver(item.slot, .failure(failingFast(problem + tail)))
            }
        }
        return count
    }

    /// Sends queued events while fewer than `maxInFlight` are unanswered, in batches of lines.
    private func writeLoop(_ doorbell: AsyncStream<Void>, writer: StandardInputWriter) async {
        for await _ in doorbell {
            while true {
                enum Step { case write([UInt8]), close, wait }
                let now = clock.now
                let step: Step = state.withLock { s in
                    if s.abandoned || s.stdinClosedAt != nil { return .wait }
                    var out: [UInt8] = []
                    // An event whose id is already in flight waits for that one's answer.
                    while s.inFlight.count < maxInFlight, let next = s.pending.first, !s.inFlight.holds(next.id),
                        var item = s.pending.popFirst()
                    {
                        item.sentAt = now
                        out.append(contentsOf: item.line)
                        s.inFlight.append(item)
                    }
                    if !out.isEmpty { return .write(out) }
                    if s.closing && s.pending.isEmpty && s.inFlight.isEmpty {
                        s.stdinClosedAt = now
                        return .close
                    }
                    return .wait
                }
                switch step {
                case .write(let bytes):
                    do { _ = try await writer.write(bytes) } catch { return }  // the process is gone
                case .close:
                    try? await writer.finish()
                    return
                case .wait:
                    break
                }
                if case .wait = step { break }
            }
        }
    }

    /// One line of stdout, or the sign of a line longer than the limit (already discarded).
    enum AnswerLine {
        case line(ArraySlice<UInt8>)
        case tooLong
    }

    /// Splits stdout into answer lines and hands each to the oldest unanswered event. A line over
    /// the limit fails its event as soon as it passes the limit (a line that never ends would
    /// otherwise hold it to its timeout, failing for the wrong reason); the rest of it is
    /// discarded up to its newline, so later answers stay in step.
    private func readLoop(_ output: SubprocessOutputSequence) async -> Int {
        var answered = 0
        var partial: [UInt8] = []
        var overlong = false
        let maxLineBytes = self.maxLineBytes
        do {
            for try await buffer in output {
                var lines: [AnswerLine] = []
                buffer.withUnsafeBytes { raw in
                    let count = raw.count
                    var start = 0
                    while start < count {
                        guard let nl = ByteScan.find(0x0A, in: raw, from: start, to: count) else {
                            if !overlong {
                                partial.append(contentsOf: raw[start..<count])
                                if partial.count > maxLineBytes {
                                    overlong = true
                                    partial = []
                                    lines.append(.tooLong)
                                }
                            }
                            break
                        }
                        if overlong {
                            // Its event failed when the line passed the limit.
                            overlong = false
                        } else if partial.isEmpty {
                            lines.append(nl - start > maxLineBytes ? .tooLong : .line(ArraySlice(raw[start..<nl])))
                        } else {
                            partial.append(contentsOf: raw[start..<nl])
                            lines.append(partial.count > maxLineBytes ? .tooLong : .line(partial[...]))
                            partial = []
                        }
                        start = nl + 1
                    }
                }
                if !lines.isEmpty {
                    answered += answer(lines)
                    _ = state.withLock { $0.doorbell?.yield() }
                }
            }
        } catch {
            // Reading stopped because the process ended: the supervisor takes it from here.
        }
        return answered
    }

    /// Matches answer lines to the events they name and delivers them; returns how many
    /// answered an event.
    ///
    /// Answers come in order, so the oldest unanswered event is expected. An answer naming a
    /// later event in flight means the plugin skipped the ones before it: they fail. An answer
    /// that names no event in flight (an extra line, a banner, a second answer) means the
    /// stream is out of step: every event in flight fails with `plugin_protocol` and the
    /// process is restarted, so no event is ever given an answer written for another.
    private func answer(_ lines: [AnswerLine]) -> Int {
        let now = clock.now
        var deliveries: [(Item, Result<StageOutcome, ExecFailure>)] = []
        var unsolicited = 0
        var outOfStep: (detail: String, pid: pid_t?)?
        let stderr: StderrCollector? = state.withLock { (s: inout State) -> StderrCollector? in
            if s.abandoned { return nil }
            s.lastAnswerAt = now
            for line in lines {
                guard let head = s.inFlight.first else {
                    unsolicited += 1
                    continue
                }
                let bytes: ArraySlice<UInt8>
                switch line {
                case .tooLong:
                    // Its id cannot be read without reading the whole line: the oldest event
                    // was being answered, and its answer is what broke the limit.
                    deliveries.append(
                        (s.inFlight.popFirst()!, .failure(ExecOutputParser.invalid(stageName, "answer line is longer than \(maxLineBytes) bytes (max_output)")))
                    )
                    continue
                case .line(let b):
                    bytes = b
                }
                // An answer that is the event itself, byte for byte, keeps the parsed event.
                if bytes.count == head.line.count - 1, bytes.elementsEqual(head.line.prefix(bytes.count)) {
                    deliveries.append((s.inFlight.popFirst()!, .success(.pass)))
                    continue
                }
                let parsed = ExecOutputParser.streamAnswer(bytes, replacing: head.box.events[head.slot], stage: stageName, redact: redact)
                guard let names = parsed.names,
                    let position = s.inFlight.firstIndex(where: { $0.id == names })
                else {
                    let detail: String
                    if let names = parsed.names {
                        detail = "an answer names event '\(names.cutForMessage())', which is not waiting for one (a line too many?)"
                    } else if case .failure(let f) = parsed.result {
                        detail = f.message
                    } else {
                        detail = "an answer names no event"
                    }
                    outOfStep = (detail, s.pid)
                    s.abandoned = true
                    for item in s.inFlight.removeAll() {
                        deliveries.append(
                            (
                                item,
                                .failure(
                                    ExecFailure(
                                        reason: .pluginProtocol,
                                        message:
                                            "stage '\(stageName)': the plugin's answers fell out of step (\(detail)); this event was sent but got no answer that names it, so it failed rather than take another event's answer; the process was restarted",
                                        retryable: false))
                            ))
                    }
                    break
                }
                for _ in 0..<position {
                    let skipped = s.inFlight.popFirst()!
                    deliveries.append(
                        (
                            skipped,
                            .failure(
                                ExecFailure(
                                    reason: .pluginProtocol,
                                    message:
                                        "stage '\(stageName)': the plugin gave no answer for this event (it answered event '\(names.cutForMessage())', sent after it)",
                                    retryable: false))
                        ))
                }
                let item = s.inFlight.popFirst()!
                let result =
                    position == 0
                    ? parsed.result
                    : ExecOutputParser.streamAnswer(bytes, replacing: item.box.events[item.slot], stage: stageName, redact: redact).result
                deliveries.append((item, result))
            }
            return s.stderr
        }
        for (item, result) in deliveries {
            if case .failure(var f) = result, let stderr {
                f.message += stderr.tailDescription
                item.box.deliver(item.slot, .failure(f))
            } else {
                item.box.deliver(item.slot, result)
            }
        }
        if unsolicited > 0 {
            logger.warning("plugin wrote \(unsolicited) line(s) with no event waiting for an answer; ignored (answer each input line with exactly one line)")
        }
        if let outOfStep {
            logger.warning("plugin answers fell out of step (\(outOfStep.detail)); failing the events in flight and restarting it")
            if let pid = outOfStep.pid { Task { await self.stop(pid) } }
        }
        return deliveries.count
    }

    /// Fails the oldest event when its answer is late, and stops the process (restarted by the
    /// supervisor); after stdin is closed, stops a process that does not exit within `timeout`.
    private func watchdog(pid: pid_t) async {
        let tick = Duration.seconds(min(max(timeout / 4, 0.01), 0.1))
        let limit = Duration.seconds(timeout)
        while !Task.isCancelled {
            try? await Task.sleep(for: tick)
            if Task.isCancelled { return }
            let now = clock.now
            enum Verdict { case fine, late(Item, String), lingering }
            let verdict: Verdict = state.withLock { s in
                if s.abandoned { return .fine }
                if let head = s.inFlight.first, let sent = head.sentAt, now - max(sent, s.lastAnswerAt ?? sent) > limit {
                    let late = s.inFlight.popFirst()!
                    // Events sent after the late one go to the next process, uncounted as crashes.
                    var again: [Item] = []
                    while var item = s.inFlight.popFirst() { item.sentAt = nil; again.append(item) }
                    s.pending.prepend(again)
                    s.abandoned = true
                    return .late(late, s.stderr?.tailDescription ?? "")
                }
                if let closed = s.stdinClosedAt, now - closed > limit { s.abandoned = true; return .lingering }
                return .fine
            }
            switch verdict {
            case .fine:
                continue
            case .late(let item, let tail):
                logger.warning("plugin gave no answer within \(DedupSpec.describe(timeout)) for event \(item.box.events[item.slot].id); restarting it")
                item.box.deliver(
                    item.slot,
                    .failure(
                        ExecFailure(
                            reason: .pluginTimeout,
                            message:
                                "stage '\(stageName)': \(command.name) timed out after \(DedupSpec.describe(timeout)) without answering; the process was restarted\(tail)",
                            retryable: true)))
                await stop(pid)
                return
            case .lingering:
                logger.warning("plugin did not exit within \(DedupSpec.describe(timeout)) of its stdin closing; stopping it")
                await stop(pid)
                return
            }
        }
    }

    /// SIGTERM to the process group, SIGKILL after the grace period.
    private func stop(_ pid: pid_t) async {
        kill(-pid, SIGTERM)
        try? await Task.sleep(for: ExecProcess.terminationGrace)
        kill(-pid, SIGKILL)
    }

    /// After stdout ended: waits for the leader to exit (bounded by `timeout`, then SIGKILL)
    /// and clears what is left of its group.
    /// Waits up to `seconds` for the process to exit, then kills its group; true when it was
    /// still running and had to be killed.
    @discardableResult
    private func waitForExit(_ pid: pid_t, within seconds: Double) async -> Bool {
        let deadline = clock.now + .milliseconds(Int64(seconds * 1000))
        while clock.now < deadline && !Task.isCancelled {
            if ExecProcess.exitState(pid) != .running {
                kill(-pid, SIGKILL)
                return false
            }
            try? await Task.sleep(for: .milliseconds(5))
        }
        kill(-pid, SIGKILL)
        await ExecProcess.clearGroupWhenLeaderExits(pid)
        return true
    }
}
