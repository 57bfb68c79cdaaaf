import ArgumentParser
import DBOSSpec
import Foundation

/// How the commands that run specs find and load them.
enum SpecFiles {
    /// The loader every command uses: it knows the handlers the program registered.
    static var loader: SpecLoader { SpecInterpreter.loader(handlers: DBOSRunCommand.handlers) }

    /// Loads and validates one spec file; on problems prints each as `FILE:LINE:COL: error: ...` and exits 2.
    static func load(_ path: String) throws -> WorkflowSpec {
        do {
            return try loader.load(file: path)
        } catch {
            for problem in error.errors { printError(problem.description) }
            throw ExitCode(CommandFailure.invalidInputExitCode)
        }
    }

    /// Loads and validates several files together (a worker's); on problems prints them all and exits 2.
    static func loadTogether(_ paths: [String]) throws -> [WorkflowSpec] {
        do {
            return try loader.loadFiles(paths)
        } catch {
            for problem in error.errors { printError(problem.description) }
            throw ExitCode(CommandFailure.invalidInputExitCode)
        }
    }

    /// The valid specs next to `paths` (the other `.yaml`/`.yml` files of their directories) whose names are not
    /// in `excludedNames`: the specs `workflow:` and `map` steps may name. Invalid neighbours are left out.
    static func neighbours(of paths: [String], excludingNames excludedNames: Set<String>) -> [WorkflowSpec] {
        neighbourhood(of: paths, excludingNames: excludedNames).specs
    }

    /// The files next to `paths` that are not valid specs (so were left out) but whose `queues:`
    /// declares `queue`: where a user looks when the queue is reported unknown.
    static func invalidNeighbours(of paths: [String], declaringQueue queue: String) -> [String] {
        neighbourhood(of: paths, excludingNames: []).invalidFiles.filter { file in
            guard let document = try? YAMLLoader().load(file: file) else { return false }
            return document.root["queues"]?.entries?.contains { $0.key.scalarText == queue } ?? false
        }
    }

    /// The specs next to `paths`, as `neighbours(of:excludingNames:)`, and the files next to them that
    /// are not valid specs.
    static func neighbourhood(
        of paths: [String], excludingNames excludedNames: Set<String>
    ) -> (specs: [WorkflowSpec], invalidFiles: [String]) {
        let given = Set(paths.map(canonical))
        var seenFiles: Set<String> = []
        var names = excludedNames
        var specs: [WorkflowSpec] = []
        var invalidFiles: [String] = []
        for path in paths {
            for file in yamlFiles(in: (path as NSString).deletingLastPathComponent) {
                let key = canonical(file)
                guard !given.contains(key), seenFiles.insert(key).inserted else { continue }
                guard let spec = try? loader.load(file: file) else {
                    invalidFiles.append(file)
                    continue
                }
                guard names.insert(spec.name).inserted else { continue }
                specs.append(spec)
            }
        }
        return (specs, invalidFiles)
    }

    /// The spec files the arguments name: a directory stands for its `.yaml` and `.yml` files.
    static func expand(_ arguments: [String]) throws(CommandFailure) -> [String] {
        var files: [String] = []
        for argument in arguments {
            var isDirectory: ObjCBool = false
            guard FileManager.default.fileExists(atPath: argument, isDirectory: &isDirectory) else {
                throw CommandFailure(exitCode: CommandFailure.invalidInputExitCode, message: "no such file or directory: \(argument)")
            }
            if isDirectory.boolValue {
                let found = yamlFiles(in: argument)
                guard !found.isEmpty else {
                    throw CommandFailure(
                        exitCode: CommandFailure.invalidInputExitCode, message: "no .yaml or .yml spec files in directory \(argument)")
                }
                files += found
            } else {
                files.append(argument)
            }
        }
        return files
    }

    /// The `.yaml` and `.yml` files of a directory (`""` is the working directory), sorted.
    static func yamlFiles(in directory: String) -> [String] {
        let listed = directory.isEmpty ? "." : directory
        guard let names = try? FileManager.default.contentsOfDirectory(atPath: listed) else { return [] }
        return names.filter { $0.hasSuffix(".yaml") || $0.hasSuffix(".yml") }.sorted().map {
            directory.isEmpty ? $0 : (directory as NSString).appendingPathComponent($0)
        }
    }

    private static func canonical(_ path: String) -> String {
        URL(fileURLWithPath: path).standardizedFileURL.resolvingSymlinksInPath().path
    }
}
