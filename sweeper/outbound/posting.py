"""Posting alerts to webhooks: a Teams Workflows URL, or any receiver of Standard Webhooks.

:func:`post_json` posts a body and retries what may pass: a 429 or a 5xx answer, or no
answer at all (a refused connection, a timeout), after 0.5 s, 1 s, 2 s..., or after the
``Retry-After`` the receiver asked for. A ``Retry-After`` longer than :data:`LONGEST_WAIT`
is not slept out: the alert fails at once, to be recorded as failed. With a ``deadline``
(the run's time for delivery), no attempt outlasts it and no wait passes it: the error then
says ``out_of_time``, and the alert is left for the next run. Any other answer (a
redirect, which is not followed, or a 4xx) fails at once. Failing raises
:class:`~sweeper.errors.AlertDeliveryError`.

A webhook URL is a secret: a Workflows URL carries its signature (``sig=``) in the query.
Neither a message nor a log line here holds more of it than its scheme and host, and the
request is sent through an httpx transport rather than a client, since a client logs every
request's full URL. A Standard Webhooks receiver's attempts are each signed by
:func:`~sweeper.outbound.webhooks.signed_by`.
"""

from __future__ import annotations

import asyncio
import logging
import os
import re
import time
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from email.utils import parsedate_to_datetime
from urllib.parse import urlsplit

import httpx

from sweeper import __version__
from sweeper.errors import AlertDeliveryError
from sweeper.graph.network import TOTAL_TIMEOUT, BoundedTransport, Outbound
from sweeper.outbound.webhooks import Signer

log = logging.getLogger(__name__)

LONGEST_WAIT = 60.0  # seconds: a longer Retry-After fails the alert instead
FIRST_WAIT = 0.5  # then doubled: 0.5 s, 1 s, 2 s...

Sleep = Callable[[float], Awaitable[object]]


async def post_json(
    url: str,
    body: bytes,
    headers: Mapping[str, str],
    *,
    attempts: int = 4,
    timeout: float = 10,
    sleep: Sleep = asyncio.sleep,
    sign: Signer | None = None,
    transport: httpx.AsyncBaseTransport | None = None,
    outbound: Outbound | None = None,
    deadline: float | None = None,
) -> int:
    """POST ``body`` (JSON) to ``url``; the 2xx status it was answered with.

    ``sign``, when given, is called before each attempt with the attempt's Unix time and
    returns headers to add: Standard Webhooks signs every attempt with its own timestamp,
    under the same ``webhook-id`` (see :func:`signed_by`). ``outbound`` is the proxy and
    trust to go through: by default the environment's, as for every other client
    (:mod:`sweeper.graph.network`). ``deadline``, a :func:`time.monotonic` moment, bounds
    every attempt and wait. Raises AlertDeliveryError.
    """
    if attempts < 1:
        raise ValueError("attempts must be 1 or more")
    where = origin(url)
    own = transport is None
    if transport is None:  # each answer read whole within the timeout and the size bound
        outbound = outbound or Outbound.of(
            os.environ, ca_bundle=_ca_bundle(os.environ), timeout=timeout
        )
        transport = BoundedTransport(outbound.httpx_transport(url), outbound, "the answer")
    try:
        for attempt in range(1, attempts + 1):
            sent = {**_HEADERS, **headers, **(sign(int(time.time())) if sign else {})}
            cut = _left(deadline) < timeout  # this attempt ends at the deadline
            outcome = await _attempt(transport, url, body, sent, min(timeout, _left(deadline)))
            if outcome.delivered:
                return outcome.status or 0
            if not outcome.retry:
                raise AlertDeliveryError(
                    f"the webhook at {where} {outcome.problem}", status=outcome.status
                )
            wait = FIRST_WAIT * 2 ** (attempt - 1) if outcome.wait is None else outcome.wait
            if (cut and outcome.timed_out) or (attempt < attempts and wait >= _left(deadline)):
                raise AlertDeliveryError(
                    f"the webhook at {where} {outcome.problem}; left for the next run, as "
                    "this run's time for delivery ran out",
                    status=outcome.status,
                    out_of_time=True,
                )
            if attempt == attempts:
                raise AlertDeliveryError(
                    f"the webhook at {where} {outcome.problem}, after {attempts} attempts",
                    status=outcome.status,
                )
            log.warning(
                "the webhook at %s %s; trying again in %.1f s (attempt %d of %d)",
                where,
                outcome.problem,
                wait,
                attempt + 1,
                attempts,
            )
            await sleep(wait)
    finally:
        if own:
            await transport.aclose()
    raise AssertionError("unreachable: the last attempt returns or raises")


def _left(deadline: float | None) -> float:
    """Seconds left before ``deadline`` (at least a millisecond); unbounded without one."""
    return float("inf") if deadline is None else max(0.001, deadline - time.monotonic())


_HEADERS = {
    "content-type": "application/json",
    "user-agent": f"sweeper/{__version__} (alerts)",
}


@dataclass(frozen=True)
class _Outcome:
    """How one POST went."""

    status: int | None  # None: no answer at all
    problem: str = ""  # what went wrong, in words: "answered 503"
    retry: bool = False  # worth another attempt
    wait: float | None = None  # the Retry-After asked for, if any
    timed_out: bool = False  # no answer within the attempt's time

    @property
    def delivered(self) -> bool:
        return self.status is not None and 200 <= self.status <= 299


async def _attempt(
    transport: httpx.AsyncBaseTransport,
    url: str,
    body: bytes,
    headers: Mapping[str, str],
    timeout: float,
) -> _Outcome:
    try:
        request = httpx.Request(
            "POST",
            url,
            content=body,
            headers=headers,
            extensions={"timeout": httpx.Timeout(timeout).as_dict(), TOTAL_TIMEOUT: timeout},
        )
    except (httpx.InvalidURL, ValueError):
        return _Outcome(None, "has a URL that is not valid")
    try:
        response = await transport.handle_async_request(request)
        try:
            await response.aread()
        finally:
            await response.aclose()
    except httpx.UnsupportedProtocol:
        return _Outcome(None, "has a URL that is not http or https")
    except httpx.TimeoutException:
        return _Outcome(None, f"gave no answer within {timeout:.3g} s", retry=True, timed_out=True)
    except httpx.TransportError as exc:
        return _Outcome(None, f"could not be reached ({_what(exc)})", retry=True)
    return _answered(response.status_code, response.headers.get("retry-after"))


def _ca_bundle(env: Mapping[str, str]) -> str | None:
    """The CA file to trust instead of the system's, as the settings read it."""
    return env.get("SSL_CERT_FILE") or env.get("REQUESTS_CA_BUNDLE") or None


def _answered(status: int, retry_after_header: str | None) -> _Outcome:
    if 200 <= status <= 299:
        return _Outcome(status)
    if status == 429 or 500 <= status <= 599:
        wait = retry_after(retry_after_header)
        if wait is not None and wait > LONGEST_WAIT:
            problem = (
                f"answered {status} and asked to wait {wait:.0f} s, longer than sweeper "
                f"waits ({LONGEST_WAIT:.0f} s)"
            )
            return _Outcome(status, problem)
        return _Outcome(status, f"answered {status}", retry=True, wait=wait)
    if 300 <= status <= 399:
        return _Outcome(status, f"answered {status}: a redirect, not followed (fix the URL)")
    if status == 410:
        return _Outcome(status, "answered 410 Gone: it wants no more alerts")
    return _Outcome(status, f"answered {status}")


def _what(exc: httpx.TransportError) -> str:
    if isinstance(exc, httpx.ConnectError):
        return "no connection"
    return type(exc).__name__


def retry_after(value: str | None, now: datetime | None = None) -> float | None:
    """A ``Retry-After`` header in seconds from ``now``: delay-seconds or an HTTP date;
    None when absent or unreadable. A date in the past is 0."""
    if value is None or not value.strip():
        return None
    text = value.strip()
    if re.fullmatch(r"\d+(?:\.\d+)?", text):
        return float(text)
    try:
        moment = parsedate_to_datetime(text)
    except (TypeError, ValueError, IndexError):
        return None
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=UTC)
    return max(0.0, (moment - (now or datetime.now(UTC))).total_seconds())


def origin(url: str) -> str:
    """``https://host[:port]``: all of a webhook URL that a message or a log may show."""
    try:
        parts = urlsplit(url.strip())
        host, port = parts.hostname, parts.port
    except ValueError:
        return "(a URL that is not valid)"
    if not parts.scheme or not host:
        return "(a URL without a host)"
    shown = f"[{host}]" if ":" in host else host
    return f"{parts.scheme.lower()}://{shown}" + (f":{port}" if port else "")
