import Foundation
#if canImport(Glibc)
    import Glibc
#endif

/// Threads of lymph serve's own (the spool writer, its watchdog, the pipeline worker), named so
/// they show in `top -H` and `perf`: Foundation's `Thread.name` does not reach the kernel on
/// Linux, and the thread's comm file does (at most 15 bytes).
enum NamedThread {
    /// `niceness` is added to the new thread's nice value (Linux schedules threads one by one);
    /// threads and processes it starts inherit it.
    static func start(_ name: String, niceness: Int32 = 0, _ body: @escaping @Sendable () -> Void) {
        let t = Thread {
            try? String(name.prefix(15)).write(toFile: "/proc/thread-self/comm", atomically: false, encoding: .utf8)
            #if canImport(Glibc)
                if niceness != 0 { _ = setpriority(__priority_which_t(PRIO_PROCESS.rawValue), 0, niceness) }
            #endif
            body()
        }
        t.start()
    }
}

extension Duration {
    /// Whole milliseconds, for Dispatch's timeouts and millisecond clocks.
    var wholeMilliseconds: Int {
        Int(components.seconds) * 1000 + Int(components.attoseconds / 1_000_000_000_000_000)
    }

    /// Whole microseconds, for `usleep`.
    var wholeMicroseconds: Int {
        Int(components.seconds) * 1_000_000 + Int(components.attoseconds / 1_000_000_000_000)
    }
}
