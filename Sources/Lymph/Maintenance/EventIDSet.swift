/// A set of event ids held by their fingerprints (`DedupKeyFilter.fingerprint`). Looking up a
/// new id, nearly every lookup, compares integers: a set of the strings themselves would
/// compare the new id with every id along its probe, each in memory of its own.
///
/// Exact, byte for byte (as the store compares ids; Swift's `String` equality is canonical
/// equivalence): an id whose fingerprint another id holds already is kept in a set of its own.
struct EventIDSet {
    private var byFingerprint: [UInt64: String] = [:]
    private var collided: Set<KeyBytes> = []

    var isEmpty: Bool { byFingerprint.isEmpty }

    func contains(_ id: String, fingerprint: UInt64) -> Bool {
        guard let held = byFingerprint[fingerprint] else { return false }
        return held.utf8.elementsEqual(id.utf8) || collided.contains(KeyBytes(Array(id.utf8)))
    }

    func contains(_ id: String) -> Bool {
        contains(id, fingerprint: DedupKeyFilter.fingerprint(id))
    }

    mutating func insert(_ id: String, fingerprint: UInt64) {
        if let held = byFingerprint[fingerprint] {
            if !held.utf8.elementsEqual(id.utf8) { collided.insert(KeyBytes(Array(id.utf8))) }
        } else {
            byFingerprint[fingerprint] = id
        }
    }

    mutating func formUnion(_ other: EventIDSet) {
        for (fingerprint, id) in other.byFingerprint { insert(id, fingerprint: fingerprint) }
        // Each of these collided with an id held at its fingerprint, now held here too.
        collided.formUnion(other.collided)
    }

    /// Empties the set and keeps its room: the next commit group fills it as far again.
    mutating func removeAll() {
        byFingerprint.removeAll(keepingCapacity: true)
        collided.removeAll()
    }
}
