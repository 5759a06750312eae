/// The IMMUNE webhook events and their payloads, as IMMUNE documents them, plus what Lymph's
/// `schedule_maintenance` adds to the `maintenance.scheduled` events it emits. `lymph check`
/// reads pipelines against it.
public enum ImmuneSchema {
    /// A field's JSON type.
    public enum FieldType: String, Sendable, CaseIterable {
        case string, number, boolean, object, array
        /// A field that may be null as well (`sensor.status_changed`'s `reason`).
        case nullableString = "string or null"

        /// Whether a YAML value of `scalar` type can ever equal a field of this type.
        func admits(_ scalar: ScalarValue) -> Bool {
            switch (self, scalar) {
            case (_, .null): return self == .nullableString
            case (.string, .string), (.nullableString, .string): return true
            case (.number, .number), (.boolean, .bool): return true
            default: return false
            }
        }

        init?(declared text: String) {
            switch text {
            case "string": self = .string
            case "number", "integer": self = .number
            case "boolean", "bool": self = .boolean
            case "object": self = .object
            case "array": self = .array
            default: return nil
            }
        }
    }

    /// Every event's envelope.
    static let envelope: [String: FieldType] = ["id": .string, "type": .string, "created_at": .string, "data": .object]

    /// The payload fields of each type, as paths from the event (`data.…`).
    public static let types: [String: [String: FieldType]] = [
        "prediction.created": [
            "data.prediction_id": .string, "data.equipment_id": .string, "data.confidence": .number,
            "data.predicted_failure_time": .string, "data.recommended_action": .string, "data.supporting_data": .object,
            "data.supporting_data.vibration_trend": .string, "data.supporting_data.temperature_anomalies": .number,
        ],
        "alert.triggered": [
            "data.alert_id": .string, "data.sensor_id": .string, "data.equipment_id": .string, "data.metric": .string,
            "data.value": .number, "data.threshold": .number, "data.unit": .string, "data.severity": .string,
        ],
        "sensor.status_changed": [
            "data.sensor_id": .string, "data.equipment_id": .string, "data.previous_status": .string, "data.status": .string,
            "data.reason": .nullableString,
        ],
        "maintenance.scheduled": [
            "data.ticket_id": .string, "data.equipment_id": .string, "data.action": .string, "data.due_by": .string,
            "data.priority": .string, "data.scheduled_by": .string,
            // Added by Lymph's schedule_maintenance to the events it emits.
            "data.status": .string, "data.source_event_ids": .array, "data.source_event_id": .string,
            "data.created_at": .string, "data.updated_at": .string, "data.note": .string, "data.source_event_count": .number,
        ],
    ]

    /// The four type names, sorted.
    public static let typeNames = types.keys.sorted()

    /// The fields of `type` (envelope included), by path.
    static func fields(of type: String) -> [String: FieldType] {
        envelope.merging(types[type] ?? [:]) { a, _ in a }
    }
}
