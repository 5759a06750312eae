/// `verify`: checks each event's signature, in its scheme, against one of the secrets; events
/// without a valid one are rejected.
public struct VerifySpec: StageSpec {
    /// `scheme:` (and, for `hmac`, `header`, `algorithm`, `encoding`, `prefix`); IMMUNE's by default.
    public var scheme: SignatureScheme = .immune
    /// `tolerance:`: seconds a signed timestamp may be from the arrival, either way (schemes
    /// with a timestamp).
    public var tolerance: Double = SignatureVerifier.defaultTolerance
    /// `secrets:` (or `secret:`): where the keys are read from when the stage is built, never the
    /// keys themselves.
    public var secretReferences: [SecretReference]
    /// `max_age:`: how many seconds `created_at` may be from when the event arrived, either way;
    /// nil checks no age.
    public var maxAge: Double?

    /// The scheme, the secrets' references (never their values), then `max_age` when set.
    public var summary: String {
        "scheme \(scheme.name), secrets \(secretReferences.map(\.description).joined(separator: ", "))"
            + (scheme.hasTimestamp ? ", tolerance \(DedupSpec.describe(tolerance))" : "") + (maxAge.map { ", max_age \(Int($0))s" } ?? "")
    }

    /// The secret references, read when the stage is built.
    public var secrets: [SecretReference] { secretReferences }

    /// Reads every secret and builds the stage with their bytes.
    public func build(_ env: StageBuildEnvironment) throws -> any Stage {
        try stage(environment: env.environment)
    }

    /// The stage, its secrets read from `environment` (also `lymph serve`'s check before the spool).
    public func stage(environment: [String: String]) throws -> VerifyStage {
        var keys: [[UInt8]] = []
        for reference in secretReferences {
            switch scheme.key(forSecret: try reference.resolve(environment: environment)) {
            case .success(let key): keys.append(key)
            case .failure(let problem): throw SecretError(reference: reference, message: problem.message)
            }
        }
        return VerifyStage(verifier: SignatureVerifier(scheme: scheme, keys: keys, tolerance: tolerance), maxAge: maxAge)
    }

    static let kind = StageKind(
        name: "verify", optionKeys: ["secrets", "secret", "max_age", "scheme", "tolerance", "header", "algorithm", "encoding", "prefix"]
    ) { m, d in
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
        let scheme = Self.scheme(m, &d)
        let maxAge = m["max_age"].flatMap { $0.duration(&d, "max_age") }
        var tolerance = SignatureVerifier.defaultTolerance
        if let t = m["tolerance"] {
            if let scheme, !scheme.hasTimestamp {
                d.error("tolerance applies to schemes that sign a timestamp (standard_webhooks, stripe), not \(scheme.name)", at: t)
            }
            if let seconds = t.duration(&d, "tolerance") { tolerance = seconds }
        }
        guard let scheme, !refs.isEmpty else { return nil }
        var spec = VerifySpec(secretReferences: refs, maxAge: maxAge)
        spec.scheme = scheme
        spec.tolerance = tolerance
        return spec
    }

    /// `scheme:`, with the generic scheme's options (which no other scheme takes).
    private static func scheme(_ m: ConfigMapping, _ d: inout ConfigDiagnostics) -> SignatureScheme? {
        var name = "immune"
        if let node = m["scheme"] {
            guard let text = node.string(&d, "scheme") else { return nil }
            guard SignatureScheme.names.contains(text) else {
                let hint = Suggestion.closest(to: text, in: SignatureScheme.names).map { " (did you mean '\($0)'?)" } ?? ""
                d.error(
                    "unknown signature scheme '\(text.cutForMessage())'\(hint); the schemes are \(SignatureScheme.names.joined(separator: ", "))",
                    at: node)
                return nil
            }
            name = text
        }
        let generic = ["header", "algorithm", "encoding", "prefix"]
        guard name == "hmac" else {
            for key in generic { if let node = m[key] { d.error("'\(key)' is an option of scheme hmac, not \(name)", at: node) } }
            return SignatureScheme(name: name)
        }
        guard let headerNode = m["header"] else {
            d.error("scheme hmac needs 'header': the request header that carries the signature", at: m.owner)
            return nil
        }
        guard let header = headerNode.string(&d, "header") else { return nil }
        guard !header.isEmpty, header.utf8.allSatisfy({ $0 > 0x20 && $0 < 0x7F && $0 != UInt8(ascii: ":") }) else {
            d.error("header must be a header name (visible ASCII, no ':' or spaces)", at: headerNode)
            return nil
        }
        var options = SignatureScheme.GenericHMAC(header: header)
        if let node = m["algorithm"], let text = node.string(&d, "algorithm") {
            guard let algorithm = HMACAlgorithm(rawValue: text) else {
                d.error("algorithm must be sha256 or sha512", at: node)
                return nil
            }
            options.algorithm = algorithm
        }
        if let node = m["encoding"], let text = node.string(&d, "encoding") {
            guard let encoding = SignatureEncoding(rawValue: text) else {
                d.error("encoding must be hex or base64", at: node)
                return nil
            }
            options.encoding = encoding
        }
        if let node = m["prefix"], let text = node.string(&d, "prefix") { options.prefix = text }
        return .hmac(options)
    }
}
