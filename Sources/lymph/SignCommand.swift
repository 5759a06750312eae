import ArgumentParser
import Foundation
import Lymph

struct SignCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "sign",
        abstract: "Print the webhook signature header for a body read on stdin.",
        discussion: """
            The signature covers the exact bytes on stdin, a trailing newline included: use \
            `printf '%s' "$body" | lymph sign --secret env:S` for a body without one. Prints \
            `x-immune-signature: <hex>`; --value prints the hex only.
            """
    )

    @Option(help: "The secret: env:NAME or file:PATH (never the value itself).")
    var secret: String

    @Option(help: "Signature scheme (immune: lowercase hex HMAC-SHA256 of the raw body).")
    var scheme: String = "immune"

    @Flag(help: "Print only the signature value, without the header name.")
    var value = false

    static let maxBody = 64 << 20

    func validate() throws {
        guard scheme == "immune" else { throw ValidationError("--scheme: only 'immune' is known") }
        try SecretOption.validate(secret)
    }

    func run() throws {
        let key = try SecretOption.resolve(secret, command: "sign")
        let data = (try? FileHandle.standardInput.read(upToCount: Self.maxBody + 1)) ?? Data()
        guard data.count <= Self.maxBody else {
            Console.error("lymph sign: the body on stdin is larger than \(Self.maxBody) bytes")
            throw ExitCode(2)
        }
        let signature = WebhookSignature.sign([UInt8](data), secret: key)
        print(value ? signature : "\(WebhookSignature.header): \(signature)")
    }
}
