import Foundation

/// `value` as the commands print JSON for scripts: indented, keys sorted, dates in ISO 8601.
func prettyJSON(_ value: some Encodable) throws -> String {
    let encoder = JSONEncoder()
    encoder.outputFormatting = [.prettyPrinted, .sortedKeys]
    encoder.dateEncodingStrategy = .iso8601
    return String(decoding: try encoder.encode(value), as: UTF8.self)
}

/// `value` as a table column `width` characters wide (at least one space after it).
func column(_ value: some CustomStringConvertible, _ width: Int) -> String {
    let text = value.description
    return text.count >= width ? text + " " : text + String(repeating: " ", count: width - text.count)
}
