import Synchronization

/// Where an item came from: a file (or `stdin`) and a 1-based line.
///
/// The file is an index into a process-wide table rather than a `String`: positions are copied
/// with every event on several threads at once, and a shared string's reference count would
/// make those threads contend on one cache line.
public struct SourcePosition: Sendable, Hashable, CustomStringConvertible {
    public let fileID: UInt32
    public var line: Int

    public init(file: String, line: Int) {
        self.fileID = SourceFiles.id(for: file)
        self.line = line
    }

    public init(fileID: UInt32, line: Int) {
        self.fileID = fileID
        self.line = line
    }

    public var file: String { SourceFiles.name(for: fileID) }

    public var description: String { "\(file):\(line)" }
}

/// The names behind `SourcePosition.fileID`; a run reads few files, so this stays small.
public enum SourceFiles {
    private static let table = Mutex<(names: [String], ids: [String: UInt32])>(([], [:]))

    public static func id(for name: String) -> UInt32 {
        table.withLock { t in
            if let id = t.ids[name] { return id }
            let id = UInt32(t.names.count)
            t.names.append(name)
            t.ids[name] = id
            return id
        }
    }

    public static func name(for id: UInt32) -> String {
        table.withLock { t in Int(id) < t.names.count ? t.names[Int(id)] : "?" }
    }
}
