/// Why a cron expression or its time zone was rejected, worded so the author can fix the text.
///
/// Errors name the field by its position in the text as written (a five-field expression's
/// hour is field 2) because that is what the author sees when they look for the mistake.
public enum ScheduleExpressionError: Error, Sendable, Hashable, CustomStringConvertible {
    /// The text did not split into five or six whitespace-separated fields.
    case wrongFieldCount(Int)
    /// One field could not be parsed; `position` is 1-based in the text as written.
    case invalidField(position: Int, name: String, problem: String)
    /// The time zone identifier is not in this system's time zone database (on Linux, `tzdata`).
    case unknownTimeZone(String)

    /// The message shown to the person who wrote the schedule.
    public var description: String {
        switch self {
        case .wrongFieldCount(let count):
            return "cron expression has \(count) fields; "
                + "expected 6 (sec min hour day-of-month month day-of-week)"
        case .invalidField(let position, let name, let problem):
            return "cron field \(position) (\(name)): \(problem)"
        case .unknownTimeZone(let identifier):
            return "unknown time zone \"\(identifier)\"; expected an IANA name such as America/New_York"
        }
    }
}
