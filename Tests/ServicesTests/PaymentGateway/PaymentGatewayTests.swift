import Foundation
import HTTPTypes
import HummingbirdTesting
import PostboxService
import PostgresNIO
import Testing

@testable import PaymentGateway

@Suite("card-processor stand-in")
struct PaymentGatewayTests {
    struct ChargeAnswer: Decodable, Equatable {
        var id: String
        var status: String
        var amountCents: Int
        var reference: String
    }
    struct RefundAnswer: Decodable {
        var id: String
        var chargeId: String
        var amountCents: Int
    }
    struct Ledger: Decodable { var charges: [LedgerCharge] }
    struct LedgerCharge: Decodable {
        var id: String
        var status: String
        var amountCents: Int
        var refundedCents: Int
    }

    func withGateway<R: Sendable>(
        test: String = #function,
        _ body: @Sendable (any TestClientProtocol, ServiceWorld) async throws -> R
    ) async throws -> R {
        try await withService("payment-gateway", role: "payment_gateway", usesBus: false, test: test, build: { buildPaymentGateway($0) }, body)
    }

    func charge(
        _ client: any TestClientProtocol,
        key: String,
        token: String = "tok_visa",
        amount: Int = 2500,
        reference: String = "order-1"
    ) async throws -> TestResponse {
        try await client.send(
            .post,
            "/v1/charges",
            json: #"{"amountCents":\#(amount),"token":"\#(token)","reference":"\#(reference)"}"#,
            headers: [.idempotencyKey: key]
        )
    }

    @Test func aChargeWithTheSameKeyIsMadeOnce() async throws {
        try await withGateway { client, world in
            let first = try await charge(client, key: "k1")
            #expect(first.status == .created)
            let answer = try first.decode(ChargeAnswer.self)
            #expect(answer.status == "captured")
            let replay = try await charge(client, key: "k1")
            #expect(replay.status == .ok)
            #expect(replay.headers[HTTPField.Name("Idempotent-Replayed")!] == "true")
            #expect(try replay.decode(ChargeAnswer.self) == answer)
            let different = try await charge(client, key: "k1", amount: 9999)
            #expect(different.status == .conflict)
            let ledger = try await client.send(.get, "/v1/charges?reference=order-1").decode(Ledger.self)
            #expect(ledger.charges.map(\.id) == [answer.id])
            #expect(try await world.scalar("SELECT count(*) FROM payment_gateway.charges", as: Int.self) == 1)
        }
    }

    @Test func declineTokenIsAlwaysDeclined() async throws {
        try await withGateway { client, _ in
            let declined = try await charge(client, key: "k2", token: "tok_decline")
            #expect(try declined.decode(ChargeAnswer.self).status == "declined")
            let refund = try await client.send(
                .post,
                "/v1/refunds",
                json: #"{"chargeId":"\#(try declined.decode(ChargeAnswer.self).id)"}"#,
                headers: [.idempotencyKey: "r"]
            )
            #expect(refund.status == .conflict)
        }
    }

    @Test func programmedFaultsApplyToTheNextRequestsOnly() async throws {
        try await withGateway { client, world in
            let program = try await client.send(
                .put,
                "/__admin/faults",
                json: #"[{"kind":"error","status":503,"count":2},{"kind":"decline","count":1}]"#
            )
            #expect(program.status == .ok)
            #expect(try await charge(client, key: "a").status == .serviceUnavailable)
            #expect(try await charge(client, key: "a").status == .serviceUnavailable)
            #expect(try await world.scalar("SELECT count(*) FROM payment_gateway.charges", as: Int.self) == 0)
            #expect(try await charge(client, key: "a").decode(ChargeAnswer.self).status == "declined")
            #expect(try await charge(client, key: "b").decode(ChargeAnswer.self).status == "captured")

            try await client.send(.put, "/__admin/faults", json: #"{"kind":"charge-then-drop","count":1}"#)
            let lost = try await charge(client, key: "c", reference: "order-2")
            #expect(lost.status == .badGateway)
            let retried = try await charge(client, key: "c", reference: "order-2")
            #expect(retried.status == .ok)
            #expect(try await client.send(.get, "/v1/charges?reference=order-2").decode(Ledger.self).charges.count == 1)

            try await client.send(.put, "/__admin/faults", json: #"{"kind":"timeout","delayMs":50}"#)
            #expect(try await charge(client, key: "d").status == .gatewayTimeout)
            #expect(try await client.send(.delete, "/__admin/faults").status == .noContent)
            #expect(try await charge(client, key: "d").status == .created)
            #expect(try await client.send(.put, "/__admin/faults", json: #"{"kind":"explode"}"#).status == .badRequest)
            #expect(try await client.send(.put, "/__admin/faults", json: #"{"kind":"error","count":0}"#).status == .unprocessableContent)
        }
    }

    @Test func refundsAreIdempotentAndBoundedByTheCharge() async throws {
        try await withGateway { client, _ in
            let charge = try await charge(client, key: "k").decode(ChargeAnswer.self)
            let refund = try await client.send(.post, "/v1/refunds", json: #"{"chargeId":"\#(charge.id)"}"#, headers: [.idempotencyKey: "r1"])
            #expect(refund.status == .created)
            #expect(try refund.decode(RefundAnswer.self).amountCents == 2500)
            #expect(
                try await client.send(.post, "/v1/refunds", json: #"{"chargeId":"\#(charge.id)"}"#, headers: [.idempotencyKey: "r1"]).status == .ok
            )
            #expect(
                try await client.send(.post, "/v1/refunds", json: #"{"chargeId":"\#(charge.id)"}"#, headers: [.idempotencyKey: "r2"]).status
                    == .conflict
            )
            #expect(
                try await client.send(.post, "/v1/refunds", json: #"{"chargeId":"ch_nope"}"#, headers: [.idempotencyKey: "r3"]).status == .notFound
            )
            let ledger = try await client.send(.get, "/v1/charges?reference=order-1").decode(Ledger.self)
            #expect(ledger.charges.first?.refundedCents == 2500)
        }
    }

    @Test func requestsWithoutAKeyOrWithBadBodiesAreRejected() async throws {
        try await withGateway { client, world in
            let noKey = try await client.send(.post, "/v1/charges", json: #"{"amountCents":1,"token":"t","reference":"r"}"#)
            #expect(noKey.status == .badRequest)
            #expect(try noKey.problem().detail?.contains("Idempotency-Key") == true)
            #expect(try await charge(client, key: "z", amount: 0).status == .unprocessableContent)
            let malformed = try await client.send(.post, "/v1/charges", json: #"{"amountCents":"#, headers: [.idempotencyKey: "y"])
            #expect(malformed.status == .badRequest)
            #expect(try await world.scalar("SELECT count(*) FROM payment_gateway.charges", as: Int.self) == 0)
        }
    }
}
