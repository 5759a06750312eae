import Foundation
import Synchronization
import Logging
import PostgresNIO
import _ConnectionPoolModule

/// A PostgreSQL database holding Lymph's shared state in one schema: a bounded pool of
/// connections (postgres-nio's `PostgresClient`), with the schema migrated when it opens.
///
/// Every connection starts with `synchronous_commit = on` (a commit is durable when it
/// returns, whatever the database's default), a statement timeout and an idle-in-transaction
/// timeout, so no wait on the server is unbounded. Errors name the location (never the
/// password) and the server's message, never the SQL's bound values.
public final class PostgresDatabase: Sendable {
    /// Where it is (its description has no password).
    public let location: PostgresLocation
    /// The schema Lymph's tables are in.
    public let schema: String
    let client: PostgresClient
    let logger: Logger
    private let running: Task<Void, Never>
    let directConfiguration: PostgresConnection.Configuration
    private let directs = Mutex<[PostgresDirectConnection]>([])
    /// The longest an operation waits, for a connection and its answer together.
    public let operationTimeout: Duration

    /// Connects to `location` and migrates `schema`, which it creates if needed, on one
    /// connection of its own (so a wrong password or an unreachable server is reported as it
    /// is, at once); then opens the pool of at most `maxConnections`. Several processes may
    /// open the same database at once: migrations take a transaction-scoped advisory lock, so
    /// one migrates and the others find it done. Every later operation gives up after
    /// `operationTimeout` (the pool would otherwise queue a request through an outage).
    public static func open(
        location: PostgresLocation, schema: String = "lymph", maxConnections: Int = 8, connectTimeout: Duration = .seconds(10),
        operationTimeout: Duration = .seconds(10), logger: Logger = PostgresDatabase.quietLogger
    ) async throws(StoreError) -> PostgresDatabase {
        guard isValidSchemaName(schema) else {
            throw StoreError(
                location: location.description,
                message:
                    "the schema name '\(schema.cutForMessage(70))' is not a plain lower-case identifier (letters a-z, digits and '_', at most 63, not starting with a digit)"
            )
        }
        let tls: TLSConfiguration?
        do {
            tls = try tlsConfiguration(location)
        } catch {
            throw StoreError(location: location.description, message: "cannot set up TLS: \(error)")
        }
        // The server gives up a statement (or a lock wait) when Lymph does: no work left
        // running on it after its deadline.
        let ms = max(1, operationTimeout.components.seconds) * 1000
        let parameters = [
            ("application_name", "lymph"),
            ("synchronous_commit", "on"),
            ("statement_timeout", "\(ms)"),
            ("idle_in_transaction_session_timeout", "\(2 * ms)"),
            ("lock_timeout", "\(ms)"),
        ]
        let serverName = location.tls == .verifyFull ? location.host : nil

        // Connections outside the pool: the first, which migrates, and the direct ones.
        var direct: PostgresConnection.Configuration
        do {
            direct = PostgresConnection.Configuration(
                host: location.host, port: location.port, username: location.user, password: location.password, database: location.database,
                tls: try tls.map { location.tls == .prefer ? .prefer(try NIOSSLContext(configuration: $0)) : .require(try NIOSSLContext(configuration: $0)) }
                    ?? .disable)
        } catch {
            throw StoreError(location: location.description, message: "cannot set up TLS: \(error)")
        }
        direct.options.connectTimeout = .nanoseconds(Int64(connectTimeout.components.seconds) * 1_000_000_000)
        direct.options.tlsServerName = serverName
        direct.options.additionalStartupParameters = parameters
        do {
            var single = direct
            // This connection's statements may wait for another process's migration, as long as
            // the open may take; a server that ended its session sooner would turn a slow start
            // into a failed one.
            let openMs = (connectTimeout + operationTimeout).components.seconds * 1000
            single.options.additionalStartupParameters = [
                ("application_name", "lymph"), ("synchronous_commit", "on"), ("statement_timeout", "\(openMs)"),
                ("lock_timeout", "\(openMs)"), ("idle_in_transaction_session_timeout", "\(openMs)"),
            ]
            let first = single
            try await withDeadline(connectTimeout + operationTimeout) {
                let connection = try await PostgresConnection.connect(configuration: first, id: 0, logger: logger)
                do {
                    try await migrate(connection, schema: schema, logger: logger)
                } catch {
                    try? await connection.close()
                    throw error
                }
                try await connection.close()
            }
        } catch {
            throw StoreError(
                location: location.description, message: "cannot open schema '\(schema)': \(describe(error))", isUnavailable: isUnavailable(error))
        }

        var config = PostgresClient.Configuration(
            host: location.host, port: location.port, username: location.user, password: location.password, database: location.database,
            tls: tls.map { location.tls == .prefer ? .prefer($0) : .require($0) } ?? .disable)
        config.options.maximumConnections = max(1, maxConnections)
        config.options.connectTimeout = connectTimeout
        config.options.tlsServerName = serverName
        config.options.additionalStartupParameters = parameters
        let client = PostgresClient(configuration: config, backgroundLogger: logger)
        let running = Task { await client.run() }
        return PostgresDatabase(
            location: location, schema: schema, client: client, logger: logger, running: running, operationTimeout: operationTimeout,
            directConfiguration: direct)
    }

    /// postgres-nio's own log lines at `error` only: Lymph reports what failed itself, and the
    /// pool's retries through an outage would fill a log.
    public static var quietLogger: Logger {
        var l = Logger(label: "lymph.postgres")
        l.logLevel = .error
        return l
    }

    private init(
        location: PostgresLocation, schema: String, client: PostgresClient, logger: Logger, running: Task<Void, Never>, operationTimeout: Duration,
        directConfiguration: PostgresConnection.Configuration
    ) {
        self.operationTimeout = operationTimeout
        self.directConfiguration = directConfiguration
        self.location = location
        self.schema = schema
        self.client = client
        self.logger = logger
        self.running = running
    }

    /// Closes every connection; queries after this fail.
    public func close() {
        running.cancel()
        let connections = directs.withLock { d in
            let all = d
            d = []
            return all
        }
        for connection in connections { connection.close() }
    }

    /// A connection of its own, outside the pool, with the pool's session settings, for a
    /// thread that waits on it (`PostgresDirectConnection`); `close()` closes it.
    /// `timeout` replaces the operation deadline for its statements and connects.
    func directConnection(timeout: Duration? = nil) -> PostgresDirectConnection {
        let connection = PostgresDirectConnection(
            configuration: directConfiguration, operationTimeout: timeout ?? operationTimeout, logger: logger)
        directs.withLock { $0.append(connection) }
        return connection
    }

    /// `[a-z_][a-z0-9_]*`, at most 63 bytes (PostgreSQL's limit): it goes into SQL quoted, and
    /// a plain name needs no case rules to be the same schema everywhere.
    public static func isValidSchemaName(_ name: String) -> Bool {
        guard let first = name.utf8.first, name.utf8.count <= 63, !(UInt8(ascii: "0")...UInt8(ascii: "9")).contains(first) else { return false }
        return name.utf8.allSatisfy {
            (UInt8(ascii: "a")...UInt8(ascii: "z")).contains($0) || (UInt8(ascii: "0")...UInt8(ascii: "9")).contains($0) || $0 == UInt8(ascii: "_")
        }
    }

    /// The TLS settings `location.tls` asks for; nil for `disable`.
    static func tlsConfiguration(_ location: PostgresLocation) throws -> TLSConfiguration? {
        var tls = TLSConfiguration.makeClientConfiguration()
        switch location.tls {
        case .disable: return nil
        case .prefer, .require: tls.certificateVerification = .none
        case .verifyCA: tls.certificateVerification = .noHostnameVerification
        case .verifyFull: tls.certificateVerification = .fullVerification
        }
        if let path = location.rootCertificatePath {
            tls.trustRoots = .certificates(try NIOSSLCertificate.fromPEMFile(path))
        }
        return tls
    }

    /// Runs `body` on the pool within `operationTimeout`; a failure becomes a `StoreError`
    /// saying what was being done.
    func perform<T: Sendable>(_ doing: String, _ body: @escaping @Sendable (PostgresClient) async throws -> T) async throws(StoreError) -> T {
        let client = client
        do {
            if Self.callerKeepsDeadline { return try await body(client) }
            return try await Self.withDeadline(operationTimeout) { try await body(client) }
        } catch let e as StoreError {
            throw e
        } catch {
            throw storeError(doing, error)
        }
    }

    /// Set by a caller that waits for this task within `operationTimeout` and cancels it then
    /// (`PostgresState.blockingOperation`): `perform` then adds no deadline of its own, which
    /// would cost two more tasks and a timer on every operation of the spool's hot path.
    @TaskLocal static var callerKeepsDeadline = false

    /// No answer in time.
    struct DeadlinePassed: Error, CustomStringConvertible {
        let limit: Duration
        var description: String { "no answer from the database in \(limit.components.seconds) s" }
    }

    /// `body`'s result, or `DeadlinePassed` once `limit` has passed, whichever comes first.
    /// The loser is not waited for: postgres-nio does not give up a statement it sent when its
    /// task is cancelled (the server's `statement_timeout` ends it), and a group of tasks would
    /// wait for it.
    static func withDeadline<T: Sendable>(_ limit: Duration, _ body: @escaping @Sendable () async throws -> T) async throws -> T {
        let race = DeadlineRace<T>()
        return try await withCheckedThrowingContinuation { (c: CheckedContinuation<T, any Error>) in
            race.waiting.withLock { $0 = c }
            let work = Task {
                let result: Result<T, any Error>
                do { result = .success(try await body()) } catch { result = .failure(error) }
                race.timer.withLock { $0?.cancel() }
                race.finish(with: result)
            }
            let clock = Task {
                try? await Task.sleep(for: limit)
                if Task.isCancelled { return }
                race.finish(with: .failure(DeadlinePassed(limit: limit)))
                work.cancel()
            }
            race.timer.withLock { $0 = clock }
        }
    }

    /// The caller waiting on `withDeadline`, resumed once by whichever side finishes first.
    final class DeadlineRace<T: Sendable>: Sendable {
        let waiting = Mutex<CheckedContinuation<T, any Error>?>(nil)
        let timer = Mutex<Task<Void, Never>?>(nil)

        func finish(with result: Result<T, any Error>) {
            waiting.withLock { w in
                w?.resume(with: result)
                w = nil
            }
        }
    }

    /// `"schema".table`, for SQL.
    func table(_ name: String) -> String { "\"\(schema)\".\(name)" }

    /// A failure as a `StoreError`: the server's message and SQLSTATE, or what went wrong with
    /// the connection; never the query's bound values.
    func storeError(_ doing: String, _ error: any Error) -> StoreError {
        StoreError(location: location.description, message: "\(doing): \(Self.describe(error))", isUnavailable: Self.isUnavailable(error))
    }

    /// A safe description of a postgres-nio error (its own `description` says nothing, on
    /// purpose; its debug description holds the query).
    static func describe(_ error: any Error) -> String {
        if let t = error as? PostgresTransactionError {
            // What failed inside the transaction, else in BEGIN or COMMIT.
            if let inner = t.closureError ?? t.beginError ?? t.commitError { return describe(inner) }
            return "the transaction failed"
        }
        guard let e = error as? PSQLError else {
            if error is CancellationError { return "cancelled" }
            if let pool = error as? ConnectionPoolError {
                if pool == .connectionCreationCircuitBreakerTripped { return "cannot connect (the database has not answered for a while)" }
                if pool == .poolShutdown { return "the connection pool is closed" }
                return "the request for a connection was cancelled"
            }
            return "\(error)"
        }
        if let info = e.serverInfo {
            var text = info[.message] ?? "the server refused"
            if let state = info[.sqlState] { text += " (SQLSTATE \(state))" }
            // Not the detail: for a constraint it quotes the row's values.
            return text
        }
        switch e.code {
        case .connectionError:
            return "cannot connect" + (e.underlying.map { ": \($0)" } ?? "")
        case .serverClosedConnection, .clientClosedConnection, .uncleanShutdown:
            return "the connection closed" + (e.underlying.map { ": \($0)" } ?? "")
        case .poolClosed: return "the connection pool is closed"
        case .sslUnsupported: return "the server does not offer TLS (sslmode asks for it)"
        case .failedToAddSSLHandler: return "TLS failed" + (e.underlying.map { ": \($0)" } ?? "")
        case .authMechanismRequiresPassword: return "the server asks for a password and the URL has none"
        case .unsupportedAuthMechanism: return "the server asks for an authentication method Lymph cannot use (use scram-sha-256 or md5)"
        case .saslError: return "authentication failed"
        case .queryCancelled: return "the statement was cancelled"
        default: return "\(e.code)"
        }
    }

    /// Whether `error` says the database cannot be reached now (rather than that it refused a
    /// statement): worth waiting out in a server.
    static func isUnavailable(_ error: any Error) -> Bool {
        if error is DeadlinePassed || error is ConnectionPoolError || error is PostgresDirectConnection.Closed
            || error is PostgresDirectConnection.Backoff
        {
            return true
        }
        if let t = error as? PostgresTransactionError, let inner = t.closureError ?? t.beginError ?? t.commitError {
            return isUnavailable(inner)
        }
        guard let e = error as? PSQLError else { return false }
        switch e.code {
        case .connectionError, .serverClosedConnection, .clientClosedConnection, .uncleanShutdown, .poolClosed:
            return true
        case .server:
            // Class 08 (connection exception), 57P01-57P03 (admin shutdown, crash shutdown,
            // cannot connect now), 53300 (too many connections); and what passes when tried
            // again: 55P03 (a lock wait timed out), 40P01 (deadlock), 40001 (serialization),
            // 57014 (a statement timed out).
            let state = e.serverInfo?[.sqlState] ?? ""
            return state.hasPrefix("08") || state.hasPrefix("57P0") || ["53300", "55P03", "40P01", "40001", "57014"].contains(state)
        default:
            return false
        }
    }

    // MARK: Migrations

    /// The schema's migrations, in order; each is a list of single statements (the extended
    /// protocol runs one statement at a time). `{schema}` stands for the quoted schema.
    static let migrations: [(id: String, statements: [String])] = [
        (
            "spool-v1",
            [
                // One lane per accepting instance: who works it and how far it is done. Its
                // entries are numbered in a row of their own, in the order they were committed
                // (that row's lock orders the appends), so a commit that records progress never
                // holds up an append.
                """
                CREATE TABLE {schema}.lymph_spool_lanes (
                    lane text PRIMARY KEY,
                    done_through bigint NOT NULL DEFAULT 0,
                    owner text,
                    drain_through bigint
                )
                """,
                """
                CREATE TABLE {schema}.lymph_spool_numbers (
                    lane text PRIMARY KEY REFERENCES {schema}.lymph_spool_lanes (lane),
                    next_seq bigint NOT NULL DEFAULT 0
                )
                """,
                """
                CREATE TABLE {schema}.lymph_spool (
                    lane text NOT NULL REFERENCES {schema}.lymph_spool_lanes (lane),
                    seq bigint NOT NULL,
                    received_at double precision NOT NULL,
                    item bytea NOT NULL,
                    PRIMARY KEY (lane, seq)
                )
                """,
                "CREATE TABLE {schema}.lymph_health (id int PRIMARY KEY CHECK (id = 1), at timestamptz NOT NULL)",
                // Each process's lease (PostgresHolder): what it holds is its own while this row
                // is renewed.
                "CREATE TABLE {schema}.lymph_holders (holder text PRIMARY KEY, lease_until timestamptz NOT NULL)",
            ]
        ),
        (
            "dedup-v1",
            [
                // One key space per dedup scope, shared by every instance. A key is claimed
                // (holder set, seen_at NULL) while its event is processed, and done (holder NULL,
                // seen_at set) once its event finished and committed.
                """
                CREATE TABLE {schema}.lymph_dedup (
                    scope text NOT NULL,
                    key bytea NOT NULL,
                    seen_at double precision,
                    holder text,
                    PRIMARY KEY (scope, key)
                )
                """,
                "CREATE INDEX lymph_dedup_seen ON {schema}.lymph_dedup (scope, seen_at) WHERE holder IS NULL",
            ]
        ),
        (
            "dedup-v2",
            [
                // Who finished a key: a process whose lease ran out may not complete a key that
                // another took over and finished (its work would count twice).
                "ALTER TABLE {schema}.lymph_dedup ADD COLUMN done_by text"
            ]
        ),
        (
            "spool-v2",
            [
                // When a lane was last opened or claimed: a lane whose instance has not come back
                // for a long time, and that holds nothing, is forgotten (`PostgresSpool.open`).
                "ALTER TABLE {schema}.lymph_spool_lanes ADD COLUMN used_at timestamptz NOT NULL DEFAULT now()"
            ]
        ),
        (
            "dedup-v3",
            [
                // The pipeline whose unnamed dedup stage files its keys under a scope
                // (`DedupScopeTaken`); a scope with keys from before this table goes to the
                // first pipeline that opens it.
                "CREATE TABLE {schema}.lymph_dedup_scopes (scope text PRIMARY KEY, pipeline text NOT NULL)"
            ]
        ),
    ]

    /// Applies the migrations not applied yet, all in one transaction under an advisory lock
    /// on the schema's name, so concurrent first starts wait for each other (as long as `conn`'s
    /// lock timeout lets them).
    static func migrate(_ conn: PostgresConnection, schema: String, logger: Logger) async throws {
        try await migrate(conn, schema: schema, migrations: migrations, logger: logger)
    }

    /// Applies `more` (a later part's migrations, `PostgresState`'s) on a pooled connection.
    func migrate(_ more: [(id: String, statements: [String])]) async throws(StoreError) {
        let (schema, logger) = (schema, logger)
        try await perform("cannot migrate schema '\(schema)'") { client in
            try await client.withConnection { conn in try await Self.migrate(conn, schema: schema, migrations: more, logger: logger) }
        }
    }

    static func migrate(_ conn: PostgresConnection, schema: String, migrations: [(id: String, statements: [String])], logger: Logger) async throws {
        let quoted = "\"\(schema)\""
        try await conn.withTransaction(logger: logger) { conn in
            try await conn.command("SELECT pg_advisory_xact_lock(hashtext('lymph-migrations'), hashtext(\(schema)))", logger: logger)
            try await conn.command(PostgresQuery(unsafeSQL: "CREATE SCHEMA IF NOT EXISTS \(quoted)"), logger: logger)
            try await conn.command(
                PostgresQuery(
                    unsafeSQL: "CREATE TABLE IF NOT EXISTS \(quoted).lymph_migrations (id text PRIMARY KEY, applied_at timestamptz NOT NULL DEFAULT now())"
                ), logger: logger)
            var applied: Set<String> = []
            for try await id in try await conn.query(PostgresQuery(unsafeSQL: "SELECT id FROM \(quoted).lymph_migrations"), logger: logger).decode(String.self)
            {
                applied.insert(id)
            }
            for m in migrations where !applied.contains(m.id) {
                for statement in m.statements {
                    try await conn.command(PostgresQuery(unsafeSQL: statement.replacingOccurrences(of: "{schema}", with: quoted)), logger: logger)
                }
                try await conn.command("INSERT INTO \(unescaped: quoted).lymph_migrations (id) VALUES (\(m.id))", logger: logger)
            }
        }
    }
}

extension PostgresConnection {
    /// Runs a statement whose rows do not matter, to its end: an error that comes after the
    /// row description (a lock timeout in a SELECT, say) surfaces only while rows are read.
    func command(_ query: PostgresQuery, logger: Logger) async throws {
        for try await _ in try await self.query(query, logger: logger) {}
    }
}

extension PostgresClient {
    /// Runs a statement whose rows do not matter, to its end (see `PostgresConnection.command`).
    func command(_ query: PostgresQuery, logger: Logger) async throws {
        for try await _ in try await self.query(query, logger: logger) {}
    }
}
