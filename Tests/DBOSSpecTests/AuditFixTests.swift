import DBOS
import DBOSSpec
import DBOSTestSupport
import Foundation
import Testing

/// The problems an audit of `dbos-run` against SPEC-FORMAT found, each pinned by a test.
@Suite struct DefaultWorkflowNameTests {
    func defaultName(of file: String) -> String? {
        SpecLoader().decode(text: "steps: [{id: s, run: echo}]\n", file: file).spec?.name
    }

    @Test func onlyYAMLExtensionsAreStrippedFromTheFileName() {
        #expect(defaultName(of: "specs/order.yaml") == "order")
        #expect(defaultName(of: "specs/order.yml") == "order")
        #expect(defaultName(of: "specs/x.json") == "x.json")
        #expect(defaultName(of: "specs/x.spec.yaml") == "x.spec")
        #expect(defaultName(of: "specs/notes") == "notes")
    }
}
