import Foundation
import Subprocess
import SystemPackage

/// Starting and stopping plugin processes: the parts event and stream mode share.
///
/// Every process is the leader of its own process group, so a timeout or the end of a run
/// can signal the whole group (a script's own children included) and leave no orphans.
enum ExecProcess {
    /// Time between SIGTERM and SIGKILL when a process must go.
    static let terminationGrace: Duration = .milliseconds(500)

    /// swift-subprocess's configuration for a stream-mode process (event mode spawns its own,
    /// in `EventProcess`).
    static func configuration(_ command: ExecCommand, environment: [[UInt8]]) -> Configuration {
        var options = PlatformOptions()
        options.processGroupID = 0
        options.teardownSequence = [.gracefulShutDown(toProcessGroup: true, allowedDurationToNextStep: terminationGrace)]
        return Configuration(
            executable: .path(FilePath(command.executable)),
            arguments: Arguments(executablePathOverride: command.name, remainingValues: command.arguments),
            environment: .custom(environment),
            workingDirectory: FilePath(command.workingDirectory),
            platformOptions: options
        )
    }

    /// Waits (without reaping) until the group leader `pid` exits, then kills what is left of
    /// its group. The wait blocks a thread of its own queue, not one of Swift's, and answers the
    /// moment the process exits (polling with sleeps added up to a millisecond per event). Not
    /// cancellable, so a timeout does not cut it short: bounded because the teardown that
    /// follows a timeout ends in SIGKILL to the leader. The leader stays a zombie until
    /// swift-subprocess reaps it after the body returns, so its pid cannot have been reused.
    static func clearGroupWhenLeaderExits(_ pid: pid_t) async {
        await withCheckedContinuation { (c: CheckedContinuation<Void, Never>) in
            waitQueue.async {
                var info = siginfo_t()
                while waitid(P_PID, id_t(pid), &info, WEXITED | WNOWAIT) == -1 && errno == EINTR {}
                kill(-pid, SIGKILL)
                c.resume()
            }
        }
    }

    static let waitQueue = DispatchQueue(label: "lymph.exec.wait", attributes: .concurrent)

    enum ExitState { case running, exited, unknown }

    /// Whether the child `pid` has exited, without reaping it (WNOWAIT).
    static func exitState(_ pid: pid_t) -> ExitState {
        var info = siginfo_t()
        guard waitid(P_PID, id_t(pid), &info, WEXITED | WNOHANG | WNOWAIT) == 0 else { return .unknown }
        // With WNOHANG and no state change, waitid leaves the zeroed siginfo as it is.
        return info.si_signo == SIGCHLD ? .exited : .running
    }

    static func describe(_ status: TerminationStatus) -> String {
        switch status {
        case .exited(let code): return "exited with status \(code)\(exitMeaning(code))"
        case .signaled(let signal): return "was killed by signal \(signal)\(signal == SIGKILL ? " (SIGKILL)" : signal == SIGTERM ? " (SIGTERM)" : "")"
        }
    }

    static func exitMeaning(_ code: Int32) -> String {
        switch code {
        case 65: return " (EX_DATAERR: the plugin rejected this event; not retried)"
        case 75: return " (EX_TEMPFAIL: the plugin asked to try again)"
        case 126: return " (the command could not be executed)"
        case 127: return " (a command inside the plugin was not found)"
        default: return ""
        }
    }
}
