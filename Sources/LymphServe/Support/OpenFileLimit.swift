#if canImport(Glibc)
    import Glibc
#elseif canImport(Musl)
    import Musl
#endif

/// The process's limit of open files, raised for the connections `lymph serve` allows: each
/// takes a descriptor, and past the soft limit (1,024 by default in a shell and under systemd,
/// the same as `max_connections`' default) accepting fails again and again with the listener
/// ready, a core spent and every new client left waiting with no answer and nothing logged.
public enum OpenFileLimit {
    /// Descriptors kept for what is not a connection: the stores, the spool, outputs, plugins.
    public static let reserve = 256

    /// Raises the soft limit towards the hard one, up to what `maxConnections` needs; a warning
    /// when it stays below the need (the hard limit is lower).
    public static func raise(for maxConnections: Int) -> String? {
        let needed = maxConnections + reserve
        var limits = rlimit()
        guard getrlimit(Int32(RLIMIT_NOFILE.rawValue), &limits) == 0 else { return nil }
        // RLIM_INFINITY is all bits set.
        let hard = limits.rlim_max == rlim_t.max ? Int.max : Int(limits.rlim_max)
        var soft = limits.rlim_cur == rlim_t.max ? Int.max : Int(limits.rlim_cur)
        if soft < needed {
            limits.rlim_cur = rlim_t(min(hard, needed))
            if setrlimit(Int32(RLIMIT_NOFILE.rawValue), &limits) == 0 { soft = Int(limits.rlim_cur) }
        }
        guard soft < needed else { return nil }
        return
            "max_connections \(maxConnections) needs about \(needed) open files, and this process may open \(soft) (its hard limit is \(hard == Int.max ? "unlimited" : String(hard))); raise it (LimitNOFILE= in the systemd unit, ulimit -n) or lower max_connections"
    }
}
