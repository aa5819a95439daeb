"""The machinery under the command table (:mod:`sweeper.cli`): the group that turns any
failure into one line and an exit code, the WHEN type, the listings' ``--format``, ``say``
for reports, the logging set-up, the sweep's default window and its progress bar, and
the arguments of the jobs' entry points (``jobs/``).

Like the table, it loads nothing a command does not use: the settings, SQLite and the Graph
SDK are imported by the commands that need them, when they run (tests/test_start.py).
"""

from __future__ import annotations

import logging
import os
import sys
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

import click

from sweeper import logs
from sweeper.errors import EXIT_CONFIG, EXIT_FAILED, EXIT_OK, SweeperError, describe_failure
from sweeper.present.escape import terminal
from sweeper.when import iso, parse_when

if TYPE_CHECKING:
    from sweeper.commands.sweep import MailboxResult, Window
    from sweeper.settings import Settings

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


def echo_listing(text: str) -> None:
    """Print a listing (a table, JSON or CSV) with one newline at its end, whatever it has."""
    click.echo(text, nl=not text.endswith("\n"))


def configure_logging(verbose: int, fmt: str) -> None:
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
