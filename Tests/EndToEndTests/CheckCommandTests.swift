import Foundation
import Lymph
import Testing

@Suite("lymph check, end to end")
struct CheckCommandTests {
    @Test("every example pipeline checks clean and lists its stages", arguments: ["quickstart", "verified", "maintenance"])
    func examples(_ name: String) throws {
        let r = try LymphBinary.run(
            ["check", LymphBinary.repo("pipelines/\(name).yaml")], in: LymphBinary.workDirectory(),
            environment: ["IMMUNE_WEBHOOK_SECRET": "x"])
        #expect(r.status == 0, "\(r.stderr)")
        #expect(r.stdout.contains("pipeline '\(name)' is valid"))
        #expect(r.stdout.contains(" 1. parse"))
        if name == "quickstart" {
            // Plain events, no signatures, no serve: section: a note says what that means for serve.
            #expect(r.stderr == "\(LymphBinary.repo("pipelines/quickstart.yaml")):1:1: note: \(PipelineSpec.unsignedWarning)\n")
        } else {
            #expect(r.stderr.isEmpty)
        }
    }

    @Test("a NUL in a command word or an env value is refused: a program would get another word than the one written")
    func nulInCommand() throws {
        let dir = LymphBinary.workDirectory()
        try #"""
        pipeline: nul
        state: memory
        stages:
          - parse
          - exec: { command: ["echo", "a\u0000b"] }
          - exec: { command: echo, env: { X: "a\u0000b" } }
        """#.write(toFile: dir + "/nul.yaml", atomically: true, encoding: .utf8)
        let r = try LymphBinary.run(["check", "nul.yaml"], in: dir)
        #expect(r.status == 2)
        #expect(
            r.stderr.split(separator: "\n").map(String.init) == [
                "nul.yaml:5:22: command: word 2 holds a NUL character, which no program argument can carry",
                "nul.yaml:6:38: env.X holds a NUL character, which no environment variable can carry",
            ], "\(r.stderr)")
    }

    @Test("a broken pipeline file: every planted error with its line and column, exit 2")
    func broken() throws {
        let dir = LymphBinary.workDirectory()
        try """
        pipeline: broken
        stages:
          - parse
          - dedupe:
              key: id
          - filter:
              typse: [alert.triggered]
          - verify:
              secrets: [hunter2]
          - log:
              path: out.log
              fsync: maybe
        """.write(toFile: dir + "/broken.yaml", atomically: true, encoding: .utf8)
        let r = try LymphBinary.run(["check", "broken.yaml"], in: dir)
        #expect(r.status == 2)
        #expect(r.stdout.isEmpty)
        #expect(
            r.stderr.split(separator: "\n").map(String.init) == [
                "broken.yaml:4:5: unknown stage 'dedupe'; did you mean 'dedup'?",
                "broken.yaml:7:7: unknown key 'typse' in stage 'filter'; did you mean 'types'?",
                "broken.yaml:7:7: filter needs 'types:' and/or 'match:'",
                "broken.yaml:9:17: secrets must be references, env:NAME or file:PATH; a secret written into the pipeline file is refused (put it in an environment variable or a file)",
                "broken.yaml:12:14: fsync must be true or false, found 'maybe'",
            ])
        #expect(!r.stderr.contains("hunter2"))
        let run = try LymphBinary.run(["run", "broken.yaml"], in: dir, stdin: Data())
        #expect(run.status == 2)
    }
}
