import Foundation
import Testing

/// One state file (and spool) belongs to one process at a time.
@Suite("one process per store, end to end", .serialized)
struct SingleInstanceTests {
    @Test(
        "serve raises its soft limit of open files to what max_connections needs (within the hard limit), and warns at start when the hard limit is too low",
        arguments: [("ulimit -Sn 64", false), ("ulimit -Sn 64 && ulimit -Hn 512", true)])
    func openFileLimit(_ limits: String, _ warns: Bool) throws {
        let h = ServeHarness(pipeline: ServeCommandTests.pipeline())
        let p = Process()
        p.executableURL = URL(fileURLWithPath: "/bin/sh")
        p.arguments = ["-c", "\(limits) && exec \"$0\" serve serve.yaml --listen 127.0.0.1:0", LymphBinary.path]
        p.currentDirectoryURL = URL(fileURLWithPath: h.dir)
        var env = ProcessInfo.processInfo.environment
        env["IMMUNE_WEBHOOK_SECRET"] = ServeHarness.secret
        p.environment = env
        let err = Pipe()
        p.standardError = err
        p.standardOutput = FileHandle.nullDevice
        try p.run()
        defer {
            kill(p.processIdentifier, SIGKILL)
            p.waitUntilExit()
        }
        var text = ""
        let deadline = Date().addingTimeInterval(30)
        while !text.contains("listening on") && p.isRunning && Date() < deadline {
            text += String(decoding: err.fileHandleForReading.availableData, as: UTF8.self)
        }
        #expect(text.contains("listening on"), "\(text)")
        // The soft limit as the kernel has it for the process: Max open files SOFT HARD files.
        let row = try String(contentsOfFile: "/proc/\(p.processIdentifier)/limits", encoding: .utf8)
            .split(separator: "\n").first { $0.hasPrefix("Max open files") }
        let numbers = row.map { $0.split(separator: " ").compactMap { Int($0) } } ?? []
        #expect(numbers.count == 2, "\(row ?? "")")
        let (soft, hard) = (numbers.first ?? 0, numbers.last ?? 0)
        let needed = 1024 + 256
        #expect(soft == min(hard, needed), "soft \(soft), hard \(hard)")
        let warned = text.contains("warning: max_connections 1024 needs about \(needed) open files, and this process may open \(soft)")
        #expect(warned == (hard < needed), "\(text)")
        if warns { #expect(warned) }
    }

    @Test(
        "--path and serve.path naming the server's own routes however written, or a pattern, are refused before anything opens (a second route stopped the process)",
        arguments: ["/healthz", "/metrics/", "//healthz", "/hooks/*"])
    func ownRoutePath(_ path: String) throws {
        let h = ServeHarness(pipeline: ServeCommandTests.pipeline())
        let env = ["IMMUNE_WEBHOOK_SECRET": ServeHarness.secret]
        let flag = try LymphBinary.run(["serve", "serve.yaml", "--listen", "127.0.0.1:0", "--path", path], in: h.dir, environment: env, timeout: 30)
        #expect(flag.status == 64 || flag.status == 2, "\(flag.status) \(flag.stderr)")
        #expect(flag.stderr.contains("--path "), "\(flag.stderr)")
        #expect(!FileManager.default.fileExists(atPath: h.dir + "/.lymph/serve.sqlite"))
        try ServeCommandTests.pipeline(serve: "  path: \"\(path)\"\n").write(toFile: h.dir + "/file.yaml", atomically: true, encoding: .utf8)
        let file = try LymphBinary.run(["serve", "file.yaml", "--listen", "127.0.0.1:0"], in: h.dir, environment: env, timeout: 30)
        #expect(file.status == 2, "\(file.status) \(file.stderr)")
        #expect(file.stderr.contains("path "), "\(file.stderr)")
        let check = try LymphBinary.run(["check", "file.yaml"], in: h.dir, environment: env, timeout: 30)
        #expect(check.status != 0, "\(check.stderr)")
    }

    @Test("a second serve, a run and tickets close on a served store exit 2 at once naming the holder; reading still works")
    func secondInstance() throws {
        let h = ServeHarness(pipeline: ServeCommandTests.pipeline())
        try h.start()
        defer { h.stop() }
        #expect(try h.post(ServeHarness.event("a1")).status == 202)
        try h.waitForDrain()
        let pid = h.process.map { Int($0.processIdentifier) } ?? -1
        let env = ["IMMUNE_WEBHOOK_SECRET": ServeHarness.secret]
        let started = Date()
        let second = try LymphBinary.run(["serve", "serve.yaml", "--listen", "127.0.0.1:0"], in: h.dir, environment: env, timeout: 30)
        #expect(second.status == 2)
        #expect(second.stderr.contains("state '.lymph/serve.sqlite' is in use by another lymph process (pid \(pid))"), "\(second.stderr)")
        #expect(Date().timeIntervalSince(started) < 10)
        let run = try LymphBinary.run(["run", "serve.yaml"], in: h.dir, environment: env, stdin: Data())
        #expect(run.status == 2)
        #expect(run.stderr.contains("is in use by another lymph process"))

        let tickets = try LymphBinary.run(["tickets", "--pipeline", "serve.yaml", "--format", "json"], in: h.dir, environment: env)
        #expect(tickets.status == 0, "\(tickets.stderr)")
        #expect(tickets.stdoutLines.count == 1)
        let object = try JSONSerialization.jsonObject(with: Data(tickets.stdoutLines[0].utf8)) as? [String: Any]
        let id = try #require(object?["ticket_id"] as? String)
        let close = try LymphBinary.run(["tickets", "close", id, "--pipeline", "serve.yaml"], in: h.dir, environment: env)
        #expect(close.status == 2)
        #expect(close.stderr.contains("is in use by another lymph process"))

        // Other spellings of the same store: a symlink, the spool file, a hard link.
        try FileManager.default.createSymbolicLink(atPath: h.dir + "/link.sqlite", withDestinationPath: h.dir + "/.lymph/serve.sqlite")
        let viaLink = try LymphBinary.run(["tickets", "close", id, "--state", "link.sqlite"], in: h.dir, environment: env)
        #expect(viaLink.status == 2, "\(viaLink.stderr)")
        #expect(viaLink.stderr.contains("is in use by another lymph process"))
        let spool = try LymphBinary.run(["run", "serve.yaml", "--state", ".lymph/serve.spool.sqlite"], in: h.dir, environment: env, stdin: Data())
        #expect(spool.status == 2, "\(spool.stderr)")
        #expect(spool.stderr.contains("is in use by another lymph process"))
        try FileManager.default.linkItem(atPath: h.dir + "/.lymph/serve.sqlite", toPath: h.dir + "/hard.sqlite")
        let hard = try LymphBinary.run(["tickets", "close", id, "--state", "hard.sqlite"], in: h.dir, environment: env)
        #expect(hard.status == 2)
        #expect(hard.stderr.contains("has 2 hard links"), "\(hard.stderr)")
        try FileManager.default.removeItem(atPath: h.dir + "/hard.sqlite")

        #expect(h.stop() == 0)
        // Once the server is gone the store is free again.
        let after = try LymphBinary.run(["tickets", "close", id, "--pipeline", "serve.yaml"], in: h.dir, environment: env)
        #expect(after.status == 0, "\(after.stderr)")
    }
}
