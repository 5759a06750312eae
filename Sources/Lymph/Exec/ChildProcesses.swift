import Foundation
import Synchronization

/// Process groups of running plugins, so that an immediate exit (a second SIGINT) can take
/// them along instead of leaving them orphaned.
public enum ChildProcesses {
    static let groups = Mutex(Set<pid_t>())

    static func started(_ pid: pid_t) { _ = groups.withLock { $0.insert(pid) } }
    static func ended(_ pid: pid_t) { _ = groups.withLock { $0.remove(pid) } }

    /// Sends SIGKILL to every plugin process group still running. For an exit that cannot wait.
    public static func killAll() {
        for pid in groups.withLock({ $0 }) { kill(-pid, SIGKILL) }
    }
}
