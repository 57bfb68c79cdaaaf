import Foundation

/// Refuses command-line arguments that are not UTF-8 text.
///
/// A shell passes an argument's bytes as they are, and `CommandLine.arguments` turns bytes that are not
/// UTF-8 into U+FFFD: the run would store another input, message or ID than the one given, and two IDs
/// that differ only there would name the same run.
enum ArgumentEncoding {
    /// The process's arguments as bytes, the program name left out.
    static var processArguments: [[UInt8]] {
        (1..<Int(CommandLine.argc)).map { index in
            guard let argument = CommandLine.unsafeArgv[index] else { return [] }
            return Array(UnsafeBufferPointer(start: argument, count: strlen(argument))).map { UInt8(bitPattern: $0) }
        }
    }

    /// Exit 2 naming the first of `arguments` that is not UTF-8 (by its option when it is an option's value);
    /// nil when all are.
    static func failure(for arguments: [[UInt8]]) -> CommandFailure? {
        guard let index = arguments.firstIndex(where: { String(validating: $0, as: UTF8.self) == nil }) else { return nil }
        let argument = arguments[index]
        let previous = index > 0 ? String(validating: arguments[index - 1], as: UTF8.self) : nil
        let what: String
        if argument.starts(with: Array("--".utf8)), let equals = argument.firstIndex(of: UInt8(ascii: "=")),
            let option = String(validating: argument[..<equals], as: UTF8.self)
        {
            what = "the value of \(option)"
        } else if let previous, previous.hasPrefix("-"), !previous.contains("=") {
            what = "the value of \(previous)"
        } else {
            what = "argument \(index + 1)"
        }
        return CommandFailure(exitCode: CommandFailure.invalidInputExitCode, message: "\(what) is not valid UTF-8 text")
    }
}
