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
from typing import Any

import click

from sweeper import store
from sweeper.commands.digest import run_digest
from sweeper.commands.sweep import Window, run_summary, sweep_tenant
from sweeper.fakegraph import FakeGraph, generate_tenant
from sweeper.fakegraph.tenant import (
    CONSOLE_DPO,
    CONSOLE_VIEWER,
    DIGEST_SENDER,
    DPO,
    SENSITIVE_DEPARTMENTS,
    Tenant,
)
from sweeper.present import output
from sweeper.settings import DEFAULT_DATABASE, Settings, load_settings
from sweeper.store.incidents import list_incidents
from sweeper.when import iso


def run_demo(*, seed: int, users: int, env: Mapping[str, str], reports_dir: Path) -> int:
    tenant = generate_tenant(seed=seed, users=users)
    with FakeGraph(tenant) as fake:
        demo_env = {
            **{k: v for k, v in env.items() if k in ("SWEEPER_DB", "PATH", "HOME")},
            **fake.client_env(),
        }
        settings = _demo_settings(
            tenant,
            demo_env,
            {
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
    click.echo(
        f"The DPO's console on this database: `sweeper demo --console`, then open "
        f"http://127.0.0.1:{DEMO_CONSOLE_PORT}/ (signed in through the local Entra ID as the "
        "demo DPO, Margaret Osei; `--as viewer` for Tomasz Reid, who may only look)."
    )
    return report.exit_code or digest.exit_code


DEMO_CONSOLE_PORT = 8765


def serve_demo_console(
    *, seed: int, users: int, env: Mapping[str, str], port: int, viewer: bool
) -> int:
    """The console on the demo's database, signing in through the local Entra ID of the
    same demo tenant, as its DPO (or its viewer), until interrupted."""
    import uvicorn

    from sweeper.console.serve import bind, server_config
    from sweeper.console.web import create_app
    from sweeper.errors import ConfigError

    tenant = generate_tenant(seed=seed, users=users)
    database = Path(env.get("SWEEPER_DB") or DEFAULT_DATABASE)
    if not database.exists():
        raise ConfigError("SWEEPER_DB", f"{database} does not exist: run `sweeper demo` first")
    sock = bind("127.0.0.1", port)
    url = f"http://127.0.0.1:{sock.getsockname()[1]}"
    with FakeGraph(tenant) as fake:
        fake.sign_in_as = CONSOLE_VIEWER if viewer else CONSOLE_DPO
        fake.redirect_uris = [f"{url}/auth/callback"]
        demo_env = {"SWEEPER_DB": str(database), **fake.client_env()}
        settings = _demo_settings(tenant, demo_env, {"console": {"url": url}})
        app = create_app(settings, demo_env)
        who = "Tomasz Reid (viewer)" if viewer else "Margaret Osei (DPO)"
        click.echo(f"Console: {url}/ on {database}, signing in as {who}. Ctrl-C stops it.")
        uvicorn.Server(server_config(app)).run(sockets=[sock])
    return 0


def _demo_settings(tenant: Tenant, env: Mapping[str, str], sections: dict[str, Any]) -> Settings:
    """The demo's settings: the local Graph of ``tenant``, its domains, and ``sections``."""
    base: dict[str, Any] = {
        "graph": {"cloud": "custom", "auth": "client_secret"},
        "organisation": {"own_domains": list(tenant.own_domains)},
    }
    return load_settings(None, env, overrides={**base, **sections})
