import Dispatch
import Foundation
import Lymph
import Synchronization

/// How every lymph command that runs for a while takes signals (run, replay, serve, send): the
/// first of `stopOn` asks for an orderly stop through `onStop`; a second one of them exits at
/// once with 128 + the signal, taking plugin processes along (they must not outlive Lymph).
/// Each of `handling` calls its handler, every time (an empty one keeps the signal from ending
/// the process while another listener, such as `lymph serve`'s service group, handles it). SIGPIPE is
/// ignored, so a closed output is an error the command reports, not a silent death.
///
/// Handlers run on a Dispatch queue, not on Swift's cooperative threads: a run whose threads
/// are all busy (a blocking read, a stage at work) still hears the signal at once.
final class SignalTrap {
    private let sources: [any DispatchSourceSignal]

    /// Signals that stop `lymph run` and `lymph replay`: a hangup of the terminal a run was
    /// started from ends it the same orderly way, with its summary and its finished work
    /// committed, not in the middle of a batch.
    static let runSignals = [SIGINT, SIGTERM, SIGHUP]

    init(stopOn: [Int32], handling: [Int32: @Sendable () -> Void] = [:], onStop: @escaping @Sendable (Int32) -> Void) {
        signal(SIGPIPE, SIG_IGN)
        let received = Received()
        var sources: [any DispatchSourceSignal] = []
        for sig in stopOn {
            signal(sig, SIG_IGN)
            let source = DispatchSource.makeSignalSource(signal: sig, queue: .global())
            source.setEventHandler {
                if received.count.add(1, ordering: .relaxed).newValue > 1 {
                    ChildProcesses.killAll()
                    _exit(128 + sig)
                }
                onStop(sig)
            }
            source.resume()
            sources.append(source)
        }
        for (sig, handler) in handling {
            signal(sig, SIG_IGN)
            let source = DispatchSource.makeSignalSource(signal: sig, queue: .global())
            source.setEventHandler { handler() }
            source.resume()
            sources.append(source)
        }
        self.sources = sources
    }

    /// The run's stop request on the first signal (a run stops reading and finishes the
    /// batches in flight).
    convenience init(control: RunControl) {
        self.init(stopOn: Self.runSignals) { control.requestStop(signal: $0) }
    }

    func cancel() {
        for s in sources { s.cancel() }
    }

    /// Stop signals received so far.
    final class Received: Sendable {
        let count = Atomic<Int>(0)
    }

    static func name(_ sig: Int32) -> String {
        switch sig {
        case SIGINT: "SIGINT"
        case SIGTERM: "SIGTERM"
        case SIGHUP: "SIGHUP"
        default: "signal \(sig)"
        }
    }
}
