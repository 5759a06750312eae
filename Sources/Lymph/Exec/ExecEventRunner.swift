import Foundation
import Logging

/// `mode: event`: one process per event. The event is written to stdin as one line, then end of
/// file; stdout is collected up to `maxOutput`; stderr goes to the log; the whole run of the
/// process is bounded by `timeout`, after which its process group gets SIGTERM, then SIGKILL.
/// `EventProcess` does the running, on a thread of `BlockingThreads`.
struct ExecEventRunner: Sendable {
    let command: ExecCommand
    let environment: ExecEnvironment
    let stageName: String
    let timeout: Double
    let maxOutput: Int
    let logger: Logger
    let redact: Redactor

    /// What one run of the process left: stdout (exit 0) or a failure.
    /// `processEnded` is called once the process has exited and its group is cleared (not
    /// called when it never started).
    /// What a process that exited 0 wrote: its stdout, and the end of its stderr for a message
    /// (empty, or ` (stderr: ...)`), quoted if its stdout turns out not to be events.
    struct Written: Sendable {
        let stdout: [UInt8]
        let stderrTail: String
    }

    func run(_ input: [UInt8], eventID: String, eventType: String, processEnded: @escaping @Sendable () -> Void = {}) async -> Result<Written, ExecFailure> {
        var log = logger
        log[metadataKey: "event_id"] = "\(eventID)"
        let stderr = StderrCollector(logger: log, redact: redact)
        let environment = self.environment.forEvent(id: eventID, type: eventType)
        let (command, maxOutput, timeout) = (self.command, self.maxOutput, self.timeout)
        let control = EventProcess.Control()
        // The process runs on a blocking thread of its own; a cancelled task stops it at once.
        let outcome = await withTaskCancellationHandler {
            await BlockingThreads.shared.run {
                EventProcess.run(
                    command, environment: environment, input: input, timeout: timeout, maxOutput: maxOutput,
                    stderr: stderr, control: control, processEnded: processEnded)
            }
        } onCancel: {
            control.cancel()
        }
        let tail = stderr.tailDescription
        switch outcome {
        case .cancelled:
            return .failure(
                ExecFailure(
                    reason: .pluginCancelled, message: "stage '\(stageName)': \(command.name) was stopped because the run is ending\(tail)", retryable: false))
        case .timedOut(afterExit: false):
            return .failure(
                ExecFailure(
                    reason: .pluginTimeout,
                    message: "stage '\(stageName)': \(command.name) timed out after \(DedupSpec.describe(timeout)) and was stopped\(tail)", retryable: true))
        case .timedOut(afterExit: true):
            return .failure(
                ExecFailure(
                    reason: .pluginTimeout,
                    message:
                        "stage '\(stageName)': \(command.name) exited, but a process it started still held its stdout or stderr open after \(DedupSpec.describe(timeout)) (timeout); its output may be incomplete (redirect what you start in the background, e.g. `cmd >/dev/null 2>&1 &`)\(tail)",
                    retryable: true))
        case .statusLost(let error):
            return .failure(
                ExecFailure(
                    reason: .pluginExit, message: "stage '\(stageName)': \(command.name) ended, but its exit status could not be read (\(error))\(tail)",
                    retryable: true))
        case .failedToStart(let error):
            return .failure(
                ExecFailure(reason: .pluginStart, message: "stage '\(stageName)': could not start \(command.executable): \(error)", retryable: true))
        case .outputTooLarge:
            return .failure(
                ExecFailure(
                    reason: .pluginOutput,
                    message: "stage '\(stageName)': \(command.name) wrote more than \(maxOutput) bytes to stdout (max_output) and was stopped\(tail)",
                    retryable: false))
        case .ran(let status, let collected):
            guard case .exited(0) = status else {
                var retryable = true
                if case .exited(65) = status { retryable = false }
                return .failure(
                    ExecFailure(
                        reason: .pluginExit, message: "stage '\(stageName)': \(command.name) \(ExecProcess.describe(status))\(tail)", retryable: retryable))
            }
            return .success(Written(stdout: collected.bytes, stderrTail: tail))
        }
    }
}
