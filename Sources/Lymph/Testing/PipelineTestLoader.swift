import Foundation
import Yams

/// Reads a test file (`NAME.test.yaml`) and the pipeline it names, reporting every problem at its
/// `FILE:LINE:COLUMN` with a suggestion where one is likely, as the pipeline loader does.
///
/// Everything a test refers to is checked here, before anything runs: the pipeline loads, each
/// stub and `logs:` key names a stage of the right kind, every secret the pipeline reads has a
/// value and every value is read, input files exist. A broken test file is exit 2, never a
/// failing test.
public enum PipelineTestLoader {
    static let topLevelKeys = ["pipeline", "now", "secrets", "stubs", "tests"]
    static let testKeys = ["name", "input", "input_file", "signed", "expect"]
    static let expectKeys = ["output", "dropped", "dead_letters", "tickets", "sensors", "logs"]
    /// The keys of each expectation's entries (what `PipelineTestRun` reports for it); `output`
    /// entries are events, any keys.
    static let entryKeys: [String: [String]] = [
        "dropped": ["id", "type", "stage", "reason"],
        "dead_letters": ["id", "type", "stage", "reason", "message"],
        "tickets": ["ticket_id", "equipment_id", "action", "priority", "due_by", "status", "source_event_ids", "created_at", "updated_at", "note"],
        "sensors": ["sensor_id", "equipment_id", "status", "since", "last_event_id"],
    ]
    static let stubAnswers = ["pass", "drop"]
    static let stubKeys = ["answer", "error", "events", "command"]
    /// Test files are small; anything bigger is a mistake (fixtures go in `input_file`).
    static let maxFileBytes = 1 << 20

    /// Reads and checks `path`. Throws `PipelineFileError` listing every error, the pipeline's own
    /// (at their places in the pipeline file) included.
    public static func load(path: String) throws(PipelineFileError) -> PipelineTestFile {
        let data = Data(
            try PipelineLoader.readSmallFile(path, what: "test file", maxBytes: maxFileBytes, tooLarge: "; put long inputs in an input_file"))
        guard let text = String(data: data, encoding: .utf8) else {
            throw PipelineFileError(diagnostics: [ConfigDiagnostic(file: path, line: 1, column: 1, message: "test file is not UTF-8 text")])
        }
        let (file, diagnostics) = parse(yaml: text, file: path)
        guard let file, !diagnostics.contains(where: { $0.severity == .error }) else {
            throw PipelineFileError(diagnostics: diagnostics.filter { $0.severity == .error })
        }
        return file
    }

    /// Reads test YAML already in memory, `file` naming it in diagnostics and anchoring relative
    /// paths: the test file, nil when there is an error, and every problem found.
    public static func parse(yaml: String, file: String) -> (PipelineTestFile?, [ConfigDiagnostic]) {
        var d = ConfigDiagnostics(file: file)
        var elsewhere: [ConfigDiagnostic] = []
        let root: Node
        if let mark = YAMLAliasBound.firstExcess(in: yaml, limit: PipelineLoader.maxExpandedNodes, byteLimit: PipelineLoader.maxExpandedBytes) {
            d.add(
                "the test file expands to more than \(PipelineLoader.maxExpandedNodes) YAML nodes or \(PipelineLoader.maxExpandedBytes >> 20) MiB of text once its aliases are expanded (each alias counted at each use); refused",
                line: mark.line, column: mark.column)
            return (nil, d.items)
        }
        do {
            guard let node = try PipelineLoader.compose(yaml) else {
                d.add("the test file is empty; it needs 'pipeline:', 'now:' and 'tests:'", line: 1, column: 1)
                return (nil, d.items)
            }
            root = node
        } catch let error as YamlError {
            let (line, column, message) = PipelineLoader.describe(error)
            d.add("YAML syntax: \(message)", line: line, column: column)
            return (nil, d.items)
        } catch {
            d.add("YAML syntax: \(error)", line: 1, column: 1)
            return (nil, d.items)
        }
        let top = ConfigValue(root)
        guard let m = ConfigMapping(top, context: "the test file", diagnostics: &d) else { return (nil, d.items) }
        m.rejectUnknownKeys(allowed: topLevelKeys, &d)
        let folder = PathParent.of(file)
        func resolve(_ relative: String) -> String {
            relative.hasPrefix("/") || folder.isEmpty ? relative : (folder as NSString).appendingPathComponent(relative)
        }

        var spec: PipelineSpec?
        var pipelinePath = ""
        if let v = m["pipeline"], let s = v.string(&d, "pipeline") {
            pipelinePath = resolve(s)
            if !FileManager.default.fileExists(atPath: pipelinePath) {
                d.error("pipeline file '\(s.cutForMessage())' does not exist (the path is relative to the test file's folder)", at: v)
            } else {
                do {
                    spec = try PipelineLoader.load(path: pipelinePath).spec
                } catch {
                    d.error("the pipeline '\(s.cutForMessage())' has errors (below); `lymph check` it", at: v)
                    elsewhere += error.diagnostics
                }
            }
        } else if m["pipeline"] == nil {
            d.error("the test file needs 'pipeline:', the pipeline file to test (relative to this file)", at: top)
        }

        var now: Double?
        if let v = m["now"], let s = v.string(&d, "now") {
            if let t = Timestamp.parse(s) {
                now = t
            } else {
                d.error("now must be an RFC 3339 time such as 2026-06-01T12:00:00Z, found '\(s.cutForMessage())'", at: v)
            }
        } else if m["now"] == nil {
            d.error(
                "the test file needs 'now:', the time the tests run at (such as 2026-06-01T12:00:00Z): max_age, ticket and sensor times and emitted events depend on it",
                at: top)
        }

        let secrets = readSecrets(m, spec: spec, top: top, &d)
        let stubs = readStubs(m, spec: spec, folder: folder, &d)

        var tests: [PipelineTestCase] = []
        if let v = m["tests"], let items = v.list(&d, "tests") {
            if items.isEmpty { d.error("tests is empty; add at least one test", at: v) }
            var names: [String: Int] = [:]
            for item in items {
                guard let test = readTest(item, spec: spec, hasSecret: !secrets.isEmpty, resolve: resolve, &d) else { continue }
                if let earlier = names[test.name] {
                    d.error("test name '\(test.name.cutForMessage())' is already used at line \(earlier)", at: item)
                    continue
                }
                names[test.name] = test.line
                tests.append(test)
            }
        } else if m["tests"] == nil {
            d.error("the test file needs 'tests:', a list of tests", at: top)
        }

        let all = d.items + elsewhere
        guard let spec, let now, !all.contains(where: { $0.severity == .error }) else { return (nil, all) }
        return (PipelineTestFile(path: file, pipelinePath: pipelinePath, spec: spec, now: now, secrets: secrets, stubs: stubs, tests: tests), all)
    }

    /// The name a secret reference goes by under `secrets:`: NAME for `env:NAME`, `file:PATH` as
    /// written.
    static func secretName(_ reference: SecretReference) -> String {
        switch reference {
        case .environment(let name): return name
        case .file: return reference.description
        }
    }

    static func readSecrets(_ m: ConfigMapping, spec: PipelineSpec?, top: ConfigValue, _ d: inout ConfigDiagnostics) -> [(name: String, value: String)] {
        var secrets: [(name: String, value: String)] = []
        var read: [String: (stage: String, line: Int)] = [:]
        for stage in spec?.stages ?? [] {
            for reference in stage.spec.secrets where read[secretName(reference)] == nil {
                read[secretName(reference)] = (stage.name, stage.line)
            }
        }
        let known = read.keys.sorted()
        if let v = m["secrets"], let sm = ConfigMapping(v, context: "secrets", diagnostics: &d) {
            for entry in sm.entries {
                var name = entry.key
                if name.hasPrefix("env:") { name = String(name.dropFirst(4)) }
                guard let value = entry.value.string(&d, "secret \(name.cutForMessage())") else { continue }
                if value.isEmpty { d.error("secret \(name.cutForMessage()) is empty", at: entry.value) }
                if spec != nil, read[name] == nil {
                    let hint = known.isEmpty ? "; it reads none" : Suggestion.didYouMean(name, in: known)
                    d.error("the pipeline reads no secret '\(name.cutForMessage())'\(hint)", at: entry.keyValue)
                    continue
                }
                secrets.append((name, value))
            }
        }
        for name in known where !secrets.contains(where: { $0.name == name }) {
            let (stage, line) = read[name]!
            d.error(
                "the pipeline reads secret \(name.hasPrefix("file:") ? name : "env:" + name) (stage '\(stage)', line \(line)); give it a value under 'secrets:' (tests never read real secrets)",
                at: m["secrets"] ?? top)
        }
        return secrets
    }

    static func readStubs(_ m: ConfigMapping, spec: PipelineSpec?, folder: String, _ d: inout ConfigDiagnostics) -> [String: TestStub] {
        guard let v = m["stubs"], let sm = ConfigMapping(v, context: "stubs", diagnostics: &d) else { return [:] }
        var stubs: [String: TestStub] = [:]
        let stages = spec?.stages ?? []
        let execNames = stages.filter { $0.kind == "exec" || $0.kind == "http" }.map(\.name)
        for entry in sm.entries {
            var output = ExecSpec.Output.events
            if let spec {
                guard let stage = spec.stages.first(where: { $0.name == entry.key }) else {
                    let names = execNames.isEmpty ? "; the pipeline has no exec or http stage" : Suggestion.didYouMean(entry.key, in: execNames)
                    d.error("no stage named '\(entry.key.cutForMessage())' in the pipeline\(names)", at: entry.keyValue)
                    continue
                }
                if let exec = stage.spec as? ExecSpec {
                    output = exec.output
                } else if stage.spec is HTTPSpec {
                    // An http stage passes its events on unchanged; a stub stands in for the destination.
                    if let stub = readStub(entry.value, output: output, folder: folder, &d) {
                        if case .command = stub {
                            d.error(
                                "stage '\(entry.key.cutForMessage())' is an http stage: its stub is pass, drop, {error: MESSAGE} or {events: [...]}, not a command",
                                at: entry.value)
                        } else {
                            stubs[entry.key] = stub
                        }
                    }
                    continue
                } else {
                    d.error("stage '\(entry.key.cutForMessage())' is a \(stage.kind) stage; only exec and http stages can be stubbed", at: entry.keyValue)
                    continue
                }
            }
            if let stub = readStub(entry.value, output: output, folder: folder, &d) { stubs[entry.key] = stub }
        }
        return stubs
    }

    static func readStub(_ value: ConfigValue, output: ExecSpec.Output, folder: String, _ d: inout ConfigDiagnostics) -> TestStub? {
        func answer(_ v: ConfigValue) -> TestStub? {
            guard let text = v.string(&d, "a stub") else { return nil }
            switch text {
            case "pass": return .pass
            case "drop": return .drop
            default:
                d.error(
                    "a stub is pass, drop, {error: MESSAGE}, {events: [...]} or {command: PROGRAM}, found '\(text.cutForMessage())'\(Suggestion.didYouMean(text, in: stubAnswers))",
                    at: v)
                return nil
            }
        }
        if case .scalar = value.node { return answer(value) }
        guard let m = ConfigMapping(value, context: "a stub", diagnostics: &d) else { return nil }
        m.rejectUnknownKeys(allowed: stubKeys, &d)
        let given = m.entries.filter { stubKeys.contains($0.key) }
        guard given.count == 1, let entry = given.first else {
            d.error(
                "a stub takes one of \(stubKeys.joined(separator: ", ")), found \(given.isEmpty ? "none" : given.map(\.key).joined(separator: " and "))",
                at: value)
            return nil
        }
        switch entry.key {
        case "answer":
            return answer(entry.value)
        case "error":
            guard let message = entry.value.string(&d, "error") else { return nil }
            if message.allSatisfy(\.isWhitespace) {
                d.error("an error stub needs a message: it is the reason its dead letters give", at: entry.value)
                return nil
            }
            return .error(message)
        case "events":
            if output == .ignore {
                d.error(
                    "this stage has output: ignore, so its plugin's answer never replaces events; stub it with pass, drop or {error: ...}", at: entry.keyValue)
                return nil
            }
            guard let items = entry.value.list(&d, "events") else { return nil }
            var events: [TestValue] = []
            for item in items {
                let event = TestValue(yaml: item.node)
                guard case .object = event, event["id"]?.string?.isEmpty == false, event["type"]?.string?.isEmpty == false else {
                    d.error("each event of a stub needs a string 'id' and 'type', as a plugin's events do", at: item)
                    continue
                }
                events.append(event)
            }
            return .events(events)
        default:
            return ExecCommand.configure(entry.value, pipelineFolder: folder.isEmpty ? "." : folder, &d).map { .command($0) }
        }
    }

    static func readTest(
        _ item: ConfigValue, spec: PipelineSpec?, hasSecret: Bool, resolve: (String) -> String,
        _ d: inout ConfigDiagnostics
    ) -> PipelineTestCase? {
        guard let m = ConfigMapping(item, context: "a test", diagnostics: &d) else { return nil }
        m.rejectUnknownKeys(allowed: testKeys, &d)
        var name = ""
        if let v = m["name"], let s = v.string(&d, "name") {
            if s.isEmpty { d.error("a test name cannot be empty", at: v) }
            name = s
        } else if m["name"] == nil {
            d.error("a test needs 'name:', which says what it shows", at: item)
        }
        var input: [TestValue] = []
        if let v = m["input"], let items = v.list(&d, "input") {
            // Nothing in: whatever it expects, the test would hold for any pipeline.
            if items.isEmpty && m["input_file"] == nil { d.error("input is empty: a test with no input checks nothing", at: v) }
            for entry in items {
                let value = TestValue(yaml: entry.node)
                if case .scalar(let s) = entry.node {
                    // A line as it comes (not JSON, say), to test what parse makes of it. One
                    // line: `lymph run` would read a line break inside it as two items.
                    var line = s.string
                    if line.hasSuffix("\n") && (s.style == .literal || s.style == .folded) { line.removeLast() }
                    if line.contains(where: { $0 == "\n" || $0 == "\r\n" }) {
                        d.error("a raw line holds a line break, which a run reads as the end of an item: write one string per line", at: entry)
                        continue
                    }
                    input.append(.string(line))
                    continue
                }
                guard case .object = value else {
                    d.error(
                        "each input is an event or a delivery ({headers, body}) written as a mapping, or a raw line as a string; found \(entry.kindName)",
                        at: entry)
                    continue
                }
                if value["headers"] != nil || value["body"] != nil {
                    if case .object = value["headers"] ?? .null {} else { d.error("a delivery's headers must be a mapping", at: entry) }
                    switch value["body"] ?? .null {
                    case .string, .object: break
                    default: d.error("a delivery's body must be the event, as a string of JSON or a mapping", at: entry)
                    }
                }
                input.append(value)
            }
        }
        var inputFile: String?
        if let v = m["input_file"], let s = v.string(&d, "input_file") {
            let path = resolve(s)
            // A regular file of bounded size: a device (/dev/zero) or a FIFO never ends, and one
            // endless line gives the reader no item to count against the inputs' limit. stat, not
            // lstat: a symlink to a fixture is read through, as the reader opens it.
            var st = stat()
            let found = stat(path, &st) == 0
            if !found || (st.st_mode & S_IFMT) == S_IFDIR {
                d.error("input_file '\(s.cutForMessage())' is not a file (the path is relative to the test file's folder)", at: v)
            } else if (st.st_mode & S_IFMT) != S_IFREG {
                d.error("input_file '\(s.cutForMessage())' is not a regular file (a device or a FIFO may never end)", at: v)
            } else if st.st_size == 0 && input.isEmpty {
                d.error("input_file '\(s.cutForMessage())' is empty: a test with no input checks nothing", at: v)
            } else if Int(st.st_size) > PipelineTestRun.maxInputBytes {
                d.error("input_file '\(s.cutForMessage())' is larger than \(PipelineTestRun.maxInputBytes >> 20) MiB; a test needs far less", at: v)
            } else {
                inputFile = path
            }
        }
        if m["input"] == nil && m["input_file"] == nil {
            d.error("a test needs 'input:' (events or deliveries) or 'input_file:'", at: item)
        }
        let signed = m["signed"].flatMap { $0.bool(&d, "signed") } ?? false
        if signed && !hasSecret, let v = m["signed"] {
            d.error("signed: true signs each input with verify's secret, and the test file has none under 'secrets:'", at: v)
        }
        var expect = TestExpectation()
        if let v = m["expect"], let em = ConfigMapping(v, context: "expect", diagnostics: &d) {
            em.rejectUnknownKeys(allowed: expectKeys, &d)
            if em.entries.isEmpty { d.error("expect is empty: the test would check nothing", at: v) }
            expect.output = expectedList(em, "output", keys: nil, &d)
            // Parse's name, then the others' (`KIND-N` or their `name:`).
            let stageNames = spec.map { [$0.parse.name] + $0.stages.map(\.name) }
            expect.dropped = expectedList(em, "dropped", keys: entryKeys["dropped"], stages: stageNames, &d)
            expect.deadLetters = expectedList(em, "dead_letters", keys: entryKeys["dead_letters"], stages: stageNames, &d)
            expect.tickets = expectedList(em, "tickets", keys: entryKeys["tickets"], &d)
            expect.sensors = expectedList(em, "sensors", keys: entryKeys["sensors"], &d)
            if let lv = em["logs"], let lm = ConfigMapping(lv, context: "logs", diagnostics: &d) {
                let logStages = (spec?.stages ?? []).filter { $0.kind == "log" }.map(\.name)
                var logs: [(stage: String, lines: [TestValue])] = []
                for entry in lm.entries {
                    if spec != nil, !logStages.contains(entry.key) {
                        let hint = logStages.isEmpty ? "; the pipeline has no log stage" : Suggestion.didYouMean(entry.key, in: logStages)
                        d.error("no log stage named '\(entry.key.cutForMessage())' in the pipeline\(hint)", at: entry.keyValue)
                        continue
                    }
                    guard let items = entry.value.list(&d, "logs.\(entry.key)") else { continue }
                    var lines: [TestValue] = []
                    for line in items {
                        let value: TestValue
                        switch line.node {
                        case .scalar(let s): value = .string(s.string)
                        case .mapping: value = TestValue(yaml: line.node)
                        default:
                            d.error("a log line is a string (the exact line) or a mapping (matched against a JSON line)", at: line)
                            continue
                        }
                        lines.append(value)
                    }
                    logs.append((entry.key, lines))
                }
                expect.logs = logs
            }
        } else if m["expect"] == nil {
            d.error("a test needs 'expect:' (output, dropped, dead_letters, tickets, sensors, logs)", at: item)
        }
        return PipelineTestCase(name: name, line: item.line, input: input, inputFile: inputFile, signed: signed, expect: expect)
    }

    /// An expectation's list; each entry a mapping, with only `keys` when given.
    static func expectedList(
        _ m: ConfigMapping, _ key: String, keys: [String]?, stages: [String]? = nil, _ d: inout ConfigDiagnostics
    ) -> [TestValue]? {
        guard let v = m[key] else { return nil }
        guard case .sequence = v.node else {
            d.error("\(key) must be a list (`[]` for none), found \(v.isNull ? "nothing" : v.kindName)", at: v)
            return nil
        }
        var entries: [TestValue] = []
        for item in v.list(&d, key) ?? [] {
            guard let im = ConfigMapping(item, context: "an entry of \(key)", diagnostics: &d) else { continue }
            if item.isNull { d.error("an entry of \(key) is empty; write the keys it must have", at: item) }
            if let keys { im.rejectUnknownKeys(allowed: keys, &d) }
            // A stage the pipeline does not have can never match: a typo, not a failing test.
            if let stages, let node = im["stage"], case .scalar(let scalar) = node.node, !stages.contains(scalar.string) {
                d.error("no stage named '\(scalar.string.cutForMessage())' in the pipeline\(Suggestion.didYouMean(scalar.string, in: stages))", at: node)
            }
            entries.append(TestValue(yaml: item.node))
        }
        return entries
    }
}
