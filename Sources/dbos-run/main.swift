import DBOSRunCLI

await DBOSRunCommand.runFromCommandLine()
