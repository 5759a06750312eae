import Foundation
import Testing
@testable import Lymph

@Suite("exec: command words, environment and plugin output")
struct ExecTests {
    @Test(
        "a command string splits into words like a shell, with no expansion",
        arguments: [
            ("plugins/x.sh --region eu", ["plugins/x.sh", "--region", "eu"]),
            ("jq -c '.data | {a: .x}'", ["jq", "-c", ".data | {a: .x}"]),
            (#"echo "a \"b\" c" d\ e"#, ["echo", #"a "b" c"#, "d e"]),
            ("  spaced   out  ", ["spaced", "out"]),
            ("a=b", ["a=b"]),
        ])
    func split(text: String, words: [String]) throws {
        #expect(try ShellWords.split(text) == words)
    }

    @Test("shell syntax outside quotes is refused: no shell would run it", arguments: ["cat | grep x", "a; b", "echo $HOME", "ls *.sh", "x > y", "'open"])
    func refuses(text: String) {
        #expect(throws: ShellWords.SplitError.self) { try ShellWords.split(text) }
    }

    @Test("durations accept milliseconds")
    func milliseconds() {
        #expect(ConfigValue.parseDuration("250ms") == 0.25)
        #expect(ConfigValue.parseDuration("1m30s") == 90)
        #expect(DedupSpec.describe(0.1) == "100ms")
        #expect(DedupSpec.describe(5) == "5s")
    }

    @Test("the environment passes only the listed variables through, and env: wins")
    func environment() {
        let env = ExecEnvironment(
            inherited: ["PATH": "/bin", "HOME": "/root", "SECRET": "x", "LC_ALL": "C", "TZ": "UTC"],
            pipeline: "p", stage: "s", extra: [("PATH", "/opt/bin"), ("REGION", "eu")])
        let entries = env.forEvent(id: "e1", type: "t").map { String(decoding: $0.dropLast(), as: UTF8.self) }
        #expect(
            Set(entries) == [
                "PATH=/opt/bin", "HOME=/root", "LC_ALL=C", "TZ=UTC", "LYMPH_PIPELINE=p", "LYMPH_STAGE=s", "REGION=eu",
                "LYMPH_EVENT_ID=e1", "LYMPH_EVENT_TYPE=t",
            ])
        // NUL-terminated for the C library.
        #expect(env.base.allSatisfy { $0.last == 0 })
    }

    static func original() throws -> Event {
        let bytes = Array(#"{"id":"e1","type":"t","created_at":"2026-06-01T00:00:00Z","data":{}}"#.utf8)
        return Event(
            document: try JSONDocument(parsing: bytes), source: SourcePosition(file: "in.ndjson", line: 7), origin: ItemOrigin(form: .raw, bytes: bytes[...]))
    }

    static func ids(_ result: Result<StageOutcome, ExecFailure>) -> [String]? {
        guard case .success(.replace(let events)) = result else { return nil }
        return events.map(\.id)
    }

    @Test("event-mode stdout: lines, an array, a pretty object, nothing, null")
    func eventOutput() throws {
        let e = try Self.original()
        func parse(_ s: String) -> Result<StageOutcome, ExecFailure> {
            ExecOutputParser.events(fromOutput: Array(s.utf8), replacing: e, stage: "x", redact: Redactor([]))
        }
        #expect(Self.ids(parse("{\"id\":\"a\",\"type\":\"t\"}\n{\"id\":\"b\",\"type\":\"t\"}\n")) == ["a", "b"])
        #expect(Self.ids(parse("[{\"id\":\"a\",\"type\":\"t\"},{\"id\":\"b\",\"type\":\"t\"}]")) == ["a", "b"])
        #expect(Self.ids(parse("{\n  \"id\": \"a\",\n  \"type\": \"t\"\n}\n")) == ["a"])
        #expect(Self.ids(parse("  \n")) == [])
        #expect(Self.ids(parse("null")) == [])
        guard case .failure(let twice) = parse("{\"id\":\"a\",\"id\":\"b\",\"type\":\"t\"}") else { Issue.record("an event with two ids must fail"); return }
        #expect(twice.reason == "plugin_output" && twice.message.contains("'id' more than once"))
        guard case .failure(let data) = parse("{\"id\":\"a\",\"type\":\"t\",\"data\":{},\"data\":{\"x\":1}}") else {
            Issue.record("an event with two data members must fail")
            return
        }
        #expect(data.message.contains("'data' more than once"))
        guard case .failure(let f) = parse("[1]") else { Issue.record("an array of numbers must fail"); return }
        #expect(f.reason == "plugin_output" && !f.retryable)
        guard case .success(.replace(let events)) = parse("{\"id\":\"a\",\"type\":\"t\"}") else { return }
        // New events keep where their source came from, for dead letters and replay.
        #expect(events[0].source.line == 7)
    }

    @Test("stream answers name the event they answer: an event by its id, or answer_to with events or an error")
    func streamAnswers() throws {
        let e = try Self.original()
        func answer(_ s: String) -> (names: String?, result: Result<StageOutcome, ExecFailure>) {
            ExecOutputParser.streamAnswer(Array(s.utf8)[...], replacing: e, stage: "x", redact: Redactor([]))
        }
        let failed = answer(#"{"answer_to":"a","error":"boom"}"#)
        #expect(failed.names == "a")
        guard case .failure(let f) = failed.result else { Issue.record("expected a failure"); return }
        #expect(f.reason == "plugin_error" && f.message.contains("boom") && f.retryable)
        let event = answer(#"{"id":"a","type":"t","error":"field"}"#)
        #expect(event.names == "a" && Self.ids(event.result) == ["a"])
        let fanOut = answer(#"{"answer_to":"a","events":[{"id":"b","type":"t"},{"id":"c","type":"t"}]}"#)
        #expect(fanOut.names == "a" && Self.ids(fanOut.result) == ["b", "c"])
        let dropped = answer(#"{"answer_to":"a","events":[]}"#)
        #expect(dropped.names == "a" && Self.ids(dropped.result) == [])
        // Answers that name no event: the worker cannot match them, so they are never applied.
        for unnamed in ["", "null", "[]", #"{"error":"boom"}"#, "not json", #"{"type":"t"}"#, #"{"answer_to":"a"}"#] {
            let r = answer(unnamed)
            if unnamed == #"{"answer_to":"a"}"# {
                #expect(r.names == "a")
                guard case .failure = r.result else { Issue.record("answer_to alone must fail"); continue }
            } else {
                #expect(r.names == nil, "\(unnamed)")
            }
        }
    }
}

@Suite("redaction of secrets in what plugins write")
struct RedactorTests {
    @Test("a secret file of several lines: its long lines and their long words are redacted, its short lines (ordinary words) are not")
    func multiLineFile() {
        let kubeconfig = "apiVersion: v1\nkind: Config\nusers:\n- name: ops\n  user:\n    token: eyJhbGciOiJSUzI1NiIsImtpZCI6IjEifQ.payload\n"
        let redact = Redactor([kubeconfig])
        #expect(redact("kind: Config loaded") == "kind: Config loaded")
        #expect(redact("apiVersion: v1") == "apiVersion: v1")
        #expect(redact("token=eyJhbGciOiJSUzI1NiIsImtpZCI6IjEifQ.payload sent") == "token=[redacted] sent")
    }

    @Test("a secret is found as it is, without its line break, and as a JSON string writes it")
    func forms() {
        let redact = Redactor(["pa\"ss\\word_secret_value_123\n"])
        #expect(redact("got pa\"ss\\word_secret_value_123!") == "got [redacted]!")
        #expect(redact(#"{"k": "pa\"ss\\word_secret_value_123"}"#) == #"{"k": "[redacted]"}"#)
    }
}
