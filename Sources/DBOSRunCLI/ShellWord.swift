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
}
