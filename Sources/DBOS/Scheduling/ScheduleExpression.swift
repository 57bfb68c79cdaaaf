import Foundation

/// A cron schedule of six fields, `sec min hour day-of-month month day-of-week`, read on the
/// wall clock of one time zone.
///
/// Syntax per field: `*`, `n`, `a-b`, `*/s`, `a-b/s`, `a/s` (from `a` to the field's maximum),
/// and comma lists of these. Months may be written `JAN`-`DEC` and days `SUN`-`SAT`, in any case;
/// day-of-week `0` and `7` are both Sunday; `?` means `*` in day-of-month and day-of-week. Five
/// fields are accepted too and mean seconds `0`, because that is the form most people know.
/// Quartz extensions (`L`, `W`, `#`) are rejected rather than guessed at.
///
/// Day matching follows Vixie cron, since that is what users of crontab expect: when both
/// day-of-month and day-of-week are restricted (neither is `*` or `?`), a day matches if
/// *either* matches (`0 0 0 13 * FRI` fires on every 13th and every Friday); otherwise the
/// restricted one alone decides.
///
/// Daylight saving time, so that a daily job neither disappears nor runs twice:
/// - A wall-clock time that does not exist because clocks spring forward (02:30 on
///   2026-03-08 in America/New_York) fires once, at the first instant after the gap (03:00 EDT).
///   Several times in the same gap collapse into that single firing.
/// - A wall-clock time that occurs twice because clocks fall back (01:30 on 2026-11-01 in
///   America/New_York) fires once, at its first occurrence (01:30 EDT). The repeated hour's
///   second pass fires nothing, so an hourly schedule has a 2-hour interval across it.
///
/// Equality compares the schedule, not the text: `0 0 0 * * 7` equals `0 0 0 * * SUN`.
public struct ScheduleExpression: Sendable, Hashable, CustomStringConvertible {
    /// The zone whose wall clock the fields describe; UTC unless chosen, so that a schedule
    /// means the same thing on every worker whatever the host's zone.
    public let timeZone: TimeZone

    let seconds: FieldValues
    let minutes: FieldValues
    let hours: FieldValues
    let daysOfMonth: FieldValues
    let months: FieldValues
    /// Sunday is 0; a written 7 is stored as 0.
    let daysOfWeek: FieldValues
    /// Whether day-of-month was written `*` or `?`, which decides the Vixie OR rule.
    let dayOfMonthIsStar: Bool
    /// Whether day-of-week was written `*` or `?`, which decides the Vixie OR rule.
    let dayOfWeekIsStar: Bool

    /// Parses a five- or six-field cron expression to be read on `timeZone`'s wall clock.
    ///
    /// Every error names the field and the problem, because schedules are usually written by
    /// hand in a spec file and the message is all the author gets.
    public init(parsing text: String, timeZone: TimeZone = .gmt) throws(ScheduleExpressionError) {
        let fields = text.split(whereSeparator: \.isWhitespace)
        guard fields.count == 6 || fields.count == 5 else {
            throw .wrongFieldCount(fields.count)
        }
        let specifications = fields.count == 6 ? FieldSpecification.all : Array(FieldSpecification.all.dropFirst())
        var parsed: [(values: FieldValues, isStar: Bool)] = []
        if fields.count == 5 {
            parsed.append((FieldValues(0), false))
        }
        for (index, field) in fields.enumerated() {
            parsed.append(try specifications[index].parse(String(field), position: index + 1))
        }
        self.timeZone = timeZone
        seconds = parsed[0].values
        minutes = parsed[1].values
        hours = parsed[2].values
        daysOfMonth = parsed[3].values
        months = parsed[4].values
        daysOfWeek = parsed[5].values
        dayOfMonthIsStar = parsed[3].isStar
        dayOfWeekIsStar = parsed[5].isStar
    }

    /// Parses a cron expression for the IANA zone named `timeZoneIdentifier` (for example
    /// `America/New_York`), failing on a name the system does not know rather than falling back
    /// to UTC and firing at the wrong hour.
    public init(parsing text: String, timeZoneIdentifier: String) throws(ScheduleExpressionError) {
        guard let zone = TimeZone(identifier: timeZoneIdentifier) else {
            throw .unknownTimeZone(timeZoneIdentifier)
        }
        try self.init(parsing: text, timeZone: zone)
    }

    /// The normalized six-field text: numbers instead of names, `?` as `*`, Sunday as `0`, and
    /// each field in its shortest form, so equal schedules print the same. The zone is not part
    /// of the text; see `timeZone`.
    public var description: String {
        [
            seconds.cronText(in: FieldSpecification.second, isStar: seconds == FieldSpecification.second.starValues),
            minutes.cronText(in: FieldSpecification.minute, isStar: minutes == FieldSpecification.minute.starValues),
            hours.cronText(in: FieldSpecification.hour, isStar: hours == FieldSpecification.hour.starValues),
            daysOfMonth.cronText(in: FieldSpecification.dayOfMonth, isStar: dayOfMonthIsStar),
            months.cronText(in: FieldSpecification.month, isStar: months == FieldSpecification.month.starValues),
            daysOfWeek.cronText(in: FieldSpecification.dayOfWeek, isStar: dayOfWeekIsStar),
        ].joined(separator: " ")
    }
}

// MARK: - Next fire time

extension ScheduleExpression {
    /// How many calendar years after the start the search looks before giving up: long enough to
    /// cross the eight-year gap between leap days around 2100 (2096 to 2104), short enough that
    /// an impossible schedule such as `0 0 0 30 2 *` answers nil at once instead of looping.
    static let searchYears = 8

    /// The first time strictly after `date`, at a whole second, when the schedule fires; nil when
    /// it never fires within the search window (impossible schedules such as `0 0 0 30 2 *`).
    ///
    /// The search walks the wall clock from the month down to the second, jumping to the next
    /// allowed value of each field, so a yearly schedule costs a few dozen steps, not millions.
    public func nextFireDate(after date: Date) -> Date? {
        let interval = date.timeIntervalSince1970
        // Years beyond 30,000 are not schedules anyone waits for; the bound keeps Int arithmetic safe.
        guard interval.isFinite, abs(interval) < 1e12 else { return nil }
        let earliest = Int(interval.rounded(.down)) + 1
        var wall = wallClockSeconds(at: earliest)
        if let end = endOfRepeatedWallTimes(at: earliest) {
            // Every wall time from here to the end of the fall-back overlap already had its
            // first occurrence, which is the one that fires.
            wall = end
        }
        let lastYear = CivilDate(daysSinceEpoch: wall.floorDivided(by: 86_400)).year + Self.searchYears
        while let candidate = nextMatchingWallTime(atOrAfter: wall, throughYear: lastYear) {
            let instant = instant(atWallClockSeconds: candidate)
            if instant >= earliest {
                return Date(timeIntervalSince1970: TimeInterval(instant))
            }
            // Unreachable for real zones (the overlap is skipped above); guards odd tz data.
            wall = candidate + 1
        }
        return nil
    }

    /// The fire times from `start` through `end`, both inclusive, at most `limit` of them, for
    /// backfilling the runs a stopped scheduler missed; the limit keeps a long outage from
    /// producing an unbounded burst.
    public func fireDates(from start: Date, through end: Date, limit: Int) -> [Date] {
        guard limit > 0, start <= end else { return [] }
        var dates: [Date] = []
        // One second before the first whole second at or after `start`, so `start` itself counts.
        var cursor = Date(timeIntervalSince1970: start.timeIntervalSince1970.rounded(.up) - 1)
        while dates.count < limit, let next = nextFireDate(after: cursor), next <= end {
            dates.append(next)
            cursor = next
        }
        return dates
    }

    /// The first wall-clock second at or after `wall` whose fields all match, in seconds since
    /// 1970-01-01T00:00:00 of the zone's wall clock (not an instant).
    func nextMatchingWallTime(atOrAfter wall: Int, throughYear lastYear: Int) -> Int? {
        var date = CivilDate(daysSinceEpoch: wall.floorDivided(by: 86_400))
        let secondOfDay = wall - date.daysSinceEpoch * 86_400
        var hour = secondOfDay / 3_600
        var minute = secondOfDay % 3_600 / 60
        var second = secondOfDay % 60

        func startNextDay() {
            date = date.nextDay
            hour = 0
            minute = 0
            second = 0
        }

        while date.year <= lastYear {
            guard let month = months.first(atOrAfter: date.month) else {
                date = CivilDate(year: date.year + 1, month: 1, day: 1)
                (hour, minute, second) = (0, 0, 0)
                continue
            }
            if month != date.month {
                date = CivilDate(year: date.year, month: month, day: 1)
                (hour, minute, second) = (0, 0, 0)
            }
            guard dayMatches(date) else {
                startNextDay()
                continue
            }
            guard let nextHour = hours.first(atOrAfter: hour) else {
                startNextDay()
                continue
            }
            if nextHour != hour {
                (hour, minute, second) = (nextHour, 0, 0)
            }
            guard let nextMinute = minutes.first(atOrAfter: minute) else {
                if hour == 23 { startNextDay() } else { (hour, minute, second) = (hour + 1, 0, 0) }
                continue
            }
            if nextMinute != minute {
                (minute, second) = (nextMinute, 0)
            }
            guard let nextSecond = seconds.first(atOrAfter: second) else {
                if minute < 59 {
                    (minute, second) = (minute + 1, 0)
                } else if hour < 23 {
                    (hour, minute, second) = (hour + 1, 0, 0)
                } else {
                    startNextDay()
                }
                continue
            }
            return date.daysSinceEpoch * 86_400 + hour * 3_600 + minute * 60 + nextSecond
        }
        return nil
    }

    /// Whether the schedule allows `date`, applying the Vixie OR rule when both day fields are
    /// restricted.
    func dayMatches(_ date: CivilDate) -> Bool {
        let dayOfMonthMatches = daysOfMonth.contains(date.day)
        let dayOfWeekMatches = daysOfWeek.contains(date.weekday)
        if dayOfMonthIsStar || dayOfWeekIsStar {
            return dayOfMonthMatches && dayOfWeekMatches
        }
        return dayOfMonthMatches || dayOfWeekMatches
    }
}

// MARK: - Wall clock and instants

extension ScheduleExpression {
    /// The zone's UTC offset at an instant given in seconds since the epoch.
    private func offset(at instant: Int) -> Int {
        timeZone.secondsFromGMT(for: Date(timeIntervalSince1970: TimeInterval(instant)))
    }

    /// The wall-clock reading, as seconds since the wall clock's 1970-01-01T00:00:00, at an instant.
    func wallClockSeconds(at instant: Int) -> Int {
        instant + offset(at: instant)
    }

    /// The instant a wall-clock time fires: its only occurrence, the first of two in a fall-back
    /// overlap, or the end of the gap when clocks sprang forward over it.
    ///
    /// Foundation's `Calendar.date(from:)` resolves gap times by shifting them by the gap's
    /// length (02:30 becomes 03:30), which would not collapse a gap's times into one firing, so
    /// this asks the zone for offsets directly. It assumes at most one transition within a day
    /// either side, which holds for every zone in the tz database.
    func instant(atWallClockSeconds wall: Int) -> Int {
        let offsetBefore = offset(at: wall - 86_400)
        let offsetAfter = offset(at: wall + 86_400)
        let instantBefore = wall - offsetBefore
        if offsetBefore == offsetAfter {
            return instantBefore
        }
        let instantAfter = wall - offsetAfter
        let validBefore = offset(at: instantBefore) == offsetBefore
        let validAfter = offset(at: instantAfter) == offsetAfter
        switch (validBefore, validAfter) {
        case (true, true): return min(instantBefore, instantAfter)
        case (true, false): return instantBefore
        case (false, true): return instantAfter
        case (false, false):
            // A gap: the zone moved from offsetBefore to offsetAfter between the two readings.
            return firstInstant(after: min(instantBefore, instantAfter),
                                upTo: max(instantBefore, instantAfter),
                                leaving: offsetBefore)
        }
    }

    /// When `instant` lies in the second pass of a fall-back overlap, the wall-clock time at which
    /// the overlap ends; nil otherwise.
    func endOfRepeatedWallTimes(at instant: Int) -> Int? {
        let first = self.instant(atWallClockSeconds: wallClockSeconds(at: instant))
        guard first < instant else { return nil }
        let offsetBefore = offset(at: first)
        let transition = firstInstant(after: first, upTo: instant, leaving: offsetBefore)
        return transition + offsetBefore
    }

    /// The first instant in `(low, high]` whose offset is no longer `offset`, by bisection; the
    /// zone must have `offset` at `low` and another at `high`.
    private func firstInstant(after low: Int, upTo high: Int, leaving offset: Int) -> Int {
        var low = low
        var high = high
        while high - low > 1 {
            let middle = low + (high - low) / 2
            if self.offset(at: middle) == offset {
                low = middle
            } else {
                high = middle
            }
        }
        return high
    }
}

// MARK: - Fields

/// The set of values one cron field allows, as a bitset: bit `n` set means value `n` matches.
struct FieldValues: Sendable, Hashable {
    var bits: UInt64 = 0

    init() {}

    init(_ value: Int) {
        insert(value)
    }

    mutating func insert(_ value: Int) {
        bits |= 1 << UInt64(value)
    }

    func contains(_ value: Int) -> Bool {
        value >= 0 && value < 64 && bits & (1 << UInt64(value)) != 0
    }

    /// The smallest allowed value that is at least `value`, found with one mask and one
    /// trailing-zero count instead of a loop.
    func first(atOrAfter value: Int) -> Int? {
        guard value < 64 else { return nil }
        let remaining = bits & (UInt64.max << UInt64(max(value, 0)))
        return remaining == 0 ? nil : remaining.trailingZeroBitCount
    }

    var values: [Int] {
        (0..<64).filter(contains)
    }

    /// The shortest cron text for these values: `*`, `*/s`, `a/s`, `a-b/s`, or a list of values
    /// and ranges.
    func cronText(in field: FieldSpecification, isStar: Bool) -> String {
        if isStar { return "*" }
        let values = values
        if values.count >= 3 {
            let step = values[1] - values[0]
            let isProgression = step > 1 && zip(values, values.dropFirst()).allSatisfy { $1 - $0 == step }
            if isProgression {
                let last = values[values.count - 1]
                if last + step > field.starRange.upperBound {
                    return values[0] == field.starRange.lowerBound ? "*/\(step)" : "\(values[0])/\(step)"
                }
                return "\(values[0])-\(last)/\(step)"
            }
        }
        var parts: [String] = []
        var index = 0
        while index < values.count {
            var end = index
            while end + 1 < values.count, values[end + 1] == values[end] + 1 {
                end += 1
            }
            parts.append(end == index ? "\(values[index])" : "\(values[index])-\(values[end])")
            index = end + 1
        }
        return parts.joined(separator: ",")
    }
}

/// What one of the six positions accepts, and how to read it.
struct FieldSpecification: Sendable {
    let name: String
    /// The values that may be written (day-of-week includes 7 for Sunday).
    let range: ClosedRange<Int>
    /// The values `*` stands for, and the maximum of `a/s` (day-of-week stops at 6).
    let starRange: ClosedRange<Int>
    /// Names for consecutive values from `range.lowerBound`, upper case.
    let names: [String]
    let allowsQuestionMark: Bool

    static let second = FieldSpecification(
        name: "second", range: 0...59, starRange: 0...59, names: [], allowsQuestionMark: false)
    static let minute = FieldSpecification(
        name: "minute", range: 0...59, starRange: 0...59, names: [], allowsQuestionMark: false)
    static let hour = FieldSpecification(
        name: "hour", range: 0...23, starRange: 0...23, names: [], allowsQuestionMark: false)
    static let dayOfMonth = FieldSpecification(
        name: "day-of-month", range: 1...31, starRange: 1...31, names: [], allowsQuestionMark: true)
    static let month = FieldSpecification(
        name: "month", range: 1...12, starRange: 1...12,
        names: ["JAN", "FEB", "MAR", "APR", "MAY", "JUN", "JUL", "AUG", "SEP", "OCT", "NOV", "DEC"],
        allowsQuestionMark: false)
    static let dayOfWeek = FieldSpecification(
        name: "day-of-week", range: 0...7, starRange: 0...6,
        names: ["SUN", "MON", "TUE", "WED", "THU", "FRI", "SAT"], allowsQuestionMark: true)

    static let all = [second, minute, hour, dayOfMonth, month, dayOfWeek]

    var starValues: FieldValues {
        var values = FieldValues()
        for value in starRange { values.insert(value) }
        return values
    }

    /// Parses one field; `isStar` is true when an element was a plain `*` or `?` (or a step of 1),
    /// which the Vixie day rule needs to tell "every day" from "these days".
    func parse(_ text: String, position: Int) throws(ScheduleExpressionError) -> (values: FieldValues, isStar: Bool) {
        func failure(_ problem: String) -> ScheduleExpressionError {
            .invalidField(position: position, name: name, problem: problem)
        }
        var values = FieldValues()
        var isStar = false
        for element in text.split(separator: ",", omittingEmptySubsequences: false) {
            guard !element.isEmpty else {
                throw failure("empty list element in '\(text)'")
            }
            let parts = element.split(separator: "/", omittingEmptySubsequences: false)
            guard parts.count <= 2 else {
                throw failure("'\(element)' has more than one '/'")
            }
            var step = 1
            if parts.count == 2 {
                let stepText = parts[1]
                guard !stepText.isEmpty, stepText.allSatisfy(\.isASCIIDigit) else {
                    throw failure("step '\(stepText)' in '\(element)' is not a number")
                }
                // A step wider than the field just keeps the first value; no need to reject it.
                step = Int(stepText) ?? Int.max
                guard step > 0 else {
                    throw failure("step 0 in '\(element)' never advances; use a step of 1 or more")
                }
            }
            let rangeText = parts[0]
            let low: Int
            let high: Int
            if rangeText == "*" || rangeText == "?" {
                guard rangeText == "*" || allowsQuestionMark else {
                    throw failure("'?' is allowed only in day-of-month and day-of-week")
                }
                (low, high) = (starRange.lowerBound, starRange.upperBound)
                isStar = isStar || step == 1
            } else {
                let bounds = rangeText.split(separator: "-", omittingEmptySubsequences: false)
                guard bounds.count <= 2 else {
                    throw failure("'\(rangeText)' has more than one '-'")
                }
                low = try value(of: bounds[0], in: element, failure: failure)
                if bounds.count == 2 {
                    high = try value(of: bounds[1], in: element, failure: failure)
                    guard low <= high else {
                        throw failure("range \(rangeText) is reversed; write the smaller value first")
                    }
                } else {
                    // `a/s` runs to the field's maximum; a day-of-week `7/s` is just Sunday.
                    high = parts.count == 2 ? max(starRange.upperBound, low) : low
                }
            }
            for value in stride(from: low, through: high, by: step) {
                // Only day-of-week reaches past `*` (7 is Sunday), stored as 0 so one bit means one day.
                values.insert(value > starRange.upperBound ? starRange.lowerBound : value)
            }
        }
        return (values, isStar)
    }

    private func value(
        of text: Substring, in element: Substring, failure: (String) -> ScheduleExpressionError
    ) throws(ScheduleExpressionError) -> Int {
        guard !text.isEmpty else {
            throw failure("missing value in '\(element)'")
        }
        if text.allSatisfy(\.isASCIIDigit) {
            guard let number = Int(text), range.contains(number) else {
                throw failure("\(text) is out of range \(range.lowerBound)-\(range.upperBound)")
            }
            return number
        }
        let upper = text.uppercased()
        if let index = names.firstIndex(of: upper) {
            return range.lowerBound + index
        }
        let prefix = upper.dropLast()
        if upper.contains("#") {
            throw failure("'#' (nth weekday of the month) is not supported; list the days instead")
        }
        if upper.hasSuffix("L"), prefix.allSatisfy(\.isASCIIDigit) {
            throw failure("'L' (last) is not supported; list the days instead")
        }
        if upper.hasSuffix("W"), prefix == "L" || prefix.allSatisfy(\.isASCIIDigit) {
            throw failure("'W' (nearest weekday) is not supported; list the days instead")
        }
        if let first = names.first, let last = names.last {
            throw failure("'\(text)' is not a number or a \(name) name (\(first)-\(last))")
        }
        throw failure("'\(text)' is not a number")
    }
}

// MARK: - Calendar arithmetic

/// A proleptic Gregorian date, computed with integer arithmetic (Howard Hinnant's civil-date
/// algorithms) because the search steps through thousands of days and Calendar calls are slow.
struct CivilDate: Sendable, Hashable {
    let year: Int
    let month: Int
    let day: Int

    init(year: Int, month: Int, day: Int) {
        self.year = year
        self.month = month
        self.day = day
    }

    init(daysSinceEpoch: Int) {
        let shifted = daysSinceEpoch + 719_468
        let era = (shifted >= 0 ? shifted : shifted - 146_096) / 146_097
        let dayOfEra = shifted - era * 146_097
        let yearOfEra = (dayOfEra - dayOfEra / 1_460 + dayOfEra / 36_524 - dayOfEra / 146_096) / 365
        let dayOfYear = dayOfEra - (365 * yearOfEra + yearOfEra / 4 - yearOfEra / 100)
        let monthFromMarch = (5 * dayOfYear + 2) / 153
        day = dayOfYear - (153 * monthFromMarch + 2) / 5 + 1
        month = monthFromMarch < 10 ? monthFromMarch + 3 : monthFromMarch - 9
        year = yearOfEra + era * 400 + (month <= 2 ? 1 : 0)
    }

    var daysSinceEpoch: Int {
        let yearFromMarch = month <= 2 ? year - 1 : year
        let era = (yearFromMarch >= 0 ? yearFromMarch : yearFromMarch - 399) / 400
        let yearOfEra = yearFromMarch - era * 400
        let dayOfYear = (153 * ((month + 9) % 12) + 2) / 5 + day - 1
        let dayOfEra = yearOfEra * 365 + yearOfEra / 4 - yearOfEra / 100 + dayOfYear
        return era * 146_097 + dayOfEra - 719_468
    }

    /// Sunday is 0, as in cron; 1970-01-01 was a Thursday.
    var weekday: Int {
        (daysSinceEpoch % 7 + 7 + 4) % 7
    }

    var daysInMonth: Int {
        switch month {
        case 2:
            let isLeap = year % 4 == 0 && (year % 100 != 0 || year % 400 == 0)
            return isLeap ? 29 : 28
        case 4, 6, 9, 11:
            return 30
        default:
            return 31
        }
    }

    var nextDay: CivilDate {
        if day < daysInMonth { return CivilDate(year: year, month: month, day: day + 1) }
        if month < 12 { return CivilDate(year: year, month: month + 1, day: 1) }
        return CivilDate(year: year + 1, month: 1, day: 1)
    }
}

extension Int {
    /// Division rounding toward negative infinity, so instants before 1970 land on the right day.
    fileprivate func floorDivided(by divisor: Int) -> Int {
        let (quotient, remainder) = quotientAndRemainder(dividingBy: divisor)
        return remainder < 0 ? quotient - 1 : quotient
    }
}

extension Character {
    /// Whether this is one of `0`-`9`; `isNumber` would also accept other scripts' digits and `½`.
    fileprivate var isASCIIDigit: Bool {
        ("0"..."9").contains(self)
    }
}
