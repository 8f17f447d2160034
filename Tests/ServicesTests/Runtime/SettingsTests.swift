import Foundation
import Logging
import PostboxService
import PostgresNIO
import Testing

@testable import Payments

@Suite("service settings")
struct SettingsTests {
    func error(_ variables: [String: String]) -> String? {
        do {
            _ = try ServiceSettings(reader: .environment(variables), defaultPort: 8081)
            _ = try GatewaySettings(reader: .environment(variables))
            return nil
        } catch {
            return "\(error)"
        }
    }

    let valid = ["DATABASE_URL": "postgres://orders@127.0.0.1:5432/postbox", "PAYMENT_GATEWAY_URL": "http://127.0.0.1:8084"]

    @Test func defaultsApplyWhenOnlyTheRequiredValuesAreSet() throws {
        let settings = try ServiceSettings(reader: .environment(valid), defaultPort: 8081)
        #expect(settings.httpPort == 8081)
        #expect(settings.httpHost == "127.0.0.1")
        #expect(settings.logLevel == .info)
        #expect(settings.database.username == "orders")
        #expect(settings.database.database == "postbox")
        #expect(try GatewaySettings(reader: .environment(valid)).timeout == .seconds(2))
        #expect(settings.poolMaximum == 20)
        #expect(settings.keepAlive == nil)
        let options = settings.clientConfiguration.options
        #expect(options.minimumConnections == 0)
        #expect(options.maximumConnections == 20)
        #expect(options.keepAliveBehavior == nil)
    }

    @Test func thePoolCanBeSizedAndKeptAlive() throws {
        let settings = try ServiceSettings(
            reader: .environment(
                valid.merging(
                    ["DATABASE_POOL_MAXIMUM": "8", "DATABASE_KEEP_ALIVE_SECONDS": "30"]
                ) { $1 }
            ),
            defaultPort: 8081
        )
        let options = settings.clientConfiguration.options
        #expect(options.maximumConnections == 8)
        #expect(options.keepAliveBehavior?.frequency == .seconds(30))
    }

    @Test func aMissingOrBadValueNamesItsVariable() {
        var missing = valid
        missing["DATABASE_URL"] = nil
        #expect(error(missing) == "DATABASE_URL is missing")
        #expect(error(valid.merging(["DATABASE_URL": "mysql://x"]) { $1 })?.hasPrefix("DATABASE_URL ") == true)
        #expect(error(valid.merging(["HTTP_PORT": "eighty"]) { $1 }) == "HTTP_PORT must be a port number (0-65535), got 'eighty'")
        #expect(error(valid.merging(["HTTP_PORT": "70000"]) { $1 })?.hasPrefix("HTTP_PORT ") == true)
        #expect(error(valid.merging(["LOG_LEVEL": "loud"]) { $1 })?.hasPrefix("LOG_LEVEL must be one of trace") == true)
        #expect(
            error(valid.merging(["PAYMENT_GATEWAY_URL": "gateway"]) { $1 }) == "PAYMENT_GATEWAY_URL must be an http:// or https:// URL, got 'gateway'"
        )
        #expect(error(valid.merging(["PAYMENT_GATEWAY_TIMEOUT_MS": "-1"]) { $1 })?.hasPrefix("PAYMENT_GATEWAY_TIMEOUT_MS ") == true)
        #expect(error(valid.merging(["DATABASE_POOL_MAXIMUM": "0"]) { $1 })?.hasPrefix("DATABASE_POOL_MAXIMUM ") == true)
        #expect(error(valid.merging(["DATABASE_KEEP_ALIVE_SECONDS": "-5"]) { $1 })?.hasPrefix("DATABASE_KEEP_ALIVE_SECONDS ") == true)
        var noGateway = valid
        noGateway["PAYMENT_GATEWAY_URL"] = nil
        #expect(error(noGateway) == "PAYMENT_GATEWAY_URL is missing")
    }

    @Test func variableNamesFollowSwiftConfiguration() {
        #expect(SettingsReader.variableName(forKey: "database.url") == "DATABASE_URL")
        #expect(SettingsReader.variableName(forKey: "paymentGateway.timeoutMs") == "PAYMENT_GATEWAY_TIMEOUT_MS")
    }

    @Test func traceparentsAreParsedStrictly() {
        let parent = TraceContext(traceparent: "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01")
        #expect(parent?.traceId == "4bf92f3577b34da6a3ce929d0e0e4736")
        #expect(parent?.child().traceId == parent?.traceId)
        #expect(parent?.child().spanId != parent?.spanId)
        #expect(TraceContext(traceparent: "00-00000000000000000000000000000000-00f067aa0ba902b7-01") == nil)
        #expect(TraceContext(traceparent: "00-4BF92F3577B34DA6A3CE929D0E0E4736-00f067aa0ba902b7-01") == nil)
        #expect(TraceContext(traceparent: "garbage") == nil)
        #expect(TraceContext(traceparent: TraceContext.random().traceparent) != nil)
    }
}
