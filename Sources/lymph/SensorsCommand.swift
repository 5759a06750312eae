import ArgumentParser
import Foundation
import Lymph

struct SensorsCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(commandName: "sensors", abstract: "List the last known status of each sensor.")

    enum StatusFilter: String, ExpressibleByArgument, CaseIterable { case online, offline, error, all }

    @OptionGroup var location: StateOptions
    @Option(help: "Which sensors.") var status: StatusFilter = .all
    @Option(help: "table (default on a terminal) or json (one sensor a line).") var format: OutputFormat?

    @OptionGroup var time: TimeZoneOptions

    /// A pipeline (`--pipeline`) without a `track_sensors` stage records no sensors: that is
    /// said on stderr, exit 2, as for a pipeline with no store; not an empty list.
    func run() async throws {
        if let pipeline = location.pipeline, let spec = try? PipelineLoader.load(path: pipeline).spec,
            !spec.stages.contains(where: { $0.kind == "track_sensors" })
        {
            Console.error("lymph: \(pipeline) tracks no sensors (it has no track_sensors stage)")
            throw ExitCode(2)
        }
        let sensors = try withStore(await location.open()) { store throws(StoreError) in
            try store.sensors(status: status == .all ? nil : status.rawValue)
        }
        switch format ?? .automatic {
        case .json:
            for s in sensors { print(String(decoding: s.json(), as: UTF8.self)) }
        case .table:
            print(
                renderTable(
                    ["SENSOR", "STATUS", "SINCE", "EQUIPMENT", "LAST EVENT"],
                    sensors.map {
                        [$0.sensorID, $0.status, time.zone.show($0.since), $0.equipmentID ?? "-", $0.lastEventID]
                    }))
            print("\(sensors.count) sensor\(sensors.count == 1 ? "" : "s")")
        }
    }
}
