import ArgumentParser
import Foundation
import Lymph

struct SignCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "sign",
        abstract: "Print a webhook's signature headers for a body read on stdin.",
        discussion: """
            The signature covers the exact bytes on stdin, a trailing newline included: use \
            `printf '%s' "$body" | lymph sign --secret env:S` for a body without one. Prints one \
            `Name: value` line per header of the scheme (IMMUNE's: `x-immune-signature: <hex>`); \
            --value prints the signature header's value only. Standard Webhooks signs an id and a \
            timestamp, Stripe a timestamp: --id (default: the body's "id", else a random one) and \
            --timestamp (default: now) fix them, for tests and test vectors.
            """
    )

    @Option(help: "The secret: env:NAME or file:PATH (never the value itself).")
    var secret: String

    @OptionGroup var scheme: SchemeOptions

    @Option(help: "Standard Webhooks' webhook-id (default: the body's \"id\" member, else a random msg_ id).")
    var id: String?

    @Option(help: "The signed timestamp, in seconds since the epoch (default: now).")
    var timestamp: Int?

    @Flag(help: "Print only the signature header's value, without its name.")
    var value = false

    static let maxBody = 64 << 20

    func validate() throws {
        try SecretOption.validate(secret)
        if let id, id.isEmpty { throw ValidationError("--id must not be empty") }
        if let timestamp, timestamp < 0 { throw ValidationError("--timestamp must be seconds since the epoch (0 or more)") }
    }

    func run() throws {
        let key = try scheme.key(secret: secret, command: "sign")
        let data = (try? FileHandle.standardInput.read(upToCount: Self.maxBody + 1)) ?? Data()
        guard data.count <= Self.maxBody else {
            Console.error("lymph sign: the body on stdin is larger than \(Self.maxBody) bytes")
            throw ExitCode(2)
        }
        let body = [UInt8](data)
        let headers = WebhookSignature.headers(
            try scheme.parsed(), key: key, body: body[...], id: id ?? WebhookSignature.messageID(for: body[...]),
            timestamp: timestamp ?? Int(Date().timeIntervalSince1970))
        // A header's value cannot hold a line break (or any control character): printed, one
        // from the body would start a header line of its own in whatever reads these lines.
        if let bad = headers.first(where: { $0.value.unicodeScalars.contains { $0.value < 0x20 || $0.value == 0x7F } }) {
            Console.error("lymph sign: the \(bad.name) ('\(PrintableText.of(bad.value.cutForMessage()))') holds a control character, which a header cannot")
            throw ExitCode(2)
        }
        if value {
            print(headers.last!.value)
        } else {
            for (name, value) in headers { print("\(name): \(value)") }
        }
    }
}
