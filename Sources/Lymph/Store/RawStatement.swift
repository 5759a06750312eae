import GRDB
import GRDBSQLite

/// A cached statement driven through SQLite's own API: for the writes a commit makes by the
/// thousand (tickets, their source lists, sensors), where building GRDB's arguments (an array of
/// existentials per row) costs as much as SQLite's work.
struct RawStatement {
    private let db: Database
    /// Held so that its SQLite statement lives as long as this does.
    private let owner: Statement
    private var statement: OpaquePointer { owner.sqliteStatement }

    /// The connection's cached statement for `sql`, reset and with no values bound.
    init(_ db: Database, sql: String) throws {
        self.db = db
        owner = try db.cachedStatement(sql: sql)
        sqlite3_reset(statement)
        sqlite3_clear_bindings(statement)
    }

    // Each bind throws when SQLite refuses the value (`SQLiteBinding`): a statement run after a
    // failed bind would write NULL in its place.

    func bind(_ index: Int32, _ value: String) throws {
        var text = value
        try text.withUTF8 { try SQLiteBinding.text(statement, index, UnsafeRawBufferPointer($0), db) }
    }

    func bind(_ index: Int32, _ value: String?) throws {
        if let value { try bind(index, value) } else { try SQLiteBinding.check(sqlite3_bind_null(statement, index), db) }
    }

    func bind(_ index: Int32, _ value: Double) throws {
        try SQLiteBinding.check(sqlite3_bind_double(statement, index, value), db)
    }

    func bind(_ index: Int32, _ value: Int64) throws {
        try SQLiteBinding.check(sqlite3_bind_int64(statement, index, value), db)
    }

    func bind(_ index: Int32, blob bytes: UnsafeRawBufferPointer) throws {
        try SQLiteBinding.blob(statement, index, bytes, db)
    }

    /// `bytes` (UTF-8) as text.
    func bind(_ index: Int32, text bytes: [UInt8]) throws {
        try bytes.withUnsafeBytes { try SQLiteBinding.text(statement, index, $0, db) }
    }

    /// Runs the statement (one that returns no rows) and resets it for the next values; returns
    /// how many rows it changed.
    @discardableResult
    func run() throws -> Int {
        let rc = sqlite3_step(statement)
        defer { sqlite3_reset(statement) }
        guard rc == SQLITE_DONE else { throw SQLiteBinding.failure(rc, db) }
        return Int(sqlite3_changes(db.sqliteConnection))
    }
}
