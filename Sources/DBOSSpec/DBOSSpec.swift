import DBOS

/// The spec language's version, as written in `SPEC-FORMAT.md`.
public enum SpecLanguage {
    /// The version of the YAML workflow language this module implements.
    public static let version = 1
}
