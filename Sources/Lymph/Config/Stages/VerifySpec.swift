public struct VerifySpec: StageSpec {
    public var secretReferences: [SecretReference]
    public var maxAge: Double?

    public var summary: String {
        "secrets \(secretReferences.map(\.description).joined(separator: ", "))" + (maxAge.map { ", max_age \(Int($0))s" } ?? "")
    }

    public var secrets: [SecretReference] { secretReferences }

    public func build(_ env: StageBuildEnvironment) throws -> any Stage {
        var keys: [[UInt8]] = []
        for reference in secretReferences {
            keys.append(try reference.resolve(environment: env.environment))
        }
        return VerifyStage(secrets: keys, maxAge: maxAge)
    }

    static let kind = StageKind(name: "verify", optionKeys: ["secrets", "secret", "max_age", "scheme"]) { m, d in
        var refs: [SecretReference] = []
        let value = m["secrets"] ?? m["secret"]
        guard let value else {
            d.error("verify needs 'secrets: [env:NAME]' (or file:PATH): the secrets to check signatures with", at: m.owner)
            return nil
        }
        for v in value.strings(&d, "secrets") ?? [] {
            guard let text = v.string(&d, "a secret") else { continue }
            guard let ref = SecretReference(text) else {
                // Never echo the value: it may be the secret itself.
                d.error("secrets must be references, env:NAME or file:PATH; a secret written into the pipeline file is refused (put it in an environment variable or a file)", at: v)
                continue
            }
            refs.append(ref)
        }
        if let scheme = m["scheme"], let s = scheme.string(&d, "scheme"), s != "immune" {
            d.error("unknown signature scheme '\(s)'; the supported scheme is 'immune'", at: scheme)
        }
        let maxAge = m["max_age"].flatMap { $0.duration(&d, "max_age") }
        if refs.isEmpty { return nil }
        return VerifySpec(secretReferences: refs, maxAge: maxAge)
    }
}
