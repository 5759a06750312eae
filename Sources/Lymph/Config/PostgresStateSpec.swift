/// `state: {postgres: env:NAME, schema: lymph, lease: 20s}`: the pipeline's state in a
/// PostgreSQL database shared by several Lymph processes, instead of a SQLite file.
///
/// The URL is a secret reference (it carries the password): never written in the file, never
/// printed.
public struct PostgresStateSpec: Sendable, Equatable {
    /// Where the `postgres://` URL is read from.
    public var url: SecretReference
    /// The schema Lymph's tables are in.
    public var schema: String = "lymph"
    /// How long a process's lease lasts without renewal (it is renewed every quarter of it): the
    /// longest a dead instance's work waits before another takes it.
    public var lease: Double = 20

    /// The keys `state:` takes as a mapping.
    static let keys = ["postgres", "schema", "lease"]

    public init(url: SecretReference, schema: String = "lymph", lease: Double = 20) {
        self.url = url
        self.schema = schema
        self.lease = lease
    }

    /// `postgres (env:NAME, schema S)`: never the URL itself.
    public var description: String { "postgres (\(url), schema \(schema))" }

    /// Reads the mapping form of `state:`.
    static func read(_ m: ConfigMapping, _ d: inout ConfigDiagnostics) -> PostgresStateSpec? {
        m.rejectUnknownKeys(allowed: keys, &d)
        guard let v = m["postgres"] else {
            d.error("state as a mapping needs 'postgres: env:NAME' (or file:PATH): where the database URL is read from", at: m.owner)
            return nil
        }
        guard let text = v.string(&d, "postgres") else { return nil }
        guard let ref = SecretReference(text) else {
            // Never echo the value: it may hold the password.
            d.error(
                "postgres must be a reference, env:NAME or file:PATH, to the postgres:// URL; a URL written into the pipeline file is refused (it carries the password)",
                at: v)
            return nil
        }
        if let problem = ref.problem {
            d.error("postgres \(ref.description.cutForMessage()): \(problem)", at: v)
            return nil
        }
        var spec = PostgresStateSpec(url: ref)
        if let s = m["schema"], let name = s.string(&d, "schema") {
            if PostgresDatabase.isValidSchemaName(name) {
                spec.schema = name
            } else {
                d.error("schema must be a plain lower-case name (letters a-z, digits and '_', at most 63, not starting with a digit)", at: s)
            }
        }
        if let l = m["lease"], let seconds = l.duration(&d, "lease") {
            if seconds < 2 || seconds > 600 { d.error("lease must be between 2s and 10m", at: l) } else { spec.lease = seconds }
        }
        return spec
    }
}
