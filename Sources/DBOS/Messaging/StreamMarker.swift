/// Values with a special meaning in the `streams` table.
enum StreamMarker {
    /// DBOS's sentinel value that closes a stream.
    static let closed = "__DBOS_STREAM_CLOSED__"
}
