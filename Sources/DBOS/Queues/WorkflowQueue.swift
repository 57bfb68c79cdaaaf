/// A queue of workflow runs with limits that hold across processes: at most `workerConcurrency`
/// running in one process, at most `globalConcurrency` running anywhere, at most
/// `rateLimit.limit` starts per `rateLimit.period`.
///
/// Register a queue on the runtime before `launch()`; the runtime then dequeues from it.
public struct WorkflowQueue: Sendable, Hashable {
    /// A start-rate limit: at most `limit` runs start in any window of `period`.
    public struct RateLimit: Sendable, Hashable {
        /// Runs allowed to start per period.
        public var limit: Int
        /// The sliding window.
        public var period: Duration

        /// A limit of `limit` starts per `period`.
        public init(limit: Int, period: Duration) {
            self.limit = limit
            self.period = period
        }
    }

    /// The queue's name, unique in the system database.
    public let name: String
    /// At most this many of the queue's runs execute at once in one process.
    public var workerConcurrency: Int?
    /// At most this many of the queue's runs execute at once across all processes.
    public var globalConcurrency: Int?
    /// At most this many starts per period, across all processes.
    public var rateLimit: RateLimit?
    /// Whether runs may carry a priority (1 is the highest; runs without one come first).
    public var priorityEnabled: Bool
    /// Whether the limits apply per partition key instead of to the whole queue.
    public var partitioned: Bool
    /// How often a worker looks for runs enqueued by other processes.
    public var pollingInterval: Duration

    /// The queue runs are put on when they are resumed, forked or scheduled without a queue.
    public static let internalQueueName = "_dbos_internal_queue"

    /// A queue; every limit is optional.
    public init(
        name: String, workerConcurrency: Int? = nil, globalConcurrency: Int? = nil, rateLimit: RateLimit? = nil,
        priorityEnabled: Bool = false, partitioned: Bool = false, pollingInterval: Duration = .milliseconds(200)
    ) {
        self.name = name
        self.workerConcurrency = workerConcurrency
        self.globalConcurrency = globalConcurrency
        self.rateLimit = rateLimit
        self.priorityEnabled = priorityEnabled
        self.partitioned = partitioned
        self.pollingInterval = pollingInterval
    }

    /// The problems that make this configuration unusable, if any.
    var configurationProblems: [String] {
        var problems: [String] = []
        if name.isEmpty { problems.append("a queue needs a name") }
        if let worker = workerConcurrency, worker < 1 { problems.append("worker concurrency must be at least 1") }
        if let global = globalConcurrency, global < 1 { problems.append("global concurrency must be at least 1") }
        if let worker = workerConcurrency, let global = globalConcurrency, worker > global {
            problems.append("worker concurrency (\(worker)) cannot exceed global concurrency (\(global))")
        }
        if let rate = rateLimit {
            if rate.limit < 1 { problems.append("a rate limit must allow at least 1 start") }
            if rate.period <= .zero { problems.append("a rate limit period must be positive") }
        }
        if pollingInterval <= .zero { problems.append("the polling interval must be positive") }
        return problems
    }
}

/// What enqueueing does when a run with the same deduplication ID is still waiting or running.
public enum DeduplicationPolicy: Sendable, Hashable {
    /// Fail with `WorkflowError.queueDeduplicated`.
    case reject
    /// Return a handle to the run that holds the ID.
    case returnExisting
}
