public import PostgresNIO

/// Why a database call failed, in one line a person can act on.
///
/// PostgresNIO's `PSQLError` describes itself only as "Generic description to prevent accidental leakage of
/// sensitive data", and its debug description is the whole request with its bind types. Dead letters, retry errors
/// and the bus's warnings owe their reader what the server said instead: "division by zero (SQLSTATE 22012)",
/// "terminating connection due to administrator command (SQLSTATE 57P01)". The server's detail line, which can
/// quote row values, is left out.
public enum DatabaseErrorText {
    /// `error` in one line: for a PostgreSQL error the server's message, its SQLSTATE and hint; for a connection
    /// that failed, the reason one level down; a transaction's error as its cause; anything else as it describes
    /// itself.
    public static func describe(_ error: any Error) -> String {
        let error = cause(of: error)
        guard let failure = error as? PSQLError else { return String(describing: error) }
        if let message = serverMessage(failure) { return message }
        if let underlying = failure.underlying { return "\(failure.code): \(underlying)" }
        return "\(failure.code)"
    }

    /// The error that says why: a transaction's error as the one that failed it, and a `PSQLError` for a connection
    /// the server closed as the server's error one level down.
    public static func cause(of error: any Error) -> any Error {
        var error = error
        if let transaction = error as? PostgresTransactionError,
            let cause = transaction.closureError ?? transaction.beginError ?? transaction.commitError
        {
            error = cause
        }
        if let failure = error as? PSQLError, failure.serverInfo == nil, let cause = failure.underlying as? PSQLError,
            cause.serverInfo != nil
        {
            return cause
        }
        return error
    }

    /// The server's message with its SQLSTATE and hint, if the server sent one.
    public static func serverMessage(_ error: PSQLError) -> String? {
        guard let server = error.serverInfo, let message = server[.message] else { return nil }
        var line = message
        if let state = server[.sqlState] { line += " (SQLSTATE \(state))" }
        if let hint = server[.hint] { line += "; \(hint)" }
        return line
    }
}
