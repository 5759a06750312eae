/// `verify`: checks each event's IMMUNE signature against one of the secrets; events without a
/// valid one are rejected.
public struct VerifySpec: StageSpec {
    /// `secrets:` (or `secret:`): where the keys are read from when the stage is built, never the
    /// keys themselves.
    public var secretReferences: [SecretReference]
    /// `max_age:`: how many seconds `created_at` may be from when the event arrived, either way;
    /// nil checks no age.
    public var maxAge: Double?

    /// The secrets' references (never their values), then `max_age` when set.
    public var summary: String {
        "secrets \(secretReferences.map(\.description).joined(separator: ", "))" + (maxAge.map { ", max_age \(Int($0))s" } ?? "")
    }

    /// The secret references, read when the stage is built.
    public var secrets: [SecretReference] { secretReferences }

    /// Reads every secret and builds the stage with their bytes.
    public func build(_ env: StageBuildEnvironment) throws -> any Stage {
        var keys: [[UInt8]] = []
        for reference in secretReferences {
            keys.append(try reference.resolve(environment: env.environment))
        }
        return VerifyStage(secrets: keys, maxAge: maxAge)
    }

    static let kind = StageKind(name: "verify", optionKeys: ["secrets", "secret", "max_age", "scheme"]) { m, d in
        var refs: [SecretReference] = []
        if m["secrets"] != nil, let both = m["secret"] {
            d.error("give either 'secrets' or 'secret', not both", at: both)
        }
        let value = m["secrets"] ?? m["secret"]
        guard let value else {
            d.error("verify needs 'secrets: [env:NAME]' (or file:PATH): the secrets to check signatures with", at: m.owner)
            return nil
        }
        let items = value.strings(&d, "secrets")
        if let items, items.isEmpty {
            // An empty list would verify nothing: refused, never a pipeline without verification.
            d.error("secrets is empty; verify needs at least one secret (env:NAME or file:PATH) to check signatures with", at: value)
        }
        for v in items ?? [] {
            guard let text = v.string(&d, "a secret") else { continue }
            guard let ref = SecretReference(text) else {
                // Never echo the value: it may be the secret itself.
                d.error(
                    "secrets must be references, env:NAME or file:PATH; a secret written into the pipeline file is refused (put it in an environment variable or a file)",
                    at: v)
                continue
            }
            if let problem = ref.problem {
                d.error("secret \(ref.description.cutForMessage()): \(problem)", at: v)
                continue
            }
            refs.append(ref)
        }
        if let scheme = m["scheme"], let s = scheme.string(&d, "scheme"), s != "immune" {
            d.error("unknown signature scheme '\(s.cutForMessage())'; the supported scheme is 'immune'", at: scheme)
        }
        let maxAge = m["max_age"].flatMap { $0.duration(&d, "max_age") }
        if refs.isEmpty { return nil }
        return VerifySpec(secretReferences: refs, maxAge: maxAge)
    }
}
