import Foundation
import Logging
import Lymph
import ServiceLifecycle
import Synchronization
import GRDB

/// Drains the spool through the pipeline, in arrival order, as a `Service`. On graceful
/// shutdown it finishes the batches in hand, commits, and stops; what is left stays in the
/// spool for the next start.
public final class PipelineWorker<Backend: SpoolBackend>: Service, Sendable {
    let pipeline: Pipeline
    let served: ServedPipeline
    let source: SpoolSource<Backend>
    let metrics: ServeMetrics
    let logger: Logger
    /// Milliseconds since the epoch of the last sign of life (a poll of the spool or a batch).
    let heartbeat = Atomic<Int64>(0)
    let running = Atomic<Bool>(false)
    let failure = Mutex<String?>(nil)

    /// How much lower the worker's thread is scheduled than the HTTP side (nice 5 weighs about
    /// a third of nice 0 when both want a core).
    static var niceness: Int32 { 5 }

    /// Waited for before the first batch (a PostgreSQL spool: until this process holds its lane).
    let startGate: (@Sendable () async throws -> Void)?

    /// `pipeline` is the one opened from `served`'s current spec; a reload replaces it.
    public init(
        pipeline: Pipeline, served: ServedPipeline, source: SpoolSource<Backend>, metrics: ServeMetrics, logger: Logger,
        startGate: (@Sendable () async throws -> Void)? = nil
    ) {
        self.startGate = startGate
        self.pipeline = pipeline
        self.served = served
        self.source = source
        self.metrics = metrics
        self.logger = logger
    }

    public func run() async throws {
        running.store(true, ordering: .relaxed)
        beat()
        defer { running.store(false, ordering: .relaxed) }
        if let startGate {
            do {
                try await cancelWhenGracefulShutdown { try await startGate() }
            } catch is CancellationError {
                return  // shut down before it held its lane
            }
        }
        let metrics = self.metrics
        let source = self.source
        let executor = WorkerThreadExecutor(name: "lymph-worker", niceness: Self.niceness)
        ChildProcesses.runPlugins(atNiceness: Self.niceness)
        PipelineRunner.commit(atNiceness: Self.niceness)
        var pipeline = self.pipeline
        // Pipelines swapped in are this worker's to close; the first is its opener's.
        defer { if pipeline !== self.pipeline { pipeline.close() } }
        var totals = (read: 0, passed: 0, deadLetters: 0)
        do {
            while true {
                let control = RunControl()
                served.running(control) { source.wake() }
                // One batch at a time, on the worker's own thread (below): latency of answers
                // over the worker's throughput.
                var runner = PipelineRunner(pipeline: pipeline, control: control, maxBatchesInFlight: 1)
                runner.commitsAlongside = false
                runner.keepsCutShortWorkInSource = true
                runner.observer = { [self] report in
                    metrics.record(report)
                    beat()
                }
                runner.taskExecutor = executor
                let summary: RunSummary
                do {
                    summary = try await withTaskExecutorPreference(executor) {
                        try await withGracefulShutdownHandler {
                            try await runner.run(reader: BeatingSource(source, worker: self))
                        } onGracefulShutdown: { [diskFull = self.pipeline.diskFull] in
                            source.stop()
                            // Plugins still working get the stop grace a run gives them, then
                            // are stopped; what they held stays spooled (`WorkLeftInSource`).
                            // Not while a deleted spool drains: it is read to its end.
                            if source.spoolFileProblem == nil { control.requestStop(signal: SIGTERM) }
                            // A worker waiting for disk space stops waiting: what it had not
                            // finished stays spooled.
                            diskFull?.stop()
                        }
                    }
                } catch let left as WorkLeftInSource {
                    logger.notice(
                        "plugins still working \(Int(RunControl.stopGrace))s after the stop were stopped: the batch in hand stays in the spool for the next start",
                        metadata: ["left": "\(left.items)"])
                    break
                }
                totals.read += summary.itemsRead
                totals.passed += summary.passed
                totals.deadLetters += summary.deadLetters
                if let gone = source.fileGone {
                    // Its run committed everything the lost file held: nothing accepted is lost,
                    // but no new webhook can be kept until a start makes a spool again.
                    throw SpoolFileDrained(problem: gone)
                }
                // A stop that is not a shutdown is a reload: the batches in hand are finished
                // and committed, so the next pipeline takes over at a batch boundary.
                if source.isStopping || Task.isCancelled { break }
                guard let next = served.takePending() else { continue }
                pipeline = try swap(pipeline, for: next)
            }
            logger.notice(
                "pipeline worker stopped",
                metadata: [
                    "read": "\(totals.read)", "passed": "\(totals.passed)",
                    "dead_letters": "\(totals.deadLetters)",
                ])
        } catch {
            failure.withLock { $0 = "\(error)" }
            logger.critical("pipeline worker failed: \(error)")
            throw error
        }
    }

    /// The pipeline of `next` over the same store; when it cannot be opened, `old` built again
    /// (its stages finished with its run), and the reload counted as failed.
    func swap(_ old: Pipeline, for next: ServedPipeline.Loaded) throws -> Pipeline {
        let running = served.current
        do {
            let new = try old.reloaded(next.spec)
            if old !== pipeline { old.close() }
            // Entries the server spooled after checking them with the new pipeline's only verify
            // stage need not be checked again (see `SpoolSource.handoffSignaturesChecked`).
            source.handoffSignaturesChecked = new.verifyStageCount == 1
            served.swapped(next)
            logger.notice("pipeline swapped in", metadata: ["sha256": "\(next.sha256)", "stages": "\(next.spec.stages.count + 1)"])
            return new
        } catch {
            let again = try old.reloaded(old.spec)
            if old !== pipeline { old.close() }
            served.swapFailed(next, keeping: running, verifier: again.verifier, error: error)
            return again
        }
    }

    func beat() { heartbeat.store(Int64(Timestamp.now() * 1000), ordering: .relaxed) }

    /// Why the worker is not healthy, or nil.
    var problem: String? {
        if let f = failure.withLock({ $0 }) { return "pipeline worker failed: \(f)" }
        if !running.load(ordering: .relaxed) { return "pipeline worker is not running" }
        let age = Timestamp.now() - Double(heartbeat.load(ordering: .relaxed)) / 1000
        if age > 60 { return "pipeline worker has shown no progress for \(Int(age))s" }
        return nil
    }
}

/// The spool source, noting each poll as a sign of life.
final class BeatingSource<Backend: SpoolBackend>: ItemSource {
    let source: SpoolSource<Backend>
    let worker: PipelineWorker<Backend>

    init(_ source: SpoolSource<Backend>, worker: PipelineWorker<Backend>) {
        self.source = source
        self.worker = worker
    }

    func nextBatch(control: RunControl) async throws -> InputBatch? {
        worker.beat()
        return try await source.nextBatch(control: control)
    }

    var finished: Bool { source.finished }
    func batchFinished() { source.batchFinished() }
    func takePending() throws -> PendingWrite? { try source.takePending() }
    func pendingWritten() { source.pendingWritten() }
    func pendingNotWritten() { source.pendingNotWritten() }
}

/// The spool's file was deleted or replaced; what it held has been processed and committed.
struct SpoolFileDrained: Error, CustomStringConvertible {
    let problem: String
    var description: String {
        "\(problem). Everything the spool held has been processed and committed"
    }
}
