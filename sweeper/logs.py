"""Log lines fit for operations: human or JSON lines, a run id on each, nothing private.

Every line of one run (a command, or one nightly run inside ``sweeper schedule``) carries
the same ``run_id``, so a SIEM or Azure Monitor can put a night's lines together. What a
line says goes through :class:`Guard` first, on the handler, so library loggers are covered
too: addresses are masked as in the digest (the organisation's own mailboxes stay readable,
anyone else's becomes ``j***@gmail.com``), bearer tokens and JWTs are cut out, and so is
any secret handed to :func:`configure`.
"""

from __future__ import annotations

import logging
import re
import secrets
import sys
from collections.abc import Iterable
from contextvars import ContextVar
from typing import IO

from sweeper.addresses import (
    LOCAL_CHARS_WITH_BACKTICK,
    AddressScanner,
    mask_address,
    normalise_domain,
    within,
)

FORMATS = ("human", "json")
HUMAN = "%(asctime)s %(levelname)s [%(run_id)s] %(name)s: %(message)s"
LIBRARIES = ("azure", "httpx", "httpcore", "aiohttp", "msal", "kiota_http", "hpack", "h2")

_run_id: ContextVar[str] = ContextVar("sweeper_run_id", default="-")
# A quoted or plain local part (a backtick included), then the domain; in linear time.
_ADDRESSES = AddressScanner(LOCAL_CHARS_WITH_BACKTICK)
SHORT_SECRET = 6  # a secret shorter than this is cut out only where it stands alone
# An Authorization header's value, or a JWT (access tokens, client assertions). A JWT is
# looked for once per run of word characters, from its first "eyJ" (a later one in the same
# run ends where it ends, so fails or succeeds alike): searching from every "eyJ" of a long
# run read the run again each time, in quadratic time. What stands before it is kept.
_TOKENS = re.compile(
    r"(?i:bearer)\s++[\w.~+/=-]++"
    r"|(?<![\w-])(?P<before>(?>[\w-]*?(?=eyJ)))eyJ[\w-]{4,}+\.[\w-]{4,}+\.[\w-]*+"
)


def _token(match: re.Match[str]) -> str:
    return (match["before"] or "") + "[token]"


def new_run_id() -> str:
    """Start a run: every line logged from here (in this context) carries this id."""
    run_id = secrets.token_hex(6)
    _run_id.set(run_id)
    return run_id


def current_run_id() -> str | None:
    """The run id the log lines of this context carry, if a run was started."""
    run_id = _run_id.get()
    return None if run_id == "-" else run_id


class Guard(logging.Filter):
    """Stamps the run id on a record and takes out what must not reach a log."""

    def __init__(self, secret_values: Iterable[str] = ()) -> None:
        super().__init__()
        self.internal: set[str] = set()
        values = sorted({s for s in secret_values if s}, key=len, reverse=True)
        self._secrets = [s for s in values if len(s) >= SHORT_SECRET]
        short = [re.escape(s) for s in values if len(s) < SHORT_SECRET]
        self._short = re.compile(rf"(?<![\w])(?:{'|'.join(short)})(?![\w])") if short else None

    def clean(self, text: str) -> str:
        for value in self._secrets:
            text = text.replace(value, "[secret]")
        if self._short is not None:
            text = self._short.sub("[secret]", text)
        text = _TOKENS.sub(_token, text)
        return _ADDRESSES.sub(text, self._mask)

    def _mask(self, address: str, domain: str) -> str:
        if within(normalise_domain(domain), self.internal):
            return address
        return mask_address(address)

    def filter(self, record: logging.LogRecord) -> bool:
        record.run_id = _run_id.get()
        record.msg = self.clean(record.getMessage())
        record.args = ()
        if record.exc_info:
            record.exc_text = self.clean(logging.Formatter().formatException(record.exc_info))
            record.exc_info = None
        return True


_guard = Guard()
_handler: logging.Handler | None = None


def show_domains(domains: Iterable[str]) -> None:
    """The organisation's own domains: addresses there are not masked in the log."""
    _guard.internal.update(normalise_domain(d) for d in domains)


def configure(
    level: int,
    fmt: str = "human",
    *,
    libraries: int = logging.WARNING,
    secret_values: Iterable[str] = (),
    stream: IO[str] | None = None,
) -> None:
    """Send sweeper's log to ``stream`` (stderr) as ``fmt``; replaces an earlier set-up."""
    global _guard, _handler
    root = logging.getLogger()
    if _handler is not None:
        root.removeHandler(_handler)
    _guard = Guard(secret_values)
    handler = logging.StreamHandler(stream or sys.stderr)
    handler.addFilter(_guard)
    if fmt == "json":
        from pythonjsonlogger.json import JsonFormatter  # only when asked for

        handler.setFormatter(
            JsonFormatter(
                ["asctime", "levelname", "name", "run_id", "message"],
                rename_fields={"asctime": "time", "levelname": "level", "name": "logger"},
                datefmt="%Y-%m-%dT%H:%M:%S%z",
            )
        )
    else:
        handler.setFormatter(logging.Formatter(HUMAN))
    root.addHandler(handler)
    root.setLevel(level)
    _handler = handler
    for name in LIBRARIES:  # azure-identity warns of every failed try in its chains
        logging.getLogger(name).setLevel(max(libraries, logging.ERROR if name == "azure" else 0))
