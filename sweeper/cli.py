"""The ``sweeper`` command line: its table of commands, each with its options, its help
and a few lines calling its glue in :mod:`sweeper.commands`. The machinery under the
table (the group that turns a failure into one line, option types, ``say``) is in
:mod:`sweeper.cligroup`.

Exit codes: 0 all mailboxes swept; 1 some mailboxes failed (recorded, the rest swept);
2 a configuration or usage error (nothing written); 3 the run failed as a whole.
"""

from __future__ import annotations

import os
import sys
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING

import click

from sweeper import __version__, logs
from sweeper.cligroup import (
    LISTING_FORMAT,
    WHEN,
    Options,
    SweeperGroup,
    configure_logging,
    default_window,
    echo_listing,
    progress_for_sweep,
    say,
)
from sweeper.errors import EXIT_CONFIG, EXIT_OK, EXIT_PARTIAL, ConfigError
from sweeper.files import check_out_path
from sweeper.present.escape import terminal
from sweeper.rules.severity import LEVELS
from sweeper.rules.triage import STATUSES
from sweeper.when import iso, parse_span

# A command imports what it needs when it runs: `--help`, `--version` and the listings do
# not load the settings' checks, SQLite or the Graph SDK they do not use (tests/test_start.py).
if TYPE_CHECKING:
    from sqlite_utils import Database

    from sweeper.settings import Settings

MIN_DEMO_USERS = 8  # the demo tenant's planted cases need this many senders (fakegraph)
SQLITE_MAX_ID = 2**63 - 1


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
    configure_logging(verbose, log_format)
    ctx.obj = Options(config_path, verbose)


def _settings(ctx: click.Context, *, need_graph: bool = True) -> Settings:
    from sweeper.settings import load_settings

    options: Options = ctx.obj
    return load_settings(options.config_path, os.environ, need_graph=need_graph)


def _open(settings: Settings) -> Database:
    from sweeper.commands.database import open_database

    return open_database(settings)


def _existing_db(ctx: click.Context, settings: Settings | None = None) -> Database:
    from sweeper.commands.database import existing_database

    return existing_database(settings or _settings(ctx, need_graph=False))


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
    """What follows a sweep: its alerts, then the run to Sentinel (a line each, if any)."""
    from sweeper.commands.aftersweep import after_sweep

    for line in after_sweep(db, settings, os.environ, run_id):
        say(line)


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
    echo_listing(render(rows))


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
    echo_listing(render(rows))


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
    from sweeper.commands.database import protected
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
        check_out_path(report_path(settings, out, datetime.now(UTC)), protected(settings))
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
    from sweeper.commands.service import serve_schedule

    serve_schedule(_settings(ctx), os.environ)


@main.command()
@click.option("--send-test", is_flag=True, help="Also send a test message the digest's way.")
@click.pass_context
def doctor(ctx: click.Context, send_test: bool) -> None:
    """Check the set-up: sign-in, permissions, Graph access, database, reports; with fixes."""
    from sweeper.commands.preflight import check_set_up

    try:
        settings = _settings(ctx)
        tried = check_set_up(settings, os.environ, send_test=send_test)
    except ConfigError as exc:
        click.echo(f"✗ configuration: {terminal(str(exc))}")
        sys.exit(EXIT_CONFIG)
    click.echo("\n".join(tried.lines))  # each check's line escapes what it shows
    sys.exit(tried.exit_code)


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
    if bool(message_id) == bool(subject):
        raise click.UsageError("give --internet-message-id or --subject, not both or neither")
    if subject and since is None:
        raise click.UsageError("--subject needs --since")
    from sweeper.commands.reported import look_up_reported

    settings = _settings(ctx)
    db = _open(settings)
    report = look_up_reported(
        settings,
        os.environ,
        db,
        message_id=message_id,
        subject=subject,
        since=since,
        until=until or datetime.now(UTC),
    )
    say(report.summary())
    _after_sweep(settings, db, None)
    sys.exit(EXIT_PARTIAL if report.failed else EXIT_OK)


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
    echo_listing(render(rows))


@alerts.command("test")
@click.pass_context
def alerts_test(ctx: click.Context) -> None:
    """Send a test alert (about no incident) to each configured channel."""
    from sweeper.commands.preflight import try_alert_channels

    settings = _settings(ctx)
    if not settings.alerts.channels:
        raise ConfigError("alerts", "no channel is set: teams_url, webhook_url or mail = true")
    tried = try_alert_channels(_open(settings), settings, os.environ)
    for line in tried.lines:
        say(line)
    sys.exit(tried.exit_code)


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
    from sweeper.commands.incidentfiles import export_people_to, people_path

    settings = _settings(ctx, need_graph=False)
    path = people_path(settings, incident_id, fmt, out)
    content = export_people_to(_existing_db(ctx, settings), settings, incident_id, fmt, path)
    if path is None:
        click.echo(content, nl=False)
    else:
        click.echo(f"Wrote {path} (readable by its owner only; `sweeper purge` removes it).")


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
    from sweeper.commands.database import protected
    from sweeper.commands.incidentfiles import worksheet_to

    settings = _settings(ctx, need_graph=False)
    if out is not None:
        check_out_path(out, protected(settings))
    text = worksheet_to(_existing_db(ctx, settings), settings, incident_id, fmt, out)
    if out is None:
        click.echo(text, nl=False)
    else:
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


if __name__ == "__main__":
    main()
