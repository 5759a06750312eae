import ArgumentParser
import Lymph

/// `--scheme` and the generic HMAC scheme's options, shared by `sign` and `send`.
struct SchemeOptions: ParsableArguments {
    @Option(help: "Signature scheme: immune, standard_webhooks, github, stripe or hmac.")
    var scheme: String = "immune"

    @Option(help: "With --scheme hmac: the header that carries the signature.")
    var header: String?

    @Option(help: "With --scheme hmac: sha256 or sha512 (default sha256).")
    var algorithm: String?

    @Option(help: "With --scheme hmac: hex or base64 (default hex).")
    var encoding: String?

    @Option(help: "With --scheme hmac: text written before the signature, such as sha256=.")
    var prefix: String?

    func validate() throws {
        _ = try parsed()
    }

    func parsed() throws -> SignatureScheme {
        do { return try SignatureScheme.named(scheme, header: header, algorithm: algorithm, encoding: encoding, prefix: prefix) } catch {
            throw ValidationError("--scheme: \(error)")
        }
    }

    /// The HMAC key for the secret at `reference`; a secret the scheme cannot use is reported
    /// (by reference, never value) as exit 2.
    func key(secret reference: String, command: String) throws -> [UInt8] {
        let secret = try SecretOption.resolve(reference, command: command)
        switch try parsed().key(forSecret: secret) {
        case .success(let key): return key
        case .failure(let problem):
            Console.error("lymph \(command): secret \(reference): \(problem)")
            throw ExitCode(2)
        }
    }
}
