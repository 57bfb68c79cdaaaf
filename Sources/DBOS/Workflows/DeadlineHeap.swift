/// A binary min-heap of deadlines, for the timers that serve many waits with one dispatch timer
/// (`SleepTimer`, `WakeupRegistry`). Entries of waits that ended early stay until popped or until
/// the owner drops them with `keep(where:)`.
struct DeadlineHeap {
    struct Entry {
        /// In the owner's unit and clock (epoch milliseconds, or uptime nanoseconds).
        var deadline: Int64
        /// The wait's identity in the owner's table; also orders equal deadlines by arrival.
        var id: UInt64

        func isBefore(_ other: Entry) -> Bool { (deadline, id) < (other.deadline, other.id) }
    }

    private var entries: [Entry] = []

    var first: Entry? { entries.first }
    var count: Int { entries.count }

    mutating func push(_ entry: Entry) {
        entries.append(entry)
        var child = entries.count - 1
        while child > 0 {
            let parent = (child - 1) / 2
            guard entries[child].isBefore(entries[parent]) else { break }
            entries.swapAt(child, parent)
            child = parent
        }
    }

    mutating func popFirst() {
        entries.swapAt(0, entries.count - 1)
        entries.removeLast()
        if !entries.isEmpty { siftDown(from: 0) }
    }

    /// Keeps only the entries `isLive` accepts and rebuilds the heap.
    mutating func keep(where isLive: (Entry) -> Bool) {
        entries = entries.filter(isLive)
        for index in stride(from: entries.count / 2 - 1, through: 0, by: -1) { siftDown(from: index) }
    }

    private mutating func siftDown(from start: Int) {
        var parent = start
        while true {
            let left = 2 * parent + 1
            guard left < entries.count else { return }
            var smallest = left
            if left + 1 < entries.count, entries[left + 1].isBefore(entries[left]) { smallest = left + 1 }
            guard entries[smallest].isBefore(entries[parent]) else { return }
            entries.swapAt(smallest, parent)
            parent = smallest
        }
    }
}
