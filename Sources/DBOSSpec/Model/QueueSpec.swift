/// A queue declared by a spec's `queues:` list.
public struct QueueSpec: Sendable, Hashable {
    /// A global limit on how many runs may start per period.
    public struct RateLimit: Sendable, Hashable {
        /// The most starts per period.
        public var limit: Int
        /// The period.
        public var period: Duration
    }

    /// The queue's name.
    public var name: String
    /// The most runs from this queue running in one process.
    public var workerConcurrency: Int?
    /// The most runs from this queue running across all processes.
    public var concurrency: Int?
    /// A global rate limit on starts.
    public var rateLimit: RateLimit?
    /// Whether per-run priority is enabled (1 = highest).
    public var priority: Bool
    /// Where the queue is declared.
    public var location: SourceLocation

    /// Whether two declarations configure the queue the same way (locations aside).
    public func hasSameSettings(as other: QueueSpec) -> Bool {
        name == other.name && workerConcurrency == other.workerConcurrency && concurrency == other.concurrency
            && rateLimit == other.rateLimit && priority == other.priority
    }

    /// The settings as text for conflict messages, e.g. `concurrency 20, worker_concurrency 5`.
    var settingsDescription: String {
        var parts: [String] = []
        if let workerConcurrency { parts.append("worker_concurrency \(workerConcurrency)") }
        if let concurrency { parts.append("concurrency \(concurrency)") }
        if let rateLimit { parts.append("rate_limit \(rateLimit.limit) per \(SpecDuration.text(rateLimit.period))") }
        if priority { parts.append("priority") }
        return parts.isEmpty ? "no limits" : parts.joined(separator: ", ")
    }
}
