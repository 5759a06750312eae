import Foundation
import Synchronization

/// Runs one test of a test file and compares what happened with what it expects.
///
/// Each test gets a pipeline of its own: a store in memory (`state: memory`), the file's `now:`
/// as the only clock, its secrets as the only environment secrets, stubs in place of the stubbed
/// `exec` stages, and sinks kept in memory for the output, every `log` stage and the dead letters
/// (`SinkRegistry.capturing`), so no file the pipeline names is opened. Its inputs go in as one
/// batch, so what is dropped and dead-lettered is reported in input order.
public enum PipelineTestRun {
    /// Most bytes each captured sink keeps (output, a log stage, the dead letters).
    public static let captureLimit = 16 << 20
    /// Most items a test may feed in (`input` and `input_file` together).
    public static let maxInputItems = 100_000
    /// Most bytes of items a test may feed in: they are all held at once, as one batch.
    public static let maxInputBytes = 64 << 20

    /// What a run produced, as the expectations name it.
    struct Actual {
        var output: [TestValue] = []
        var dropped: [TestValue] = []
        var deadLetters: [TestValue] = []
        var tickets: [TestValue] = []
        var sensors: [TestValue] = []
        var logs: [String: [String]] = [:]
    }

    /// A test that could not run to its end (an unreadable input, a run stopped by an error).
    struct Stopped: Error, CustomStringConvertible {
        let description: String
    }

    /// Runs `test` and compares; never throws: a run that stops is a failed test that says why.
    public static func run(_ test: PipelineTestCase, in file: PipelineTestFile) async -> PipelineTestResult {
        let start = ContinuousClock.now
        let redact = Redactor(file.secretValues)
        func result(_ diffs: [ExpectationDiff], error: String?) -> PipelineTestResult {
            let d = ContinuousClock.now - start
            let seconds = Double(d.components.seconds) + Double(d.components.attoseconds) / 1e18
            return PipelineTestResult(
                file: file.path, name: test.name, line: test.line, diffs: diffs, error: error.map { redact($0) },
                redactions: file.secretValues, seconds: seconds)
        }
        do {
            let actual = try await produce(test, in: file)
            return result(compare(test.expect, actual), error: nil)
        } catch {
            return result([], error: "\(error)")
        }
    }

    /// Runs the pipeline over the test's inputs and collects what it did.
    static func produce(_ test: PipelineTestCase, in file: PipelineTestFile) async throws -> Actual {
        let items = try inputs(test, in: file)
        var spec = file.spec
        spec.statePath = nil
        spec.postgres = nil
        spec.output = "(output)"
        spec.deadLetter = "(dead letters)"
        var logKeys: [String: String] = [:]
        var environment = ProcessInfo.processInfo.environment
        var fileSecrets: [String: String] = [:]
        for (name, value) in file.secrets {
            if name.hasPrefix("file:") {
                // A file reference is read from the environment under a name of its own, so the
                // test never opens the file.
                let variable = "LYMPH_TEST_SECRET_\(fileSecrets.count + 1)"
                fileSecrets[String(name.dropFirst(5))] = variable
                environment[variable] = value
            } else {
                environment[name] = value
            }
        }
        func reference(_ r: SecretReference) -> SecretReference {
            if case .file(let path) = r, let variable = fileSecrets[path] { return .environment(variable) }
            return r
        }
        spec.stages = spec.stages.enumerated().map { index, entry in
            var stageSpec = entry.spec
            if var verify = stageSpec as? VerifySpec {
                verify.secretReferences = verify.secretReferences.map(reference)
                stageSpec = verify
            }
            if var exec = stageSpec as? ExecSpec {
                exec.environment = exec.environment.map { item in
                    if case .reference(let r) = item.value { return (item.name, .reference(reference(r))) }
                    return item
                }
                stageSpec = exec
                if let stub = file.stubs[entry.name] { stageSpec = StubSpec(original: exec, onError: exec.onError, stub: stub) }
            }
            if let http = stageSpec as? HTTPSpec, let stub = file.stubs[entry.name] {
                stageSpec = StubSpec(original: http, onError: http.onError, stub: stub)
            }
            if var log = stageSpec as? LogSpec {
                log.path = "(log \(index + 1))"
                logKeys[entry.name] = log.path
                stageSpec = log
            }
            return StageEntry(
                kind: entry.kind, name: entry.name, hasExplicitName: entry.hasExplicitName, line: entry.line, column: entry.column,
                when: entry.when, spec: stageSpec)
        }
        let sinks = SinkRegistry.capturing(limit: captureLimit)
        let now = file.now
        let pipeline = try Pipeline.open(spec, environment: environment, now: now, sinks: sinks, clock: { now })
        defer { pipeline.close() }
        let drops = Mutex<[DroppedEvent]>([])
        var runner = PipelineRunner(pipeline: pipeline, maxBatchesInFlight: 1)
        runner.dropObserver = { drop in drops.withLock { $0.append(drop) } }
        do {
            _ = try await runner.run(reader: TestInputSource(items))
        } catch {
            throw Stopped(description: "the run stopped: \(error)")
        }

        var actual = Actual()
        actual.output = lines(sinks.captured("(output)")).map { TestValue(json: $0.utf8) ?? .string($0) }
        // Stable sorts: within one input, in the order the stages acted.
        actual.dropped = drops.withLock { $0 }.enumerated().sorted { ($0.element.source.line, $0.offset) < ($1.element.source.line, $1.offset) }.map {
            .object([
                .init("id", .string($0.element.id)), .init("type", .string($0.element.type)),
                .init("stage", .string($0.element.stage)), .init("reason", .string($0.element.reason)),
            ])
        }
        actual.deadLetters = lines(sinks.captured("(dead letters)")).compactMap(deadLetter).enumerated()
            .sorted { ($0.element.line, $0.offset) < ($1.element.line, $1.offset) }.map(\.element.value)
        if let store = pipeline.store {
            actual.tickets = try store.tickets(status: nil, equipment: nil).compactMap { TestValue(json: $0.json()) }
            actual.sensors = try store.sensors(status: nil).compactMap { TestValue(json: $0.json()) }
        }
        for (stage, key) in logKeys { actual.logs[stage] = lines(sinks.captured(key)) }
        return actual
    }

    /// The test's items: `input` then `input_file`, numbered from 1 in that order (their
    /// `SourcePosition` is `input:N`), signed when the test asks.
    static func inputs(_ test: PipelineTestCase, in file: PipelineTestFile) throws -> [RawItem] {
        let secret = try Self.signingSecret(file).map { try TestSigner(secret: Array($0.utf8), spec: file.spec, now: file.now) }
        var bodies: [[UInt8]] = test.input.map { value in
            // A string is a raw line, as it comes; a delivery's body written as a mapping is sent
            // as its JSON text.
            if let line = value.string { return test.signed ? signed(nil, bytes: Array(line.utf8), secret: secret!) : Array(line.utf8) }
            if let delivery = deliveryWithTextBody(value) {
                return Array((test.signed ? signedDelivery(delivery, secret: secret!) : delivery).json.utf8)
            }
            let bytes = Array(value.json.utf8)
            return test.signed ? signed(value, bytes: bytes, secret: secret!) : bytes
        }
        if let path = test.inputFile {
            let reader = ItemReader(paths: [path], maxItemBytes: file.spec.parse.maxBytes)
            var total = bodies.reduce(0) { $0 + $1.count }
            while let batch = try reader.nextBatch() {
                for item in batch.items {
                    total += item.bytes.count
                    guard bodies.count < maxInputItems, total <= maxInputBytes else {
                        throw Stopped(description: "more than \(maxInputItems) inputs or \(maxInputBytes >> 20) MiB of them; a test needs far fewer")
                    }
                    let bytes = Array(item.bytes)
                    bodies.append(test.signed ? signed(TestValue(json: bytes), bytes: bytes, secret: secret!) : bytes)
                }
            }
            if let failure = reader.failure { throw Stopped(description: "\(failure)") }
        }
        guard bodies.count <= maxInputItems else { throw Stopped(description: "more than \(maxInputItems) inputs; a test needs far fewer") }
        return bodies.enumerated().map { RawItem(bytes: $1[...], source: SourcePosition(file: "input", line: $0 + 1)) }
    }

    /// The secret `signed: true` signs with: the first of the first verify stage's secrets that
    /// the test file gives, so that the order of the file's `secrets:` (a mapping) never decides
    /// whether a test passes; the file's first secret when it gives none of them.
    static func signingSecret(_ file: PipelineTestFile) -> String? {
        let verify = file.spec.stages.lazy.compactMap { $0.spec as? VerifySpec }.first
        for reference in verify?.secretReferences ?? [] {
            let name: String
            switch reference {
            case .environment(let variable): name = variable
            case .file(let path): name = "file:" + path
            }
            if let given = file.secrets.first(where: { $0.name == name }) { return given.value }
        }
        return file.secrets.first?.value
    }

    /// Signs inputs as the pipeline's first verify stage checks them (its scheme; IMMUNE's when
    /// it has none), with `signingSecret`, at the test's `now`.
    struct TestSigner {
        let scheme: SignatureScheme
        let key: [UInt8]
        let now: Double

        init(secret: [UInt8], spec: PipelineSpec, now: Double) throws {
            scheme = spec.stages.lazy.compactMap { $0.spec as? VerifySpec }.first?.scheme ?? .immune
            switch scheme.key(forSecret: secret) {
            case .success(let key): self.key = key
            case .failure(let problem): throw Stopped(description: "the signing secret cannot sign for scheme \(scheme.name): \(problem)")
            }
            self.now = now
        }

        /// The scheme's headers for `body`.
        func headers(_ body: String) -> [TestValue.Member] {
            let bytes = Array(body.utf8)
            return WebhookSignature.headers(scheme, key: key, body: bytes[...], id: WebhookSignature.messageID(for: bytes[...]), timestamp: Int(now))
                .map { .init($0.name.lowercased(), .string($0.value)) }
        }
    }

    /// The input as a signed delivery: a delivery keeps a signature it already has (a test of a
    /// bad one), anything else becomes the body of a delivery signed with `secret`.
    static func signed(_ value: TestValue?, bytes: [UInt8], secret: TestSigner) -> [UInt8] {
        if let value, let delivery = deliveryWithTextBody(value) { return Array(signedDelivery(delivery, secret: secret).json.utf8) }
        let body = String(decoding: bytes, as: UTF8.self)
        let delivery = TestValue.object([
            .init("headers", .object([.init("content-type", .string("application/json"))] + secret.headers(body))),
            .init("body", .string(body)),
        ])
        return Array(delivery.json.utf8)
    }

    /// A delivery (`headers` and `body`) with its body as text; nil for anything else.
    static func deliveryWithTextBody(_ value: TestValue) -> TestValue? {
        guard case .object(var members) = value, case .object = value["headers"] ?? .null, let body = value["body"] else { return nil }
        for (n, member) in members.enumerated() where member.key == "body" { members[n].value = .string(body.string ?? body.json) }
        return .object(members)
    }

    /// The delivery with the scheme's signature over its body, unless it has a signature header
    /// of the scheme already.
    static func signedDelivery(_ delivery: TestValue, secret: TestSigner) -> TestValue {
        guard case .object(var members) = delivery, case .object(var fields) = delivery["headers"] ?? .null,
            let body = delivery["body"]?.string
        else { return delivery }
        let names = Set(secret.scheme.headerNames)
        if !fields.contains(where: { names.contains($0.key.lowercased()) }) {
            fields.append(contentsOf: secret.headers(body))
        }
        for (n, member) in members.enumerated() where member.key == "headers" { members[n].value = .object(fields) }
        return .object(members)
    }

    /// The lines of what a sink captured, without their newlines.
    static func lines(_ bytes: [UInt8]) -> [String] {
        bytes.split(separator: UInt8(ascii: "\n")).map { String(decoding: $0, as: UTF8.self) }
    }

    /// A dead-letter record as `dead_letters` names it, with the input it came from.
    static func deadLetter(_ line: String) -> (line: Int, value: TestValue)? {
        guard let record = TestValue(json: line.utf8) else { return nil }
        // The event as the failing stage saw it, else the item as it came in.
        var event: TestValue?
        if let resumed = record["resume"]?["event"] { event = resumed }
        if event == nil, let body = record["delivery"]?["body"]?.string { event = TestValue(json: body.utf8) }
        if event == nil, let raw = record["raw"]?.string { event = TestValue(json: raw.utf8) }
        var members: [TestValue.Member] = []
        if let id = event?["id"] { members.append(.init("id", id)) }
        if let type = event?["type"] { members.append(.init("type", type)) }
        for key in ["stage", "reason", "message"] { members.append(.init(key, record["error"]?[key] ?? .null)) }
        let line: Int
        if case .number(let n, _) = record["source"]?["line"] ?? .null { line = Int(n) } else { line = 0 }
        return (line, .object(members))
    }

    /// One diff per expectation the test names, kept only when it does not match.
    static func compare(_ expect: TestExpectation, _ actual: Actual) -> [ExpectationDiff] {
        func fate(_ expected: TestValue) -> String? {
            guard let id = expected["id"]?.string else { return nil }
            if let drop = actual.dropped.first(where: { $0["id"]?.string == id }) {
                return "\(id) was dropped by \(drop["stage"]?.string ?? "?") (\(drop["reason"]?.string ?? "?"))"
            }
            if let letter = actual.deadLetters.first(where: { $0["id"]?.string == id }) {
                return
                    "\(id) went to the dead letters from \(letter["stage"]?.string ?? "?") (\(letter["reason"]?.string ?? "?"): \(letter["message"]?.string ?? ""))"
            }
            return nil
        }
        var diffs: [ExpectationDiff] = []
        if let e = expect.output { diffs.append(ExpectationDiff(key: "output", expected: e, actual: actual.output, explain: fate)) }
        if let e = expect.dropped { diffs.append(ExpectationDiff(key: "dropped", expected: e, actual: actual.dropped)) }
        if let e = expect.deadLetters { diffs.append(ExpectationDiff(key: "dead_letters", expected: e, actual: actual.deadLetters)) }
        if let e = expect.tickets { diffs.append(ExpectationDiff(key: "tickets", expected: e, actual: actual.tickets)) }
        if let e = expect.sensors { diffs.append(ExpectationDiff(key: "sensors", expected: e, actual: actual.sensors)) }
        for (stage, expected) in expect.logs ?? [] {
            let values = (actual.logs[stage] ?? []).map { TestValue.string($0) }
            diffs.append(ExpectationDiff(key: "logs.\(stage)", expected: expected, actual: values))
        }
        return diffs.filter { !$0.matches }
    }
}

/// A test's items in memory, handed to the runner as one batch.
final class TestInputSource: ItemSource {
    private var items: [RawItem]?
    private(set) var finished = false

    init(_ items: [RawItem]) { self.items = items }

    func nextBatch(control: RunControl) async throws -> InputBatch? {
        guard let items else {
            finished = true
            return nil
        }
        self.items = nil
        return items.isEmpty ? nil : InputBatch(items: items)
    }
}
