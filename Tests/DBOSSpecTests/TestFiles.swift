import Foundation

/// Paths of the files the tests read, found from this source file's location.
enum TestFiles {
    /// The repository's root directory.
    static let repositoryRoot: String = {
        var url = URL(fileURLWithPath: #filePath)
        for _ in 0..<3 { url.deleteLastPathComponent() }
        return url.path
    }()

    /// `Specs/`, the reference specs.
    static var specsDirectory: String { repositoryRoot + "/Specs" }

    /// `Tests/DBOSSpecTests/Invalid/`, the invalid-spec corpus.
    static var invalidDirectory: String { repositoryRoot + "/Tests/DBOSSpecTests/Invalid" }

    /// The `.yaml` files of a directory, sorted.
    static func yamlFiles(in directory: String) -> [String] {
        let names = (try? FileManager.default.contentsOfDirectory(atPath: directory)) ?? []
        return names.filter { $0.hasSuffix(".yaml") }.sorted().map { "\(directory)/\($0)" }
    }
}
