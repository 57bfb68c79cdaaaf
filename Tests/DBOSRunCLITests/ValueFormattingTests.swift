import DBOS
import DBOSRunCLI
import Testing

/// The CLI's small formatting pieces: durations, value printing, tables and failures.
@Suite struct ValueFormattingTests {
    @Test func durationsAreANumberAndAUnitFromLargestToSmallest() {
        #expect(CLIDuration.parse("250ms") == .milliseconds(250))
        #expect(CLIDuration.parse("30s") == .seconds(30))
        #expect(CLIDuration.parse("5m") == .seconds(300))
        #expect(CLIDuration.parse("2h") == .seconds(7_200))
        #expect(CLIDuration.parse("1d") == .seconds(86_400))
        #expect(CLIDuration.parse("1h30m") == .seconds(5_400))
        #expect(CLIDuration.parse("1m30s500ms") == .milliseconds(90_500))
        for invalid in ["", "30", "s", "1.5s", "-1s", "30m1h", "1s1s", "5 s", "1x", "9999999999999999999d"] {
            #expect(CLIDuration.parse(invalid) == nil, "'\(invalid)' should not parse")
        }
    }

    @Test func aStringPrintsBareUnlessJSONIsAsked() {
        let human = ValuePrinter(printsJSON: false)
        let json = ValuePrinter(printsJSON: true)
        #expect(human.text(for: "HELLO WORLD") == "HELLO WORLD")
        #expect(json.text(for: "HELLO WORLD") == "\"HELLO WORLD\"")
        #expect(human.text(for: ["b": 1, "a": [true, nil]]) == #"{"a":[true,null],"b":1}"#)
        #expect(human.text(for: 3) == "3")
        #expect(human.text(for: nil) == "null")
    }

    @Test func tableColumnsLineUpWithoutTrailingSpaces() {
        let table = TextTable(headers: ["ID", "NAME"], rows: [["a-long-id", "x"], ["b", "yy"]])
        #expect(table.text == "ID         NAME\na-long-id  x\nb          yy")
    }

    @Test func failuresAreOneLineWithTheContractsExitCodes() {
        #expect(CommandFailure(WorkflowError.nonexistentWorkflow("x")).exitCode == 4)
        #expect(CommandFailure(WorkflowError.cannotResume(id: "x", state: .success)).exitCode == 2)
        #expect(CommandFailure(SystemDatabaseError.invalidURL("x", reason: "bad")).exitCode == 2)
        #expect(CommandFailure(SystemDatabaseError.cannotOpen(location: "h:1", reason: "refused")).exitCode == 1)
        let multiline = CommandFailure(exitCode: 1, message: "first\n  second\n")
        #expect(multiline.message == "first second")
        #expect(CommandFailure(exitCode: 1, message: "pw is hunter2").redacting("hunter2").message == "pw is ***")
    }
}
