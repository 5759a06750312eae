import Testing
@testable import Lymph

@Suite("malloc's thresholds")
struct AllocatorSettingsTests {
    @Test("set when the environment leaves malloc's tuning alone")
    func applied() {
        #expect(AllocatorSettings.apply(environment: ["PATH": "/usr/bin"]))
    }

    @Test("an operator's own malloc tuning stands", arguments: AllocatorSettings.operatorVariables)
    func operatorChoiceStands(_ variable: String) {
        #expect(!AllocatorSettings.apply(environment: [variable: ""]))
    }
}
