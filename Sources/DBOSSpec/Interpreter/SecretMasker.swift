import DBOS
import Foundation

/// Replaces the values of a spec's secrets with `***` in anything about to be checkpointed, logged or
/// reported, so a secret read from the environment never reaches the system database.
struct SecretMasker: Sendable {
    /// The secret values to hide, longest first (so a secret containing another is hidden whole).
    let values: [String]

    /// The text every secret value is replaced with.
    static let mask = "***"

    /// A masker for the secrets `names`, reading their current values from `lookup`.
    init(names: Set<String>, lookup: @Sendable (String) -> String?) {
        values = names.compactMap { lookup($0) }.filter { !$0.isEmpty }.sorted { $0.count > $1.count }
    }

    /// `text` with every secret value replaced.
    func mask(_ text: String) -> String {
        guard !values.isEmpty else { return text }
        var result = text
        for value in values where result.contains(value) {
            result = result.replacingOccurrences(of: value, with: Self.mask)
        }
        return result
    }

    /// `value` with every secret value replaced in its strings (and object keys).
    func mask(_ value: JSONValue) -> JSONValue {
        guard !values.isEmpty else { return value }
        switch value {
        case .string(let text): return .string(mask(text))
        case .array(let items): return .array(items.map { mask($0) })
        case .object(let members):
            return .object(Dictionary(members.map { (mask($0.key), mask($0.value)) }, uniquingKeysWith: { first, _ in first }))
        default: return value
        }
    }
}
