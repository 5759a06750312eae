import Foundation
import Synchronization

/// Runs the pipeline worker's tasks on a thread of its own, at a lower scheduling priority than
/// the threads that answer webhooks.
///
/// Under load the HTTP side and the worker want the same cores. Answering is what IMMUNE waits
/// for (5 s, then it retries); processing can lag behind, because every accepted webhook is
/// already in the spool. So the worker yields the CPU to answering, and catches up when the load
/// drops. Its SQLite commits also block only this thread, never Swift's shared ones. Plugins
/// get the same nice value (`ChildProcesses.runPlugins(atNiceness:)`).
final class WorkerThreadExecutor: TaskExecutor {
    struct State {
        var jobs: [UnownedJob] = []
        var sleeping = false
    }

    let state = Mutex(State())
    let wakeup = DispatchSemaphore(value: 0)

    /// `niceness` is added to the thread's nice value (Linux schedules threads one by one).
    init(name: String, niceness: Int32) {
        NamedThread.start(name, niceness: niceness) { [self] in run() }
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

    /// Runs for the life of the process: a task cancelled while the worker stops may still
    /// have jobs to run after the service has returned.
    private func run() {
        while true {
            let jobs: [UnownedJob] = state.withLock { s in
                if s.jobs.isEmpty {
                    s.sleeping = true
                    return []
                }
                defer { s.jobs.removeAll(keepingCapacity: true) }
                return s.jobs
            }
            if jobs.isEmpty {
                wakeup.wait()
                continue
            }
            for job in jobs { job.runSynchronously(on: asUnownedTaskExecutor()) }
        }
    }
}
