import Foundation
import Testing

/// A stream plugin that writes more or fewer lines than events never moves an answer onto
/// another event: mismatches fail the events concerned (`plugin_protocol`) and restart it.
@Suite("exec stream mode: answers out of step", .serialized)
struct StreamProtocolTests {
    /// Each answer records which event it was written for in `data.for`.
    static func plugin(_ body: String) -> String {
        """
        #!/usr/bin/env python3
        import json, sys
        \(body)
        n = 0
        for line in sys.stdin:
            n += 1
            e = json.loads(line)
            e["data"]["for"] = e["id"]
            out = json.dumps(e)
            write(n, out)
            sys.stdout.flush()
        """
    }

    func check(_ h: ExecHarness, events: Int) -> (out: [String], dead: [(reason: String, message: String, line: Int)]) {
        let out = h.output
        for line in out {
            let object = (try? JSONSerialization.jsonObject(with: Data(line.utf8))) as? [String: Any]
            let data = object?["data"] as? [String: Any]
            #expect(data?["for"] as? String == object?["id"] as? String, "an event carries another's answer: \(line)")
        }
        let dead = h.deadLetters
        #expect(out.count + dead.count == events, "out \(out.count) + dead \(dead.count) != in \(events)")
        #expect(Set(h.outputIDs).count == h.outputIDs.count)
        return (out, dead)
    }

    @Test("two lines per event: the extra lines are caught, never applied to the next events")
    func twoLinesPerEvent() throws {
        let h = ExecHarness()
        h.events(200)
        h.script("twice.py", Self.plugin("def write(n, out):\n    sys.stdout.write(out + '\\n' + out + '\\n')"))
        let r = try h.run("  - exec: { name: twice, command: ./twice.py, mode: stream }")
        #expect(r.status == 1)
        let (_, dead) = check(h, events: 200)
        #expect(!dead.isEmpty)
        #expect(dead.allSatisfy { $0.reason == "plugin_protocol" })
        #expect(dead.first?.message.contains("not waiting for one") == true, "\(dead.first?.message ?? "")")
    }

    @Test("an answer line past max_output that never ends fails its event as it passes the limit (plugin_output), not at the timeout")
    func endlessLine() throws {
        let h = ExecHarness()
        h.events(1)
        h.script("endless.sh", "#!/bin/bash\nread -r line\nhead -c 100000 /dev/zero | tr '\\0' a\nsleep 30\n")
        let r = try h.run("  - exec: { name: endless, command: ./endless.sh, mode: stream, max_output: 64KiB, timeout: 3s }")
        #expect(r.status == 1)
        let dead = h.deadLetters
        #expect(dead.count == 1)
        #expect(dead.first?.reason == "plugin_output", "\(dead)")
        #expect(dead.first?.message.contains("answer line is longer than 65536 bytes (max_output)") == true, "\(dead)")
    }

    @Test("a plugin that closes stdout and keeps running is stopped at once, not at the timeout, and the dead letter says why")
    func closedStdout() throws {
        let h = ExecHarness()
        h.events(1)
        h.script("mute.sh", "#!/bin/bash\nexec 1>&-\nsleep 30\n")
        let started = Date()
        let r = try h.run("  - exec: { name: mute, command: ./mute.sh, mode: stream, timeout: 20s }")
        let took = Date().timeIntervalSince(started)
        #expect(r.status == 1)
        let dead = h.deadLetters
        #expect(dead.count == 1)
        #expect(dead.first?.reason == "plugin_crash", "\(dead)")
        #expect(dead.first?.message.contains("closed its stdout while events waited for answers, and was stopped") == true, "\(dead)")
        #expect(took < 15, "the run took \(took)s")
    }

    @Test("a banner line at start: no answer shifts, nothing is lost")
    func banner() throws {
        let h = ExecHarness()
        h.events(200)
        h.script("banner.py", Self.plugin("print('tagger v1 ready', flush=True)\ndef write(n, out):\n    sys.stdout.write(out + '\\n')"))
        let r = try h.run("  - exec: { name: banner, command: ./banner.py, mode: stream }")
        let (_, dead) = check(h, events: 200)
        #expect(dead.allSatisfy { $0.reason == "plugin_protocol" })
        #expect(r.status == (dead.isEmpty ? 0 : 1))
    }

    @Test("a missing answer in the middle fails that event only; the rest keep their own answers")
    func missingAnswer() throws {
        let h = ExecHarness()
        h.events(200)
        h.script("skip.py", Self.plugin("def write(n, out):\n    if n != 57: sys.stdout.write(out + '\\n')"))
        let r = try h.run("  - exec: { name: skip, command: ./skip.py, mode: stream }")
        #expect(r.status == 1)
        let (out, dead) = check(h, events: 200)
        #expect(out.count == 199)
        #expect(dead.map(\.line) == [57])
        #expect(dead.first?.reason == "plugin_protocol")
        #expect(dead.first?.message.contains("gave no answer for this event (it answered event 'e58'") == true)
    }

    @Test("two events with one id are never in flight together: a skipped answer fails the first, the second keeps its own")
    func repeatedIDs() throws {
        let h = ExecHarness()
        try
            ([#"{"id":"a","type":"t","created_at":"2026-06-01T00:00:00Z","data":{"n":0}}"#]
            + (1...2).map { #"{"id":"x","type":"t","created_at":"2026-06-01T00:00:00Z","data":{"n":\#($0)}}"# }
            + [#"{"id":"b","type":"t","created_at":"2026-06-01T00:00:00Z","data":{"n":3}}"#]).joined(separator: "\n")
            .write(toFile: h.dir + "/events.ndjson", atomically: true, encoding: .utf8)
        h.script(
            "skipx.py",
            """
            #!/usr/bin/env python3
            import json, sys
            for line in sys.stdin:
                e = json.loads(line)
                if e["data"]["n"] == 1: continue
                e["data"]["for"] = e["data"]["n"]
                sys.stdout.write(json.dumps(e) + "\\n")
                sys.stdout.flush()
            """)
        let r = try h.run("  - exec: { name: skipx, command: ./skipx.py, mode: stream, timeout: 2s }")
        #expect(r.status == 1)
        for line in h.output {
            let object = (try? JSONSerialization.jsonObject(with: Data(line.utf8))) as? [String: Any]
            let data = object?["data"] as? [String: Any]
            #expect(data?["for"] as? Int == data?["n"] as? Int, "an event carries another's answer: \(line)")
        }
        #expect(h.output.count == 3)
        #expect(h.deadLetters.map(\.line) == [2])
    }

    @Test("an answer that names no event (null) is never applied by position")
    func unnamedAnswer() throws {
        let h = ExecHarness()
        h.events(5)
        h.script("null.sh", "#!/bin/bash\nwhile IFS= read -r line; do echo null; done\n")
        let r = try h.run("  - exec: { name: unnamed, command: ./null.sh, mode: stream }")
        #expect(r.status == 1)
        #expect(h.output.isEmpty)
        #expect(h.deadLetters.count == 5)
        #expect(h.deadLetters.allSatisfy { $0.reason == "plugin_protocol" && $0.message.contains("names no event") })
    }
}
