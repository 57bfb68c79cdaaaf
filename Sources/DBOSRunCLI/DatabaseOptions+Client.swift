import DBOS

extension DatabaseOptions {
    /// Opens (creating and migrating if needed) the system database as a client. A URL that is not
    /// understood fails with exit 2, a database that cannot be opened with exit 1; neither message
    /// contains the password.
    public func openClient() async throws(CommandFailure) -> DBOSClient {
        do {
            return try await DBOSClient(systemDatabaseURL: resolvedURL)
        } catch {
            throw CommandFailure(error).redacting(SystemDatabaseURL.password(in: resolvedURL))
        }
    }

    /// How long after its start a one-shot command stops waiting for a PostgreSQL server that went
    /// away in the middle of it to come back (a restart), and fails with one line naming the server.
    /// A run waits for as long as it takes; `get-event` for as long as its `--timeout`.
    static let connectionLossWait: Duration = .seconds(30)

    /// Opens a client, runs `body` with it and closes it, whether `body` succeeds or throws. Every
    /// error leaves as a `CommandFailure` with its password redacted.
    public func withClient<Result>(_ body: (DBOSClient) async throws -> Result) async throws(CommandFailure) -> Result {
        let client = try await openClient()
        do {
            let result = try await ConnectionRetryDeadline.within(Self.connectionLossWait) { try await body(client) }
            await client.close()
            return result
        } catch {
            await client.close()
            throw CommandFailure(error).redacting(SystemDatabaseURL.password(in: resolvedURL))
        }
    }
}
