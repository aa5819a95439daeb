"""``sweeper digest``: build, write, deliver, and remember what was reported.

Exactly once. Before a digest is delivered, its row is committed ``sending`` with the
Message-ID it goes out with (made from its id, see :func:`~sweeper.rules.digest.message_id`)
and what it is about to report; once delivery succeeded, the row becomes ``sent`` and what it
reported is recorded, in one transaction. A failed delivery marks it ``failed`` and leaves
everything pending for the next digest; a second ``--send`` on the same day with nothing new
sends nothing, unless ``--resend``.

A process killed between the two (after Graph's 202, before the record) leaves the row
``sending``. The next ``--send`` settles it first (:func:`settle_interrupted`), once the
process is known to be gone:

- Graph, with a copy kept in Sent Items: the copy is looked for by its Message-ID, which
  carries the row's own random nonce (written before delivery): a copy of another digest
  that had the same id (in the database before it was restored from a backup) does not
  match. Found: the digest was sent; it is recorded so and not sent again. Absent: it was
  not accepted; it is marked failed and its items go in the digest sent now. Absent but
  interrupted less than :data:`SENT_ITEMS_LAG` ago, or Graph not answering: nothing is sent
  (exit 3), since Graph may still be delivering it.
- SMTP, or Graph without a copy in Sent Items (or with one, but the transport is no longer
  Graph, or the row was written before rows had a nonce): nothing can be looked at. The
  same digest (the same incidents and runs) is sent again with the same Message-ID and says
  it may be a repeat: at least once, never lost, and shown once by mail systems that drop a
  Message-ID they already have (the nonce keeps a digest of a restored database from being
  dropped as a repeat of one sent before the restore).

Two ``digest --send`` at once send one digest: the delivery is claimed in one write
transaction (:func:`sweeper.store.sending.start`), which refuses while another is on its way
or once one was sent after this one read what to report.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path

from sqlite_utils import Database

from sweeper import store
from sweeper.commands.deliver import deliver
from sweeper.errors import AlreadyRunning, DeliveryError, GraphError, SweeperError, exit_code_for
from sweeper.faultpoints import reached
from sweeper.files import own_files, write_private
from sweeper.graph.signin import gateway_for
from sweeper.present.render import render_html, render_text
from sweeper.processes import this_host
from sweeper.rules.digest import Digest, Plan
from sweeper.settings import Settings
from sweeper.store import digests as queries
from sweeper.store import sending
from sweeper.store.sending import Sending
from sweeper.when import iso

log = logging.getLogger(__name__)

# How long after a digest was handed to Graph its copy may still be missing from Sent
# Items: sendMail's 202 means accepted for delivery, and the copy is saved when the mail
# has gone. An interrupted digest absent from Sent Items sooner than this is left alone.
SENT_ITEMS_LAG = timedelta(minutes=10)


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


@dataclass
class Settled:
    """What settling the interrupted digests did: lines to show, and whether to stop."""

    lines: list[str] = field(default_factory=list)
    stop: bool = False  # nothing more may be sent now


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
    settled = Settled()
    if send:
        settings.digest.check_sendable(env)
        settled = settle_interrupted(db, settings, env, now)
        if settled.stop:
            return Outcome("failed", "\n".join(settled.lines))
    outcome = _digest(db, settings, env, since, send, dry_run, resend, out, now)
    if settled.lines:
        outcome.message = "\n".join([*settled.lines, outcome.message])
    return outcome


def _digest(
    db: Database,
    settings: Settings,
    env: Mapping[str, str],
    since: str | None,
    send: bool,
    dry_run: bool,
    resend: bool,
    out: Path | None,
    now: datetime,
) -> Outcome:
    basis = sending.latest(db)  # read first: a digest sent from here on refuses ours
    digest = queries.build(db, now, since=since, resend=resend)
    reached("digest-built")
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
    html, text = _render(db, settings, digest)
    if dry_run:
        return Outcome("dry-run", digest.verdict, digest, text=text)
    path = _write(settings, report_path(settings, out, now), html)
    if not send:
        queries.record_digest(db, digest, status="written", transport="none", html_path=str(path))
        return Outcome("written", f"{digest.verdict}\nWritten to {path} (not sent).", digest, path)
    config = settings.digest
    try:
        row = sending.start(
            db,
            digest,
            transport=config.transport,
            sender=config.sender or "",
            save_to_sent_items=config.transport == "graph" and config.save_to_sent_items,
            html_path=str(path),
            basis=basis,
        )
    except AlreadyRunning as exc:
        return Outcome("failed", str(exc), digest, path)
    return _deliver(db, settings, env, digest, (html, text), row, path)


def _deliver(
    db: Database,
    settings: Settings,
    env: Mapping[str, str],
    digest: Digest,
    bodies: tuple[str, str],
    row: Sending,
    path: Path,
) -> Outcome:
    """Deliver a digest recorded ``sending``, and record how that went."""
    try:
        deliver(settings, env, digest, *bodies, row.internet_message_id)
    except (DeliveryError, GraphError) as exc:
        sending.mark_failed(db, row.id, str(exc))
        return Outcome(
            "failed",
            f"The digest was not delivered: {exc}. Everything stays pending for the next one.",
            digest,
            path,
        )
    sending.mark_sent(db, row.id, Plan.of(digest))
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


def _render(db: Database, settings: Settings, digest: Digest) -> tuple[str, str]:
    internal = (*store.verified_domains(db), *settings.own_domains)  # addresses shown whole
    zone, console = settings.timezone, settings.console.url
    return render_html(digest, internal, zone, console), render_text(
        digest, internal, zone, console
    )


def _write(settings: Settings, path: Path, html: str) -> Path:
    return write_private(path, html, protected=own_files(settings.database, settings.config_path))


# -- digests a killed process left `sending` ------------------------------------------------


def settle_interrupted(
    db: Database, settings: Settings, env: Mapping[str, str], now: datetime
) -> Settled:
    """Find out what became of each digest left ``sending`` (see the module's docstring)."""
    settled = Settled()
    host = this_host()
    for row in sending.left_sending(db):
        reason = sending.interruption(row, host=host, now=now)
        if reason is None:
            settled.lines.append(
                f"Digest {row.id} is being sent right now (pid {row.pid} on {row.host}); "
                "this one sent nothing."
            )
            settled.stop = True
            break
        log.info("digest %d was left sending: %s", row.id, reason)
        # A copy to look for, that can be told for this row's (its nonce), and Graph signed
        # in to look (the transport may have changed).
        if row.save_to_sent_items and row.nonce and settings.digest.transport == "graph":
            _look_in_sent_items(db, settings, env, row, now, settled)
        else:
            _send_again(db, settings, env, row, now, settled)
        if settled.stop:
            break
    return settled


def _look_in_sent_items(
    db: Database,
    settings: Settings,
    env: Mapping[str, str],
    row: Sending,
    now: datetime,
    settled: Settled,
) -> None:
    try:
        copy = asyncio.run(_sent_copy(settings, env, row))
    except SweeperError as exc:
        settled.lines.append(
            f"Digest {row.id} was interrupted while being sent, and whether Graph accepted "
            f"it could not be checked ({exc}): nothing sent, so that it is not sent twice; "
            "run again when Graph answers."
        )
        settled.stop = True
        return
    if copy is not None:
        sending.mark_sent(db, row.id, row.plan, sent_at=_sent_at(copy.get("sentDateTime")))
        settled.lines.append(
            f"Digest {row.id} was interrupted after Graph accepted it: it is in "
            f"{row.sender}'s Sent Items, so it is recorded as sent and not sent again."
        )
        return
    written = datetime.fromisoformat(row.created_at)
    if now - written < SENT_ITEMS_LAG:
        settled.lines.append(
            f"Digest {row.id} was interrupted while being sent and is not in {row.sender}'s "
            "Sent Items yet, but Graph may still be delivering it: nothing sent, so that it "
            f"is not sent twice; run again after {iso(written + SENT_ITEMS_LAG)}."
        )
        settled.stop = True
        return
    sending.mark_failed(db, row.id, "interrupted before Graph accepted it; not in Sent Items")
    settled.lines.append(
        f"Digest {row.id} was interrupted before Graph accepted it (it is not in "
        f"{row.sender}'s Sent Items): marked failed; what it held is sent now."
    )


async def _sent_copy(
    settings: Settings, env: Mapping[str, str], row: Sending
) -> dict[str, object] | None:
    async with gateway_for(settings.sign_in, env) as gateway:
        return await gateway.sent_copy(row.sender, row.internet_message_id)


def _sent_at(value: object) -> str | None:
    """Graph's sentDateTime in sweeper's form; None (now) if it is not a moment."""
    try:
        return iso(datetime.fromisoformat(str(value)))
    except ValueError:
        return None


def _send_again(
    db: Database,
    settings: Settings,
    env: Mapping[str, str],
    row: Sending,
    now: datetime,
    settled: Settled,
) -> None:
    """Nothing to look at: the same digest again, with its Message-ID, marked a possible
    repeat. Its items are recorded as it shows them now."""
    digest = queries.build_planned(db, now, row.plan, row.period_since, repeat_of=row.created_at)
    html, text = _render(db, settings, digest)
    where = Path(row.html_path) if row.html_path else report_path(settings, None, now)
    path = _write(settings, where, html)
    answer = "the relay" if row.transport == "smtp" else "Graph"
    try:
        claimed = sending.resume(db, row, html_path=str(path), verdict=digest.verdict)
    except AlreadyRunning as exc:
        settled.lines.append(str(exc))
        settled.stop = True
        return
    outcome = _deliver(db, settings, env, digest, (html, text), claimed, path)
    if outcome.status != "sent":
        settled.lines.append(
            f"Digest {row.id} was interrupted before {answer} answered; sending it again "
            f"failed. {outcome.message}"
        )
        settled.stop = True
        return
    settled.lines.append(
        f"Digest {row.id} was interrupted before {answer} answered, which cannot be checked: "
        "sent again with the same Message-ID, marked as a possible repeat."
    )
