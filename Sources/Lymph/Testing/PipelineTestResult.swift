/// How one test went: passed, failed with the expectations that did not match, or stopped.
public struct PipelineTestResult: Sendable {
    /// The test file's path, as given.
    public let file: String
    /// The test's name.
    public let name: String
    /// Where the test starts in its file.
    public let line: Int
    /// The expectations that did not match (empty when all did).
    public let diffs: [ExpectationDiff]
    /// Why the run could not finish (an unreadable input, a stage that stopped it), if it could not.
    public let error: String?
    /// The test file's secret values: never printed.
    let redactions: [String]
    /// How long the test took.
    public let seconds: Double

    /// Whether it ran to its end and every expectation matched.
    public var passed: Bool { error == nil && diffs.isEmpty }

    /// What to print under a failed test: why it stopped, or each diff; secrets redacted.
    public func failureLines() -> [String] {
        let redact = Redactor(redactions)
        if let error { return [redact(error)] }
        return diffs.flatMap { $0.lines() }.map { redact($0) }
    }
}
