// bench-spawn-floor MODE SCRIPT COUNT WORKERS
//
// Starts SCRIPT COUNT times, WORKERS at once, each run waited for before the worker starts the
// next, and prints {"mode", "workers", "events", "seconds"} as one JSON line. No stdin, stdout
// and stderr to /dev/null, a small clean environment, its own process group: the least a
// per-event plugin start can cost. MODE:
//   subprocess   swift-subprocess 1.0.2's run(), the library lymph uses
//   posix_spawn  posix_spawn(3) called directly, the child waited for with waitpid(2) on a
//                thread of a dispatch queue
import Dispatch
import Foundation
import Subprocess
import SystemPackage

let arguments = CommandLine.arguments
guard arguments.count == 5, let count = Int(arguments[3]), let workers = Int(arguments[4]), workers > 0 else {
    FileHandle.standardError.write(Data("usage: bench-spawn-floor subprocess|posix_spawn SCRIPT COUNT WORKERS\n".utf8))
    exit(2)
}
let mode = arguments[1]
let script = arguments[2]
let environment = ["PATH=/usr/local/bin:/usr/bin:/bin", "LANG=C.UTF-8"]
let waitQueue = DispatchQueue(label: "bench.wait", attributes: .concurrent)

func viaSubprocess() async throws {
    var options = PlatformOptions()
    options.processGroupID = 0
    let env = environment.map { Array($0.utf8) }
    _ = try await Subprocess.run(
        .path(FilePath(script)), environment: .custom(env), platformOptions: options,
        input: .none, output: .discarded, error: .discarded)
}

func viaPosixSpawn() async {
    var actions = posix_spawn_file_actions_t()
    posix_spawn_file_actions_init(&actions)
    defer { posix_spawn_file_actions_destroy(&actions) }
    posix_spawn_file_actions_addopen(&actions, 0, "/dev/null", O_RDONLY, 0)
    posix_spawn_file_actions_addopen(&actions, 1, "/dev/null", O_WRONLY, 0)
    posix_spawn_file_actions_addopen(&actions, 2, "/dev/null", O_WRONLY, 0)
    var attributes = posix_spawnattr_t()
    posix_spawnattr_init(&attributes)
    defer { posix_spawnattr_destroy(&attributes) }
    posix_spawnattr_setflags(&attributes, Int16(POSIX_SPAWN_SETPGROUP))
    posix_spawnattr_setpgroup(&attributes, 0)
    let argv: [UnsafeMutablePointer<CChar>?] = [strdup(script), nil]
    let envp: [UnsafeMutablePointer<CChar>?] = environment.map { strdup($0) } + [nil]
    defer { (argv + envp).forEach { free($0) } }
    var pid: pid_t = 0
    let rc = posix_spawn(&pid, script, &actions, &attributes, argv, envp)
    guard rc == 0 else {
        FileHandle.standardError.write(Data("posix_spawn failed: \(String(cString: strerror(rc)))\n".utf8))
        exit(1)
    }
    let child = pid
    await withCheckedContinuation { (c: CheckedContinuation<Void, Never>) in
        waitQueue.async {
            var status: Int32 = 0
            while waitpid(child, &status, 0) == -1 && errno == EINTR {}
            c.resume()
        }
    }
}

let start = ContinuousClock.now
try await withThrowingTaskGroup(of: Void.self) { group in
    for w in 0..<workers {
        group.addTask {
            for _ in stride(from: w, to: count, by: workers) {
                switch mode {
                case "subprocess": try await viaSubprocess()
                case "posix_spawn": await viaPosixSpawn()
                default:
                    FileHandle.standardError.write(Data("unknown mode \(mode)\n".utf8))
                    exit(2)
                }
            }
        }
    }
    try await group.waitForAll()
}
let elapsed = ContinuousClock.now - start
let seconds = Double(elapsed.components.seconds) + Double(elapsed.components.attoseconds) / 1e18
print(#"{"mode":"\#(mode)","workers":\#(workers),"events":\#(count),"seconds":\#(seconds)}"#)
