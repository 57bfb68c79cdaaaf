import CYAML
import Foundation

/// Loads YAML text into a `YAMLNode` tree with libyaml's event API, keeping every node's position.
///
/// The loader guards against hostile input: it caps the file size, the nesting depth and the number of nodes
/// produced through aliases, and rejects NUL bytes and invalid UTF-8 with the position of the first bad byte.
public struct YAMLLoader: Sendable {
    /// The largest file accepted, in bytes.
    public var maximumSize = 10 * 1024 * 1024
    /// The deepest nesting of sequences and mappings accepted.
    public var maximumDepth = 256
    /// The most nodes that aliases may produce in one document (the "billion laughs" guard).
    public var maximumAliasNodes = 100_000

    /// Creates a loader with the default limits.
    public init() {}

    /// Reads and loads the file at `path`; errors carry `path` as their file.
    ///
    /// Fatal problems (syntax, size, encoding, limits) throw; recoverable ones (duplicate keys, where the first
    /// value wins) are returned with the tree so validation can report everything at once.
    public func load(file path: String) throws(SpecError) -> YAMLDocument {
        let start = SourceLocation(file: path, line: 1, column: 1)
        var isDirectory: ObjCBool = false
        guard FileManager.default.fileExists(atPath: path, isDirectory: &isDirectory) else {
            throw SpecError("no such file", at: start)
        }
        if isDirectory.boolValue { throw SpecError("is a directory, not a spec file", at: start) }
        if let attributes = try? FileManager.default.attributesOfItem(atPath: path),
            let size = attributes[.size] as? Int, size > maximumSize
        {
            throw sizeError(size, at: start)
        }
        guard let data = FileManager.default.contents(atPath: path) else {
            throw SpecError("cannot read file", at: start)
        }
        return try load(bytes: [UInt8](data), file: path)
    }

    /// Loads YAML text; `file` is the name errors and locations carry.
    public func load(text: String, file: String) throws(SpecError) -> YAMLDocument {
        try load(bytes: Array(text.utf8), file: file)
    }

    /// Loads raw bytes, which must be UTF-8 without NUL bytes.
    public func load(bytes: [UInt8], file: String) throws(SpecError) -> YAMLDocument {
        let start = SourceLocation(file: file, line: 1, column: 1)
        if bytes.count > maximumSize { throw sizeError(bytes.count, at: start) }
        try Self.checkText(bytes, file: file)
        var builder = TreeBuilder(file: file, limits: self)
        var parser = yaml_parser_t()
        guard yaml_parser_initialize(&parser) == 1 else { throw SpecError("cannot start the YAML parser", at: start) }
        defer { yaml_parser_delete(&parser) }
        let result: Result<YAMLDocument, SpecError> = bytes.withUnsafeBufferPointer { buffer in
            yaml_parser_set_input_string(&parser, buffer.baseAddress, buffer.count)
            while true {
                var event = yaml_event_t()
                guard yaml_parser_parse(&parser, &event) == 1 else {
                    return .failure(Self.parserError(&parser, bytes: bytes, file: file))
                }
                defer { yaml_event_delete(&event) }
                do throws(SpecError) {
                    if let root = try builder.handle(&event) {
                        return .success(YAMLDocument(root: root, problems: builder.problems))
                    }
                } catch {
                    return .failure(error)
                }
            }
        }
        return try result.get()
    }

    private func sizeError(_ size: Int, at location: SourceLocation) -> SpecError {
        let megabytes = Double(size) / 1_048_576
        let limit = maximumSize / 1_048_576
        return SpecError(
            "file is \(String(format: "%.1f", megabytes)) MB (\(size) bytes); a spec may be at most \(limit) MB",
            at: location)
    }

    /// Rejects NUL bytes and invalid UTF-8, naming the line and column of the first bad byte.
    static func checkText(_ bytes: [UInt8], file: String) throws(SpecError) {
        var line = 1
        var column = 1
        var index = 0
        while index < bytes.count {
            let byte = bytes[index]
            let location = SourceLocation(file: file, line: line, column: column)
            if byte == 0 {
                throw SpecError("file contains a NUL byte; a spec must be UTF-8 text", at: location)
            }
            if byte < 0x80 {
                if byte == UInt8(ascii: "\n") {
                    line += 1
                    column = 1
                } else {
                    column += 1
                }
                index += 1
                continue
            }
            var length = 0
            var secondRange: ClosedRange<UInt8> = 0x80...0xBF
            switch byte {
            case 0xC2...0xDF: length = 2
            case 0xE0: length = 3; secondRange = 0xA0...0xBF
            case 0xE1...0xEC, 0xEE...0xEF: length = 3
            case 0xED: length = 3; secondRange = 0x80...0x9F
            case 0xF0: length = 4; secondRange = 0x90...0xBF
            case 0xF1...0xF3: length = 4
            case 0xF4: length = 4; secondRange = 0x80...0x8F
            default: length = 0
            }
            var valid = length > 0 && index + length <= bytes.count
            if valid {
                valid = secondRange.contains(bytes[index + 1])
                    && bytes[(index + 2)..<(index + length)].allSatisfy { (0x80...0xBF).contains($0) }
            }
            guard valid else {
                let hex = String(byte, radix: 16, uppercase: true)
                throw SpecError(
                    "invalid UTF-8 byte 0x\(hex.count == 1 ? "0" + hex : hex); a spec must be UTF-8 text", at: location)
            }
            index += length
            column += 1
        }
    }

    /// The location of byte `offset`, counting columns in characters as libyaml does.
    static func location(ofByte offset: Int, in bytes: [UInt8], file: String) -> SourceLocation {
        var line = 1
        var column = 1
        for byte in bytes.prefix(offset) {
            if byte == UInt8(ascii: "\n") {
                line += 1
                column = 1
            } else if byte & 0xC0 != 0x80 {
                column += 1
            }
        }
        return SourceLocation(file: file, line: line, column: column)
    }

    private static func parserError(_ parser: inout yaml_parser_t, bytes: [UInt8], file: String) -> SpecError {
        let problem = parser.problem.map { String(cString: $0) } ?? "invalid YAML"
        if parser.error == YAML_READER_ERROR {
            return SpecError(
                "\(problem); a spec must be UTF-8 text",
                at: location(ofByte: parser.problem_offset, in: bytes, file: file))
        }
        let mark = parser.problem_mark
        let location = SourceLocation(file: file, line: mark.line + 1, column: mark.column + 1)
        if character(at: location, in: bytes) == "\t" {
            return SpecError("YAML syntax error: a tab cannot indent YAML; use spaces", at: location)
        }
        var message = "YAML syntax error: \(problem)"
        if let context = parser.context {
            message += " (\(String(cString: context)) that starts at line \(parser.context_mark.line + 1))"
        }
        return SpecError(message, at: location)
    }

    /// The character at a 1-based line and column of the text.
    private static func character(at location: SourceLocation, in bytes: [UInt8]) -> Character? {
        let lines = bytes.split(separator: UInt8(ascii: "\n"), omittingEmptySubsequences: false)
        guard location.line - 1 < lines.count else { return nil }
        let line = String(decoding: lines[location.line - 1], as: UTF8.self)
        guard location.column - 1 < line.count else { return nil }
        return line[line.index(line.startIndex, offsetBy: location.column - 1)]
    }
}

/// A loaded YAML document: its root node and the recoverable problems found while loading it.
public struct YAMLDocument: Sendable {
    /// The root node.
    public var root: YAMLNode
    /// Recoverable problems such as duplicate keys, to report with the validation errors.
    public var problems: [SpecError]
}

/// Builds the node tree from parser events with an explicit stack, so deep input cannot overflow the call stack.
private struct TreeBuilder {
    /// An open collection. A class, so appending mutates in place instead of copying the array each time.
    final class Frame {
        let isMapping: Bool
        let location: SourceLocation
        let anchor: String?
        var items: [YAMLNode] = []
        var entries: [YAMLNode.Entry] = []
        var pendingKey: YAMLNode?
        var keys: [String: SourceLocation] = [:]

        init(isMapping: Bool, location: SourceLocation, anchor: String?) {
            self.isMapping = isMapping
            self.location = location
            self.anchor = anchor
        }
    }

    let file: String
    let limits: YAMLLoader
    var stack: [Frame] = []
    var anchors: [String: YAMLNode] = [:]
    var aliasNodes = 0
    var root: YAMLNode?
    var documents = 0
    var problems: [SpecError] = []

    init(file: String, limits: YAMLLoader) {
        self.file = file
        self.limits = limits
    }

    func location(_ mark: yaml_mark_t) -> SourceLocation {
        SourceLocation(file: file, line: mark.line + 1, column: mark.column + 1)
    }

    static func string(_ pointer: UnsafeMutablePointer<yaml_char_t>?, length: Int? = nil) -> String? {
        guard let pointer else { return nil }
        if let length {
            return String(decoding: UnsafeBufferPointer(start: pointer, count: length), as: UTF8.self)
        }
        return String(cString: UnsafeRawPointer(pointer).assumingMemoryBound(to: CChar.self))
    }

    /// Handles one event; returns the root node once the stream ends.
    mutating func handle(_ event: inout yaml_event_t) throws(SpecError) -> YAMLNode? {
        let start = location(event.start_mark)
        switch event.type {
        case YAML_DOCUMENT_START_EVENT:
            documents += 1
            if documents > 1 {
                throw SpecError("a spec file holds one YAML document; found a second one", at: start)
            }
        case YAML_STREAM_END_EVENT:
            guard let root else {
                throw SpecError("file is empty; a spec needs at least 'steps:'",
                    at: SourceLocation(file: file, line: 1, column: 1))
            }
            return root
        case YAML_SCALAR_EVENT:
            let scalar = event.data.scalar
            let text = Self.string(scalar.value, length: scalar.length) ?? ""
            let tag = Self.string(scalar.tag)
            let style: YAMLNode.ScalarStyle
            switch scalar.style {
            case YAML_LITERAL_SCALAR_STYLE, YAML_FOLDED_SCALAR_STYLE: style = .block
            case YAML_PLAIN_SCALAR_STYLE:
                style = tag == "tag:yaml.org,2002:str" || tag == "!" ? .quoted : .plain
            default: style = .quoted
            }
            let node = YAMLNode(kind: .scalar(text, style), location: start)
            try attach(node, anchor: Self.string(scalar.anchor))
        case YAML_ALIAS_EVENT:
            let name = Self.string(event.data.alias.anchor) ?? ""
            guard let node = anchors[name] else { throw SpecError("unknown alias '*\(name)'", at: start) }
            aliasNodes += node.nodeCount
            if aliasNodes > limits.maximumAliasNodes {
                throw SpecError(
                    "alias expansion too large: aliases produce more than \(limits.maximumAliasNodes) nodes",
                    at: start)
            }
            if stack.count + node.height > limits.maximumDepth {
                throw SpecError("nesting deeper than \(limits.maximumDepth) levels (through the alias '*\(name)')",
                    at: start)
            }
            var copy = node
            copy.location = start
            try attach(copy, anchor: nil)
        case YAML_SEQUENCE_START_EVENT:
            try push(Frame(isMapping: false, location: start, anchor: Self.string(event.data.sequence_start.anchor)))
        case YAML_MAPPING_START_EVENT:
            try push(Frame(isMapping: true, location: start, anchor: Self.string(event.data.mapping_start.anchor)))
        case YAML_SEQUENCE_END_EVENT, YAML_MAPPING_END_EVENT:
            guard let frame = stack.popLast() else { break }
            let kind: YAMLNode.Kind = frame.isMapping ? .mapping(frame.entries) : .sequence(frame.items)
            frame.items = []
            frame.entries = []
            try attach(YAMLNode(kind: kind, location: frame.location), anchor: frame.anchor)
        default:
            break
        }
        return nil
    }

    mutating func push(_ frame: Frame) throws(SpecError) {
        if stack.count >= limits.maximumDepth {
            throw SpecError("nesting deeper than \(limits.maximumDepth) levels", at: frame.location)
        }
        stack.append(frame)
    }

    mutating func attach(_ node: YAMLNode, anchor: String?) throws(SpecError) {
        if let anchor { anchors[anchor] = node }
        guard let top = stack.last else {
            root = node
            return
        }
        if !top.isMapping {
            top.items.append(node)
        } else if let key = top.pendingKey {
            top.entries.append(YAMLNode.Entry(key: key, value: node))
            top.pendingKey = nil
        } else {
            guard let keyText = node.scalarText else {
                throw SpecError("a mapping key must be a plain value, not \(node.shapeDescription)", at: node.location)
            }
            if let first = top.keys[keyText] {
                problems.append(SpecError(
                    "duplicate key '\(keyText)' (first defined at line \(first.line), column \(first.column))",
                    at: node.location))
            } else {
                top.keys[keyText] = node.location
            }
            top.pendingKey = node
        }
    }
}
