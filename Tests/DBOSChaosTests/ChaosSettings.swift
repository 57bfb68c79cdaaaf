import Foundation

/// What a chaos run does, from the environment: the CI form by default, the long form with e.g.
/// `DBOS_CHAOS_KILLS=1000` (see Docs/Chaos.md).
enum ChaosSettings {
    /// How many times the worker-kill tests SIGKILL a worker (`DBOS_CHAOS_KILLS`, default 50).
    static let kills = integer("DBOS_CHAOS_KILLS") ?? 50
    /// How many fast and how many immediate PostgreSQL shutdowns the restart test makes (`DBOS_CHAOS_RESTARTS`, default 3 each).
    static let restartsPerMode = integer("DBOS_CHAOS_RESTARTS") ?? 3
    /// The seed of every random choice (`DBOS_CHAOS_SEED`; default: a new one, printed, so a failure can be replayed).
    static let seed: UInt64 = integer("DBOS_CHAOS_SEED").map(UInt64.init) ?? UInt64.random(in: 1...999_999)
    /// How long the runs get to finish once the chaos stops, however long the chaos lasted.
    static let drainTimeout: Duration = .seconds(240)
    /// The test's time limit: the chaos phase (about 1.5 s a kill or restart, with margin) plus the drain.
    static let timeLimitMinutes = 8 + (max(kills, restartsPerMode * 2) * 3) / 60

    private static func integer(_ name: String) -> Int? {
        ProcessInfo.processInfo.environment[name].flatMap { Int($0) }
    }
}
