/// The version of dbos-swift, printed by `dbos-run --version`.
public enum DBOSVersion {
    /// The semantic version of this build.
    public static let current = "0.1.0"
}
