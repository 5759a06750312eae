/// The clean environment an `exec` process gets: never Lymph's own (which may hold the
/// webhook secret), only the variables a program needs to behave like it does in a shell,
/// the `LYMPH_*` variables and the stage's `env:`.
struct ExecEnvironment: Sendable {
    /// Taken from Lymph's environment when set.
    static let passedThrough = ["PATH", "HOME", "LANG", "TZ", "TMPDIR"]
    /// Set by Lymph; `env:` may not override them.
    static let reservedNames: Set<String> = ["LYMPH_EVENT_ID", "LYMPH_EVENT_TYPE", "LYMPH_STAGE", "LYMPH_PIPELINE"]

    /// `NAME=value` entries shared by every process of the stage.
    let base: [[UInt8]]

    /// `PATH`, `HOME`, `LANG`, `TZ`, `TMPDIR` and `LC_*` from `inherited` (a default `PATH` when
    /// unset), `LYMPH_PIPELINE` and `LYMPH_STAGE`, then `extra` (the stage's `env:`), which wins
    /// over the rest.
    init(inherited: [String: String], pipeline: String, stage: String, extra: [(String, String)]) {
        var entries: [(String, String)] = []
        for name in Self.passedThrough { if let v = inherited[name] { entries.append((name, v)) } }
        for (name, value) in inherited.sorted(by: { $0.key < $1.key }) where name.hasPrefix("LC_") { entries.append((name, value)) }
        if inherited["PATH"] == nil { entries.append(("PATH", "/usr/local/bin:/usr/bin:/bin")) }
        entries.append(("LYMPH_PIPELINE", pipeline))
        entries.append(("LYMPH_STAGE", stage))
        // `env:` comes last and wins over what was passed through (PATH, say).
        var seen = Set<String>()
        var merged: [(String, String)] = []
        for (name, value) in (entries + extra).reversed() where seen.insert(name).inserted { merged.append((name, value)) }
        base = merged.reversed().map { Self.entry($0.0, $0.1) }
    }

    /// The environment for one event (event mode).
    func forEvent(id: String, type: String) -> [[UInt8]] {
        base + [Self.entry("LYMPH_EVENT_ID", id), Self.entry("LYMPH_EVENT_TYPE", type)]
    }

    static func entry(_ name: String, _ value: String) -> [UInt8] {
        // NUL-terminated, as swift-subprocess hands these to the C library as they are. A NUL
        // inside would end the string early, so it is dropped.
        Array(name.utf8) + [UInt8(ascii: "=")] + value.utf8.filter { $0 != 0 } + [0]
    }

    static func isValidName(_ name: String) -> Bool {
        guard let first = name.utf8.first, !(0x30...0x39).contains(first) else { return false }
        return name.utf8.allSatisfy { ($0 >= 0x30 && $0 <= 0x39) || ($0 >= 0x41 && $0 <= 0x5A) || ($0 >= 0x61 && $0 <= 0x7A) || $0 == 0x5F }
    }
}
