import Foundation

/// Writes to stderr: stdout carries only events.
enum Console {
    static func error(_ line: String) {
        FileHandle.standardError.write(Data((line + "\n").utf8))
    }
}
