import Foundation
import Logging
import NIOCore
import NIOPosix
import PostgresNIO
import Synchronization

/// A connection of its own, outside the pool, for one thread that may block: the spool
/// writer's, which appends hundreds of times a second under load. Its statements go straight
/// to the connection's event loop and the thread waits on a semaphore: two thread wake-ups a
/// statement, where the pool's async API adds a task and two more through Swift's cooperative
/// threads, a cost every instance sharing a machine pays again.
///
/// It connects on first use and again after a failure: a statement that fails without the
/// server's answer, or gets none within the operation deadline, closes the connection, so the
/// next starts on a fresh one; one the server closed while idle is replaced before use. After a
/// failed connect it waits before the next (100 ms, doubling up to 2 s), failing statements at
/// once meanwhile. Same session settings as the pool's (`synchronous_commit = on`, the
/// statement and lock timeouts).
public final class PostgresDirectConnection: Sendable {
    let configuration: PostgresConnection.Configuration
    let operationTimeout: Duration
    let logger: Logger
    let eventLoop: any EventLoop
    private struct State {
        var connection: PostgresConnection?
        var closed = false
        var nextID = 1
        /// After a failed connect, none is tried before this: statements fail at once until
        /// then, so a server that refuses or is overloaded is not asked for a session (a
        /// handshake and an authentication) on every append.
        var retryAt: ContinuousClock.Instant?
        var backoff: Duration = .zero
        var lastFailure = ""
    }
    /// The first wait after a failed connect; it doubles with each failure up to `maxBackoff`.
    static let firstBackoff: Duration = .milliseconds(100)
    static let maxBackoff: Duration = .seconds(2)
    private let state = Mutex(State())

    init(configuration: PostgresConnection.Configuration, operationTimeout: Duration, logger: Logger) {
        self.configuration = configuration
        self.operationTimeout = operationTimeout
        self.logger = logger
        self.eventLoop = MultiThreadedEventLoopGroup.singleton.next()
    }

    /// Runs `query` and returns what `decode` makes of its rows (on the connection's event
    /// loop), within the operation deadline for the connection and again for the statement.
    /// Errors are postgres-nio's, or `PostgresDatabase.DeadlinePassed`.
    func run<T: Sendable>(_ query: PostgresQuery, decode: @escaping @Sendable ([PostgresRow]) throws -> T) throws -> T {
        let connection = try connected()
        do {
            return try Self.wait(connection.query(query, logger: logger).flatMapThrowing { try decode($0.rows) }, within: operationTimeout)
        } catch let answered as PSQLError where answered.serverInfo != nil {
            // The server refused the statement and the connection is ready for the next (one
            // the server ends after its message is closed and replaced before use).
            throw answered
        } catch {
            // Its state is unknown (a statement may still be running on it): never used again.
            drop(connection)
            throw error
        }
    }

    /// A connection left open is closed (postgres-nio asserts that none is released open).
    deinit { close() }

    /// Closes the connection; later statements fail.
    public func close() {
        let connection = state.withLock { s in
            s.closed = true
            defer { s.connection = nil }
            return s.connection
        }
        connection.map(Self.shut)
    }

    private func connected() throws -> PostgresConnection {
        let (open, id): (PostgresConnection?, Int?) = try state.withLock { s in
            if s.closed { throw Closed() }
            if let c = s.connection, !c.isClosed { return (c, nil) }
            if let at = s.retryAt, case let left = at - ContinuousClock.now, left > .zero {
                throw Backoff(failure: s.lastFailure, left: left)
            }
            if let stale = s.connection { Self.shut(stale) }
            s.connection = nil
            s.nextID += 1
            return (nil, s.nextID)
        }
        if let open { return open }
        let future = PostgresConnection.connect(on: eventLoop, configuration: configuration, id: id ?? 0, logger: logger)
        let connection: PostgresConnection
        do {
            connection = try Self.wait(future, within: operationTimeout)
        } catch {
            // One that connects after the wait gave up is closed at once.
            future.whenSuccess(Self.shut)
            state.withLock { s in
                s.backoff = s.backoff == .zero ? Self.firstBackoff : min(s.backoff * 2, Self.maxBackoff)
                s.retryAt = .now + s.backoff
                s.lastFailure = PostgresDatabase.describe(error)
            }
            throw error
        }
        let keep = state.withLock { s in
            s.retryAt = nil
            s.backoff = .zero
            guard !s.closed else { return false }
            s.connection = connection
            return true
        }
        guard keep else {
            Self.shut(connection)
            throw Closed()
        }
        return connection
    }

    private func drop(_ connection: PostgresConnection) {
        state.withLock { s in
            if s.connection === connection { s.connection = nil }
        }
        Self.shut(connection)
    }

    /// Closes `connection`, holding it until it is closed (postgres-nio asserts that a
    /// connection is closed when it is released).
    static func shut(_ connection: PostgresConnection) {
        connection.close().whenComplete { _ in withExtendedLifetime(connection) {} }
    }

    /// A statement while connecting is not tried again yet, after a failure.
    struct Backoff: Error, CustomStringConvertible {
        let failure: String
        let left: Duration
        var description: String {
            let ms = left.components.seconds * 1000 + left.components.attoseconds / 1_000_000_000_000_000
            return "\(failure); not connecting again for another \(max(1, ms)) ms"
        }
    }

    /// A statement after `close()`.
    struct Closed: Error, CustomStringConvertible {
        var description: String { "the connection is closed (Lymph is stopping)" }
    }

    /// `future`'s value, or `DeadlinePassed` once `limit` has passed.
    static func wait<T: Sendable>(_ future: EventLoopFuture<T>, within limit: Duration) throws -> T {
        let result = Mutex<Result<T, any Error>?>(nil)
        let done = DispatchSemaphore(value: 0)
        future.whenComplete { r in
            result.withLock { $0 = r }
            done.signal()
        }
        guard done.wait(within: limit), let r = result.withLock({ $0 }) else {
            throw PostgresDatabase.DeadlinePassed(limit: limit)
        }
        return try r.get()
    }
}
