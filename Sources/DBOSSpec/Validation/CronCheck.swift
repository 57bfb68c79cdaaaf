/// A syntax check for 6-field cron schedules (`sec min hour dom month dow`), so `validate` can reject a bad
/// schedule with the field named. The engine's `ScheduleExpression` computes the actual ticks.
enum CronCheck {
    private struct Field {
        let name: String
        let range: ClosedRange<Int>
        let names: [String]
    }

    private static let months = ["JAN", "FEB", "MAR", "APR", "MAY", "JUN", "JUL", "AUG", "SEP", "OCT", "NOV", "DEC"]
    private static let days = ["SUN", "MON", "TUE", "WED", "THU", "FRI", "SAT"]

    private static let fields = [
        Field(name: "second", range: 0...59, names: []),
        Field(name: "minute", range: 0...59, names: []),
        Field(name: "hour", range: 0...23, names: []),
        Field(name: "day of month", range: 1...31, names: []),
        Field(name: "month", range: 1...12, names: months),
        Field(name: "day of week", range: 0...7, names: days),
    ]

    /// A description of the first problem in `expression`, or `nil` when it is well formed.
    static func problem(in expression: String) -> String? {
        let parts = expression.split(whereSeparator: { $0 == " " || $0 == "\t" })
        guard parts.count == 6 else {
            return "expected 6 fields (second minute hour day-of-month month day-of-week), found \(parts.count)"
        }
        for (index, part) in parts.enumerated() {
            let field = fields[index]
            if let problem = problem(in: String(part), field: field) {
                return "field \(index + 1) (\(field.name)): \(problem)"
            }
        }
        return nil
    }

    /// The value of one bound, or a problem description.
    private static func value(_ text: String, field: Field) -> (value: Int?, problem: String?) {
        if let number = Int(text) {
            guard field.range.contains(number) else {
                return (nil, "\(number) is out of range \(field.range.lowerBound)-\(field.range.upperBound)")
            }
            return (number, nil)
        }
        if let index = field.names.firstIndex(of: text.uppercased()) {
            return (field.names.count == 12 ? index + 1 : index, nil)
        }
        return (nil, "'\(text)' is not a number" + (field.names.isEmpty ? "" : " or a name like \(field.names[0])"))
    }

    private static func problem(in text: String, field: Field) -> String? {
        for item in text.split(separator: ",", omittingEmptySubsequences: false) {
            if item.isEmpty { return "empty list item in '\(text)'" }
            var rangePart = Substring(item)
            if let slash = item.firstIndex(of: "/") {
                let step = item[item.index(after: slash)...]
                guard let stepValue = Int(step), stepValue > 0 else { return "invalid step '/\(step)'" }
                rangePart = item[..<slash]
            }
            if rangePart == "*" || (rangePart == "?" && (field.name.hasPrefix("day"))) { continue }
            let bounds = rangePart.split(separator: "-", omittingEmptySubsequences: false)
            guard bounds.count <= 2, !bounds.contains(where: \.isEmpty) else { return "invalid range '\(rangePart)'" }
            var values: [Int] = []
            for bound in bounds {
                let parsed = value(String(bound), field: field)
                guard let number = parsed.value else { return parsed.problem }
                values.append(number)
            }
            if values.count == 2, values[0] > values[1] { return "range \(rangePart) is reversed" }
        }
        return nil
    }
}
