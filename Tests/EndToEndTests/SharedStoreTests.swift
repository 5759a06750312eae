import Foundation
import Testing

/// Two pipelines an operator points at one state file: an unnamed dedup stage files its keys
/// under its key path, so the second pipeline would find every event of the first a duplicate.
@Suite("pipelines sharing a SQLite store, end to end")
struct SharedStoreTests {
    static func pipeline(_ name: String, dedup: String = "  - dedup:\n      key: id\n", log: String) -> String {
        "pipeline: \(name)\nstate: shared.sqlite\noutput: \(name).out.ndjson\ndead_letter: \(name).dead.ndjson\nstages:\n  - parse\n\(dedup)  - log:\n      path: \(log)\n"
    }

    @Test(
        "the second pipeline's unnamed dedup stage is refused, exit 2, naming both pipelines; named, it keeps keys of its own; one pipeline keeps its keys across runs"
    )
    func unnamedScopeBelongsToOnePipeline() throws {
        let dir = LymphBinary.workDirectory()
        defer { try? FileManager.default.removeItem(atPath: dir) }
        let sample = try LymphBinary.run(["sample", "--count", "20", "--seed", "3"], in: dir)
        FileManager.default.createFile(atPath: dir + "/events.ndjson", contents: Data(sample.stdout.utf8))
        try Self.pipeline("audit", log: "audit.log").write(toFile: dir + "/audit.yaml", atomically: true, encoding: .utf8)
        try Self.pipeline("tickets", log: "tickets.log").write(toFile: dir + "/tickets.yaml", atomically: true, encoding: .utf8)

        let audit = try LymphBinary.run(["run", "audit.yaml", "events.ndjson", "--summary", "text"], in: dir)
        #expect(audit.status == 0, "\(audit.stderr)")
        #expect(LymphBinary.lines(dir + "/audit.out.ndjson").count == 20)

        let refused = try LymphBinary.run(["run", "tickets.yaml", "events.ndjson", "--summary", "text"], in: dir)
        #expect(refused.status == 2, "\(refused.stderr)")
        #expect(refused.stderr.contains("stage 'dedup-2'"), "\(refused.stderr)")
        #expect(refused.stderr.contains("dedup keys under 'dedup:id' belong to pipeline 'audit'"), "\(refused.stderr)")
        #expect(LymphBinary.lines(dir + "/tickets.out.ndjson").isEmpty)

        try Self.pipeline("tickets", dedup: "  - dedup:\n      name: tickets-dedup\n      key: id\n", log: "tickets.log").write(
            toFile: dir + "/tickets.yaml", atomically: true, encoding: .utf8)
        let named = try LymphBinary.run(["run", "tickets.yaml", "events.ndjson", "--summary", "text"], in: dir)
        #expect(named.status == 0, "\(named.stderr)")
        #expect(LymphBinary.lines(dir + "/tickets.out.ndjson").count == 20)

        let again = try LymphBinary.run(["run", "audit.yaml", "events.ndjson", "--summary", "text"], in: dir)
        #expect(again.status == 0, "\(again.stderr)")
        #expect(again.stderr.contains("20 duplicates"), "\(again.stderr)")

        // A refused pipeline claims none of its scopes, not even those before the one refused.
        let two = "  - dedup:\n      key: data.equipment_id\n  - dedup:\n      key: id\n"
        try Self.pipeline("sensors", dedup: two, log: "sensors.log").write(toFile: dir + "/sensors.yaml", atomically: true, encoding: .utf8)
        let partly = try LymphBinary.run(["run", "sensors.yaml", "events.ndjson", "--summary", "none"], in: dir)
        #expect(partly.status == 2 && partly.stderr.contains("stage 'dedup-3'"), "\(partly.stderr)")
        try Self.pipeline("fleet", dedup: "  - dedup:\n      key: data.equipment_id\n", log: "fleet.log").write(
            toFile: dir + "/fleet.yaml", atomically: true, encoding: .utf8)
        let free = try LymphBinary.run(["run", "fleet.yaml", "events.ndjson", "--summary", "none"], in: dir)
        #expect(free.status == 0, "\(free.stderr)")

        // Renamed, a pipeline keeps its keys by naming the stage as the scope the message gives.
        try Self.pipeline("audit-renamed", dedup: "  - dedup:\n      name: dedup:id\n      key: id\n", log: "audit.log").write(
            toFile: dir + "/renamed.yaml", atomically: true, encoding: .utf8)
        let renamed = try LymphBinary.run(["run", "renamed.yaml", "events.ndjson", "--summary", "text"], in: dir)
        #expect(renamed.status == 0, "\(renamed.stderr)")
        #expect(renamed.stderr.contains("20 duplicates"), "\(renamed.stderr)")
    }

    @Test("a store deleted while a run uses it stops the run at its next commit, exit 3, saying so: its work would be committed where no later run looks")
    func storeDeletedWhileRunning() throws {
        let dir = LymphBinary.workDirectory()
        defer { try? FileManager.default.removeItem(atPath: dir) }
        try "pipeline: gone\nstate: gone.sqlite\noutput: out.ndjson\ndead_letter: dead.ndjson\nstages:\n  - parse\n  - dedup\n".write(
            toFile: dir + "/p.yaml", atomically: true, encoding: .utf8)
        func event(_ id: String) -> Data { Data((#"{"id":"\#(id)","type":"t","created_at":"2026-06-01T00:00:00Z","data":{}}"# + "\n").utf8) }
        let input = Pipe(), err = Pipe()
        let process = try LymphBinary.launch(["run", "p.yaml", "--summary", "none"], in: dir, stdin: input, stderr: err)
        input.fileHandleForWriting.write(event("e1"))
        let deadline = Date().addingTimeInterval(30)
        while LymphBinary.lines(dir + "/out.ndjson").isEmpty && Date() < deadline { Thread.sleep(forTimeInterval: 0.05) }
        for suffix in ["", "-wal", "-shm"] { try? FileManager.default.removeItem(atPath: dir + "/gone.sqlite" + suffix) }
        input.fileHandleForWriting.write(event("e2"))
        try input.fileHandleForWriting.close()
        process.waitUntilExit()
        let stderr = String(decoding: err.fileHandleForReading.readDataToEndOfFile(), as: UTF8.self)
        #expect(process.terminationStatus == 3, "\(stderr)")
        #expect(stderr.contains("store 'gone.sqlite': was deleted or replaced while this process used it"), "\(stderr)")
    }

    @Test("a dead letter replayed after the sender's retry of its event did the work is a duplicate: the notification goes out once")
    func replayAfterRetry() throws {
        let dir = LymphBinary.workDirectory()
        defer { try? FileManager.default.removeItem(atPath: dir) }
        try "#!/bin/sh\nread line\n[ -e down ] && exit 75\necho \"$LYMPH_EVENT_ID\" >> notified.txt\n".write(
            toFile: dir + "/notify.sh", atomically: true, encoding: .utf8)
        chmod(dir + "/notify.sh", 0o755)
        try
            "pipeline: notif\nstate: n.sqlite\noutput: out.ndjson\ndead_letter: dead.ndjson\nstages:\n  - parse\n  - dedup\n  - exec: { name: notify, command: ./notify.sh, output: ignore }\n"
            .write(toFile: dir + "/p.yaml", atomically: true, encoding: .utf8)
        let event = #"{"id":"evt_seq","type":"alert.triggered","created_at":"2026-06-01T00:00:00Z","data":{}}"# + "\n"
        FileManager.default.createFile(atPath: dir + "/down", contents: Data())
        let failed = try LymphBinary.run(["run", "p.yaml", "-", "--summary", "none"], in: dir, stdin: Data(event.utf8))
        #expect(failed.status == 1, "\(failed.stderr)")
        try FileManager.default.removeItem(atPath: dir + "/down")
        let retry = try LymphBinary.run(["run", "p.yaml", "-", "--summary", "none"], in: dir, stdin: Data(event.utf8))
        #expect(retry.status == 0, "\(retry.stderr)")
        let replay = try LymphBinary.run(["replay", "p.yaml", "--summary", "text"], in: dir)
        #expect(replay.status == 0, "\(replay.stderr)")
        #expect(replay.stderr.contains("1 duplicates"), "\(replay.stderr)")
        #expect(LymphBinary.lines(dir + "/notified.txt") == ["evt_seq"])
        #expect(LymphBinary.lines(dir + "/out.ndjson").count == 1)
    }

    @Test(
        "two pipelines with stores of their own writing one dead-letter file and one log: a restart of one never cuts the other's lines, whether the other ended or still holds the file"
    )
    func sharedFilesNotCut() throws {
        let dir = LymphBinary.workDirectory()
        defer { try? FileManager.default.removeItem(atPath: dir) }
        for name in ["a", "b"] {
            try
                "pipeline: \(name)\nstate: \(name).sqlite\noutput: \(name).out.ndjson\ndead_letter: shared.dead.ndjson\nstages:\n  - parse\n  - dedup\n  - log: {path: shared.log}\n"
                .write(toFile: dir + "/\(name).yaml", atomically: true, encoding: .utf8)
        }
        func input(_ id: String) -> Data {
            Data((#"{"id":"\#(id)","type":"t","created_at":"2026-06-01T00:00:00Z","data":{}}"# + "\nnot json \(id)\n").utf8)
        }
        // A, then B, each to its end; then A again.
        #expect(try LymphBinary.run(["run", "a.yaml", "-", "--summary", "none"], in: dir, stdin: input("a1")).status == 1)
        #expect(try LymphBinary.run(["run", "b.yaml", "-", "--summary", "none"], in: dir, stdin: input("b1")).status == 1)
        let again = try LymphBinary.run(["run", "a.yaml", "-", "--summary", "none"], in: dir, stdin: Data())
        #expect(again.status == 0, "\(again.stderr)")
        #expect(again.stderr.contains("no process of this store wrote"), "\(again.stderr)")
        #expect(LymphBinary.lines(dir + "/shared.dead.ndjson").count == 2)
        #expect(LymphBinary.lines(dir + "/shared.log").count == 2)

        // A is killed after writing; B writes while it still holds the file; A starts again. (A
        // dead-letter file of their own, which neither has seen shared yet.)
        let second = ["--dead-letter", "second.dead.ndjson", "--summary", "none"]
        let aInput = Pipe()
        let a = try LymphBinary.launch(["run", "a.yaml", "-"] + second, in: dir, stdin: aInput)
        aInput.fileHandleForWriting.write(input("a2"))
        var deadline = Date().addingTimeInterval(20)
        while LymphBinary.lines(dir + "/second.dead.ndjson").count < 1 && Date() < deadline { Thread.sleep(forTimeInterval: 0.05) }
        kill(a.processIdentifier, SIGKILL)
        a.waitUntilExit()
        let bInput = Pipe()
        let b = try LymphBinary.launch(["run", "b.yaml", "-"] + second, in: dir, stdin: bInput)
        bInput.fileHandleForWriting.write(input("b2"))
        deadline = Date().addingTimeInterval(20)
        while LymphBinary.lines(dir + "/second.dead.ndjson").count < 2 && Date() < deadline { Thread.sleep(forTimeInterval: 0.05) }
        let restarted = try LymphBinary.run(["run", "a.yaml", "-"] + second, in: dir, stdin: Data())
        try bInput.fileHandleForWriting.close()
        b.waitUntilExit()
        #expect(restarted.stderr.contains("no process of this store wrote"), "\(restarted.stderr)")
        let letters = LymphBinary.lines(dir + "/second.dead.ndjson")
        #expect(letters.contains { $0.contains("not json b2") }, "\(letters)")
    }
}
