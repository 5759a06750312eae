import Synchronization

/// Shared between a run and whoever watches it: the stop request (signals) and live counters
/// (the progress line).
public final class RunControl: Sendable {
    private let stop = Atomic<Int32>(0)
    let itemsRead = Atomic<Int>(0)
    let deadLetters = Atomic<Int>(0)
    let written = Atomic<Int>(0)

    /// Nothing stopped, nothing counted yet.
    public init() {}

    /// Asks the run to stop reading; the batches already read are finished and flushed.
    public func requestStop(signal: Int32) {
        stop.store(signal, ordering: .relaxed)
    }

    /// The signal that asked for the stop, or 0.
    public var stopSignal: Int32 { stop.load(ordering: .relaxed) }
    /// Whether a stop has been asked for.
    public var isStopRequested: Bool { stopSignal != 0 }

    /// Items read, events written and dead letters so far, for a progress line.
    public var progress: (read: Int, written: Int, deadLetters: Int) {
        (itemsRead.load(ordering: .relaxed), written.load(ordering: .relaxed), deadLetters.load(ordering: .relaxed))
    }
}
