import Foundation
import CLymphSpawn
import Synchronization

/// A throwaway PostgreSQL server for the tests: `initdb` in a temporary folder, a free port on
/// loopback, password (scram-sha-256) authentication over TCP. When the tests run as root the
/// server runs as the `postgres` user (PostgreSQL refuses root). `scripts/setup` installs
/// PostgreSQL; nothing is installed here.
///
/// `shared` is one server for the whole test process, stopped and deleted when the process
/// exits; each test makes a database of its own on it (`makeDatabase`).
public final class PostgresCluster: Sendable {
    /// The folder holding the data directory, the log and the socket.
    public let folder: String
    public let port: Int
    public let user = "lymph"
    /// A random password, for the URL (never printed by the tests).
    public let password: String
    let bin: String
    let runAs: String?
    private let counter = Atomic<Int>(0)

    /// The process's server, started on first use; nil with the reason when PostgreSQL's
    /// programs are missing or the server does not start.
    public static let shared: Result<PostgresCluster, ClusterError> = {
        do {
            let cluster = try PostgresCluster.start()
            sharedForExit.withLock { $0 = cluster }
            atexit { PostgresCluster.sharedForExit.withLock { $0?.destroy() } }
            return .success(cluster)
        } catch let e as ClusterError {
            return .failure(e)
        } catch {
            return .failure(ClusterError(message: "\(error)"))
        }
    }()
    private static let sharedForExit = Mutex<PostgresCluster?>(nil)

    /// Why there is no server.
    public struct ClusterError: Error, CustomStringConvertible {
        public let message: String
        public var description: String { message }
    }

    private init(folder: String, port: Int, password: String, bin: String, runAs: String?) {
        self.folder = folder
        self.port = port
        self.password = password
        self.bin = bin
        self.runAs = runAs
    }

    /// PostgreSQL's server programs: Debian's versioned folder (newest first), else `PATH`.
    static func binFolder() throws -> String {
        let root = "/usr/lib/postgresql"
        let versions = ((try? FileManager.default.contentsOfDirectory(atPath: root)) ?? []).compactMap(Int.init).sorted(by: >)
        for v in versions where FileManager.default.isExecutableFile(atPath: "\(root)/\(v)/bin/initdb") { return "\(root)/\(v)/bin" }
        for dir in (ProcessInfo.processInfo.environment["PATH"] ?? "").split(separator: ":") where FileManager.default.isExecutableFile(atPath: "\(dir)/initdb")
        {
            return String(dir)
        }
        throw ClusterError(message: "PostgreSQL's initdb is not installed (scripts/setup installs it)")
    }

    /// A new server in a new temporary folder.
    public static func start() throws -> PostgresCluster {
        let bin = try binFolder()
        let runAs: String? = getuid() == 0 ? "postgres" : nil
        sweepAbandoned(bin: bin, runAs: runAs)
        // Named after this process, so a later run knows when it is gone.
        var template = Array((NSTemporaryDirectory() + "/lymph-pg-\(getpid())-XXXXXX").utf8CString)
        guard let made = mkdtemp(&template) else { throw ClusterError(message: "cannot make a temporary folder") }
        let folder = String(cString: made)
        let password = UUID().uuidString
        try Data((password + "\n").utf8).write(to: URL(fileURLWithPath: folder + "/pwfile"))
        if let runAs {
            guard let pw = getpwnam(runAs) else { throw ClusterError(message: "running as root, and there is no '\(runAs)' user to run PostgreSQL as") }
            for path in [folder, folder + "/pwfile"] { chown(path, pw.pointee.pw_uid, pw.pointee.pw_gid) }
        }
        let cluster = PostgresCluster(folder: folder, port: try freePort(), password: password, bin: bin, runAs: runAs)
        try cluster.run(
            "initdb",
            [
                "-D", folder + "/data", "-U", cluster.user, "--pwfile=" + folder + "/pwfile", "--auth-local=trust",
                "--auth-host=scram-sha-256", "-E", "UTF8", "--no-sync", "--no-instructions",
            ])
        try cluster.startServer()
        return cluster
    }

    /// Starts the server (after `stopServer`), on the same port.
    public func startServer() throws {
        // fsync off: the tests crash PostgreSQL's processes, never the machine.
        try run(
            "pg_ctl",
            [
                "-D", folder + "/data", "-l", folder + "/log", "-w", "-t", "60", "-o",
                "-p \(port) -k \(folder) -c listen_addresses=127.0.0.1 -c fsync=off -c max_connections=200", "start",
            ])
    }

    /// Stops the server: `immediate` is a crash of PostgreSQL (no checkpoint, no goodbye to
    /// clients); `fast` a clean shutdown.
    public func stopServer(mode: String = "fast") throws {
        try run("pg_ctl", ["-D", folder + "/data", "-m", mode, "-w", "-t", "60", "stop"])
    }

    /// A crash and a start on the same port.
    public func restartServer() throws {
        try stopServer(mode: "immediate")
        try startServer()
    }

    /// Stops and deletes the servers of test processes that are gone without their exit
    /// handler (killed, or timed out): each holds a few hundred MB, and may still be running.
    static func sweepAbandoned(bin: String, runAs: String?) {
        let temporary = NSTemporaryDirectory()
        for name in (try? FileManager.default.contentsOfDirectory(atPath: temporary)) ?? [] where name.hasPrefix("lymph-pg-") {
            let parts = name.dropFirst("lymph-pg-".count).split(separator: "-")
            guard parts.count == 2, let pid = pid_t(parts[0]), kill(pid, 0) != 0, errno == ESRCH else { continue }
            PostgresCluster(folder: temporary + "/" + name, port: 0, password: "", bin: bin, runAs: runAs).destroy()
        }
    }

    /// Stops the server and deletes its folder.
    public func destroy() {
        try? stopServer(mode: "immediate")
        try? FileManager.default.removeItem(atPath: folder)
    }

    /// `postgres://lymph:PASSWORD@127.0.0.1:PORT/DATABASE`.
    public func url(database: String, query: String = "sslmode=disable") -> String {
        "postgres://\(user):\(password)@127.0.0.1:\(port)/\(database)" + (query.isEmpty ? "" : "?" + query)
    }

    /// A new, empty database on the server, named after `prefix`.
    public func makeDatabase(_ prefix: String = "t") throws -> String {
        let name = "\(prefix)_\(getpid())_\(counter.add(1, ordering: .relaxed).newValue)".lowercased()
        try psql("CREATE DATABASE \(name)")
        return name
    }

    /// Runs `sql` as the superuser (through the local socket), and returns what psql printed
    /// (unaligned, no headers).
    @discardableResult
    public func psql(_ sql: String, database: String = "postgres") throws -> String {
        try run("psql", ["-h", folder, "-p", "\(port)", "-U", user, "-d", database, "-X", "-A", "-t", "-v", "ON_ERROR_STOP=1", "-c", sql])
    }

    /// Runs one of PostgreSQL's programs (as `runAs` when set), up to 120 s; throws with its
    /// output when it fails. Spawned directly, not through Foundation's `Process`: that one
    /// watches a descriptor the child inherits, and `pg_ctl start` leaves the server holding it,
    /// so the start would never be seen to end.
    @discardableResult
    func run(_ program: String, _ args: [String]) throws -> String {
        let argv = (runAs.map { ["/usr/sbin/runuser", "-u", $0, "--"] } ?? []) + [bin + "/" + program] + args
        let outPath = NSTemporaryDirectory() + "/lymph-pg-out-\(UUID().uuidString)"
        defer { try? FileManager.default.removeItem(atPath: outPath) }
        var actions = posix_spawn_file_actions_t()
        posix_spawn_file_actions_init(&actions)
        defer { posix_spawn_file_actions_destroy(&actions) }
        posix_spawn_file_actions_addopen(&actions, 0, "/dev/null", O_RDONLY, 0)
        posix_spawn_file_actions_addopen(&actions, 1, outPath, O_WRONLY | O_CREAT | O_TRUNC, 0o600)
        posix_spawn_file_actions_adddup2(&actions, 1, 2)
        // Nothing else of the test process's goes to the server, which outlives this call.
        lymph_spawn_add_closefrom(&actions, 3)
        lymph_spawn_add_chdir(&actions, folder)
        var pid: pid_t = 0
        let cArgs = argv.map { strdup($0) } + [nil]
        defer { for a in cArgs { free(a) } }
        let rc = posix_spawn(&pid, argv[0], &actions, nil, cArgs, environ)
        guard rc == 0 else { throw ClusterError(message: "cannot start \(program): \(String(cString: strerror(rc)))") }
        let deadline = Date().addingTimeInterval(120)
        var status: Int32 = 0
        while waitpid(pid, &status, WNOHANG) == 0 {
            if Date() > deadline {
                kill(pid, SIGKILL)
                _ = waitpid(pid, &status, 0)
                throw ClusterError(message: "\(program) did not finish in 120 s")
            }
            usleep(5_000)
        }
        let data = FileHandle(forReadingAtPath: outPath).flatMap { try? $0.read(upToCount: 64 * 1024) } ?? Data()
        let text = String(decoding: data, as: UTF8.self)
        let exited = (status & 0x7f) == 0
        let code = (status >> 8) & 0xff
        guard exited && code == 0 else {
            throw ClusterError(message: "\(program) failed (\(exited ? "exit \(code)" : "signal \(status & 0x7f)")): \(text)")
        }
        return text.trimmingCharacters(in: .whitespacesAndNewlines)
    }

    /// A TCP port on loopback that nothing listens on now (the doc tests' servers use it too).
    public static func freePort() throws -> Int {
        let fd = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
        guard fd >= 0 else { throw ClusterError(message: "cannot open a socket") }
        defer { close(fd) }
        var addr = sockaddr_in()
        addr.sin_family = sa_family_t(AF_INET)
        addr.sin_addr.s_addr = inet_addr("127.0.0.1")
        addr.sin_port = 0
        var len = socklen_t(MemoryLayout<sockaddr_in>.size)
        let bound = withUnsafeMutablePointer(to: &addr) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { bind(fd, $0, len) == 0 && getsockname(fd, $0, &len) == 0 }
        }
        guard bound else { throw ClusterError(message: "cannot find a free port") }
        return Int(UInt16(bigEndian: addr.sin_port))
    }
}
