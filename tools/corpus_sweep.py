r"""Measure sweeper on a corpus of real mail: sweep a tenant file and report what it found.

    python -m tools.mbox_tenant --out WORK/tenant.json MBOX...
    python -m tools.corpus_sweep WORK/tenant.json                  # the report as text
    python -m tools.corpus_sweep WORK/tenant.json --json           # the same, as JSON
    python -m tools.corpus_sweep WORK/tenant.json --json-out WORK/report.json  # text and JSON
    python -m tools.corpus_sweep WORK/tenant.json --db WORK/run.db # and keep the database

The tenant file (written by ``tools/mbox_tenant.py``) is served by sweeper's local Graph on
127.0.0.1. A configuration that leaves every judgement at sweeper's defaults (no sensitive
departments or senders, no allowlist, no own domains beyond the tenant's verified one) is
written beside a new database, and the real ``sweeper sweep`` runs in a process of its own
over the corpus's whole date range (``--since`` its first message, ``--until`` just after
its last). The report is read from ``sweeper incidents --format json``, ``sweeper findings
--format json`` and the run's row in the database:

* mailboxes and messages swept, and how long the sweep took;
* incidents by severity;
* every critical incident with its share of personal (free-mail) addresses, flagged when
  under 10%: a critical incident among work addresses only is one to look at;
* findings under the detection threshold of 10 visible external addresses, by severity
  (none unless a rule reports smaller lists);
* the 30 most severe incidents: subject, unique addresses exposed, personal share, reason.

``--json`` prints the same as JSON (``--json-out`` writes it beside the text), so that the
runs of two versions can be compared; ``code`` names the commit that swept. The sweep's log
goes to ``sweep.log`` beside the database. Nothing reaches the internet.

The Enron corpus: the sent folders of the mbox files in the public repository
``jpvance123/Amdocs_ML_Email_Analytics`` (folder ``MailDir_to_MBOX/enron/``), one file per
folder named ``enron.OWNER.FOLDER``. From a clone (``GIT``: its git directory), into a
folder outside this repository (``SENT``)::

    git --git-dir GIT ls-tree -r --name-only HEAD MailDir_to_MBOX/enron/ \
      | grep -v deleted_items | grep -E '\.(_sent_mail|_sent|sent|sent_items)$' \
      | while read -r f; do git --git-dir GIT show "HEAD:$f" > "SENT/${f##*/}"; done
    python -m tools.mbox_tenant --out WORK/enron.json SENT/*
    python -m tools.corpus_sweep WORK/enron.json --json-out WORK/enron-report.json
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import tempfile
import time
from collections import Counter
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import orjson
from click.testing import CliRunner

import sweeper as sweeper_package
from sweeper.cli import main as sweeper_cli
from sweeper.fakegraph import FakeGraph, Tenant
from sweeper.files import open_private, write_private
from sweeper.present.escape import json_safe, terminal
from sweeper.rules.severity import LEVELS
from sweeper.store.runs import last_run_of
from tools.mbox_tenant import read_tenant_file, tenant_of

# Every judgement at its default: only how to reach the local Graph is said.
CONFIG = """\
[graph]
cloud = "custom"
auth = "client_secret"
"""
LOW_PERSONAL_SHARE = 0.10  # a critical incident with less personal mail than this is flagged
TOP = 30
SMALL_LIST = 10  # findings under this many visible external addresses are counted apart
# Variables that would point the sweep at another tenant, configuration or database.
FOREIGN_PREFIXES = ("AZURE_", "IDENTITY_", "MSI_", "SWEEPER_")
FOREIGN = ("SSL_CERT_FILE", "REQUESTS_CA_BUNDLE")
Json = dict[str, Any]


@dataclass
class Swept:
    """What one sweep of the corpus produced, as read back from sweeper."""

    run: Json  # the run's row of the database
    exit_code: int
    incidents: list[Json]
    findings: list[Json]
    seconds: float


# -- the corpus -----------------------------------------------------------------------------


def corpus_window(tenant: Tenant) -> tuple[str, str]:
    """``--since`` the first message and ``--until`` a second after the last (``until`` is
    exclusive)."""
    moments = [m["sentDateTime"] for u in tenant.users for m in u.sent]
    if not moments:
        raise SystemExit("the tenant file holds no message")
    last = datetime.fromisoformat(max(moments)) + timedelta(seconds=1)
    return min(moments), last.strftime("%Y-%m-%dT%H:%M:%SZ")


def corpus_facts(tenant: Tenant, path: Path, conversion: Json) -> Json:
    since, until = corpus_window(tenant)
    return {
        "tenant_file": path.name,
        "mailboxes": len(tenant.users),
        "messages": tenant.message_count(),
        "since": since,
        "until": until,
        "conversion": conversion,
    }


# -- running sweeper ------------------------------------------------------------------------


def source_root() -> Path:
    """The folder this process imported sweeper from: the sweep runs the same code."""
    return Path(sweeper_package.__file__).resolve().parent.parent


def code_version() -> Json:
    """The commit of the sweeper that swept, and whether its tree had changes."""

    def git(*args: str) -> str | None:
        try:
            done = subprocess.run(
                ["git", "-C", str(source_root()), *args],
                capture_output=True, text=True, check=False,
            )  # fmt: skip
        except OSError:
            return None
        return done.stdout.strip() if done.returncode == 0 else None

    status = git("status", "--porcelain", "--untracked-files=no")
    return {"commit": git("rev-parse", "--short", "HEAD"), "changed": bool(status)}


def child_env(fake: FakeGraph, config: Path, db: Path) -> dict[str, str]:
    """This process's environment without foreign settings, pointed at the local Graph and
    at the sweeper this process runs."""
    kept = {
        k: v
        for k, v in os.environ.items()
        if not k.startswith(FOREIGN_PREFIXES) and k not in FOREIGN
    }
    path = os.pathsep.join(p for p in (str(source_root()), kept.get("PYTHONPATH")) if p)
    return {
        **kept,
        **fake.client_env(),
        "PYTHONPATH": path,
        "SWEEPER_CONFIG": str(config),
        "SWEEPER_DB": str(db),
    }


def run_sweeper(
    args: Sequence[str], env: Mapping[str, str], log: Path
) -> subprocess.CompletedProcess[str]:
    """``sweeper ARGS`` in a process of its own; its stderr appended to ``log``."""
    fd = open_private(log, os.O_WRONLY | os.O_CREAT | os.O_APPEND)
    with os.fdopen(fd, "a", encoding="utf-8") as errors:
        return subprocess.run(
            [sys.executable, "-m", "sweeper", *args],
            env=dict(env),
            stdout=subprocess.PIPE,
            stderr=errors,
            text=True,
            check=False,
        )


def listing(command: str, env: Mapping[str, str]) -> list[Json]:
    """``sweeper COMMAND --format json``, run in this process: it needs no Graph."""
    result = CliRunner().invoke(sweeper_cli, [command, "--format", "json"], env=dict(env))
    if result.exit_code != 0:
        raise SystemExit(f"sweeper {command} failed ({result.exit_code}): {result.output}")
    rows: list[Json] = orjson.loads(result.stdout)
    return rows


def run_row(db: Path) -> Json:
    """The sweep's row of the runs table: what it read and stored."""
    return last_run_of(db)


@contextmanager
def work_folder(db: Path | None) -> Iterator[Path]:
    """Where the database, configuration and log go: beside ``db``, else a folder removed
    afterwards."""
    if db is not None:
        if db.exists():
            raise SystemExit(f"{db} exists already: each measurement starts a new database")
        db.parent.mkdir(parents=True, exist_ok=True)
        yield db.parent
        return
    with tempfile.TemporaryDirectory(prefix="sweeper-corpus-") as folder:
        yield Path(folder)


def sweep_tenant(tenant: Tenant, folder: Path, db: Path) -> Swept:
    """The real ``sweeper sweep`` of the corpus's whole date range, and its listings."""
    config = write_private(folder / "sweeper.toml", CONFIG)
    log = folder / "sweep.log"
    since, until = corpus_window(tenant)
    with FakeGraph(tenant) as fake:
        env = child_env(fake, config, db)
        started = time.monotonic()
        done = run_sweeper(["sweep", "--since", since, "--until", until], env, log)
        seconds = time.monotonic() - started
        if done.returncode not in (0, 1):  # 1: some mailboxes failed, the rest were swept
            tail = log.read_text(encoding="utf-8").splitlines()[-20:]
            raise SystemExit(f"sweeper sweep failed ({done.returncode}):\n" + "\n".join(tail))
    incidents, findings = listing("incidents", env), listing("findings", env)
    return Swept(run_row(db), done.returncode, incidents, findings, seconds)


def measure(tenant_path: Path, db: Path | None = None) -> Json:
    """Sweep the tenant file's corpus with the current sweeper; the report as data."""
    started = time.monotonic()
    data = read_tenant_file(tenant_path)
    tenant = tenant_of(data)
    loaded = time.monotonic() - started
    with work_folder(db) as folder:
        swept = sweep_tenant(tenant, folder, db or folder / "sweeper.db")
    return report(corpus_facts(tenant, tenant_path, data.get("conversion", {})), swept, loaded)


# -- the report -----------------------------------------------------------------------------


def rank(incident: Json) -> tuple[int, int, int]:
    """Most severe first, then the most addresses exposed, then the oldest id."""
    return (-LEVELS.index(incident["severity"]), -incident["unique_exposed"], incident["id"])


def by_severity(rows: Sequence[Json]) -> dict[str, int]:
    counts = Counter(r["severity"] for r in rows)
    return {level: counts.get(level, 0) for level in reversed(LEVELS)}


def incident_line(incident: Json) -> Json:
    return {
        "id": incident["id"],
        "severity": incident["severity"],
        "subject": incident["subject"],
        "sender": incident["sender"],
        "messages": incident["messages"],
        "unique_exposed": incident["unique_exposed"],
        "personal_share": incident["personal_share"] or 0.0,
        "reason": incident["reason"],
    }


def run_facts(swept: Swept) -> Json:
    keys = ("status", "mailboxes_total", "swept", "skipped", "failed", "messages_read",
            "findings_new", "incidents_touched", "throttled", "malformed")  # fmt: skip
    return {"exit_code": swept.exit_code, **{k: swept.run.get(k) for k in keys}}


def report(corpus: Json, m: Swept, load_seconds: float) -> Json:
    """The report as data: what ``render`` prints and ``--json`` writes."""
    ranked = sorted(m.incidents, key=rank)
    critical = [incident_line(i) for i in ranked if i["severity"] == "critical"]
    low_share = [c for c in critical if c["personal_share"] < LOW_PERSONAL_SHARE]
    small = [f for f in m.findings if f["visible_external_count"] < SMALL_LIST]
    return {
        "corpus": corpus,
        "code": code_version(),
        "run": run_facts(m),
        "seconds": {"load": round(load_seconds, 1), "sweep": round(m.seconds, 1)},
        "findings": len(m.findings),
        "incidents": len(m.incidents),
        "incidents_by_severity": by_severity(m.incidents),
        "critical": critical,
        "critical_under_10_percent_personal": [c["id"] for c in low_share],
        "findings_under_10_external_by_severity": by_severity(small),
        "top": [incident_line(i) for i in ranked[:TOP]],
    }


def percent(share: float) -> str:
    return f"{round(share * 100)}%"


def short(text: str | None, width: int) -> str:
    shown = terminal(text or "")
    return shown if len(shown) <= width else shown[: width - 1] + "…"


def render_counts(title: str, counts: Mapping[str, int]) -> str:
    return f"{title}: " + ", ".join(f"{level} {n}" for level, n in counts.items())


def render_critical(critical: Sequence[Json]) -> list[str]:
    lines = [f"Critical incidents ({len(critical)}; ! = under 10% personal mail):"]
    for c in critical:
        flag = "!" if c["personal_share"] < LOW_PERSONAL_SHARE else " "
        lines.append(
            f" {flag} #{c['id']:<5} {c['unique_exposed']:>5} exposed "
            f"{percent(c['personal_share']):>4} personal  {short(c['subject'], 70)}"
        )
    return lines


def render_top(top: Sequence[Json]) -> list[str]:
    lines = [f"Top {len(top)} incidents by severity:"]
    for i in top:
        lines.append(
            f"  #{i['id']:<5} {i['severity']:<8} {i['unique_exposed']:>5} exposed "
            f"{percent(i['personal_share']):>4} personal  {short(i['subject'], 60)}"
        )
        lines.append(f"         {short(i['reason'], 150)}")
    return lines


def render(r: Json) -> str:
    corpus, run, code = r["corpus"], r["run"], r["code"]
    flagged = r["critical_under_10_percent_personal"]
    lines = [
        f"Corpus {terminal(corpus['tenant_file'])}: {corpus['mailboxes']} mailboxes, "
        f"{corpus['messages']} sent messages, {corpus['since']} to {corpus['until']}",
        f"Sweeper {code['commit'] or '(no git)'}{' with changes' if code['changed'] else ''}",
        f"Sweep: {run['status']} (exit {run['exit_code']}), {run['swept']} mailboxes swept, "
        f"{run['skipped']} skipped, {run['failed']} failed; {run['messages_read']} messages read "
        f"in {r['seconds']['sweep']} s (tenant loaded in {r['seconds']['load']} s)",
        f"{r['findings']} findings in {r['incidents']} incidents",
        render_counts("Incidents by severity", r["incidents_by_severity"]),
        f"Critical with under 10% personal mail: {len(flagged)} (target 0)"
        + (f": #{', #'.join(str(i) for i in flagged)}" if flagged else ""),
        render_counts(
            f"Findings under {SMALL_LIST} visible external addresses",
            r["findings_under_10_external_by_severity"],
        ),
        "",
        *render_critical(r["critical"]),
        "",
        *render_top(r["top"]),
    ]
    return "\n".join(lines)


# -- command line ---------------------------------------------------------------------------


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("tenant", type=Path, help="a tenant file of tools/mbox_tenant.py")
    parser.add_argument("--json", action="store_true", help="print the report as JSON")
    parser.add_argument("--json-out", type=Path, help="also write the report as JSON here")
    parser.add_argument("--db", type=Path, help="keep the run's database here (a new file)")
    args = parser.parse_args(argv)
    result = measure(args.tenant, args.db)
    as_json = json_safe(orjson.dumps(result, option=orjson.OPT_INDENT_2).decode())
    if args.json_out is not None:
        write_private(args.json_out, as_json + "\n")
    print(as_json if args.json else render(result))
    return 0


if __name__ == "__main__":
    sys.exit(main())
