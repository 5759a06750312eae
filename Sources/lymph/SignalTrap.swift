import Dispatch
import Foundation
import Lymph

/// SIGINT/SIGTERM/SIGHUP: the first asks the run to stop after the batches in flight; a second
/// exits at once. (A hangup of the terminal a run was started from ends it the same orderly way,
/// with its summary and its finished work committed, not in the middle of a batch.) SIGPIPE is ignored so a closed output is an error we can report, not a silent death.
final class SignalTrap {
    private let sources: [any DispatchSourceSignal]

    init(control: RunControl) {
        signal(SIGPIPE, SIG_IGN)
        var sources: [any DispatchSourceSignal] = []
        for sig in [SIGINT, SIGTERM, SIGHUP] {
            signal(sig, SIG_IGN)
            let source = DispatchSource.makeSignalSource(signal: sig, queue: .global())
            source.setEventHandler {
                if control.isStopRequested {
                    // Leaving at once: plugin processes must not outlive Lymph.
                    ChildProcesses.killAll()
                    _exit(128 + sig)
                }
                control.requestStop(signal: sig)
            }
            source.resume()
            sources.append(source)
        }
        self.sources = sources
    }

    func cancel() {
        for s in sources { s.cancel() }
    }
}
