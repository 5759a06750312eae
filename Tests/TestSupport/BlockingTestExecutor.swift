import Foundation

/// Runs `body`, which blocks (waits for processes, sleeps between polls), on a thread of its own
/// rather than one of Swift's few cooperative threads: a test blocking those for a minute would
/// starve the suite's async tests, whose deadlines then fail for want of a thread. It stays in
/// the test's task (a task executor preference), so its expectations are the test's.
public func onOwnThread<T: Sendable>(_ body: @Sendable () throws -> T) async throws -> T {
    let executor = BlockingTestExecutor()
    defer { executor.stop() }
    return try await withTaskExecutorPreference(executor) { try await runOnPreferredExecutor(body) }
}

/// Runs the async `body` with its jobs on a thread of its own: a test that measures how soon
/// something answers it is then not delayed by the cooperative threads other suites keep busy,
/// and may block that thread (waiting for another thread's signal) without starving them.
public func withOwnThread<T: Sendable>(_ body: @Sendable () async throws -> T) async throws -> T {
    let executor = BlockingTestExecutor()
    defer { executor.stop() }
    return try await withTaskExecutorPreference(executor) { try await body() }
}

/// Runs on the task's preferred executor: a `@concurrent` function leaves its caller's.
@concurrent public func runOnPreferredExecutor<T: Sendable>(_ body: @Sendable () throws -> T) async throws -> T {
    try body()
}

/// One thread running the jobs of the tasks that prefer it.
public final class BlockingTestExecutor: TaskExecutor, @unchecked Sendable {
    private let lock = NSCondition()
    private var jobs: [UnownedJob] = []
    private var stopped = false

    public init() {
        let thread = Thread { [self] in run() }
        thread.name = "test-blocking"
        thread.stackSize = 8 << 20
        thread.start()
    }

    public func enqueue(_ job: consuming ExecutorJob) {
        let job = UnownedJob(job)
        lock.lock()
        jobs.append(job)
        lock.signal()
        lock.unlock()
    }

    /// Ends the thread once the jobs it has are run.
    public func stop() {
        lock.lock()
        stopped = true
        lock.signal()
        lock.unlock()
    }

    private func run() {
        // Named for the kernel too (`top -H`, /proc): a thread otherwise takes its creator's name.
        try? "test-blocking".write(toFile: "/proc/thread-self/comm", atomically: false, encoding: .utf8)
        while true {
            lock.lock()
            while jobs.isEmpty && !stopped { lock.wait() }
            if jobs.isEmpty && stopped {
                lock.unlock()
                return
            }
            let batch = jobs
            jobs.removeAll()
            lock.unlock()
            for job in batch { job.runSynchronously(on: asUnownedTaskExecutor()) }
        }
    }
}
