import CLymphSpawn
import Foundation
import Subprocess
import Synchronization

/// One event-mode plugin process, from its start to its reaping, driven on the calling thread,
/// which it blocks (`BlockingThreads` gives each run a thread of its own).
///
/// Event mode starts its processes itself (`lymph_spawn_tied`, vfork and exec as glibc's
/// `posix_spawn` does) rather than with swift-subprocess (which stream mode uses):
/// swift-subprocess 1.0.2 starts every process on one shared background thread, so two workers
/// could never start two processes at once, while a start from each worker's own thread can
/// (scripts/bench_spawn_floor compares the two). Each process also gets SIGKILL when that
/// thread ends: a lymph killed with SIGKILL takes its plugins along, where a hung one would
/// otherwise run on, orphaned. (A stream-mode plugin sees its stdin end then.)
///
/// What swift-subprocess gave is kept: the process leads a process group of its own; its signal
/// mask is empty and every signal has its default action (Lymph ignores SIGPIPE, a plugin must
/// not inherit that); it inherits descriptors 0–2 only; it gets the clean environment and the
/// pipeline's folder as working directory; at the timeout its group gets SIGTERM, then SIGKILL
/// after a grace.
enum EventProcess {
    enum Outcome: Sendable {
        case ran(TerminationStatus, Collected)
        case failedToStart(String)
        /// `afterExit`: the process had exited, but something it started still held its stdout
        /// or stderr open at the timeout.
        case timedOut(afterExit: Bool)
        case cancelled
        /// stdout went over `max_output`; the group was killed.
        case outputTooLarge
        /// The process ended but its exit status could not be read.
        case statusLost(String)
    }

    struct Collected: Sendable {
        var bytes: [UInt8] = []
        /// Over `max_output`: `bytes` holds what came before.
        var overflowed = false
    }

    /// Lets another thread stop the run (the task waiting for it was cancelled).
    final class Control: Sendable {
        struct State {
            var pid: pid_t = 0
            var cancelled = false
        }
        let state = Mutex(State())

        /// Kills the process group now, or the moment the process has started.
        func cancel() {
            state.withLock { s in
                s.cancelled = true
                if s.pid > 0 { kill(-s.pid, SIGKILL) }
            }
        }

        var isCancelled: Bool { state.withLock { $0.cancelled } }

        /// Records the started process; true when the run was cancelled meanwhile.
        func started(_ pid: pid_t) -> Bool {
            state.withLock { s in
                s.pid = pid
                if s.cancelled { kill(-pid, SIGKILL) }
                return s.cancelled
            }
        }

        /// Called before reaping, so a late `cancel` never signals a reused process id.
        func ending() -> Bool {
            state.withLock { s in
                s.pid = 0
                return s.cancelled
            }
        }
    }

    /// Once the process group has been killed, how long its pipes may stay open (held by a
    /// descendant that left the group) before Lymph stops reading them.
    static let drainAfterKill: Duration = .milliseconds(200)
    static let readSize = 64 * 1024

    static func run(
        _ command: ExecCommand, environment: [[UInt8]], input: [UInt8], timeout: Double, maxOutput: Int,
        stderr: StderrCollector, control: Control, processEnded: () -> Void
    ) -> Outcome {
        // A task cancelled before its turn starts nothing (the run is ending).
        if control.isCancelled { return .cancelled }
        var stdinPipe: [Int32] = [-1, -1], stdoutPipe: [Int32] = [-1, -1], stderrPipe: [Int32] = [-1, -1]
        defer { for fd in stdinPipe + stdoutPipe + stderrPipe where fd >= 0 { close(fd) } }
        guard lymph_pipe_cloexec(&stdinPipe) == 0, lymph_pipe_cloexec(&stdoutPipe) == 0, lymph_pipe_cloexec(&stderrPipe) == 0 else {
            return .failedToStart("could not create a pipe: \(String(cString: strerror(errno)))")
        }
        let pid: pid_t
        switch spawn(command, environment: environment, stdin: stdinPipe[0], stdout: stdoutPipe[1], stderr: stderrPipe[1]) {
        case .failure(let failure): return .failedToStart(failure.description)
        case .success(let p): pid = p
        }
        ChildProcesses.started(pid)
        _ = control.started(pid)
        // The child's ends are the child's: closed here so that end of file means the child
        // (and whatever inherited them) is done with them.
        for fd in [stdinPipe[0], stdoutPipe[1], stderrPipe[1]] { close(fd) }
        stdinPipe[0] = -1; stdoutPipe[1] = -1; stderrPipe[1] = -1
        let pidfd = lymph_pidfd_open(pid)
        defer { if pidfd >= 0 { close(pidfd) } }
        for fd in [stdinPipe[1], stdoutPipe[0], stderrPipe[0]] { _ = fcntl(fd, F_SETFL, fcntl(fd, F_GETFL) | O_NONBLOCK) }

        var session = Session(
            pid: pid, pidfd: pidfd, input: input, maxOutput: maxOutput, stderr: stderr,
            stdinFD: stdinPipe[1], stdoutFD: stdoutPipe[0], stderrFD: stderrPipe[0])
        session.drive(until: ContinuousClock.now + .milliseconds(Int64((timeout * 1000).rounded(.up))), control: control)
        // Session closed what it finished with; the rest is closed by the defer above.
        stdinPipe[1] = session.stdinFD; stdoutPipe[0] = session.stdoutFD; stderrPipe[0] = session.stderrFD
        stderr.finish()

        // Untracked before the reap, so neither a late cancel nor an immediate exit (a second
        // SIGINT) can signal the group id once it may be reused.
        let cancelled = control.ending()
        ChildProcesses.ended(pid)
        var status: Int32 = 0
        var reaped: pid_t
        repeat { reaped = waitpid(pid, &status, 0) } while reaped == -1 && errno == EINTR
        let waitError = reaped == pid ? nil : String(cString: strerror(errno))
        processEnded()
        if cancelled { return .cancelled }
        // Over max_output is what stopped it, even if the timeout came during the stop.
        if session.collected.overflowed { return .outputTooLarge }
        if session.timedOut { return .timedOut(afterExit: session.heldOpen) }
        // ECHILD when SIGCHLD is ignored (the kernel reaps by itself); ExecStage sets it back to
        // its default, but an exit status that could not be read is never taken for 0.
        if let waitError { return .statusLost(waitError) }
        let termination: TerminationStatus = status & 0x7F == 0 ? .exited((status >> 8) & 0xFF) : .signaled(status & 0x7F)
        return .ran(termination, session.collected)
    }

    /// Starts the process with the attributes the type's comment lists (`lymph_spawn_tied`,
    /// which posix_spawn's are, and the parent-death signal posix_spawn cannot set).
    static func spawn(_ command: ExecCommand, environment: [[UInt8]], stdin: Int32, stdout: Int32, stderr: Int32) -> Result<pid_t, SpawnFailure> {
        let argv = CStrings([command.name] + command.arguments)
        let envp = CStrings(environment)
        defer { argv.free(); envp.free() }
        var step: Int32 = 0
        let pid = lymph_spawn_tied(command.executable, argv.pointers, envp.pointers, stdin, stdout, stderr, command.workingDirectory, &step)
        guard pid < 0 else { return .success(pid) }
        let code = errno
        let error = String(cString: strerror(code))
        switch step {
        case 4: return .failure(SpawnFailure("could not change to the working directory \(command.workingDirectory): \(error)"))
        case 5:
            // An environment string over the kernel's limit (128 KiB): the event's id or type,
            // passed as LYMPH_EVENT_ID and LYMPH_EVENT_TYPE, is the one that can be that long.
            if code == E2BIG {
                return .failure(
                    SpawnFailure(
                        "\(error): an environment value is over the system's 128 KiB limit (an event id or type that long, passed in LYMPH_EVENT_ID or LYMPH_EVENT_TYPE?)"
                    ))
            }
            return .failure(SpawnFailure(error))
        default: return .failure(SpawnFailure("could not prepare the start: \(error)"))
        }
    }

    struct SpawnFailure: Error, CustomStringConvertible {
        let description: String
        init(_ description: String) { self.description = description }
    }

    /// NUL-terminated copies for the C library, with a nil at the end; a NUL inside a value
    /// would end it early, so it is dropped.
    struct CStrings {
        var pointers: [UnsafeMutablePointer<CChar>?]

        init(_ strings: [String]) { self.init(strings.map { Array($0.utf8) }) }

        init(_ values: [[UInt8]]) {
            pointers = values.map { value in
                let bytes = value.filter { $0 != 0 }
                let p = UnsafeMutablePointer<CChar>.allocate(capacity: bytes.count + 1)
                bytes.withUnsafeBufferPointer { b in
                    b.withMemoryRebound(to: CChar.self) { p.update(from: $0.baseAddress!, count: b.count) }
                }
                p[bytes.count] = 0
                return p
            }
            pointers.append(nil)
        }

        func free() { for p in pointers { p?.deallocate() } }
    }

    /// The running process's pipes: stdin written, stdout and stderr read, all at once, until
    /// the process has exited and its pipes are drained.
    struct Session {
        let pid: pid_t
        let pidfd: Int32
        let input: [UInt8]
        let maxOutput: Int
        let stderr: StderrCollector
        var stdinFD: Int32
        var stdoutFD: Int32
        var stderrFD: Int32
        var written = 0
        var collected = Collected()
        var exited = false
        var timedOut = false
        /// The timeout came after the process had exited, while its pipes were still held open.
        var heldOpen = false
        var buffer = [UInt8](repeating: 0, count: EventProcess.readSize)

        init(pid: pid_t, pidfd: Int32, input: [UInt8], maxOutput: Int, stderr: StderrCollector, stdinFD: Int32, stdoutFD: Int32, stderrFD: Int32) {
            self.pid = pid
            self.pidfd = pidfd
            self.input = input
            self.maxOutput = maxOutput
            self.stderr = stderr
            self.stdinFD = stdinFD
            self.stdoutFD = stdoutFD
            self.stderrFD = stderrFD
        }

        /// Runs until the process has exited and its stdout and stderr have reached end of file
        /// (a child it left running in its group may still be reading stdin and writing the
        /// answer), or until the group is stopped (timeout, max_output, cancellation), then
        /// kills what is left of the group. One read per descriptor per wake-up, so a plugin
        /// flooding a pipe never keeps the deadlines from being checked.
        mutating func drive(until deadline: ContinuousClock.Instant, control: Control) {
            writeInput()
            var killAt: ContinuousClock.Instant?
            var drainUntil: ContinuousClock.Instant?
            // Once the group is told to go, nothing more is written, and after the leader has
            // exited what is in the pipes is read for a short while, not waited for.
            var stopping = false
            while true {
                if exited && stdoutFD < 0 && stderrFD < 0 { break }
                let now = ContinuousClock.now
                if let d = drainUntil, now >= d {
                    // Whatever is already in the pipes is still taken.
                    readStdout(); readStderr()
                    break
                }
                if !stopping && (control.isCancelled || collected.overflowed) {
                    // Both have killed the group already (Control.cancel, readStdout).
                    stopping = true
                    closeStdin()
                    killAt = nil
                }
                if !stopping && now >= deadline {
                    timedOut = true
                    stopping = true
                    closeStdin()
                    if exited {
                        // Exited, but a child keeps the pipes open: the group goes now.
                        heldOpen = true
                        kill(-pid, SIGKILL)
                    } else {
                        // SIGTERM to the group, SIGKILL after the grace.
                        kill(-pid, SIGTERM)
                        killAt = now + ExecProcess.terminationGrace
                    }
                }
                if let k = killAt, now >= k {
                    kill(-pid, SIGKILL)
                    killAt = nil
                }
                if stopping && exited && drainUntil == nil { drainUntil = now + EventProcess.drainAfterKill }
                // A cancellation only sets a flag (and kills the group): it is looked for at
                // least every 100 ms. Without a pidfd (kernels before 5.3) the exit is looked
                // for every millisecond.
                var wake = [drainUntil, killAt, stopping ? nil : deadline, now + .milliseconds(100)].compactMap { $0 }.min()!
                if pidfd < 0 && !exited { wake = min(wake, now + .milliseconds(1)) }
                var fds: [pollfd] = []
                if stdinFD >= 0 { fds.append(pollfd(fd: stdinFD, events: Int16(POLLOUT), revents: 0)) }
                if stdoutFD >= 0 { fds.append(pollfd(fd: stdoutFD, events: Int16(POLLIN), revents: 0)) }
                if stderrFD >= 0 { fds.append(pollfd(fd: stderrFD, events: Int16(POLLIN), revents: 0)) }
                if pidfd >= 0 && !exited { fds.append(pollfd(fd: pidfd, events: Int16(POLLIN), revents: 0)) }
                let left = wake - now
                let waitMs = Int32(
                    clamping: max(0, (left.components.seconds * 1000) + (left.components.attoseconds + 999_999_999_999_999) / 1_000_000_000_000_000))
                let ready = fds.withUnsafeMutableBufferPointer { poll($0.baseAddress, nfds_t($0.count), waitMs) }
                if ready < 0 && errno != EINTR {
                    // Cannot happen with valid descriptors; the process must not outlive the run.
                    kill(-pid, SIGKILL)
                    while !exited && ExecProcess.exitState(pid) == .running { usleep(1000) }
                    exited = true
                    break
                }
                for fd in fds where fd.revents != 0 {
                    switch fd.fd {
                    case stdinFD: writeInput()
                    case stdoutFD: readStdout()
                    case stderrFD: readStderr()
                    default: break
                    }
                }
                // Without a pidfd, "unknown" (already reaped elsewhere) counts as exited: the
                // reap then fails and says so, instead of this loop waiting forever.
                if !exited && (pidfd >= 0 ? fds.contains { $0.fd == pidfd && $0.revents != 0 } : ExecProcess.exitState(pid) != .running) {
                    exited = true
                    if stopping {
                        kill(-pid, SIGKILL)
                        killAt = nil
                        drainUntil = ContinuousClock.now + EventProcess.drainAfterKill
                    }
                }
            }
            // Whatever the leader left in its group goes with it (the leader is not yet reaped,
            // so the group id cannot have been reused).
            kill(-pid, SIGKILL)
        }

        /// Writes what the pipe takes now; a plugin that does not read its stdin (or has exited)
        /// is not an error.
        mutating func writeInput() {
            guard stdinFD >= 0 else { return }
            let fd = stdinFD
            while written < input.count {
                let from = written
                let n = input.withUnsafeBytes { write(fd, $0.baseAddress! + from, $0.count - from) }
                if n > 0 { written += n; continue }
                if n < 0 && errno == EINTR { continue }
                if n < 0 && errno == EAGAIN { return }
                break
            }
            closeStdin()
        }

        mutating func closeStdin() {
            if stdinFD >= 0 { close(stdinFD); stdinFD = -1 }
        }

        mutating func readStdout() {
            guard let n = Self.readChunk(&stdoutFD, into: &buffer) else { return }
            if collected.bytes.count + n > maxOutput {
                // Over max_output: the group is stopped and the rest is not read.
                collected.overflowed = true
                kill(-pid, SIGKILL)
                close(stdoutFD); stdoutFD = -1
                return
            }
            collected.bytes.append(contentsOf: buffer[0..<n])
        }

        mutating func readStderr() {
            guard let n = Self.readChunk(&stderrFD, into: &buffer) else { return }
            buffer.withUnsafeBytes { stderr.append(UnsafeRawBufferPointer(rebasing: $0[0..<n])) }
        }

        /// One read from `fd` into `buffer`: the byte count, or nil when there is nothing now.
        /// At end of file (or an error) the descriptor is closed and set to -1.
        static func readChunk(_ fd: inout Int32, into buffer: inout [UInt8]) -> Int? {
            guard fd >= 0 else { return nil }
            let descriptor = fd
            let n = buffer.withUnsafeMutableBytes { read(descriptor, $0.baseAddress, $0.count) }
            if n < 0 && (errno == EINTR || errno == EAGAIN) { return nil }
            if n <= 0 { close(fd); fd = -1; return nil }
            return n
        }
    }
}
