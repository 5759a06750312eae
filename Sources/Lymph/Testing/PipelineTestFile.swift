/// A test file (`NAME.test.yaml`) as read and checked: the pipeline it tests, loaded, and its
/// tests. See docs/testing-pipelines.md for the format.
public struct PipelineTestFile: Sendable {
    /// The test file's path, as given.
    public let path: String
    /// The pipeline's path (`pipeline:`, resolved against the test file's folder).
    public let pipelinePath: String
    /// The pipeline, loaded and checked.
    public let spec: PipelineSpec
    /// `now:`, the time every test runs at, in seconds since 1970.
    public let now: Double
    /// `secrets:`: names (`env:NAME`'s NAME, or `file:PATH` as written in the pipeline) and values,
    /// in the order written; the first one signs inputs.
    let secrets: [(name: String, value: String)]
    /// `stubs:`, by stage name.
    public let stubs: [String: TestStub]
    /// The tests, in the order written.
    public let tests: [PipelineTestCase]

    /// The secret values, for redacting whatever is printed.
    var secretValues: [String] { secrets.map(\.value) }
}

/// One entry of `tests:`.
public struct PipelineTestCase: Sendable {
    /// `name:`, unique in its file.
    public let name: String
    /// Where the test starts in its file, counted from 1.
    public let line: Int
    /// `input:`: events or deliveries (mappings), or raw lines (strings), in order.
    public let input: [TestValue]
    /// `input_file:`, resolved against the test file's folder; its items come after `input`'s.
    public let inputFile: String?
    /// `signed: true`: each input that is not already a signed delivery is sent as one, signed
    /// with the first secret.
    public let signed: Bool
    /// `expect:`.
    public let expect: TestExpectation
}

/// `expect:`: each key left out is not checked; an empty list means none.
public struct TestExpectation: Sendable {
    /// Events that left the pipeline, in order.
    public var output: [TestValue]?
    /// Events dropped, in input order: `{id, type, stage, reason}`.
    public var dropped: [TestValue]?
    /// Dead letters, in input order: `{id, type, stage, reason, message}`.
    public var deadLetters: [TestValue]?
    /// Tickets after the run, by due date as `lymph tickets` lists them.
    public var tickets: [TestValue]?
    /// Sensors after the run, by sensor id as `lymph sensors` lists them.
    public var sensors: [TestValue]?
    /// Lines of the named log stages, in order: a string is the exact line, a mapping is matched
    /// against the line read as JSON.
    public var logs: [(stage: String, lines: [TestValue])]?

    /// Nothing checked.
    public init() {}
}

/// What a stubbed `exec` stage does instead of running its plugin.
public enum TestStub: Sendable {
    /// Every event goes on unchanged.
    case pass
    /// Every event is dropped, as a plugin that answers nothing (`no_output`).
    case drop
    /// Every event fails as if the plugin answered `{"error": MESSAGE}` (`plugin_error`; for an
    /// http stage, as if the destination refused it: `http_status`), then goes where the stage's
    /// `on_error` sends it.
    case error(String)
    /// Every event is replaced by these events.
    case events([TestValue])
    /// The stage runs this command instead, exactly as it would run its own (limits, timeout,
    /// retries, `env:`).
    case command(ExecCommand)
}
