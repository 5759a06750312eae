import Foundation
import Logging
import Lymph
import ServiceLifecycle
import Synchronization
import GRDB

/// Drains the spool through the pipeline, in arrival order, as a `Service`. On graceful
/// shutdown it finishes the batches in hand, commits, and stops; what is left stays in the
/// spool for the next start.
public final class PipelineWorker: Service, Sendable {
    let pipeline: Pipeline
    let source: SpoolSource
    let doorbell: Doorbell
    let metrics: ServeMetrics
    let logger: Logger
    /// Milliseconds since the epoch of the last sign of life (a poll of the spool or a batch).
    let heartbeat = Atomic<Int64>(0)
    let running = Atomic<Bool>(false)
    let failure = Mutex<String?>(nil)

    /// How much lower the worker's thread is scheduled than the HTTP side (nice 5 weighs about
    /// a third of nice 0 when both want a core).
    static let niceness: Int32 = 5

    public init(pipeline: Pipeline, source: SpoolSource, doorbell: Doorbell, metrics: ServeMetrics, logger: Logger) {
        self.pipeline = pipeline
        self.source = source
        self.doorbell = doorbell
        self.metrics = metrics
        self.logger = logger
    }

    public func run() async throws {
        running.store(true, ordering: .relaxed)
        beat()
        defer { running.store(false, ordering: .relaxed) }
        let control = RunControl()
        // One batch at a time, on the worker's own thread (below): latency of answers over the
        // worker's throughput.
        var runner = PipelineRunner(pipeline: pipeline, control: control, maxBatchesInFlight: 1)
        let metrics = self.metrics
        runner.observer = { [self] report in
            metrics.record(report)
            beat()
        }
        let source = self.source
        let doorbell = self.doorbell
        let executor = WorkerThreadExecutor(name: "lymph-worker", niceness: Self.niceness)
        ChildProcesses.runPlugins(atNiceness: Self.niceness)
        runner.taskExecutor = executor
        do {
            let summary = try await withTaskExecutorPreference(executor) {
                try await withGracefulShutdownHandler {
                    try await runner.run(reader: BeatingSource(source, worker: self))
                } onGracefulShutdown: {
                    source.stopping.store(true, ordering: .relaxed)
                    doorbell.ring()
                }
            }
            logger.notice("pipeline worker stopped", metadata: ["read": "\(summary.itemsRead)", "passed": "\(summary.passed)",
                                                               "dead_letters": "\(summary.deadLetters)"])
        } catch {
            failure.withLock { $0 = "\(error)" }
            logger.critical("pipeline worker failed: \(error)")
            throw error
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
final class BeatingSource: ItemSource {
    let source: SpoolSource
    let worker: PipelineWorker

    init(_ source: SpoolSource, worker: PipelineWorker) {
        self.source = source
        self.worker = worker
    }

    func nextBatch(control: RunControl) async throws -> InputBatch? {
        worker.beat()
        return try await source.nextBatch(control: control)
    }

    var finished: Bool { source.finished }
    func batchFinished() { source.batchFinished() }
    func writePending(_ db: Database) throws { try source.writePending(db) }
    func pendingWritten() { source.pendingWritten() }
}
