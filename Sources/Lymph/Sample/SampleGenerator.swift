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
    public var description: String
    public init(_ description: String) { self.description = description }
}

/// Deterministic generator of IMMUNE webhook events, one JSON document per line.
///
/// Lines never contain a raw newline (0x0A) or carriage return (0x0D).
public struct SampleGenerator: Sequence, IteratorProtocol, Sendable {
    public static let knownTypes = [
        "prediction.created", "alert.triggered", "sensor.status_changed", "maintenance.scheduled",
    ]

    /// Malformed kinds in the order they are cycled through.
    public static let malformedKinds = Defect.allCases.map(\.name)

    public let options: SampleOptions

    private var random: SampleRandom
    private var remaining: Int
    private var clock: Int64
    private let kinds: [EventKind]
    private let cumulativeWeights: [Int]
    private let fleet: [Equipment]
    private let defects: [Defect]
    private var defectIndex = 0
    private let signer: HMAC<SHA256>?
    private var scratch: [UInt8] = []
    // Bounded history for duplicates, so memory does not grow with `count`.
    private var ring: [[UInt8]] = []
    private var ringNext = 0
    private static let ringCapacity = 1_000

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
            throw SampleError("start must be a date between years 0001 and 9999")
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
        cumulativeWeights = kinds.map { total += $0.weight; return total }
        fleet = Equipment.fleet
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
        remember(out[start...])
        return true
    }

    private mutating func remember(_ line: ArraySlice<UInt8>) {
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
        out.appendLiteral(#"{"headers":{"content-type":"application/json""#)
        if signature != .missing, var hmac = signer {
            hmac.update(data: body)
            let mac = hmac.finalize()
            out.appendLiteral(#","x-immune-signature":""#)
            let hexStart = out.count
            mac.withUnsafeBytes { bytes in
                for byte in bytes {
                    out.append(hexDigit(byte >> 4))
                    out.append(hexDigit(byte & 0x0F))
                }
            }
            if signature == .tampered {
                let position = hexStart + random.below(64)
                let value = Int(hexValue(out[position]))
                out[position] = hexDigit(UInt8((value + 1 + random.below(15)) % 16))
            }
            out.append(0x22)
        }
        out.appendLiteral(#"},"body":"#)
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
        let kind = pickKind()
        clock += Int64(random.int(in: 100...2_000))
        let created = clock
        let idHigh = random.next()
        let idLow = random.next()

        if defect == .notAnObject {
            if random.below(2) == 0 {
                out.appendLiteral(#"["evt_"#)
                out.appendHex(idHigh, digits: 16)
                out.appendHex(idLow, digits: 4)
                out.appendLiteral(#"",""#)
                out.appendLiteral(kind.typeName)
                out.appendLiteral(#"",""#)
                out.appendTimestamp(created)
                out.appendLiteral(#""]"#)
            } else {
                out.appendInt(created)
            }
            return nil
        }

        out.append(0x7B)
        switch defect {
        case .missingID: break
        case .emptyID: out.appendLiteral(#""id":"","#)
        default:
            out.appendLiteral(#""id":"evt_"#)
            out.appendHex(idHigh, digits: 16)
            out.appendHex(idLow, digits: 4)
            out.appendLiteral(#"","#)
        }
        if defect == .numericType {
            out.appendLiteral(#""type":"#)
            out.appendInt(Int64(kind.rawValue + 1))
            out.appendLiteral(",")
        } else {
            out.appendLiteral(#""type":""#)
            out.appendLiteral(kind.typeName)
            out.appendLiteral(#"","#)
        }
        out.appendLiteral(#""created_at":""#)
        if defect == .badTimestamp {
            appendBadTimestamp(created, to: &out)
        } else {
            out.appendTimestamp(created)
        }
        out.appendLiteral(#"","data":"#)
        let dataStart = out.count
        if defect == .stringData {
            // Double-encoded JSON: a common producer bug.
            var data: [UInt8] = []
            appendData(kind, created: created, to: &data)
            JSONStringEncoder.append(data, to: &out)
        } else {
            appendData(kind, created: created, to: &out)
        }
        out.append(0x7D)

        switch defect {
        case .truncated:
            let cut = lineStart + 1 + random.below(out.count - lineStart - 1)
            out.removeSubrange(cut...)
        case .trailingComma:
            out.insert(0x2C, at: out.count - 1)
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

    private mutating func pickKind() -> EventKind {
        let roll = random.below(cumulativeWeights[cumulativeWeights.count - 1])
        var index = 0
        while cumulativeWeights[index] <= roll { index += 1 }
        return kinds[index]
    }

    private mutating func appendData(_ kind: EventKind, created: Int64, to out: inout [UInt8]) {
        let equipment = fleet[random.below(fleet.count)]
        switch kind {
        case .prediction:
            out.appendLiteral(#"{"prediction_id":"pred_"#)
            out.appendHex(random.next(), digits: 16)
            appendEquipmentField(equipment, to: &out)
            out.appendLiteral(#","confidence":0."#)
            out.appendTwoDigits(random.int(in: 50...99))
            out.appendLiteral(#","predicted_failure_time":""#)
            out.appendTimestamp(created + Int64(random.int(in: 2 * 1_440...30 * 1_440)) * 60_000)
            out.appendLiteral(#"","recommended_action":""#)
            out.appendLiteral(random.pick(equipment.kind.actions))
            out.appendLiteral(#"","supporting_data":{"vibration_trend":""#)
            let trend = random.below(100)
            out.appendLiteral(trend < 55 ? "increasing" : trend < 80 ? "erratic" : "stable")
            out.appendLiteral(#"","temperature_anomalies":"#)
            out.appendInt(Int64(random.int(in: 0...12)))
            out.appendLiteral("}}")

        case .alert:
            let sensor = random.int(in: 1...equipment.kind.sensorCount)
            let metric = equipment.kind.metric(ofSensor: sensor)
            let threshold = random.int(in: metric.thresholdRange)
            // Squared roll: mild exceedances are common, severe ones rare.
            let u = random.unit()
            let permille = 10 + Int(u * u * 590)
            out.appendLiteral(#"{"alert_id":"alt_"#)
            out.appendHex(random.next(), digits: 16)
            appendSensorField(equipment, sensor: sensor, to: &out)
            appendEquipmentField(equipment, to: &out)
            out.appendLiteral(#","metric":""#)
            out.appendLiteral(metric.name)
            out.appendLiteral(#"","value":"#)
            out.appendHundredths(threshold + threshold * permille / 1_000)
            out.appendLiteral(#","threshold":"#)
            out.appendHundredths(threshold)
            out.appendLiteral(#","unit":""#)
            out.appendLiteral(metric.unit)
            out.appendLiteral(#"","severity":""#)
            out.appendLiteral(permille < 100 ? "low" : permille < 250 ? "medium" : permille < 400 ? "high" : "critical")
            out.appendLiteral(#""}"#)

        case .sensor:
            let sensor = random.int(in: 1...equipment.kind.sensorCount)
            let transition = random.below(100)
            let (previous, status): (SensorStatus, SensorStatus) =
                transition < 35 ? (.online, .offline)
                : transition < 65 ? (.offline, .online)
                : transition < 80 ? (.online, .error)
                : transition < 92 ? (.error, .online)
                : transition < 96 ? (.offline, .error) : (.error, .offline)
            out.appendLiteral(#"{"sensor_id":""#)
            out.appendSensorID(equipment, sensor: sensor)
            appendEquipmentField(equipment, to: &out)
            out.appendLiteral(#","previous_status":""#)
            out.appendLiteral(previous.name)
            out.appendLiteral(#"","status":""#)
            out.appendLiteral(status.name)
            out.appendLiteral(#"","reason":"#)
            if let reason = random.pick(status.reasons) {
                out.append(0x22)
                out.appendLiteral(reason)
                out.append(0x22)
            } else {
                out.appendLiteral("null")
            }
            out.append(0x7D)

        case .maintenance:
            out.appendLiteral(#"{"ticket_id":"mt_"#)
            out.appendHex(random.next(), digits: 16)
            appendEquipmentField(equipment, to: &out)
            out.appendLiteral(#","action":""#)
            out.appendLiteral(random.pick(equipment.kind.actions))
            out.appendLiteral(#"","due_by":""#)
            out.appendTimestamp(created + Int64(random.int(in: 1_440...14 * 1_440)) * 60_000)
            out.appendLiteral(#"","priority":""#)
            let priority = random.below(100)
            out.appendLiteral(priority < 10 ? "critical" : priority < 40 ? "high" : priority < 80 ? "medium" : "low")
            out.appendLiteral(#"","scheduled_by":"immune"}"#)
        }
    }

    private func appendEquipmentField(_ equipment: Equipment, to out: inout [UInt8]) {
        out.appendLiteral(#"","equipment_id":""#)
        out.append(contentsOf: equipment.name)
        out.append(0x22)
    }

    private func appendSensorField(_ equipment: Equipment, sensor: Int, to out: inout [UInt8]) {
        out.appendLiteral(#"","sensor_id":""#)
        out.appendSensorID(equipment, sensor: sensor)
    }

    /// Plausible-looking but not RFC 3339 (no offset, wrong layout, epoch number...).
    private mutating func appendBadTimestamp(_ millis: Int64, to out: inout [UInt8]) {
        let start = out.count
        switch random.below(5) {
        case 0:
            out.appendTimestamp(millis)
            out[start + 10] = 0x20
            out.removeLast()
        case 1:
            out.appendTimestamp(millis)
            out.removeLast()
        case 2:
            out.appendInt(millis)
        case 3:
            let t = CivilTime(millis)
            out.appendTwoDigits(t.month)
            out.append(0x2F)
            out.appendTwoDigits(t.day)
            out.append(0x2F)
            out.appendInt(Int64(t.year))
            out.append(0x20)
            out.appendClock(t)
        default:
            let t = CivilTime(millis)
            let weekdays: [StaticString] = ["Thu", "Fri", "Sat", "Sun", "Mon", "Tue", "Wed"]
            let months: [StaticString] = [
                "Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec",
            ]
            out.appendLiteral(weekdays[t.weekdaySince1970])
            out.appendLiteral(", ")
            out.appendTwoDigits(t.day)
            out.append(0x20)
            out.appendLiteral(months[t.month - 1])
            out.append(0x20)
            out.appendInt(Int64(t.year))
            out.append(0x20)
            out.appendClock(t)
            out.appendLiteral(" GMT")
        }
    }

    private static func writeAll(_ bytes: [UInt8], to fd: Int32) throws {
        try bytes.withUnsafeBytes { raw in
            guard var pointer = raw.baseAddress else { return }
            var left = raw.count
            while left > 0 {
                let written = systemWrite(fd, pointer, left)
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

private func systemWrite(_ fd: Int32, _ pointer: UnsafeRawPointer, _ count: Int) -> Int {
    #if canImport(Darwin)
    Darwin.write(fd, pointer, count)
    #elseif canImport(Musl)
    Musl.write(fd, pointer, count)
    #else
    Glibc.write(fd, pointer, count)
    #endif
}

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

private enum EventKind: Int, CaseIterable {
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

private enum SensorStatus {
    case online, offline, error

    var name: StaticString {
        switch self {
        case .online: "online"
        case .offline: "offline"
        case .error: "error"
        }
    }

    /// Why a sensor entered this status; nil is written as JSON null.
    var reasons: [StaticString?] {
        switch self {
        case .online: ["Reconnected", "Recalibrated", "Firmware updated", nil]
        case .offline: ["Network timeout", "Power loss", "Gateway unreachable", nil]
        case .error: ["Calibration drift", "Reading out of range", "Hardware fault"]
        }
    }
}

private struct Metric {
    var name: StaticString
    var unit: StaticString
    /// In hundredths of `unit`.
    var thresholdRange: ClosedRange<Int>

    static let vibration = Metric(name: "vibration_rms", unit: "mm/s", thresholdRange: 450...1_120)
    static let temperature = Metric(name: "temperature", unit: "celsius", thresholdRange: 7_000...9_500)
    static let pressure = Metric(name: "pressure", unit: "bar", thresholdRange: 600...1_600)
    static let current = Metric(name: "current", unit: "amps", thresholdRange: 1_500...6_000)
}

private enum EquipmentKind: CaseIterable {
    case pump, compressor, turbine, conveyor

    var prefix: String {
        switch self {
        case .pump: "pump"
        case .compressor: "compressor"
        case .turbine: "turbine"
        case .conveyor: "conveyor"
        }
    }

    /// Fleet size and first number: 200 machines in all.
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
        let metrics: [Metric] =
            self == .conveyor
            ? [.vibration, .temperature, .current]
            : [.vibration, .temperature, .pressure, .current]
        return metrics[(sensor - 1) % metrics.count]
    }

    var actions: [StaticString] {
        switch self {
        case .pump:
            ["Replace bearing", "Replace seal", "Realign motor coupling", "Lubricate drive shaft", "Inspect impeller"]
        case .compressor:
            ["Replace bearing", "Clean heat exchanger", "Replace seal", "Inspect valve plates"]
        case .turbine:
            ["Inspect blades", "Replace bearing", "Balance rotor", "Clean heat exchanger"]
        case .conveyor:
            ["Tension belt", "Lubricate drive shaft", "Replace idler roller", "Realign motor coupling"]
        }
    }
}

private struct Equipment: Sendable {
    var kind: EquipmentKind
    var name: [UInt8]

    static let fleet: [Equipment] = EquipmentKind.allCases.flatMap { kind in
        kind.numbers.map { number in
            let digits = String(number)
            let padded = String(repeating: "0", count: max(0, 4 - digits.count)) + digits
            return Equipment(kind: kind, name: Array("\(kind.prefix)_\(padded)".utf8))
        }
    }
}

/// Proleptic Gregorian UTC fields of a millisecond Unix time (Hinnant's civil_from_days).
private struct CivilTime {
    var year, month, day, hour, minute, second, millisecond: Int
    var weekdaySince1970: Int

    init(_ millis: Int64) {
        var days = Int(millis / 86_400_000)
        var rest = Int(millis % 86_400_000)
        if rest < 0 {
            rest += 86_400_000
            days -= 1
        }
        weekdaySince1970 = ((days % 7) + 7) % 7
        let z = days + 719_468
        let era = (z >= 0 ? z : z - 146_096) / 146_097
        let dayOfEra = z - era * 146_097
        let yearOfEra = (dayOfEra - dayOfEra / 1_460 + dayOfEra / 36_524 - dayOfEra / 146_096) / 365
        let dayOfYear = dayOfEra - (365 * yearOfEra + yearOfEra / 4 - yearOfEra / 100)
        let mp = (5 * dayOfYear + 2) / 153
        day = dayOfYear - (153 * mp + 2) / 5 + 1
        month = mp < 10 ? mp + 3 : mp - 9
        year = yearOfEra + era * 400 + (month <= 2 ? 1 : 0)
        hour = rest / 3_600_000
        minute = rest / 60_000 % 60
        second = rest / 1_000 % 60
        millisecond = rest % 1_000
    }
}

@inline(__always)
private func hexDigit(_ value: UInt8) -> UInt8 {
    value < 10 ? 0x30 + value : 0x57 + value
}

@inline(__always)
private func hexValue(_ digit: UInt8) -> UInt8 {
    digit <= 0x39 ? digit - 0x30 : digit - 0x57
}

extension Array where Element == UInt8 {
    @inline(__always)
    fileprivate mutating func appendLiteral(_ literal: StaticString) {
        literal.withUTF8Buffer { append(contentsOf: $0) }
    }

    /// The low `digits * 4` bits of `value`, most significant first.
    @inline(__always)
    fileprivate mutating func appendHex(_ value: UInt64, digits: Int) {
        var shift = UInt64(digits * 4)
        while shift > 0 {
            shift -= 4
            append(hexDigit(UInt8((value >> shift) & 0x0F)))
        }
    }

    fileprivate mutating func appendInt(_ value: Int64) {
        if value < 0 { append(0x2D) }
        let start = count
        var magnitude = value.magnitude
        repeat {
            append(0x30 + UInt8(magnitude % 10))
            magnitude /= 10
        } while magnitude > 0
        self[start...].reverse()
    }

    @inline(__always)
    fileprivate mutating func appendTwoDigits(_ value: Int) {
        append(0x30 + UInt8(value / 10))
        append(0x30 + UInt8(value % 10))
    }

    /// `hundredths` / 100 with exactly two decimals.
    fileprivate mutating func appendHundredths(_ hundredths: Int) {
        appendInt(Int64(hundredths / 100))
        append(0x2E)
        appendTwoDigits(hundredths % 100)
    }

    /// `HH:MM:SS`
    fileprivate mutating func appendClock(_ t: CivilTime) {
        appendTwoDigits(t.hour)
        append(0x3A)
        appendTwoDigits(t.minute)
        append(0x3A)
        appendTwoDigits(t.second)
    }

    /// RFC 3339 UTC with milliseconds: `2026-06-01T00:00:01.250Z`.
    fileprivate mutating func appendTimestamp(_ millis: Int64) {
        let t = CivilTime(millis)
        appendTwoDigits(t.year / 100)
        appendTwoDigits(t.year % 100)
        append(0x2D)
        appendTwoDigits(t.month)
        append(0x2D)
        appendTwoDigits(t.day)
        append(0x54)
        appendClock(t)
        append(0x2E)
        append(0x30 + UInt8(t.millisecond / 100))
        appendTwoDigits(t.millisecond % 100)
        append(0x5A)
    }

    fileprivate mutating func appendSensorID(_ equipment: Equipment, sensor: Int) {
        appendLiteral("sen_")
        append(contentsOf: equipment.name)
        append(0x5F)
        appendInt(Int64(sensor))
    }
}
