"""``sweeper demo``: a real sweep and digest of a generated tenant served by the local Graph.

Real msgraph-sdk, real azure-identity, real HTTP(S) on 127.0.0.1, a real SQLite file
(``$SWEEPER_DB``, else ``sweeper.db``), so ``sweeper findings`` afterwards shows what it found.
The digest is written to ``reports/`` and sent to the demo DPO through the local Graph.
The demo uses throwaway credentials of its own and never reads a production configuration.
"""

from __future__ import annotations

import asyncio
from collections.abc import Mapping
from datetime import timedelta
from pathlib import Path

import click

from sweeper import store
from sweeper.commands.digest import run_digest
from sweeper.commands.settings import load_settings
from sweeper.commands.sweep import Window, run_summary, sweep_tenant
from sweeper.fakegraph import FakeGraph, generate_tenant
from sweeper.fakegraph.tenant import DIGEST_SENDER, DPO, SENSITIVE_DEPARTMENTS
from sweeper.present import output
from sweeper.store.incidents import list_incidents
from sweeper.when import iso


def run_demo(*, seed: int, users: int, env: Mapping[str, str], reports_dir: Path) -> int:
    tenant = generate_tenant(seed=seed, users=users)
    with FakeGraph(tenant) as fake:
        demo_env = {
            **{k: v for k, v in env.items() if k in ("SWEEPER_DB", "PATH", "HOME")},
            **fake.client_env(),
        }
        settings = load_settings(
            None,
            demo_env,
            overrides={
                "graph": {"cloud": "custom", "auth": "client_secret"},
                "organisation": {"own_domains": list(tenant.own_domains)},
                "severity": {"sensitive_departments": list(SENSITIVE_DEPARTMENTS)},
                "digest": {
                    "transport": "graph",
                    "sender": DIGEST_SENDER,
                    "recipients": [DPO],
                    "reports_dir": str(reports_dir),
                },
            },
        )
        # Show what throttling looks like: one mailbox answers 429 twice, then recovers.
        throttled = next(u for u in tenant.users if u.upn.startswith("victim.care@"))
        fake.add_fault(mailbox=throttled.upn, status=429, times=2, retry_after=1)
        now = tenant.now
        window = Window(now - settings.window - settings.overlap, now + timedelta(seconds=1))
        click.echo(
            f"Demo tenant: {len(tenant.users)} accounts, {tenant.message_count()} sent messages, "
            f"served by the local Graph at {fake.graph_url}"
        )
        click.echo(f"Database: {settings.database}")
        db = store.open_db(settings.database)
        report = asyncio.run(sweep_tenant(settings, demo_env, db, window))
        digest = run_digest(db, settings, demo_env, send=True, now=now)
        delivered = len(fake.sent_mail)
    click.echo(run_summary(report))
    click.echo("")
    since = iso(window.since)
    click.echo(output.findings_table(store.list_findings(db, since)))
    click.echo("\nIncidents (batches and reply-alls of one mailing grouped):\n")
    click.echo(output.incidents_table(list_incidents(db, since)))
    click.echo(f"\nDigest: {digest.message}")
    click.echo(f"The local Graph received {delivered} sendMail request(s).")
    click.echo(
        "\nNext: open the digest's HTML file in a browser; `sweeper incidents --format json` "
        "or `sweeper findings --format json` list the same for programs."
    )
    return report.exit_code or digest.exit_code
