import Foundation
import Synchronization
#if canImport(Glibc)
import Glibc
#endif

/// Runs the pipeline worker's tasks on a thread of its own, at a lower scheduling priority than
/// the threads that answer webhooks.
///
/// Under load the HTTP side and the worker want the same cores. Answering is what IMMUNE waits
/// for (5 s, then it retries); processing can lag behind, because every accepted webhook is
/// already in the spool. So the worker yields the CPU to answering, and catches up when the load
/// drops. Its SQLite commits also block only this thread, never Swift's shared ones.
final class WorkerThreadExecutor: TaskExecutor {
    struct State {
        var jobs: [UnownedJob] = []
        var sleeping = false
        var stopped = false
    }

    let state = Mutex(State())
    let wakeup = DispatchSemaphore(value: 0)

    /// `niceness` is added to the thread's nice value (Linux schedules threads one by one).
    init(name: String, niceness: Int32) {
        let t = Thread { [self] in
            try? String(name.prefix(15)).write(toFile: "/proc/thread-self/comm", atomically: false, encoding: .utf8)
            #if canImport(Glibc)
            _ = setpriority(__priority_which_t(PRIO_PROCESS.rawValue), 0, niceness)
            #endif
            run()
        }
        t.start()
    }

    func enqueue(_ job: consuming ExecutorJob) {
        let job = UnownedJob(job)
        let wake = state.withLock { s in
            s.jobs.append(job)
            if s.sleeping { s.sleeping = false; return true }
            return false
        }
        if wake { wakeup.signal() }
    }

    /// Ends the thread once the jobs queued so far have run.
    func stop() {
        let wake = state.withLock { s in
            s.stopped = true
            if s.sleeping { s.sleeping = false; return true }
            return false
        }
        if wake { wakeup.signal() }
    }

    private func run() {
        while true {
            let (jobs, stopped): ([UnownedJob], Bool) = state.withLock { s in
                if s.jobs.isEmpty {
                    if !s.stopped { s.sleeping = true }
                    return ([], s.stopped)
                }
                defer { s.jobs.removeAll(keepingCapacity: true) }
                return (s.jobs, false)
            }
            if jobs.isEmpty {
                if stopped { return }
                wakeup.wait()
                continue
            }
            for job in jobs { job.runSynchronously(on: asUnownedTaskExecutor()) }
        }
    }
}
