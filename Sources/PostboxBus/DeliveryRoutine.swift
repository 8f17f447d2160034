/// A hot-path bus statement installed as a PL/pgSQL function that PostgreSQL plans with index scans only.
///
/// A queue's tables are nearly empty one moment and thousands of rows deep the next, and a cached plan outlives
/// the moment it was made in. A prepared statement planned while `bus.deliveries` held a page or two, or before
/// it was ever counted, scans it whole (a sequential or bitmap scan and a sort) and keeps doing so once a backlog
/// forms: the claim then checks the ordering of every visible delivery, not the first few, and each handled event
/// makes the next one costlier. In the order flow at 100/s that turned a 0.1 ms claim into 40–60 ms and the flow
/// never caught up; with counts taken from a nearly empty table, one claim over 3,000 deliveries read 77,000
/// buffers instead of 6.
///
/// Every statement the bus sends per delivery walks an index by design, so the function turns off sequential and
/// bitmap scans while its body is planned; a plan can no longer depend on how full the queue looked.
/// The settings hold only inside the function (a handler's own statements are planned as usual); PL/pgSQL caches
/// the body's plans per connection, so the call costs no more planning than a prepared statement.
struct DeliveryRoutine: Sendable {
    /// The function's qualified name; a changed body gets a new name in a new migration.
    let name: String
    /// The parameters' types, in order; the body refers to them as `$1`, `$2`, …
    let parameterTypes: [String]
    /// The function's result, e.g. `TABLE (…)`, `timestamptz` or `void`.
    let returns: String
    /// The PL/pgSQL statements between `BEGIN` and `END`.
    let body: String
    /// For a function that returns the rows of one query, that query.
    let query: String?

    /// A function whose body is `statements`.
    init(name: String, parameterTypes: [String], returns: String, body statements: String) {
        self.name = name
        self.parameterTypes = parameterTypes
        self.returns = returns
        self.body = statements
        self.query = nil
    }

    /// A function that returns the rows of `query`.
    init(name: String, parameterTypes: [String], returns: String, query: String) {
        self.name = name
        self.parameterTypes = parameterTypes
        self.returns = returns
        self.body = "RETURN QUERY\n\(query);"
        self.query = query
    }

    /// The planner settings the body is planned and run with.
    ///
    /// Turning a kind of plan node off adds a huge constant to its cost rather than forbidding it. Sorts stay on:
    /// publishing needs one anyway, and its cost would make every plan look expensive enough for JIT compilation
    /// (most of a second on each connection's first run) and keep PostgreSQL from ever settling on a generic plan.
    /// `jit` is off all the same, so that a sequential scan the planner has no alternative to cannot trigger it.
    static let planningSettings = ["enable_seqscan": "off", "enable_bitmapscan": "off", "jit": "off"]

    /// The statement that installs the function (run by a migration).
    var definition: String {
        let settings = Self.planningSettings.sorted { $0.key < $1.key }.map { "SET \($0.key) = \($0.value)" }
        return """
            CREATE FUNCTION \(signature)
            RETURNS \(returns)
            LANGUAGE plpgsql
            \(settings.joined(separator: " "))
            AS $routine$
            #variable_conflict use_column
            BEGIN
            \(body)
            END
            $routine$
            """
    }

    /// The function's name with its parameter types, as `ALTER FUNCTION` names it.
    var signature: String { "\(name)(\(parameterTypes.joined(separator: ", ")))" }

    /// The statement that makes the function run with `setting` at `value` from its next call on.
    func setting(_ setting: String, to value: String) -> String {
        "ALTER FUNCTION \(signature) SET \(setting) = \(value)"
    }

    /// The statement a client prepares: every parameter cast to the type the function declares, so PostgresNIO's
    /// binding types (`Int` as `bigint`, arrays of them) always resolve to this function.
    var call: String {
        let arguments = parameterTypes.enumerated().map { "$\($0.offset + 1)::\($0.element)" }
        return "SELECT * FROM \(name)(\(arguments.joined(separator: ", ")))"
    }
}
