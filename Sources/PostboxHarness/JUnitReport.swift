import Foundation

/// JUnit XML, the format CI systems read test results from.
public enum JUnitReport {
    /// One test case's outcome.
    public struct Case: Sendable {
        /// The name.
        public var name: String
        /// The JUnit class name.
        public var className: String
        /// How long it took, in seconds.
        public var seconds: Double
        /// nil when it passed.
        public var failure: String?

        /// Creates the value from its parts.
        public init(name: String, className: String, seconds: Double, failure: String?) {
            self.name = name
            self.className = className
            self.seconds = seconds
            self.failure = failure
        }
    }

    /// The XML document for `cases` in one suite named `suite`.
    public static func xml(suite: String, cases: [Case]) -> String {
        let failures = cases.filter { $0.failure != nil }.count
        let total = cases.reduce(0) { $0 + $1.seconds }
        var text = #"<?xml version="1.0" encoding="UTF-8"?>"# + "\n"
        text +=
            #"<testsuites><testsuite name="\#(escape(suite))" tests="\#(cases.count)" failures="\#(failures)" errors="0" time="\#(String(format: "%.3f", total))">"#
            + "\n"
        for item in cases {
            text +=
                #"  <testcase classname="\#(escape(item.className))" name="\#(escape(item.name))" time="\#(String(format: "%.3f", item.seconds))">"#
            if let failure = item.failure {
                text += "\n" + #"    <failure message="\#(escape(String(failure.prefix(200))))">\#(escape(failure))</failure>"# + "\n  "
            }
            text += "</testcase>\n"
        }
        return text + "</testsuite></testsuites>\n"
    }

    static func escape(_ text: String) -> String {
        var result = ""
        for character in text {
            switch character {
            case "&": result += "&amp;"
            case "<": result += "&lt;"
            case ">": result += "&gt;"
            case "\"": result += "&quot;"
            default:
                if let ascii = character.asciiValue, ascii < 32, ascii != 10, ascii != 9 { continue }
                result.append(character)
            }
        }
        return result
    }
}
