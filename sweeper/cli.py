"""The ``sweeper`` command line. Each command is a few lines of glue.

Exit codes: 0 all mailboxes swept; 1 some mailboxes failed (recorded, the rest swept);
2 a configuration or usage error (nothing written); 3 the run failed as a whole.
"""

from __future__ import annotations

import asyncio
import logging
import os
import sys
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime
from functools import wraps
from pathlib import Path
from typing import Any, TypeVar, cast

import click
from sqlite_utils import Database

from . import __version__, logs, output, store
from .auth import gateway_for
from .config import Settings, load_settings
from .digest.run import run_digest
from .doctor import Check, run_checks
from .errors import ConfigError, StorageError, SweeperError
from .fakegraph.tenant import MIN_USERS
from .files import write_private
from .incident_store import list_incidents
from .lookup import LookupReport
from .lookup import lookup as run_lookup
from .nightly import AlreadyRunning, run_locked
from .reclassify import reclassify as rejudge
from .response import (
    PurgedError,
    describe,
    export_people,
    people_to_notify,
    render_worksheet,
    worksheet,
)
from .retention import purge as run_purge
from .severity import LEVELS
from .sweep import MailboxResult, Window, sweep_tenant
from .triage import STATUSES, TriageError, set_status
from .when import parse_span, parse_when

EXIT_OK, EXIT_PARTIAL, EXIT_CONFIG, EXIT_FAILED = 0, 1, 2, 3
F = TypeVar("F", bound=Callable[..., Any])
log = logging.getLogger("sweeper")


class When(click.ParamType):  # type: ignore[type-arg]
    name = "WHEN"

    def convert(self, value: Any, param: click.Parameter | None, ctx: click.Context | None) -> Any:
        if isinstance(value, datetime):
            return value
        try:
            return parse_when(str(value))
        except ValueError as exc:
            self.fail(str(exc), param, ctx)


WHEN = When()
LISTING_FORMAT = click.option(
    "--format",
    "fmt",
    type=click.Choice(["table", "json", "csv"]),
    default="table",
    show_default=True,
    help="table for people, json or csv for other programs.",
)


@dataclass
class Options:
    config_path: str | None


def exits_cleanly(func: F) -> F:
    """Turn sweeper's own errors into one line on stderr and the right exit code."""

    @wraps(func)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        try:
            return func(*args, **kwargs)
        except (ConfigError, StorageError, TriageError, PurgedError) as exc:
            click.echo(f"sweeper: {exc}", err=True)
            sys.exit(EXIT_CONFIG)
        except SweeperError as exc:
            click.echo(f"sweeper: {exc}", err=True)
            sys.exit(EXIT_FAILED)

    return cast(F, wrapper)


def _configure_logging(verbose: int, fmt: str) -> None:
    interactive = sys.stderr.isatty()
    level = (
        logging.DEBUG
        if verbose > 1
        else logging.INFO
        if verbose or not interactive
        else logging.WARNING
    )
    # Libraries speak only when asked: their messages are long and not for the DPO.
    logs.configure(
        level,
        fmt,
        libraries=logging.DEBUG if verbose > 2 else logging.WARNING,
        secret_values=[os.environ.get(name, "") for name in SECRET_VARIABLES],
    )
    logs.new_run_id()


SECRET_VARIABLES = (
    "AZURE_CLIENT_SECRET",
    "AZURE_CLIENT_CERTIFICATE_PASSWORD",
    "SWEEPER_SMTP_PASSWORD",
    "IDENTITY_HEADER",
)


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
@click.option(
    "--config",
    "config_path",
    type=click.Path(dir_okay=False),
    help="TOML configuration file (default: $SWEEPER_CONFIG, else built-in defaults).",
)
@click.option("-v", "--verbose", count=True, help="More log lines; repeat for debug output.")
@click.option(
    "--log-format",
    type=click.Choice(logs.FORMATS),
    default="human",
    show_default=True,
    envvar="SWEEPER_LOG_FORMAT",
    help="Log lines on stderr: for people, or JSON lines for a SIEM (each with the run id).",
)
@click.version_option(__version__, prog_name="sweeper")
@click.pass_context
def main(ctx: click.Context, config_path: str | None, verbose: int, log_format: str) -> None:
    """Find sent mail that exposed many outside addresses in To/Cc instead of Bcc."""
    _configure_logging(verbose, log_format)
    ctx.obj = Options(config_path)


def _settings(ctx: click.Context, *, need_graph: bool = True) -> Settings:
    options: Options = ctx.obj
    return load_settings(options.config_path, os.environ, need_graph=need_graph)


def _existing_db(ctx: click.Context, settings: Settings | None = None) -> Database:
    """The configured database, which must exist already: reading never creates one."""
    settings = settings or _settings(ctx, need_graph=False)
    if not settings.database.exists():
        raise StorageError(f"no database at {settings.database}: run `sweeper sweep` first")
    return store.open_db(settings.database)


def default_window(settings: Settings, since: datetime | None, until: datetime | None) -> Window:
    """``--since``/``--until``, else the configured window (24 h) plus the overlap, up to now."""
    end = until or datetime.now(UTC)
    start = since or end - settings.window - settings.overlap
    if start >= end:
        raise click.BadParameter(
            f"--since ({start:%Y-%m-%dT%H:%M:%SZ}) must be before "
            f"--until ({end:%Y-%m-%dT%H:%M:%SZ})"
        )
    return Window(start, end)


@contextmanager
def progress_for_sweep() -> Iterator[Callable[[MailboxResult, int, int], None]]:
    """A progress bar on a terminal; elsewhere the sweep's own log lines say the same."""
    if not sys.stderr.isatty():
        yield lambda result, done, total: None
        return
    bars: list[Any] = []

    def hook(result: MailboxResult, done: int, total: int) -> None:
        if not bars:
            bar = click.progressbar(length=total, label="Sweeping mailboxes", file=sys.stderr)
            bar.__enter__()
            bars.append(bar)
        bars[0].update(1)

    try:
        yield hook
    finally:
        if bars:
            bars[0].__exit__(None, None, None)


@main.command()
@click.option("--since", type=WHEN, help="Start of the window (date, time, or 36h / 7d ago).")
@click.option("--until", type=WHEN, help="End of the window (default: now).")
@click.option(
    "--mailbox",
    "mailboxes",
    multiple=True,
    metavar="UPN",
    help="Sweep only this mailbox (repeatable).",
)
@click.pass_context
@exits_cleanly
def sweep(
    ctx: click.Context, since: datetime | None, until: datetime | None, mailboxes: tuple[str, ...]
) -> None:
    """Read Sent Items for a window and record messages that exposed outside addresses."""
    settings = _settings(ctx)
    window = default_window(settings, since, until)
    db = store.open_db(settings.database)
    with progress_for_sweep() as hook:
        incremental = since is None and until is None and not mailboxes
        report = asyncio.run(
            sweep_tenant(
                settings, os.environ, db, window, list(mailboxes), hook, incremental=incremental
            )
        )
    click.echo(output.run_summary(report))
    sys.exit(report.exit_code)


@main.command()
@click.option("--since", type=WHEN, help="Only messages sent at or after this moment.")
@LISTING_FORMAT
@click.pass_context
@exits_cleanly
def findings(ctx: click.Context, since: datetime | None, fmt: str) -> None:
    """List stored findings (JSON: one object per message, see the README)."""
    db = _existing_db(ctx)
    rows = store.list_findings(db, since.strftime("%Y-%m-%dT%H:%M:%SZ") if since else None)
    render = {"json": output.findings_json, "csv": output.findings_csv}.get(
        fmt, output.findings_table
    )
    click.echo(render(rows))


@main.command()
@click.option("--seed", default=2012, show_default=True, help="Seed of the generated tenant.")
@click.option(
    "--users",
    default=40,
    show_default=True,
    type=click.IntRange(min=MIN_USERS),
    help="Ordinary users in the tenant.",
)
@click.option(
    "--reports",
    default="reports",
    show_default=True,
    type=click.Path(file_okay=False, path_type=Path),
    help="Directory for the demo's digest.",
)
@exits_cleanly
def demo(seed: int, users: int, reports: Path) -> None:
    """Sweep a built-in demo tenant through a local Graph and send its digest; no internet."""
    from .demo import run_demo

    sys.exit(run_demo(seed=seed, users=users, env=os.environ, reports_dir=reports))


@main.command()
@click.option("--since", type=WHEN, help="Only incidents whose last message was sent since then.")
@click.option(
    "--severity",
    type=click.Choice(LEVELS),
    help="Only incidents of this severity or worse.",
)
@click.option(
    "--include-suppressed", is_flag=True, help="Also list incidents an allowlist suppressed."
)
@click.option("--all", "show_all", is_flag=True, help="Also list false positives.")
@LISTING_FORMAT
@click.pass_context
@exits_cleanly
def incidents(
    ctx: click.Context,
    since: datetime | None,
    severity: str | None,
    include_suppressed: bool,
    show_all: bool,
    fmt: str,
) -> None:
    """List incidents: findings grouped by batch and thread, newest first (see the README)."""
    db = _existing_db(ctx)
    rows = list_incidents(
        db,
        since.strftime("%Y-%m-%dT%H:%M:%SZ") if since else None,
        severity,
        include_suppressed=include_suppressed,
        include_dismissed=show_all,
    )
    render = {"json": output.incidents_json, "csv": output.incidents_csv}.get(
        fmt, output.incidents_table
    )
    click.echo(render(rows))


@main.command()
@click.pass_context
@exits_cleanly
def reclassify(ctx: click.Context) -> None:
    """Judge stored findings again under the current configuration, without calling Graph."""
    settings = _settings(ctx, need_graph=False)
    db = _existing_db(ctx, settings)
    click.echo(rejudge(db, settings).summary())


@main.command()
@click.option(
    "--since-last", is_flag=True, help="Everything not reported in a sent digest (the default)."
)
@click.option("--since", type=WHEN, help="Instead: every incident last sent since then.")
@click.option("--send", is_flag=True, help="Deliver it (by Graph or SMTP, see [digest]).")
@click.option(
    "--dry-run", is_flag=True, help="Print the plain-text digest; write and send nothing."
)
@click.option(
    "--resend", is_flag=True, help="With --send: send the last sent digest's items again."
)
@click.option(
    "--out",
    type=click.Path(path_type=Path),
    help="Where to write the HTML (a file, or a directory); default reports/digest-DATE.html.",
)
@click.pass_context
@exits_cleanly
def digest(
    ctx: click.Context,
    since_last: bool,
    since: datetime | None,
    send: bool,
    dry_run: bool,
    resend: bool,
    out: Path | None,
) -> None:
    """Build the DPO's digest of new incidents and sweep health; with --send, deliver it."""
    if since_last and since:
        raise click.UsageError("--since-last and --since exclude each other")
    if send and dry_run:
        raise click.UsageError("--send and --dry-run exclude each other")
    if resend and not send:
        raise click.UsageError("--resend goes with --send")
    settings = _settings(ctx, need_graph=False)
    if send and settings.digest.transport == "graph":
        settings = _settings(ctx)
    db = _existing_db(ctx, settings)
    outcome = run_digest(
        db,
        settings,
        os.environ,
        since=since.strftime("%Y-%m-%dT%H:%M:%SZ") if since else None,
        send=send,
        dry_run=dry_run,
        resend=resend,
        out=out,
    )
    click.echo(outcome.text if outcome.text is not None else outcome.message)
    sys.exit(outcome.exit_code)


@main.command()
@click.pass_context
@exits_cleanly
def nightly(ctx: click.Context) -> None:
    """Run the nightly job: sweep the default window, then send the digest; one at a time."""
    settings = _settings(ctx)
    try:
        result = run_locked(settings, os.environ)
    except AlreadyRunning as exc:
        click.echo(f"sweeper: {exc}", err=True)
        sys.exit(EXIT_FAILED)
    click.echo("\n".join(result.lines))
    sys.exit(result.exit_code)


@main.command()
@click.pass_context
@exits_cleanly
def schedule(ctx: click.Context) -> None:
    """Stay running and run the nightly job on the configured cron schedule (see [schedule])."""
    from apscheduler.schedulers.blocking import BlockingScheduler

    from .schedule import add_nightly, cron_trigger, next_times, stop_on_sigterm

    settings = _settings(ctx)
    plan = settings.schedule
    scheduler = BlockingScheduler(timezone=plan.timezone)
    add_nightly(
        scheduler,
        lambda: scheduled_run(settings),
        plan.cron,
        plan.timezone,
        plan.misfire_grace_minutes * 60,
    )
    stop_on_sigterm(scheduler)
    logging.getLogger("sweeper").setLevel(logging.INFO)  # a service's log says what it does
    upcoming = next_times(cron_trigger(plan.cron, plan.timezone), datetime.now(UTC), 1)
    log.info(
        "sweeper schedule: '%s' in %s; next run at %s",
        plan.cron,
        plan.timezone,
        upcoming[0].isoformat() if upcoming else "never",
    )
    try:
        scheduler.start()
    finally:
        log.info("sweeper schedule stopped")


def scheduled_run(settings: Settings) -> None:
    """One nightly run from the scheduler, with a run id of its own; its outcome is logged."""
    logs.new_run_id()
    try:
        result = run_locked(settings, os.environ)
    except SweeperError as exc:
        log.error("nightly run failed: %s", exc)
        return
    for line in result.lines:
        log.info("%s", line)
    log.info("nightly run finished with exit code %d", result.exit_code)


@main.command()
@click.option("--send-test", is_flag=True, help="Also send a test message the digest's way.")
@click.pass_context
def doctor(ctx: click.Context, send_test: bool) -> None:
    """Check the set-up: sign-in, permissions, Graph access, database, reports; with fixes."""
    try:
        settings = _settings(ctx)
    except ConfigError as exc:
        click.echo(f"✗ configuration: {exc}")
        sys.exit(EXIT_CONFIG)
    checks = [
        Check("configuration", True, "loaded"),
        *asyncio.run(run_checks(settings, os.environ, send_test=send_test)),
    ]
    for check in checks:
        click.echo(check.line())
    failed = [c for c in checks if not c.ok]
    click.echo(f"\n{len(checks) - len(failed)} checks passed, {len(failed)} failed")
    sys.exit(EXIT_PARTIAL if failed else EXIT_OK)


if __name__ == "__main__":
    main()


@main.command()
@click.option("--internet-message-id", "message_id", help="The reported message's id header.")
@click.option("--subject", help="Instead: the reported subject (RE:/FW: prefixes ignored).")
@click.option("--since", type=WHEN, help="With --subject: start of the window to search.")
@click.option("--until", type=WHEN, help="With --subject: end of the window (default: now).")
@click.pass_context
@exits_cleanly
def lookup(
    ctx: click.Context,
    message_id: str | None,
    subject: str | None,
    since: datetime | None,
    until: datetime | None,
) -> None:
    """Find every copy and batch of a reported message in all mailboxes: one incident."""
    if bool(message_id) == bool(subject):
        raise click.UsageError("give --internet-message-id or --subject, not both or neither")
    if subject and since is None:
        raise click.UsageError("--subject needs --since")
    settings = _settings(ctx)
    db = store.open_db(settings.database)
    end = until or datetime.now(UTC)
    report = asyncio.run(
        _lookup(settings, db, message_id=message_id, subject=subject, since=since, until=end)
    )
    click.echo(report.summary())
    sys.exit(EXIT_PARTIAL if report.failed else EXIT_OK)


async def _lookup(settings: Settings, db: Database, **query: Any) -> LookupReport:
    async with gateway_for(settings, os.environ) as g:
        if query["message_id"]:
            return await run_lookup(db, g, settings, internet_message_id=query["message_id"])
        return await run_lookup(
            db, g, settings, subject=query["subject"], since=query["since"], until=query["until"]
        )


@main.group()
def incident() -> None:
    """Work on one incident: show it, move it through triage, export the people, report it."""


@incident.command("show")
@click.argument("incident_id", type=int)
@click.pass_context
@exits_cleanly
def incident_show(ctx: click.Context, incident_id: int) -> None:
    """Show an incident's figures, messages and triage history (no full addresses)."""
    db = _existing_db(ctx)
    click.echo(describe(db, incident_id))


@incident.command("set")
@click.argument("incident_id", type=int)
@click.argument("status", type=click.Choice(STATUSES))
@click.option("--note", required=True, help="Why: kept in the history and the worksheet.")
@click.option("--by", "by", required=True, help="Who decided (a name or role).")
@click.pass_context
@exits_cleanly
def incident_set(ctx: click.Context, incident_id: int, status: str, note: str, by: str) -> None:
    """Move an incident to STATUS (new → acknowledged → … → closed), recorded in its history."""
    db = _existing_db(ctx)
    set_status(db, incident_id, status, by=by, note=note)
    click.echo(f"Incident {incident_id} is now {status}.")


@incident.command("export")
@click.argument("incident_id", type=int)
@click.option(
    "--format", "fmt", type=click.Choice(["csv", "json"]), default="csv", show_default=True,
    help="csv for a spreadsheet (formulas neutralised), json for programs.",
)  # fmt: skip
@click.option(
    "--out",
    type=click.Path(path_type=Path),
    help="File to write (owner-only); default reports/incident-ID-people.FORMAT; - for stdout.",
)
@click.pass_context
@exits_cleanly
def incident_export(ctx: click.Context, incident_id: int, fmt: str, out: Path | None) -> None:
    """List the people to notify (Article 34): each exposed address once, with its messages."""
    settings = _settings(ctx, need_graph=False)
    db = _existing_db(ctx, settings)
    content = export_people(people_to_notify(db, incident_id), fmt)
    if str(out) == "-":
        click.echo(content, nl=False)
        return
    path = out or settings.digest.reports_dir / f"incident-{incident_id}-people.{fmt}"
    write_private(path, content)
    click.echo(f"Wrote {path} (readable by its owner only).")


@incident.command("report")
@click.argument("incident_id", type=int)
@click.option(
    "--format", "fmt", type=click.Choice(["md", "html"]), default="md", show_default=True,
    help="Markdown or HTML.",
)  # fmt: skip
@click.option("--out", type=click.Path(path_type=Path), help="File to write; default stdout.")
@click.pass_context
@exits_cleanly
def incident_report(ctx: click.Context, incident_id: int, fmt: str, out: Path | None) -> None:
    """Fill in the Article 33 breach worksheet for an incident, blanks marked for the DPO."""
    settings = _settings(ctx, need_graph=False)
    db = _existing_db(ctx, settings)
    text = render_worksheet(worksheet(db, incident_id, settings.severity), fmt)
    if out is None:
        click.echo(text, nl=False)
    else:
        write_private(out, text)
        click.echo(f"Wrote {out} (readable by its owner only).")


@main.command()
@click.option(
    "--older-than", help="Retention period, e.g. 180d (default: retention.addresses_days)."
)
@click.pass_context
@exits_cleanly
def purge(ctx: click.Context, older_than: str | None) -> None:
    """Remove the exposed addresses of closed incidents past retention; keep counts, history."""
    settings = _settings(ctx, need_graph=False)
    try:
        span = parse_span(older_than) if older_than else settings.retention
    except ValueError as exc:
        raise click.BadParameter(str(exc), param_hint="--older-than") from None
    db = _existing_db(ctx, settings)
    click.echo(run_purge(db, span, datetime.now(UTC)).summary())
