import Foundation

/// Where a secret lives: `env:NAME` or `file:PATH`. Pipeline files never hold secret values.
public enum SecretReference: Sendable, Equatable, CustomStringConvertible {
    case environment(String)
    case file(String)

    /// The maximum size of a secret file; a larger file is not a secret.
    public static let maxFileBytes = 64 * 1024
    /// How long a secret file may take to read to its end (a FIFO waits for its writer).
    public static let fileWait = Duration.seconds(10)

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
    /// `fileWait`: how long a file may take to read to its end.
    public func resolve(
        environment: [String: String] = ProcessInfo.processInfo.environment, fileWait: Duration = SecretReference.fileWait
    ) throws(SecretError) -> [UInt8] {
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
            let shown = path.cutForMessage()
            var bytes: [UInt8]
            do throws(SmallFileRead.Failure) {
                bytes = try SmallFileRead(maxBytes: Self.maxFileBytes, timeout: fileWait).read(path)
            } catch {
                switch error {
                case .folder: throw SecretError(reference: self, message: "'\(shown)' is a folder, not a file")
                case .tooLarge: throw SecretError(reference: self, message: "file '\(shown)' is larger than \(Self.maxFileBytes) bytes")
                case .timedOut:
                    throw SecretError(
                        reference: self, message: "file '\(shown)' gave no end within \(fileWait) (a FIFO no one writes to, or a terminal?)")
                case .cannotOpen(let code), .readFailed(let code):
                    throw SecretError(reference: self, message: "cannot read file '\(shown)': \(String(cString: strerror(code)))")
                }
            }
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
    /// Where the pipeline file names it (the stage's line and column), when known.
    public var line: Int? = nil
    public var column: Int? = nil
    /// `secret REFERENCE: message`.
    public var description: String { "secret \(reference.description.cutForMessage()): \(message)" }
}
