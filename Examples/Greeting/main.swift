// A durable workflow in plain Swift on the embedded SQLite default (.dbos/system.sqlite).
//
//   swift run dbos-example-greeting [NAME] [--id WORKFLOW_ID]
//
// Kill it during the pause (Ctrl-C) and run it again with the same --id: the steps already done
// are not repeated, and the pause only lasts what was left of it.
import DBOS
import Foundation

var arguments = Array(CommandLine.arguments.dropFirst())
var workflowID = "greeting-\(UUID().uuidString.prefix(8))"
if let index = arguments.firstIndex(of: "--id"), index + 1 < arguments.count {
    workflowID = arguments[index + 1]
    arguments.removeSubrange(index...(index + 1))
}
let name = arguments.first ?? "world"

let runtime = try await DBOSRuntime(configuration: DBOSConfiguration(appName: "greeting"))
let greeting = try runtime.register("greeting") { (context: WorkflowContext, name: String) -> String in
    let shouted = try await context.runStep("shout") {
        print("  step 1: shouting \(name)")
        return name.uppercased()
    }
    print("  pausing for 3 seconds (durably)")
    try await context.sleep(for: .seconds(3))
    let message = try await context.runStep("compose") {
        print("  step 2: composing the greeting")
        return "HELLO \(shouted)"
    }
    try await context.setEvent(key: "greeting", value: message)
    return message
}
try await runtime.launch()
print("workflow \(workflowID)")
let output = try await runtime.runWorkflow(greeting, input: name, options: WorkflowOptions(workflowID: workflowID))
print(output)
await runtime.shutdown()
