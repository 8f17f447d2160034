import Foundation
import HTTPTypes
import Hummingbird
import Logging
import PostboxService
import PostgresNIO

/// `POST /v1/charges`, `POST /v1/refunds` and `GET /v1/charges?reference=`: the processor's API.
///
/// Both writes require an `Idempotency-Key`: the same key with the same request answers with the original result
/// (and `Idempotent-Replayed: true`); the same key with a different request is a 409. Token `tok_decline` is
/// always declined.
struct LedgerController: Sendable {
    let client: PostgresClient
    let ledger: LedgerRepository
    let faults: FaultProgram

    func add(to routes: RouteCollection<ServiceRequestContext>) {
        routes.post("/v1/charges", use: charge)
        routes.get("/v1/charges", use: list)
        routes.post("/v1/refunds", use: refund)
    }

    struct ChargeInput: Decodable {
        var amountCents: Int
        var token: String
        var reference: String
    }

    struct RefundInput: Decodable {
        var chargeId: String
        var amountCents: Int?
    }

    struct ChargeList: ResponseEncodable, Decodable {
        var charges: [Charge]
    }

    @Sendable func charge(request: Request, context: ServiceRequestContext) async throws -> Response {
        let key = try Self.idempotencyKey(request)
        let input = try await request.decode(as: ChargeInput.self, context: context)
        guard input.amountCents > 0 else { throw Problem(.unprocessableContent, "amountCents must be positive") }
        guard !input.token.isEmpty, !input.reference.isEmpty else {
            throw Problem(.unprocessableContent, "token and reference must not be empty")
        }
        let fault = try await applyBefore(faults.take(for: .charges), context: context)
        let traceId = context.trace.traceId
        // Insert first, in one statement: the key's unique index settles a race between two requests with the same
        // key (the second waits for the first to commit, then finds its charge), and a new key costs no more.
        let (charge, replayed) = try await client.withConnection { connection -> (Charge, Bool) in
            let declined = input.token == "tok_decline" || fault?.kind == .decline
            let charge = Charge(
                id: LedgerRepository.newId(prefix: "ch"),
                reference: input.reference,
                amountCents: input.amountCents,
                token: input.token,
                status: declined ? "declined" : "captured",
                refundedCents: 0,
                traceId: traceId
            )
            if let inserted = try await ledger.insertCharge(charge, idempotencyKey: key, on: connection, logger: context.logger) {
                return (inserted, false)
            }
            guard let existing = try await ledger.charge(idempotencyKey: key, on: connection, logger: context.logger) else {
                throw Problem(.conflict, "a charge with Idempotency-Key '\(key)' is being made")
            }
            guard existing.amountCents == input.amountCents, existing.reference == input.reference,
                existing.token == input.token
            else {
                throw Problem(.conflict, "Idempotency-Key '\(key)' was used for a different charge")
            }
            return (existing, true)
        }
        context.logger.info(
            replayed ? "charge replayed" : "charge made",
            metadata: ["charge.id": "\(charge.id)", "charge.reference": "\(charge.reference)", "charge.status": "\(charge.status)"]
        )
        try await applyAfter(fault, context: context)
        return try Self.json(charge, status: replayed ? .ok : .created, replayed: replayed, request: request, context: context)
    }

    @Sendable func refund(request: Request, context: ServiceRequestContext) async throws -> Response {
        let key = try Self.idempotencyKey(request)
        let input = try await request.decode(as: RefundInput.self, context: context)
        if let amount = input.amountCents, amount <= 0 {
            throw Problem(.unprocessableContent, "amountCents must be positive")
        }
        let fault = try await applyBefore(faults.take(for: .refunds), context: context)
        let traceId = context.trace.traceId
        let (refund, replayed) = try await client.withTransaction(logger: context.logger) { connection -> (Refund, Bool) in
            try await connection.query("SELECT pg_advisory_xact_lock(hashtext(\(key)))", logger: context.logger)
            if let existing = try await ledger.refund(idempotencyKey: key, on: connection, logger: context.logger) {
                guard existing.chargeId == input.chargeId, input.amountCents == nil || input.amountCents == existing.amountCents else {
                    throw Problem(.conflict, "Idempotency-Key '\(key)' was used for a different refund")
                }
                return (existing, true)
            }
            guard let charge = try await ledger.charge(id: input.chargeId, forUpdate: true, on: connection, logger: context.logger) else {
                throw Problem(.notFound, "no charge \(input.chargeId)")
            }
            guard charge.status == "captured" else { throw Problem(.conflict, "charge \(charge.id) was declined; nothing to refund") }
            let refundable = charge.amountCents - charge.refundedCents
            let amount = input.amountCents ?? refundable
            guard amount > 0, amount <= refundable else {
                throw Problem(.conflict, "charge \(charge.id) has \(refundable) cents left to refund, asked for \(amount)")
            }
            let refund = Refund(id: LedgerRepository.newId(prefix: "re"), chargeId: charge.id, amountCents: amount, status: "refunded")
            try await ledger.insertRefund(refund, idempotencyKey: key, traceId: traceId, on: connection, logger: context.logger)
            return (refund, false)
        }
        context.logger.info(
            replayed ? "refund replayed" : "refund made",
            metadata: ["refund.id": "\(refund.id)", "charge.id": "\(refund.chargeId)", "refund.amount_cents": "\(refund.amountCents)"]
        )
        try await applyAfter(fault, context: context)
        return try Self.json(refund, status: replayed ? .ok : .created, replayed: replayed, request: request, context: context)
    }

    @Sendable func list(request: Request, context: ServiceRequestContext) async throws -> ChargeList {
        let reference = request.uri.queryParameters["reference"].map(String.init)
        let charges = try await client.withConnection { connection in
            try await ledger.charges(reference: reference, on: connection, logger: context.logger)
        }
        return ChargeList(charges: charges)
    }

    /// Faults that act before the request is handled; returns the fault when it acts after (or changes the outcome).
    private func applyBefore(_ fault: Fault?, context: ServiceRequestContext) async throws -> Fault? {
        guard let fault else { return nil }
        context.logger.notice("fault injected", metadata: ["fault.kind": "\(fault.kind.rawValue)"])
        switch fault.kind {
        case .error:
            let status = HTTPResponse.Status(code: fault.status ?? 500)
            throw Problem(status, "injected fault: \(status.code)")
        case .delay:
            try await Task.sleep(for: .milliseconds(fault.delayMs ?? 500))
            return nil
        case .timeout:
            try await Task.sleep(for: .milliseconds(fault.delayMs ?? 10_000))
            throw Problem(.gatewayTimeout, "injected fault: timeout")
        case .decline, .chargeThenDrop:
            return fault
        }
    }

    private func applyAfter(_ fault: Fault?, context: ServiceRequestContext) async throws {
        guard let fault, fault.kind == .chargeThenDrop else { return }
        try await Task.sleep(for: .milliseconds(fault.delayMs ?? 0))
        throw Problem(.badGateway, "injected fault: the request was carried out but its answer was lost")
    }

    static func idempotencyKey(_ request: Request) throws -> String {
        guard let key = request.headers[.idempotencyKey]?.trimmingCharacters(in: .whitespaces), (1...200).contains(key.count) else {
            throw Problem(.badRequest, "an Idempotency-Key header of 1 to 200 characters is required")
        }
        return key
    }

    static func json(
        _ value: some Encodable,
        status: HTTPResponse.Status,
        replayed: Bool,
        request: Request,
        context: ServiceRequestContext
    ) throws -> Response {
        var response = try context.responseEncoder.encode(value, from: request, context: context)
        response.status = status
        if replayed { response.headers[.idempotentReplayed] = "true" }
        return response
    }
}

extension HTTPField.Name {
    static let idempotentReplayed = Self("Idempotent-Replayed")!
}
