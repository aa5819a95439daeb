"""Start-up of the real commands, for ``make bench``: CPU from process start to the first
Graph request, and SQL statements per mailbox.

``sweeper sweep`` and ``sweeper nightly`` run as a user starts them, each in a fresh
process, against the local Graph serving the demo's generated tenant. The process is
started through :data:`WATCH`, which installs an audit hook (:func:`sys.addaudithook`) and
then calls sweeper's command line as ``python -m sweeper`` does. At the process's first
connection to the local Graph's port (and to its sign-in port), the hook reads
:func:`time.process_time`: the process's user + system CPU time since it began, the
interpreter's own start included. Every SQLite connection the command opens gets a trace
callback (:func:`sqlite3.connect` is wrapped) that counts the statements SQLite runs. The
figures are written to a file when the process ends. The first run of each command is not
counted: it writes the bytecode caches (and, for ``sweep``, makes the database: a full
first sweep, whose SQL is counted apart); the median of the next runs is reported.
"""

from __future__ import annotations

import os
import statistics
import subprocess
import sys
import tempfile
from pathlib import Path
from typing import Any

import orjson

from sweeper.fakegraph import FakeGraph, generate_tenant
from sweeper.files import write_private
from tools.corpus_sweep import run_row

# Runs `sweeper ARGS...` in this interpreter, watched: argv is OUT GRAPH_PORT LOGIN_PORT ARGS.
WATCH = """
import atexit, sys, time

out, graph, login = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])
seen = {"statements": 0}

def count(statement):
    seen["statements"] += 1

def hook(event, args):
    if event == "socket.connect":
        address = args[1]
        if isinstance(address, tuple) and len(address) >= 2:
            name = {graph: "graph_cpu_seconds", login: "sign_in_cpu_seconds"}.get(address[1])
            if name is not None and name not in seen:
                seen[name] = time.process_time()

def write():
    import json

    with open(out, "w") as f:
        f.write(json.dumps(seen))

def connect(*args, **kwargs):
    connection = opened(*args, **kwargs)
    connection.set_trace_callback(count)
    return connection

sys.addaudithook(hook)
atexit.register(write)
import sqlite3  # sweeper opens its database before its first request: no start-up added

opened, sqlite3.connect = sqlite3.connect, connect
from sweeper.cli import main

main(sys.argv[4:], prog_name="sweeper")
"""

CONFIG = (
    '[graph]\ncloud = "custom"\nauth = "client_secret"\n\n[organisation]\nown_domains = [{own}]\n'
)


def watched(fake: FakeGraph, env: dict[str, str], out: Path, *args: str) -> dict[str, Any]:
    """``sweeper ARGS`` in a fresh process, watched; what the hook saw."""
    command = [sys.executable, "-c", WATCH, str(out), str(fake.graph_port)]
    command += [str(fake.login_port), *args]
    done = subprocess.run(command, env=env, capture_output=True, text=True, check=False)
    if done.returncode != 0:
        raise SystemExit(f"sweeper {' '.join(args)} failed:\n{done.stderr[-2000:]}")
    seen: dict[str, Any] = orjson.loads(out.read_bytes())
    if "graph_cpu_seconds" not in seen:
        raise SystemExit(f"sweeper {' '.join(args)} made no Graph request")
    return seen


def child_env(fake: FakeGraph, folder: Path) -> dict[str, str]:
    """This process's environment without foreign settings, pointed at the local Graph."""
    foreign = ("AZURE_", "IDENTITY_", "MSI_", "SWEEPER_", "SSL_CERT_FILE", "REQUESTS_CA_BUNDLE")
    kept = {k: v for k, v in os.environ.items() if not k.startswith(foreign)}
    own = ", ".join(f'"{d}"' for d in fake.tenant.own_domains)
    config = write_private(folder / "sweeper.toml", CONFIG.format(own=own))
    return {
        **kept,
        **fake.client_env(),
        "SWEEPER_CONFIG": str(config),
        "SWEEPER_DB": str(folder / "sweeper.db"),
    }


def measure_startup(runs: int = 5) -> dict[str, Any]:
    """Median start-up CPU of ``sweeper sweep`` and ``sweeper nightly`` over ``runs`` runs
    each, after one uncounted run; and SQL statements per mailbox."""
    tenant = generate_tenant(seed=2012, users=24)
    with FakeGraph(tenant) as fake, tempfile.TemporaryDirectory() as work:
        return _measured(fake, Path(work), runs)


def _measured(fake: FakeGraph, folder: Path, runs: int) -> dict[str, Any]:
    env = child_env(fake, folder)
    first = watched(fake, env, folder / "first.txt", "sweep")
    mailboxes = int(run_row(folder / "sweeper.db")["swept"])  # the mailboxes swept each time
    figures: dict[str, Any] = {
        "mailboxes": mailboxes,
        "runs": runs,
        "first_sweep_sql_per_mailbox": first["statements"] / mailboxes,
    }
    for command in ("sweep", "nightly"):
        if command == "nightly":
            watched(fake, env, folder / "first.txt", command)  # its bytecode cached
        seen = [watched(fake, env, folder / f"{n}.txt", command) for n in range(runs)]
        figures[command] = {
            "graph_cpu_seconds": statistics.median(s["graph_cpu_seconds"] for s in seen),
            "sign_in_cpu_seconds": statistics.median(
                s.get("sign_in_cpu_seconds", 0.0) for s in seen
            ),
            "all_graph_cpu_seconds": [s["graph_cpu_seconds"] for s in seen],
            "sql_per_mailbox": statistics.median(s["statements"] for s in seen) / mailboxes,
        }
    return figures


if __name__ == "__main__":
    print(orjson.dumps(measure_startup(), option=orjson.OPT_INDENT_2).decode())
