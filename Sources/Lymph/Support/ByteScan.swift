#if canImport(Glibc)
    import Glibc
#elseif canImport(Musl)
    import Musl
#elseif canImport(Darwin)
    import Darwin
#endif

/// memchr-based searches over byte slices (the hot paths of line splitting and output).
enum ByteScan {
    @inline(__always)
    static func containsLineBreak(_ bytes: ArraySlice<UInt8>) -> Bool {
        bytes.withUnsafeBytes { b in
            guard let base = b.baseAddress, b.count > 0 else { return false }
            return memchr(base, 0x0A, b.count) != nil || memchr(base, 0x0D, b.count) != nil
        }
    }

    /// Index of the first `byte` in `buffer[from..<to]`, or nil.
    @inline(__always)
    static func find(_ byte: UInt8, in buffer: UnsafeRawBufferPointer, from: Int, to: Int) -> Int? {
        guard from < to, let base = buffer.baseAddress else { return nil }
        guard let p = memchr(base + from, Int32(byte), to - from) else { return nil }
        return base.distance(to: UnsafeRawPointer(p))
    }
}
