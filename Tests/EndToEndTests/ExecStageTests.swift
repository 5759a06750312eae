import Foundation
import Testing

/// A folder with a pipeline, tiny plugin scripts and input events, run with the built binary.
struct ExecHarness {
    let dir: String

    init() { dir = LymphBinary.workDirectory() }

    /// Writes an executable script into the folder.
    func script(_ name: String, _ body: String) {
        let path = dir + "/" + name
        FileManager.default.createFile(atPath: path, contents: Data(body.utf8), attributes: [.posixPermissions: 0o755])
    }

    /// Events `e1`...`eN` of type `t` (or per `type(i)`), one per line, written to events.ndjson.
    @discardableResult
    func events(_ count: Int, type: (Int) -> String = { _ in "alert.triggered" }, data: (Int) -> String = { "{\"n\":\($0)}" }) -> [String] {
        let lines = (1...max(count, 1)).prefix(count).map { i in
            #"{"id":"e\#(i)","type":"\#(type(i))","created_at":"2026-06-01T00:00:00Z","data":\#(data(i))}"#
        }
        FileManager.default.createFile(atPath: dir + "/events.ndjson", contents: Data((lines.joined(separator: "\n") + "\n").utf8))
        return lines
    }

    /// Runs a pipeline whose stages after parse are `stages` (YAML, indented by four spaces).
    func run(
        _ stages: String, input: String = "events.ndjson", state: String = "memory", environment: [String: String] = [:],
        timeout: Double = 120
    ) throws -> LymphBinary.Result {
        let yaml = """
            pipeline: exec-test
            state: \(state)
            output: out.ndjson
            dead_letter: dead.ndjson
            stages:
              - parse
            \(stages)
            """
        FileManager.default.createFile(atPath: dir + "/pipeline.yaml", contents: Data(yaml.utf8))
        return try LymphBinary.run(["run", "pipeline.yaml", input, "--summary", "json"], in: dir, environment: environment, timeout: timeout)
    }

    var output: [String] { LymphBinary.lines(dir + "/out.ndjson") }
    var outputIDs: [String] { output.map { Self.field($0, "id") } }

    /// Dead letters as (reason, message, source line).
    var deadLetters: [(reason: String, message: String, line: Int)] {
        LymphBinary.lines(dir + "/dead.ndjson").map { line in
            let record = try! JSONSerialization.jsonObject(with: Data(line.utf8)) as! [String: Any]
            let error = record["error"] as! [String: Any]
            let source = record["source"] as! [String: Any]
            return (error["reason"] as! String, error["message"] as! String, source["line"] as! Int)
        }
    }

    static func field(_ json: String, _ key: String) -> String {
        let object = (try? JSONSerialization.jsonObject(with: Data(json.utf8))) as? [String: Any]
        return object?[key] as? String ?? ""
    }

    func file(_ name: String) -> String { (try? String(contentsOfFile: dir + "/" + name, encoding: .utf8)) ?? "" }

    /// Stage stats from the JSON summary.
    static func stage(_ r: LymphBinary.Result, _ name: String) -> [String: Any] {
        let stages = r.summary["stages"] as? [[String: Any]] ?? []
        return stages.first { $0["name"] as? String == name } ?? [:]
    }
}

/// Processes whose command line contains `marker` (to prove nothing was left running).
/// Sends SIGKILL to every live process whose command line contains `marker` (cleanup of a
/// process a test let escape on purpose).
func killProcesses(containing marker: String) {
    for p in processes(containing: marker) { if let pid = pid_t(p.prefix { $0 != ":" }) { kill(pid, SIGKILL) } }
}

func processes(containing marker: String) -> [String] {
    let entries = (try? FileManager.default.contentsOfDirectory(atPath: "/proc")) ?? []
    var found: [String] = []
    for pid in entries where pid.allSatisfy(\.isNumber) {
        guard let data = FileManager.default.contents(atPath: "/proc/\(pid)/cmdline"), !data.isEmpty else { continue }
        let cmdline = String(decoding: data.map { $0 == 0 ? 0x20 : $0 }, as: UTF8.self)
        if cmdline.contains(marker) {
            // A zombie is gone already; only live processes count.
            let stat = (try? String(contentsOfFile: "/proc/\(pid)/stat", encoding: .utf8)) ?? ""
            if let close = stat.lastIndex(of: ")"), stat[stat.index(close, offsetBy: 2)] == "Z" { continue }
            found.append("\(pid): \(cmdline)")
        }
    }
    return found
}

@Suite("exec stage, event mode", .serialized)
struct ExecEventModeTests {

    @Test("replay of the dead letters of one event that became two: both siblings go through (the second was dropped as the first's duplicate)")
    func replaySiblings() throws {
        let h = ExecHarness()
        h.events(2)
        h.script(
            "split.py",
            "#!/usr/bin/env python3\nimport json, sys\ne = json.load(sys.stdin)\nfor s in ('a', 'b'):\n    print(json.dumps(dict(e, id=e['id'] + '-' + s)))\n")
        h.script("gate.sh", "#!/bin/sh\nif [ -e \"$(dirname \"$0\")/down\" ]; then cat >/dev/null; echo down >&2; exit 1; fi\ncat\n")
        FileManager.default.createFile(atPath: h.dir + "/down", contents: Data())
        let stages = "  - dedup: { key: id }\n  - exec: { name: split, command: ./split.py }\n  - exec: { name: gate, command: ./gate.sh }"
        let first = try h.run(stages, state: "s.sqlite")
        #expect(first.status == 1)
        #expect(h.deadLetters.count == 4, "\(h.deadLetters)")
        try FileManager.default.removeItem(atPath: h.dir + "/down")
        let replay = try LymphBinary.run(["replay", "pipeline.yaml", "--summary", "none"], in: h.dir)
        #expect(replay.status == 0, "\(replay.stderr)")
        #expect(h.outputIDs.sorted() == ["e1-a", "e1-b", "e2-a", "e2-b"], "\(h.outputIDs)")
        // A second replay, and the inputs again, add nothing.
        _ = try LymphBinary.run(["replay", "pipeline.yaml", "--summary", "none"], in: h.dir)
        _ = try h.run(stages, state: "s.sqlite")
        #expect(h.outputIDs.count == 4, "\(h.outputIDs)")
    }

    @Test("an event id over the system's limit for an environment value fails the event saying so (plugin_start), not only 'Argument list too long'")
    func idTooLongForTheEnvironment() throws {
        let h = ExecHarness()
        let id = String(repeating: "x", count: 140_000)
        FileManager.default.createFile(
            atPath: h.dir + "/events.ndjson",
            contents: Data((#"{"id":"\#(id)","type":"alert.triggered","created_at":"2026-06-01T00:00:00Z","data":{}}"# + "\n").utf8))
        h.script("pass.sh", "#!/bin/sh\ncat\n")
        let r = try h.run("  - exec: { name: pass, command: ./pass.sh }")
        #expect(r.status == 1)
        let dead = h.deadLetters
        #expect(dead.first?.reason == "plugin_start", "\(dead.map(\.reason))")
        #expect(dead.first?.message.contains("over the system's 128 KiB limit (an event id or type that long, passed in LYMPH_EVENT_ID") == true)
    }
    @Test("a transform replaces each event with what the script prints")
    func transform() throws {
        let h = ExecHarness()
        h.events(3)
        h.script("up.sh", #"#!/bin/sh\#nsed 's/"alert.triggered"/"alert.enriched"/'\#n"#)
        let r = try h.run("  - exec: { name: up, command: ./up.sh }")
        #expect(r.status == 0, "\(r.stderr)")
        #expect(h.output.count == 3)
        #expect(h.output.allSatisfy { $0.contains(#""type":"alert.enriched""#) })
        #expect(h.outputIDs == ["e1", "e2", "e3"])
    }

    @Test("no output drops the event, counted as dropped and not as an error")
    func noOutputDrops() throws {
        let h = ExecHarness()
        h.events(4)
        // Keeps even events only, like `jq 'select(...)'` would.
        h.script("even.sh", "#!/bin/sh\nif [ $(( ${LYMPH_EVENT_ID#e} % 2 )) -eq 0 ]; then cat; else cat >/dev/null; fi\n")
        let r = try h.run("  - exec: { name: even, command: ./even.sh }")
        #expect(r.status == 0)
        #expect(h.outputIDs == ["e2", "e4"])
        #expect(r.count("dead_letters") == 0)
        #expect((ExecHarness.stage(r, "even")["dropped"] as? [String: Int])?["no_output"] == 2)
    }

    @Test("fan-out: several lines, a JSON array, or one pretty-printed object")
    func fanOut() throws {
        let h = ExecHarness()
        h.events(3)
        h.script(
            "fan.sh",
            """
            #!/bin/sh
            cat >/dev/null
            case $LYMPH_EVENT_ID in
              e1) printf '%s\\n' '{"id":"a1","type":"x"}' '{"id":"a2","type":"x"}' ;;
              e2) printf '[{"id":"b1","type":"x"},\\n {"id":"b2","type":"x"}, {"id":"b3","type":"x"}]\\n' ;;
              e3) printf '{\\n  "id": "c1",\\n  "type": "x"\\n}\\n' ;;
            esac
            """)
        let r = try h.run("  - exec: { name: fan, command: ./fan.sh }")
        #expect(r.status == 0, "\(r.stderr)")
        #expect(h.outputIDs == ["a1", "a2", "b1", "b2", "b3", "c1"])
    }

    @Test("an output event without id or type fails that event, saying what is missing")
    func missingIDOrType() throws {
        let h = ExecHarness()
        h.events(2)
        h.script("bad.sh", "#!/bin/sh\ncat >/dev/null\nif [ $LYMPH_EVENT_ID = e1 ]; then echo '{\"type\":\"x\"}'; else echo '{\"id\":\"z\"}'; fi\n")
        let r = try h.run("  - exec: { name: bad, command: ./bad.sh }")
        #expect(r.status == 1)
        let dead = h.deadLetters
        #expect(dead.count == 2)
        #expect(dead[0].reason == "plugin_output" && dead[0].message.contains("no string 'id'") && dead[0].message.contains("stage 'bad'"))
        #expect(dead[1].message.contains("no string 'type'"))
        #expect(dead.map(\.line) == [1, 2])
    }

    @Test("garbage on stdout fails the event with the line it could not read")
    func garbage() throws {
        let h = ExecHarness()
        h.events(2)
        h.script("g.sh", "#!/bin/sh\ncat\necho 'this is not json'\n")
        let r = try h.run("  - exec: { name: g, command: ./g.sh }")
        #expect(r.status == 1)
        #expect(h.deadLetters.count == 2)
        #expect(h.deadLetters.allSatisfy { $0.reason == "plugin_output" && $0.message.contains("line 2 is not valid JSON") })
    }

    @Test("exit 65 is final: no retry, whatever `retries` says")
    func exit65() throws {
        let h = ExecHarness()
        h.events(1)
        h.script("bad.sh", "#!/bin/sh\necho attempt >> attempts.txt\necho 'no equipment_id' >&2\nexit 65\n")
        let r = try h.run("  - exec: { name: bad, command: ./bad.sh, retries: 3, backoff: 10ms }")
        #expect(r.status == 1)
        #expect(h.file("attempts.txt").split(separator: "\n").count == 1)
        let dead = try #require(h.deadLetters.first)
        #expect(dead.reason == "plugin_exit")
        #expect(dead.message.contains("exited with status 65"))
        #expect(dead.message.contains("\"no equipment_id\""))
    }

    @Test("exit 75 is retried with backoff until the script succeeds")
    func exit75() throws {
        let h = ExecHarness()
        h.events(1)
        h.script(
            "flaky.sh",
            """
            #!/bin/sh
            echo "$(date +%s%N)" >> attempts.txt
            if [ $(wc -l < attempts.txt) -lt 3 ]; then echo 'service unavailable' >&2; exit 75; fi
            cat
            """)
        let r = try h.run("  - exec: { name: flaky, command: ./flaky.sh, retries: 2, backoff: 100ms }")
        #expect(r.status == 0, "\(r.stderr)")
        #expect(h.outputIDs == ["e1"])
        let times = h.file("attempts.txt").split(separator: "\n").compactMap { Double($0) }.map { $0 / 1e9 }
        #expect(times.count == 3)
        if times.count == 3 {
            // 100 ms, then 200 ms: exponential.
            #expect(times[1] - times[0] >= 0.09)
            #expect(times[2] - times[1] >= 0.19)
        }
    }

    @Test("exit 1 is retried `retries` times, then dead-lettered with the stderr tail")
    func exit1() throws {
        let h = ExecHarness()
        h.events(1)
        h.script("fail.sh", "#!/bin/sh\necho attempt >> attempts.txt\nfor i in 1 2 3 4 5 6 7; do echo \"line $i\" >&2; done\nexit 1\n")
        let r = try h.run("  - exec: { name: fail, command: ./fail.sh, retries: 2, backoff: 10ms }")
        #expect(r.status == 1)
        #expect(h.file("attempts.txt").split(separator: "\n").count == 3)
        let dead = try #require(h.deadLetters.first)
        #expect(dead.message.contains("exited with status 1"))
        #expect(dead.message.contains("gave up after 3 attempts"))
        // The tail is bounded: the last lines only.
        #expect(dead.message.contains("\"line 7\"") && !dead.message.contains("\"line 1\""))
    }

    @Test("a script past its timeout is stopped (with its children) and the event says so")
    func timeout() throws {
        let h = ExecHarness()
        h.events(2)
        h.script("slow.sh", "#!/bin/sh\nif [ $LYMPH_EVENT_ID = e1 ]; then sleep 3031 & sleep 3031; fi\ncat\n")
        let start = Date()
        let r = try h.run("  - exec: { name: slow, command: ./slow.sh, timeout: 1s }")
        let elapsed = Date().timeIntervalSince(start)
        #expect(r.status == 1)
        #expect(h.outputIDs == ["e2"])
        let dead = try #require(h.deadLetters.first)
        #expect(dead.reason == "plugin_timeout")
        #expect(dead.message.contains("timed out after 1s"))
        #expect(elapsed < 10)
        #expect(processes(containing: "sleep 3031").isEmpty)
    }

    @Test("a timeout also kills children that ignore SIGTERM")
    func timeoutKillsStubbornChildren() throws {
        let h = ExecHarness()
        h.events(1)
        h.script("stubborn.sh", "#!/bin/bash\n( trap '' TERM; exec sleep 3033 ) &\nsleep 100\n")
        let r = try h.run("  - exec: { name: s, command: ./stubborn.sh, timeout: 1s }")
        #expect(r.status == 1)
        #expect(h.deadLetters.first?.reason == "plugin_timeout")
        Thread.sleep(forTimeInterval: 0.3)
        #expect(processes(containing: "sleep 3033").isEmpty)
    }

    @Test("stdout over max_output fails the event and stops the script")
    func oversizedOutput() throws {
        let h = ExecHarness()
        h.events(1)
        h.script(
            "big.sh",
            "#!/bin/sh\nwhile :; do echo '{\"id\":\"x\",\"type\":\"y\",\"pad\":\"aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa\"}'; done\n")
        let r = try h.run("  - exec: { name: big, command: ./big.sh, max_output: 64KiB }")
        #expect(r.status == 1)
        let dead = try #require(h.deadLetters.first)
        #expect(dead.reason == "plugin_output")
        #expect(dead.message.contains("more than 65536 bytes"))
    }

    @Test("a script that never reads stdin, or closes stdout early, is not a failure")
    func ignoresStdin() throws {
        let h = ExecHarness()
        h.events(3)
        h.script("noread.sh", "#!/bin/sh\necho '{\"id\":\"fixed\",\"type\":\"t\"}'\n")
        let r = try h.run("  - exec: { name: noread, command: ./noread.sh }")
        #expect(r.status == 0, "\(r.stderr)")
        #expect(h.outputIDs == ["fixed", "fixed", "fixed"])
        let h2 = ExecHarness()
        h2.events(3)
        h2.script("closes.sh", "#!/bin/sh\nexec 1>&-\nsleep 0.2\nexit 0\n")
        let r2 = try h2.run("  - exec: { name: closes, command: ./closes.sh }")
        #expect(r2.status == 0, "\(r2.stderr)")
        #expect(h2.output.isEmpty)
        #expect((ExecHarness.stage(r2, "closes")["dropped"] as? [String: Int])?["no_output"] == 3)
    }

    @Test("workers: 4 runs processes at once and still writes events in input order")
    func workersKeepOrder() throws {
        let h = ExecHarness()
        h.events(40)
        // Later events finish first; the time stamps show processes overlapped.
        h.script("jitter.sh", "#!/bin/sh\nn=${LYMPH_EVENT_ID#e}\nsleep 0.$(( (40 - n) % 4 ))5\ncat\n")
        let start = Date()
        let r = try h.run("  - exec: { name: jitter, command: ./jitter.sh, workers: 4 }")
        let elapsed = Date().timeIntervalSince(start)
        #expect(r.status == 0)
        #expect(h.outputIDs == (1...40).map { "e\($0)" })
        // Serially this is about 40 × 0.2 s = 8 s; four at a time about a quarter of it.
        #expect(elapsed < 6)
    }

    @Test("workers: 1 runs side-effect plugins one at a time, in input order, across input batches")
    func oneWorkerKeepsSideEffectOrder() throws {
        let h = ExecHarness()
        // 200 KB events: the 1 MiB read blocks make about a dozen batches of them.
        let pad = String(repeating: "x", count: 200_000)
        h.events(60, data: { "{\"n\":\($0),\"pad\":\"\(pad)\"}" })
        // Each run notes its start and end: one at a time means every start follows the
        // previous end, and the ids come in input order.
        h.script("note.sh", "#!/bin/sh\necho \"start $LYMPH_EVENT_ID\" >> notes.txt\necho \"end $LYMPH_EVENT_ID\" >> notes.txt\n")
        let r = try h.run("  - exec: { name: note, command: ./note.sh, output: ignore, workers: 1 }")
        #expect(r.status == 0, "\(r.stderr)")
        let expected = (1...60).flatMap { ["start e\($0)", "end e\($0)"] }
        #expect(h.file("notes.txt").split(separator: "\n").map(String.init) == expected)
    }

    @Test("the environment is clean: PATH, HOME, LANG, LC_*, TZ, TMPDIR, LYMPH_* and env: only")
    func cleanEnvironment() throws {
        let h = ExecHarness()
        h.events(1)
        h.script("env.sh", "#!/bin/sh\nenv > env.txt\ncat\n")
        FileManager.default.createFile(atPath: h.dir + "/token.txt", contents: Data("tok-from-file-1234\n".utf8))
        let r = try h.run(
            """
              - exec:
                  name: envdump
                  command: ./env.sh
                  env:
                    REGION: eu
                    API_TOKEN: env:LYMPH_TEST_TOKEN
                    FILE_TOKEN: file:token.txt
            """,
            environment: [
                "LYMPH_TEST_TOKEN": "tok-secret-5678", "IMMUNE_WEBHOOK_SECRET": "whsec_never_passed", "LYMPH_TEST_LEAK": "1",
                "LC_ALL": "C.UTF-8", "TZ": "UTC",
            ])
        #expect(r.status == 0, "\(r.stderr)")
        var env: [String: String] = [:]
        for line in h.file("env.txt").split(separator: "\n") {
            let parts = line.split(separator: "=", maxSplits: 1)
            if parts.count == 2 { env[String(parts[0])] = String(parts[1]) }
        }
        #expect(env["LYMPH_EVENT_ID"] == "e1")
        #expect(env["LYMPH_EVENT_TYPE"] == "alert.triggered")
        #expect(env["LYMPH_STAGE"] == "envdump")
        #expect(env["LYMPH_PIPELINE"] == "exec-test")
        #expect(env["REGION"] == "eu")
        #expect(env["API_TOKEN"] == "tok-secret-5678")
        #expect(env["FILE_TOKEN"] == "tok-from-file-1234")
        #expect(env["LC_ALL"] == "C.UTF-8" && env["TZ"] == "UTC")
        #expect(env["PATH"] != nil)
        #expect(env["IMMUNE_WEBHOOK_SECRET"] == nil)
        #expect(env["LYMPH_TEST_LEAK"] == nil)
        let allowed: Set<String> = [
            "PATH", "HOME", "LANG", "TZ", "TMPDIR", "LYMPH_EVENT_ID", "LYMPH_EVENT_TYPE", "LYMPH_STAGE", "LYMPH_PIPELINE",
            "REGION", "API_TOKEN", "FILE_TOKEN", "PWD", "SHLVL", "_",
        ]  // the last three: set by sh itself
        #expect(env.keys.filter { !allowed.contains($0) && !$0.hasPrefix("LC_") }.isEmpty, "\(env.keys.sorted())")
    }

    @Test("a secret from env: is not logged when the plugin prints it to stderr")
    func secretNotLogged() throws {
        let h = ExecHarness()
        h.events(1)
        h.script("leak.sh", "#!/bin/sh\necho \"token is $API_TOKEN\" >&2\nexit 1\n")
        let r = try h.run(
            "  - exec: { name: leak, command: ./leak.sh, env: { API_TOKEN: 'env:LYMPH_TEST_TOKEN' } }",
            environment: ["LYMPH_TEST_TOKEN": "tok-secret-5678"])
        #expect(r.status == 1)
        #expect(!r.stderr.contains("tok-secret-5678"))
        #expect(r.stderr.contains("token is [redacted]"))
        #expect(!h.file("dead.ndjson").contains("tok-secret-5678"))
    }

    @Test("a secret of several lines (a PEM key from file:), or one a variable ends with a line break, is redacted from stderr line by line")
    func multiLineSecretNotLogged() throws {
        let h = ExecHarness()
        h.events(1)
        let key = "-----BEGIN PRIVATE KEY-----\nMIIEvQIBADANBgkqhkiG9w0BAQEFAASC\nBKcwggSjAgEAAoIBAQC7VJTUt9Us8cKj\n-----END PRIVATE KEY-----\n"
        FileManager.default.createFile(atPath: h.dir + "/key.pem", contents: Data(key.utf8))
        h.script("leak.sh", "#!/bin/sh\necho \"debug: key=$KEY token=$TOKEN\" >&2\nexit 1\n")
        let r = try h.run(
            "  - exec: { name: leak, command: ./leak.sh, env: { KEY: 'file:key.pem', TOKEN: 'env:LYMPH_TEST_TOKEN' } }",
            environment: ["LYMPH_TEST_TOKEN": "tok-newline-secret-4321\n"])
        #expect(r.status == 1)
        let dead = h.file("dead.ndjson")
        for part in ["MIIEvQIBADANBgkqhkiG9w0BAQEFAASC", "BKcwggSjAgEAAoIBAQC7VJTUt9Us8cKj", "tok-newline-secret-4321"] {
            #expect(!r.stderr.contains(part), "\(part) in the log")
            #expect(!dead.contains(part), "\(part) in the dead letter")
        }
        #expect(r.stderr.contains("[redacted]"))
    }

    @Test("an env value from a reference that holds a NUL is refused at start (exit 2), not passed on cut")
    func nulInReferencedEnv() throws {
        let h = ExecHarness()
        h.events(1)
        h.script("show.sh", "#!/bin/sh\ncat\n")
        FileManager.default.createFile(atPath: h.dir + "/tok", contents: Data("abc".utf8 + [0] + "def".utf8))
        let r = try h.run("  - exec: { name: show, command: ./show.sh, env: { TOK: 'file:tok' } }")
        #expect(r.status == 2, "\(r.stderr)")
        #expect(r.stderr.contains("file:tok: holds a NUL character"), "\(r.stderr)")
    }

    @Test("a plugin's output quoted in a plugin_output dead letter is redacted before it is cut: no part of a secret is left at the cut")
    func excerptRedactedBeforeCut() throws {
        let h = ExecHarness()
        h.events(1)
        h.script("leak.sh", "#!/bin/sh\ncat >/dev/null\nprintf '%s %s not json\\n' \"$(printf 'x%.0s' $(seq 1 100))\" \"$API_TOKEN\"\n")
        let r = try h.run(
            "  - exec: { name: leak, command: ./leak.sh, env: { API_TOKEN: 'env:LYMPH_TEST_TOKEN' } }",
            environment: ["LYMPH_TEST_TOKEN": "tok_SUPERSECRET_0123456789abcdefghij"])
        #expect(r.status == 1)
        let dead = h.file("dead.ndjson")
        #expect(dead.contains("plugin_output"), "\(dead)")
        #expect(!dead.contains("tok_SUPER"), "\(dead)")
        #expect(!r.stderr.contains("tok_SUPER"))
    }

    @Test("event mode: output that is not events is a plugin_output dead letter quoting the end of the plugin's stderr, which often says why")
    func outputFailureQuotesStderr() throws {
        let h = ExecHarness()
        h.events(1)
        h.script("bad.sh", "#!/bin/sh\ncat >/dev/null\necho 'config file /etc/x.conf missing' >&2\necho 'usage: bad.sh FILE'\n")
        let r = try h.run("  - exec: { name: bad, command: ./bad.sh }")
        #expect(r.status == 1)
        let letter = try #require(h.deadLetters.first)
        #expect(letter.reason == "plugin_output")
        #expect(letter.message.contains("config file /etc/x.conf missing"), "\(letter.message)")
    }

    @Test("an event id and a plugin's stderr with a line break or an escape sequence cannot forge a log line or drive the terminal")
    func logLinesEscaped() throws {
        let h = ExecHarness()
        let id = "evt_x\\n2026-12-07T18:00:00+0000 critical lymph: FORGED LINE\\u001b[2J"
        FileManager.default.createFile(
            atPath: h.dir + "/events.ndjson",
            contents: Data(#"{"id":"\#(id)","type":"alert.triggered","created_at":"2026-06-01T00:00:00Z","data":{}}"#.utf8 + [0x0A]))
        h.script("noisy.sh", "#!/bin/sh\nprintf 'oops\\033[31m red\\rback\\n' >&2\nexit 1\n")
        let r = try h.run("  - exec: { name: noisy, command: ./noisy.sh }")
        #expect(r.status == 1)
        #expect(!r.stderr.contains("\u{1B}"), "\(r.stderr.debugDescription)")
        #expect(!r.stderr.contains("\r"))
        #expect(!r.stderr.split(separator: "\n").contains { $0.hasPrefix("2026-12-07T18:00:00+0000 critical lymph: FORGED") })
        #expect(r.stderr.contains("oops\\u{1B}[31m red\\rback"), "\(r.stderr)")
    }

    @Test("SIGTERM during a retry's back-off ends the run within the stop's grace, not after the waits: the event is a dead letter, not retried")
    func stopDuringBackoff() throws {
        let h = ExecHarness()
        h.events(1)
        h.script("busy.sh", "#!/bin/sh\ncat >/dev/null\nexit 75\n")
        let yaml = """
            pipeline: exec-test
            state: memory
            output: out.ndjson
            dead_letter: dead.ndjson
            stages:
              - parse
              - exec: { name: busy, command: ./busy.sh, retries: 3, backoff: 20s }
            """
        FileManager.default.createFile(atPath: h.dir + "/pipeline.yaml", contents: Data(yaml.utf8))
        let err = Pipe()
        let process = try LymphBinary.launch(["run", "pipeline.yaml", "events.ndjson", "--summary", "none"], in: h.dir, stdin: Pipe(), stderr: err)
        Thread.sleep(forTimeInterval: 1.5)
        let signalled = Date()
        kill(process.processIdentifier, SIGTERM)
        process.waitUntilExit()
        #expect(Date().timeIntervalSince(signalled) < 8)
        #expect(process.terminationStatus == 143)
        let letters = h.deadLetters
        #expect(letters.count == 1)
        #expect(letters.first?.message.contains("not retried: the run was stopping") == true, "\(letters)")
    }

    @Test("a secret is redacted from logged stdout (output: ignore) and from stream error answers")
    func secretRedactedEverywhere() throws {
        let h = ExecHarness()
        h.events(1)
        h.script("tell.sh", "#!/bin/sh\ncat >/dev/null\necho \"calling pager with token $API_TOKEN\"\n")
        let r = try h.run(
            "  - exec: { name: tell, command: ./tell.sh, output: ignore, env: { API_TOKEN: 'env:LYMPH_TEST_TOKEN' } }",
            environment: ["LYMPH_TEST_TOKEN": "tok-secret-5678"])
        #expect(r.status == 0)
        #expect(r.stderr.contains("calling pager with token [redacted]"))
        #expect(!r.stderr.contains("tok-secret-5678"))
        let h2 = ExecHarness()
        h2.events(1)
        h2.script(
            "err.sh",
            "#!/bin/bash\nwhile IFS= read -r line; do id=${line#*\\\"id\\\":\\\"}; id=${id%%\\\"*}; echo \"{\\\"answer_to\\\": \\\"$id\\\", \\\"error\\\": \\\"auth failed for $API_TOKEN\\\"}\"; done\n"
        )
        let r2 = try h2.run(
            "  - exec: { name: err, command: ./err.sh, mode: stream, env: { API_TOKEN: 'env:LYMPH_TEST_TOKEN' } }",
            environment: ["LYMPH_TEST_TOKEN": "tok-secret-5678"])
        #expect(r2.status == 1)
        #expect(h2.deadLetters.first?.message.contains("auth failed for [redacted]") == true)
        #expect(!h2.file("dead.ndjson").contains("tok-secret-5678"))
    }

    @Test("on_error: stop in stream mode ends the run and leaves no plugin process behind")
    func stopLeavesNothing() throws {
        let h = ExecHarness()
        h.events(5)
        h.script(
            "kid.sh",
            "#!/bin/bash\nsleep 3043 &\nwhile IFS= read -r line; do if [[ $line == *'\"e3\"'* ]]; then echo '{\"answer_to\":\"e3\",\"error\":\"no\"}'; else printf '%s\\n' \"$line\"; fi; done\n"
        )
        let r = try h.run("  - exec: { name: kid, command: ./kid.sh, mode: stream, on_error: stop }")
        #expect(r.status == 3)
        Thread.sleep(forTimeInterval: 0.3)
        #expect(processes(containing: "sleep 3043").isEmpty)
    }

    @Test("on_error: drop counts the event as dropped; on_error: stop ends the run with exit 3")
    func onError() throws {
        let h = ExecHarness()
        h.events(3)
        h.script("fail2.sh", "#!/bin/sh\nif [ $LYMPH_EVENT_ID = e2 ]; then exit 1; fi\ncat\n")
        let dropped = try h.run("  - exec: { name: f, command: ./fail2.sh, on_error: drop }")
        #expect(dropped.status == 0)
        #expect(h.outputIDs == ["e1", "e3"])
        #expect(dropped.count("dead_letters") == 0)
        #expect((ExecHarness.stage(dropped, "f")["dropped"] as? [String: Int])?["on_error_drop"] == 1)
        let stopped = try h.run("  - exec: { name: f, command: ./fail2.sh, on_error: stop }")
        #expect(stopped.status == 3)
        #expect(stopped.stderr.contains("stage 'f' failed on event e2"))
        #expect(stopped.stderr.contains("events.ndjson:2"))
    }

    @Test("a plugin inherits no descriptor but stdin, stdout and stderr (not the store, outputs or input)")
    func noLeakedDescriptors() throws {
        let h = ExecHarness()
        h.events(1)
        h.script(
            "fds.py",
            """
            #!/usr/bin/env python3
            import os, sys
            fds = {}
            for fd in os.listdir("/proc/self/fd"):
                try: fds[fd] = os.readlink(f"/proc/self/fd/{fd}")
                except OSError: pass
            with open("fds.txt", "w") as f:
                for fd, target in sorted(fds.items()):
                    if not target.startswith("/proc/"): f.write(f"{fd} {target}\\n")
            sys.stdout.write(sys.stdin.read())
            """)
        let r = try h.run("  - dedup\n  - exec: { name: fds, command: ./fds.py }", state: "store.sqlite")
        #expect(r.status == 0, "\(r.stderr)")
        let fds = h.file("fds.txt").split(separator: "\n").map { String($0.split(separator: " ")[0]) }
        #expect(fds == ["0", "1", "2"], "\(h.file("fds.txt"))")
    }

    @Test("an event larger than a pipe's buffer goes through whole, and one the plugin never reads is no failure")
    func largeEvent() throws {
        let h = ExecHarness()
        let pad = String(repeating: "x", count: 300_000)
        h.events(2, data: { #"{"n":\#($0),"pad":"\#(pad)"}"# })
        // cat reads while it writes: Lymph must write stdin and read stdout at once.
        let r = try h.run("  - exec: { name: copy, command: cat }")
        #expect(r.status == 0, "\(r.stderr)")
        #expect(h.output.count == 2)
        #expect(h.output.allSatisfy { $0.contains(pad) })
        let h2 = ExecHarness()
        h2.events(2, data: { #"{"n":\#($0),"pad":"\#(pad)"}"# })
        h2.script("skip.sh", "#!/bin/sh\necho '{\"id\":\"short\",\"type\":\"t\"}'\n")
        let r2 = try h2.run("  - exec: { name: skip, command: ./skip.sh }")
        #expect(r2.status == 0, "\(r2.stderr)")
        #expect(h2.outputIDs == ["short", "short"])
    }

    @Test("a plugin starts with no signal ignored or blocked, though Lymph ignores SIGPIPE, SIGINT and SIGTERM")
    func defaultSignals() throws {
        let h = ExecHarness()
        h.events(1)
        // Read with builtins only: while dash waits for a child (grep, say) it blocks every
        // signal itself, so a child reading the shell's status could see that mask instead.
        h.script(
            "sig.sh", "#!/bin/sh\nwhile IFS= read -r line; do case $line in SigBlk*|SigIgn*) echo \"$line\";; esac; done < /proc/$$/status > sig.txt\ncat\n")
        let r = try h.run("  - exec: { name: sig, command: ./sig.sh }")
        #expect(r.status == 0, "\(r.stderr)")
        // Masks from /proc: bit n-1 is signal n. Signals 32 and 33 are glibc's own (threads'
        // cancellation and set*id), which no spawn can reset; every standard signal must be.
        var masks: [String: UInt64] = [:]
        for line in h.file("sig.txt").split(separator: "\n") {
            let parts = line.split(separator: "\t")
            if parts.count == 2 { masks[String(parts[0])] = UInt64(parts[1], radix: 16) }
        }
        #expect(masks["SigBlk:"] == 0, "\(h.file("sig.txt"))")
        #expect(masks["SigIgn:"].map { $0 & 0x7FFF_FFFF } == 0, "\(h.file("sig.txt"))")
    }

    @Test("a child in the plugin's group still reads the event and answers after the plugin itself exited")
    func childWritesAfterExit() throws {
        let h = ExecHarness()
        // Larger than a pipe's buffer: stdin must still be written after the plugin's exit.
        let pad = String(repeating: "y", count: 200_000)
        h.events(3, data: { #"{"n":\#($0),"pad":"\#(pad)"}"# })
        // The script exits at once; its background child answers a little later (from fd 3: sh
        // gives a background job /dev/null as its stdin).
        h.script("late.sh", "#!/bin/sh\nexec 3<&0\n(sleep 0.3; cat <&3) &\nexit 0\n")
        let r = try h.run("  - exec: { name: late, command: ./late.sh, workers: 3 }")
        #expect(r.status == 0, "\(r.stderr)")
        #expect(h.outputIDs == ["e1", "e2", "e3"])
        #expect(h.output.allSatisfy { $0.contains(pad) })
    }

    @Test("stdout over max_output after the plugin exited fails at once as plugin_output, even with its pipes held open")
    func overflowAfterExit() throws {
        let h = ExecHarness()
        h.events(1)
        // The writer leaves the group (so the group's SIGKILL misses it), waits for the plugin to
        // exit, floods stdout, then keeps stderr open.
        h.script("spill.sh", "#!/bin/sh\nsetsid sh -c 'sleep 0.3; head -c 2000000 /dev/zero; exec sleep 3045' &\nexit 0\n")
        defer { killProcesses(containing: "sleep 3045") }
        let start = Date()
        let r = try h.run("  - exec: { name: spill, command: ./spill.sh, timeout: 20s, max_output: 1MiB }")
        #expect(Date().timeIntervalSince(start) < 10)
        #expect(r.status == 1, "\(r.stderr)")
        #expect(h.deadLetters.first?.reason == "plugin_output")
    }

    @Test("a descendant that leaves the process group and keeps stdout open fails the event at the timeout, saying so")
    func escapedDescendant() throws {
        let h = ExecHarness()
        h.events(1)
        // The script waits until the sleep has left the group (setsid has run) before it answers.
        h.script("escape.sh", "#!/bin/sh\nsetsid sh -c 'touch escaped; exec sleep 3043' &\nwhile [ ! -e escaped ]; do sleep 0.01; done\ncat\n")
        defer { killProcesses(containing: "sleep 3043") }
        let start = Date()
        let r = try h.run("  - exec: { name: escape, command: ./escape.sh, timeout: 1s }")
        #expect(Date().timeIntervalSince(start) < 10)
        #expect(r.status == 1, "\(r.stderr)")
        let dead = try #require(h.deadLetters.first)
        #expect(dead.reason == "plugin_timeout")
        #expect(dead.message.contains("exited, but a process it started still held its stdout or stderr open"), "\(dead.message)")
        // Outside the group, so Lymph could not stop it: it is still there (the defer ends it).
        #expect(processes(containing: "sleep 3043").count == 1)
    }

    @Test("a plugin flooding stderr is still stopped at its timeout")
    func stderrFlood() throws {
        let h = ExecHarness()
        h.events(1)
        h.script("flood.sh", "#!/bin/sh\nexec yes 'error: connection refused, retrying' >&2\n")
        let start = Date()
        let r = try h.run("  - exec: { name: flood, command: ./flood.sh, timeout: 1s }")
        #expect(Date().timeIntervalSince(start) < 10)
        #expect(r.status == 1, "\(r.stderr)")
        #expect(h.deadLetters.first?.reason == "plugin_timeout")
        #expect(processes(containing: "yes error: connection refused").isEmpty)
    }

    @Test("no process is left behind, background children included")
    func noLeftovers() throws {
        let h = ExecHarness()
        h.events(5)
        h.script("bg.sh", "#!/bin/sh\nsleep 3041 >/dev/null 2>&1 &\ncat\n")
        let r = try h.run("  - exec: { name: bg, command: ./bg.sh, workers: 2 }")
        #expect(r.status == 0)
        #expect(h.output.count == 5)
        #expect(processes(containing: "sleep 3041").isEmpty)
    }
}

@Suite("exec stage, stream mode", .serialized)
struct ExecStreamModeTests {
    @Test("answers: an event, a drop, a fan-out and an error, each naming the event it answers")
    func answers() throws {
        let h = ExecHarness()
        h.events(6)
        h.script(
            "answer.py",
            """
            #!/usr/bin/env python3
            import json, sys
            for line in sys.stdin:
                e = json.loads(line)
                n = int(e["id"][1:])
                if n == 1: out = dict(e, type="changed")
                elif n == 2: out = {"answer_to": e["id"], "events": []}
                elif n == 3: out = {"answer_to": e["id"], "events": [{"id": "f1", "type": "x"}, {"id": "f2", "type": "x"}]}
                elif n == 4: out = {"answer_to": e["id"], "events": []}
                elif n == 5: out = {"answer_to": e["id"], "error": "cannot handle e5"}
                else: out = e
                sys.stdout.write(json.dumps(out) + "\\n")
                sys.stdout.flush()
            """)
        let r = try h.run("  - exec: { name: ans, command: ./answer.py, mode: stream }")
        #expect(r.status == 1, "\(r.stderr)")
        #expect(h.outputIDs == ["e1", "f1", "f2", "e6"])
        #expect(h.output.first?.contains(#""type": "changed""#) == true)
        let dead = h.deadLetters
        #expect(dead.count == 1)
        #expect(dead.first?.reason == "plugin_error")
        #expect(dead.first?.message.contains("cannot handle e5") == true)
        #expect(dead.first?.line == 5)
    }

    @Test("garbage and an answer naming no event fail the events in flight (plugin_protocol) and restart the plugin; an over-long line fails its event")
    func garbageStaysInStep() throws {
        let h = ExecHarness()
        h.events(5)
        h.script(
            "g.sh",
            """
            #!/bin/bash
            while IFS= read -r line; do
              case $line in
                *'"id":"e2"'*) echo 'not json at all' ;;
                *'"id":"e3"'*) echo '{"type":"no-id"}' ;;
                *'"id":"e4"'*) head -c 5000 /dev/zero | tr '\\0' 'x'; echo ;;
                *) printf '%s\\n' "$line" ;;
              esac
            done
            """)
        // One event in flight at a time, so each broken answer can only be its event's.
        let r = try h.run("  - exec: { name: g, command: ./g.sh, mode: stream, max_output: 1KiB, max_in_flight: 1 }")
        #expect(r.status == 1)
        #expect(h.outputIDs == ["e1", "e5"])
        let dead = h.deadLetters
        #expect(dead.map(\.line) == [2, 3, 4])
        #expect(dead.map(\.reason) == ["plugin_protocol", "plugin_protocol", "plugin_output"])
        #expect(dead[0].message.contains("not valid JSON"))
        #expect(dead[1].message.contains("no string 'id'"))
        #expect(dead[2].message.contains("longer than 1024 bytes"))
    }

    @Test("stderr noise between answers is logged and changes nothing")
    func stderrNoise() throws {
        let h = ExecHarness()
        h.events(50)
        h.script(
            "noisy.sh",
            "#!/bin/bash\nwhile IFS= read -r line; do echo \"working on it\" >&2; head -c 3000 /dev/zero | tr '\\0' 'n' >&2; echo >&2; printf '%s\\n' \"$line\"; done\n"
        )
        let r = try h.run("  - exec: { name: noisy, command: ./noisy.sh, mode: stream }")
        #expect(r.status == 0)
        #expect(h.outputIDs == (1...50).map { "e\($0)" })
        #expect(r.stderr.contains("plugin stderr: working on it"))
    }

    @Test("a late answer fails that event and restarts the process; events sent after it go again")
    func timeoutRestarts() throws {
        let h = ExecHarness()
        h.events(6)
        h.script(
            "stall.sh",
            """
            #!/bin/bash
            echo start >> starts.txt
            while IFS= read -r line; do
              if [[ $line == *'"id":"e3"'* ]]; then sleep 3051; fi
              printf '%s\\n' "$line"
            done
            """)
        let start = Date()
        let r = try h.run("  - exec: { name: stall, command: ./stall.sh, mode: stream, timeout: 1s }")
        #expect(Date().timeIntervalSince(start) < 15)
        #expect(r.status == 1)
        #expect(h.outputIDs == ["e1", "e2", "e4", "e5", "e6"])
        let dead = try #require(h.deadLetters.first)
        #expect(dead.reason == "plugin_timeout" && dead.line == 3)
        #expect(dead.message.contains("timed out after 1s"))
        #expect(h.file("starts.txt").split(separator: "\n").count == 2)
        #expect(processes(containing: "sleep 3051").isEmpty)
    }

    @Test("a crash mid-stream: unanswered events go to the restarted process and nothing is lost")
    func crashMidStream() throws {
        let h = ExecHarness()
        h.events(10)
        // Answers three events, then dies reading the fourth.
        h.script(
            "crashy.sh",
            "#!/bin/bash\necho start >> starts.txt\nn=0\nwhile IFS= read -r line; do n=$((n+1)); if [ $n -gt 3 ]; then exit 1; fi; printf '%s\\n' \"$line\"; done\n"
        )
        let r = try h.run("  - exec: { name: crashy, command: ./crashy.sh, mode: stream, max_in_flight: 1 }")
        #expect(r.status == 0, "\(r.stderr)")
        #expect(h.outputIDs == (1...10).map { "e\($0)" })
        #expect(h.file("starts.txt").split(separator: "\n").count == 4)
    }

    @Test("a crash is charged to the event the plugin was handling: a poison event fails, the events behind it pass")
    func crashedTwice() throws {
        let h = ExecHarness()
        h.events(100)
        h.script("poison.sh", "#!/bin/bash\nwhile IFS= read -r line; do if [[ $line == *'\"id\":\"e3\"'* ]]; then exit 1; fi; printf '%s\\n' \"$line\"; done\n")
        // Default max_in_flight (64): dozens of events are in the pipe at each crash.
        let r = try h.run("  - exec: { name: poison, command: ./poison.sh, mode: stream }")
        #expect(r.status == 1)
        #expect(h.outputIDs == (1...100).filter { $0 != 3 }.map { "e\($0)" })
        let dead = h.deadLetters
        #expect(dead.count == 1)
        #expect(dead.first?.reason == "plugin_crash" && dead.first?.line == 3)
        #expect(dead.first?.message.contains("plugin crashed twice while handling it") == true)
    }

    @Test("a slow but steady plugin is not timed out for events queued behind others")
    func slowButSteady() throws {
        let h = ExecHarness()
        h.events(40)
        h.script("slow.sh", "#!/bin/bash\nwhile IFS= read -r line; do sleep 0.05; printf '%s\\n' \"$line\"; done\n")
        // 40 events × 50 ms = 2 s in the pipe at once, against a 1 s timeout per answer.
        let r = try h.run("  - exec: { name: slow, command: ./slow.sh, mode: stream, timeout: 1s }")
        #expect(r.status == 0, "\(h.deadLetters.map(\.message))")
        #expect(h.outputIDs == (1...40).map { "e\($0)" })
    }

    @Test("a plugin that cannot start fails events fast after 5 failed starts instead of spinning")
    func failsFast() throws {
        let h = ExecHarness()
        h.events(30)
        h.script("dead.sh", "#!/bin/sh\necho start >> starts.txt\necho 'missing config' >&2\nexit 1\n")
        let start = Date()
        let r = try h.run("  - exec: { name: dead, command: ./dead.sh, mode: stream, max_in_flight: 1 }")
        let elapsed = Date().timeIntervalSince(start)
        #expect(r.status == 1)
        #expect(h.output.isEmpty)
        let dead = h.deadLetters
        #expect(dead.count == 30)
        #expect(dead.filter { $0.reason == "plugin_unavailable" }.count >= 25)
        #expect(dead.first { $0.reason == "plugin_unavailable" }?.message.contains("failed to start 5 times in a row") == true)
        #expect(dead.first { $0.reason == "plugin_unavailable" }?.message.contains("missing config") == true)
        // 100 + 200 + 400 + 800 ms of backoff, not 30 restarts.
        #expect(elapsed < 10)
        #expect(h.file("starts.txt").split(separator: "\n").count <= 6)
    }

    @Test("a plugin that closes stdout early is restarted like a crash")
    func closesStdout() throws {
        let h = ExecHarness()
        h.events(4)
        h.script("half.sh", "#!/bin/bash\nIFS= read -r line; printf '%s\\n' \"$line\"; exec 1>&-; sleep 0.2\n")
        let r = try h.run("  - exec: { name: half, command: ./half.sh, mode: stream, max_in_flight: 1 }")
        #expect(r.status == 0, "\(r.stderr)")
        #expect(h.outputIDs == ["e1", "e2", "e3", "e4"])
    }

    @Test("a plugin that never reads stdin times out instead of hanging the pipeline")
    func neverReads() throws {
        let h = ExecHarness()
        h.events(2)
        h.script("deaf.sh", "#!/bin/sh\nsleep 3061\n")
        let start = Date()
        let r = try h.run("  - exec: { name: deaf, command: ./deaf.sh, mode: stream, timeout: 1s, on_error: drop }")
        #expect(Date().timeIntervalSince(start) < 15)
        #expect(r.status == 0)
        #expect(h.output.isEmpty)
        #expect(processes(containing: "sleep 3061").isEmpty)
    }

    @Test("workers: 4 streams share the events and the output keeps input order")
    func workersKeepOrder() throws {
        let h = ExecHarness()
        h.events(2000)
        h.script("tag.sh", "#!/bin/bash\nwhile IFS= read -r line; do printf '%s\\n' \"${line/\\\"data\\\":/\\\"worker\\\":$$,\\\"data\\\":}\"; done\n")
        let r = try h.run("  - exec: { name: tag, command: ./tag.sh, mode: stream, workers: 4 }")
        #expect(r.status == 0, "\(r.stderr)")
        #expect(h.outputIDs == (1...2000).map { "e\($0)" })
        let workers = Set(
            h.output.compactMap { line -> Int? in
                ((try? JSONSerialization.jsonObject(with: Data(line.utf8))) as? [String: Any])?["worker"] as? Int
            })
        #expect(workers.count == 4)
    }

    @Test("four lingering workers are stopped together, not one after another")
    func workersStopTogether() throws {
        let h = ExecHarness()
        h.events(8)
        h.script("linger.sh", "#!/bin/bash\nwhile IFS= read -r line; do printf '%s\\n' \"$line\"; done\nsleep 100\n")
        let start = Date()
        let r = try h.run("  - exec: { name: linger, command: ./linger.sh, mode: stream, workers: 4, timeout: 1s }")
        #expect(r.status == 0)
        // Each gets 1 s to exit and 0.5 s after SIGTERM: together about 1.5 s, in turn about 6 s.
        #expect(Date().timeIntervalSince(start) < 4.5)
    }

    @Test("stream processes get the clean environment too (no per-event variables)")
    func streamEnvironment() throws {
        let h = ExecHarness()
        h.events(1)
        h.script("env.sh", "#!/bin/sh\nenv > env.txt\nexec cat\n")
        let r = try h.run(
            "  - exec: { name: senv, command: ./env.sh, mode: stream, env: { REGION: eu } }",
            environment: ["IMMUNE_WEBHOOK_SECRET": "whsec_never_passed", "LYMPH_TEST_LEAK": "1"])
        #expect(r.status == 0)
        let env = h.file("env.txt")
        #expect(env.contains("LYMPH_STAGE=senv") && env.contains("LYMPH_PIPELINE=exec-test") && env.contains("REGION=eu"))
        #expect(!env.contains("LYMPH_EVENT_ID") && !env.contains("whsec_never_passed") && !env.contains("LYMPH_TEST_LEAK"))
    }

    @Test("end of input closes stdin; a plugin that does not exit is stopped, children included")
    func shutdown() throws {
        let h = ExecHarness()
        h.events(3)
        h.script(
            "stubborn.sh", "#!/bin/bash\nsleep 3071 &\nwhile IFS= read -r line; do printf '%s\\n' \"$line\"; done\ntrap '' TERM\nwhile :; do sleep 0.1; done\n")
        let start = Date()
        let r = try h.run("  - exec: { name: stubborn, command: ./stubborn.sh, mode: stream, timeout: 1s }")
        #expect(Date().timeIntervalSince(start) < 10)
        #expect(r.status == 0)
        #expect(h.output.count == 3)
        #expect(processes(containing: "sleep 3071").isEmpty)
        #expect(processes(containing: "stubborn.sh").isEmpty)
    }
}

@Suite("exec stage, interrupted runs", .serialized)
struct ExecInterruptTests {
    /// Waits up to `seconds` for `process` to exit (terminating it past them), then closes its
    /// stdin; when it exited.
    @discardableResult
    static func waitForExit(_ process: Process, stdin: Pipe, seconds: Double = 20) -> Date {
        let end = Date().addingTimeInterval(seconds)
        while process.isRunning && Date() < end { Thread.sleep(forTimeInterval: 0.05) }
        let exited = Date()
        if process.isRunning { process.terminate() }
        process.waitUntilExit()
        try? stdin.fileHandleForWriting.close()
        return exited
    }

    /// Starts `lymph run` on stdin with a stream plugin that leaves a child running, feeds it a
    /// few events, then signals it `signals` times.
    func interrupt(signals: Int, marker: String) throws -> (Int32, [String]) {
        let h = ExecHarness()
        h.script("kid.sh", "#!/bin/bash\nsleep \(marker) &\ntrap '' INT\nwhile IFS= read -r line; do printf '%s\\n' \"$line\"; done\nwait\n")
        let yaml = "state: memory\noutput: out.ndjson\nstages:\n  - parse\n  - exec: { name: kid, command: ./kid.sh, mode: stream, timeout: 2s }\n"
        _ = FileManager.default.createFile(atPath: h.dir + "/p.yaml", contents: Data(yaml.utf8))
        let stdin = Pipe()
        let process = try LymphBinary.launch(["run", "p.yaml", "-"], in: h.dir, stdin: stdin)
        let lines = h.events(3).joined(separator: "\n") + "\n"
        stdin.fileHandleForWriting.write(Data(lines.utf8))
        // Wait until the plugin has answered (the events are written out).
        let deadline = Date().addingTimeInterval(20)
        while LymphBinary.lines(h.dir + "/out.ndjson").count < 3 && Date() < deadline { Thread.sleep(forTimeInterval: 0.05) }
        #expect(!processes(containing: "sleep \(marker)").isEmpty, "the plugin's child should be running before the signal")
        for _ in 0..<signals {
            kill(process.processIdentifier, SIGINT)
            Thread.sleep(forTimeInterval: 0.2)
        }
        Self.waitForExit(process, stdin: stdin)
        Thread.sleep(forTimeInterval: 0.2)
        return (process.terminationStatus, processes(containing: "sleep \(marker)"))
    }

    @Test("SIGINT: the run ends, the plugin's stdin is closed and its process group is stopped")
    func oneSignal() throws {
        let (status, left) = try interrupt(signals: 1, marker: "3091")
        #expect(status == 130)
        #expect(left.isEmpty, "\(left)")
    }

    @Test("a second SIGINT exits at once and still takes the plugin processes along")
    func twoSignals() throws {
        let (status, left) = try interrupt(signals: 2, marker: "3092")
        #expect(status == 130)
        #expect(left.isEmpty, "\(left)")
    }

    @Test(
        "one SIGTERM while plugins hang: the run stops them once ExecStage.stopGrace has passed, their events and the rest in flight are plugin_cancelled dead letters, whatever on_error says, and it exits 143",
        arguments: ["event", "stream"])
    func stopGraceEndsHungPlugins(_ mode: String) throws {
        let h = ExecHarness()
        let marker = mode == "event" ? "3095" : "3096"
        h.script("hang.sh", "#!/bin/sh\nsleep \(marker)\n")
        h.events(30)
        let yaml = """
            pipeline: hang
            state: memory
            output: out.ndjson
            dead_letter: dead.ndjson
            stages:
              - parse
              - exec: { name: hang, command: ./hang.sh, mode: \(mode), timeout: 60s, on_error: drop }
            """
        _ = FileManager.default.createFile(atPath: h.dir + "/p.yaml", contents: Data(yaml.utf8))
        let stdin = Pipe()
        let process = try LymphBinary.launch(["run", "p.yaml", "events.ndjson", "--summary", "json"], in: h.dir, stdin: stdin)
        let deadline = Date().addingTimeInterval(20)
        while processes(containing: "sleep \(marker)").isEmpty && Date() < deadline { Thread.sleep(forTimeInterval: 0.05) }
        #expect(!processes(containing: "sleep \(marker)").isEmpty, "a plugin should be hanging before the signal")
        let signalled = Date()
        kill(process.processIdentifier, SIGTERM)
        let took = Self.waitForExit(process, stdin: stdin, seconds: 40).timeIntervalSince(signalled)
        #expect(process.terminationStatus == 143)
        // The grace, then the plugins' teardown: not a timeout per event.
        #expect(took >= 4.5 && took < 15, "\(took) s")
        let dead = h.deadLetters
        #expect(dead.count == 30 && dead.allSatisfy { $0.reason == "plugin_cancelled" }, "\(dead.map(\.reason))")
        #expect(dead.first?.message.contains("was stopped because the run is ending") == true)
        #expect(h.output.isEmpty)
        Thread.sleep(forTimeInterval: 0.3)
        #expect(processes(containing: "sleep \(marker)").isEmpty)
    }

    @Test("lymph killed with SIGKILL takes its event-mode plugins along (the parent-death signal); they do not run on, orphaned")
    func killedRunLeavesNoPlugin() throws {
        let h = ExecHarness()
        // `exec`: the plugin process itself hangs (what it starts in turn is out of reach; see
        // EventProcess).
        h.script("hang.sh", "#!/bin/sh\nexec sleep 3097\n")
        h.events(4)
        let yaml = "state: memory\noutput: out.ndjson\nstages:\n  - parse\n  - exec: { name: hang, command: ./hang.sh, mode: event, timeout: 60s }\n"
        _ = FileManager.default.createFile(atPath: h.dir + "/p.yaml", contents: Data(yaml.utf8))
        let stdin = Pipe()
        let process = try LymphBinary.launch(["run", "p.yaml", "events.ndjson"], in: h.dir, stdin: stdin)
        defer { for line in processes(containing: "sleep 3097") { kill(pid_t(line.prefix { $0 != ":" })!, SIGKILL) } }
        let deadline = Date().addingTimeInterval(20)
        while processes(containing: "sleep 3097").isEmpty && Date() < deadline { Thread.sleep(forTimeInterval: 0.05) }
        #expect(!processes(containing: "sleep 3097").isEmpty, "a plugin should be hanging before the kill")
        kill(process.processIdentifier, SIGKILL)
        Self.waitForExit(process, stdin: stdin)
        let gone = Date().addingTimeInterval(2)
        while !processes(containing: "sleep 3097").isEmpty && Date() < gone { Thread.sleep(forTimeInterval: 0.05) }
        #expect(processes(containing: "sleep 3097").isEmpty)
    }

    @Test("one SIGTERM while a plugin answers quickly: the batches in flight finish within the grace, no event is cancelled")
    func stopWithQuickPlugin() throws {
        let h = ExecHarness()
        h.script("quick.sh", "#!/bin/sh\ncat\n")
        let yaml = "state: memory\noutput: out.ndjson\ndead_letter: dead.ndjson\nstages:\n  - parse\n  - exec: { name: quick, command: ./quick.sh }\n"
        _ = FileManager.default.createFile(atPath: h.dir + "/p.yaml", contents: Data(yaml.utf8))
        let stdin = Pipe()
        let process = try LymphBinary.launch(["run", "p.yaml", "-"], in: h.dir, stdin: stdin)
        stdin.fileHandleForWriting.write(Data((h.events(20).joined(separator: "\n") + "\n").utf8))
        let deadline = Date().addingTimeInterval(20)
        while LymphBinary.lines(h.dir + "/out.ndjson").count < 20 && Date() < deadline { Thread.sleep(forTimeInterval: 0.05) }
        kill(process.processIdentifier, SIGTERM)
        Self.waitForExit(process, stdin: stdin)
        #expect(process.terminationStatus == 143)
        #expect(h.output.count == 20 && h.deadLetters.isEmpty)
    }

    @Test("event mode: a second SIGINT exits at once and takes the running plugin's group along")
    func twoSignalsEventMode() throws {
        let h = ExecHarness()
        h.script("slow.sh", "#!/bin/sh\ncat >/dev/null\nsleep 3094\n")
        let yaml = "state: memory\noutput: out.ndjson\nstages:\n  - parse\n  - exec: { name: slow, command: ./slow.sh, timeout: 60s, workers: 2 }\n"
        _ = FileManager.default.createFile(atPath: h.dir + "/p.yaml", contents: Data(yaml.utf8))
        let stdin = Pipe()
        let process = try LymphBinary.launch(["run", "p.yaml", "-"], in: h.dir, stdin: stdin)
        stdin.fileHandleForWriting.write(Data((h.events(2).joined(separator: "\n") + "\n").utf8))
        let deadline = Date().addingTimeInterval(20)
        while processes(containing: "sleep 3094").count < 2 && Date() < deadline { Thread.sleep(forTimeInterval: 0.05) }
        #expect(processes(containing: "sleep 3094").count == 2, "both plugins should be running before the signals")
        kill(process.processIdentifier, SIGINT)
        Thread.sleep(forTimeInterval: 0.2)
        kill(process.processIdentifier, SIGINT)
        Self.waitForExit(process, stdin: stdin)
        Thread.sleep(forTimeInterval: 0.2)
        #expect(process.terminationStatus == 130)
        let left = processes(containing: "sleep 3094")
        #expect(left.isEmpty, "\(left)")
    }
}

@Suite("exec stage, configuration")
struct ExecConfigurationTests {
    @Test("lymph check reports a missing command and one without its run bit, with the YAML position")
    func checkCommand() throws {
        let h = ExecHarness()
        FileManager.default.createFile(atPath: h.dir + "/noexec.sh", contents: Data("#!/bin/sh\ncat\n".utf8), attributes: [.posixPermissions: 0o644])
        let yaml = """
            stages:
              - parse
              - exec: { command: ./missing.sh }
              - exec:
                  command: [./noexec.sh, --flag]
              - exec: { command: no-such-program-anywhere }
              - exec: { command: "cat | grep x" }
            """
        _ = FileManager.default.createFile(atPath: h.dir + "/p.yaml", contents: Data(yaml.utf8))
        let r = try LymphBinary.run(["check", "p.yaml"], in: h.dir)
        #expect(r.status == 2)
        #expect(r.stderr.contains("p.yaml:3:"), "\(r.stderr)")
        #expect(r.stderr.contains("command './missing.sh' does not exist"))
        #expect(r.stderr.contains("p.yaml:5:"))
        #expect(r.stderr.contains("is not executable; run: chmod +x"))
        #expect(r.stderr.contains("p.yaml:6:"))
        #expect(r.stderr.contains("was not found in PATH"))
        #expect(r.stderr.contains("p.yaml:7:"))
        #expect(r.stderr.contains("no shell runs the command"))
    }

    @Test("a relative command resolves against the pipeline file's folder, which is also the working directory")
    func relativeToPipeline() throws {
        let h = ExecHarness()
        try FileManager.default.createDirectory(atPath: h.dir + "/conf/bin", withIntermediateDirectories: true)
        h.script("conf/bin/here.sh", "#!/bin/sh\npwd > where.txt\ncat\n")
        h.events(1)
        let yaml = "state: memory\noutput: out.ndjson\nstages:\n  - parse\n  - exec: { command: bin/here.sh }\n"
        FileManager.default.createFile(atPath: h.dir + "/conf/p.yaml", contents: Data(yaml.utf8))
        let r = try LymphBinary.run(["run", "conf/p.yaml", "events.ndjson"], in: h.dir)
        #expect(r.status == 0, "\(r.stderr)")
        #expect(h.file("conf/where.txt").hasSuffix("/conf\n"))
        #expect(h.output.count == 1)
    }
}
