import Foundation

/// `http`: sends each event to a URL, retrying what may succeed later, and passes it on once
/// the destination answered 2xx.
public struct HTTPSpec: StageSpec {
    /// Where the URL is: written in the file, or read from a reference (chat webhook URLs are
    /// secrets).
    public enum Value: Sendable {
        case plain(String)
        case reference(SecretReference)

        func resolve(_ environment: [String: String]) throws -> String {
            switch self {
            case .plain(let text): return text
            case .reference(let reference):
                return String(decoding: try reference.resolve(environment: environment), as: UTF8.self).trimmingCharacters(in: .whitespacesAndNewlines)
            }
        }

        var reference: SecretReference? {
            if case .reference(let r) = self { return r }
            return nil
        }
    }

    /// What each request carries as its body.
    public enum Body: Sendable {
        /// The event's JSON, as it is.
        case event
        /// The template, values JSON-escaped into it.
        case template(HTTPBodyTemplate)
    }

    /// How requests are signed (`sign:`).
    public struct Signing: Sendable {
        public var scheme: SignatureScheme
        public var secret: SecretReference
    }

    public var url: Value
    public var method: String
    public var body: Body
    public var headers: [(name: String, value: Value)]
    public var sign: Signing?
    /// Seconds for one attempt.
    public var timeout: Double
    /// Attempts after the first.
    public var retries: Int
    /// The first back-off, in seconds; it doubles each retry, with full jitter, capped at a minute.
    public var backoff: Double
    /// Requests in flight at once.
    public var concurrency: Int
    public var onError: ExecSpec.OnError
    /// Lifts the SSRF guard (loopback, private and link-local destinations).
    public var allowPrivate: Bool

    /// The method and where to (a reference by name, never the URL a reference holds), then
    /// the request's limits.
    public var summary: String {
        let target: String
        switch url {
        case .plain(let text): target = HTTPSpec.withoutCredentials(text)
        case .reference(let r): target = r.description
        }
        var s = "\(method) \(target), timeout \(DedupSpec.describe(timeout)), retries \(retries), concurrency \(concurrency), on_error \(onError.rawValue)"
        if let sign { s += ", signed \(sign.scheme.name)" }
        if allowPrivate { s += ", allow_private" }
        return s
    }

    /// The URL, header and signing secret references.
    public var secrets: [SecretReference] {
        var references = [url.reference].compactMap { $0 } + headers.compactMap(\.value.reference) + (sign.map { [$0.secret] } ?? [])
        if case .template(let template) = body { references += template.references }
        return references
    }

    public func build(_ env: StageBuildEnvironment) throws -> any Stage {
        let url = try self.url.resolve(env.environment)
        guard let parsed = HTTPSpec.parse(url) else {
            // A URL from a reference is a secret: name the reference, not its value.
            throw HTTPStageConfigError(
                message:
                    "stage '\(env.stageName)': \(self.url.reference.map { "\($0) does not hold" } ?? "url is not") an http:// or https:// URL with a host (and a port from 1 to 65535, if any)"
            )
        }
        if HTTPSpec.hasCredentials(url) {
            throw HTTPStageConfigError(
                message: "stage '\(env.stageName)': \(self.url.reference.map { "the URL in \($0)" } ?? "url") \(HTTPSpec.credentialsProblem)")
        }
        // What the requests carry of secrets: a receiver's answer may repeat them (a 401 that
        // echoes the Authorization header, a 404 that quotes the path), and its start is quoted in
        // dead letters and logs.
        var sent: [String] = self.url.reference == nil ? [] : [url]
        var headers: [(String, String)] = []
        for (name, value) in self.headers {
            let resolved = try value.resolve(env.environment)
            if Self.breaksHeader(resolved) {
                throw HTTPStageConfigError(
                    message:
                        "stage '\(env.stageName)': header '\(name.cutForMessage())'\(value.reference.map { " from \($0)" } ?? "") holds a line break or a NUL, which a header value cannot"
                )
            }
            headers.append((name, resolved))
            if value.reference != nil { sent.append(resolved) }
        }
        if case .template(let template) = body {
            for reference in template.references { sent.append(String(decoding: try reference.resolve(environment: env.environment), as: UTF8.self)) }
        }
        var signer: (SignatureScheme, [UInt8])?
        if let sign {
            switch sign.scheme.key(forSecret: try sign.secret.resolve(environment: env.environment)) {
            case .success(let key): signer = (sign.scheme, key)
            case .failure(let problem): throw SecretError(reference: sign.secret, message: problem.message)
            }
        }
        var spec = self
        if case .template(let template) = body { spec.body = .template(try template.resolved(environment: env.environment)) }
        return HTTPStage(
            spec: spec, url: url, host: parsed.host, headers: headers, signer: signer, stageName: env.stageName, redactor: Redactor.sent(sent))
    }

    /// The host of an http(s) URL; nil for anything else, or for a port no connection can have
    /// (0, or past 65535: accepted, it would fail every request).
    package static func parse(_ text: String) -> (scheme: String, host: String)? {
        guard let components = URLComponents(string: text), let scheme = components.scheme?.lowercased(), scheme == "http" || scheme == "https",
            let host = components.host, !host.isEmpty, components.port.map({ (1...65535).contains($0) }) ?? true
        else { return nil }
        return (scheme, host)
    }

    /// Whether a header value holds what no header value can: a line break or a NUL.
    static func breaksHeader(_ value: String) -> Bool {
        value.utf8.contains { $0 == 0x0A || $0 == 0x0D || $0 == 0 }
    }

    /// Whether an http(s) URL names a user or a password (`http://user:pass@host/`).
    package static func hasCredentials(_ text: String) -> Bool {
        guard let components = URLComponents(string: text) else { return false }
        return components.user != nil || components.password != nil
    }

    /// Why a URL with a user or password is refused: sent as it is, the request would go
    /// without them, and every event would come back 401.
    package static let credentialsProblem =
        "carries a user or password, which lymph does not send: give the URL without them and put them in a header (headers: {Authorization: env:NAME}, its value 'Basic ' and the base64 of user:password)"

    /// The URL without a user or password, for messages.
    static func withoutCredentials(_ text: String) -> String {
        guard var components = URLComponents(string: text) else { return "(not a URL)" }
        components.user = nil
        components.password = nil
        return components.string ?? "(not a URL)"
    }

    static let methods = ["POST", "PUT", "PATCH"]

    static let kind = StageKind(
        name: "http",
        optionKeys: ["url", "method", "body", "template", "headers", "sign", "timeout", "retries", "backoff", "concurrency", "on_error", "allow_private"]
    ) { m, d in
        func value(_ node: ConfigValue, _ what: String) -> Value? {
            guard let text = node.string(&d, what) else { return nil }
            if let reference = SecretReference(text) {
                if let problem = reference.problem {
                    d.error("\(what) \(reference.description.cutForMessage()): \(problem)", at: node)
                    return nil
                }
                return .reference(reference)
            }
            return .plain(text)
        }
        var url: Value?
        if let node = m["url"] {
            url = value(node, "url")
            if case .plain(let text) = url, parse(text) == nil {
                d.error(
                    "url must be an http:// or https:// URL with a host (and a port from 1 to 65535, if any), or a reference (env:NAME, file:PATH)", at: node)
                url = nil
            } else if case .plain(let text) = url, hasCredentials(text) {
                d.error("url \(credentialsProblem)", at: node)
                url = nil
            }
        } else {
            d.error("http needs 'url:', where to send each event (a URL, or env:NAME / file:PATH when it is a secret)", at: m.owner)
        }
        var method = "POST"
        if let node = m["method"], let text = node.string(&d, "method") {
            if methods.contains(text.uppercased()) {
                method = text.uppercased()
            } else {
                d.error("method must be one of \(methods.joined(separator: ", "))", at: node)
            }
        }
        var body = Body.event
        let bodyKind = m["body"].flatMap { $0.string(&d, "body") } ?? (m["template"] == nil ? "event" : "template")
        switch bodyKind {
        case "event":
            if let t = m["template"] { d.error("template is used with 'body: template'", at: t) }
        case "template":
            if let node = m["template"], let text = node.string(&d, "template") {
                do { body = .template(try HTTPBodyTemplate(parsing: text)) } catch { d.error("template: \(error)", at: node) }
            } else if m["template"] == nil {
                d.error("body: template needs 'template:', the JSON body with {path} placeholders", at: m["body"] ?? m.owner)
            }
        default:
            if let node = m["body"] { d.error("body must be 'event' (the event's JSON) or 'template'", at: node) }
        }
        var headers: [(name: String, value: Value)] = []
        if let node = m["headers"], let hm = ConfigMapping(node, context: "headers", diagnostics: &d) {
            for entry in hm.entries {
                guard !entry.key.isEmpty, entry.key.utf8.allSatisfy({ $0 > 0x20 && $0 < 0x7F && $0 != UInt8(ascii: ":") }) else {
                    d.error("header name '\(entry.key.cutForMessage())' must be visible ASCII without ':' or spaces", at: entry.keyValue)
                    continue
                }
                if ["host", "content-length", "idempotency-key", "transfer-encoding"].contains(entry.key.lowercased()) {
                    d.error("\(entry.key) is set by the stage itself", at: entry.keyValue)
                    continue
                }
                if let v = value(entry.value, "headers.\(entry.key)") {
                    // Written in the file, found now; a reference's value is checked when it is read.
                    if case .plain(let text) = v, breaksHeader(text) {
                        d.error("header '\(entry.key.cutForMessage())' holds a line break or a NUL, which a header value cannot", at: entry.value)
                        continue
                    }
                    headers.append((entry.key, v))
                }
            }
        }
        var sign: Signing?
        if let node = m["sign"], let sm = ConfigMapping(node, context: "sign", diagnostics: &d) {
            sm.rejectUnknownKeys(allowed: ["scheme", "secret", "header", "algorithm", "encoding", "prefix"], &d)
            let scheme = sm["scheme"].flatMap { $0.string(&d, "sign.scheme") } ?? "immune"
            do {
                let parsed = try SignatureScheme.named(
                    scheme, header: sm["header"].flatMap { $0.string(&d, "sign.header") },
                    algorithm: sm["algorithm"].flatMap { $0.string(&d, "sign.algorithm") },
                    encoding: sm["encoding"].flatMap { $0.string(&d, "sign.encoding") }, prefix: sm["prefix"].flatMap { $0.string(&d, "sign.prefix") })
                if let s = sm["secret"], let text = s.string(&d, "sign.secret") {
                    if let reference = SecretReference(text), reference.problem == nil {
                        sign = Signing(scheme: parsed, secret: reference)
                    } else {
                        d.error("sign.secret must be a reference, env:NAME or file:PATH; a secret written into the pipeline file is refused", at: s)
                    }
                } else if sm["secret"] == nil {
                    d.error("sign needs 'secret:' (env:NAME or file:PATH)", at: node)
                }
            } catch {
                d.error("sign: \("\(error)".replacingOccurrences(of: "--", with: ""))", at: sm["scheme"] ?? node)
            }
        }
        let timeout = m["timeout"].flatMap { $0.duration(&d, "timeout") } ?? 10
        if let t = m["timeout"], !(0.001...300).contains(timeout) { d.error("timeout must be more than 0 and at most 5m", at: t) }
        let retries = m["retries"].flatMap { $0.int(&d, "retries", range: 0...20) } ?? 5
        let backoff = m["backoff"].flatMap { $0.duration(&d, "backoff") } ?? 0.5
        if let b = m["backoff"], !(0.001...60).contains(backoff) { d.error("backoff must be more than 0 and at most 1m", at: b) }
        let concurrency = m["concurrency"].flatMap { $0.int(&d, "concurrency", range: 1...256) } ?? 8
        var onError = ExecSpec.OnError.deadLetter
        if let node = m["on_error"], let text = node.string(&d, "on_error") {
            if let v = ExecSpec.OnError(rawValue: text) {
                onError = v
            } else {
                d.error("on_error must be one of dead_letter, drop, stop\(Suggestion.didYouMean(text, in: ["dead_letter", "drop", "stop"]))", at: node)
            }
        }
        let allowPrivate = m["allow_private"].flatMap { $0.bool(&d, "allow_private") } ?? false
        guard let url else { return nil }
        return HTTPSpec(
            url: url, method: method, body: body, headers: headers, sign: sign, timeout: timeout, retries: retries, backoff: backoff,
            concurrency: concurrency, onError: onError, allowPrivate: allowPrivate)
    }
}

/// A URL that is not one, found when the stage is built (a reference's value).
public struct HTTPStageConfigError: Error, CustomStringConvertible {
    let message: String
    public var description: String { message }
}
