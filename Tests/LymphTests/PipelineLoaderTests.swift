import Testing
import Foundation
import Yams
@testable import Lymph

@Suite("Pipeline file loader")
struct PipelineLoaderTests {
    func diagnostics(_ yaml: String) -> [String] {
        let (_, d) = PipelineLoader.parse(yaml: yaml, file: "p.yaml")
        return d.errors.map(\.description)
    }

    @Test("a complete file reads into a spec with defaults")
    func reads() throws {
        let (spec, d) = PipelineLoader.parse(
            yaml: """
                stages:
                  - parse
                  - verify:
                      secrets: [env:S1, file:/run/secret]
                      max_age: 10m
                  - dedup
                  - filter:
                      types: [prediction.created, "alert.*"]
                      match:
                        data.confidence: { gte: 0.8 }
                  - log:
                      path: out.log
                      template: "{id} {type}"
                      when: { types: [alert.triggered] }
                """, file: "dir/my-pipe.yaml")
        #expect(d.items.isEmpty, "\(d.items)")
        let s = try #require(spec)
        #expect(s.name == "my-pipe")
        #expect(s.statePath == ".lymph/my-pipe.sqlite")
        #expect(s.deadLetter == ".lymph/my-pipe.dead.ndjson")
        #expect(s.output == "-")
        #expect(s.stages.map(\.kind) == ["verify", "dedup", "filter", "log"])
        #expect(s.stages.map(\.name) == ["verify-2", "dedup-3", "filter-4", "log-5"])
        #expect((s.stages[0].spec as? VerifySpec)?.secretReferences == [.environment("S1"), .file("/run/secret")])
        #expect((s.stages[0].spec as? VerifySpec)?.maxAge == 600)
        #expect((s.stages[1].spec as? DedupSpec)?.window == 604_800.0)
        #expect(s.stages[3].when != nil)
    }

    @Test("state memory, output none and a named pipeline")
    func specialValues() throws {
        let (spec, _) = PipelineLoader.parse(yaml: "pipeline: x\nstate: memory\noutput: none\nstages: [parse]\n", file: "p.yaml")
        let s = try #require(spec)
        #expect(s.name == "x" && s.statePath == nil && s.output == nil)
    }

    @Test("state in PostgreSQL: a secret reference to the URL, a schema, a lease; a URL written in the file is refused unquoted")
    func postgresState() throws {
        let (spec, d) = PipelineLoader.parse(
            yaml: "state:\n  postgres: env:LYMPH_DATABASE_URL\n  schema: shared_1\n  lease: 30s\nstages: [parse, dedup]\n", file: "p.yaml")
        #expect(d.items.isEmpty, "\(d.items)")
        let s = try #require(spec)
        #expect(s.postgres == PostgresStateSpec(url: .environment("LYMPH_DATABASE_URL"), schema: "shared_1", lease: 30))
        #expect(s.statePath == nil)
        #expect(
            try #require(PipelineLoader.parse(yaml: "state: {postgres: file:/run/db-url}\nstages: [parse]\n", file: "p.yaml").0).postgres?.schema == "lymph")
        let inline = diagnostics("state:\n  postgres: postgres://u:hunter2@db/x\nstages: [parse]\n")
        #expect(inline.count == 1 && inline[0].hasPrefix("p.yaml:2:13: postgres must be a reference, env:NAME or file:PATH"))
        #expect(!inline.joined().contains("hunter2"))
        #expect(
            diagnostics("state:\n  schema: x\nstages: [parse]\n") == [
                "p.yaml:2:3: state as a mapping needs 'postgres: env:NAME' (or file:PATH): where the database URL is read from"
            ])
        #expect(
            diagnostics("state:\n  postgres: env:U\n  schema: Lymph\nstages: [parse]\n") == [
                "p.yaml:3:11: schema must be a plain lower-case name (letters a-z, digits and '_', at most 63, not starting with a digit)"
            ])
        #expect(diagnostics("state:\n  postgres: env:U\n  lease: 1s\nstages: [parse]\n") == ["p.yaml:3:10: lease must be between 2s and 10m"])
        #expect(diagnostics("state:\n  postgres: env:U\n  pool: 3\nstages: [parse]\n").count == 1)
    }

    @Test("the serve section: limits, idle_timeout, and their bounds")
    func serveSection() throws {
        let (spec, d) = PipelineLoader.parse(yaml: "serve:\n  max_body: 64KiB\n  max_connections: 10\n  idle_timeout: 2m\nstages: [parse]\n", file: "p.yaml")
        #expect(d.items.isEmpty, "\(d.items)")
        let s = try #require(spec)
        #expect(s.serve.maxBody == 65536 && s.serve.maxConnections == 10 && s.serve.idleTimeout == 120)
        #expect(try #require(PipelineLoader.parse(yaml: "stages: [parse]\n", file: "p.yaml").0).serve.idleTimeout == 30)
        #expect(diagnostics("serve:\n  idle_timeout: 0.5s\nstages: [parse]\n") == ["p.yaml:2:17: idle_timeout must be between 1s and 1h"])
        #expect(diagnostics("serve:\n  idle_timeout: 2h\nstages: [parse]\n") == ["p.yaml:2:17: idle_timeout must be between 1s and 1h"])
    }

    @Test("every planted error is reported with its line and column")
    func plantedErrors() {
        let errors = diagnostics(
            """
            pipeline: broken
            outptu: "-"
            stages:
              - parse
              - dedupe:
                  key: id
              - dedup:
                  windw: 7d
              - filter:
                  types: [alert.triggered]
                  match:
                    data.confidence: { gtee: 0.8 }
              - verify:
                  secrets: [my-plain-secret]
              - log:
                  format: yaml
            """)
        #expect(
            errors == [
                "p.yaml:2:1: unknown key 'outptu' in the pipeline file; did you mean 'output'?",
                "p.yaml:5:5: unknown stage 'dedupe'; did you mean 'dedup'?",
                "p.yaml:8:7: unknown key 'windw' in stage 'dedup'; did you mean 'window'?",
                "p.yaml:12:28: unknown operator 'gtee'; did you mean 'gte'?",
                "p.yaml:13:5: verify must come right after parse (only filter stages may precede it); 'dedup-3' at line 7 would see unverified events",
                "p.yaml:14:17: secrets must be references, env:NAME or file:PATH; a secret written into the pipeline file is refused (put it in an environment variable or a file)",
                "p.yaml:16:15: format must be 'json' or 'text'; expected one of: json, text",
            ])
    }

    @Test("a plain secret is refused without echoing it")
    func plainSecretNotEchoed() {
        let errors = diagnostics("stages:\n  - parse\n  - verify:\n      secrets: [s3cr3t-value]\n")
        #expect(errors.count == 1)
        #expect(!errors[0].contains("s3cr3t-value"))
    }

    @Test("YAML syntax errors carry the position")
    func yamlSyntax() {
        let errors = diagnostics("stages:\n  - parse\n  - filter: {types: [a\n")
        #expect(errors.count == 1)
        #expect(errors[0].hasPrefix("p.yaml:4:1: YAML syntax:"), "\(errors)")
    }

    @Test("parse must come first; stages need a kind")
    func structure() {
        #expect(
            diagnostics("stages:\n  - dedup\n  - parse\n") == [
                "p.yaml:2:5: the first stage must be 'parse' (add '- parse' before 'dedup')",
                "p.yaml:3:5: parse must be the first stage (every other stage works on parsed events)",
            ])
        #expect(
            diagnostics("stages:\n  - parse\n  - filter:\n    types: [a]\n") == [
                "p.yaml:3:5: a stage is one kind with its options below it, found several keys at one level (filter, types); indent the options of 'filter' under it"
            ])
        #expect(diagnostics("state: x\n") == ["p.yaml:1:1: the pipeline has no 'stages:' list"])
    }

    @Test(
        "option values are checked",
        arguments: [
            ("  - dedup:\n      window: soon\n", "p.yaml:4:15: window must be a positive duration like 30s, 10m, 48h or 7d"),
            (
                "  - filter:\n      match:\n        data.x: [1, 2]\n",
                "p.yaml:5:17: a field maps to one value or to operators; for a list of allowed values write 'in: [...]'"
            ),
            ("  - filter:\n      types: [\"al*rt\"]\n", "p.yaml:4:15: 'al*rt': the only wildcard is a trailing '.*' (as in 'alert.*') or '*' alone"),
            (
                "  - filter:\n      match:\n        data.x: { regex: \"([\" }\n",
                "p.yaml:5:26: invalid regular expression '([': unbalanced '[' at offset 1: missing ']'"
            ),
            ("  - log:\n      format: text\n", "p.yaml:4:15: format: text needs a 'template:' such as \"{created_at} {type} {id}\""),
            ("  - filter: {}\n", "p.yaml:3:13: filter needs 'types:' and/or 'match:'"),
            ("  - verify\n", "p.yaml:3:5: verify needs 'secrets: [env:NAME]' (or file:PATH): the secrets to check signatures with"),
            ("  - log:\n      when: { typos: [a], match: {id: x} }\n", "p.yaml:4:15: unknown key 'typos' in when; did you mean 'types'?"),
            ("  - log:\n      when: {}\n", "p.yaml:4:13: when needs 'types:' and/or 'match:'"),
            ("  - dedup:\n      window: inf\n", "p.yaml:4:15: window must be a positive duration like 30s, 10m, 48h or 7d"),
            ("  - dedup:\n      window: 1e300\n", "p.yaml:4:15: window must be at most 100 years"),
        ])
    func optionErrors(_ stage: String, _ expected: String) {
        #expect(diagnostics("stages:\n  - parse\n" + stage) == [expected])
    }

    @Test("a huge size is an error, not an overflow")
    func hugeSize() {
        #expect(diagnostics("stages:\n  - parse:\n      max_bytes: 99999999999G\n") == ["p.yaml:3:18: max_bytes must be a size like 1048576, 512KiB or 1MiB"])
    }

    @Test("a name given to one stage that another has by default (KIND-N) is refused, before or after it, and so is a blank one")
    func nameOfAnotherStagesDefault() {
        let after = diagnostics("stages:\n  - parse\n  - exec: {name: exec-3, command: [cat]}\n  - exec: {command: [cat]}\n")
        #expect(
            after == ["p.yaml:3:18: stage name 'exec-3' is the name the unnamed stage at line 4 has by default: name that stage, or this one otherwise"])
        let before = diagnostics("stages:\n  - parse\n  - log: {path: a.log}\n  - log: {name: log-2, path: b.log}\n")
        #expect(
            before == ["p.yaml:4:17: stage name 'log-2' is the name the unnamed stage at line 3 has by default: name that stage, or this one otherwise"])
        // parse's name too.
        let parse = diagnostics("stages:\n  - parse: {name: filter-2}\n  - filter: {types: [alert.triggered]}\n")
        #expect(parse.count == 1 && parse[0].contains("is the name the unnamed stage at line 3 has by default"), "\(parse)")
        #expect(diagnostics("stages:\n  - parse: {name: ' '}\n").count == 1)
        // Its own default name given to a stage is no clash.
        #expect(diagnostics("stages:\n  - parse\n  - log: {name: log-2, path: b.log}\n").isEmpty)
        #expect(diagnostics("stages:\n  - parse\n  - log: {name: '  ', path: b.log}\n") == ["p.yaml:3:17: a stage name cannot be empty or blank"])
    }

    @Test("state as SQLite's own notation (:memory:, a file: URI) is refused: it would keep nothing, or not where it seems")
    func stateNotation() {
        #expect(
            diagnostics("state: ':memory:'\nstages: [parse]\n") == [
                "p.yaml:1:8: state ':memory:' is SQLite's own notation, not a path: write 'memory' for a store that lasts one run, or a file path"
            ])
        #expect(diagnostics("state: file:x.sqlite?mode=memory\nstages: [parse]\n").count == 1)
        #expect(diagnostics("state: memory\nstages: [parse]\n").isEmpty)
        // In other letters it is not the keyword; './Memory' names such a file.
        #expect(
            diagnostics("state: Memory\nstages: [parse]\n") == [
                "p.yaml:1:8: state 'Memory' is not the keyword 'memory' (keywords are lower case): write 'memory', or './Memory' for a file of that name"
            ])
        #expect(diagnostics("state: ./Memory\nstages: [parse]\n").isEmpty)
    }

    @Test("a keyword in other letters (NONE, Stdout) is refused where a path would be taken: it made a file of that name")
    func keywordLookalikes() {
        #expect(
            diagnostics("output: NONE\nstages: [parse]\n") == [
                "p.yaml:1:9: output 'NONE' is not the keyword 'none' (keywords are lower case): write 'none', or './NONE' for a file of that name"
            ])
        #expect(diagnostics("output: ./NONE\nstages: [parse]\n").isEmpty)
        #expect(diagnostics("dead_letter: Stderr\nstages: [parse]\n").count == 1)
        #expect(diagnostics("output: none\ndead_letter: StdOut\nstages: [parse]\n").count == 1)
        let log = diagnostics("stages:\n  - parse\n  - log: {path: STDERR}\n")
        #expect(log.count == 1 && log[0].contains("path 'STDERR' is not the keyword 'stderr'"), "\(log)")
        #expect(diagnostics("stages:\n  - parse\n  - log: {path: stderr}\n").isEmpty)
    }

    @Test("dead letters to stdout beside an output on stdout ('-') are refused: '-' and 'stdout' are one place")
    func deadLettersOnTheOutputsStdout() {
        let errors = diagnostics("dead_letter: stdout\nstages: [parse]\n")
        #expect(errors.count == 1 && errors[0].contains("dead_letter and output are the same"), "\(errors)")
        #expect(diagnostics("output: stdout\ndead_letter: '-'\nstages: [parse]\n").count == 1)
        #expect(diagnostics("output: none\ndead_letter: stdout\nstages: [parse]\n").isEmpty)
        #expect(PipelineLoader.sameSink("-", "stdout") && !PipelineLoader.sameSink("stdout", "stderr") && PipelineLoader.sameSink("./x", "x"))
    }

    @Test("a number no JSON value can equal (.nan, .inf, 1e309) is refused in a condition")
    func nonFiniteConstants() {
        for constant in [".nan", ".inf", "-.inf", "1e309"] {
            let errors = diagnostics("stages:\n  - parse\n  - filter: {match: {data.confidence: {lt: \(constant)}}}\n")
            #expect(errors.count == 1 && errors[0].contains("is not a number JSON can hold"), "\(constant): \(errors)")
        }
        #expect(diagnostics("stages:\n  - parse\n  - filter: {match: {data.confidence: {lt: 1e308}}}\n").isEmpty)
    }

    @Test("an http header value written in the file with a line break or a NUL is refused where it is written, as run refuses it")
    func httpHeaderLineBreak() {
        let errors = diagnostics("stages:\n  - parse\n  - http: {url: 'https://example.com/hook', headers: {X-A: \"a\\r\\nInjected: 1\"}}\n")
        #expect(errors == ["p.yaml:3:60: header 'X-A' holds a line break or a NUL, which a header value cannot"], "\(errors)")
        #expect(diagnostics("stages:\n  - parse\n  - http: {url: 'https://example.com/hook', headers: {X-A: plain}}\n").isEmpty)
    }

    @Test("an http url with a port no connection can have (0, past 65535) is refused where it is named")
    func httpPort() {
        for port in ["0", "99999"] {
            let errors = diagnostics("stages:\n  - parse\n  - http: {url: 'https://example.com:\(port)/hook'}\n")
            #expect(errors.count == 1 && errors[0].contains("(and a port from 1 to 65535, if any)"), "\(port): \(errors)")
        }
        #expect(diagnostics("stages:\n  - parse\n  - http: {url: 'https://example.com:8443/hook'}\n").isEmpty)
    }

    @Test("an item that is not JSON and looks like UTF-16 says so, with what to do")
    func utf16Hint() {
        let utf16 = Array("{\"id\":\"e1\"}".utf16).flatMap { [UInt8($0 & 0xFF), UInt8($0 >> 8)] }
        guard case .rejected(let dead) = ParseStage().parse(RawItem(bytes: ([0xFF, 0xFE] + utf16)[...], source: SourcePosition(file: "u", line: 1))) else {
            Issue.record("a UTF-16 item was not rejected")
            return
        }
        #expect(dead.message.contains("the file looks like UTF-16, and lymph reads UTF-8"), "\(dead.message)")
        guard case .rejected(let plain) = ParseStage().parse(RawItem(bytes: Array("not json".utf8)[...], source: SourcePosition(file: "u", line: 2))) else {
            Issue.record("not json was not rejected")
            return
        }
        #expect(!plain.message.contains("UTF-16"))
    }

    @Test("types written as one string is checked against IMMUNE's types like a list")
    func bareTypeChecked() {
        let (_, d) = PipelineLoader.parse(yaml: "stages:\n  - parse\n  - filter: {types: alert.trigered}\n", file: "p.yaml")
        #expect(d.items.map(\.description) == ["p.yaml:3:21: warning: no IMMUNE event has the type 'alert.trigered'; did you mean 'alert.triggered'?"])
    }

    @Test("an output, dead-letter or log path that is a folder is refused where it is named")
    func folderSinks() throws {
        let dir = FileManager.default.temporaryDirectory.appendingPathComponent("lymph-folder-sink-\(getpid())").path
        try FileManager.default.createDirectory(atPath: dir, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(atPath: dir) }
        #expect(diagnostics("dead_letter: \(dir)\nstages: [parse]\n") == ["p.yaml:1:14: dead_letter is a folder ('\(dir)'): name a file (in it, for example)"])
        let log = diagnostics("stages:\n  - parse\n  - log: {path: \(dir)}\n")
        #expect(log.count == 1 && log[0].hasPrefix("p.yaml:3:5: stage 'log-2' logs to a file that is a folder"), "\(log)")
    }

    @Test("a pipeline file that cannot be read says why: missing, a folder, a device that never ends")
    func unreadableFile() {
        func message(_ path: String) -> String {
            do {
                _ = try PipelineLoader.load(path: path)
                return ""
            } catch {
                return error.diagnostics.map(\.description).joined()
            }
        }
        #expect(message("/nonexistent/p.yaml") == "/nonexistent/p.yaml:1:1: cannot read the pipeline file: No such file or directory")
        #expect(message("/tmp") == "/tmp:1:1: cannot read the pipeline file: it is a folder")
        #expect(message("/dev/zero").contains("pipeline file is larger than"))
    }

    @Test("duplicate stage names are refused")
    func duplicateNames() {
        let errors = diagnostics("stages:\n  - parse\n  - log: {name: a}\n  - log: {name: a}\n")
        #expect(errors == ["p.yaml:4:17: stage name 'a' is already used at line 3"])
    }

    @Test("two dedup stages that would file their keys under one name in the store are refused; named apart, or one in memory, they are not")
    func dedupStagesSharingKeys() {
        let errors = diagnostics("stages:\n  - parse\n  - dedup\n  - dedup: {window: 1h}\n")
        #expect(
            errors == [
                "p.yaml:4:5: dedup stage 'dedup-3' would file its keys in the store under 'dedup:id', as 'dedup-2' at line 3 does: give one of them its own 'name:'"
            ])
        #expect(diagnostics("stages:\n  - parse\n  - dedup: {name: 'dedup:id'}\n  - dedup: {window: 1h}\n").count == 1)
        #expect(diagnostics("stages:\n  - parse\n  - dedup\n  - dedup: {window: 1h, name: hourly}\n").isEmpty)
        #expect(diagnostics("stages:\n  - parse\n  - dedup\n  - dedup: {window: 1h, store: memory}\n").isEmpty)
        #expect(diagnostics("stages:\n  - parse\n  - dedup\n  - dedup: {key: data.prediction_id}\n").isEmpty)
    }

    @Test("durations and sizes")
    func units() {
        #expect(ConfigValue.parseDuration("7d") == 604_800)
        #expect(ConfigValue.parseDuration("1h30m") == 5400)
        #expect(ConfigValue.parseDuration("45") == 45)
        #expect(ConfigValue.parseDuration("3w") == nil)
        #expect(ConfigValue.parseByteSize("1MiB") == 1_048_576)
        #expect(ConfigValue.parseByteSize("512k") == 524_288)
        #expect(ConfigValue.parseByteSize("lots") == nil)
    }
    @Test("plain scalars are typed from their text by the readers: every YAML null form, numbers and booleans")
    func scalarsUntypedByYams() throws {
        let root = try #require(
            try PipelineLoader.compose(
                """
                number: 5
                yes: true
                tilde: ~
                word: null
                title: Null
                upper: NULL
                nothing:
                tagged: !!null ""
                quoted: "null"
                text: nil
                """))
        var values: [String: ConfigValue] = [:]
        for (key, value) in try #require(root.mapping) { values[try #require(key.scalar).string] = ConfigValue(value) }
        for key in ["tilde", "word", "title", "upper", "nothing", "tagged"] { #expect(values[key]?.isNull == true, "\(key)") }
        for key in ["quoted", "text", "number"] { #expect(values[key]?.isNull == false, "\(key)") }
        var d = ConfigDiagnostics(file: "p.yaml")
        #expect(values["number"]?.int(&d, "number", range: 0...10) == 5)
        #expect(values["yes"]?.bool(&d, "yes") == true)
        #expect(d.items.isEmpty, "\(d.items)")
    }
}
