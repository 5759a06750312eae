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

    func bind(_ index: Int32, _ value: String) {
        var text = value
        text.withUTF8 { bindText(index, UnsafeRawBufferPointer($0)) }
    }

    func bind(_ index: Int32, _ value: String?) {
        if let value { bind(index, value) } else { sqlite3_bind_null(statement, index) }
    }

    func bind(_ index: Int32, _ value: Double) {
        sqlite3_bind_double(statement, index, value)
    }

    /// `bytes` (UTF-8) as text.
    func bind(_ index: Int32, text bytes: [UInt8]) {
        bytes.withUnsafeBytes { bindText(index, $0) }
    }

    private func bindText(_ index: Int32, _ bytes: UnsafeRawBufferPointer) {
        // An empty buffer may have no address, which SQLite would take for NULL.
        let start = bytes.baseAddress ?? UnsafeRawPointer(bitPattern: 1)!
        _ = sqlite3_bind_text(statement, index, start.assumingMemoryBound(to: CChar.self), Int32(bytes.count), SQLITE_TRANSIENT_VALUE)
    }

    /// Runs the statement (one that returns no rows) and resets it for the next values; returns
    /// how many rows it changed.
    @discardableResult
    func run() throws -> Int {
        let rc = sqlite3_step(statement)
        defer { sqlite3_reset(statement) }
        guard rc == SQLITE_DONE else {
            throw DatabaseError(resultCode: ResultCode(rawValue: rc), message: String(cString: sqlite3_errmsg(db.sqliteConnection)))
        }
        return Int(sqlite3_changes(db.sqliteConnection))
    }
}
