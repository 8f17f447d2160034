import Foundation
import PostgresNIO

/// The run across services as a Mermaid sequence diagram: each event from its publisher to each subscriber that
/// handled it (with the attempt), dead letters, and the faults the harness injected.
struct Timeline {
    struct Entry {
        var at: Date
        var line: String
    }

    static func participant(publishing type: String) -> String {
        switch type.split(separator: ".").first ?? "" {
        case "product", "stock": "inventory"
        case "order": "orders"
        case "payment": "payments"
        default: "harness"
        }
    }

    static func alias(_ name: String) -> String {
        switch name.split(separator: "-").first.map(String.init) ?? name {
        case "orders": "O"
        case "inventory": "I"
        case "payments": "P"
        case "payment": "G"
        case "postgres": "DB"
        default: "H"
        }
    }

    /// Reads the bus's history and merges the harness's actions into a Mermaid diagram (at most `limit` events).
    static func mermaid(system: PostboxSystem, limit: Int = 120) async throws -> String {
        var entries: [Entry] = []
        try await system.withDatabase { db in
            for try await (at, type, subscription, attempts, outcome) in try await db.query(
                """
                SELECT * FROM (
                    SELECT h.handled_at AS at, e.type, h.subscription, h.attempts, 'handled' AS outcome
                    FROM bus.handled h JOIN bus.events e ON e.id = h.event_id
                    UNION ALL
                    SELECT d.dead_at, coalesce(e.type, '?'), d.subscription, d.attempts, 'dead: ' || left(d.reason, 60)
                    FROM bus.dead_letters d LEFT JOIN bus.events e ON e.id = d.event_id) t
                ORDER BY at LIMIT \(limit)
                """,
                logger: PostboxSystem.logger
            ).decode((Date, String, String, Int, String).self) {
                let from = alias(participant(publishing: type))
                let to = alias(subscription)
                let attempt = attempts > 1 ? " (attempt \(attempts))" : ""
                if outcome == "handled" {
                    entries.append(Entry(at: at, line: "    \(from)-)\(to): \(type)\(attempt)"))
                } else {
                    entries.append(Entry(at: at, line: "    \(from)-x\(to): \(type)\(attempt) \(sanitize(outcome))"))
                }
            }
        }
        for action in system.actions {
            entries.append(Entry(at: action.at, line: "    Note over \(alias(action.target)): \(sanitize(action.target + ": " + action.what))"))
        }
        entries.sort { $0.at < $1.at }
        var text = "```mermaid\nsequenceDiagram\n"
        text += "    participant H as harness\n    participant O as orders\n    participant I as inventory\n"
        text += "    participant P as payments\n    participant G as payment-gateway\n    participant DB as postgres\n"
        for entry in entries { text += entry.line + "\n" }
        return text + "```\n"
    }

    static func sanitize(_ text: String) -> String {
        String(text.map { ";#\n\r{}".contains($0) ? " " : $0 }.prefix(120))
    }
}
