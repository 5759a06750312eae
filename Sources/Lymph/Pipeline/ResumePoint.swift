/// Where a dead-lettered event re-enters its pipeline on replay, and the dedup claims it holds.
///
/// A stage after the pipeline's last `verify` that fails an event records the event as it
/// entered the stage. Replay then continues from that stage: the stages before it (verify,
/// dedup, tickets) already did their work and are not run a second time; an event that Lymph
/// itself emitted (`maintenance.scheduled`) carries no signature to check again anyway.
/// Claims are named by their dedup stage, not its position, so an edited pipeline still settles
/// them; a stage that is gone by name (or is now another kind) is a dead letter again,
/// `replay_stage_missing`, never a silent re-run from the top.
public struct ResumePoint: Sendable {
    /// A dedup key the event holds, to be settled (committed or released) when replay finishes with
    /// it.
    public struct Claim: Sendable, Equatable {
        /// Name of the dedup stage that made the claim.
        public let stage: String
        /// The key's bytes, as the dedup stage read them.
        public let key: [UInt8]

        /// A claim of `key` by the dedup stage named `stage`.
        public init(stage: String, key: [UInt8]) {
            self.stage = stage
            self.key = key
        }
    }

    /// Name and kind of the stage the event failed in.
    public let stage: String
    /// The stage's kind, so that replay refuses a stage of that name that is now of another kind.
    public let kind: String
    /// The dedup claims the event held when it failed.
    public let claims: [Claim]

    /// A resume point at the stage `stage` of kind `kind`, with the event's claims.
    public init(stage: String, kind: String, claims: [Claim]) {
        self.stage = stage
        self.kind = kind
        self.claims = claims
    }

    /// The reason of a record whose stage the pipeline no longer has.
    public static let stageMissingReason = Reason.replayStageMissing.rawValue
}

/// A resume point read back by parse, kept behind one reference so events that are not
/// replays (nearly all) pay one pointer for it.
final class ResumeRequest: Sendable {
    let point: ResumePoint

    init(_ point: ResumePoint) {
        self.point = point
    }
}
