/// Text from outside (a workflow ID, a YAML key, a file's content) made safe to quote in a one-line message.
public enum OneLineText {
    /// `text` with control characters escaped (a newline as `\n`, a NUL as `\0`) and, past `limit` characters,
    /// cut with a note of how many more there were, so an error about hostile input stays one readable line.
    public static func quoting(_ text: String, limit: Int) -> String {
        var line = ""
        for scalar in text.unicodeScalars {
            if scalar.properties.generalCategory == .control {
                line += scalar.escaped(asASCII: true)
            } else {
                line.unicodeScalars.append(scalar)
            }
        }
        guard line.count > limit else { return line }
        return line.prefix(limit) + "... (\(line.count - limit) more characters)"
    }
}
