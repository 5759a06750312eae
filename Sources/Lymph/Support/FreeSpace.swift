#if canImport(Glibc)
    import Glibc
#elseif canImport(Musl)
    import Musl
#endif

/// Whether the disk holding a path is out of space, to say so beside an error that does not:
/// SQLite reports a full disk met while opening a file as "disk I/O error".
enum FreeSpace {
    /// Below this many free bytes a disk counts as full (SQLite needs room for a page or two).
    static let nearlyFull: UInt64 = 64 << 10

    /// " (the disk holding it is full)" when the folder of `path` has less than `nearlyFull`
    /// bytes free for this user; empty otherwise, or when that cannot be told.
    static func hint(forPath path: String) -> String {
        let parent = PathParent.of(path)
        var s = statvfs()
        guard statvfs(parent.isEmpty ? "." : parent, &s) == 0 else { return "" }
        return UInt64(s.f_bavail) * UInt64(s.f_frsize) < nearlyFull ? " (the disk holding it is full: free some space)" : ""
    }
}
