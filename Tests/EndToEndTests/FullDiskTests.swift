import Foundation
import Testing

/// A full disk degrades `lymph serve` instead of stopping it: 503 with Retry-After while the
/// spool cannot be written, /healthz says why, the worker waits, and all resumes by itself.
/// Needs root, to mount a small tmpfs for the state, spool and log.
@Suite("lymph serve on a full disk, end to end", .serialized)
struct FullDiskTests {
    static func sh(_ command: String) -> Int32 {
        let p = Process()
        p.executableURL = URL(fileURLWithPath: "/bin/sh")
        p.arguments = ["-c", command]
        p.standardOutput = FileHandle.nullDevice
        p.standardError = FileHandle.nullDevice
        do { try p.run() } catch { return -1 }
        p.waitUntilExit()
        return p.terminationStatus
    }

    @Test(
        "503 with Retry-After and an unhealthy /healthz while full; no exit; everything accepted is processed once space returns",
        .enabled(if: getuid() == 0, "mounting a tmpfs needs root"))
    func fullDisk() throws {
        let h = ServeHarness(
            pipeline: """
                pipeline: full
                state: disk/.lymph/serve.sqlite
                output: none
                dead_letter: disk/dead.ndjson
                stages:
                  - parse
                  - verify: { secrets: [env:IMMUNE_WEBHOOK_SECRET] }
                  - dedup
                  - log: { path: disk/processed.log, format: text, template: "{id}" }
                """)
        let disk = h.dir + "/disk"
        try FileManager.default.createDirectory(atPath: disk, withIntermediateDirectories: true)
        guard Self.sh("mount -t tmpfs -o size=12m tmpfs '\(disk)'") == 0 else {
            Issue.record("could not mount a tmpfs at \(disk)")
            return
        }
        defer { _ = Self.sh("umount -l '\(disk)'") }
        try h.start()
        defer { h.stop(SIGKILL) }
        var accepted = Set<String>()
        func post(_ id: String) throws -> HTTPReply {
            let r = try h.post(ServeHarness.event(id))
            if r.status == 202 { accepted.insert(id) }
            return r
        }
        for n in 1...20 { #expect(try post("before\(n)").status == 202) }
        try h.waitForDrain()

        // Fill the disk, then keep posting until the spool cannot take more.
        _ = Self.sh("dd if=/dev/zero of='\(disk)/filler' bs=64k")
        var refused: HTTPReply?
        for n in 1...3000 {
            let r = try post("during\(n)")
            if r.status == 503 { refused = r; break }
            #expect(r.status == 202)
        }
        let full = try #require(refused, "the spool never refused a webhook on a full disk")
        #expect(full.headers["retry-after"] != nil, "\(full.headers)")
        #expect(full.body.contains("store_unavailable"))
        let health = try h.get("/healthz")
        #expect(health.status == 503)
        #expect(health.body.contains("No space left on device") || health.body.contains("disk is full"), "\(health.body)")
        Thread.sleep(forTimeInterval: 3)
        #expect(h.process?.isRunning == true, "lymph serve stopped on a full disk: \(h.stderrText.get())")

        // Space returns: everything resumes with no restart.
        try FileManager.default.removeItem(atPath: disk + "/filler")
        let deadline = Date().addingTimeInterval(30)
        var healthy = false
        while Date() < deadline {
            if let r = try? h.get("/healthz"), r.status == 200 { healthy = true; break }
            Thread.sleep(forTimeInterval: 0.2)
        }
        #expect(healthy, "/healthz did not recover: \((try? h.get("/healthz").body) ?? "")")
        for n in 1...20 { #expect(try post("after\(n)").status == 202) }
        try h.waitForDrain()
        #expect(h.stop() == 0)
        let processed = LymphBinary.lines(disk + "/processed.log")
        #expect(Set(processed) == accepted, "accepted \(accepted.count), processed \(processed.count) (\(Set(processed).count) distinct)")

        #expect(processed.allSatisfy { !$0.isEmpty && $0.allSatisfy { $0.isLetter || $0.isNumber } }, "a torn line in the log")
    }

    @Test(
        "the worker waiting for space on its log's disk says so in the log, and again when it goes on; webhooks are still accepted meanwhile",
        .enabled(if: getuid() == 0, "mounting a tmpfs needs root"))
    func workerWaitIsLogged() throws {
        let h = ServeHarness(
            pipeline: """
                pipeline: full-log
                state: .lymph/serve.sqlite
                output: none
                stages:
                  - parse
                  - verify: { secrets: [env:IMMUNE_WEBHOOK_SECRET] }
                  - log: { path: logdisk/processed.log, format: text, template: "{id}" }
                """)
        let disk = h.dir + "/logdisk"
        try FileManager.default.createDirectory(atPath: disk, withIntermediateDirectories: true)
        guard Self.sh("mount -t tmpfs -o size=1m tmpfs '\(disk)'") == 0 else {
            Issue.record("could not mount a tmpfs at \(disk)")
            return
        }
        defer { _ = Self.sh("umount -l '\(disk)'") }
        try h.start()
        defer { h.stop(SIGKILL) }
        _ = Self.sh("dd if=/dev/zero of='\(disk)/filler' bs=64k")
        for n in 1...3 { #expect(try h.post(ServeHarness.event("w\(n)")).status == 202) }
        let waits = Date().addingTimeInterval(10)
        while !h.stderrText.get().contains("the worker waits: ") && Date() < waits { Thread.sleep(forTimeInterval: 0.1) }
        #expect(h.stderrText.get().contains("the worker waits: output 'logdisk/processed.log': No space left on device"), "\(h.stderrText.get())")
        try FileManager.default.removeItem(atPath: disk + "/filler")
        try h.waitForDrain()
        #expect(h.stderrText.get().contains("the worker's write went through after waiting: it goes on"), "\(h.stderrText.get())")
        #expect(LymphBinary.lines(disk + "/processed.log") == ["w1", "w2", "w3"])
    }

    @Test(
        "a store that cannot be opened on a full disk says the disk is full, whatever SQLite's own words (lymph run and lymph serve)",
        .enabled(if: getuid() == 0, "mounting a tmpfs needs root"))
    func fullAtStart() throws {
        let dir = LymphBinary.workDirectory()
        let disk = dir + "/disk"
        try FileManager.default.createDirectory(atPath: disk, withIntermediateDirectories: true)
        guard Self.sh("mount -t tmpfs -o size=1m tmpfs '\(disk)'") == 0 else {
            Issue.record("could not mount a tmpfs at \(disk)")
            return
        }
        defer { _ = Self.sh("umount -l '\(disk)'") }
        _ = Self.sh("dd if=/dev/zero of='\(disk)/filler' bs=64k")
        try "pipeline: f\nstate: disk/s.sqlite\noutput: none\nstages:\n  - parse\n  - verify: { secrets: [env:IMMUNE_WEBHOOK_SECRET] }\n  - dedup\n"
            .write(toFile: dir + "/f.yaml", atomically: true, encoding: .utf8)
        try "".write(toFile: dir + "/e.ndjson", atomically: true, encoding: .utf8)
        let environment = ["IMMUNE_WEBHOOK_SECRET": ServeHarness.secret]
        for arguments in [["run", "f.yaml", "e.ndjson"], ["serve", "f.yaml", "--listen", "127.0.0.1:0"]] {
            let r = try LymphBinary.run(arguments, in: dir, environment: environment, timeout: 30)
            #expect(r.status == 3, "\(arguments): \(r.stderr)")
            #expect(r.stderr.contains("(the disk holding it is full: free some space)"), "\(arguments): \(r.stderr)")
        }
    }
}
