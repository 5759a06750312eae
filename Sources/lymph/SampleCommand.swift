import ArgumentParser
import Foundation
import Lymph

struct SampleCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "sample",
        abstract: "Generate synthetic IMMUNE webhook events as JSON Lines on stdout.",
        discussion: """
            Each line is one event: {"id","type","created_at","data"} with a realistic \
            payload for prediction.created, alert.triggered, sensor.status_changed or \
            maintenance.scheduled (roughly 40/30/20/10) about a fleet of 200 \
            machines. The same seed and options always produce the same bytes, so \
            samples can be used as test fixtures and benchmarks.

            --duplicates re-sends earlier lines byte for byte (webhook retries). \
            --malformed breaks lines in rotating ways: truncated JSON, trailing comma, \
            missing or empty id, numeric type, string data, non-RFC 3339 created_at, \
            a bare array or number, invalid UTF-8, a raw control character.

            --sign wraps every event in a delivery \
            {"headers":{"content-type","x-immune-signature"},"body":"<event>"} where the \
            signature is the lowercase hex HMAC-SHA256 of the body. Malformed deliveries \
            then also include tampered and missing signatures. The secret is read from \
            env:NAME or file:PATH, never from the command line.

            Examples:
              lymph sample --count 10
              lymph sample --count 1000000 --malformed 0.01 > events.jsonl
              lymph sample --sign env:IMMUNE_SECRET --types alert.triggered
            """
    )

    @Option(help: "Number of lines to write.")
    var count: Int = 1000

    @Option(help: "Seed; the same seed and options always give the same output.")
    var seed: UInt64 = 1

    @Option(
        help: ArgumentHelp(
            "Event types to include, comma-separated or repeated (default: all of \(SampleGenerator.knownTypes.joined(separator: ", "))).",
            valueName: "type,...")
    )
    var types: [String] = []

    @Option(help: ArgumentHelp("Fraction of lines (0-1) that re-send an earlier line.", valueName: "ratio"))
    var duplicates: Double = 0

    @Option(help: ArgumentHelp("Fraction of lines (0-1) that are malformed.", valueName: "ratio"))
    var malformed: Double = 0

    @Option(
        name: .customLong("sign"),
        help: ArgumentHelp(
            "Emit signed deliveries using the secret in an environment variable or a file.",
            valueName: "env:NAME|file:PATH")
    )
    var sign: String?

    @Option(help: ArgumentHelp("RFC 3339 instant the event clock starts from.", valueName: "time"))
    var start: String = "2026-06-01T00:00:00Z"

    func validate() throws {
        // Everything is checked here, not in run(), so errors come with this command's usage.
        _ = try makeGenerator()
    }

    func run() async throws {
        var generator = try makeGenerator()
        try generator.write(to: 1)
    }

    private func makeGenerator() throws -> SampleGenerator {
        guard count >= 0 else { throw ValidationError("--count must not be negative.") }
        for (name, ratio) in [("--duplicates", duplicates), ("--malformed", malformed)] where !(0...1).contains(ratio) {
            throw ValidationError("\(name) must be a ratio between 0 and 1.")
        }
        guard duplicates + malformed <= 1 else {
            throw ValidationError("--duplicates and --malformed together must not exceed 1.")
        }
        guard let startDate = Self.parseRFC3339(start) else {
            throw ValidationError("--start must be an RFC 3339 time such as 2026-06-01T00:00:00Z.")
        }
        var requested = types.flatMap { $0.split(separator: ",") }
            .map { $0.trimmingCharacters(in: .whitespaces) }
            .filter { !$0.isEmpty }
        if requested.isEmpty {
            guard types.isEmpty else { throw ValidationError("--types needs at least one event type.") }
            requested = SampleGenerator.knownTypes
        }
        let options = SampleOptions(
            count: count,
            seed: seed,
            types: requested,
            duplicates: duplicates,
            malformed: malformed,
            signingSecret: try sign.map(Self.readSecret),
            start: startDate
        )
        do {
            return try SampleGenerator(options: options)
        } catch let error as SampleError {
            throw ValidationError(error.description)
        }
    }

    /// Resolves `env:NAME` or `file:PATH`. Errors name the source, never the value.
    private static func readSecret(_ source: String) throws -> [UInt8] {
        var secret: [UInt8]
        guard source.hasPrefix("env:") || source.hasPrefix("file:") else {
            // Never echo the value: it may be the secret itself.
            throw ValidationError(
                "--sign takes env:NAME or file:PATH; a secret typed on the command line would leak into shell history and the process list.")
        }
        if source.hasPrefix("env:") {
            let name = String(source.dropFirst(4))
            guard !name.isEmpty else { throw ValidationError("--sign env: needs a variable name.") }
            guard let value = ProcessInfo.processInfo.environment[name] else {
                throw ValidationError("--sign: environment variable \(name) is not set.")
            }
            secret = Array(value.utf8)
        } else {
            let path = String(source.dropFirst(5))
            guard !path.isEmpty else { throw ValidationError("--sign file: needs a path.") }
            guard let data = FileManager.default.contents(atPath: path) else {
                throw ValidationError("--sign: cannot read secret file \(path).")
            }
            secret = Array(data)
            // Editors and `echo` add a final newline that is not part of the secret.
            if secret.last == 0x0A {
                secret.removeLast()
                if secret.last == 0x0D { secret.removeLast() }
            }
        }
        guard !secret.isEmpty else { throw ValidationError("--sign: the secret from \(source) is empty.") }
        return secret
    }

    /// Strict RFC 3339 `date-time` (`T`/`Z` in either case, no leap second; digits past milliseconds are dropped).
    static func parseRFC3339(_ text: String) -> Date? {
        let b = Array(text.utf8)
        func number(_ from: Int, _ length: Int) -> Int? {
            guard from + length <= b.count else { return nil }
            var value = 0
            for byte in b[from..<(from + length)] {
                guard byte >= 0x30 && byte <= 0x39 else { return nil }
                value = value * 10 + Int(byte - 0x30)
            }
            return value
        }
        func byte(_ at: Int, _ allowed: String) -> Bool {
            at < b.count && allowed.utf8.contains(b[at])
        }
        guard let year = number(0, 4), byte(4, "-"), let month = number(5, 2), byte(7, "-"),
            let day = number(8, 2), byte(10, "Tt"), let hour = number(11, 2), byte(13, ":"),
            let minute = number(14, 2), byte(16, ":"), let second = number(17, 2),
            (1...12).contains(month), hour < 24, minute < 60, second < 60
        else { return nil }
        let leap = year % 4 == 0 && (year % 100 != 0 || year % 400 == 0)
        let monthDays = [31, leap ? 29 : 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31]
        guard (1...monthDays[month - 1]).contains(day) else { return nil }

        var i = 19
        var millis = 0
        if byte(i, ".") {
            i += 1
            var digits = 0
            while i < b.count, b[i] >= 0x30 && b[i] <= 0x39 {
                if digits < 3 { millis = millis * 10 + Int(b[i] - 0x30) }
                digits += 1
                i += 1
            }
            guard digits > 0 else { return nil }
            for _ in digits..<max(digits, 3) { millis *= 10 }
        }
        var offsetMinutes = 0
        if byte(i, "Zz") {
            i += 1
        } else if byte(i, "+-"), let oh = number(i + 1, 2), byte(i + 3, ":"), let om = number(i + 4, 2), oh < 24, om < 60 {
            offsetMinutes = (oh * 60 + om) * (b[i] == UInt8(ascii: "-") ? -1 : 1)
            i += 6
        } else {
            return nil
        }
        guard i == b.count else { return nil }

        // Days from 1970-01-01 (Hinnant's days_from_civil).
        let y = month <= 2 ? year - 1 : year
        let era = (y >= 0 ? y : y - 399) / 400
        let yearOfEra = y - era * 400
        let dayOfYear = (153 * (month > 2 ? month - 3 : month + 9) + 2) / 5 + day - 1
        let dayOfEra = yearOfEra * 365 + yearOfEra / 4 - yearOfEra / 100 + dayOfYear
        let days = era * 146_097 + dayOfEra - 719_468
        let seconds = days * 86_400 + hour * 3_600 + minute * 60 + second - offsetMinutes * 60
        return Date(timeIntervalSince1970: Double(seconds) + Double(millis) / 1_000)
    }
}
