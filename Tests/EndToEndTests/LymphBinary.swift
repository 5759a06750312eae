import Foundation
import TestSupport
import Testing

/// Runs the built `lymph` binary the way an operator would, with a time limit.
struct LymphBinary {
    struct Result {
        let status: Int32
        let stdout: String
        let stderr: String
        var stdoutLines: [String] { stdout.split(separator: "\n").map(String.init) }
        /// The `--summary json` object printed last on stderr.
        var summary: [String: Any] {
            guard let line = stderr.split(separator: "\n").last(where: { $0.hasPrefix("{") }),
                let object = try? JSONSerialization.jsonObject(with: Data(line.utf8)) as? [String: Any]
            else { return [:] }
            return object
        }
        func count(_ key: String) -> Int { summary[key] as? Int ?? -1 }
    }

    static let repository = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent()

    static let path: String = {
        if let override = ProcessInfo.processInfo.environment["LYMPH_BIN"] { return override }
        for config in ["debug", "release"] {
            let candidate = repository.appendingPathComponent(".build/\(config)/lymph").path
            if FileManager.default.isExecutableFile(atPath: candidate) { return candidate }
        }
        return repository.appendingPathComponent(".build/debug/lymph").path
    }()

    static func repo(_ relative: String) -> String { repository.appendingPathComponent(relative).path }

    /// A fresh working directory per test, so state and dead letters never leak between tests.
    static func workDirectory() -> String {
        TestScratch.directory("lymph-e2e")
    }

    @discardableResult
    static func run(
        _ arguments: [String], in directory: String, environment: [String: String] = [:], stdin: Data? = nil,
        timeout: Double = 120
    ) throws -> Result {
        let process = Process()
        process.executableURL = URL(fileURLWithPath: path)
        process.arguments = arguments
        process.currentDirectoryURL = URL(fileURLWithPath: directory)
        var env = ProcessInfo.processInfo.environment
        env.removeValue(forKey: "IMMUNE_WEBHOOK_SECRET")
        for (k, v) in environment { env[k] = v }
        process.environment = env
        let out = Pipe(), err = Pipe(), input = Pipe()
        process.standardOutput = out
        process.standardError = err
        process.standardInput = stdin == nil ? FileHandle.nullDevice : input
        try process.run()
        // Read both pipes while the process runs so neither can fill up and block it.
        let outData = Locked(Data()), errData = Locked(Data())
        let group = DispatchGroup()
        for (pipe, sink) in [(out, outData), (err, errData)] {
            group.enter()
            DispatchQueue.global().async {
                sink.set(pipe.fileHandleForReading.readDataToEndOfFile())
                group.leave()
            }
        }
        if let stdin {
            input.fileHandleForWriting.write(stdin)
            try input.fileHandleForWriting.close()
        }
        if group.wait(timeout: .now() + timeout) == .timedOut {
            process.terminate()
            Issue.record("lymph \(arguments.joined(separator: " ")) timed out after \(timeout)s")
        }
        process.waitUntilExit()
        return Result(
            status: process.terminationStatus, stdout: String(decoding: outData.get(), as: UTF8.self),
            stderr: String(decoding: errData.get(), as: UTF8.self))
    }

    /// Starts `lymph` with stdin from `stdin`, for tests that talk to a running process.
    static func launch(_ arguments: [String], in directory: String, stdin: Pipe, stderr: Pipe? = nil) throws -> Process {
        let process = Process()
        process.executableURL = URL(fileURLWithPath: path)
        process.arguments = arguments
        process.currentDirectoryURL = URL(fileURLWithPath: directory)
        process.standardInput = stdin
        process.standardError = stderr ?? FileHandle.nullDevice
        process.standardOutput = FileHandle.nullDevice
        try process.run()
        return process
    }

    /// The file's lines (invalid UTF-8 shown as U+FFFD, as Lymph's dead letters do).
    static func lines(_ path: String) -> [String] {
        guard let data = FileManager.default.contents(atPath: path) else { return [] }
        return data.split(separator: UInt8(ascii: "\n")).map { String(decoding: $0, as: UTF8.self) }
    }
}

final class Locked<T>: @unchecked Sendable {
    private var value: T
    private let lock = NSLock()
    init(_ value: T) { self.value = value }
    func set(_ v: T) { lock.lock(); value = v; lock.unlock() }
    func get() -> T { lock.lock(); defer { lock.unlock() }; return value }
    func update(_ change: (inout T) -> Void) { lock.lock(); change(&value); lock.unlock() }
}
