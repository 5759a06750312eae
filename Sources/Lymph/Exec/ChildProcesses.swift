import Foundation
import Synchronization

/// Process groups of running plugins, so that an immediate exit (a second SIGINT) can take
/// them along instead of leaving them orphaned.
public enum ChildProcesses {
    static let groups = Mutex(Set<pid_t>())
    /// The nice value every plugin gets as it starts; `Int32.min` leaves it as inherited.
    static let niceness = Atomic<Int32>(Int32.min)

    /// Plugins started from now on run at `value` (`lymph serve`: the worker's, so a busy plugin
    /// never slows the answers). Set explicitly, since what a child inherits depends on which
    /// thread swift-subprocess happened to create its spawning thread from.
    public static func runPlugins(atNiceness value: Int32) { niceness.store(value, ordering: .relaxed) }

    static func started(_ pid: pid_t) {
        _ = groups.withLock { $0.insert(pid) }
        let nice = niceness.load(ordering: .relaxed)
        #if canImport(Glibc)
            // Just after the start: whatever the plugin forks before this keeps the value it had
            // (swift-subprocess offers no hook before exec on Linux).
            if nice != Int32.min { _ = setpriority(__priority_which_t(PRIO_PROCESS.rawValue), id_t(pid), nice) }
        #endif
    }
    static func ended(_ pid: pid_t) { _ = groups.withLock { $0.remove(pid) } }

    /// Sends SIGKILL to every plugin process group still running. For an exit that cannot wait.
    public static func killAll() {
        for pid in groups.withLock({ $0 }) { kill(-pid, SIGKILL) }
    }
}
