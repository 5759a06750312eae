/// What `lymph test` found and how each test went, for people (`ok`/`FAIL` lines with diffs) or
/// scripts (one JSON object); and the exit status that goes with it.
public struct PipelineTestReport: Sendable {
    /// Broken test files, every problem with its position.
    public var problems: [ConfigDiagnostic] = []
    /// Paths given that name no file or folder.
    public var missing: [String] = []
    /// Every test run, in file order then the order written.
    public var results: [PipelineTestResult] = []
    /// The test files found (broken ones included).
    public var files: [String] = []
    /// Those that could not be loaded. Counted apart from `problems`, whose positions may be in
    /// the pipeline file a test file names.
    public var brokenFiles: [String] = []
    /// Set when there was nothing to run: no test file, or none of the tests' names contains the
    /// filter.
    public var nothingToRun: String?
    /// Secret values of every file loaded: never printed.
    var redactions: [String] = []

    /// No problems, no results yet.
    public init() {}

    /// How many tests passed.
    public var passed: Int { results.count { $0.passed } }
    /// How many tests failed.
    public var failed: Int { results.count { !$0.passed } }

    /// 2 for a broken test file, a path that names nothing or nothing to run, else 1 when a test
    /// failed, else 0.
    public var exitStatus: Int32 {
        if !problems.isEmpty || !missing.isEmpty || nothingToRun != nil { return 2 }
        return failed > 0 ? 1 : 0
    }

    /// `ok    FILE: NAME`, or `FAIL  FILE:LINE: NAME` followed by why, indented.
    public static func lines(for result: PipelineTestResult) -> [String] {
        if result.passed { return ["ok    \(result.file): \(result.name)"] }
        return ["FAIL  \(result.file):\(result.line): \(result.name)"] + result.failureLines().map { "      " + $0 }
    }

    /// `N tests in M files: P passed, F failed`, with the broken files counted when any.
    public var summaryLine: String {
        let tests = results.count == 1 ? "1 test" : "\(results.count) tests"
        let fileCount = files.count == 1 ? "1 file" : "\(files.count) files"
        var line = "\(tests) in \(fileCount): \(passed) passed, \(failed) failed"
        let broken = brokenFiles.count
        if broken > 0 { line += ", \(broken) broken file\(broken == 1 ? "" : "s") (see above)" }
        return line
    }

    /// The report as one JSON object: `passed`, `failed`, `problems` (file, line, column,
    /// message), `missing` paths when any, `nothing_to_run` when so, and `tests`, each with its file, name, line, `status` (`ok` or `fail`), seconds,
    /// and for a failure its `error` or its `failures`, one per expectation, with every entry
    /// (`matched`, `changed`, `missing`, `extra`) and the values compared. Secrets are redacted.
    public func json() -> String {
        func string(_ s: String) -> TestValue { .string(s) }
        func number(_ n: Int) -> TestValue { .number(Double(n), text: String(n)) }
        var tests: [TestValue] = []
        for r in results {
            var members: [TestValue.Member] = [
                .init("file", string(r.file)), .init("name", string(r.name)), .init("line", number(r.line)),
                .init("status", string(r.passed ? "ok" : "fail")),
                .init("seconds", .number(r.seconds, text: String(format3(r.seconds)))),
            ]
            if let error = r.error { members.append(.init("error", string(error))) }
            if !r.diffs.isEmpty {
                members.append(.init("failures", .array(r.diffs.map(Self.json))))
            }
            tests.append(.object(members))
        }
        let problemValues: [TestValue] = problems.map {
            .object([.init("file", string($0.file)), .init("line", number($0.line)), .init("column", number($0.column)), .init("message", string($0.message))])
        }
        var top: [TestValue.Member] = [.init("passed", number(passed)), .init("failed", number(failed)), .init("problems", .array(problemValues))]
        if !missing.isEmpty { top.append(.init("missing", .array(missing.map(string)))) }
        if let nothingToRun { top.append(.init("nothing_to_run", string(nothingToRun))) }
        top.append(.init("tests", .array(tests)))
        // Secrets as they read inside JSON strings too (quotes and backslashes escaped).
        let escaped = redactions.map { String(TestValue.quoted($0).dropFirst().dropLast()) }
        return Redactor(redactions + escaped)(TestValue.object(top).json)
    }

    static func json(_ diff: ExpectationDiff) -> TestValue {
        let entries: [TestValue] = diff.entries.map { entry in
            switch entry {
            case .matched(let expected):
                return .object([.init("status", .string("matched")), .init("expected", expected)])
            case .changed(let expected, let actual, let mismatch, let note):
                var m: [TestValue.Member] = [
                    .init("status", .string("changed")), .init("expected", expected), .init("actual", actual),
                    .init("mismatch", .string(mismatch.description)),
                ]
                if let note { m.append(.init("note", .string(note))) }
                return .object(m)
            case .missing(let expected, let note):
                var m: [TestValue.Member] = [.init("status", .string("missing")), .init("expected", expected)]
                if let note { m.append(.init("note", .string(note))) }
                return .object(m)
            case .unexpected(let actual):
                return .object([.init("status", .string("extra")), .init("actual", actual)])
            }
        }
        return .object([
            .init("key", .string(diff.key)), .init("expected_count", .number(Double(diff.expectedCount), text: String(diff.expectedCount))),
            .init("actual_count", .number(Double(diff.actualCount), text: String(diff.actualCount))), .init("entries", .array(entries)),
        ])
    }

    /// Seconds with three decimals, as JSON text.
    func format3(_ seconds: Double) -> String {
        let ms = Int((seconds * 1000).rounded())
        let frac = String(ms % 1000)
        return "\(ms / 1000).\(String(repeating: "0", count: 3 - frac.count))\(frac)"
    }
}
