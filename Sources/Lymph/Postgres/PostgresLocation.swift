import Foundation

/// Where a PostgreSQL state lives, read from a `postgres://` URL (the value of the secret
/// reference in `state.postgres`): `postgres://user:password@host:port/database?sslmode=...`.
///
/// The URL is a secret because it carries the password: `description` shows the user, host,
/// port and database, never the password, and parse errors never quote the URL.
public struct PostgresLocation: Sendable, Equatable, CustomStringConvertible {
    public var host: String
    public var port: Int
    public var user: String
    public var password: String?
    public var database: String
    public var tls: TLSMode
    /// `sslrootcert`: a PEM file of the certificates that may sign the server's, for
    /// `verify-ca` and `verify-full` (the system's trust store when absent).
    public var rootCertificatePath: String?

    /// libpq's `sslmode`, as far as a client without client certificates can follow it.
    public enum TLSMode: String, Sendable, Equatable, CaseIterable {
        /// Plain TCP.
        case disable
        /// TLS when the server offers it, unverified (libpq's `allow` and `prefer`, and its default).
        case prefer
        /// TLS or no connection, unverified.
        case require
        /// TLS, with the server's certificate checked against the roots, not its name.
        case verifyCA = "verify-ca"
        /// TLS, with the certificate and the host name checked.
        case verifyFull = "verify-full"
    }

    /// `postgres://user@host:port/database` (no password), for messages and logs.
    public var description: String {
        let h = host.contains(":") ? "[\(host)]" : host
        return "postgres://\(user)@\(h):\(port)/\(database)"
    }

    public init(host: String, port: Int = 5432, user: String, password: String?, database: String, tls: TLSMode = .prefer, rootCertificatePath: String? = nil) {
        self.host = host
        self.port = port
        self.user = user
        self.password = password
        self.database = database
        self.tls = tls
        self.rootCertificatePath = rootCertificatePath
    }

    /// Parses `text` (`postgres://` or `postgresql://`). The error says what is wrong without
    /// quoting the text, which may hold a password.
    public init(url text: String) throws(PostgresLocationError) {
        let trimmed = text.trimmingCharacters(in: .whitespacesAndNewlines)
        guard trimmed.hasPrefix("postgres://") || trimmed.hasPrefix("postgresql://") else {
            throw PostgresLocationError("it does not start with postgres:// (or postgresql://)")
        }
        guard let c = URLComponents(string: trimmed) else {
            throw PostgresLocationError("it is not a well-formed URL (a password with '@', '/', ':' or '?' must be percent-encoded)")
        }
        // An IPv6 address comes with its brackets on some platforms.
        guard var host = c.host.flatMap({ $0.removingPercentEncoding }), !host.isEmpty else {
            throw PostgresLocationError("it names no host")
        }
        if host.hasPrefix("["), host.hasSuffix("]") { host = String(host.dropFirst().dropLast()) }
        guard let user = c.percentEncodedUser.flatMap({ $0.removingPercentEncoding }), !user.isEmpty else {
            throw PostgresLocationError("it names no user (postgres://USER:PASSWORD@HOST/DATABASE)")
        }
        var database = c.percentEncodedPath
        if database.hasPrefix("/") { database.removeFirst() }
        database = database.removingPercentEncoding ?? database
        guard !database.isEmpty, !database.contains("/") else {
            throw PostgresLocationError("it names no database (postgres://USER:PASSWORD@HOST/DATABASE)")
        }
        if let port = c.port, !(1...65535).contains(port) {
            throw PostgresLocationError("its port is not between 1 and 65535")
        }
        var tls = TLSMode.prefer
        var rootCertificate: String?
        for item in c.queryItems ?? [] {
            switch item.name {
            case "sslmode":
                switch item.value ?? "" {
                case "disable": tls = .disable
                case "allow", "prefer": tls = .prefer
                case "require": tls = .require
                case "verify-ca": tls = .verifyCA
                case "verify-full": tls = .verifyFull
                default:
                    throw PostgresLocationError("sslmode must be disable, allow, prefer, require, verify-ca or verify-full")
                }
            case "sslrootcert":
                guard let v = item.value, !v.isEmpty else { throw PostgresLocationError("sslrootcert names no file") }
                rootCertificate = v
            case "application_name", "connect_timeout":
                continue
            default:
                throw PostgresLocationError("its parameter '\(item.name.cutForMessage(40))' is not one Lymph knows (sslmode, sslrootcert)")
            }
        }
        self.init(
            host: host, port: c.port ?? 5432, user: user, password: c.percentEncodedPassword.flatMap { $0.removingPercentEncoding },
            database: database, tls: tls, rootCertificatePath: rootCertificate)
    }
}

/// A `postgres://` URL that cannot be used; the message never quotes the URL.
public struct PostgresLocationError: Error, Sendable, CustomStringConvertible {
    public let message: String
    init(_ message: String) { self.message = message }
    public var description: String { "the PostgreSQL URL cannot be used: \(message)" }
}
