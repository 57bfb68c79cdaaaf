import Foundation

/// Plain-text output for people: columns padded to line up, separated by two spaces.
public struct TextTable: Sendable {
    /// The column titles.
    public var headers: [String]
    /// The rows, each with one cell per column.
    public var rows: [[String]]

    /// A table with these column titles and no rows.
    public init(headers: [String], rows: [[String]] = []) {
        self.headers = headers
        self.rows = rows
    }

    /// The table as lines of text; the last column is not padded, so lines carry no trailing spaces.
    public var text: String {
        Self.lines(for: [headers] + rows)
    }

    /// The rows alone, aligned as in `text`, with no header line.
    public var textWithoutHeader: String {
        Self.lines(for: rows)
    }

    private static func lines(for all: [[String]]) -> String {
        let columnCount = all.map(\.count).max() ?? 0
        let widths = (0..<columnCount).map { column in all.map { $0.indices.contains(column) ? $0[column].count : 0 }.max() ?? 0 }
        return all.map { row in
            row.enumerated().map { column, cell in
                column == row.count - 1 ? cell : cell.padding(toLength: widths[column], withPad: " ", startingAt: 0)
            }.joined(separator: "  ")
        }.joined(separator: "\n")
    }
}
