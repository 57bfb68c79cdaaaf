"""queue1's SQL without the engine: the floor of the statements dbos-swift's schema and semantics need.

Each run of queue1 costs two writes: the enqueue (dbos-swift's statement: the queue probe, then the
INSERT that claims the run as PENDING) and the outcome (the last step's checkpoint and the status
UPDATE, one statement). This script replays exactly those statements for N runs:

  PostgreSQL (psycopg 3, two connections): one connection enqueues one run after the other, as
  queue1's caller does; a second connection writes each run's outcome as soon as its enqueue
  returned ("as-they-come"), or gathers the outcomes of LINGER seconds and writes them in one
  transaction ("grouped", what dbos-swift does since session 8).

  With LINGER < 0 ("piggyback", PostgreSQL): one connection only, each enqueue and the previous run's
  outcome in one statement (data-modifying CTEs) and one commit.

  SQLite (one connection, WAL, synchronous=FULL): each run's enqueue and outcome each in a commit of
  their own ("as-they-come"), or each run's enqueue in one commit with the previous run's outcome
  ("grouped", the best its one writer could do, and what dbos-swift's writer thread does since session 9).

    python3 -m venv /tmp/replay && /tmp/replay/bin/pip install "psycopg[binary]"
    dbos-run migrate --db postgresql://postgres@127.0.0.1:55432/replay
    /tmp/replay/bin/python queue1_sql_replay.py postgresql://postgres@127.0.0.1:55432/replay 1000 0
    /tmp/replay/bin/python queue1_sql_replay.py postgresql://postgres@127.0.0.1:55432/replay 1000 0.002
    /tmp/replay/bin/python queue1_sql_replay.py postgresql://postgres@127.0.0.1:55432/replay 1000 -1
    dbos-run migrate --db sqlite:/tmp/replay.sqlite
    python3 queue1_sql_replay.py sqlite:/tmp/replay.sqlite 1000 0      # or 1 for grouped

Prints one JSON line: runs/s and the enqueue's p50 and mean.
"""
import json, queue, sys, threading, time, uuid

ENQUEUE = """
WITH queue_state AS (
    SELECT (SELECT 1 FROM workflow_status WHERE queue_name = 'bench' AND status IN ('ENQUEUED', 'PENDING')
            AND status = 'ENQUEUED' AND (application_version = 'bench' OR application_version IS NULL)
            ORDER BY queue_name, status, priority, created_at LIMIT 1) IS NOT NULL
        OR (SELECT 1 FROM workflow_status WHERE status = 'DELAYED' AND delay_until_epoch_ms <= 1796605981249
            AND queue_name = 'bench' AND (application_version = 'bench' OR application_version IS NULL)
            ORDER BY delay_until_epoch_ms LIMIT 1) IS NOT NULL AS waiting)
INSERT INTO workflow_status (workflow_uuid, status, name, inputs, executor_id, application_version, queue_name,
    created_at, updated_at, recovery_attempts, workflow_timeout_ms, workflow_deadline_epoch_ms,
    parent_workflow_id, serialization, started_at_epoch_ms, owner_xid, priority, deduplication_id,
    queue_partition_key, delay_until_epoch_ms, attributes)
VALUES (%(id)s, CASE WHEN (SELECT NOT waiting FROM queue_state) THEN 'PENDING' ELSE 'ENQUEUED' END, 'one-step',
    '{"namedArgs":{},"positionalArgs":[0]}', 'bench-replay', 'bench', 'bench', 1796605981249, 1796605981249,
    CASE WHEN (SELECT NOT waiting FROM queue_state) THEN 1 ELSE 0 END, NULL, NULL, NULL, 'portable_json',
    CASE WHEN (SELECT NOT waiting FROM queue_state) THEN 1796605981249 END, %(owner)s, 0, NULL, NULL, NULL, NULL)
ON CONFLICT (workflow_uuid) DO NOTHING RETURNING status
"""

# PostgreSQL's outcome statement (SQLSystemDatabase.completeWorkflows, one row).
OUTCOME_PG = """
WITH input (workflow_uuid, status, output, error, completed_at, function_id, function_name, step_output,
    step_error, step_started_at, step_completed_at) AS (VALUES (CAST(%(id)s AS TEXT), CAST('SUCCESS' AS TEXT),
    CAST('0' AS TEXT), CAST(NULL AS TEXT), CAST(1796605981245 AS BIGINT), CAST(0 AS INTEGER), CAST('noop' AS TEXT),
    CAST('0' AS TEXT), CAST(NULL AS TEXT), CAST(1796605981245 AS BIGINT), CAST(1796605981245 AS BIGINT))),
checkpoint AS (
    INSERT INTO operation_outputs (workflow_uuid, function_id, function_name, output, error,
        started_at_epoch_ms, completed_at_epoch_ms, serialization)
    SELECT input.workflow_uuid, input.function_id, input.function_name, input.step_output, input.step_error,
        input.step_started_at, input.step_completed_at, 'portable_json'
    FROM input WHERE input.function_id IS NOT NULL
        AND EXISTS (SELECT 1 FROM workflow_status AS run WHERE run.workflow_uuid = input.workflow_uuid)
    ON CONFLICT (workflow_uuid, function_id) DO NOTHING RETURNING workflow_uuid)
UPDATE workflow_status AS ws
SET status = input.status, output = input.output, error = input.error, updated_at = input.completed_at,
    completed_at = input.completed_at, deduplication_id = NULL
FROM input
WHERE ws.workflow_uuid = input.workflow_uuid AND ws.status = 'PENDING'
    AND (input.function_id IS NULL OR input.workflow_uuid IN (SELECT workflow_uuid FROM checkpoint))
RETURNING ws.workflow_uuid
"""

# SQLite's outcome: the checkpoint and the UPDATE in one transaction.
CHECKPOINT_SQLITE = """
INSERT INTO operation_outputs (workflow_uuid, function_id, function_name, output, error, child_workflow_id,
    started_at_epoch_ms, completed_at_epoch_ms, serialization)
SELECT :id, 0, 'noop', '0', NULL, NULL, 1796605981245, 1796605981245, 'portable_json'
WHERE EXISTS (SELECT 1 FROM workflow_status WHERE workflow_uuid = :id)
ON CONFLICT (workflow_uuid, function_id) DO NOTHING
"""
UPDATE_SQLITE = """
UPDATE workflow_status AS ws SET status = 'SUCCESS', output = '0', error = NULL, updated_at = 1796605981245,
    completed_at = 1796605981245, deduplication_id = NULL
WHERE workflow_uuid = :id AND status = 'PENDING' RETURNING workflow_uuid
"""


def report(mode, n, elapsed, latencies):
    latencies.sort()
    print(json.dumps({
        "replay": "queue1-sql", "mode": mode, "n": n, "runs_per_s": round(n / elapsed, 1),
        "enqueue_p50_ms": round(latencies[n // 2], 3), "enqueue_mean_ms": round(sum(latencies) / n, 3)}))


def replay_postgres(url, n, linger):
    import psycopg
    enqueuer = psycopg.connect(url, autocommit=True, prepare_threshold=0, options="-c search_path=dbos")
    writer = psycopg.connect(url, autocommit=True, prepare_threshold=0, options="-c search_path=dbos")
    ended = queue.Queue()

    def write_outcomes():
        while True:
            first = ended.get()
            if first is None:
                return
            if linger == 0:
                writer.execute(OUTCOME_PG, {"id": first}).fetchall()
                continue
            time.sleep(linger)
            ids, last = [first], False
            while True:
                try:
                    item = ended.get_nowait()
                except queue.Empty:
                    break
                if item is None:
                    last = True
                    break
                ids.append(item)
            with writer.transaction():
                for workflow_id in ids:
                    writer.execute(OUTCOME_PG, {"id": workflow_id}).fetchall()
            if last:
                return

    thread = threading.Thread(target=write_outcomes)
    thread.start()
    latencies = []
    start = time.perf_counter()
    for _ in range(n):
        workflow_id = str(uuid.uuid4())
        began = time.perf_counter()
        enqueuer.execute(ENQUEUE, {"id": workflow_id, "owner": str(uuid.uuid4())}).fetchall()
        latencies.append((time.perf_counter() - began) * 1000)
        ended.put(workflow_id)
    ended.put(None)
    thread.join()
    report("grouped" if linger else "as-they-come", n, time.perf_counter() - start, latencies)


def piggyback_statement():
    """The previous run's outcome (its CTEs, its UPDATE as one more) ahead of this run's enqueue."""
    outcome = OUTCOME_PG.replace("%(id)s", "%(previous)s").strip()[len("WITH "):]
    update_at = outcome.index("UPDATE workflow_status AS ws")
    outcome = outcome[:update_at].rstrip() + ",\ndone AS (" + outcome[update_at:] + ")"
    return "WITH " + outcome + ",\n" + ENQUEUE.strip()[len("WITH "):]


def replay_postgres_piggyback(url, n):
    import psycopg
    connection = psycopg.connect(url, autocommit=True, prepare_threshold=0, options="-c search_path=dbos")
    statement = piggyback_statement()
    latencies, previous = [], None
    start = time.perf_counter()
    for _ in range(n):
        workflow_id = str(uuid.uuid4())
        began = time.perf_counter()
        if previous is None:
            connection.execute(ENQUEUE, {"id": workflow_id, "owner": str(uuid.uuid4())}).fetchall()
        else:
            connection.execute(
                statement, {"id": workflow_id, "owner": str(uuid.uuid4()), "previous": previous}).fetchall()
        latencies.append((time.perf_counter() - began) * 1000)
        previous = workflow_id
    connection.execute(OUTCOME_PG, {"id": previous}).fetchall()
    report("piggyback", n, time.perf_counter() - start, latencies)


def replay_sqlite(path, n, grouped):
    import sqlite3
    connection = sqlite3.connect(path, isolation_level=None)
    connection.execute("PRAGMA journal_mode = WAL")
    connection.execute("PRAGMA synchronous = FULL")
    connection.execute("PRAGMA foreign_keys = ON")
    enqueue = ENQUEUE.replace("%(id)s", ":id").replace("%(owner)s", ":owner")

    def outcome(workflow_id):
        connection.execute(CHECKPOINT_SQLITE, {"id": workflow_id})
        connection.execute(UPDATE_SQLITE, {"id": workflow_id}).fetchall()

    latencies, previous = [], None
    start = time.perf_counter()
    for _ in range(n):
        workflow_id = str(uuid.uuid4())
        began = time.perf_counter()
        connection.execute("BEGIN IMMEDIATE")
        connection.execute(enqueue, {"id": workflow_id, "owner": str(uuid.uuid4())}).fetchall()
        if grouped and previous:
            outcome(previous)
        connection.execute("COMMIT")
        latencies.append((time.perf_counter() - began) * 1000)
        if not grouped:
            connection.execute("BEGIN IMMEDIATE")
            outcome(workflow_id)
            connection.execute("COMMIT")
        previous = workflow_id
    if grouped and previous:
        connection.execute("BEGIN IMMEDIATE")
        outcome(previous)
        connection.execute("COMMIT")
    report("grouped" if grouped else "as-they-come", n, time.perf_counter() - start, latencies)


if __name__ == "__main__":
    url, count, linger = sys.argv[1], int(sys.argv[2]), float(sys.argv[3])
    if url.startswith("sqlite:"):
        replay_sqlite(url[len("sqlite:"):], count, linger > 0)
    elif linger < 0:
        replay_postgres_piggyback(url, count)
    else:
        replay_postgres(url, count, linger)
