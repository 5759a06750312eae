import Foundation

/// Every test's temporary folders, inside one folder of this test process that goes when the
/// process exits, so a run of the suite (hundreds of folders, some holding stores of megabytes)
/// leaves nothing in the system's temporary folder, whether a test removes its own or not. A
/// run that was killed leaves its folder; the next run removes those whose process is gone.
public enum TestScratch {
    static let prefix = "lymph-test-run-"

    /// This process's folder, made on first use.
    public static let root: String = {
        let temporary = FileManager.default.temporaryDirectory.path
        for name in (try? FileManager.default.contentsOfDirectory(atPath: temporary)) ?? [] where name.hasPrefix(prefix) {
            if let pid = pid_t(name.dropFirst(prefix.count)), kill(pid, 0) != 0 && errno == ESRCH {
                try? FileManager.default.removeItem(atPath: temporary + "/" + name)
            }
        }
        let root = temporary + "/" + prefix + String(getpid())
        try? FileManager.default.removeItem(atPath: root)
        try! FileManager.default.createDirectory(atPath: root, withIntermediateDirectories: true)
        atexit { try? FileManager.default.removeItem(atPath: TestScratch.root) }
        return root
    }()

    /// A new empty folder under `root`, named `name-UUID`.
    public static func directory(_ name: String) -> String {
        let dir = root + "/" + name + "-" + UUID().uuidString
        try! FileManager.default.createDirectory(atPath: dir, withIntermediateDirectories: true)
        return dir
    }

    /// A path under `root` for a file of the test's, not yet made.
    public static func path(_ name: String) -> String {
        root + "/" + UUID().uuidString + "-" + name
    }
}
