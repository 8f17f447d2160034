public import Logging

extension EmbeddedPostgres {
    /// One throwaway server for the whole process (``Durability/fast``), started on first use.
    ///
    /// Test targets call this from every test: the first call starts the server, the others wait for it. Nothing
    /// stops it explicitly; when the process exits, the watchdog stops the server and deletes its files.
    public static func shared(logger: Logger = Logger(label: "postbox.embedded-postgres")) async throws -> EmbeddedPostgres {
        try await SharedServer.instance.server(logger: logger)
    }
}

/// Starts the process-wide server once, however many callers ask at the same time.
private actor SharedServer {
    static let instance = SharedServer()
    private var starting: Task<EmbeddedPostgres, any Error>?

    func server(logger: Logger) async throws -> EmbeddedPostgres {
        if let starting { return try await starting.value }
        let task = Task { try await EmbeddedPostgres.start(.init(durability: .fast), logger: logger) }
        starting = task
        return try await task.value
    }
}
