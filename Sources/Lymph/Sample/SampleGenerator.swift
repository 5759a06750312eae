import Crypto
import Foundation

#if canImport(Glibc)
    import Glibc
#elseif canImport(Musl)
    import Musl
#elseif canImport(Darwin)
    import Darwin
#endif

/// What `SampleGenerator` produces. Same options (including the seed) give the same bytes.
public struct SampleOptions: Sendable {
    /// Number of lines to produce.
    public var count: Int
    /// The random generator's seed: the same seed gives the same lines.
    public var seed: UInt64
    /// Event types to draw from (a subset of `SampleGenerator.knownTypes`).
    public var types: [String]
    /// Fraction (0...1) of lines that re-send an earlier good line byte for byte.
    public var duplicates: Double
    /// Fraction (0...1) of lines that are deliberately broken.
    public var malformed: Double
    /// When set, every line is a signed delivery envelope instead of a bare event.
    public var signingSecret: [UInt8]?
    /// `created_at` of the first event is a little after this instant.
    public var start: Date

    /// 2026-06-01T00:00:00Z.
    public static let defaultStart = Date(timeIntervalSince1970: 1_780_272_000)

    /// Options for `count` lines: by default every known type, no duplicates, nothing broken,
    /// unsigned, from `defaultStart`.
    public init(
        count: Int,
        seed: UInt64 = 1,
        types: [String] = SampleGenerator.knownTypes,
        duplicates: Double = 0,
        malformed: Double = 0,
        signingSecret: [UInt8]? = nil,
        start: Date = SampleOptions.defaultStart
    ) {
        self.count = count
        self.seed = seed
        self.types = types
        self.duplicates = duplicates
        self.malformed = malformed
        self.signingSecret = signingSecret
        self.start = start
    }
}

/// Invalid `SampleOptions`, or a failed write.
public struct SampleError: Error, CustomStringConvertible, Sendable {
    /// What is wrong, in one line.
    public var description: String
    /// An error saying `description`.
    public init(_ description: String) { self.description = description }
}

/// Deterministic generator of IMMUNE webhook events, one JSON document per line.
///
/// Lines never contain a raw newline (0x0A) or carriage return (0x0D).
public struct SampleGenerator: Sequence, IteratorProtocol, Sendable {
    /// The IMMUNE event types the generator can write.
    public static let knownTypes = [
        "prediction.created", "alert.triggered", "sensor.status_changed", "maintenance.scheduled",
    ]

    /// Malformed kinds in the order they are cycled through.
    public static let malformedKinds = Defect.allCases.map(\.name)

    /// The options the lines are made from.
    public let options: SampleOptions

    private var random: SampleRandom
    private var remaining: Int
    private var clock: Int64
    private let kinds: [EventKind]
    private let cumulativeWeights: [Int]
    private let defects: [Defect]
    private var defectIndex = 0
    private let signer: HMAC<SHA256>?
    private var scratch: [UInt8] = []
    /// Events are written here through an unchecked cursor, then copied out in one go.
    /// Events are under 1 KiB; the slack makes overrunning impossible by construction.
    private var lineBuffer = [UInt8](repeating: 0, count: 16 * 1_024)
    // Bounded history for duplicates, so memory does not grow with `count`.
    private var ring: [[UInt8]] = []
    private var ringNext = 0
    private static let ringCapacity = 1_000

    /// A generator for `options`; throws `SampleError` for options it cannot honour (a negative
    /// count, a ratio out of range, an unknown type, an empty secret, dates past year 9999).
    public init(options: SampleOptions) throws {
        guard options.count >= 0 else {
            throw SampleError("count must not be negative (got \(options.count))")
        }
        for (name, ratio) in [("duplicates", options.duplicates), ("malformed", options.malformed)]
        where !(0...1).contains(ratio) {
            throw SampleError("\(name) ratio must be between 0 and 1 (got \(ratio))")
        }
        guard options.duplicates + options.malformed <= 1 + 1e-9 else {
            throw SampleError("duplicates + malformed must not exceed 1")
        }
        guard !options.types.isEmpty else {
            throw SampleError("types must name at least one of: \(Self.knownTypes.joined(separator: ", "))")
        }
        for type in options.types where !Self.knownTypes.contains(type) {
            throw SampleError("unknown event type '\(type)'; known types: \(Self.knownTypes.joined(separator: ", "))")
        }
        if let secret = options.signingSecret, secret.isEmpty {
            throw SampleError("signing secret must not be empty")
        }
        let startSeconds = options.start.timeIntervalSince1970
        // Keep every timestamp (including ones up to 30 days ahead) within years 0001...9999.
        let lastSeconds = startSeconds + Double(options.count) * 2 + 31 * 86_400
        guard startSeconds.isFinite, startSeconds >= -62_135_596_800, lastSeconds < 253_402_300_800 else {
            throw SampleError("start, and count events up to 2 s apart after it, must stay within years 0001 to 9999")
        }

        self.options = options
        random = SampleRandom(seed: options.seed)
        remaining = options.count
        // Via whole microseconds so that e.g. .001 s does not floor to 0 ms.
        let micros = Int64((startSeconds * 1_000_000).rounded())
        clock = micros >= 0 ? micros / 1_000 : -((-micros + 999) / 1_000)
        // Ordered by knownTypes so the order given in `types` does not change output.
        kinds = EventKind.allCases.filter { options.types.contains(Self.knownTypes[$0.rawValue]) }
        var total = 0
        cumulativeWeights = kinds.map {
            total += $0.weight; return total
        }
        if let secret = options.signingSecret {
            signer = HMAC<SHA256>(key: SymmetricKey(data: secret))
            defects = Defect.allCases
        } else {
            signer = nil
            defects = Defect.allCases.filter { !$0.needsSignature }
        }
    }

    /// The next line without its trailing newline, or nil after `count` lines.
    public mutating func next() -> [UInt8]? {
        var line: [UInt8] = []
        line.reserveCapacity(768)
        return appendLine(to: &line) ? line : nil
    }

    /// Writes all remaining lines, each newline-terminated, to `fd` in large writes.
    public mutating func write(to fd: Int32) throws {
        let chunkSize = 1 << 20
        var buffer: [UInt8] = []
        buffer.reserveCapacity(chunkSize + 4096)
        while appendLine(to: &buffer) {
            buffer.append(0x0A)
            if buffer.count >= chunkSize {
                try Self.writeAll(buffer, to: fd)
                buffer.removeAll(keepingCapacity: true)
            }
        }
        if !buffer.isEmpty {
            try Self.writeAll(buffer, to: fd)
        }
    }

    // MARK: - Lines

    private mutating func appendLine(to out: inout [UInt8]) -> Bool {
        guard remaining > 0 else { return false }
        remaining -= 1
        let roll = random.unit()
        if roll < options.duplicates {
            // The very first line has nothing to repeat yet and is generated fresh.
            if !ring.isEmpty {
                out.append(contentsOf: ring[random.below(ring.count)])
                return true
            }
        } else if roll < options.duplicates + options.malformed {
            appendMalformed(to: &out)
            return true
        }
        let start = out.count
        if signer != nil {
            var body: [UInt8] = []
            swap(&body, &scratch)
            body.removeAll(keepingCapacity: true)
            _ = appendEvent(to: &body, defect: nil)
            appendDelivery(body: body, signature: .valid, rawRange: nil, to: &out)
            swap(&body, &scratch)
        } else {
            _ = appendEvent(to: &out, defect: nil)
        }
        out.withUnsafeBufferPointer { remember(UnsafeBufferPointer(rebasing: $0[start...])) }
        return true
    }

    private mutating func remember(_ line: UnsafeBufferPointer<UInt8>) {
        if ring.count < Self.ringCapacity {
            ring.append(Array(line))
        } else {
            ring[ringNext].removeAll(keepingCapacity: true)
            ring[ringNext].append(contentsOf: line)
            ringNext = (ringNext + 1) % Self.ringCapacity
        }
    }

    private mutating func appendMalformed(to out: inout [UInt8]) {
        let defect = defects[defectIndex]
        defectIndex = (defectIndex + 1) % defects.count
        guard signer != nil else {
            _ = appendEvent(to: &out, defect: defect)
            return
        }
        var body: [UInt8] = []
        swap(&body, &scratch)
        body.removeAll(keepingCapacity: true)
        let rawRange = appendEvent(to: &body, defect: defect.needsSignature ? nil : defect)
        let signature: SignatureMode =
            switch defect {
            case .tamperedSignature: .tampered
            case .missingSignature: .missing
            default: .valid
            }
        appendDelivery(body: body, signature: signature, rawRange: rawRange, to: &out)
        swap(&body, &scratch)
    }

    private enum SignatureMode { case valid, tampered, missing }

    /// `rawRange` marks invalid UTF-8 in `body`, copied verbatim so the signature still
    /// matches the bytes (a JSON string cannot carry them, so such a delivery is not valid JSON).
    private mutating func appendDelivery(
        body: [UInt8], signature: SignatureMode, rawRange: Range<Int>?, to out: inout [UInt8]
    ) {
        Self.append(#"{"headers":{"content-type":"application/json""#, to: &out)
        if signature != .missing, var hmac = signer {
            hmac.update(data: body)
            let mac = hmac.finalize()
            Self.append(#","x-immune-signature":""#, to: &out)
            let hexStart = out.count
            mac.withUnsafeBytes { bytes in
                for byte in bytes {
                    out.append(Self.hexDigit(byte >> 4))
                    out.append(Self.hexDigit(byte & 0x0F))
                }
            }
            if signature == .tampered {
                let position = hexStart + random.below(64)
                let value = Int(Self.hexValue(out[position]))
                out[position] = Self.hexDigit(UInt8((value + 1 + random.below(15)) % 16))
            }
            out.append(0x22)
        }
        Self.append(#"},"body":"#, to: &out)
        if let rawRange {
            out.append(0x22)
            body.withUnsafeBufferPointer { all in
                JSONStringEncoder.appendContents(UnsafeBufferPointer(rebasing: all[..<rawRange.lowerBound]), to: &out)
                out.append(contentsOf: all[rawRange])
                JSONStringEncoder.appendContents(UnsafeBufferPointer(rebasing: all[rawRange.upperBound...]), to: &out)
            }
            out.append(0x22)
        } else {
            JSONStringEncoder.append(body, to: &out)
        }
        out.append(0x7D)
    }

    // MARK: - Events

    /// Appends one event, broken as `defect` says. Returns the range (relative to
    /// the event's first byte) of inserted invalid UTF-8, if any.
    private mutating func appendEvent(to out: inout [UInt8], defect: Defect?) -> Range<Int>? {
        let lineStart = out.count
        var buffer: [UInt8] = []
        swap(&buffer, &lineBuffer)
        let (length, dataOffset) = buffer.withUnsafeMutableBufferPointer { bytes in
            var cursor = ByteCursor(bytes.baseAddress!)
            let dataOffset = writeEvent(to: &cursor, defect: defect)
            return (cursor.position - bytes.baseAddress!, dataOffset)
        }
        buffer.withUnsafeBufferPointer { out.append(contentsOf: UnsafeBufferPointer(rebasing: $0[..<length])) }
        swap(&buffer, &lineBuffer)
        guard let defect else { return nil }

        // Defects that are easier to apply to the finished bytes.
        let dataStart = lineStart + dataOffset
        switch defect {
        case .truncated:
            let cut = lineStart + 1 + random.below(out.count - lineStart - 1)
            out.removeSubrange(cut...)
        case .trailingComma:
            out.insert(0x2C, at: out.count - 1)
        case .stringData:
            // Double-encoded JSON: a common producer bug.
            let data = Array(out[dataStart..<(out.count - 1)])
            out.removeSubrange(dataStart...)
            JSONStringEncoder.append(data, to: &out)
            out.append(0x7D)
        case .invalidUTF8:
            let sequences: [[UInt8]] = [[0xFF], [0xC3, 0x28], [0xED, 0xA0, 0x80], [0xC0, 0xAF], [0xE2, 0x82], [0x80]]
            let bad = random.pick(sequences)
            let at = lineStart + #"{"id":"evt_"#.utf8.count
            out.insert(contentsOf: bad, at: at)
            return (at - lineStart)..<(at - lineStart + bad.count)
        case .controlCharacter:
            // Inside the first string value of `data` (every payload starts with one).
            var colon = dataStart
            while out[colon] != 0x3A { colon += 1 }
            out.insert(random.pick([0x09, 0x01, 0x1B, 0x0C, 0x08, 0x1F] as [UInt8]), at: colon + 2)
        default:
            break
        }
        return nil
    }

    /// Writes the event; returns the offset of the `data` value.
    private mutating func writeEvent(to out: inout ByteCursor, defect: Defect?) -> Int {
        let start = out.position
        let kind = pickKind()
        clock += Int64(random.int(in: 100...2_000))
        let created = clock
        let idHigh = random.next()
        let idLow = random.next()

        if defect == .notAnObject {
            if random.below(2) == 0 {
                out.literal(#"["evt_"#)
                out.hex(idHigh, digits: 16)
                out.hex(idLow, digits: 4)
                out.literal(#"",""#)
                out.literal(kind.typeName)
                out.literal(#"",""#)
                out.timestamp(created)
                out.literal(#""]"#)
            } else {
                out.int(created)
            }
            return 0
        }

        out.byte(0x7B)
        switch defect {
        case .missingID: break
        case .emptyID: out.literal(#""id":"","#)
        default:
            out.literal(#""id":"evt_"#)
            out.hex(idHigh, digits: 16)
            out.hex(idLow, digits: 4)
            out.literal(#"","#)
        }
        if defect == .numericType {
            out.literal(#""type":"#)
            out.int(Int64(kind.rawValue + 1))
            out.byte(0x2C)
        } else {
            out.literal(#""type":""#)
            out.literal(kind.typeName)
            out.literal(#"","#)
        }
        out.literal(#""created_at":""#)
        if defect == .badTimestamp {
            writeBadTimestamp(created, to: &out)
        } else {
            out.timestamp(created)
        }
        out.literal(#"","data":"#)
        let dataOffset = out.position - start
        writeData(kind, created: created, to: &out)
        out.byte(0x7D)
        return dataOffset
    }

    private mutating func pickKind() -> EventKind {
        let roll = random.below(cumulativeWeights[cumulativeWeights.count - 1])
        var index = 0
        while cumulativeWeights[index] <= roll { index += 1 }
        return kinds[index]
    }

    private mutating func writeData(_ kind: EventKind, created: Int64, to out: inout ByteCursor) {
        let equipment = Equipment(index: random.below(Equipment.fleetSize))
        switch kind {
        case .prediction:
            out.literal(#"{"prediction_id":"pred_"#)
            out.hex(random.next(), digits: 16)
            out.literal(#"","equipment_id":""#)
            out.equipment(equipment)
            out.literal(#"","confidence":0."#)
            out.twoDigits(random.int(in: 50...99))
            out.literal(#","predicted_failure_time":""#)
            out.timestamp(created + Int64(random.int(in: 2 * 1_440...30 * 1_440)) * 60_000)
            out.literal(#"","recommended_action":""#)
            out.literal(equipment.kind.action(random.below(equipment.kind.actionCount)))
            out.literal(#"","supporting_data":{"vibration_trend":""#)
            let trend = random.below(100)
            out.literal(trend < 55 ? "increasing" : trend < 80 ? "erratic" : "stable")
            out.literal(#"","temperature_anomalies":"#)
            out.int(Int64(random.int(in: 0...12)))
            out.literal("}}")

        case .alert:
            let sensor = random.int(in: 1...equipment.kind.sensorCount)
            let metric = equipment.kind.metric(ofSensor: sensor)
            let threshold = random.int(in: metric.thresholdRange)
            // Squared roll: mild exceedances are common, severe ones rare.
            let u = random.unit()
            let permille = 10 + Int(u * u * 590)
            out.literal(#"{"alert_id":"alt_"#)
            out.hex(random.next(), digits: 16)
            out.literal(#"","sensor_id":""#)
            out.sensor(equipment, sensor)
            out.literal(#"","equipment_id":""#)
            out.equipment(equipment)
            out.literal(#"","metric":""#)
            out.literal(metric.name)
            out.literal(#"","value":"#)
            out.hundredths(threshold + threshold * permille / 1_000)
            out.literal(#","threshold":"#)
            out.hundredths(threshold)
            out.literal(#","unit":""#)
            out.literal(metric.unit)
            out.literal(#"","severity":""#)
            out.literal(permille < 100 ? "low" : permille < 250 ? "medium" : permille < 400 ? "high" : "critical")
            out.literal(#""}"#)

        case .sensor:
            let sensor = random.int(in: 1...equipment.kind.sensorCount)
            let transition = random.below(100)
            let (previous, status): (SensorStatus, SensorStatus) =
                transition < 35
                ? (.online, .offline)
                : transition < 65
                    ? (.offline, .online)
                    : transition < 80
                        ? (.online, .error)
                        : transition < 92
                            ? (.error, .online)
                            : transition < 96 ? (.offline, .error) : (.error, .offline)
            out.literal(#"{"sensor_id":""#)
            out.sensor(equipment, sensor)
            out.literal(#"","equipment_id":""#)
            out.equipment(equipment)
            out.literal(#"","previous_status":""#)
            out.literal(previous.name)
            out.literal(#"","status":""#)
            out.literal(status.name)
            out.literal(#"","reason":"#)
            if let reason = status.reason(random.below(status.reasonCount)) {
                out.byte(0x22)
                out.literal(reason)
                out.byte(0x22)
            } else {
                out.literal("null")
            }
            out.byte(0x7D)

        case .maintenance:
            out.literal(#"{"ticket_id":"mt_"#)
            out.hex(random.next(), digits: 16)
            out.literal(#"","equipment_id":""#)
            out.equipment(equipment)
            out.literal(#"","action":""#)
            out.literal(equipment.kind.action(random.below(equipment.kind.actionCount)))
            out.literal(#"","due_by":""#)
            out.timestamp(created + Int64(random.int(in: 1_440...14 * 1_440)) * 60_000)
            out.literal(#"","priority":""#)
            let priority = random.below(100)
            out.literal(priority < 10 ? "critical" : priority < 40 ? "high" : priority < 80 ? "medium" : "low")
            out.literal(#"","scheduled_by":"immune"}"#)
        }
    }

    /// Plausible-looking but not RFC 3339 (no offset, wrong layout, epoch number...).
    private mutating func writeBadTimestamp(_ millis: Int64, to out: inout ByteCursor) {
        let t = CivilTime(millis: millis)
        switch random.below(5) {
        case 0:  // space instead of T, no offset
            out.timestamp(millis)
            out.position -= 1
            out.position[-13] = 0x20  // the T
        case 1:  // no offset
            out.timestamp(millis)
            out.position -= 1
        case 2:
            out.int(millis)
        case 3:
            out.twoDigits(t.month)
            out.byte(0x2F)
            out.twoDigits(t.day)
            out.byte(0x2F)
            out.int(Int64(t.year))
            out.byte(0x20)
            out.clock(t)
        default:
            out.literal(t.weekdayName)
            out.literal(", ")
            out.twoDigits(t.day)
            out.byte(0x20)
            out.literal(t.monthName)
            out.byte(0x20)
            out.int(Int64(t.year))
            out.byte(0x20)
            out.clock(t)
            out.literal(" GMT")
        }
    }

    private static func writeAll(_ bytes: [UInt8], to fd: Int32) throws {
        try bytes.withUnsafeBytes { raw in
            guard var pointer = raw.baseAddress else { return }
            var left = raw.count
            while left > 0 {
                let written = Self.systemWrite(fd, pointer, left)
                if written >= 0 {
                    pointer += written
                    left -= written
                    continue
                }
                let code = errno
                if code == EINTR { continue }
                if code == EAGAIN || code == EWOULDBLOCK {
                    // Non-blocking descriptor: wait until it can take more.
                    var request = pollfd(fd: fd, events: Int16(POLLOUT), revents: 0)
                    _ = poll(&request, 1, -1)
                    continue
                }
                throw SampleError("write to file descriptor \(fd) failed: \(String(cString: strerror(code)))")
            }
        }
    }
}

// MARK: - Supporting values

extension SampleGenerator {
    /// Ways a malformed line is broken. Every one fails a strict RFC 8259 parse or the
    /// schema (id and type non-empty strings, created_at RFC 3339, data an object).
    enum Defect: CaseIterable, Sendable {
        case truncated, trailingComma, missingID, numericType, stringData, badTimestamp
        case emptyID, notAnObject, invalidUTF8, controlCharacter
        // Signed deliveries only: the body is fine, the header is not.
        case tamperedSignature, missingSignature

        var needsSignature: Bool { self == .tamperedSignature || self == .missingSignature }

        var name: String {
            switch self {
            case .truncated: "truncated"
            case .trailingComma: "trailing-comma"
            case .missingID: "missing-id"
            case .numericType: "numeric-type"
            case .stringData: "string-data"
            case .badTimestamp: "bad-timestamp"
            case .emptyID: "empty-id"
            case .notAnObject: "not-an-object"
            case .invalidUTF8: "invalid-utf8"
            case .controlCharacter: "control-character"
            case .tamperedSignature: "tampered-signature"
            case .missingSignature: "missing-signature"
            }
        }
    }
}

// Nested so these helper names cannot collide with other types in the module.
extension SampleGenerator {
    private static func append(_ literal: StaticString, to out: inout [UInt8]) {
        literal.withUTF8Buffer { out.append(contentsOf: $0) }
    }

    private static func systemWrite(_ fd: Int32, _ pointer: UnsafeRawPointer, _ count: Int) -> Int {
        #if canImport(Darwin)
            Darwin.write(fd, pointer, count)
        #elseif canImport(Musl)
            Musl.write(fd, pointer, count)
        #else
            Glibc.write(fd, pointer, count)
        #endif
    }

    fileprivate enum EventKind: Int, CaseIterable {
        case prediction, alert, sensor, maintenance

        var weight: Int {
            switch self {
            case .prediction: 40
            case .alert: 30
            case .sensor: 20
            case .maintenance: 10
            }
        }

        var typeName: StaticString {
            switch self {
            case .prediction: "prediction.created"
            case .alert: "alert.triggered"
            case .sensor: "sensor.status_changed"
            case .maintenance: "maintenance.scheduled"
            }
        }
    }

    fileprivate enum SensorStatus {
        case online, offline, error

        var name: StaticString {
            switch self {
            case .online: "online"
            case .offline: "offline"
            case .error: "error"
            }
        }

        var reasonCount: Int { self == .error ? 3 : 4 }

        /// Why a sensor entered this status; nil is written as JSON null.
        func reason(_ index: Int) -> StaticString? {
            switch (self, index) {
            case (.online, 0): "Reconnected"
            case (.online, 1): "Recalibrated"
            case (.online, 2): "Firmware updated"
            case (.offline, 0): "Network timeout"
            case (.offline, 1): "Power loss"
            case (.offline, 2): "Gateway unreachable"
            case (.error, 0): "Calibration drift"
            case (.error, 1): "Reading out of range"
            case (.error, _): "Hardware fault"
            default: nil
            }
        }
    }

    fileprivate enum Metric {
        case vibration, temperature, pressure, current

        var name: StaticString {
            switch self {
            case .vibration: "vibration_rms"
            case .temperature: "temperature"
            case .pressure: "pressure"
            case .current: "current"
            }
        }

        var unit: StaticString {
            switch self {
            case .vibration: "mm/s"
            case .temperature: "celsius"
            case .pressure: "bar"
            case .current: "amps"
            }
        }

        /// Alert thresholds, in hundredths of `unit`.
        var thresholdRange: ClosedRange<Int> {
            switch self {
            case .vibration: 450...1_120
            case .temperature: 7_000...9_500
            case .pressure: 600...1_600
            case .current: 1_500...6_000
            }
        }
    }

    fileprivate enum EquipmentKind: CaseIterable {
        case pump, compressor, turbine, conveyor

        var prefix: StaticString {
            switch self {
            case .pump: "pump_"
            case .compressor: "compressor_"
            case .turbine: "turbine_"
            case .conveyor: "conveyor_"
            }
        }

        /// Machine numbers in the fleet (200 machines in all).
        var numbers: ClosedRange<Int> {
            switch self {
            case .pump: 1...70
            case .compressor: 1...40
            case .turbine: 1...30
            case .conveyor: 101...160
            }
        }

        var sensorCount: Int {
            switch self {
            case .pump: 4
            case .compressor: 5
            case .turbine: 6
            case .conveyor: 3
            }
        }

        /// Sensor n always measures the same metric, so ids and metrics stay consistent.
        func metric(ofSensor sensor: Int) -> Metric {
            switch (sensor - 1) % (self == .conveyor ? 3 : 4) {
            case 0: .vibration
            case 1: .temperature
            case 2: self == .conveyor ? .current : .pressure
            default: .current
            }
        }

        var actionCount: Int { self == .pump ? 5 : 4 }

        func action(_ index: Int) -> StaticString {
            switch (self, index) {
            case (.pump, 0), (.compressor, 0), (.turbine, 1): "Replace bearing"
            case (.pump, 1), (.compressor, 2): "Replace seal"
            case (.pump, 2), (.conveyor, 3): "Realign motor coupling"
            case (.pump, 3), (.conveyor, 1): "Lubricate drive shaft"
            case (.pump, _): "Inspect impeller"
            case (.compressor, 1), (.turbine, 3): "Clean heat exchanger"
            case (.compressor, _): "Inspect valve plates"
            case (.turbine, 0): "Inspect blades"
            case (.turbine, _): "Balance rotor"
            case (.conveyor, 0): "Tension belt"
            case (.conveyor, _): "Replace idler roller"
            }
        }
    }

    /// One machine of the fixed fleet, e.g. `pump_0042`.
    fileprivate struct Equipment {
        static let fleetSize = 200

        var kind: EquipmentKind
        var number: Int

        init(index: Int) {
            var rest = index
            for kind in EquipmentKind.allCases {
                if rest < kind.numbers.count {
                    self.kind = kind
                    number = kind.numbers.lowerBound + rest
                    return
                }
                rest -= kind.numbers.count
            }
            preconditionFailure("equipment index \(index) outside the fleet")
        }
    }

    /// Calendar fields of a millisecond Unix time, in UTC.
    fileprivate typealias CivilTime = Timestamp.Civil

    @inline(__always)
    fileprivate static func hexDigit(_ value: UInt8) -> UInt8 {
        value < 10 ? 0x30 + value : 0x57 + value
    }

    @inline(__always)
    fileprivate static func hexValue(_ digit: UInt8) -> UInt8 {
        digit <= 0x39 ? digit - 0x30 : digit - 0x57
    }

    /// Unchecked writer over a buffer sized for the worst case; it avoids the per-append
    /// uniqueness and capacity checks of `[UInt8]` on the path that writes every byte.
    fileprivate struct ByteCursor {
        var position: UnsafeMutablePointer<UInt8>

        init(_ start: UnsafeMutablePointer<UInt8>) { position = start }

        @inline(__always)
        mutating func byte(_ value: UInt8) {
            position.pointee = value
            position += 1
        }

        @inline(__always)
        mutating func literal(_ text: StaticString) {
            text.withUTF8Buffer { source in
                UnsafeMutableRawPointer(position).copyMemory(from: source.baseAddress!, byteCount: source.count)
                position += source.count
            }
        }

        /// The low `digits * 4` bits of `value`, most significant first.
        @inline(__always)
        mutating func hex(_ value: UInt64, digits: Int) {
            for i in 0..<digits {
                position[i] = SampleGenerator.hexDigit(UInt8(truncatingIfNeeded: value >> UInt64(4 * (digits - 1 - i))) & 0x0F)
            }
            position += digits
        }

        mutating func int(_ value: Int64) {
            if value < 0 { byte(0x2D) }
            var magnitude = value.magnitude
            var length = 0
            var probe = magnitude
            repeat {
                length += 1
                probe /= 10
            } while probe > 0
            for i in stride(from: length - 1, through: 0, by: -1) {
                position[i] = 0x30 + UInt8(magnitude % 10)
                magnitude /= 10
            }
            position += length
        }

        @inline(__always)
        mutating func twoDigits(_ value: Int) {
            position[0] = 0x30 + UInt8(value / 10)
            position[1] = 0x30 + UInt8(value % 10)
            position += 2
        }

        /// `hundredths` / 100 with exactly two decimals.
        mutating func hundredths(_ value: Int) {
            int(Int64(value / 100))
            byte(0x2E)
            twoDigits(value % 100)
        }

        /// `HH:MM:SS`
        mutating func clock(_ t: CivilTime) {
            twoDigits(t.hour)
            byte(0x3A)
            twoDigits(t.minute)
            byte(0x3A)
            twoDigits(t.second)
        }

        /// RFC 3339 UTC with milliseconds: `2026-06-01T00:00:01.250Z`.
        mutating func timestamp(_ millis: Int64) {
            let t = CivilTime(millis: millis)
            twoDigits(t.year / 100)
            twoDigits(t.year % 100)
            byte(0x2D)
            twoDigits(t.month)
            byte(0x2D)
            twoDigits(t.day)
            byte(0x54)
            clock(t)
            byte(0x2E)
            byte(0x30 + UInt8(t.millisecond / 100))
            twoDigits(t.millisecond % 100)
            byte(0x5A)
        }

        mutating func equipment(_ equipment: Equipment) {
            literal(equipment.kind.prefix)
            twoDigits(equipment.number / 100)
            twoDigits(equipment.number % 100)
        }

        /// `sen_<equipment>_<n>`
        mutating func sensor(_ equipment: Equipment, _ sensor: Int) {
            literal("sen_")
            self.equipment(equipment)
            byte(0x5F)
            int(Int64(sensor))
        }
    }
}
