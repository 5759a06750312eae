import Foundation
import Synchronization

/// Threads for work that blocks (an event-mode process run waits in poll(2) and waitpid(2)),
/// kept off Swift's cooperative threads. A thread is made when a job finds none idle, and
/// stays for the next one. How many exist follows how many runs were ever at once, which the
/// stages' `workers:` bound (up to about twice that: a run frees its slot just before its
/// thread is idle again).
final class BlockingThreads: Sendable {
    struct State {
        var jobs: [@Sendable () -> Void] = []
        var idle = 0
    }

    let name: String
    let state = Mutex(State())
    let wakeup = DispatchSemaphore(value: 0)
    /// The nice value each thread takes before its next job; `Int32.min` leaves it as
    /// inherited. (Linux schedules threads one by one, and a thread's nice value is its own.)
    let niceness = Atomic<Int32>(Int32.min)

    init(name: String) { self.name = name }

    static let shared = BlockingThreads(name: "lymph-exec")

    func submit(_ job: @escaping @Sendable () -> Void) {
        let wake = state.withLock { s in
            s.jobs.append(job)
            if s.idle > 0 { s.idle -= 1; return true }
            return false
        }
        if wake { wakeup.signal() } else { startThread() }
    }

    /// Runs `body` on one of the threads and returns its result.
    func run<T: Sendable>(_ body: @escaping @Sendable () -> T) async -> T {
        await withCheckedContinuation { (c: CheckedContinuation<T, Never>) in
            submit { c.resume(returning: body()) }
        }
    }

    private func startThread() {
        let thread = Thread { [self] in
            // The kernel's name, so the thread shows in `top -H`, `perf` and /proc.
            try? String(name.prefix(15)).write(toFile: "/proc/thread-self/comm", atomically: false, encoding: .utf8)
            var applied = Int32.min
            while true {
                let job: (@Sendable () -> Void)? = state.withLock { s in
                    if s.jobs.isEmpty { s.idle += 1; return nil }
                    return s.jobs.removeFirst()
                }
                guard let job else {
                    wakeup.wait()
                    continue
                }
                let nice = niceness.load(ordering: .relaxed)
                if nice != applied && nice != Int32.min {
                    #if canImport(Glibc)
                        _ = setpriority(__priority_which_t(PRIO_PROCESS.rawValue), 0, nice)
                    #endif
                    applied = nice
                }
                job()
            }
        }
        thread.name = name
        // Small: a run keeps a 64 KiB read buffer on the heap, and little else.
        thread.stackSize = 512 * 1024
        thread.start()
    }
}
