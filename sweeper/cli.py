"""The ``sweeper`` command line. Each command is a few lines of glue.

Exit codes: 0 all mailboxes swept; 1 some mailboxes failed (recorded, the rest swept);
2 a configuration or usage error (nothing written); 3 the run failed as a whole.
"""

from __future__ import annotations

import logging
import os
import sys
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

import click

from sweeper import __version__, logs
from sweeper.errors import (
    EXIT_CONFIG,
    EXIT_FAILED,
    EXIT_OK,
    EXIT_PARTIAL,
    AlreadyRunning,
    ConfigError,
    SweeperError,
    describe_failure,
)
from sweeper.files import check_out_path, write_private
from sweeper.present.escape import terminal
from sweeper.rules.severity import LEVELS
from sweeper.rules.triage import STATUSES
from sweeper.when import iso, parse_span, parse_when

# A command imports what it needs when it runs: `--help`, `--version` and the listings do
# not load the settings' checks, SQLite or the Graph SDK they do not use (tests/test_start.py).
if TYPE_CHECKING:
    from sqlite_utils import Database

    from sweeper.commands.lookup import LookupReport
    from sweeper.commands.nightly import NightlyResult
    from sweeper.commands.sweep import MailboxResult, Window
    from sweeper.settings import Settings

log = logging.getLogger("sweeper")
MIN_DEMO_USERS = 8  # the demo tenant's planted cases need this many senders (fakegraph)
SQLITE_MAX_ID = 2**63 - 1


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
    verbose: int = 0


class SweeperGroup(click.Group):
    """The ``sweeper`` group: the one place where an exception becomes a line for the user.

    sweeper's own errors carry their exit code (see :mod:`sweeper.errors`). Anything else is
    turned into one line too: a full disk, a busy or broken database, an interrupt, or an
    internal error (exit 3), whose traceback is logged at ``-vv`` only.
    """

    def main(
        self,
        args: Sequence[str] | None = None,
        prog_name: str | None = None,
        complete_var: str | None = None,
        standalone_mode: bool = True,
        **extra: Any,
    ) -> Any:
        """Click's usage errors as one line too, with exit code 2 (click's own is several)."""
        run = super().main
        if not standalone_mode:
            return run(args, prog_name, complete_var, standalone_mode=False, **extra)
        try:
            code = run(args, prog_name, complete_var, standalone_mode=False, **extra)
        except click.exceptions.NoArgsIsHelpError as exc:
            exc.show()  # no command at all: the help itself, as click prints it
            sys.exit(EXIT_CONFIG)
        except click.UsageError as exc:
            where = f" (see `{exc.ctx.command_path} --help`)" if exc.ctx else ""
            click.echo(f"sweeper: {terminal(exc.format_message())}{where}", err=True)
            sys.exit(EXIT_CONFIG)
        except click.ClickException as exc:
            click.echo(f"sweeper: {terminal(exc.format_message())}", err=True)
            sys.exit(exc.exit_code)
        except click.Abort:
            click.echo("sweeper: aborted", err=True)
            sys.exit(EXIT_FAILED)
        sys.exit(code if isinstance(code, int) else EXIT_OK)

    def invoke(self, ctx: click.Context) -> Any:
        try:
            return super().invoke(ctx)
        except (click.exceptions.ClickException, click.exceptions.Exit, click.Abort):
            raise
        except Exception as exc:  # noqa: BLE001 - the top-level handler, by design
            options = ctx.obj if isinstance(ctx.obj, Options) else Options(None)
            line, code = describe_failure(exc)
            log.debug("the command failed", exc_info=exc)
            hint = "" if options.verbose > 1 or code != EXIT_FAILED else " (-vv shows more)"
            if not isinstance(exc, SweeperError):
                line += hint
            click.echo(f"sweeper: {terminal(line)}", err=True)
            ctx.exit(code)
        except KeyboardInterrupt:
            click.echo("sweeper: interrupted; what was stored so far is kept", err=True)
            ctx.exit(130)


def say(text: str) -> None:
    """Print a report to the terminal, each line through the terminal layer.

    Reports carry subjects, mailbox names, paths and Graph's error texts; none of them may
    move the cursor or recolour the screen (see :func:`sweeper.present.escape.terminal`).
    """
    click.echo("\n".join(terminal(line) for line in text.split("\n")))


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
    "SWEEPER_WEBHOOK_SECRET",
    "IDENTITY_HEADER",
)


@click.group(cls=SweeperGroup, context_settings={"help_option_names": ["-h", "--help"]})
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
    ctx.obj = Options(config_path, verbose)


def _settings(ctx: click.Context, *, need_graph: bool = True) -> Settings:
    from sweeper.settings import load_settings

    options: Options = ctx.obj
    return load_settings(options.config_path, os.environ, need_graph=need_graph)


def _open(settings: Settings) -> Database:
    """Open (creating if needed) the database and set right what dead runs left behind."""
    from sweeper import store
    from sweeper.store.recovery import recover

    db = store.open_db(settings.database)
    recovered = recover(
        db, settings.incident_window, settings.severity, reexposure=settings.reexposure_window
    )
    if recovered.runs or recovered.findings:
        log.warning("%s", recovered.summary())
    return db


def _existing_db(ctx: click.Context, settings: Settings | None = None) -> Database:
    """The configured database, which must exist already: reading never creates one."""
    from sweeper.store import require_existing

    settings = settings or _settings(ctx, need_graph=False)
    require_existing(settings.database)
    return _open(settings)


def _protected(settings: Settings) -> dict[Path, str]:
    from sweeper.files import own_files

    return own_files(settings.database, settings.config_path)


def default_window(settings: Settings, since: datetime | None, until: datetime | None) -> Window:
    """``--since``/``--until``, else the configured window (24 h) plus the overlap, up to now."""
    from sweeper.commands.sweep import Window

    end = until or datetime.now(UTC)
    try:
        start = since or end - settings.window - settings.overlap
    except OverflowError:
        raise click.BadParameter("the window reaches before the year 1") from None
    if start >= end:
        raise click.BadParameter(f"--since ({iso(start)}) must be before --until ({iso(end)})")
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
def sweep(
    ctx: click.Context, since: datetime | None, until: datetime | None, mailboxes: tuple[str, ...]
) -> None:
    """Read Sent Items for a window and record messages that exposed outside addresses."""
    import asyncio

    from sweeper.commands.sweep import run_summary, sweep_tenant

    settings = _settings(ctx)
    window = default_window(settings, since, until)
    db = _open(settings)
    with progress_for_sweep() as hook:
        incremental = since is None and until is None and not mailboxes
        report = asyncio.run(
            sweep_tenant(
                settings, os.environ, db, window, list(mailboxes), hook, incremental=incremental
            )
        )
    say(run_summary(report))
    _after_sweep(settings, db, report.run_id)
    sys.exit(report.exit_code)


def _after_sweep(settings: Settings, db: Database, run_id: int | None) -> None:
    """Alerts for what the sweep found, at once, then the run to Microsoft Sentinel, both
    within the run's ``alerts.budget_seconds``; a failing channel or SIEM is a line, not an
    exit code."""
    from sweeper.commands.alerts import alerts_after_sweep
    from sweeper.commands.siem import export_after_run

    alerted = alerts_after_sweep(db, settings, os.environ, run_id)
    line = alerted.summary()
    if line:
        say(line)
    siem = export_after_run(db, settings, os.environ, budget=alerted.left)
    if siem.enabled:
        say(siem.line)


@main.command()
@click.option("--since", type=WHEN, help="Only messages sent at or after this moment.")
@LISTING_FORMAT
@click.pass_context
def findings(ctx: click.Context, since: datetime | None, fmt: str) -> None:
    """List stored findings (JSON: one object per message, see the README)."""
    from sweeper import store
    from sweeper.present import output

    db = _existing_db(ctx)
    rows = store.list_findings(db, iso(since) if since else None)
    render = {"json": output.findings_json, "csv": output.findings_csv}.get(
        fmt, output.findings_table
    )
    text = render(rows)
    click.echo(text, nl=not text.endswith("\n"))


@main.command()
@click.option("--seed", default=2012, show_default=True, help="Seed of the generated tenant.")
@click.option(
    "--users",
    default=40,
    show_default=True,
    type=click.IntRange(min=MIN_DEMO_USERS, max=5000),
    help="Ordinary users in the tenant.",
)
@click.option(
    "--reports",
    default="reports",
    show_default=True,
    type=click.Path(file_okay=False, path_type=Path),
    help="Directory for the demo's digest.",
)
@click.option(
    "--console", "console_", is_flag=True, help="Instead: serve the DPO's console on its database."
)
@click.option("--port", default=8765, show_default=True, help="With --console: its port.")
@click.option(
    "--as",
    "as_",
    type=click.Choice(["dpo", "viewer"]),
    default="dpo",
    show_default=True,
    help="With --console: who the local Entra ID signs in.",
)
def demo(seed: int, users: int, reports: Path, console_: bool, port: int, as_: str) -> None:
    """Sweep a built-in demo tenant through a local Graph and send its digest; no internet."""
    from sweeper.demo import run_demo, serve_demo_console

    if console_:
        sys.exit(
            serve_demo_console(
                seed=seed, users=users, env=os.environ, port=port, viewer=as_ == "viewer"
            )
        )
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
@click.option(
    "--all",
    "show_all",
    is_flag=True,
    help="Also list false positives and incidents no longer at the threshold (reclassify).",
)
@LISTING_FORMAT
@click.pass_context
def incidents(
    ctx: click.Context,
    since: datetime | None,
    severity: str | None,
    include_suppressed: bool,
    show_all: bool,
    fmt: str,
) -> None:
    """List incidents: findings grouped by batch and thread, newest first (see the README)."""
    from sweeper.present import output
    from sweeper.store.incidents import list_incidents

    db = _existing_db(ctx)
    rows = list_incidents(
        db,
        iso(since) if since else None,
        severity,
        include_suppressed=include_suppressed,
        include_dismissed=show_all,
        include_inactive=show_all,
    )
    render = {"json": output.incidents_json, "csv": output.incidents_csv}.get(
        fmt, output.incidents_table
    )
    text = render(rows)
    click.echo(text, nl=not text.endswith("\n"))


@main.command()
@click.pass_context
def reclassify(ctx: click.Context) -> None:
    """Judge stored findings again under the current configuration, without calling Graph."""
    from sweeper.commands.reclassify import reclassify as rejudge

    settings = _settings(ctx, need_graph=False)
    db = _existing_db(ctx, settings)
    say(rejudge(db, settings).summary())


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
    from sweeper.commands.digest import report_path, run_digest

    if since_last and since:
        raise click.UsageError("--since-last and --since exclude each other")
    if send and dry_run:
        raise click.UsageError("--send and --dry-run exclude each other")
    if resend and not send:
        raise click.UsageError("--resend goes with --send")
    settings = _settings(ctx, need_graph=False)
    if send and settings.digest.transport == "graph":
        settings = _settings(ctx)
    if not dry_run:  # refuse a bad --out before anything is built or sent
        check_out_path(report_path(settings, out, datetime.now(UTC)), _protected(settings))
    db = _existing_db(ctx, settings)
    outcome = run_digest(
        db,
        settings,
        os.environ,
        since=iso(since) if since else None,
        send=send,
        dry_run=dry_run,
        resend=resend,
        out=out,
    )
    say(outcome.text if outcome.text is not None else outcome.message)
    sys.exit(outcome.exit_code)


@main.command()
@click.pass_context
def nightly(ctx: click.Context) -> None:
    """Run the nightly job: sweep the default window, then send the digest; one at a time."""
    from sweeper.commands.nightly import run_locked

    settings = _settings(ctx)
    result = run_locked(settings, os.environ)
    say("\n".join(result.lines))
    sys.exit(result.exit_code)


@main.command()
@click.pass_context
def schedule(ctx: click.Context) -> None:
    """Stay running and run the nightly job on the configured cron schedule (see [schedule])."""
    import threading

    from apscheduler.schedulers.background import BackgroundScheduler

    from sweeper.commands.schedule import add_frequent, add_nightly, next_times, stop_on_sigterm
    from sweeper.settings.cron import cron_trigger

    settings = _settings(ctx)
    plan = settings.schedule
    scheduler = BackgroundScheduler(timezone=plan.timezone)
    add_nightly(
        scheduler,
        lambda: scheduled_run(settings),
        plan.cron,
        plan.timezone,
        plan.misfire_grace_minutes * 60,
    )
    every = settings.alerts.sweep_every
    if every is not None:
        add_frequent(scheduler, lambda: frequent_run(settings), every)
    stop = threading.Event()
    stop_on_sigterm(stop)  # from here on a SIGTERM only sets ``stop``, however early it comes
    logging.getLogger("sweeper").setLevel(logging.INFO)  # a service's log says what it does
    upcoming = next_times(cron_trigger(plan.cron, plan.timezone), datetime.now(UTC), 1)
    scheduler.start()
    try:
        log.info(
            "sweeper schedule: '%s' in %s; next run at %s%s",
            plan.cron,
            plan.timezone,
            upcoming[0].isoformat() if upcoming else "never",
            f"; a frequent sweep every {every}" if every else "",
        )
        # A signal may be delivered to the scheduler's thread, which cannot interrupt a
        # wait in this one: Python runs the handler only when this thread next runs code.
        # Waking each second lets it run (a wait without a timeout hung now and then).
        while not stop.wait(timeout=1.0):
            pass
        log.info("signal received: stopping after the running job, if any")
    finally:
        scheduler.shutdown(wait=True)  # after the running job, if any
        log.info("sweeper schedule stopped")


def scheduled_run(settings: Settings) -> None:
    """One nightly run from the scheduler, with a run id of its own; its outcome is logged.

    Whatever goes wrong is one log line: the scheduler stays up for the next night.
    """
    from sweeper.commands.nightly import run_locked

    _logged_run("nightly run", lambda: run_locked(settings, os.environ))


def frequent_run(settings: Settings) -> None:
    """One frequent sweep from the scheduler; skipped while the nightly job runs."""
    from sweeper.commands.nightly import run_frequent

    _logged_run("frequent sweep", lambda: run_frequent(settings, os.environ), skip_busy=True)


def _logged_run(what: str, run: Callable[[], NightlyResult], *, skip_busy: bool = False) -> None:
    """Run a scheduled job with a run id of its own and log how it went, in lines; a job
    that fails is one error line (``skip_busy``: one that finds the lock taken, info)."""
    logs.new_run_id()
    try:
        result = run()
    except Exception as exc:  # noqa: BLE001 - one failed run must not stop the service
        if skip_busy and isinstance(exc, AlreadyRunning):
            log.info("%s skipped: %s", what, exc)
            return
        line, code = describe_failure(exc)
        log.debug("the %s failed", what, exc_info=exc)
        log.error("%s failed (exit code %d): %s", what, code, line)
        return
    for line in result.lines:
        log.info("%s", line)
    log.info("%s finished with exit code %d", what, result.exit_code)


@main.command()
@click.option("--send-test", is_flag=True, help="Also send a test message the digest's way.")
@click.pass_context
def doctor(ctx: click.Context, send_test: bool) -> None:
    """Check the set-up: sign-in, permissions, Graph access, database, reports; with fixes."""
    import asyncio

    from sweeper.commands.doctor import Check, run_checks

    try:
        settings = _settings(ctx)
        checks = [
            Check("configuration", True, "loaded"),
            *asyncio.run(run_checks(settings, os.environ, send_test=send_test)),
        ]
    except ConfigError as exc:
        click.echo(f"✗ configuration: {terminal(str(exc))}")
        sys.exit(EXIT_CONFIG)
    for check in checks:
        click.echo(check.line())
    failed = [c for c in checks if not c.ok]
    warned = [c for c in checks if c.ok and c.warning]
    click.echo(
        f"\n{len(checks) - len(failed)} checks passed ({len(warned)} with a warning), "
        f"{len(failed)} failed"
    )
    sys.exit(EXIT_PARTIAL if failed else EXIT_OK)


@main.command()
@click.option("--internet-message-id", "message_id", help="The reported message's id header.")
@click.option("--subject", help="Instead: the reported subject (RE:/FW: prefixes ignored).")
@click.option("--since", type=WHEN, help="With --subject: start of the window to search.")
@click.option("--until", type=WHEN, help="With --subject: end of the window (default: now).")
@click.pass_context
def lookup(
    ctx: click.Context,
    message_id: str | None,
    subject: str | None,
    since: datetime | None,
    until: datetime | None,
) -> None:
    """Find every copy and batch of a reported message in all mailboxes: one incident."""
    import asyncio

    if bool(message_id) == bool(subject):
        raise click.UsageError("give --internet-message-id or --subject, not both or neither")
    if subject and since is None:
        raise click.UsageError("--subject needs --since")
    settings = _settings(ctx)
    db = _open(settings)
    end = until or datetime.now(UTC)
    report = asyncio.run(
        _lookup(settings, db, message_id=message_id, subject=subject, since=since, until=end)
    )
    say(report.summary())
    _after_sweep(settings, db, None)
    sys.exit(EXIT_PARTIAL if report.failed else EXIT_OK)


async def _lookup(settings: Settings, db: Database, **query: Any) -> LookupReport:
    from sweeper.commands.lookup import lookup as run_lookup
    from sweeper.graph.signin import gateway_for

    async with gateway_for(settings.sign_in, os.environ) as g:
        if query["message_id"]:
            return await run_lookup(db, g, settings, internet_message_id=query["message_id"])
        return await run_lookup(
            db, g, settings, subject=query["subject"], since=query["since"], until=query["until"]
        )


@main.group(invoke_without_command=True)
@LISTING_FORMAT
@click.pass_context
def alerts(ctx: click.Context, fmt: str) -> None:
    """List the alerts sent and failed, newest first (`alerts test` tries each channel)."""
    if ctx.invoked_subcommand is not None:
        return
    from sweeper.present import output
    from sweeper.store.alerts import list_alerts

    db = _existing_db(ctx)
    rows = list_alerts(db)
    render = {"json": output.as_json, "csv": output.alerts_csv}.get(fmt, output.alerts_table)
    text = render(rows)
    click.echo(text, nl=not text.endswith("\n"))


@alerts.command("test")
@click.pass_context
def alerts_test(ctx: click.Context) -> None:
    """Send a test alert (about no incident) to each configured channel."""
    import asyncio

    from sweeper.commands.alerts import send_test

    settings = _settings(ctx)
    if not settings.alerts.channels:
        raise ConfigError("alerts", "no channel is set: teams_url, webhook_url or mail = true")
    db = _open(settings)
    outcome = asyncio.run(send_test(db, settings, os.environ))
    for channel in settings.alerts.channels:
        failed = [
            line
            for line in (*outcome.failed, *outcome.pending)
            if line.startswith(f"alerts.{channel}")
        ]
        say(f"{'✗' if failed else '✓'} {channel}" + (f": {failed[0]}" if failed else ": sent"))
    sys.exit(EXIT_FAILED if outcome.failed or outcome.pending else EXIT_OK)


INCIDENT_ID = click.IntRange(min=1, max=SQLITE_MAX_ID)


@main.group()
def incident() -> None:
    """Work on one incident: show it, move it through triage, export the people, report it."""


@incident.command("show")
@click.argument("incident_id", type=INCIDENT_ID)
@click.pass_context
def incident_show(ctx: click.Context, incident_id: int) -> None:
    """Show an incident's figures, messages and triage history (no full addresses)."""
    from sweeper.present.response import describe
    from sweeper.store.response import incident_view

    settings = _settings(ctx, need_graph=False)
    db = _existing_db(ctx, settings)
    click.echo(describe(incident_view(db, incident_id), settings.own_domains, settings.timezone))


@incident.command("set")
@click.argument("incident_id", type=INCIDENT_ID)
@click.argument("status", type=click.Choice(STATUSES))
@click.option("--note", required=True, help="Why: kept in the history and the worksheet.")
@click.option("--by", "by", required=True, help="Who decided (a name or role).")
@click.pass_context
def incident_set(ctx: click.Context, incident_id: int, status: str, note: str, by: str) -> None:
    """Move an incident to STATUS (new → acknowledged → … → closed), recorded in its history."""
    from sweeper.store.triage import set_status

    db = _existing_db(ctx)
    set_status(db, incident_id, status, by=by, note=note)
    click.echo(f"Incident {incident_id} is now {status}.")


@incident.command("export")
@click.argument("incident_id", type=INCIDENT_ID)
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
def incident_export(ctx: click.Context, incident_id: int, fmt: str, out: Path | None) -> None:
    """List the people to notify (Article 34): each exposed address once, with its messages."""
    from sweeper.present.response import export_people
    from sweeper.store.response import people_to_notify
    from sweeper.store.retention import record_export

    settings = _settings(ctx, need_graph=False)
    path = None if str(out) == "-" else out or _export_path(settings, incident_id, fmt)
    if path is not None:
        check_out_path(path, _protected(settings))
    db = _existing_db(ctx, settings)
    content = export_people(people_to_notify(db, incident_id), fmt)
    if path is None:
        click.echo(content, nl=False)
        return
    write_private(path, content, protected=_protected(settings))
    record_export(db, incident_id, path)
    click.echo(f"Wrote {path} (readable by its owner only; `sweeper purge` removes it).")


def _export_path(settings: Settings, incident_id: int, fmt: str) -> Path:
    return settings.digest.reports_dir / f"incident-{incident_id}-people.{fmt}"


@incident.command("report")
@click.argument("incident_id", type=INCIDENT_ID)
@click.option(
    "--format", "fmt", type=click.Choice(["md", "html"]), default="md", show_default=True,
    help="Markdown or HTML.",
)  # fmt: skip
@click.option("--out", type=click.Path(path_type=Path), help="File to write; default stdout.")
@click.pass_context
def incident_report(ctx: click.Context, incident_id: int, fmt: str, out: Path | None) -> None:
    """Fill in the Article 33 breach worksheet for an incident, blanks marked for the DPO."""
    from sweeper.present.response import render_worksheet
    from sweeper.store.response import worksheet

    settings = _settings(ctx, need_graph=False)
    if out is not None:
        check_out_path(out, _protected(settings))
    db = _existing_db(ctx, settings)
    sheet = worksheet(db, incident_id, settings.severity, now=datetime.now(UTC))
    text = render_worksheet(sheet, fmt, settings.own_domains, settings.timezone)
    if out is None:
        click.echo(text, nl=False)
    else:
        write_private(out, text, protected=_protected(settings))
        click.echo(f"Wrote {out} (readable by its owner only).")


@main.command()
@click.option(
    "--older-than", help="Retention period, e.g. 180d (default: retention.addresses_days)."
)
@click.pass_context
def purge(ctx: click.Context, older_than: str | None) -> None:
    """Remove the exposed addresses of closed incidents past retention; keep counts, history."""
    from sweeper.store.retention import purge as run_purge

    settings = _settings(ctx, need_graph=False)
    try:
        span = parse_span(older_than) if older_than else settings.retention
    except ValueError as exc:
        raise click.BadParameter(str(exc), param_hint="--older-than") from None
    db = _existing_db(ctx, settings)
    say(run_purge(db, span, datetime.now(UTC)).summary())


@main.group()
def siem() -> None:
    """Microsoft Sentinel: runs, findings and incidents sent through Azure Monitor ([siem])."""


@siem.command("send")
@click.pass_context
def siem_send(ctx: click.Context) -> None:
    """Send what Sentinel has not had yet: runs, failed mailboxes, findings, changed incidents."""
    from sweeper.commands.siem import export_after_run

    settings = _settings(ctx)
    if not settings.siem.enabled:
        raise ConfigError("siem.endpoint", "is not set: nothing to send to (see deploy/sentinel)")
    db = _existing_db(ctx, settings)
    outcome = export_after_run(db, settings, os.environ)
    say(outcome.line)
    sys.exit(outcome.exit_code)


@main.command()
@click.option("--host", help="Address to listen on (default: console.host, 127.0.0.1).")
@click.option("--port", type=int, help="Port to listen on (default: console.port, 8765).")
@click.pass_context
def console(ctx: click.Context, host: str | None, port: int | None) -> None:
    """Serve the DPO's web console ([console]; sign-in with Entra ID, see deploy/)."""
    from sweeper.console.serve import serve

    settings = _settings(ctx)
    _existing_db(ctx, settings)
    serve(settings, os.environ, host=host, port=port)


GLOBAL_OPTIONS_WITH_VALUE = ("--config", "--log-format")


def job_arguments(command: str, argv: Sequence[str]) -> list[str]:
    """Arguments for ``sweeper COMMAND`` from a job's own: global options go before it.

    ``python jobs/sweep.py --config X --since 7d`` means ``sweeper --config X sweep --since
    7d``: the group's options (``--config``, ``--log-format``, ``-v``) wherever they are given.
    """
    front: list[str] = []
    rest: list[str] = []
    items = iter(argv)
    for arg in items:
        name = arg.split("=", 1)[0]
        if name in GLOBAL_OPTIONS_WITH_VALUE:
            front.append(arg)
            if "=" not in arg:
                front.append(next(items, ""))
        elif arg == "--verbose" or (arg.startswith("-v") and set(arg[1:]) == {"v"}):
            front.append(arg)
        else:
            rest.append(arg)
    return [*front, command, *rest]


if __name__ == "__main__":
    main()
