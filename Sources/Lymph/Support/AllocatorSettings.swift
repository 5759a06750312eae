import CMalloc
import Foundation

/// glibc malloc's two thresholds, set for how a run uses memory.
///
/// Every batch allocates its buffers afresh (the input block, the parse tape, the encoded
/// output) on one thread and frees them on another, a few batches at a time. With glibc's
/// defaults an arena gives back the free memory at its top as soon as it passes about 256 KiB,
/// so each batch's buffers come back as new pages that fault in one by one, and large ones get a
/// mapping of their own each time. These settings let an arena keep up to 1.5 MiB free at its top
/// for the next batch, and serve blocks of up to 512 KiB from the arenas. What an arena keeps is
/// bounded by that 1.5 MiB, so memory still does not grow with the input.
public enum AllocatorSettings {
    /// Allocations up to this size come from the arenas, not a mapping of their own.
    static let mmapThreshold: Int32 = 512 * 1024
    /// Free memory an arena keeps at its top before giving it back.
    static let trimThreshold: Int32 = 1536 * 1024

    /// The variables with which an operator sets malloc's tuning; with any of them set, that
    /// choice stands.
    static let operatorVariables = ["MALLOC_MMAP_THRESHOLD_", "MALLOC_TRIM_THRESHOLD_", "MALLOC_TOP_PAD_", "GLIBC_TUNABLES"]

    /// Sets both thresholds for this process, unless the environment sets malloc's tuning.
    /// Returns whether it did.
    @discardableResult
    public static func apply(environment: [String: String] = ProcessInfo.processInfo.environment) -> Bool {
        if operatorVariables.contains(where: { environment[$0] != nil }) { return false }
        // Either call fixes both thresholds (glibc stops adapting them), so both are set.
        return mallopt(M_MMAP_THRESHOLD, mmapThreshold) == 1 && mallopt(M_TRIM_THRESHOLD, trimThreshold) == 1
    }
}
