import Logging
import PostgresNIO
import Synchronization

/// A pooled connection the server had already closed, refused before anything is sent on it.
struct ClosedConnectionError: Error, CustomStringConvertible {
    var description: String { "the pool handed out a connection the server had already closed" }
}

extension PostgresClient {
    /// `withConnection`, refusing (and retrying past) a connection that is already closed, and giving up on a
    /// statement that can no longer be answered.
    ///
    /// With PostgresNIO 1.33.2 a statement written to a pooled connection whose socket the server has just closed
    /// (a restart, a reset) is dropped without failing its caller, which would wait for ever — and a consumer's
    /// whole capacity and its shutdown with it. So the body runs in a task of its own while the connection is
    /// watched (``ConnectionCloseWatch``): once it is closed and the body has not finished a second later, the caller gets
    /// ``ClosedConnectionError`` and the stuck task is left behind (it holds nothing but the dead connection).
    /// What the body had sent may or may not have committed; bus statements are safe either way (leases expire).
    func withOpenConnection<Result: Sendable>(
        _ body: @escaping @Sendable (PostgresConnection) async throws -> Result
    ) async throws -> Result {
        try await withCheckedConnection { connection in
            try await Self.abandoningIfClosed(connection) { try await body(connection) }
        }
    }

    /// A pooled connection that is open when handed out; a closed one is refused and another asked for (the
    /// pool learns of the close a moment later).
    private func withCheckedConnection<Result: Sendable>(
        _ body: (PostgresConnection) async throws -> Result
    ) async throws -> Result {
        var attempt = 0
        while true {
            attempt += 1
            do {
                return try await withConnection { connection in
                    guard !connection.isClosed else { throw ClosedConnectionError() }
                    return try await body(connection)
                }
            } catch is ClosedConnectionError where attempt < 20 {
                try await Task.sleep(for: .milliseconds(10 * attempt))
            }
        }
    }

    private static func abandoningIfClosed<Result: Sendable>(
        _ connection: PostgresConnection,
        _ body: @escaping @Sendable () async throws -> Result
    ) async throws -> Result {
        let outcome = Outcome<Result>()
        return try await withCheckedThrowingContinuation { continuation in
            outcome.start(continuation)
            // Unstructured on purpose: a statement lost on a closed connection never returns, and only a task
            // that nobody waits for can be left behind.
            let work = Task {
                do { outcome.finish(.success(try await body())) } catch { outcome.finish(.failure(error)) }
            }
            let watch = ConnectionCloseWatch.shared.watch(connection) {
                // Abandoning hands the connection back to the pool while the body may still use it: only ever
                // for a connection that is really closed, whatever called back.
                guard connection.isClosed else { return }
                if outcome.finish(.failure(ClosedConnectionError())) { work.cancel() }
            }
            outcome.onFinish { ConnectionCloseWatch.shared.unwatch(connection, watch) }
        }
    }

    /// `withTransaction` on an open connection (see ``withOpenConnection(_:)``): BEGIN, `body`, COMMIT, or
    /// ROLLBACK when `body` throws; errors come back as `PostgresTransactionError`, as from PostgresNIO.
    func withOpenTransaction<Result: Sendable>(
        logger: Logger,
        _ body: @escaping @Sendable (PostgresConnection) async throws -> Result
    ) async throws -> Result {
        try await withOpenConnection { connection in
            try await connection.withTransaction(logger: logger) { try await body($0) }
        }
    }

    /// `withTransaction` on a connection checked to be open, for a body that cannot leave its caller's task (a
    /// producer's transaction): it gets the check before use, not the watchdog of ``withOpenConnection(_:)``.
    /// `afterCommit` runs on the same connection once the transaction committed, before it goes back to the pool.
    func withCheckedTransaction<Result: Sendable>(
        logger: Logger,
        _ body: (PostgresConnection) async throws -> Result,
        afterCommit: (PostgresConnection, Result) async -> Void
    ) async throws -> Result {
        try await withCheckedConnection { connection in
            let result = try await connection.withTransaction(logger: logger) { try await body($0) }
            await afterCommit(connection, result)
            return result
        }
    }

    /// Runs one statement on an open connection and returns its rows decoded as `Row`.
    func rows<Row: Sendable>(_ query: PostgresQuery, as: Row.Type, logger: Logger) async throws -> [Row] where Row: PostgresDecodable {
        try await withOpenConnection { connection in
            var rows: [Row] = []
            for try await row in try await connection.query(query, logger: logger).decode(Row.self) { rows.append(row) }
            return rows
        }
    }

    /// Runs one statement on an open connection, ignoring any rows.
    func execute(_ query: PostgresQuery, logger: Logger) async throws {
        try await withOpenConnection { connection in
            _ = try await connection.query(query, logger: logger)
        }
    }
}

/// The first of the body's result and the watchdog's verdict, delivered once.
private final class Outcome<Value: Sendable>: Sendable {
    private struct State {
        var continuation: CheckedContinuation<Value, any Error>?
        var finished = false
        var onFinish: (@Sendable () -> Void)?
    }

    private let state = Mutex(State())

    func start(_ continuation: CheckedContinuation<Value, any Error>) {
        state.withLock { $0.continuation = continuation }
    }

    /// Runs `action` once the outcome is delivered (at once if it already is).
    func onFinish(_ action: @escaping @Sendable () -> Void) {
        let runNow = state.withLock { state -> Bool in
            if state.finished { return true }
            state.onFinish = action
            return false
        }
        if runNow { action() }
    }

    /// Resumes the caller unless already done; returns whether this call did.
    @discardableResult
    func finish(_ result: Result<Value, any Error>) -> Bool {
        let (continuation, action) = state.withLock { state -> (CheckedContinuation<Value, any Error>?, (@Sendable () -> Void)?) in
            guard !state.finished else { return (nil, nil) }
            state.finished = true
            defer {
                state.continuation = nil
                state.onFinish = nil
            }
            return (state.continuation, state.onFinish)
        }
        continuation?.resume(with: result)
        action?()
        return continuation != nil
    }
}
