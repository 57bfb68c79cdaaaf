import DBOSTestSupport
import Foundation
import Testing

@testable import DBOS

/// One row of the fire-time table: the next instants after `start`, stopping early when the
/// schedule runs out (an empty list means `nextFireDate` returns nil).
struct FireTimesCase: Sendable, CustomTestStringConvertible {
    let expression: String
    let zone: String
    let start: String
    let expected: [String]

    init(_ expression: String, in zone: String = "UTC", after start: String, _ expected: [String]) {
        self.expression = expression
        self.zone = zone
        self.start = start
        self.expected = expected
    }

    var testDescription: String { "'\(expression)' in \(zone) after \(start)" }
}

/// A row of the error table: the text and the exact message a person would see.
struct ParseErrorCase: Sendable, CustomTestStringConvertible {
    let text: String
    let message: String

    init(_ text: String, _ message: String) {
        self.text = text
        self.message = message
    }

    var testDescription: String { "'\(text)'" }
}

private func instant(_ text: String) throws -> Date {
    try Date(text, strategy: .iso8601)
}

private func iso(_ date: Date) -> String {
    date.formatted(.iso8601)
}

private let fireTimesCases: [FireTimesCase] = [
    FireTimesCase("*/15 * * * * *", after: "2026-03-01T00:00:07Z", [
        "2026-03-01T00:00:15Z", "2026-03-01T00:00:30Z", "2026-03-01T00:00:45Z",
        "2026-03-01T00:01:00Z", "2026-03-01T00:01:15Z",
    ]),
    FireTimesCase("0 0 12 * * MON-FRI", after: "2026-01-02T13:00:00Z", [
        "2026-01-05T12:00:00Z", "2026-01-06T12:00:00Z", "2026-01-07T12:00:00Z",
        "2026-01-08T12:00:00Z", "2026-01-09T12:00:00Z",
    ]),
    // Spring forward: 02:30 does not exist on 2026-03-08 and fires at 03:00 EDT instead.
    FireTimesCase("0 30 2 * * *", in: "America/New_York", after: "2026-03-06T12:00:00Z", [
        "2026-03-07T07:30:00Z", "2026-03-08T07:00:00Z", "2026-03-09T06:30:00Z",
        "2026-03-10T06:30:00Z", "2026-03-11T06:30:00Z",
    ]),
    // Fall back: 02:30 is unambiguous, only the offset changes.
    FireTimesCase("0 30 2 * * *", in: "America/New_York", after: "2026-10-30T12:00:00Z", [
        "2026-10-31T06:30:00Z", "2026-11-01T07:30:00Z", "2026-11-02T07:30:00Z",
        "2026-11-03T07:30:00Z", "2026-11-04T07:30:00Z",
    ]),
    // Fall back: 01:30 happens twice on 2026-11-01 and fires only at the first (EDT) one.
    FireTimesCase("0 30 1 * * *", in: "America/New_York", after: "2026-10-30T12:00:00Z", [
        "2026-10-31T05:30:00Z", "2026-11-01T05:30:00Z", "2026-11-02T06:30:00Z",
        "2026-11-03T06:30:00Z", "2026-11-04T06:30:00Z",
    ]),
    // The repeated hour's second pass fires nothing.
    FireTimesCase("0 */20 1 * * *", in: "America/New_York", after: "2026-11-01T04:00:00Z", [
        "2026-11-01T05:00:00Z", "2026-11-01T05:20:00Z", "2026-11-01T05:40:00Z",
        "2026-11-02T06:00:00Z", "2026-11-02T06:20:00Z",
    ]),
    // Starting inside the second pass (01:10 EST) skips to the next day.
    FireTimesCase("0 */20 1 * * *", in: "America/New_York", after: "2026-11-01T06:10:00Z", [
        "2026-11-02T06:00:00Z", "2026-11-02T06:20:00Z", "2026-11-02T06:40:00Z",
        "2026-11-03T06:00:00Z", "2026-11-03T06:20:00Z",
    ]),
    FireTimesCase("0 0 * * * *", in: "America/New_York", after: "2026-11-01T04:30:00Z", [
        "2026-11-01T05:00:00Z", "2026-11-01T07:00:00Z", "2026-11-01T08:00:00Z",
        "2026-11-01T09:00:00Z", "2026-11-01T10:00:00Z",
    ]),
    // 02:00, 02:15, 02:30 and 02:45 fall in the gap and collapse into one firing at 03:00 EDT.
    FireTimesCase("0 */15 * * * *", in: "America/New_York", after: "2026-03-08T06:40:00Z", [
        "2026-03-08T06:45:00Z", "2026-03-08T07:00:00Z", "2026-03-08T07:15:00Z",
        "2026-03-08T07:30:00Z", "2026-03-08T07:45:00Z",
    ]),
    FireTimesCase("0 0 9 * * *", in: "Asia/Kolkata", after: "2026-01-01T00:00:00Z", [
        "2026-01-01T03:30:00Z", "2026-01-02T03:30:00Z", "2026-01-03T03:30:00Z",
        "2026-01-04T03:30:00Z", "2026-01-05T03:30:00Z",
    ]),
    FireTimesCase("0 0 0 29 2 *", after: "2026-01-01T00:00:00Z", [
        "2028-02-29T00:00:00Z", "2032-02-29T00:00:00Z", "2036-02-29T00:00:00Z",
        "2040-02-29T00:00:00Z", "2044-02-29T00:00:00Z",
    ]),
    // 2100 is not a leap year, so leap days are eight years apart there.
    FireTimesCase("0 0 0 29 2 *", after: "2096-03-01T00:00:00Z", [
        "2104-02-29T00:00:00Z", "2108-02-29T00:00:00Z", "2112-02-29T00:00:00Z",
        "2116-02-29T00:00:00Z", "2120-02-29T00:00:00Z",
    ]),
    FireTimesCase("0 0 0 31 * *", after: "2026-01-01T00:00:00Z", [
        "2026-01-31T00:00:00Z", "2026-03-31T00:00:00Z", "2026-05-31T00:00:00Z",
        "2026-07-31T00:00:00Z", "2026-08-31T00:00:00Z",
    ]),
    // Both day fields restricted: every 13th and every Friday.
    FireTimesCase("0 0 0 13 * FRI", after: "2026-01-01T00:00:00Z", [
        "2026-01-02T00:00:00Z", "2026-01-09T00:00:00Z", "2026-01-13T00:00:00Z",
        "2026-01-16T00:00:00Z", "2026-01-23T00:00:00Z",
    ]),
    // A written full range is a restriction, so the OR rule makes every day match.
    FireTimesCase("0 0 0 1-31 * MON", after: "2026-01-01T00:00:00Z", [
        "2026-01-02T00:00:00Z", "2026-01-03T00:00:00Z", "2026-01-04T00:00:00Z",
        "2026-01-05T00:00:00Z", "2026-01-06T00:00:00Z",
    ]),
    FireTimesCase("0 0 0 13 * ?", after: "2026-01-01T00:00:00Z", [
        "2026-01-13T00:00:00Z", "2026-02-13T00:00:00Z", "2026-03-13T00:00:00Z",
        "2026-04-13T00:00:00Z", "2026-05-13T00:00:00Z",
    ]),
    FireTimesCase("0 0 0 ? * fri", after: "2026-01-01T00:00:00Z", [
        "2026-01-02T00:00:00Z", "2026-01-09T00:00:00Z", "2026-01-16T00:00:00Z",
        "2026-01-23T00:00:00Z", "2026-01-30T00:00:00Z",
    ]),
    FireTimesCase("0 0 9 1 jan,Jul *", after: "2026-01-01T10:00:00Z", [
        "2026-07-01T09:00:00Z", "2027-01-01T09:00:00Z", "2027-07-01T09:00:00Z",
        "2028-01-01T09:00:00Z", "2028-07-01T09:00:00Z",
    ]),
    FireTimesCase("0 0 8 * * 7", after: "2026-01-01T00:00:00Z", [
        "2026-01-04T08:00:00Z", "2026-01-11T08:00:00Z", "2026-01-18T08:00:00Z",
        "2026-01-25T08:00:00Z", "2026-02-01T08:00:00Z",
    ]),
    FireTimesCase("30 9 * * Mon", after: "2026-01-01T00:00:00Z", [
        "2026-01-05T09:30:00Z", "2026-01-12T09:30:00Z", "2026-01-19T09:30:00Z",
        "2026-01-26T09:30:00Z", "2026-02-02T09:30:00Z",
    ]),
    FireTimesCase("0 5/20 * * * *", after: "2026-01-01T00:00:00Z", [
        "2026-01-01T00:05:00Z", "2026-01-01T00:25:00Z", "2026-01-01T00:45:00Z",
        "2026-01-01T01:05:00Z", "2026-01-01T01:25:00Z",
    ]),
    FireTimesCase("0 0 9-17/4,20 * * *", after: "2026-01-01T00:00:00Z", [
        "2026-01-01T09:00:00Z", "2026-01-01T13:00:00Z", "2026-01-01T17:00:00Z",
        "2026-01-01T20:00:00Z", "2026-01-02T09:00:00Z",
    ]),
    FireTimesCase("59 59 23 31 12 *", after: "2026-06-01T00:00:00Z", [
        "2026-12-31T23:59:59Z", "2027-12-31T23:59:59Z", "2028-12-31T23:59:59Z",
        "2029-12-31T23:59:59Z", "2030-12-31T23:59:59Z",
    ]),
    FireTimesCase("0 0 0 30 2 *", after: "2026-01-01T00:00:00Z", []),
    FireTimesCase("0 0 0 31 APR,JUN,SEP,NOV *", after: "2026-01-01T00:00:00Z", []),
]

private let parseErrorCases: [ParseErrorCase] = [
    ParseErrorCase("* * * *",
                   "cron expression has 4 fields; expected 6 (sec min hour day-of-month month day-of-week)"),
    ParseErrorCase("",
                   "cron expression has 0 fields; expected 6 (sec min hour day-of-month month day-of-week)"),
    ParseErrorCase("* * * * * * *",
                   "cron expression has 7 fields; expected 6 (sec min hour day-of-month month day-of-week)"),
    ParseErrorCase("0 0 24 * * *", "cron field 3 (hour): 24 is out of range 0-23"),
    ParseErrorCase("0 24 * * *", "cron field 2 (hour): 24 is out of range 0-23"),
    ParseErrorCase("60 * * * * *", "cron field 1 (second): 60 is out of range 0-59"),
    ParseErrorCase("0 60 * * * *", "cron field 2 (minute): 60 is out of range 0-59"),
    ParseErrorCase("0 0 0 0 * *", "cron field 4 (day-of-month): 0 is out of range 1-31"),
    ParseErrorCase("0 0 0 32 * *", "cron field 4 (day-of-month): 32 is out of range 1-31"),
    ParseErrorCase("0 0 0 * 13 *", "cron field 5 (month): 13 is out of range 1-12"),
    ParseErrorCase("0 0 0 * * 8", "cron field 6 (day-of-week): 8 is out of range 0-7"),
    ParseErrorCase("0 0 99999999999999999999 * * *",
                   "cron field 3 (hour): 99999999999999999999 is out of range 0-23"),
    ParseErrorCase("*/0 * * * * *",
                   "cron field 1 (second): step 0 in '*/0' never advances; use a step of 1 or more"),
    ParseErrorCase("*/ * * * * *", "cron field 1 (second): step '' in '*/' is not a number"),
    ParseErrorCase("0 30-10 * * * *",
                   "cron field 2 (minute): range 30-10 is reversed; write the smaller value first"),
    ParseErrorCase("0 0 0 * * SAT-SUN",
                   "cron field 6 (day-of-week): range SAT-SUN is reversed; write the smaller value first"),
    ParseErrorCase("0 0 0 L * *",
                   "cron field 4 (day-of-month): 'L' (last) is not supported; list the days instead"),
    ParseErrorCase("0 0 0 * * 5L",
                   "cron field 6 (day-of-week): 'L' (last) is not supported; list the days instead"),
    ParseErrorCase("0 0 0 15W * *",
                   "cron field 4 (day-of-month): 'W' (nearest weekday) is not supported; list the days instead"),
    ParseErrorCase("0 0 0 LW * *",
                   "cron field 4 (day-of-month): 'W' (nearest weekday) is not supported; list the days instead"),
    ParseErrorCase("0 0 0 * * MON#2",
                   "cron field 6 (day-of-week): '#' (nth weekday of the month) is not supported; list the days instead"),
    ParseErrorCase("0 0 0 1,,15 * *", "cron field 4 (day-of-month): empty list element in '1,,15'"),
    ParseErrorCase("0 0 0 1, * *", "cron field 4 (day-of-month): empty list element in '1,'"),
    ParseErrorCase("0 0 0 * * 1-", "cron field 6 (day-of-week): missing value in '1-'"),
    ParseErrorCase("0 0 0 * FOO *", "cron field 5 (month): 'FOO' is not a number or a month name (JAN-DEC)"),
    ParseErrorCase("0 0 0 * * Funday",
                   "cron field 6 (day-of-week): 'Funday' is not a number or a day-of-week name (SUN-SAT)"),
    ParseErrorCase("0 0 x * * *", "cron field 3 (hour): 'x' is not a number"),
    ParseErrorCase("0 0 0 * ? *", "cron field 5 (month): '?' is allowed only in day-of-month and day-of-week"),
    ParseErrorCase("1/2/3 * * * * *", "cron field 1 (second): '1/2/3' has more than one '/'"),
    ParseErrorCase("1-2-3 * * * * *", "cron field 1 (second): '1-2-3' has more than one '-'"),
]

@Suite struct ScheduleExpressionTests {
    @Test(arguments: fireTimesCases)
    func nextFireDatesFollowTheTable(_ row: FireTimesCase) throws {
        let expression = try ScheduleExpression(parsing: row.expression, timeZoneIdentifier: row.zone)
        var cursor = try instant(row.start)
        var fired: [String] = []
        while fired.count < 5, let next = expression.nextFireDate(after: cursor) {
            fired.append(iso(next))
            cursor = next
        }
        #expect(fired == row.expected)
    }

    @Test(arguments: parseErrorCases)
    func invalidExpressionsAreRejectedWithAMessageNamingTheField(_ row: ParseErrorCase) {
        #expect(parseErrorMessage(row.text) == row.message)
    }

    @Test func unknownTimeZoneIsRejectedRatherThanTreatedAsUTC() {
        do {
            _ = try ScheduleExpression(parsing: "0 0 0 * * *", timeZoneIdentifier: "Mars/Olympus_Mons")
            Issue.record("expected an error")
        } catch {
            #expect(error == .unknownTimeZone("Mars/Olympus_Mons"))
            #expect(error.description
                == #"unknown time zone "Mars/Olympus_Mons"; expected an IANA name such as America/New_York"#)
        }
    }

    @Test(arguments: [
        ("0 0 12 ? jan-mar mon-fri", "0 0 12 * 1-3 1-5"),
        ("*/15 * * * *", "0 */15 * * * *"),
        ("0 0 0 * * 7", "0 0 0 * * 0"),
        ("0 0 0 1-31 * *", "0 0 0 1-31 * *"),
        ("5/15 * * * * *", "5/15 * * * * *"),
        ("0 0-30/10 * * * *", "0 0-30/10 * * * *"),
        ("0 0 9-17/4,20 * * *", "0 0 9,13,17,20 * * *"),
        ("  0\t0   0 */1 * 0-7 ", "0 0 0 * * 0-6"),
        ("0,1,2,5 0 0 * * SAT,SUN", "0-2,5 0 0 * * 0,6"),
        ("0 0 0 */2 * *", "0 0 0 */2 * *"),
        ("0 0 0 * * 1/2", "0 0 0 * * 1/2"),
    ])
    func descriptionIsTheNormalizedExpression(text: String, normalized: String) throws {
        let expression = try ScheduleExpression(parsing: text)
        #expect(expression.description == normalized)
        #expect(try ScheduleExpression(parsing: normalized) == expression)
    }

    @Test func equalSchedulesCompareEqualWhateverTheirSpelling() throws {
        #expect(try ScheduleExpression(parsing: "0 0 0 * * 7") == ScheduleExpression(parsing: "0 0 0 ? * sun"))
        #expect(try ScheduleExpression(parsing: "0 * * * *") == ScheduleExpression(parsing: "0 0 * * * *"))
        // A written full range is not `*`: it switches the day fields to the OR rule.
        #expect(try ScheduleExpression(parsing: "0 0 0 1-31 * *") != ScheduleExpression(parsing: "0 0 0 * * *"))
        let newYork = try #require(TimeZone(identifier: "America/New_York"))
        #expect(try ScheduleExpression(parsing: "0 0 0 * * *", timeZone: newYork)
            != ScheduleExpression(parsing: "0 0 0 * * *"))
    }

    @Test func nextFireDateIsStrictlyAfterAndOnAWholeSecond() throws {
        let everySecond = try ScheduleExpression(parsing: "* * * * * *")
        let start = try instant("2026-01-01T00:00:00Z")
        #expect(everySecond.nextFireDate(after: start) == start + 1)
        #expect(everySecond.nextFireDate(after: start + 0.25) == start + 1)
        #expect(everySecond.nextFireDate(after: start - 0.25) == start)
    }

    @Test func fireDatesIncludeBothEndsAndStopAtTheLimit() throws {
        let hourly = try ScheduleExpression(parsing: "0 0 * * * *")
        let start = try instant("2026-01-01T00:00:00Z")
        let end = try instant("2026-01-01T03:00:00Z")
        #expect(hourly.fireDates(from: start, through: end, limit: 10).map(iso) == [
            "2026-01-01T00:00:00Z", "2026-01-01T01:00:00Z", "2026-01-01T02:00:00Z", "2026-01-01T03:00:00Z",
        ])
        #expect(hourly.fireDates(from: start, through: end, limit: 2).count == 2)
        #expect(hourly.fireDates(from: start + 0.5, through: end, limit: 10).count == 3)
        #expect(hourly.fireDates(from: end, through: start, limit: 10).isEmpty)
        #expect(hourly.fireDates(from: start, through: end, limit: 0).isEmpty)
    }

    @Test func randomSchedulesFireAtTheFirstMatchingSecondAfterTheStart() throws {
        var generator = SplitMix64(seed: 0x5EED_C0FF_EE15_600D)
        let zones = try ["UTC", "Asia/Kolkata", "Asia/Kathmandu", "Asia/Tokyo"].map { identifier in
            try #require(TimeZone(identifier: identifier))
        }
        var bruteForced = 0
        for _ in 0..<400 {
            let text = randomExpressionText(using: &generator)
            let zone = zones[Int.random(in: 0..<zones.count, using: &generator)]
            let expression = try ScheduleExpression(parsing: text, timeZone: zone)
            let start = randomStart(using: &generator)
            var calendar = Calendar(identifier: .gregorian)
            calendar.timeZone = zone
            let context = "'\(text)' in \(zone.identifier) after \(start.timeIntervalSince1970)"

            #expect(try ScheduleExpression(parsing: expression.description, timeZone: zone) == expression,
                    "\(context): description '\(expression)' does not parse back")
            guard let next = expression.nextFireDate(after: start) else {
                #expect(neverFires(expression), "\(context): nil for a possible schedule")
                continue
            }
            #expect(next > start, "\(context)")
            #expect(next.timeIntervalSince1970 == next.timeIntervalSince1970.rounded(), "\(context)")
            #expect(matches(expression, next, calendar), "\(context): \(iso(next)) does not match")
            if next.timeIntervalSince(start) <= 6 * 3_600 {
                bruteForced += 1
                if let earlier = firstMatchBruteForce(expression, after: start, before: next, calendar) {
                    Issue.record("\(context): \(iso(earlier)) matches before \(iso(next))")
                }
            }
        }
        // The generator is biased toward dense schedules so the brute-force check runs often.
        #expect(bruteForced > 100)
    }

    @Test func randomSchedulesNearDaylightSavingTransitionsFireOnceByTheDocumentedRules() throws {
        var generator = SplitMix64(seed: 42)
        // New York shifts by an hour; Lord Howe Island by half an hour.
        let zones = try ["America/New_York", "Europe/London", "Australia/Lord_Howe"].map { identifier in
            try #require(TimeZone(identifier: identifier))
        }
        let window: TimeInterval = 6 * 3_600
        var compared = 0
        for _ in 0..<150 {
            let text = randomExpressionText(using: &generator)
            let zone = zones[Int.random(in: 0..<zones.count, using: &generator)]
            let expression = try ScheduleExpression(parsing: text, timeZone: zone)
            let transition = try #require(zone.nextDaylightSavingTimeTransition(after: randomStart(using: &generator)))
            var cursor = transition - Double(Int.random(in: 0..<4 * 3_600, using: &generator))
            let context = "'\(text)' in \(zone.identifier)"
            for _ in 0..<5 {
                let next = expression.nextFireDate(after: cursor)
                guard let expected = firstFireBruteForce(expression, after: cursor, within: window) else {
                    #expect(next.map { $0 > cursor + window } ?? true,
                            "\(context): fired at \(next.map(iso) ?? "nil") after \(iso(cursor)); rules say nothing")
                    break
                }
                compared += 1
                #expect(next == expected,
                        "\(context) after \(iso(cursor)): \(next.map(iso) ?? "nil") != \(iso(expected))")
                cursor = expected
            }
        }
        #expect(compared > 200)
    }
}

// MARK: - Helpers

private func parseErrorMessage(_ text: String) -> String? {
    do {
        _ = try ScheduleExpression(parsing: text)
        return nil
    } catch {
        return error.description
    }
}

/// Whether the wall-clock reading of `date` satisfies every field, restating the Vixie day rule
/// independently of the implementation and reading the clock through Foundation's Calendar.
private func matches(_ expression: ScheduleExpression, _ date: Date, _ calendar: Calendar) -> Bool {
    let parts = calendar.dateComponents([.month, .day, .hour, .minute, .second, .weekday], from: date)
    return expression.seconds.contains(parts.second!) && minuteMatches(expression, parts)
}

/// Every field but the second.
private func minuteMatches(_ expression: ScheduleExpression, _ parts: DateComponents) -> Bool {
    let dayOfMonth = expression.daysOfMonth.contains(parts.day!)
    let dayOfWeek = expression.daysOfWeek.contains(parts.weekday! - 1)
    let bothRestricted = !expression.dayOfMonthIsStar && !expression.dayOfWeekIsStar
    let day = bothRestricted ? (dayOfMonth || dayOfWeek) : (dayOfMonth && dayOfWeek)
    return day && expression.months.contains(parts.month!) && expression.hours.contains(parts.hour!)
        && expression.minutes.contains(parts.minute!)
}

/// The first matching whole second in `(start, end)`, checking every second; the Calendar is
/// asked once per minute, which is exact for zones whose offsets are whole minutes.
private func firstMatchBruteForce(
    _ expression: ScheduleExpression, after start: Date, before end: Date, _ calendar: Calendar
) -> Date? {
    var second = start.timeIntervalSince1970.rounded(.down) + 1
    while second < end.timeIntervalSince1970 {
        let date = Date(timeIntervalSince1970: second)
        let parts = calendar.dateComponents([.month, .day, .hour, .minute, .second, .weekday], from: date)
        let secondsLeftInMinute = 60 - parts.second!
        if minuteMatches(expression, parts) {
            for offset in 0..<secondsLeftInMinute where second + Double(offset) < end.timeIntervalSince1970 {
                if expression.seconds.contains(parts.second! + offset) {
                    return date + Double(offset)
                }
            }
        }
        second += Double(secondsLeftInMinute)
    }
    return nil
}

/// The first fire time in `(start, start + window]` by the documented rules, checking every
/// second: a wall-clock time fires at its first occurrence only, and a gap in which some wall
/// time matches fires at the instant the gap ends. Wall times are read through a UTC Calendar
/// from the zone's offsets, so the check shares no code with the implementation. Offsets and
/// transitions must fall on whole minutes, as they do in every zone since 1972.
private func firstFireBruteForce(
    _ expression: ScheduleExpression, after start: Date, within window: TimeInterval
) -> Date? {
    var utc = Calendar(identifier: .gregorian)
    utc.timeZone = TimeZone(identifier: "UTC")!
    let zone = expression.timeZone
    func offset(_ instant: Int) -> Int {
        zone.secondsFromGMT(for: Date(timeIntervalSince1970: TimeInterval(instant)))
    }
    func wallMinuteMatches(_ wall: Int) -> Bool {
        let parts = utc.dateComponents([.month, .day, .hour, .minute, .weekday],
                                       from: Date(timeIntervalSince1970: TimeInterval(wall)))
        return minuteMatches(expression, parts)
    }
    let first = Int(start.timeIntervalSince1970.rounded(.down)) + 1
    let last = first + Int(window) - 1
    var minute = first - ((first % 60) + 60) % 60
    while minute <= last {
        let current = offset(minute)
        let previous = offset(minute - 1)
        let wall = minute + current
        if previous < current, minute >= first {
            // `minute` ends a gap: the wall times from `wall - (current - previous)` never happened.
            let skipped = stride(from: wall - (current - previous), to: wall, by: 60)
            if skipped.contains(where: wallMinuteMatches) {
                return Date(timeIntervalSince1970: TimeInterval(minute))
            }
        }
        let dayBefore = offset(minute - 86_400)
        let overlap = dayBefore - current
        let isRepeat = overlap > 0 && offset(minute - overlap) == dayBefore
        if !isRepeat, wallMinuteMatches(wall) {
            for second in 0..<60
            where (first...last).contains(minute + second) && expression.seconds.contains(second) {
                return Date(timeIntervalSince1970: TimeInterval(minute + second))
            }
        }
        minute += 60
    }
    return nil
}

/// Whether no day can ever match: only day-of-month restricts days and none of its days exists
/// in any allowed month (February counted with 29 days).
private func neverFires(_ expression: ScheduleExpression) -> Bool {
    let longestMonth = [0, 31, 29, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31]
    guard expression.dayOfWeekIsStar, !expression.dayOfMonthIsStar,
          let firstDay = expression.daysOfMonth.values.first else { return false }
    return expression.months.values.allSatisfy { firstDay > longestMonth[$0] }
}

/// A start between 2000 and 2040, sometimes with a fractional second.
private func randomStart(using generator: inout SplitMix64) -> Date {
    let seconds = Double(Int.random(in: 946_684_800..<2_208_988_800, using: &generator))
    let fraction = Bool.random(using: &generator) ? 0 : Double.random(in: 0..<1, using: &generator)
    return Date(timeIntervalSince1970: seconds + fraction)
}

/// A valid six- or five-field expression exercising every syntax form, biased toward `*` in the
/// day and month fields so most schedules fire within hours.
private func randomExpressionText(using generator: inout SplitMix64) -> String {
    let months = ["JAN", "FEB", "MAR", "APR", "MAY", "JUN", "JUL", "AUG", "SEP", "OCT", "NOV", "DEC"]
    let days = ["SUN", "MON", "TUE", "WED", "THU", "FRI", "SAT"]
    var fields = [
        randomField(0...59, starPercent: 30, using: &generator),
        randomField(0...59, starPercent: 40, using: &generator),
        randomField(0...23, starPercent: 50, using: &generator),
        randomField(1...31, starPercent: 75, question: true, using: &generator),
        randomField(1...12, starPercent: 75, names: months, using: &generator),
        randomField(0...7, starPercent: 75, names: days, question: true, using: &generator),
    ]
    if Int.random(in: 0..<10, using: &generator) == 0 {
        fields.removeFirst()
    }
    return fields.joined(separator: " ")
}

private func randomField(
    _ range: ClosedRange<Int>, starPercent: Int, names: [String] = [], question: Bool = false,
    using generator: inout SplitMix64
) -> String {
    func value(_ number: Int, _ generator: inout SplitMix64) -> String {
        let nameIndex = number - range.lowerBound
        guard nameIndex < names.count, Bool.random(using: &generator) else { return "\(number)" }
        return Bool.random(using: &generator) ? names[nameIndex] : names[nameIndex].lowercased()
    }
    func element(_ generator: inout SplitMix64) -> String {
        let low = Int.random(in: range, using: &generator)
        let high = Int.random(in: low...range.upperBound, using: &generator)
        let step = Int.random(in: 1...max(1, range.count / 3), using: &generator)
        switch Int.random(in: 0..<5, using: &generator) {
        case 0: return value(low, &generator)
        case 1: return "\(value(low, &generator))-\(value(high, &generator))"
        case 2: return "*/\(step)"
        case 3: return "\(value(low, &generator))-\(value(high, &generator))/\(step)"
        default: return "\(value(low, &generator))/\(step)"
        }
    }
    if Int.random(in: 0..<100, using: &generator) < starPercent {
        return question && Bool.random(using: &generator) ? "?" : "*"
    }
    let count = Int.random(in: 1...3, using: &generator)
    return (0..<count).map { _ in element(&generator) }.joined(separator: ",")
}
