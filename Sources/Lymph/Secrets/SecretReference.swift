import Foundation

/// Where a secret lives: `env:NAME` or `file:PATH`. Pipeline files never hold secret values.
public enum SecretReference: Sendable, Equatable, CustomStringConvertible {
    case environment(String)
    case file(String)

    /// The maximum size of a secret file; a larger file is not a secret.
    public static let maxFileBytes = 64 * 1024

    /// nil when `text` is not a reference (for example a secret pasted into the file).
    public init?(_ text: String) {
        if text.hasPrefix("env:"), text.count > 4 {
            self = .environment(String(text.dropFirst(4)))
        } else if text.hasPrefix("file:"), text.count > 5 {
            self = .file(String(text.dropFirst(5)))
        } else {
            return nil
        }
    }

    /// Why this reference cannot name a secret (a malformed variable name, a blank path), or nil.
    public var problem: String? {
        switch self {
        case .environment(let name):
            return ExecEnvironment.isValidName(name)
                ? nil : "'\(name.cutForMessage())' is not an environment variable name (letters, digits and '_', not starting with a digit)"
        case .file(let path):
            return path.allSatisfy(\.isWhitespace) ? "the file path is blank" : nil
        }
    }

    /// `env:NAME` or `file:PATH`, as written in the pipeline file: never the secret itself.
    public var description: String {
        switch self {
        case .environment(let name): return "env:\(name)"
        case .file(let path): return "file:\(path)"
        }
    }

    /// The secret's bytes. A file's trailing newline is not part of the secret. Errors name
    /// the reference, never the value.
    public func resolve(environment: [String: String] = ProcessInfo.processInfo.environment) throws(SecretError) -> [UInt8] {
        switch self {
        case .environment(let name):
            guard let value = environment[name] else {
                throw SecretError(reference: self, message: "environment variable \(name.cutForMessage()) is not set")
            }
            guard !value.allSatisfy(\.isWhitespace) else {
                throw SecretError(reference: self, message: "environment variable \(name) is \(value.isEmpty ? "empty" : "blank")")
            }
            return Array(value.utf8)
        case .file(let path):
            var isFolder: ObjCBool = false
            if FileManager.default.fileExists(atPath: path, isDirectory: &isFolder), isFolder.boolValue {
                throw SecretError(reference: self, message: "'\(path.cutForMessage())' is a folder, not a file")
            }
            guard let handle = FileHandle(forReadingAtPath: path) else {
                throw SecretError(reference: self, message: "cannot read file '\(path.cutForMessage())'")
            }
            defer { try? handle.close() }
            let data = (try? handle.read(upToCount: Self.maxFileBytes + 1)) ?? Data()
            guard data.count <= Self.maxFileBytes else {
                throw SecretError(reference: self, message: "file '\(path.cutForMessage())' is larger than \(Self.maxFileBytes) bytes")
            }
            var bytes = [UInt8](data)
            while let last = bytes.last, last == 0x0A || last == 0x0D { bytes.removeLast() }
            guard !bytes.allSatisfy({ $0 == 0x20 || $0 == 0x09 || $0 == 0x0A || $0 == 0x0D }) else {
                throw SecretError(reference: self, message: "file '\(path.cutForMessage())' is \(bytes.isEmpty ? "empty" : "blank")")
            }
            return bytes
        }
    }
}

/// A secret that cannot be read (unset, missing, blank, a folder, too large); it names the
/// reference, never the value.
public struct SecretError: Error, Sendable, CustomStringConvertible {
    /// The reference that could not be read.
    public let reference: SecretReference
    /// Why, in one line.
    public let message: String
    /// `secret REFERENCE: message`.
    public var description: String { "secret \(reference.description.cutForMessage()): \(message)" }
}
