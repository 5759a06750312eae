import Foundation
import Logging
import Subprocess
import SystemPackage

/// `mode: event`: one process per event. The event is written to stdin as one line, then end of
/// file; stdout is collected up to `maxOutput`; stderr goes to the log; the whole run of the
/// process is bounded by `timeout`, after which its process group gets SIGTERM, then SIGKILL.
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
    func run(_ input: [UInt8], eventID: String, eventType: String, processEnded: @escaping @Sendable () -> Void = {}) async -> Result<[UInt8], ExecFailure> {
        var log = logger
        log[metadataKey: "event_id"] = "\(eventID)"
        let stderr = StderrCollector(logger: log, redact: redact)
        let configuration = ExecProcess.configuration(command, environment: environment.forEvent(id: eventID, type: eventType))
        let maxOutput = self.maxOutput
        let timeout = self.timeout

        enum Finish: Sendable {
            case ran(TerminationStatus, Collected)
            case failedToStart(String)
            case timedOut
        }
        let finish: Finish = await withTaskGroup(of: Finish?.self) { group in
            group.addTask {
                do {
                    let result = try await Subprocess.run(configuration, input: .inputWriter, output: .sequence, error: .sequence) { execution in
                        let pid = execution.processIdentifier.value
                        ChildProcesses.started(pid)
                        defer { ChildProcesses.ended(pid) }
                        async let collected = Self.collect(execution.standardOutput, limit: maxOutput, pid: pid)
                        async let drained: Void = stderr.drain(execution.standardError)
                        // A plugin that never reads stdin (or exits first) is not an error.
                        _ = try? await execution.standardInputWriter.write(input)
                        try? await execution.standardInputWriter.finish()
                        let output = await collected
                        await drained
                        // Not cancelled with a timeout: after the teardown's SIGTERM ends the
                        // leader, members that ignore SIGTERM must still get SIGKILL here.
                        await ExecProcess.clearGroupWhenLeaderExits(pid)
                        processEnded()
                        return output
                    }
                    return .ran(result.terminationStatus, result.closureResult)
                } catch is CancellationError {
                    return nil
                } catch {
                    return Task.isCancelled ? nil : .failedToStart("\(error)")
                }
            }
            group.addTask {
                do {
                    try await Task.sleep(for: .seconds(timeout))
                    return .timedOut
                } catch {
                    return nil
                }
            }
            var finish: Finish = .timedOut
            while let next = await group.next() {
                guard let next else { continue }
                finish = next
                // First to finish wins: a timeout cancels the run (swift-subprocess then tears
                // the process group down), a finished run cancels the timer.
                group.cancelAll()
                break
            }
            await group.waitForAll()
            return finish
        }
        let tail = stderr.tailDescription
        switch finish {
        case .timedOut:
            return .failure(ExecFailure(reason: "plugin_timeout", message: "stage '\(stageName)': \(command.name) timed out after \(DedupSpec.describe(timeout)) and was stopped\(tail)", retryable: true))
        case .failedToStart(let error):
            return .failure(ExecFailure(reason: "plugin_start", message: "stage '\(stageName)': could not start \(command.executable): \(error)", retryable: true))
        case .ran(let status, let collected):
            if collected.overflowed {
                return .failure(ExecFailure(reason: "plugin_output", message: "stage '\(stageName)': \(command.name) wrote more than \(maxOutput) bytes to stdout (max_output) and was stopped\(tail)", retryable: false))
            }
            guard case .exited(0) = status else {
                var retryable = true
                if case .exited(65) = status { retryable = false }
                return .failure(ExecFailure(reason: "plugin_exit", message: "stage '\(stageName)': \(command.name) \(ExecProcess.describe(status))\(tail)", retryable: retryable))
            }
            return .success(collected.bytes)
        }
    }

    struct Collected: Sendable {
        var bytes: [UInt8] = []
        var overflowed = false
    }

    /// Reads stdout up to `limit` bytes; past it, kills the process group and stops reading.
    static func collect(_ sequence: SubprocessOutputSequence, limit: Int, pid: pid_t) async -> Collected {
        var collected = Collected()
        do {
            for try await buffer in sequence {
                if collected.bytes.count + buffer.count > limit {
                    collected.overflowed = true
                    kill(-pid, SIGKILL)
                    break
                }
                buffer.withUnsafeBytes { collected.bytes.append(contentsOf: $0) }
            }
        } catch {
            // The process ended while a grandchild still held the pipe: what was read stands.
        }
        return collected
    }
}
