import Foundation
import Lymph
import Synchronization

/// A progress line on a terminal's stderr, updated in place at most 10 times a second, shown
/// only once a run has gone on for two seconds.
final class ProgressLine: Sendable {
    let control: RunControl
    private let task = Mutex<Task<Void, Never>?>(nil)
    private let shown = Atomic<Bool>(false)

    init(control: RunControl) { self.control = control }

    func start() {
        let started = ContinuousClock.now
        let t = Task { [self] in
            while !Task.isCancelled {
                try? await Task.sleep(for: .milliseconds(100))
                let elapsed = ContinuousClock.now - started
                guard elapsed > .seconds(2) else { continue }
                let p = control.progress
                let seconds = Double(elapsed.components.seconds) + Double(elapsed.components.attoseconds) / 1e18
                let line = String(
                    format: "\r\u{1B}[K  %d read  %.0f events/s  %d passed  %d dead letters", p.read, Double(p.read) / seconds, p.written, p.deadLetters)
                Console.errorText(line)
                shown.store(true, ordering: .relaxed)
            }
        }
        task.withLock { $0 = t }
    }

    func stop() {
        task.withLock { $0?.cancel() }
        if shown.load(ordering: .relaxed) { Console.errorText("\r\u{1B}[K") }
    }
}
