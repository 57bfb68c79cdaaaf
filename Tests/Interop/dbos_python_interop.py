#!/usr/bin/env python3
"""Reads and drives a dbos-swift system database through DBOS Transact for Python (`pip install dbos`).

DBOSPythonInteropTests runs this with a venv that has `dbos` installed. Every command prints JSON:

    list URL                      one line per run, oldest first: id, name, status, output, error
    steps URL ID                  the run's steps, as one JSON array
    enqueue URL QUEUE NAME JSON_INPUT [--id ID]
                                  enqueues NAME with JSON_INPUT as its one portable-JSON argument; prints the ID
    wait URL ID SECONDS           the run's result: {"output": ...} or {"error": ...} (exit 3 on timeout)
    cli-list URL                  what the `dbos workflow list -s URL` command prints
    migrate URL                   runs `dbos migrate -s URL`, then prints {"versions": [every dbos_migrations row]}

Only DBOS Python's public API and its `dbos` command are used, plus SQLAlchemy (a dependency of
dbos) to read the migration version.
URL is what DBOS Python expects: postgresql://... or sqlite:////absolute/path.
"""
from __future__ import annotations

import argparse
import json
import logging
import os
import subprocess
import sys
import tempfile
import time
from typing import Any

from dbos import DBOSClient, EnqueueOptions, WorkflowSerializationFormat

TERMINAL = {"SUCCESS", "ERROR", "CANCELLED", "MAX_RECOVERY_ATTEMPTS_EXCEEDED"}


def error_json(error: Any) -> Any:
    """A decoded error as JSON: a portable error keeps its name and message; a value DBOS Python
    could not decode stays the raw string it returned, so the test sees the failure."""
    if error is None or isinstance(error, str):
        return error
    return {"type": type(error).__name__, "name": getattr(error, "name", None), "message": str(error)}


def emit(value: Any) -> None:
    print(json.dumps(value, default=repr), flush=True)


def list_runs(client: DBOSClient) -> None:
    for run in client.list_workflows(sort_desc=False):
        emit({"id": run.workflow_id, "name": run.name, "status": run.status,
              "output": run.output, "error": error_json(run.error)})


def list_steps(client: DBOSClient, workflow_id: str) -> None:
    emit([{"function_id": step["function_id"], "function_name": step["function_name"],
           "output": step["output"], "error": error_json(step["error"]),
           "child_workflow_id": step["child_workflow_id"]}
          for step in client.list_workflow_steps(workflow_id)])


def enqueue(client: DBOSClient, queue: str, name: str, json_input: str, workflow_id: str | None) -> None:
    options: EnqueueOptions = {"queue_name": queue, "workflow_name": name,
                               "serialization_type": WorkflowSerializationFormat.PORTABLE}
    if workflow_id:
        options["workflow_id"] = workflow_id
    emit(client.enqueue(options, json.loads(json_input)).get_workflow_id())


def wait(client: DBOSClient, workflow_id: str, seconds: float) -> int:
    # get_result() polls forever; wait for a terminal status first so a stuck run fails the test.
    handle = client.retrieve_workflow(workflow_id)
    deadline = time.monotonic() + seconds
    while handle.get_status().status not in TERMINAL:
        if time.monotonic() > deadline:
            emit({"timeout": handle.get_status().status})
            return 3
        time.sleep(0.1)
    try:
        emit({"output": handle.get_result()})
    except Exception as error:
        emit({"error": error_json(error)})
    return 0


def run_cli(*arguments: str) -> str:
    """Runs the `dbos` script pip installed next to this interpreter (the real command-line entry
    point) in an empty directory, so no dbos-config.yaml is picked up; returns its stdout."""
    dbos = os.path.join(os.path.dirname(sys.executable), "dbos")
    with tempfile.TemporaryDirectory() as empty:
        done = subprocess.run([dbos, *arguments], cwd=empty, capture_output=True, text=True)
    if done.returncode != 0:
        sys.exit(f"dbos {' '.join(arguments)} exited with {done.returncode}:\n{done.stdout}{done.stderr}")
    return done.stdout


def cli_list(url: str) -> None:
    emit(json.loads(run_cli("workflow", "list", "-s", url, "--limit", "100").strip().splitlines()[-1]))


def migrate(url: str) -> None:
    run_cli("migrate", "-s", url)
    import sqlalchemy

    postgres = url.startswith("postgres")
    engine = sqlalchemy.create_engine(url.replace("postgresql://", "postgresql+psycopg://", 1) if postgres else url)
    with engine.connect() as connection:
        table = "dbos.dbos_migrations" if postgres else "dbos_migrations"
        versions = connection.execute(sqlalchemy.text(f"SELECT version FROM {table}")).scalars().all()
    engine.dispose()
    emit({"versions": versions})


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    commands = parser.add_subparsers(dest="command", required=True)
    for name in ("list", "cli-list", "migrate"):
        commands.add_parser(name).add_argument("url")
    steps = commands.add_parser("steps")
    steps.add_argument("url")
    steps.add_argument("id")
    enqueue_parser = commands.add_parser("enqueue")
    for argument in ("url", "queue", "name", "json_input"):
        enqueue_parser.add_argument(argument)
    enqueue_parser.add_argument("--id")
    wait_parser = commands.add_parser("wait")
    wait_parser.add_argument("url")
    wait_parser.add_argument("id")
    wait_parser.add_argument("seconds", type=float)
    args = parser.parse_args()

    if args.command == "cli-list":
        cli_list(args.url)
        return 0
    if args.command == "migrate":
        migrate(args.url)
        return 0
    logging.getLogger("dbos").setLevel(logging.WARNING)
    client = DBOSClient(system_database_url=args.url)
    try:
        if args.command == "list":
            list_runs(client)
        elif args.command == "steps":
            list_steps(client, args.id)
        elif args.command == "enqueue":
            enqueue(client, args.queue, args.name, args.json_input, args.id)
        elif args.command == "wait":
            return wait(client, args.id, args.seconds)
        return 0
    finally:
        client.destroy()


if __name__ == "__main__":
    sys.exit(main())
