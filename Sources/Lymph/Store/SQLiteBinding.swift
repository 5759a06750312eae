import GRDB
import GRDBSQLite

/// Binding values to a statement through SQLite's own API, for the paths that skip GRDB's
/// arguments. A bind that fails (a value over SQLite's length limit, no memory) throws: SQLite
/// leaves the parameter NULL, so a statement stepped anyway would write NULL where the value
/// belongs, or fail on a NOT NULL column for a reason that is not the real one.
enum SQLiteBinding {
    /// `bytes` as a blob (an empty one too: a buffer without an address would bind NULL).
    static func blob(_ statement: OpaquePointer, _ index: Int32, _ bytes: UnsafeRawBufferPointer, _ db: Database) throws {
        try check(sqlite3_bind_blob64(statement, index, address(bytes), UInt64(bytes.count), SQLITE_TRANSIENT_VALUE), db)
    }

    /// `bytes` as a blob SQLite does not copy: it reads them when the statement is stepped, so
    /// the caller steps while `bytes` is alive and binds again (or clears the bindings) before
    /// they go. For a commit's keys, each of which a copy would allocate, copy and free.
    static func borrowedBlob(_ statement: OpaquePointer, _ index: Int32, _ bytes: UnsafeRawBufferPointer, _ db: Database) throws {
        try check(sqlite3_bind_blob64(statement, index, address(bytes), UInt64(bytes.count), nil), db)
    }

    /// `bytes` (UTF-8) as text.
    static func text(_ statement: OpaquePointer, _ index: Int32, _ bytes: UnsafeRawBufferPointer, _ db: Database) throws {
        try check(
            sqlite3_bind_text64(
                statement, index, address(bytes).assumingMemoryBound(to: CChar.self), UInt64(bytes.count), SQLITE_TRANSIENT_VALUE, UInt8(SQLITE_UTF8)),
            db)
    }

    /// Throws SQLite's error for a bind that did not return `SQLITE_OK`.
    static func check(_ rc: Int32, _ db: Database) throws {
        guard rc == SQLITE_OK else { throw failure(rc, db) }
    }

    /// SQLite's error for a call of its own API (a bind, a step) that returned `rc`.
    static func failure(_ rc: Int32, _ db: Database) -> DatabaseError {
        DatabaseError(resultCode: ResultCode(rawValue: rc), message: String(cString: sqlite3_errmsg(db.sqliteConnection)))
    }

    private static func address(_ bytes: UnsafeRawBufferPointer) -> UnsafeRawPointer {
        bytes.baseAddress ?? UnsafeRawPointer(bitPattern: 1)!
    }
}
