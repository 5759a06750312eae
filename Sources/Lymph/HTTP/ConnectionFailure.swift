import Foundation
import NIOCore
import NIOPosix

/// Why a connection could not be made or was lost, read from the error NIO gives (its own text
/// repeats itself: "connection reset (error set): Connection refused) (errno: 111)").
package enum ConnectionFailure: Equatable, CustomStringConvertible {
    case refused
    case unreachable
    case timedOut
    case reset
    case unresolved(host: String)
    /// Another system error, in the system's words.
    case other(String)

    /// The failure `error` is, or nil for an error that is not a connection's.
    package init?(_ error: any Error) {
        var code: CInt?
        if let e = error as? IOError { code = e.errnoCode }
        if let e = error as? NIOConnectionError {
            if e.connectionErrors.isEmpty, e.dnsAError != nil || e.dnsAAAAError != nil {
                self = .unresolved(host: e.host)
                return
            }
            code = e.connectionErrors.lazy.compactMap { ($0.error as? IOError)?.errnoCode }.first
        }
        switch code {
        case ECONNREFUSED?: self = .refused
        case EHOSTUNREACH?, ENETUNREACH?: self = .unreachable
        case ETIMEDOUT?: self = .timedOut
        case ECONNRESET?, EPIPE?: self = .reset
        case let c?: self = .other(String(cString: strerror(c)))
        case nil: return nil
        }
    }

    package var description: String {
        switch self {
        case .refused: "connection refused"
        case .unreachable: "unreachable"
        case .timedOut: "connect timeout"
        case .reset: "connection reset"
        case .unresolved(let host): "cannot resolve \(host)"
        case .other(let text): text
        }
    }
}
