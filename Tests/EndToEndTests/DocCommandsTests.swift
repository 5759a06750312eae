import Foundation
import TestSupport
import Testing

/// The commands the documentation tells a user to type, run with the built `lymph` on a copy
/// of the repository's example data; where a page shows their output, it must be what they print.
/// The convention (`sh run`, `sh norun: REASON`, `text output`, `# exit N`, `…`) is in
/// docs/testing.md, "Docs that run".
@Suite("Docs that run")
struct DocCommandsTests {
    static let pagesWithRunnableBlocks = DocBlocks.pages.filter { !DocBlocks.runnables(of: $0).isEmpty }

    @Test("every shell block in the docs is marked run, or norun with a reason")
    func everyShellBlockIsMarked() {
        var runnable = 0
        for page in DocBlocks.pages {
            for fence in DocBlocks.fences(in: DocBlocks.text(of: page)) where fence.isShell {
                if fence.isRunnable { runnable += 1; continue }
                #expect(
                    fence.isNotRunnable, "\(page):\(fence.line): a ```\(fence.info) block: mark it `\(fence.language) run` or `\(fence.language) norun: REASON`"
                )
                if fence.isNotRunnable {
                    #expect(!fence.notRunnableReason.isEmpty, "\(page):\(fence.line): `norun:` needs a reason after it")
                }
            }
        }
        #expect(runnable > 0, "no runnable block found: are the pages where the test looks?")
    }

    @Test("every output block comes right after a runnable block")
    func outputBlocksFollowRunnableBlocks() {
        for page in DocBlocks.pages {
            let shown = Set(DocBlocks.runnables(of: page).compactMap { $0.output?.line })
            for fence in DocBlocks.fences(in: DocBlocks.text(of: page)) where fence.isOutput {
                #expect(shown.contains(fence.line), "\(page):\(fence.line): a `text output` block that no runnable block right before it prints")
            }
        }
    }

    @Test("the output rule: … stands for any text in a line, a line of … for any lines, and nothing else differs")
    func outputRule() {
        let printed = ["quickstart: 300 read in 0.054s (5585 events/s)", "  stage  in", "  parse  300", "done"]
        #expect(DocBlocks.matches(expected: ["quickstart: 300 read in …s (… events/s)", "…", "done"], actual: printed))
        #expect(DocBlocks.matches(expected: ["quickstart: 300 read in …", "  stage  in", "  parse  300", "done", ""], actual: printed + [""]))
        #expect(DocBlocks.matches(expected: ["…", "quickstart: 300 read …", "…", "done", "…"], actual: printed))
        #expect(!DocBlocks.matches(expected: ["quickstart: 301 read in …", "…", "done"], actual: printed))
        #expect(!DocBlocks.matches(expected: ["quickstart: 300 read in …"], actual: printed), "lines past the end must be shown or elided")
        #expect(!DocBlocks.matches(expected: printed + ["more"], actual: printed))
    }

    @Test("commands: continuation lines, here-documents, # exit N and background jobs")
    func commandSplitting() {
        let fence = DocBlocks.Fence(
            info: "sh run", line: 10,
            lines: [
                "# a comment line",
                "lymph run p.yaml a.ndjson   # exit 1: some lines are dead letters",
                "lymph sample --count 3 \\",
                "  --seed 7",
                "cat > x.yaml <<'EOF'",
                "stages: [parse]",
                "EOF",
                "lymph serve p.yaml 2> serve.log &   # in the background",
                "true && echo ok",
            ])
        let commands = DocBlocks.commands(of: fence)
        #expect(commands.map(\.line) == [12, 13, 15, 18, 19])
        #expect(commands.map(\.expectedStatus) == [1, 0, 0, 0, 0])
        #expect(commands.map(\.background) == [false, false, false, true, false])
        #expect(commands[1].text == "lymph sample --count 3 \\\n  --seed 7")
        #expect(commands[2].text == "cat > x.yaml <<'EOF'\nstages: [parse]\nEOF")
    }

    @Test("the runnable commands of each page run and print what the page shows", arguments: pagesWithRunnableBlocks)
    func pageRuns(_ page: String) throws {
        let session = try DocSession(page: page)
        defer { session.remove() }
        for runnable in DocBlocks.runnables(of: page) {
            try session.run(runnable)
        }
    }
}

/// A terminal session for one page: a folder holding a copy of `pipelines/`, `plugins/` and
/// `examples/`, the built `lymph` first on `PATH`, and the variables each block exports
/// passed on to the next, so a page's blocks run in order as a user would type them.
struct DocSession {
    let page: String
    let root: String
    let work: String
    let bin: String
    /// A free loopback port standing in for 127.0.0.1:8080 (so tests can run side by side).
    let port: Int

    init(page: String) throws {
        self.page = page
        root = LymphBinary.workDirectory()
        work = root + "/work"
        bin = root + "/bin"
        let fm = FileManager.default
        try fm.createDirectory(atPath: work, withIntermediateDirectories: true)
        try fm.createDirectory(atPath: bin, withIntermediateDirectories: true)
        try fm.createSymbolicLink(atPath: bin + "/lymph", withDestinationPath: LymphBinary.path)
        port = try PostgresCluster.freePort()
        for folder in ["pipelines", "plugins", "examples"] {
            try fm.copyItem(atPath: LymphBinary.repo(folder), toPath: work + "/" + folder)
        }
        // Pipelines and their tests; not the tests' fixtures folder.
        for file in try fm.contentsOfDirectory(atPath: work + "/pipelines") where file.hasSuffix(".yaml") {
            let path = work + "/pipelines/" + file
            let text = try String(contentsOfFile: path, encoding: .utf8)
            try substitutePort(text).write(toFile: path, atomically: true, encoding: .utf8)
        }
    }

    func remove() { try? FileManager.default.removeItem(atPath: root) }

    func substitutePort(_ text: String) -> String { text.replacingOccurrences(of: "127.0.0.1:8080", with: "127.0.0.1:\(port)") }

    /// Runs one block as a bash script in its own session (process group), within its timeout,
    /// then checks each command's exit status and the output.
    func run(_ runnable: DocBlocks.Runnable) throws {
        let where_ = "\(page):\(runnable.block.line)"
        let commands = DocBlocks.commands(of: runnable.block)
        let env = root + "/env.sh", status = root + "/status", pgid = root + "/pgid", output = root + "/output", done = root + "/done"
        var script = """
            echo $$ > '\(pgid)'
            cd '\(work)'
            [ -f '\(env)' ] && . '\(env)' 2>/dev/null
            __doc_check() { [ "$1" = "$2" ] || printf '%s %s %s\\n' "$3" "$1" "$2" >> '\(status)'; return "$1"; }

            """
        for command in commands {
            script += substitutePort(command.text) + "\n"
            if !command.background { script += "__doc_check $? \(command.expectedStatus) \(command.line)\n" }
        }
        script += "export -p > '\(env)'\n: > '\(done)'\n"
        let scriptPath = root + "/block.sh"
        try script.write(toFile: scriptPath, atomically: true, encoding: .utf8)
        for file in [status, pgid, output, done] { try? FileManager.default.removeItem(atPath: file) }
        FileManager.default.createFile(atPath: output, contents: nil)
        let out = try FileHandle(forWritingTo: URL(fileURLWithPath: output))
        defer { try? out.close() }

        let process = Process()
        // -f: always a new process, which leads its own session and process group; -w: wait for it.
        process.executableURL = URL(fileURLWithPath: "/usr/bin/setsid")
        process.arguments = ["-f", "-w", "/bin/bash", scriptPath]
        var environment = ProcessInfo.processInfo.environment
        for key in ["IMMUNE_WEBHOOK_SECRET", "LYMPH_LOG_LEVEL", "TZ"] { environment.removeValue(forKey: key) }
        environment["PATH"] = bin + ":" + (environment["PATH"] ?? "/usr/bin:/bin")
        process.environment = environment
        process.standardInput = FileHandle.nullDevice
        process.standardOutput = out
        process.standardError = out
        try process.run()
        // Foundation sees the process end only once every process that inherited its descriptors
        // has, so the script's last line leaves a mark, and anything still running after it is
        // a process the block left behind.
        let deadline = Date().addingTimeInterval(runnable.block.timeout)
        while process.isRunning && !FileManager.default.fileExists(atPath: done) && Date() < deadline { usleep(20_000) }
        let finished = FileManager.default.fileExists(atPath: done)
        if finished {
            let grace = Date().addingTimeInterval(2)
            while process.isRunning && Date() < grace { usleep(20_000) }
        }
        let group = (try? String(contentsOfFile: pgid, encoding: .utf8)).flatMap { pid_t($0.trimmingCharacters(in: .whitespacesAndNewlines)) }
        if !finished && process.isRunning {
            Issue.record("\(where_): the block did not finish within \(Int(runnable.block.timeout)) s (timeout=SECONDS in its info string gives it more)")
        } else if let group, kill(-group, 0) == 0 {
            // A block stops what it starts: a server left running is a mistake in the page.
            Issue.record("\(where_): processes started by the block were still running after it ended (stop them: kill, then wait)")
        }
        if let group { kill(-group, SIGKILL) }
        process.waitUntilExit()

        let printed = String(decoding: FileManager.default.contents(atPath: output) ?? Data(), as: UTF8.self)
            .replacingOccurrences(of: "127.0.0.1:\(port)", with: "127.0.0.1:8080")
        let failures = ((try? String(contentsOfFile: status, encoding: .utf8)) ?? "").split(separator: "\n")
        for failure in failures {
            let parts = failure.split(separator: " ")
            Issue.record(
                "\(page):\(parts[0]): exited \(parts[1]), the page expects \(parts[2])\(parts[2] == "0" ? "" : " (# exit \(parts[2]))")\n--- printed by the block:\n\(printed)"
            )
        }
        if let shown = runnable.output {
            let actual = printed.split(separator: "\n", omittingEmptySubsequences: false).map(String.init)
            let matched = DocBlocks.matches(expected: shown.lines, actual: actual)
            #expect(
                matched,
                "\(page):\(shown.line): the output shown differs from what the block printed:\n--- shown:\n\(shown.lines.joined(separator: "\n"))\n--- printed:\n\(printed)"
            )
        }
    }
}
