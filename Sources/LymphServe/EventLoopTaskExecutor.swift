import NIOCore

/// Runs Swift tasks on a NIO event loop's thread. The HTTP service prefers it, so a request is
/// read, verified, queued for the spool and answered on the loop that owns its socket, with no
/// hop to Swift's global threads and back for each request.
final class EventLoopTaskExecutor: TaskExecutor {
    let loop: any EventLoop

    init(_ loop: any EventLoop) { self.loop = loop }

    func enqueue(_ job: consuming ExecutorJob) {
        let job = UnownedJob(job)
        loop.execute { job.runSynchronously(on: self.asUnownedTaskExecutor()) }
    }
}
