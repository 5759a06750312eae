import Foundation
import Logging

/// Lymph's log goes to stderr (stdout may carry events). `LYMPH_LOG_LEVEL` sets the level
/// (trace, debug, info, notice, warning, error, critical; default info).
enum LogSetup {
    static func bootstrap(environment: [String: String] = ProcessInfo.processInfo.environment) {
        let level = environment["LYMPH_LOG_LEVEL"].flatMap { Logger.Level(rawValue: $0.lowercased()) } ?? .info
        LoggingSystem.bootstrap { label in
            var handler = StreamLogHandler.standardError(label: label)
            handler.logLevel = level
            return handler
        }
    }
}
