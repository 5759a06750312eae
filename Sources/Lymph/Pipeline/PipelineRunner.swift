/// Moves batches from a reader through a pipeline's stages to its outputs.
///
/// Batches go through parse and the leading stages that allow concurrency on several tasks at
/// once (`maxBatchesInFlight`); the runner then takes them back in reading order and passes
/// them one at a time through the remaining stages, writes events and dead letters, flushes,
/// and only then lets stages commit (`Stage.batchDidFinish`). So output order equals input
/// order, and nothing is remembered as done before it has been written.
public struct PipelineRunner: Sendable {
    /// The pipeline the batches go through.
    public let pipeline: Pipeline
    /// How the run is stopped, and where it counts what it read and wrote.
    public let control: RunControl
    /// How many batches may be in the concurrent stages at once (at least 1).
    public let maxBatchesInFlight: Int
    /// Told about every batch once it has left the pipeline (for metrics), in batch order.
    public var observer: (@Sendable (BatchReport) -> Void)?
    /// Told about every event a stage drops (`lymph test` compares them with its expectations);
    /// called from the task running that stage, so calls for different batches may interleave.
    public var dropObserver: (@Sendable (DroppedEvent) -> Void)?
    /// Where the concurrent part of each batch runs (its own task does not inherit the
    /// caller's preference); nil for Swift's global threads. `lymph serve` gives its worker's.
    public var taskExecutor: (any TaskExecutor)?
    /// Whether later batches go on while a transaction is written (`lymph run`). `lymph serve`
    /// waits for each: its batches are small and its worker runs at a lower priority than the
    /// answers, and a commit beside them would take the cores the answers need.
    public var commitsAlongside = true
    /// Whether work a stage stopped because the run was stopping (`RunControl.workCutShort`)
    /// stays in the source instead of becoming `plugin_cancelled` dead letters (`lymph serve`:
    /// its spool keeps every entry not committed as done, for the next start). Everything
    /// finished before that batch is committed first; the batch is neither written nor
    /// committed, and the run ends with `WorkLeftInSource`.
    public var keepsCutShortWorkInSource = false
    /// Touched only by the ordered (serial) part of a run.
    let commitState = CommitState()
    /// Events a commit group holds: the most any stage asks for (`Stage.commitGroup`), within
    /// `maxCommitGroup`.
    let commitGroup: Int

    /// A runner for `pipeline`; `maxBatchesInFlight` below 1 counts as 1.
    public init(pipeline: Pipeline, control: RunControl = RunControl(), maxBatchesInFlight: Int = 4) {
        self.pipeline = pipeline
        self.control = control
        self.maxBatchesInFlight = max(1, maxBatchesInFlight)
        self.commitGroup = min(Self.maxCommitGroup, pipeline.stages.map(\.stage.commitGroup).reduce(Self.commitEvery, max))
    }

    /// The number of leading stages (after parse) that may run on several batches at once.
    var concurrentPrefix: Int {
        pipeline.stages.firstIndex { !$0.stage.runsConcurrently } ?? pipeline.stages.count
    }

    /// Runs until the reader is exhausted or a stop is requested. Throws when the run cannot
    /// go on (store or output failure); batches already finished stay committed.
    public func run(reader: some ItemSource) async throws -> RunSummary {
        let clock = ContinuousClock()
        let start = clock.now
        var totals = Array(repeating: StageStats(), count: pipeline.stages.count + 1)
        var summary = RunSummary(pipeline: pipeline.spec.name)
        summary.stageSeconds = Array(repeating: 0, count: pipeline.stages.count + 1)
        var inFlight: [Task<Batch, any Error>] = []
        var sequence = 0
        do {
            while !control.isStopRequested, let input = try await reader.nextBatch(control: control) {
                if input.isEmpty {
                    // A quiet input: finish what is in flight now rather than when more arrives,
                    // and commit it, so a long-running source never holds finished work uncommitted.
                    while !inFlight.isEmpty {
                        let batch = try await inFlight.removeFirst().value
                        try await serialPart(batch, source: reader, totals: &totals, summary: &summary)
                    }
                    if commitState.eventsSinceCommit > 0 {
                        try await commitPending(source: reader, wait: true)
                    } else {
                        try await finishCommit(source: reader)
                    }
                    continue
                }
                let seq = sequence
                sequence += 1
                inFlight.append(Task(executorPreference: taskExecutor) { try await concurrentPart(input.items, sequence: seq) })
                if inFlight.count >= maxBatchesInFlight {
                    let batch = try await inFlight.removeFirst().value
                    try await serialPart(batch, source: reader, totals: &totals, summary: &summary)
                }
            }
            while !inFlight.isEmpty {
                let batch = try await inFlight.removeFirst().value
                try await serialPart(batch, source: reader, totals: &totals, summary: &summary)
            }
            if reader.finished {
                for s in pipeline.stages { try await s.stage.inputEnded() }
            }
            for s in pipeline.stages { try await s.stage.finish() }
            // Everything written is in this commit.
            pipeline.outputs?.closing()
            try await commitPending(source: reader, wait: true)
        } catch {
            for task in inFlight { task.cancel() }
            // A transaction already on its way ends (committed or not) before the run does.
            if let commit = commitState.inFlight {
                commitState.inFlight = nil
                if case .success = await commit.value {
                    pipeline.outputs?.pendingWritten()
                    for s in pipeline.stages { s.stage.pendingWritten() }
                    pipeline.replays.pendingWritten()
                    reader.pendingWritten()
                } else {
                    notWritten(source: reader)
                }
            }
            throw error
        }
        summary.seconds = Self.seconds(clock.now - start)
        // A signal after the last input was read interrupted nothing.
        // (Unless a stage stopped work in flight for it: then it cut the run short.)
        summary.interruptedBy = reader.finished && !control.wasWorkCutShort ? 0 : control.stopSignal
        summary.workCutShort = control.wasWorkCutShort
        summary.stages =
            [RunSummary.StageLine(name: pipeline.parse.name, kind: "parse", stats: totals[0], seconds: summary.stageSeconds[0])]
            + pipeline.stages.enumerated().map {
                RunSummary.StageLine(name: $1.name, kind: $1.kind, stats: totals[$0 + 1], seconds: summary.stageSeconds[$0 + 1])
            }
        return summary
    }

    /// Finished work is written to the store in groups, one transaction for many batches. Keys go
    /// into the newest generation (`DedupGenerations`), whose pages stay in the cache, so a
    /// group need not be large to be cheap; what a larger one costs is memory, every key of a
    /// group held until its commit (and the next group's while it runs). The default group; a
    /// stage may ask for a larger one (`Stage.commitGroup`).
    static let commitEvery = 20_000
    /// The largest group a stage may ask for: every key of a group, and of the one in flight,
    /// is held in memory until it commits.
    static let maxCommitGroup = 100_000
    static let commitInterval = 1.0

    final class CommitState: @unchecked Sendable {
        var eventsSinceCommit = 0
        var lastCommit = Timestamp.now()
        /// The transaction being written on the commit thread, if any.
        var inFlight: Task<Result<Void, StoreError>, Never>?
    }

    /// Where store transactions are written: off Swift's cooperative threads (a commit blocks
    /// on SQLite for a while), and one at a time.
    static let commitThread = BlockingThreads(name: "lymph-commit")

    /// Store transactions are written at nice `value` from now on (`lymph serve`: the worker's,
    /// so a commit never slows the answers to webhooks).
    public static func commit(atNiceness value: Int32) {
        commitThread.niceness.store(value, ordering: .relaxed)
    }

    /// Takes what every stage (and the source, the replay ledger and the output files) set
    /// aside, and starts writing it in one transaction on the commit thread; later batches go
    /// on meanwhile. The transaction before it, if still in flight, is finished first. With
    /// `wait`, this one is finished too before returning.
    func commitPending(source: some ItemSource, wait: Bool = false) async throws {
        try await finishCommit(source: source)
        try startCommit(source: source)
        commitState.eventsSinceCommit = 0
        commitState.lastCommit = Timestamp.now()
        // On PostgreSQL every commit is waited for: a dedup claim released in a transaction in
        // flight could otherwise be taken back by a retry of its event at the same time.
        if wait || !commitsAlongside || pipeline.store?.postgres != nil { try await finishCommit(source: source) }
    }

    /// Takes every participant's pending write and starts the transaction (without a store,
    /// everything taken is done at once).
    func startCommit(source: some ItemSource) throws {
        guard let store = pipeline.store else {
            _ = try source.takePending()
            for s in pipeline.stages { s.stage.pendingWritten() }
            pipeline.replays.pendingWritten()
            source.pendingWritten()
            return
        }
        var writes: [PendingWrite] = []
        do {
            for s in pipeline.stages { if let w = try s.stage.takePending() { writes.append(w) } }
            if let w = pipeline.replays.takePending() { writes.append(w) }
            if let w = try source.takePending() { writes.append(w) }
            // Taken last, on this (ordered) path: every finished batch is written, and no later
            // batch's lines are, so the files' lengths belong to exactly this work.
            if let w = try pipeline.outputs?.takePending() { writes.append(w) }
        } catch {
            notWritten(source: source)
            throw error
        }
        let all = writes
        if let postgres = store.postgres {
            // One PostgreSQL transaction, on the pool's connections (nothing here blocks a thread).
            let database = postgres.database
            commitState.inFlight = Task {
                do {
                    try await database.perform("cannot commit") { client in
                        try await client.withTransaction(logger: database.logger) { conn in
                            try await postgres.holder.checkLease(on: conn)
                            for w in all { try await w.write(conn) }
                        }
                    }
                    return .success(())
                } catch let error as StoreError {
                    return .failure(error)
                } catch {
                    return .failure(StoreError(location: store.location, message: "write failed: \(error)"))
                }
            }
            return
        }
        commitState.inFlight = Task {
            await Self.commitThread.run { () -> Result<Void, StoreError> in
                do {
                    try store.checkFileIsOurs()
                    try store.write { db in for w in all { try w.write(db) } }
                    return .success(())
                } catch let error as StoreError {
                    return .failure(error)
                } catch {
                    return .failure(StoreError(location: store.location, message: "write failed: \(error)"))
                }
            }
        }
    }

    /// Waits for the transaction in flight, if any, and tells every participant how it went.
    /// A write that failed for lack of space, or because the database could not be reached, is
    /// taken again and retried while `diskFull` lets the run wait; any other failure stops the
    /// run.
    func finishCommit(source: some ItemSource) async throws {
        guard let task = commitState.inFlight else { return }
        commitState.inFlight = nil
        var result = await task.value
        var waited = 0
        while case .failure(let error) = result {
            notWritten(source: source)
            guard error.isDiskFull || error.isUnavailable, let wait = pipeline.diskFull,
                wait.pause(error.isDiskFull ? "\(error); waiting for space" : "\(error); waiting for the database", attempt: waited)
            else { throw error }
            waited += 1
            try startCommit(source: source)
            guard let retry = commitState.inFlight else { return }
            commitState.inFlight = nil
            result = await retry.value
        }
        if waited > 0 { pipeline.diskFull?.cleared() }
        pipeline.outputs?.pendingWritten()
        for s in pipeline.stages { s.stage.pendingWritten() }
        pipeline.replays.pendingWritten()
        source.pendingWritten()
    }

    /// `stage.process`, tried again while the database it reads cannot be reached and the run
    /// may wait (`lymph serve`): its reads change nothing they cannot do again.
    func processWaitingOutOutages(_ stage: any Stage, _ events: [Event], context: StageContext) async throws -> [StageOutcome] {
        var attempt = 0
        while true {
            do {
                let outcomes = try await stage.process(events, context: context)
                if attempt > 0 { pipeline.diskFull?.cleared() }
                return outcomes
            } catch let error as StoreError {
                guard error.isUnavailable, let wait = pipeline.diskFull, wait.pause("\(error); waiting for the database", attempt: attempt) else {
                    throw error
                }
                attempt += 1
            }
        }
    }

    /// The transaction rolled back: every participant keeps what it took for the next one.
    func notWritten(source: some ItemSource) {
        for s in pipeline.stages { s.stage.pendingNotWritten() }
        pipeline.replays.pendingNotWritten()
        source.pendingNotWritten()
        pipeline.outputs?.pendingNotWritten()
    }

    static func seconds(_ d: Duration) -> Double {
        Double(d.components.seconds) + Double(d.components.attoseconds) / 1e18
    }

    func concurrentPart(_ items: [RawItem], sequence: Int) async throws -> Batch {
        var batch = Batch(sequence: sequence, stageCount: pipeline.stages.count + 1)
        batch.itemsRead = items.count
        batch.events.reserveCapacity(items.count)
        let parseStart = ContinuousClock.now
        pipeline.parse.parse(items, events: &batch.events, deadLetters: &batch.deadLetters)
        if batch.events.contains(where: { $0.resumeRequest != nil }) { try await resolveResumes(&batch) }
        batch.stageSeconds[0] = Self.seconds(ContinuousClock.now - parseStart)
        batch.stats[0].received = items.count
        batch.stats[0].emitted = batch.events.count
        batch.stats[0].deadLetters = batch.deadLetters.count
        let now = pipeline.clock()
        for index in 0..<concurrentPrefix {
            try await apply(index, to: &batch, now: now)
        }
        if concurrentPrefix == pipeline.stages.count {
            // Nothing serial is left: encode here, on this worker, and free the events here too.
            encode(&batch, now: now)
        }
        return batch
    }

    /// Turns the batch's events and dead letters into the bytes to write, and collects the
    /// claims of the events that are leaving.
    func encode(_ batch: inout Batch, now: Double) {
        if pipeline.output != nil, !batch.events.isEmpty {
            var out: [UInt8] = []
            // By index: `for event in` copies each event, retaining all it holds.
            var size = 0
            for i in batch.events.indices { size += batch.events[i].document.bytes.count + 1 }
            out.reserveCapacity(size)
            for i in batch.events.indices {
                appendWithoutLineBreaks(batch.events[i].document.bytes, to: &out)
                out.append(0x0A)
            }
            batch.encodedOutput = out
        }
        if !batch.deadLetters.isEmpty {
            var out: [UInt8] = []
            let at = Timestamp.format(now)
            for dl in batch.deadLetters { dl.encode(at: at, into: &out) }
            batch.encodedDeadLetters = out
        }
        for i in batch.events.indices where !batch.events[i].claims.isEmpty { batch.completedClaims.append(contentsOf: batch.events[i].claims) }
        batch.passed = batch.events.count
        batch.deadLetterCount = batch.deadLetters.count
        batch.events = []
        batch.deadLetters = []
        batch.encoded = true
    }

    func serialPart(_ incoming: consuming Batch, source: some ItemSource, totals: inout [StageStats], summary: inout RunSummary) async throws {
        // Moved, not copied: a copy shares the batch's events, and the first change to them
        // would copy every event of the batch.
        var batch = consume incoming
        let now = pipeline.clock()
        if keepsCutShortWorkInSource && control.isStopRequested {
            // Stopping: what is finished is committed before this batch's serial stages change
            // any state, so a batch cut short below leaves nothing of its own in a commit.
            if commitState.eventsSinceCommit > 0 { try await commitPending(source: source, wait: true) }
            if control.wasWorkCutShort { throw WorkLeftInSource(items: batch.itemsRead) }
        }
        for index in concurrentPrefix..<pipeline.stages.count {
            try await apply(index, to: &batch, now: now)
            if keepsCutShortWorkInSource && control.wasWorkCutShort { throw WorkLeftInSource(items: batch.itemsRead) }
        }
        if !batch.encoded { encode(&batch, now: now) }
        if let output = pipeline.output, !batch.encodedOutput.isEmpty {
            try output.write(batch.encodedOutput)
        }
        if !batch.encodedDeadLetters.isEmpty {
            try pipeline.deadLetters.write(batch.encodedDeadLetters)
        }
        // Everything the batch produced is with the kernel: now its work may be remembered.
        let failed = Set(batch.failedClaims)
        var completed = batch.completedClaims
        if batch.sharedClaims {
            // Each claim completes once, however many events shared it: a dedup stage then
            // knows its waiting keys are distinct (`DedupStage.takePending`).
            var seen = Set<DedupClaim>(minimumCapacity: completed.count)
            completed.removeAll { !seen.insert($0).inserted }
        }
        let finished = FinishedBatch(completed: completed.filter { !failed.contains($0) }, failed: Array(failed), now: Timestamp.now())
        for s in pipeline.stages { try s.stage.batchDidFinish(finished) }
        pipeline.replays.batchDidFinish(finished)
        source.batchFinished()
        commitState.eventsSinceCommit += batch.itemsRead
        if commitState.eventsSinceCommit >= commitGroup || finished.now - commitState.lastCommit >= Self.commitInterval {
            try await commitPending(source: source)
        }
        for (i, s) in batch.stats.enumerated() { totals[i].merge(s) }
        observer?(
            BatchReport(
                stageNames: [pipeline.parse.name] + pipeline.stages.map(\.name), stats: batch.stats, stageSeconds: batch.stageSeconds,
                itemsRead: batch.itemsRead, passed: batch.passed, deadLetters: batch.deadLetterCount))
        for (i, seconds) in batch.stageSeconds.enumerated() { summary.stageSeconds[i] += seconds }
        summary.itemsRead += batch.itemsRead
        summary.passed += batch.passed
        summary.deadLetters += batch.deadLetterCount
        control.itemsRead.add(batch.itemsRead, ordering: .relaxed)
        control.written.add(batch.passed, ordering: .relaxed)
        control.deadLetters.add(batch.deadLetterCount, ordering: .relaxed)
    }

    /// Runs stage `index` (of `pipeline.stages`) over the batch and applies its outcomes.
    func apply(_ index: Int, to batch: inout Batch, now: Double) async throws {
        let running = pipeline.stages[index]
        let statsIndex = index + 1
        var selected: [Event]
        var selectedPositions: [Int]? = nil
        let resumeAt = Int32(index)
        // Replayed events that re-enter at a later stage pass this one untouched, like `when:`.
        let resumingLater = batch.resuming && batch.events.contains { $0.resumeAt > resumeAt }
        if running.when != nil || resumingLater {
            selected = []
            var positions: [Int] = []
            var undecided: [(Int, ConditionError)] = []
            for (i, e) in batch.events.enumerated() where e.resumeAt <= resumeAt {
                guard let when = running.when else {
                    selected.append(e)
                    positions.append(i)
                    continue
                }
                do {
                    if try when.matches(e) {
                        selected.append(e)
                        positions.append(i)
                    }
                } catch {
                    undecided.append((i, error))
                }
            }
            if !undecided.isEmpty {
                // A `when:` that cannot be decided (a regex on an over-long value) neither runs
                // the stage on the event nor lets it skip: the event is a dead letter here.
                selected = []
                positions = []
                let failing = Dictionary(undecided, uniquingKeysWith: { a, _ in a })
                var kept: [Event] = []
                for (i, e) in batch.events.enumerated() {
                    if let error = failing[i] {
                        batch.stats[statsIndex].received += 1
                        batch.stats[statsIndex].deadLetters += 1
                        batch.failedClaims.append(contentsOf: e.claims)
                        batch.deadLetters.append(deadLetter(e, stage: index, reason: error.reason, message: error.message))
                    } else {
                        kept.append(e)
                    }
                }
                batch.events = kept
                for (i, e) in batch.events.enumerated() where e.resumeAt <= resumeAt && (try? running.when?.matches(e)) == true {
                    selected.append(e)
                    positions.append(i)
                }
            }
            selectedPositions = positions
            let passedOver = resumingLater ? batch.events.count { $0.resumeAt > resumeAt } : 0
            batch.stats[statsIndex].resumedPast += passedOver
            batch.stats[statsIndex].skipped += batch.events.count - selected.count - passedOver
        } else {
            selected = batch.events
        }
        if selected.isEmpty { return }
        let context = StageContext(pipeline: pipeline.spec.name, stageName: running.name, stageIndex: statsIndex, now: now, control: control)
        let stageStart = ContinuousClock.now
        let outcomes = try await processWaitingOutOutages(running.stage, selected, context: context)
        batch.stageSeconds[statsIndex] += Self.seconds(ContinuousClock.now - stageStart)
        guard outcomes.count == selected.count else {
            throw StageContractError(stage: running.name, message: "returned \(outcomes.count) outcomes for \(selected.count) events")
        }
        var stats = batch.stats[statsIndex]
        stats.received += selected.count
        // Common cases: no `when:` and no replacement. Events that go on stay where they are
        // and the others are compacted away in place (moves, no copies of events).
        if selectedPositions == nil && !outcomes.contains(where: { if case .replace = $0 { return true } else { return false } }) {
            // `selected` shares batch.events' storage: let it go, or the first change below
            // copies every event of the batch (and retains all they hold).
            selected = []
            var write = 0
            var drops = DropTally()
            for read in 0..<outcomes.count {
                switch outcomes[read] {
                case .pass:
                    break
                case .claim(let claim):
                    batch.events[read].claims.append(claim)
                case .drop(let reason):
                    drops.count(reason)
                    batch.completedClaims.append(contentsOf: batch.events[read].claims)
                    dropObserver?(DroppedEvent(batch.events[read], stage: running.name, reason: reason))
                    continue
                case .fail(let reason, let message):
                    stats.deadLetters += 1
                    let event = batch.events[read]
                    batch.failedClaims.append(contentsOf: event.claims)
                    batch.deadLetters.append(deadLetter(event, stage: index, reason: reason, message: message))
                    continue
                case .replace:
                    preconditionFailure("excluded above")
                }
                if write != read { batch.events.swapByMoving(write, read) }
                write += 1
            }
            stats.emitted += write
            drops.add(to: &stats.dropped)
            batch.events.removeLast(batch.events.count - write)
            batch.stats[statsIndex] = stats
            return
        }
        // Each event is moved out of the batch rather than copied (a copy retains all it holds):
        // the batch's events are reversed in place, so popping from the end yields them in order.
        selected = []
        var pending = batch.events
        batch.events = []
        pending.reverseByMoving()
        var result: [Event] = []
        result.reserveCapacity(pending.count)
        var next = 0  // index into outcomes, for events selected by `when`
        var i = -1
        while let event = pending.popLast() {
            i += 1
            if let positions = selectedPositions {
                guard next < positions.count, positions[next] == i else {
                    result.append(consume event)
                    continue
                }
            }
            let outcome = outcomes[next]
            next += 1
            switch outcome {
            case .pass:
                stats.emitted += 1
                result.append(consume event)
            case .claim(let claim):
                stats.emitted += 1
                var e = consume event
                e.claims.append(claim)
                result.append(e)
            case .replace(let replacements):
                stats.emitted += replacements.count
                if replacements.isEmpty {
                    stats.dropped[Reason.noOutput.rawValue, default: 0] += 1
                    batch.completedClaims.append(contentsOf: event.claims)
                    dropObserver?(DroppedEvent(event, stage: running.name, reason: Reason.noOutput.rawValue))
                }
                if !event.claims.isEmpty { batch.sharedClaims = true }
                for var r in replacements {
                    r.claims = event.claims + r.claims
                    result.append(r)
                }
            case .drop(let reason):
                stats.dropped[reason, default: 0] += 1
                batch.completedClaims.append(contentsOf: event.claims)
                dropObserver?(DroppedEvent(event, stage: running.name, reason: reason))
            case .fail(let reason, let message):
                stats.deadLetters += 1
                batch.failedClaims.append(contentsOf: event.claims)
                batch.deadLetters.append(deadLetter(event, stage: index, reason: reason, message: message))
            }
        }
        batch.stats[statsIndex] = stats
        batch.events = result
    }
}

extension PipelineRunner {
    /// The dead letter of an event that stage `index` failed. Past the last `verify` it records
    /// where replay continues: this stage, the event as it entered it, and its claims by name.
    func deadLetter(_ event: Event, stage index: Int, reason: String, message: String) -> DeadLetter {
        let running = pipeline.stages[index]
        var letter = DeadLetter(stage: running.name, reason: reason, message: message, source: event.source, origin: event.origin)
        if index >= pipeline.resumableFrom {
            let stages = pipeline.stages
            let claims = event.claims.compactMap { claim in
                stages.indices.contains(claim.stageIndex - 1) ? ResumePoint.Claim(stage: stages[claim.stageIndex - 1].name, key: claim.key) : nil
            }
            let point = ResumePoint(stage: running.name, kind: running.kind, claims: claims)
            letter.resume = (point, event.document.bytes, pipeline.resumeSeal?.seal(point, event: event.document.bytes, source: event.source))
        }
        return letter
    }

    /// Finds the stage each replayed record resumes at. A stage that is gone by name, or is now
    /// of another kind, makes the record a dead letter again (`replay_stage_missing`) that still
    /// resumes there: running it from the top would repeat work its first run did. Claims of
    /// dedup stages that are gone are left out: there is nothing left to settle them in. A record
    /// whose replay completed before is dropped (`ReplayLedger`).
    func resolveResumes(_ batch: inout Batch) async throws {
        let stages = pipeline.stages
        // The stage each record resumes at (nil: not a record, or its stage is gone), and the
        // ledger's key for those that can resume.
        let targets: [Int?] = batch.events.map { e in
            e.resumeRequest.flatMap { r in stages.firstIndex { $0.name == r.point.stage && $0.kind == r.point.kind } }
        }
        var keys: [[UInt8]?] = Array(repeating: nil, count: batch.events.count)
        for (n, e) in batch.events.enumerated() where targets[n] != nil {
            keys[n] = ReplayLedger.key(stage: e.resumeRequest!.point.stage, source: e.source, event: e.document.bytes)
        }
        var replayed = try await pipeline.replays.begin(keys.compactMap { $0 }).makeIterator()
        // Claims this batch's records took back, with the source event each came from: one input
        // event that became several (an exec stage's answer, `maintenance.scheduled` beside its
        // prediction) left a record for each, all holding its claim. Such siblings share it, as
        // they did in the run, instead of the second being dropped as the first one's duplicate.
        var takenHere: [SharedClaimKey: (source: SourcePosition, event: [UInt8])] = [:]
        var kept: [Event] = []
        kept.reserveCapacity(batch.events.count)
        for (n, var event) in batch.events.enumerated() {
            guard let point = event.resumeRequest?.point else {
                kept.append(event)
                continue
            }
            guard let index = targets[n], let key = keys[n] else {
                let now = stages.first { $0.name == point.stage }.map { " (a stage of that name is now a '\($0.kind)' stage)" } ?? ""
                let message =
                    "this record resumes at stage '\(point.stage.cutForMessage())' ('\(point.kind)'), which pipeline '\(pipeline.spec.name)' no longer has\(now); "
                    + "give the stage its name back and replay again: the stages before it already ran for this event"
                batch.deadLetters.append(
                    DeadLetter(
                        stage: pipeline.parse.name, reason: ResumePoint.stageMissingReason, message: message,
                        source: event.source, origin: event.origin,
                        resume: (point, event.document.bytes, pipeline.resumeSeal?.seal(point, event: event.document.bytes, source: event.source))))
                continue
            }
            if replayed.next() == true {
                batch.stats[0].dropped[ReplayLedger.reason, default: 0] += 1
                dropObserver?(DroppedEvent(event, stage: pipeline.parse.name, reason: ReplayLedger.reason))
                continue
            }
            let replayClaim = DedupClaim(stageIndex: ReplayLedger.claimIndex, key: key)
            var taken: [(stage: DedupStage, claim: DedupClaim)] = []
            var shared: [DedupClaim] = []
            var duplicateAt: String?
            for claim in point.claims {
                guard let d = stages.firstIndex(where: { $0.name == claim.stage }), let dedup = stages[d].stage as? DedupStage else { continue }
                let sharedKey = SharedClaimKey(stage: claim.stage, key: claim.key)
                // A sibling's: the same source event, another event (the same one twice is a
                // duplicate).
                if let holder = takenHere[sharedKey], holder.source == event.source, holder.event != Array(event.document.bytes) {
                    shared.append(DedupClaim(stageIndex: d + 1, key: claim.key))
                    continue
                }
                guard try await dedup.reclaim(claim.key, now: Timestamp.now()) else {
                    duplicateAt = stages[d].name
                    break
                }
                taken.append((dedup, DedupClaim(stageIndex: d + 1, key: claim.key)))
            }
            if let duplicateAt {
                // Another event with its key did the work since (the sender's retry): the record is
                // done, and its replay is recorded so (the keys it took back are let go; shared
                // ones stay with the sibling that took them).
                let now = Timestamp.now()
                for (dedup, claim) in taken { try dedup.batchDidFinish(FinishedBatch(completed: [], failed: [claim], now: now)) }
                pipeline.replays.batchDidFinish(FinishedBatch(completed: [replayClaim], failed: [], now: now))
                batch.stats[0].dropped[Reason.duplicate.rawValue, default: 0] += 1
                dropObserver?(DroppedEvent(event, stage: duplicateAt, reason: Reason.duplicate.rawValue))
                continue
            }
            for (_, claim) in taken {
                takenHere[SharedClaimKey(stage: stages[claim.stageIndex - 1].name, key: claim.key)] = (event.source, Array(event.document.bytes))
            }
            event.resumeAt = Int32(index)
            event.resumeRequest = nil
            event.claims.append(replayClaim)
            event.claims += taken.map(\.claim)
            if !shared.isEmpty {
                // Completed once, and only if no sibling failed (`serialPart`), as in the run.
                event.claims += shared
                batch.sharedClaims = true
            }
            batch.resuming = true
            kept.append(event)
        }
        batch.events = kept
    }
}

/// What one batch did, for observers (metrics): per stage, in pipeline order, parse first.
public struct BatchReport: Sendable {
    /// The stages' names, parse first.
    public let stageNames: [String]
    /// Each stage's counts for the batch, in the order of `stageNames`.
    public let stats: [StageStats]
    /// Seconds each stage spent on the batch, in the order of `stageNames`.
    public let stageSeconds: [Double]
    /// Items read into the batch.
    public let itemsRead: Int
    /// Events that left the last stage.
    public let passed: Int
    /// Items that went to the dead letters.
    public let deadLetters: Int
}

/// A stage broke the stage contract (a bug in the stage, not in the data).
public struct StageContractError: Error, Sendable, CustomStringConvertible {
    /// The stage's name.
    public let stage: String
    /// What it did wrong, after the stage's name.
    public let message: String
    /// `stage 'NAME' message`.
    public var description: String { "stage '\(stage)' \(message)" }
}

/// Drops counted by reason over one stage's outcomes for a batch: a stage nearly always drops
/// for one reason, so it is compared with the last one before a dictionary is hashed into.
struct DropTally {
    var last: String? = nil
    var lastCount = 0
    var others: [String: Int] = [:]

    mutating func count(_ reason: String) {
        if reason == last {
            lastCount += 1
            return
        }
        if let last { others[last, default: 0] += lastCount }
        last = reason
        lastCount = 1
    }

    func add(to dropped: inout [String: Int]) {
        if let last { dropped[last, default: 0] += lastCount }
        for (reason, n) in others { dropped[reason, default: 0] += n }
    }
}

/// A stopping run whose stage stopped work in flight, under `keepsCutShortWorkInSource`: the
/// batch's items were not processed, and stay in the source for the next run.
public struct WorkLeftInSource: Error, CustomStringConvertible {
    /// Items in the batch left.
    public let items: Int
    public var description: String { "\(items) item\(items == 1 ? "" : "s") left for the next run: a stage was still working when the stop grace ended" }
}

/// A dedup claim as a replay record names it: its stage and its key.
struct SharedClaimKey: Hashable {
    let stage: String
    let key: [UInt8]
}
