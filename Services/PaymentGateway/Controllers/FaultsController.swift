import Foundation
import Hummingbird
import Logging
import PostboxService

/// `GET`, `PUT` and `DELETE /__admin/faults`: the fault program of the stand-in.
///
/// `PUT` replaces the program with one fault object or an array of them, applied in order:
/// `{"kind": "error", "status": 500, "count": 2}`, `{"kind": "timeout", "delayMs": 5000}`,
/// `{"kind": "charge-then-drop", "count": 1}`, `{"kind": "decline"}`, `{"kind": "delay", "delayMs": 300}`.
struct FaultsController: Sendable {
    let faults: FaultProgram

    func add(to routes: RouteCollection<ServiceRequestContext>) {
        routes.get("/__admin/faults", use: show)
        routes.put("/__admin/faults", use: replace)
        routes.delete("/__admin/faults", use: clear)
    }

    struct FaultList: ResponseEncodable, Decodable {
        var faults: [Fault]
    }

    @Sendable func show(request: Request, context: ServiceRequestContext) async throws -> FaultList {
        FaultList(faults: faults.current)
    }

    @Sendable func replace(request: Request, context: ServiceRequestContext) async throws -> FaultList {
        let body = try await request.body.collect(upTo: context.maxUploadSize)
        let data = Data(body.readableBytesView)
        let program: [Fault]
        do {
            if let single = try? JSONDecoder().decode(Fault.self, from: data) {
                program = [single]
            } else if let wrapped = try? JSONDecoder().decode(FaultList.self, from: data) {
                program = wrapped.faults
            } else {
                program = try JSONDecoder().decode([Fault].self, from: data)
            }
        } catch {
            throw Problem(
                .badRequest,
                "expected a fault or an array of faults: {\"kind\": \"decline|error|delay|timeout|charge-then-drop\", "
                    + "\"count\"?: n, \"delayMs\"?: ms, \"status\"?: code, \"endpoint\"?: \"charges|refunds\"}"
            )
        }
        for fault in program {
            if let count = fault.count, count < 1 { throw Problem(.unprocessableContent, "count must be at least 1") }
            if let delay = fault.delayMs, !(0...120_000).contains(delay) {
                throw Problem(.unprocessableContent, "delayMs must be between 0 and 120000")
            }
            if let status = fault.status, !(400...599).contains(status) {
                throw Problem(.unprocessableContent, "status must be between 400 and 599")
            }
        }
        faults.replace(with: program)
        context.logger.notice("fault program replaced", metadata: ["faults": "\(program)"])
        return FaultList(faults: program)
    }

    @Sendable func clear(request: Request, context: ServiceRequestContext) async throws -> HTTPResponse.Status {
        faults.clear()
        context.logger.notice("fault program cleared")
        return .noContent
    }
}
