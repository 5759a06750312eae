import Foundation
import GRDB

/// The replay ledger's table: keys of resume points whose replayed event completed.
extension StateStore {
    /// Which of `keys` are recorded as replayed.
    func replayed(_ keys: [[UInt8]]) throws(StoreError) -> Set<[UInt8]> {
        if keys.isEmpty { return [] }
        return try read { db in
            var found: Set<[UInt8]> = []
            let statement = try db.cachedStatement(sql: "SELECT 1 FROM lymph_replayed WHERE key = ?")
            for key in keys where try Int.fetchOne(statement, arguments: [Data(key)]) != nil { found.insert(key) }
            return found
        }
    }

    static func replayedInsert(_ db: Database, keys: [[UInt8]], at time: Double) throws {
        let statement = try db.cachedStatement(sql: "INSERT OR IGNORE INTO lymph_replayed (key, replayed_at) VALUES (?, ?)")
        for key in keys { try statement.execute(arguments: [Data(key), time]) }
    }

    /// Forgets replays older than `time`: a record is replayed within days, not years.
    func replayedPurge(before time: Double) throws(StoreError) {
        try write { db in try db.execute(sql: "DELETE FROM lymph_replayed WHERE replayed_at < ?", arguments: [time]) }
    }
}
