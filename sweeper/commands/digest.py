"""``sweeper digest``: build, write, deliver, and remember what was reported.

Exactly once: what a digest reported is recorded only after the delivery succeeded, in the
same transaction as the digest itself. A failed (or uncertain) delivery leaves everything
pending for the next digest; a second ``--send`` on the same day with nothing new sends
nothing, unless ``--resend``.
"""

from __future__ import annotations

import asyncio
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

from sqlite_utils import Database

from sweeper import store
from sweeper.commands.deliver import email_message, graph_payload, send_smtp
from sweeper.commands.settings import Settings
from sweeper.errors import DeliveryError, GraphError, exit_code_for
from sweeper.files import own_files, write_private
from sweeper.graph.signin import gateway_for
from sweeper.present.render import render_html, render_text
from sweeper.rules.digest import Digest
from sweeper.store import digests as queries


@dataclass
class Outcome:
    status: str  # sent | written | nothing | failed | dry-run
    message: str
    digest: Digest | None = None
    html_path: Path | None = None
    text: str | None = None

    @property
    def exit_code(self) -> int:
        return exit_code_for(self.status)


def run_digest(
    db: Database,
    settings: Settings,
    env: Mapping[str, str],
    *,
    since: str | None = None,
    send: bool = False,
    dry_run: bool = False,
    resend: bool = False,
    out: Path | None = None,
    now: datetime | None = None,
) -> Outcome:
    now = now or datetime.now(UTC)
    if send:
        settings.digest.check_sendable(env)
    digest = queries.build(db, now, since=since, resend=resend)
    if send and not resend and digest.nothing_new:
        if queries.sent_today(db, now):
            return Outcome(
                "nothing",
                "Nothing new since today's digest: nothing sent (--resend sends it again).",
                digest,
            )
        if not settings.digest.all_clear:
            return Outcome(
                "nothing", "Nothing new: no all clear sent (digest.all_clear = false).", digest
            )
    internal = (*store.verified_domains(db), *settings.own_domains)  # addresses shown whole
    zone = settings.timezone
    html, text = render_html(digest, internal, zone), render_text(digest, internal, zone)
    if dry_run:
        return Outcome("dry-run", digest.verdict, digest, text=text)
    path = write_private(
        report_path(settings, out, now),
        html,
        protected=own_files(settings.database, settings.config_path),
    )
    if not send:
        queries.record_digest(db, digest, status="written", transport="none", html_path=str(path))
        return Outcome("written", f"{digest.verdict}\nWritten to {path} (not sent).", digest, path)
    try:
        _deliver(settings, env, digest, html, text)
    except (DeliveryError, GraphError) as exc:
        queries.record_digest(
            db,
            digest,
            status="failed",
            transport=settings.digest.transport,
            html_path=str(path),
            error=str(exc),
        )
        return Outcome(
            "failed",
            f"The digest was not delivered: {exc}. Everything stays pending for the next one.",
            digest,
            path,
        )
    queries.record_digest(
        db, digest, status="sent", transport=settings.digest.transport, html_path=str(path)
    )
    recipients = ", ".join(settings.digest.recipients)
    return Outcome(
        "sent",
        f"{digest.verdict}\nSent by {settings.digest.transport} to {recipients}; "
        f"a copy is in {path}.",
        digest,
        path,
    )


def report_path(settings: Settings, out: Path | None, now: datetime) -> Path:
    name = f"digest-{now:%Y-%m-%d}.html"
    if out is None:
        return settings.digest.reports_dir / name
    return out / name if out.is_dir() else out


def _deliver(
    settings: Settings, env: Mapping[str, str], digest: Digest, html: str, text: str
) -> None:
    config = settings.digest
    sender = config.sender or ""
    if config.transport == "smtp":
        message = email_message(digest.subject_line, html, text, sender, config.recipients)
        send_smtp(config, env, message, settings.ca_bundle)
        return
    payload = graph_payload(digest.subject_line, html, config.recipients, config.save_to_sent_items)
    asyncio.run(_send_graph(settings, env, sender, payload))


async def _send_graph(
    settings: Settings, env: Mapping[str, str], sender: str, payload: dict[str, object]
) -> None:
    async with gateway_for(settings.sign_in, env) as gateway:
        await gateway.send_mail(sender, payload)
