import Foundation
import PostboxService

/// Where the card processor is and how long to wait for it.
///
/// | key | environment variable | type | default |
/// | --- | --- | --- | --- |
/// | `paymentGateway.url` | `PAYMENT_GATEWAY_URL` | `http://` URL of the card processor | required |
/// | `paymentGateway.timeoutMs` | `PAYMENT_GATEWAY_TIMEOUT_MS` | milliseconds per call | `2000` |
/// | `paymentGateway.tries` | `PAYMENT_GATEWAY_TRIES` | calls per delivery before handing the event back to the bus | `2` |
struct GatewaySettings: Sendable {
    var url: URL
    var timeout: Duration
    var tries: Int

    init(reader: SettingsReader) throws {
        url = try reader.requiredHTTPURL("paymentGateway.url")
        timeout = .milliseconds(
            try reader.int("paymentGateway.timeoutMs", default: 2000, in: 10...120_000, meaning: "milliseconds")
        )
        tries = try reader.int("paymentGateway.tries", default: 2, in: 1...10, meaning: "a number of calls")
    }

    init(url: URL, timeout: Duration = .seconds(2), tries: Int = 2) {
        self.url = url
        self.timeout = timeout
        self.tries = tries
    }
}
