import Foundation

/// Quoting for the commands the CLI prints for a person to paste into a shell ("continue it with: ...").
enum ShellWord {
    /// `text` as one POSIX shell word: unchanged when it holds only characters no shell treats specially,
    /// otherwise in single quotes, so a workflow ID such as `$(rm -rf ~)` is pasted back as data, not run.
    static func quoted(_ text: String) -> String {
        let plain = !text.isEmpty && text.unicodeScalars.allSatisfy {
            $0.isASCII && ($0.properties.isAlphabetic || ("0"..."9").contains($0) || "-_./:@%+=,".unicodeScalars.contains($0))
        }
        if plain { return text }
        return "'" + text.replacingOccurrences(of: "'", with: #"'\''"#) + "'"
    }

    /// `name value` as shell words; `name=value` when the value starts with `-`, which would
    /// otherwise be read as an option of its own.
    static func option(_ name: String, _ value: String) -> String {
        value.hasPrefix("-") ? "\(name)=\(quoted(value))" : "\(name) \(quoted(value))"
    }

    /// A positional argument as shell words, after `--` when it starts with `-`.
    static func argument(_ value: String) -> String {
        value.hasPrefix("-") ? "-- \(quoted(value))" : quoted(value)
    }

    /// A file path that cannot be read as an option: `-spec.yaml` becomes `./-spec.yaml`.
    static func path(_ path: String) -> String {
        path.hasPrefix("-") ? "./" + path : path
    }
}
