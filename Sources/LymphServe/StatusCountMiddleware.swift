import Hummingbird

/// Counts what the router answers in `lymph_http_requests_total` (a POST to a mistyped path:
/// 404; a GET on the webhook path: 405), as the webhook handler counts its own answers. The
/// monitoring endpoints are left out: a scrape or a probe every few seconds is not traffic.
struct StatusCountMiddleware<Context: RequestContext>: RouterMiddleware {
    let metrics: ServeMetrics
    static var monitoring: Set<String> { ["healthz", "metrics"] }

    /// Whether `path` is a monitoring route as the router matches it, by its components:
    /// `/metrics/` and `//healthz` reach the same handlers.
    static func isMonitoring(_ path: String) -> Bool {
        let components = path.split(separator: "/")
        return components.count == 1 && monitoring.contains(String(components[0]))
    }

    func handle(_ request: Request, context: Context, next: (Request, Context) async throws -> Response) async throws -> Response {
        let counted = !Self.isMonitoring(request.uri.path)
        do {
            let response = try await next(request, context)
            if counted { metrics.request(status: Int(response.status.code)) }
            return response
        } catch {
            if counted { metrics.request(status: Int((error as? any HTTPResponseError)?.status.code ?? 500)) }
            throw error
        }
    }
}
