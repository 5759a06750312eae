import Foundation
import Lymph
import Testing

/// `lymph serve` reloads its pipeline file on SIGHUP (or, with `--watch`, when the file
/// changes) without dropping a connection or a webhook.
@Suite("lymph serve: live reload", .serialized)
struct ServeReloadTests {
    static func pipeline(secrets: String = "[env:IMMUNE_WEBHOOK_SECRET]", serve: String = "", extra: String = "") -> String {
        """
        pipeline: reload-test
        state: .lymph/serve.sqlite
        output: out.ndjson
        dead_letter: dead.ndjson
        \(serve.isEmpty ? "" : "serve:\n" + serve)
        stages:
          - parse
          - verify: { secrets: \(secrets) }
        \(extra)
        """
    }

    static func write(_ h: ServeHarness, _ yaml: String) throws {
        try Data(yaml.utf8).write(to: URL(fileURLWithPath: h.dir + "/serve.yaml"))
    }

    /// Waits until stderr holds `text` `count` times.
    static func waitFor(_ h: ServeHarness, _ text: String, count: Int = 1, timeout: Double = 15) -> Bool {
        let deadline = Date().addingTimeInterval(timeout)
        while Date() < deadline {
            if h.stderrText.get().components(separatedBy: text).count - 1 >= count { return true }
            Thread.sleep(forTimeInterval: 0.02)
        }
        return false
    }

    static func sha256(_ path: String) throws -> String {
        let r = try LymphBinaryShell.run("/usr/bin/sha256sum", [path])
        return String(r.prefix { $0 != " " })
    }

    static func healthSHA(_ h: ServeHarness) throws -> String? {
        let body = try h.get("/healthz").body
        guard let r = body.range(of: #""sha256":""#) else { return nil }
        return String(body[r.upperBound...].prefix { $0 != "\"" })
    }

    static func ids(_ h: ServeHarness) -> [String] {
        ServeCommandTests.lines(h, "out.ndjson").compactMap { line in
            guard let r = line.range(of: #""id":""#) else { return nil }
            return String(line[r.upperBound...].prefix { $0 != "\"" })
        }
    }

    static func alert(_ id: String) -> [UInt8] {
        Array(
            #"{"id":"\#(id)","type":"alert.triggered","created_at":"2026-06-01T00:00:00Z","data":{"alert_id":"a_\#(id)","equipment_id":"pump_1","severity":"high"}}"#
                .utf8)
    }

    @Test(
        "SIGHUP with a filter added: events after the swap are filtered, those before were not; /healthz shows the new file's sha256; serve settings changed wait for a restart"
    )
    func reloadAddsFilter() throws {
        let h = ServeHarness(pipeline: Self.pipeline())
        try h.start()
        defer { h.stop() }
        let pid = try #require(h.process?.processIdentifier)
        let before = try Self.healthSHA(h)
        #expect(before == (try Self.sha256(h.dir + "/serve.yaml")))
        for id in ["p1", "p2"] { #expect(try h.post(ServeHarness.event(id)).status == 202) }
        #expect(try h.post(Self.alert("a1")).status == 202)
        try h.waitForDrain()

        try Self.write(h, Self.pipeline(serve: "  max_body: 2048", extra: "  - filter: { types: [alert.triggered] }"))
        let after = try Self.sha256(h.dir + "/serve.yaml")
        kill(pid, SIGHUP)
        #expect(Self.waitFor(h, "pipeline swapped in"), "\(h.stderrText.get())")
        #expect(try Self.healthSHA(h) == after)
        #expect(h.stderrText.get().contains("serve settings (max_body) changed in serve.yaml: they apply at the next restart"), "\(h.stderrText.get())")
        for id in ["p3", "p4"] { #expect(try h.post(ServeHarness.event(id)).status == 202) }
        #expect(try h.post(Self.alert("a2")).status == 202)
        try h.waitForDrain()
        #expect(Self.ids(h) == ["p1", "p2", "a1", "a2"])
        #expect(try h.metric("lymph_pipeline_reloads_total") == 1)
        #expect(try h.metric("lymph_pipeline_reload_failures_total") == 0)
    }

    @Test("a rotated secret (file:) applies to the next request once SIGHUP is handled: the old one gets 401, the new one 202")
    func reloadRotatesSecret() throws {
        let h = ServeHarness(pipeline: Self.pipeline(secrets: "[file:secret.txt]"), environment: [:])
        try Data("old-secret-1".utf8).write(to: URL(fileURLWithPath: h.dir + "/secret.txt"))
        try h.start()
        defer { h.stop() }
        let pid = try #require(h.process?.processIdentifier)
        let e1 = ServeHarness.event("r1")
        #expect(try h.post(e1, signature: ServeHarness.sign(e1, secret: "old-secret-1")).status == 202)
        try Data("new-secret-2".utf8).write(to: URL(fileURLWithPath: h.dir + "/secret.txt"))
        kill(pid, SIGHUP)
        #expect(Self.waitFor(h, "pipeline loaded"), "\(h.stderrText.get())")
        let e2 = ServeHarness.event("r2"), e3 = ServeHarness.event("r3")
        #expect(try h.post(e2, signature: ServeHarness.sign(e2, secret: "old-secret-1")).status == 401)
        #expect(try h.post(e3, signature: ServeHarness.sign(e3, secret: "new-secret-2")).status == 202)
        try h.waitForDrain()
        #expect(Self.ids(h) == ["r1", "r3"])
        #expect(!h.stderrText.get().contains("secret-"), "a secret appeared in the log")
    }

    @Test("an invalid file is refused with FILE:LINE:COLUMN in the log; the running pipeline keeps serving")
    func invalidFileKeepsOld() throws {
        let h = ServeHarness(pipeline: Self.pipeline())
        try h.start()
        defer { h.stop() }
        let pid = try #require(h.process?.processIdentifier)
        let before = try Self.healthSHA(h)
        try Self.write(h, Self.pipeline(extra: "  - filter: { typos: [alert.triggered] }"))
        kill(pid, SIGHUP)
        #expect(Self.waitFor(h, "reload refused"), "\(h.stderrText.get())")
        #expect(h.stderrText.get().contains("serve.yaml:9:15: unknown key 'typos'"), "\(h.stderrText.get())")
        // Broken YAML too.
        try Self.write(h, "stages: [\n")
        kill(pid, SIGHUP)
        #expect(Self.waitFor(h, "reload refused", count: 2), "\(h.stderrText.get())")
        #expect(try Self.healthSHA(h) == before)
        #expect(try h.post(ServeHarness.event("k1")).status == 202)
        try h.waitForDrain()
        #expect(Self.ids(h) == ["k1"])
        #expect(try h.metric("lymph_pipeline_reload_failures_total") == 2)
        #expect(try h.metric("lymph_pipeline_reloads_total") == 0)
        #expect(h.process?.isRunning == true)
    }

    @Test("a reload whose secret cannot be read is refused with the FILE:LINE:COLUMN that names it, as at start")
    func missingSecretPlace() throws {
        let h = ServeHarness(pipeline: Self.pipeline())
        try h.start()
        defer { h.stop() }
        let pid = try #require(h.process?.processIdentifier)
        try Self.write(h, Self.pipeline(secrets: "[env:LYMPH_RELOAD_TEST_MISSING]"))
        kill(pid, SIGHUP)
        #expect(Self.waitFor(h, "reload refused"), "\(h.stderrText.get())")
        #expect(h.stderrText.get().contains("serve.yaml:8:5: secret env:LYMPH_RELOAD_TEST_MISSING"), "\(h.stderrText.get())")
        #expect(try h.post(ServeHarness.event("m1")).status == 202)
        #expect(h.process?.isRunning == true)
    }

    @Test("a reload while a plugin works past the 5 s stop grace lets it finish: no plugin_cancelled dead letter, the event goes through")
    func reloadWaitsForBusyPlugin() throws {
        let stage = "  - exec: { name: hold, command: ./hold.sh, timeout: 60s }"
        let h = ServeHarness(pipeline: Self.pipeline(extra: stage))
        _ = FileManager.default.createFile(
            atPath: h.dir + "/hold.sh", contents: Data("#!/bin/bash\ne=$(cat)\nsleep 7\nprintf '%s\\n' \"$e\"\n".utf8),
            attributes: [.posixPermissions: 0o755])
        try h.start()
        defer { h.stop() }
        let pid = try #require(h.process?.processIdentifier)
        #expect(try h.post(ServeHarness.event("b1")).status == 202)
        Thread.sleep(forTimeInterval: 0.5)
        try Self.write(h, Self.pipeline(extra: stage + "\n  - filter: { types: [prediction.created] }"))
        kill(pid, SIGHUP)
        #expect(Self.waitFor(h, "pipeline swapped in", timeout: 30), "\(h.stderrText.get())")
        try h.waitForDrain()
        #expect(Self.ids(h) == ["b1"])
        #expect(LymphBinary.lines(h.dir + "/dead.ndjson").isEmpty, "\(LymphBinary.lines(h.dir + "/dead.ndjson"))")
    }

    @Test("--watch reloads when the file is saved")
    func watchReloads() throws {
        let h = ServeHarness(pipeline: Self.pipeline())
        try h.start(arguments: ["--watch"])
        defer { h.stop() }
        Thread.sleep(forTimeInterval: 1.2)
        try Self.write(h, Self.pipeline(extra: "  - filter: { types: [alert.triggered] }"))
        #expect(Self.waitFor(h, "trigger=watch"), "\(h.stderrText.get())")
        #expect(Self.waitFor(h, "pipeline swapped in"), "\(h.stderrText.get())")
        #expect(try h.post(ServeHarness.event("w1")).status == 202)
        #expect(try h.post(Self.alert("w2")).status == 202)
        try h.waitForDrain()
        #expect(Self.ids(h) == ["w2"])
    }

    @Test("SIGHUP again and again while lymph send sends 3,000 webhooks: every 202 is processed once")
    func reloadUnderLoad() throws {
        let h = ServeHarness(pipeline: Self.pipeline())
        try h.start()
        defer { h.stop() }
        let pid = try #require(h.process?.processIdentifier)
        let sample = try LymphBinary.run(["sample", "--count", "3000", "--seed", "41"], in: h.dir)
        try Data(sample.stdout.utf8).write(to: URL(fileURLWithPath: h.dir + "/events.ndjson"))
        let sender = Process()
        sender.executableURL = URL(fileURLWithPath: LymphBinary.path)
        sender.arguments = ["send", "http://127.0.0.1:\(h.port)/webhooks", "events.ndjson", "--secret", "env:IMMUNE_WEBHOOK_SECRET", "--concurrency", "16"]
        sender.currentDirectoryURL = URL(fileURLWithPath: h.dir)
        var env = ProcessInfo.processInfo.environment
        env["IMMUNE_WEBHOOK_SECRET"] = ServeHarness.secret
        sender.environment = env
        let err = Pipe()
        sender.standardError = err
        sender.standardOutput = FileHandle.nullDevice
        try sender.run()
        // Two valid variants in turn (a log stage in or out), a reload every 150 ms.
        var reloads = 0
        while sender.isRunning && reloads < 40 {
            reloads += 1
            try Self.write(h, Self.pipeline(extra: reloads % 2 == 1 ? "  - log: { path: seen.log, format: text, template: \"{id}\" }" : ""))
            kill(pid, SIGHUP)
            Thread.sleep(forTimeInterval: 0.15)
        }
        let summary = String(decoding: err.fileHandleForReading.readDataToEndOfFile(), as: UTF8.self)
        sender.waitUntilExit()
        #expect(sender.terminationStatus == 0, "\(summary)")
        #expect(summary.contains("status 202: 3000"), "\(summary)")
        try h.waitForDrain(timeout: 60)
        let ids = Self.ids(h)
        #expect(ids.count == 3000)
        #expect(Set(ids).count == 3000)
        #expect(reloads >= 3)
        #expect(Self.waitFor(h, "pipeline swapped in", count: 2))
        #expect(h.stop() == 0)
    }
}

/// Runs a system command and returns its stdout.
enum LymphBinaryShell {
    static func run(_ path: String, _ arguments: [String]) throws -> String {
        let p = Process()
        p.executableURL = URL(fileURLWithPath: path)
        p.arguments = arguments
        let out = Pipe()
        p.standardOutput = out
        try p.run()
        let data = out.fileHandleForReading.readDataToEndOfFile()
        p.waitUntilExit()
        return String(decoding: data, as: UTF8.self)
    }
}
