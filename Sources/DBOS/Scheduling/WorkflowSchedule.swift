import Foundation
import Synchronization

/// A workflow started on a cron schedule. Each tick enqueues one run whose ID is derived from
/// the schedule's name and the tick's time, so however many workers fire the same tick, it runs
/// once. The run's input is `{"scheduled_time": "<RFC 3339>"}` (decode it as `ScheduledWorkflowInput`).
public struct WorkflowSchedule: Sendable {
    /// The schedule's name, part of each tick's workflow ID (default: the workflow's name).
    public let name: String
    /// When it fires.
    public let expression: ScheduleExpression
    /// The workflow it starts.
    public let workflowName: String
    /// The queue its runs go on (default: the engine's internal queue).
    public let queueName: String?
    /// The durable start-to-completion limit of each tick's run (its clock starts when it is dequeued).
    public let timeout: Duration?
    /// The data stored with each tick's run (`WorkflowOptions.attributes`).
    public let attributes: JSONValue?

    /// A schedule for the workflow registered as `workflowName`.
    public init(
        name: String? = nil, expression: ScheduleExpression, workflowName: String, queueName: String? = nil,
        timeout: Duration? = nil, attributes: JSONValue? = nil
    ) {
        self.timeout = timeout
        self.attributes = attributes
        self.name = name ?? workflowName
        self.expression = expression
        self.workflowName = workflowName
        self.queueName = queueName
    }

    /// The workflow ID of the run for the tick at `time`.
    public func workflowID(forTick time: Date) -> String {
        "sched-\(name)-\(Self.timestamp(time))"
    }

    static func timestamp(_ time: Date) -> String {
        time.formatted(.iso8601)
    }
}

/// The input of a scheduled run.
public struct ScheduledWorkflowInput: Codable, Sendable, Equatable {
    /// The tick this run is for (not when it actually started).
    public var scheduledTime: Date

    /// An input for the tick at `scheduledTime`.
    public init(scheduledTime: Date) {
        self.scheduledTime = scheduledTime
    }

    enum CodingKeys: String, CodingKey {
        case scheduledTime = "scheduled_time"
    }

    public init(from decoder: any Decoder) throws {
        let container = try decoder.container(keyedBy: CodingKeys.self)
        let text = try container.decode(String.self, forKey: .scheduledTime)
        guard let date = try? Date(text, strategy: .iso8601) else {
            throw DecodingError.dataCorruptedError(
                forKey: .scheduledTime, in: container, debugDescription: "'\(text)' is not an RFC 3339 time")
        }
        scheduledTime = date
    }

    public func encode(to encoder: any Encoder) throws {
        var container = encoder.container(keyedBy: CodingKeys.self)
        try container.encode(WorkflowSchedule.timestamp(scheduledTime), forKey: .scheduledTime)
    }
}

extension DBOSRuntime {
    /// Registers a cron schedule; must happen before `launch()`. Ticks missed while no worker
    /// ran are not replayed (see `backfillSchedule(named:from:through:)`).
    public func register(schedule: WorkflowSchedule) throws {
        try state.withLock { state in
            guard state.phase == .registering else { throw WorkflowError.registrationAfterLaunch(schedule.name) }
            guard state.workflows[schedule.workflowName] != nil else {
                throw WorkflowError.unregisteredWorkflow(schedule.workflowName)
            }
            guard !state.schedules.contains(where: { $0.name == schedule.name }) else {
                throw WorkflowError.invalidOptions(["a schedule named '\(schedule.name)' is already registered"])
            }
            state.schedules.append(schedule)
        }
    }

    /// Enqueues the runs of every tick of a registered schedule between two instants (both
    /// included) that has not run yet; returns their workflow IDs.
    @discardableResult
    public func backfillSchedule(named name: String, from start: Date, through end: Date) async throws -> [String] {
        guard let schedule = state.withLock({ $0.schedules.first { $0.name == name } }) else {
            throw WorkflowError.invalidOptions(["no schedule named '\(name)' is registered"])
        }
        var ids: [String] = []
        for tick in schedule.expression.fireDates(from: start, through: end, limit: 10_000) {
            ids.append(try await enqueueTick(schedule, at: tick))
        }
        return ids
    }

    /// Enqueues a run of a registered schedule now, outside its ticks (DBOS's `TriggerSchedule`): its
    /// input's `scheduledTime` is now (to the second, as a tick's), and its ID `sched-NAME-trigger-TIME`
    /// with TIME in RFC 3339 to the nanosecond, as DBOS's, so each trigger is a run of its own.
    @discardableResult
    public func triggerSchedule<Output>(named name: String, as type: Output.Type = JSONValue.self) async throws
        -> WorkflowHandle<Output>
    {
        guard let schedule = state.withLock({ $0.schedules.first { $0.name == name } }) else {
            throw WorkflowError.invalidOptions(["no schedule named '\(name)' is registered"])
        }
        let now = Date()
        let id = try await enqueueTick(schedule, at: now, workflowID: "sched-\(name)-trigger-\(Self.nanosecondTimestamp(now))")
        return WorkflowHandle(workflowID: id, runtime: self)
    }

    /// `2026-12-07T13:14:15.123456789Z`: RFC 3339 with nine fractional digits (as precise as a
    /// `Date` near now is: about a quarter of a microsecond).
    static func nanosecondTimestamp(_ time: Date) -> String {
        let seconds = time.timeIntervalSince1970.rounded(.down)
        let nanoseconds = min(999_999_999, Int(((time.timeIntervalSince1970 - seconds) * 1e9).rounded()))
        let whole = Date(timeIntervalSince1970: seconds).formatted(.iso8601).dropLast()  // without its "Z"
        return whole + "." + String(format: "%09d", nanoseconds) + "Z"
    }

    /// The loop of one schedule: sleeps until the next tick and enqueues its run.
    func runSchedule(_ schedule: WorkflowSchedule) async {
        var after = Date()
        while !Task.isCancelled {
            guard let tick = schedule.expression.nextFireDate(after: after) else { return }
            let wait = tick.timeIntervalSinceNow
            if wait > 0 {
                do {
                    try await Task.sleep(for: .milliseconds(Int64((wait * 1000).rounded(.up))))
                } catch {
                    return
                }
            }
            // The database may be briefly unreachable: retry the tick rather than lose it.
            var delay = Duration.milliseconds(100)
            while !Task.isCancelled {
                do {
                    _ = try await enqueueTick(schedule, at: tick)
                    break
                } catch {
                    try? await Task.sleep(for: delay)
                    delay = min(delay * 2, .seconds(5))
                }
            }
            after = tick
        }
    }

    private func enqueueTick(_ schedule: WorkflowSchedule, at tick: Date, workflowID: String? = nil) async throws -> String {
        let registered = try registeredWorkflow(named: schedule.workflowName)
        let input = try PortableJSON.encodeInput(ScheduledWorkflowInput(scheduledTime: tick))
        return try await start(
            registered, inputText: input,
            options: WorkflowOptions(
                workflowID: workflowID ?? schedule.workflowID(forTick: tick),
                timeout: schedule.timeout, queueName: schedule.queueName ?? WorkflowQueue.internalQueueName,
                attributes: schedule.attributes),
            parent: nil)
    }
}
