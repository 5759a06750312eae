import GRDB

/// Where an interrupted `lymph run` got to in its input files (`lymph_run_inputs`), for
/// `InputCheckpoint`: one row per input, in order, written in the runner's transaction and
/// deleted when a run reads its inputs to the end. Each pipeline has its own: several may share
/// a state file, and one must neither skip the items another committed nor lose its record.
extension StateStore {
    struct RunInputRecord: Sendable, Equatable {
        var identity: InputCheckpoint.Identity
        /// Items of the input whose work is committed.
        var done: Int
        /// The last of them (nil when none is, or in a record an older version wrote).
        var lastDone: InputCheckpoint.ResumePoint?
    }

    /// The inputs recorded for `pipeline`, in order (empty when no run of it was interrupted).
    func runInputs(pipeline: String) throws(StoreError) -> [RunInputRecord] {
        try read { db in
            try Row.fetchAll(
                db,
                sql: """
                    SELECT path, device, inode, head_length, head_fingerprint, done, last_line, last_fingerprint
                    FROM lymph_run_inputs WHERE pipeline = ? ORDER BY position
                    """, arguments: [pipeline]
            ).map { row in
                RunInputRecord(
                    identity: .init(
                        path: try row.decode(atIndex: 0), device: UInt64(bitPattern: try row.decode(atIndex: 1)),
                        inode: UInt64(bitPattern: try row.decode(atIndex: 2)), headLength: try row.decode(atIndex: 3),
                        headFingerprint: UInt64(bitPattern: try row.decode(atIndex: 4))),
                    done: try row.decode(atIndex: 5),
                    lastDone: try (row.decode(atIndex: 6) as Int?).flatMap { line in
                        try (row.decode(atIndex: 7) as Int64?).map { .init(line: line, fingerprint: UInt64(bitPattern: $0)) }
                    })
            }
        }
    }

    static func clearRunInputs(_ db: Database, pipeline: String) throws {
        try db.execute(sql: "DELETE FROM lymph_run_inputs WHERE pipeline = ?", arguments: [pipeline])
    }

    static func recordRunInput(
        _ db: Database, pipeline: String, index: Int, _ input: InputCheckpoint.Identity, done: Int, last: InputCheckpoint.ResumePoint?
    ) throws {
        try db.cachedStatement(
            sql: """
                INSERT INTO lymph_run_inputs (pipeline, position, path, device, inode, head_length, head_fingerprint, done, last_line, last_fingerprint)
                VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)
                """
        ).execute(arguments: [
            pipeline, index, input.path, Int64(bitPattern: input.device), Int64(bitPattern: input.inode),
            input.headLength, Int64(bitPattern: input.headFingerprint), done, last?.line, last.map { Int64(bitPattern: $0.fingerprint) },
        ])
    }

    static func updateRunInput(_ db: Database, pipeline: String, index: Int, done: Int, last: InputCheckpoint.ResumePoint?) throws {
        try db.cachedStatement(
            sql: "UPDATE lymph_run_inputs SET done = ?, last_line = ?, last_fingerprint = ? WHERE pipeline = ? AND position = ?"
        ).execute(arguments: [done, last?.line, last.map { Int64(bitPattern: $0.fingerprint) }, pipeline, index])
    }
}
