/// The folder part of a path, as `NSString.deletingLastPathComponent` gives it, which crashes
/// (an illegal instruction in Foundation) for a one-character path such as `.` or `x`, and for
/// one such as `a/`.
public enum PathParent {
    /// `a/b` → `a`, `/a` → `/`, `a` → ``, `a/b/` → `a`, `/` → `/`.
    public static func of(_ path: String) -> String {
        var bytes = Array(path.utf8)
        // Trailing slashes name no component of their own.
        while bytes.count > 1 && bytes.last == UInt8(ascii: "/") { bytes.removeLast() }
        guard let slash = bytes.lastIndex(of: UInt8(ascii: "/")) else { return "" }
        var end = slash
        // `a//b` → `a`; a path whose only slashes lead it is in the root.
        while end > 0 && bytes[end - 1] == UInt8(ascii: "/") { end -= 1 }
        if end == 0 { return "/" }
        return String(decoding: bytes[..<end], as: UTF8.self)
    }
}
