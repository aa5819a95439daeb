"""Every error sweeper raises on purpose, and the exit code each one ends a command with.

    SweeperError                 base; one line fit for a user; exit 3 (the run failed)
    ├── ConfigError              a wrong or missing setting; names the setting (exit 2)
    ├── DataFileError            a term, role or domain-class file that cannot be used;
    │                            names the file and line (exit 2)
    ├── UsageError               a request that cannot be done as asked (exit 2)
    │   ├── TriageError          an unknown incident, or a step triage does not allow
    │   └── PurgedError          the incident's addresses were removed (retention)
    ├── AlreadyRunning           another nightly run holds the lock (or the state blob), or
    │                            another process is sending the digest
    ├── NotFound                 no mailbox holds the message a lookup asked for
    ├── StateError               the blob holding the database refused (Azure Functions)
    ├── StorageError             the database or a file cannot be used as asked (exit 2)
    │   ├── NewerDatabase        the database was written by a newer sweeper (exit 2)
    │   ├── DatabaseBusy         another process kept the write lock too long (exit 3)
    │   └── DiskFull             no space left to write (exit 3: the run failed)
    ├── DeliveryError            the digest could not be delivered (or not for certain)
    ├── AlertDeliveryError       a Teams or webhook alert was refused, or had no answer
    └── GraphError               Microsoft Graph answered with an error or not at all
        ├── AuthError            sign-in failed: no token, so nothing can be swept
        ├── SignInRefused        the console's sign-in of a person failed, or gave no role
        ├── SignInUnavailable    Entra ID could not be reached for a person's sign-in
        ├── MailboxNotEnabled    the user has no Exchange Online mailbox (skipped, counted)
        ├── MailboxFailed        one mailbox could not be read; the run goes on without it
        └── IngestionError       Azure Monitor refused records for Sentinel, or did not answer

Exit code 1 is never an error's: it is a run that finished with some mailboxes failed
(:func:`exit_code_for` turns a finished run's statuses into its code).
:func:`describe_failure` turns any exception into one line and its exit code (the command
line and the scheduler use it); anything not raised on purpose is reported as an internal
error (exit 3), with its traceback at ``-vv``.
"""

from __future__ import annotations

import errno
import sqlite3
from typing import Literal

EXIT_OK, EXIT_PARTIAL, EXIT_CONFIG, EXIT_FAILED = 0, 1, 2, 3

RunStatus = Literal["running", "ok", "partial", "failed"]
MailboxStatus = Literal["swept", "skipped", "failed"]
# sending: written before delivery, so that a process killed mid-send leaves a trace (see
# sweeper.commands.digest); it becomes sent or failed, and is never a command's outcome.
DigestStatus = Literal["sending", "sent", "failed", "written"]  # written: built, not sent
AlertStatus = Literal["claimed", "sent", "failed", "pending"]  # per incident, alert key, channel


def exit_code_for(*statuses: str) -> int:
    """A finished run's exit code: 3 if any part failed, else 1 if any was partial, else 0."""
    if "failed" in statuses:
        return EXIT_FAILED
    return EXIT_PARTIAL if "partial" in statuses else EXIT_OK


class SweeperError(Exception):
    """Base class. ``str(error)`` is a single line shown to the user as is."""

    exit_code = EXIT_FAILED


class ConfigError(SweeperError):
    """A setting is wrong or missing. The message names the setting."""

    exit_code = EXIT_CONFIG

    def __init__(self, setting: str, problem: str) -> None:
        self.setting = setting
        self.problem = problem
        super().__init__(f"configuration error: {setting}: {problem}")


class DataFileError(SweeperError):
    """A term file (the lexicon), a roles file or a domain-class file that cannot be used.
    The message names the file, and the line where there is one."""

    exit_code = EXIT_CONFIG


class UsageError(SweeperError):
    """What was asked cannot be done: nothing was changed."""

    exit_code = EXIT_CONFIG


class TriageError(UsageError):
    """An unknown incident, or a step the workflow does not allow."""


class PurgedError(UsageError):
    """The addresses are gone: the retention period removed them."""


class AlreadyRunning(SweeperError):
    """Another nightly run holds the lock, or another process is sending the digest."""


class NotFound(SweeperError):
    """No mailbox holds the message asked for."""


class StateError(SweeperError):
    """The database blob could not be fetched, leased or stored back."""


class StorageError(SweeperError):
    """The database or a file could not be opened, created or written as asked."""

    exit_code = EXIT_CONFIG


class NewerDatabase(StorageError):
    """The database has schema changes this version of sweeper does not know."""


class DatabaseBusy(StorageError):
    """Another process held the database's write lock longer than sweeper waits."""

    exit_code = EXIT_FAILED


class DiskFull(StorageError):
    """No space was left to write: whatever was being written was not (or not all) kept."""

    exit_code = EXIT_FAILED


class DeliveryError(SweeperError):
    """The digest was not delivered, or Graph or the relay left it uncertain."""


class AlertDeliveryError(SweeperError):
    """A webhook (Teams Workflows, or a receiver of Standard Webhooks) refused an alert, or
    gave no answer after the retries. The message names the webhook by scheme and host only:
    a URL's path and query can hold its secret."""

    def __init__(
        self, message: str, *, status: int | None = None, out_of_time: bool = False
    ) -> None:
        self.status = status  # the last HTTP status answered, if any
        self.out_of_time = out_of_time  # the run's time for delivery ran out first
        super().__init__(message)


class GraphError(SweeperError):
    """Graph gave an error answer, a malformed answer, or none."""

    def __init__(
        self,
        message: str,
        *,
        status: int | None = None,
        code: str | None = None,
        retry_after: float | None = None,
    ):
        self.status = status
        self.code = code
        self.retry_after = retry_after  # seconds Graph asked to wait, when it said
        super().__init__(message)


class AuthError(GraphError):
    """No access token could be had, or Graph refused it for the whole tenant."""


class SignInRefused(GraphError):
    """Entra ID refused a person's sign-in to the console, or the account has no role."""


class SignInUnavailable(GraphError):
    """Entra ID could not be reached to start or finish a person's sign-in to the console."""

    def __init__(self, cause: BaseException) -> None:
        first = (str(cause).splitlines() or [""])[0][:200]
        super().__init__(
            f"Entra ID could not be reached to sign in ({type(cause).__name__}: {first}); "
            "try again later"
        )


class MailboxNotEnabled(GraphError):
    """404 MailboxNotEnabledForRESTAPI: an account without an Exchange Online mailbox."""


class MailboxFailed(GraphError):
    """One mailbox could not be read to the end of the window."""


class IngestionError(GraphError):
    """The Logs Ingestion API refused an upload or did not answer: records stay pending."""

    def __init__(
        self,
        message: str,
        *,
        status: int | None = None,
        code: str | None = None,
        out_of_time: bool = False,
    ) -> None:
        self.out_of_time = out_of_time  # the run's time for delivery ran out first
        super().__init__(message, status=status, code=code)


def describe_failure(exc: BaseException) -> tuple[str, int]:
    """One line for the user and the exit code, for any exception a command let out."""
    if isinstance(exc, SweeperError):
        return str(exc), exc.exit_code
    if isinstance(exc, OSError) and exc.errno == errno.ENOSPC:
        where = f" writing {exc.filename}" if exc.filename else ""
        return f"no space left on the disk{where}; nothing more was written", EXIT_FAILED
    if isinstance(exc, sqlite3.OperationalError):
        text = str(exc)
        if "full" in text:
            return "the database's disk is full; the last changes were not stored", EXIT_FAILED
        if "locked" in text or "busy" in text:
            return (
                "the database stayed busy (another sweeper command is writing); try again",
                EXIT_FAILED,
            )
        return f"the database could not be used: {text}", EXIT_FAILED
    if isinstance(exc, sqlite3.DatabaseError):
        return f"the database is damaged or not sweeper's: {exc}", EXIT_CONFIG
    if isinstance(exc, OSError):
        where = f" ({exc.filename})" if exc.filename else ""
        return f"{exc.strerror or exc}{where}", EXIT_FAILED
    if isinstance(exc, OverflowError):
        return f"a value is too large: {exc}", EXIT_CONFIG
    first = str(exc).strip().splitlines()[0] if str(exc).strip() else ""
    return f"internal error: {type(exc).__name__}: {first}".rstrip(": "), EXIT_FAILED
