"""Every error sweeper raises on purpose.

    SweeperError                 base; its message is one line fit for a user
    ├── ConfigError              a wrong or missing setting (exit code 2); names the setting
    ├── StorageError             the database cannot be opened or written
    ├── DeliveryError            the digest could not be delivered (or not for certain)
    └── GraphError               Microsoft Graph answered with an error or not at all
        ├── AuthError            sign-in failed: no token, so nothing can be swept
        ├── MailboxNotEnabled    the user has no Exchange Online mailbox (skipped, counted)
        └── MailboxFailed        one mailbox could not be read; the run goes on without it

Anything else escaping to the command line is a bug.
"""

from __future__ import annotations


class SweeperError(Exception):
    """Base class. ``str(error)`` is a single line shown to the user as is."""


class ConfigError(SweeperError):
    """A setting is wrong or missing. The message names the setting."""

    def __init__(self, setting: str, problem: str) -> None:
        self.setting = setting
        self.problem = problem
        super().__init__(f"configuration error: {setting}: {problem}")


class StorageError(SweeperError):
    """The database could not be opened, created or written."""


class DeliveryError(SweeperError):
    """The digest was not delivered, or Graph or the relay left it uncertain."""


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


class MailboxNotEnabled(GraphError):
    """404 MailboxNotEnabledForRESTAPI: an account without an Exchange Online mailbox."""


class MailboxFailed(GraphError):
    """One mailbox could not be read to the end of the window."""
