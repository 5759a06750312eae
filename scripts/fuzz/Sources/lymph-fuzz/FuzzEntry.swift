import Foundation

/// The target named by LYMPH_FUZZ_TARGET, looked up once.
let selectedTarget: @Sendable ([UInt8]) -> Void = {
    let name = ProcessInfo.processInfo.environment["LYMPH_FUZZ_TARGET"] ?? ""
    guard let target = FuzzTargets.all[name] else {
        fatalError("set LYMPH_FUZZ_TARGET to one of: \(FuzzTargets.all.keys.sorted().joined(separator: ", "))")
    }
    return target
}()

/// libFuzzer's entry point (its own main calls it once per input).
@_cdecl("LLVMFuzzerTestOneInput")
public func lymphFuzzOneInput(_ data: UnsafePointer<UInt8>?, _ size: Int) -> CInt {
    let bytes = data.map { Array(UnsafeBufferPointer(start: $0, count: size)) } ?? []
    selectedTarget(bytes)
    return 0
}

/// The program's `main` in a plain build (no `--sanitize fuzzer`): replays inputs, see `Replay`.
///
/// This module has no main.swift and no @main, so the compiler emits no entry point. SwiftPM
/// compiles an executable module's entry point under the name `<module>_main` and links the
/// program with `main` defined as that symbol (so that tests could link the module), which makes
/// this function `main`. With `--sanitize fuzzer` SwiftPM renames nothing and links libFuzzer's
/// `main`; this function is then never called. (Were SwiftPM to stop renaming, the plain build
/// would fail to link for want of `main`: loudly, in `scripts/test`.)
@_cdecl("lymph_fuzz_main")
func lymphFuzzReplayMain(_ argc: CInt, _ argv: UnsafeMutablePointer<UnsafeMutablePointer<CChar>?>?) -> CInt {
    Replay.main(Array(CommandLine.arguments.dropFirst()))
}

/// Runs targets over inputs given as files, without libFuzzer: the check `scripts/test` makes
/// (`scripts/fuzz/run --check`) that every target still builds and keeps its promise on the
/// seeds, and a way to replay a crash input without the sanitizer build.
///
///     LYMPH_FUZZ_TARGET=yaml lymph-fuzz --replay [--timeout S] [--max-len N] [-v] PATH...
///
/// LYMPH_FUZZ_TARGET is one target, several separated by commas, or `all`. A PATH that is a
/// folder stands for the files in it (not recursive). Like libFuzzer: an input longer than
/// `--max-len` (default 65536) is cut to it, and one input running longer than `--timeout`
/// seconds (default 10) stops the run. A broken promise stops it too (fatalError, naming the
/// file); otherwise it exits 0 with one line per target.
enum Replay {
    static let usage = "usage: LYMPH_FUZZ_TARGET=NAME[,NAME...]|all lymph-fuzz --replay [--timeout S] [--max-len N] [-v] PATH..."

    /// The input being run, for `FuzzTargets.broken` and the watchdog.
    nonisolated(unsafe) static var current: String?
    static let watch = Watch()

    static func main(_ arguments: [String]) -> CInt {
        var paths: [String] = []
        var timeout = 10.0
        var maxLength = 65536
        var verbose = false
        var replay = false
        var rest = arguments[...]
        while let argument = rest.popFirst() {
            switch argument {
            case "--replay": replay = true
            case "-v", "--verbose": verbose = true
            case "--timeout":
                guard let s = rest.popFirst(), let t = Double(s), t > 0 else { return fail("--timeout needs a number of seconds") }
                timeout = t
            case "--max-len":
                guard let s = rest.popFirst(), let n = Int(s), n > 0 else { return fail("--max-len needs a whole number") }
                maxLength = n
            case "-h", "--help":
                print(usage)
                print("targets: \(FuzzTargets.all.keys.sorted().joined(separator: ", "))")
                return 0
            default:
                if argument.hasPrefix("-") { return fail("unknown option \(argument); this build has no libFuzzer, only --replay") }
                paths.append(argument)
            }
        }
        guard replay else { return fail("this build has no libFuzzer (build with --sanitize fuzzer to fuzz); to run inputs: --replay") }
        let requested = ProcessInfo.processInfo.environment["LYMPH_FUZZ_TARGET"] ?? ""
        let names = requested == "all" ? FuzzTargets.all.keys.sorted() : requested.split(separator: ",").map(String.init)
        guard !names.isEmpty else { return fail("set LYMPH_FUZZ_TARGET") }
        for name in names where FuzzTargets.all[name] == nil {
            return fail("unknown target '\(name)'; targets: \(FuzzTargets.all.keys.sorted().joined(separator: ", ")), or all")
        }
        var files: [String] = []
        for path in paths {
            var isFolder: ObjCBool = false
            guard FileManager.default.fileExists(atPath: path, isDirectory: &isFolder) else { return fail("no such file: \(path)") }
            if isFolder.boolValue {
                guard let entries = try? FileManager.default.contentsOfDirectory(atPath: path) else { return fail("cannot list \(path)") }
                for entry in entries.sorted() {
                    let file = (path as NSString).appendingPathComponent(entry)
                    var sub: ObjCBool = false
                    if FileManager.default.fileExists(atPath: file, isDirectory: &sub), !sub.boolValue { files.append(file) }
                }
            } else {
                files.append(path)
            }
        }
        guard !files.isEmpty else { return fail("no inputs given") }
        var inputs: [(file: String, bytes: [UInt8])] = []
        for file in files {
            guard let data = FileManager.default.contents(atPath: file) else { return fail("cannot read \(file)") }
            inputs.append((file, Array(data.prefix(maxLength))))
        }
        watch.start(timeout: timeout)
        for name in names {
            let target = FuzzTargets.all[name]!
            let clock = ContinuousClock()
            var slowest: (Duration, String) = (.zero, "")
            let total = clock.measure {
                for input in inputs {
                    let label = "\(name): \(input.file)"
                    if verbose { FileHandle.standardError.write(Data("\(label)\n".utf8)) }
                    current = label
                    watch.begin(label)
                    let took = clock.measure { target(input.bytes) }
                    watch.end()
                    current = nil
                    if took > slowest.0 { slowest = (took, input.file) }
                }
            }
            print(
                "\(name): \(inputs.count) inputs in \(seconds(total)) s; slowest \(milliseconds(slowest.0)) ms (\((slowest.1 as NSString).lastPathComponent))")
        }
        return 0
    }

    static func fail(_ message: String) -> CInt {
        FileHandle.standardError.write(Data("lymph-fuzz: \(message)\n\(usage)\n".utf8))
        return 2
    }

    static func seconds(_ d: Duration) -> String { String(format: "%.2f", Double(d.components.seconds) + Double(d.components.attoseconds) / 1e18) }
    static func milliseconds(_ d: Duration) -> String {
        String(format: "%.1f", (Double(d.components.seconds) + Double(d.components.attoseconds) / 1e18) * 1000)
    }

    /// Stops the process when one input runs longer than the timeout (a hang never returns to
    /// the check after the call), naming the input, as libFuzzer's -timeout does.
    final class Watch: @unchecked Sendable {
        private let lock = NSLock()
        private var running: (label: String, since: ContinuousClock.Instant)?

        func begin(_ label: String) { lock.withLock { running = (label, .now) } }
        func end() { lock.withLock { running = nil } }

        func start(timeout: Double) {
            let limit = Duration.milliseconds(Int64(timeout * 1000))
            let thread = Thread { [self] in
                while true {
                    Thread.sleep(forTimeInterval: 0.1)
                    guard let (label, since) = lock.withLock({ running }), ContinuousClock.now - since > limit else { continue }
                    FileHandle.standardError.write(Data("lymph-fuzz: timeout: \(label) has run for over \(timeout) s\n".utf8))
                    _exit(70)
                }
            }
            thread.start()
        }
    }
}
