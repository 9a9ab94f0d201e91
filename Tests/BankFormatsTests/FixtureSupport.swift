import ARDomain
import Foundation
import Testing

@testable import BankFormats

/// Bytes of a file under Fixtures/ (copied into the test bundle by SwiftPM).
func fixtureBytes(_ name: String) throws -> [UInt8] {
    guard let directory = Bundle.module.url(forResource: "Fixtures", withExtension: nil) else {
        throw FixtureMissing(name: "Fixtures")
    }
    return Array(try Data(contentsOf: directory.appendingPathComponent(name)))
}

/// Every file in a Fixtures/ subdirectory, sorted by name.
func fixtureFiles(in subdirectory: String) throws -> [(name: String, bytes: [UInt8])] {
    guard let directory = Bundle.module.url(forResource: "Fixtures", withExtension: nil) else {
        throw FixtureMissing(name: "Fixtures")
    }
    let folder = directory.appendingPathComponent(subdirectory)
    let names = try FileManager.default.contentsOfDirectory(atPath: folder.path).filter { !$0.hasPrefix(".") }.sorted()
    return try names.map { ($0, Array(try Data(contentsOf: folder.appendingPathComponent($0)))) }
}

struct FixtureMissing: Error { let name: String }

func money(_ text: String, _ code: String) -> Money {
    let currency = Currency(code: code)!
    do {
        return try Money.parse(text, currency: currency, allowNegative: true)
    } catch {
        preconditionFailure("bad test amount \(text): \(error)")
    }
}

func date(_ text: String) -> BankDate { BankDateParsing.iso(text)! }

/// Parses and returns the error, or nil when the file was accepted.
func parseError(_ bytes: [UInt8], format: BankFormat? = nil) -> BankFormatError? {
    do {
        _ = try BankFormats.parse(bytes, format: format)
        return nil
    } catch {
        return error
    }
}
