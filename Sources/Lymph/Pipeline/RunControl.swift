import Synchronization

/// Shared between a run and whoever watches it: the stop request (signals) and live counters
/// (the progress line).
public final class RunControl: Sendable {
    private let stop = Atomic<Int32>(0)
    /// When the stop was asked for.
    private let stopAt = Mutex<ContinuousClock.Instant?>(nil)
    private let cut = Atomic<Bool>(false)
    let itemsRead = Atomic<Int>(0)
    let deadLetters = Atomic<Int>(0)
    let written = Atomic<Int>(0)

    /// Nothing stopped, nothing counted yet.
    public init() {}

    /// Asks the run to stop reading; the batches already read are finished and flushed.
    public func requestStop(signal: Int32) {
        stopAt.withLock { if $0 == nil { $0 = .now } }
        stop.store(signal, ordering: .relaxed)
    }

    /// Asks the run to stop reading at the next batch boundary without starting the stop grace:
    /// work in flight finishes within its own timeouts (`lymph serve`'s reload, which goes on
    /// with the next pipeline). A later `requestStop` starts the grace.
    public func requestStopBetweenBatches(signal: Int32) {
        stop.store(signal, ordering: .relaxed)
    }

    /// How long ago the stop was asked for; nil before.
    public var stoppingFor: Duration? { stopAt.withLock { $0.map { .now - $0 } } }

    /// A stage stopped work in flight because the run was stopping (`ExecStage.stopGrace`): the
    /// run was cut short even if it had read its input to the end.
    public func workCutShort() { cut.store(true, ordering: .relaxed) }
    /// Whether a stage did.
    public var wasWorkCutShort: Bool { cut.load(ordering: .relaxed) }

    /// The signal that asked for the stop, or 0.
    public var stopSignal: Int32 { stop.load(ordering: .relaxed) }
    /// Whether a stop has been asked for.
    public var isStopRequested: Bool { stopSignal != 0 }

    /// How long work in flight may go on after a stop request (plugins answering, retries): past
    /// it, what is left goes to the dead letters for `lymph replay`.
    public static let stopGrace = 5.0

    /// Whether a stop was asked for `stopGrace` ago or more.
    public var stopGraceEnded: Bool { (stoppingFor ?? .zero) >= .seconds(Self.stopGrace) && isStopRequested }

    /// Waits `seconds`, or until the stop grace ends if a stop is asked for (a retry's back-off
    /// must not hold a stopping run past it; looked at every 50 ms).
    public func pause(seconds: Double) async {
        let end = ContinuousClock.now + .milliseconds(Int(max(0, seconds) * 1000))
        while !stopGraceEnded {
            let left = end - .now
            if left <= .zero { return }
            try? await Task.sleep(for: min(left, .milliseconds(50)))
        }
    }

    /// Items read, events written and dead letters so far, for a progress line.
    public var progress: (read: Int, written: Int, deadLetters: Int) {
        (itemsRead.load(ordering: .relaxed), written.load(ordering: .relaxed), deadLetters.load(ordering: .relaxed))
    }
}
