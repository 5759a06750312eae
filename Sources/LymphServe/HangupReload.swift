import ServiceLifecycle
import UnixSignals

/// Reloads the pipeline on every SIGHUP (`kill -HUP`, `systemctl reload`), as a service of the
/// server's group, until graceful shutdown.
struct HangupReload: Service {
    let served: ServedPipeline

    func run() async throws {
        let hangups = await UnixSignalsSequence(trapping: .sighup)
        await cancelWhenGracefulShutdown {
            for await _ in hangups {
                served.reload(trigger: "SIGHUP")
            }
        }
    }
}
