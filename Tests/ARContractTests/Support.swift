import ARContract
import Foundation
import Testing

/// Paths in the repository, found from this file's location (Tests/ARContractTests/Support.swift).
enum Repository {
    // Symlinks resolved, so a development package that links this folder still finds the repository.
    static let root: URL = URL(fileURLWithPath: #filePath).resolvingSymlinksInPath()
        .deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent()
    static let schemas = root.appendingPathComponent("schemas")
    static let examples = schemas.appendingPathComponent("examples")

    /// One example message: its folder (valid/invalid), type folder, file name and bytes.
    struct Example: CustomTestStringConvertible, Sendable {
        let relativePath: String  // "valid/invoice.issued/basic.json"
        let expectedValid: Bool
        let messageType: String
        let name: String
        let bytes: [UInt8]

        /// The code in an invalid example's name: `wrong_minor_digits--jpy-fraction.json`.
        var expectedCode: String? {
            guard !expectedValid, let range = name.range(of: "--") else { return nil }
            return String(name[..<range.lowerBound])
        }

        var testDescription: String { relativePath }
    }

    /// Every example file, sorted. Non-throwing (test arguments cannot throw); an unreadable
    /// folder yields no examples, which `ExampleInventoryTests` turns into a failure.
    static func examples(valid: Bool? = nil) -> [Example] {
        var result: [Example] = []
        let paths = (FileManager.default.enumerator(atPath: examples.path)?.allObjects as? [String]) ?? []
        for path in paths.sorted() where path.hasSuffix(".json") {
            let parts = path.split(separator: "/").map(String.init)
            guard parts.count == 3, parts[0] == "valid" || parts[0] == "invalid" else { continue }
            let isValidFolder = parts[0] == "valid"
            if let valid, valid != isValidFolder { continue }
            let data = FileManager.default.contents(atPath: examples.appendingPathComponent(path).path) ?? Data()
            result.append(Example(relativePath: path, expectedValid: isValidFolder, messageType: parts[1],
                                  name: String(parts[2].dropLast(5)), bytes: [UInt8](data)))
        }
        return result
    }

    /// The schema documents as they are in schemas/ now (not the embedded copies).
    static func schemaDocuments() throws -> [String: String] {
        var documents: [String: String] = [:]
        for file in try FileManager.default.contentsOfDirectory(atPath: schemas.path) where file.hasSuffix(".json") {
            documents[file] = try String(contentsOf: schemas.appendingPathComponent(file), encoding: .utf8)
        }
        return documents
    }

    /// Runs a program, returning its exit status, standard output and standard error.
    static func run(_ executable: String, _ arguments: [String]) throws -> (status: Int32, output: String, error: String) {
        let process = Process()
        process.executableURL = URL(fileURLWithPath: executable)
        process.arguments = arguments
        process.currentDirectoryURL = root
        let output = Pipe()
        let error = Pipe()
        process.standardOutput = output
        process.standardError = error
        try process.run()
        // Read before waiting so a full pipe cannot block the child.
        let outputData = output.fileHandleForReading.readDataToEndOfFile()
        let errorData = error.fileHandleForReading.readDataToEndOfFile()
        process.waitUntilExit()
        return (process.terminationStatus, String(decoding: outputData, as: UTF8.self), String(decoding: errorData, as: UTF8.self))
    }
}

/// One decoder for all tests: compiling the schemas takes a few milliseconds.
let sharedDecoder: InboundDecoder = {
    do {
        return try InboundDecoder()
    } catch {
        preconditionFailure("embedded schemas do not compile: \(error)")
    }
}()
