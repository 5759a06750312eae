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
        do {
            try generator.write(to: 1)
        } catch {
            // An output that cannot be written (a full disk): exit 3, as a run's would.
            Console.error("lymph sample: \(error)")
            throw ExitCode(3)
        }
    }

    private func makeGenerator() throws -> SampleGenerator {
        guard count >= 0 else { throw ValidationError("--count must not be negative.") }
        for (name, ratio) in [("--duplicates", duplicates), ("--malformed", malformed)] where !(0...1).contains(ratio) {
            throw ValidationError("\(name) must be a ratio between 0 and 1.")
        }
        guard duplicates + malformed <= 1 else {
            throw ValidationError("--duplicates and --malformed together must not exceed 1.")
        }
        guard let startSeconds = Timestamp.parse(start) else {
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
            start: Date(timeIntervalSince1970: startSeconds)
        )
        do {
            return try SampleGenerator(options: options)
        } catch let error as SampleError {
            throw ValidationError(error.description)
        }
    }

    /// The secret `--sign` names (`SecretReference`: `env:NAME` or `file:PATH`). Errors name
    /// the reference, never the value.
    private static func readSecret(_ source: String) throws -> [UInt8] {
        guard let reference = SecretReference(source) else {
            // Never echo the value: it may be the secret itself.
            throw ValidationError(
                "--sign takes env:NAME or file:PATH; a secret typed on the command line would leak into shell history and the process list.")
        }
        if let problem = reference.problem { throw ValidationError("--sign: \(problem)") }
        do { return try reference.resolve() } catch { throw ValidationError("--sign: \(error)") }
    }
}
