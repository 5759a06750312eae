import Foundation
import Testing

/// lymph sample's --start and --sign go through the library's Timestamp and SecretReference.
@Suite("lymph sample's options")
struct SampleCommandTests {
    func firstCreatedAt(_ start: String) throws -> String? {
        let r = try LymphBinary.run(["sample", "--count", "1", "--start", start], in: LymphBinary.workDirectory())
        #expect(r.status == 0, "\(r.stderr)")
        let object = try JSONSerialization.jsonObject(with: Data(r.stdout.utf8)) as? [String: Any]
        return object?["created_at"] as? String
    }

    @Test("--start takes RFC 3339 with an offset and writes UTC; the same instant gives the same bytes")
    func start() throws {
        let utc = try #require(try firstCreatedAt("2026-06-01T00:00:00Z"))
        #expect(try firstCreatedAt("2026-06-01T02:00:00+02:00") == utc)
        #expect(utc.hasPrefix("2026-06-01T") && utc.hasSuffix("Z"))
    }

    @Test("--start that is not RFC 3339 is a usage error", arguments: ["2026-06-01", "2026-02-30T00:00:00Z", "yesterday"])
    func badStart(_ start: String) throws {
        let r = try LymphBinary.run(["sample", "--count", "1", "--start", start], in: LymphBinary.workDirectory())
        #expect(r.status == 2)
        #expect(r.stderr.contains("--start must be an RFC 3339 time"), "\(r.stderr)")
    }

    @Test("--sign reads env: and file: references like a pipeline's secrets, naming the reference, never the value")
    func sign() throws {
        let dir = LymphBinary.workDirectory()
        try "s3cret\n".write(toFile: dir + "/secret", atomically: true, encoding: .utf8)
        let fromFile = try LymphBinary.run(["sample", "--count", "3", "--sign", "file:secret"], in: dir)
        let fromEnv = try LymphBinary.run(["sample", "--count", "3", "--sign", "env:S"], in: dir, environment: ["S": "s3cret"])
        #expect(fromFile.status == 0 && fromFile.stdout == fromEnv.stdout, "\(fromFile.stderr)")
        #expect(fromFile.stdout.contains(#""x-immune-signature""#))

        let missing = try LymphBinary.run(["sample", "--sign", "env:NOPE_NOT_SET"], in: dir)
        #expect(missing.status == 2)
        #expect(missing.stderr.contains("environment variable NOPE_NOT_SET is not set"), "\(missing.stderr)")
        let blank = try LymphBinary.run(["sample", "--sign", "env:S"], in: dir, environment: ["S": "  "])
        #expect(blank.status == 2 && blank.stderr.contains("is blank") && !blank.stderr.contains("  \n"), "\(blank.stderr)")
        let literal = try LymphBinary.run(["sample", "--sign", "hunter2"], in: dir)
        #expect(literal.status == 2 && !literal.stderr.contains("hunter2"), "\(literal.stderr)")
    }
}

/// lymph send takes signals through the same SignalTrap as run and serve.
@Suite("lymph send and signals")
struct SendSignalTests {
    @Test("SIGINT stops reading: the summary is printed and the exit status is 130")
    func interrupt() throws {
        let dir = LymphBinary.workDirectory()
        let input = Pipe()
        let stderr = Pipe()
        let process = try LymphBinary.launch(["send", "http://127.0.0.1:9/webhooks", "--retries", "0"], in: dir, stdin: input, stderr: stderr)
        // Nothing arrives on stdin: lymph send waits for input, then takes the signal.
        Thread.sleep(forTimeInterval: 1)
        process.interrupt()
        let deadline = Date().addingTimeInterval(20)
        while process.isRunning && Date() < deadline { Thread.sleep(forTimeInterval: 0.05) }
        #expect(!process.isRunning)
        if process.isRunning { process.terminate() }
        let text = String(decoding: stderr.fileHandleForReading.readDataToEndOfFile(), as: UTF8.self)
        #expect(process.terminationStatus == 130, "\(text)")
        #expect(text.contains("lymph send: sent 0"), "\(text)")
        #expect(text.contains("lymph send: stopped by SIGINT: the rest of the input was not sent"), "\(text)")
        try? input.fileHandleForWriting.close()
    }
}
