import Foundation
import Testing

@testable import Lymph

@Suite("Report JSON")
struct ReportJSONTests {
    @Test("keys in byte order at every level; booleans, counts and doubles each as themselves")
    func values() {
        let object: [String: Any] = [
            "skipped_done": 0, "stages": [["seconds": 0.25, "kind": "parse", "dropped": ["type": 3, "duplicate": 1]] as [String: Any]],
            "interrupted": false, "events_per_second": 237_690.0, "events_read": 1, "absent": NSNull(), "name": "a/\"b\"\n",
            "big": Int64(1) << 40, "ratio": 1e-5, "nan": Double.nan, "on": true,
        ]
        #expect(
            ReportJSON.string(object)
                == #"{"absent":null,"big":1099511627776,"events_per_second":237690,"events_read":1,"interrupted":false,"name":"a/\"b\"\n","#
                + #""nan":null,"on":true,"ratio":1e-05,"skipped_done":0,"stages":[{"dropped":{"duplicate":1,"type":3},"kind":"parse","seconds":0.25}]}"#)
    }

    @Test("a key that is a prefix of another comes first; an underscore before letters")
    func keyOrder() {
        #expect(ReportJSON.string(["ab": 1, "a": 2, "a_b": 3, "aB": 4]) == #"{"a":2,"aB":4,"a_b":3,"ab":1}"#)
    }

    @Test("a run's summary reads back as what Foundation's writer gave: the same members and values")
    func summaryReadsBack() throws {
        var s = RunSummary(pipeline: "p/1")
        s.itemsRead = 10
        s.passed = 7
        s.deadLetters = 1
        s.seconds = 0.5
        var stats = StageStats()
        stats.received = 10
        stats.emitted = 7
        stats.dropped = ["duplicate": 2]
        s.stages = [RunSummary.StageLine(name: "dedup", kind: "dedup", stats: stats, seconds: 0.125)]
        let text = s.json()
        let json = try #require(try JSONSerialization.jsonObject(with: Data(text.utf8)) as? [String: Any])
        #expect(json["pipeline"] as? String == "p/1" && json["events_read"] as? Int == 10 && json["passed"] as? Int == 7)
        #expect(json["duplicates"] as? Int == 2 && json["events_per_second"] as? Int == 20 && json["interrupted"] as? Bool == false)
        let stage = try #require((json["stages"] as? [[String: Any]])?.first)
        #expect(stage["seconds"] as? Double == 0.125 && stage["dropped"] as? [String: Int] == ["duplicate": 2])
        #expect(text.hasPrefix(#"{"dead_letters":1,"dropped":2,"duplicates":2,"events_per_second":20,"events_read":10,"#))
    }
}
