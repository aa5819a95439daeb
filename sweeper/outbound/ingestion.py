"""Records to Microsoft Sentinel through Azure Monitor's Logs Ingestion API.

The one module that imports ``azure-monitor-ingestion``. Its async ``LogsIngestionClient``
signs in with the credential sweeper signs in to Graph with (a managed identity in Azure
Functions), for the Azure Monitor scope of the configured cloud, and gzips each call; its
proxy, CA bundle and timeouts are those of every client (:mod:`sweeper.graph.network`).

sweeper cuts the records into calls itself (:func:`calls`): the client splits a list at
1 MiB counting each record's JSON but not the ``", "`` between records, so a call of many
small records could exceed the service's 1 MB and be refused (413) every time. Each call
sweeper makes is one request, and :func:`upload` tells the caller which records it
accepted before the next one goes: the client's ``on_error`` callback names the records of
a request that failed, so a call that went partly wrong (were the client to split it) never
counts the failed part as sent. The first call that fails stops the upload: the endpoint
is down, or refuses sweeper, and the rest waits for the next export.

Retries are azure-core's, for POST: 500, 503 and 504, and any answer with ``Retry-After``
(429), at most three times; an answer asking to wait longer than :data:`LONGEST_WAIT`, or
past the target's ``deadline`` (a run's time for delivery), is not waited for. With a
deadline, the whole upload (sign-in, calls, retries and their waits) ends by it: what is
not accepted by then waits for the next export. A call with no answer (a timeout, a reset,
the deadline) may have been ingested: it is not counted as sent and goes again with the
next export (at least once, never lost).
"""

from __future__ import annotations

import asyncio
import json
import os
import socket
import ssl
import time
from collections.abc import Callable, Mapping, MutableMapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from azure.core.credentials_async import AsyncTokenCredential
from azure.core.exceptions import (
    ClientAuthenticationError,
    HttpResponseError,
    ServiceRequestError,
    ServiceResponseError,
)
from azure.core.pipeline.policies import AsyncRetryPolicy
from azure.monitor.ingestion import LogsUploadError
from azure.monitor.ingestion.aio import LogsIngestionClient

from sweeper.errors import AuthError, GraphError, IngestionError
from sweeper.graph.network import Outbound

CALL_BUDGET = 1_000_000  # bytes of JSON in one call: under the service's 1 MB, either way
LONGEST_WAIT = 180.0  # a longer Retry-After is not waited for: the next export sends it
RETRIES = 3

Accepted = Callable[[list[int]], None]


@dataclass(frozen=True)
class Target:
    """Where records go: a data collection endpoint, a rule's immutable id and a stream."""

    endpoint: str
    rule_id: str
    stream: str
    scope: str  # Azure Monitor's .default scope in the configured cloud
    ca_bundle: Path | None = None
    timeout: float = 60.0
    max_answer_mb: int = 64  # one answer, decompressed, at most (graph.max_answer_mb)
    # Proxy, trust and timeouts; None: the environment's, with ca_bundle and timeout above.
    outbound: Outbound | None = None
    # time.monotonic() by which the upload ends, waits and retries included (a run's time
    # for delivery); None: only the bounds above (a timeout per read, RETRIES, LONGEST_WAIT)
    deadline: float | None = None

    def left(self) -> float | None:
        """Seconds until the deadline (0 when past), or None without one."""
        return None if self.deadline is None else max(0.0, self.deadline - time.monotonic())


async def upload(
    target: Target,
    credential: AsyncTokenCredential,
    records: Sequence[dict[str, Any]],
    accepted: Accepted,
) -> None:
    """Send ``records`` in order, call by call; after each call, ``accepted(positions)``.

    Raises :class:`~sweeper.errors.IngestionError` (or ``AuthError`` when no token could be
    had) at the first call that failed; records from that call on were not accepted. One
    with ``out_of_time`` when the target's deadline came first.
    """
    slices = calls(records)
    if target.left() == 0:
        raise _out_of_time(target, "nothing could be sent to")
    timer = asyncio.timeout(target.left())
    waiting = "no token in time (the sign-in endpoint did not answer) for"
    try:
        async with timer:
            await _sign_in(target, credential)
            waiting = "no answer in time from"
            async with _client(target, credential) as client:
                for start, end in slices:
                    await _call(client, target, records, start, end, accepted)
    except TimeoutError:
        if not timer.expired():
            raise
        raise _out_of_time(target, waiting) from None


def _out_of_time(target: Target, what: str) -> IngestionError:
    return IngestionError(f"{what} {target.endpoint} (siem.endpoint)", out_of_time=True)


def calls(records: Sequence[dict[str, Any]], budget: int = CALL_BUDGET) -> list[tuple[int, int]]:
    """Consecutive ``(start, end)`` slices whose JSON body, as the client writes it, fits
    ``budget`` bytes: ``[`` and ``]``, each record's ``json.dumps``, ``", "`` between."""
    slices: list[tuple[int, int]] = []
    start, size = 0, 2
    for position, record in enumerate(records):
        length = record_bytes(record)
        if length + 2 > budget:
            raise IngestionError(
                f"a {record.get('Kind', 'record')} record of {length} bytes is larger than one "
                f"upload may carry ({budget} bytes); nothing was sent"
            )
        extra = length + (2 if position > start else 0)
        if position > start and size + extra > budget:
            slices.append((start, position))
            start, size, extra = position, 2, length
        size += extra
    if start < len(records):
        slices.append((start, len(records)))
    return slices


def record_bytes(record: Mapping[str, Any]) -> int:
    """The size of one record in a call's body, as the client writes it."""
    return len(json.dumps(record).encode("utf-8"))


def fits(record: Mapping[str, Any], budget: int = CALL_BUDGET) -> bool:
    """Whether the record can go at all: alone in a call, within ``budget``. A record that
    cannot is set aside by the caller, never sent (it would be refused for ever)."""
    return record_bytes(record) + 2 <= budget


async def _sign_in(target: Target, credential: AsyncTokenCredential) -> None:
    """A token for Azure Monitor first, so that a sign-in failure is told as one (the
    client asks the credential again and gets the token it caches)."""
    try:
        await credential.get_token(target.scope)
    except ClientAuthenticationError as exc:
        raise AuthError(f"no token for Azure Monitor ({target.scope}): {_line(exc)}") from None
    except ServiceRequestError as exc:
        raise AuthError(
            f"no token for Azure Monitor ({target.scope}): the sign-in endpoint cannot be "
            f"reached: {_reason(exc)}"
        ) from None


async def _call(
    client: LogsIngestionClient,
    target: Target,
    records: Sequence[dict[str, Any]],
    start: int,
    end: int,
    accepted: Accepted,
) -> None:
    failures: list[LogsUploadError] = []

    async def on_error(failure: LogsUploadError) -> None:
        failures.append(failure)

    chunk: list[MutableMapping[str, Any]] = list(records[start:end])
    await client.upload(target.rule_id, target.stream, chunk, on_error=on_error)
    failed = {id(log) for failure in failures for log in failure.failed_logs}
    ok = [start + i for i, record in enumerate(chunk) if id(record) not in failed]
    if ok:
        accepted(ok)
    if failures:
        raise error_for(failures[0].error, target)


class _Retry(AsyncRetryPolicy[Any, Any]):
    """azure-core's retries, but never a wait longer than :data:`LONGEST_WAIT` or past the
    target's deadline (azure-core sleeps out a ``Retry-After`` itself, whatever its size)."""

    def __init__(self, target: Target, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.target = target

    def is_retry(self, settings: dict[str, Any], response: Any) -> bool:
        wait = self.get_retry_after(response)
        if wait is not None and wait > _longest_wait(self.target):
            return False
        return bool(super().is_retry(settings, response))


def _longest_wait(target: Target) -> float:
    left = target.left()
    return LONGEST_WAIT if left is None else min(LONGEST_WAIT, left)


def _client(target: Target, credential: AsyncTokenCredential) -> LogsIngestionClient:
    outbound = target.outbound or Outbound.of(
        os.environ,
        ca_bundle=target.ca_bundle,
        timeout=target.timeout,
        max_answer_bytes=target.max_answer_mb * 1024 * 1024,
    )
    options: dict[str, Any] = {
        "credential_scopes": [target.scope],
        "retry_policy": _Retry(target, retry_total=RETRIES, retry_backoff_max=30),
        "connection_timeout": outbound.connect_timeout,
        "read_timeout": outbound.timeout,
        **outbound.azure_async_options(target.endpoint, "Azure Monitor's answer"),
    }
    return LogsIngestionClient(target.endpoint, credential, **options)


def error_for(exc: BaseException, target: Target) -> GraphError:
    """One line for what went wrong with a call, naming the setting to look at."""
    if isinstance(exc, GraphError):
        return exc
    if isinstance(exc, ClientAuthenticationError) and not _answered(exc, target):
        return AuthError(f"no token for Azure Monitor ({target.scope}): {_line(exc)}")
    if isinstance(exc, HttpResponseError) and exc.status_code is not None:
        return _refused(exc, target)
    if isinstance(exc, ServiceRequestError):
        return IngestionError(
            f"the Logs Ingestion endpoint {target.endpoint} (siem.endpoint) cannot be "
            f"reached: {_reason(exc)}"
        )
    if isinstance(exc, ServiceResponseError):
        return IngestionError(
            f"no answer from {target.endpoint} (siem.endpoint): {_line(exc)}; the records "
            "go again with the next export"
        )
    return IngestionError(f"the upload to {target.endpoint} failed: {_line(exc)}")


def _answered(exc: HttpResponseError, target: Target) -> bool:
    """Whether the Logs Ingestion endpoint gave this answer (not the sign-in endpoint)."""
    request = getattr(exc.response, "request", None)
    return str(getattr(request, "url", "")).startswith(target.endpoint)


def _refused(exc: HttpResponseError, target: Target) -> IngestionError:
    status = int(exc.status_code or 0)
    headers: Mapping[str, str] = getattr(exc.response, "headers", None) or {}
    code = (exc.error.code if exc.error else None) or headers.get("x-ms-error-code") or ""
    said = (exc.error.message if exc.error else None) or exc.reason or ""
    what = f"{status} {code}".strip()
    hint = {
        401: "Azure Monitor refused sweeper's token",
        403: (
            "sweeper's identity may not send to this rule: give it the Monitoring Metrics "
            "Publisher role on the data collection rule (deploy/sentinel)"
        ),
        404: (
            f"Azure Monitor has no rule {target.rule_id} (siem.rule_id) with a stream "
            f"{target.stream} (siem.stream) at {target.endpoint}"
        ),
        413: "an upload was larger than Azure Monitor takes",
    }.get(status)
    late = False
    if hint is None and status in (429, 503):
        after = headers.get("Retry-After")
        hint = "Azure Monitor is busy" + (f" and asked to wait {after} s" if after else "")
        late = _past_deadline(after, target)
        if late:
            hint += ", past the time for delivery"
    line = f"{hint or 'Azure Monitor refused the upload'} ({what})"
    if said:
        line += f": {_line(said)}"
    return IngestionError(line, status=status, code=code or None, out_of_time=late)


def _past_deadline(retry_after: str | None, target: Target) -> bool:
    """Whether a ``Retry-After`` in seconds asked for a wait past the target's deadline."""
    left = target.left()
    try:
        return left is not None and retry_after is not None and float(retry_after) > left
    except ValueError:
        return False


def _reason(exc: ServiceRequestError) -> str:
    """Why a connection failed, without the transport's object reprs."""
    inner = getattr(exc, "inner_exception", None)
    os_error = getattr(inner, "os_error", None) or getattr(inner, "certificate_error", None)
    if isinstance(os_error, ssl.SSLError):  # its errno is not the reason
        said = getattr(os_error, "verify_message", None) or os_error.reason or str(os_error)
        return f"TLS: {said} (SSL_CERT_FILE names the CA bundle to trust)"
    if isinstance(os_error, socket.gaierror):
        return str(os_error.strerror)  # "Name or service not known"
    if isinstance(os_error, OSError) and os_error.errno and os_error.errno > 0:
        return os.strerror(os_error.errno)  # "Connection refused"
    return _line(without_ssl_objects(str(inner or exc)))


def without_ssl_objects(text: str) -> str:
    """``text`` without the transport's ``ssl:<...>`` object reprs (and the space before).

    What ``re.sub(r"\\s*ssl:<[^>]*>", "", text)`` gives, in one pass: that pattern searched
    again from every character of a long run of white space, or of ``ssl:<`` without ``>``.
    """
    parts: list[str] = []
    last = 0
    while (at := text.find("ssl:<", last)) != -1:
        close = text.find(">", at)
        if close == -1:
            break  # no later one closes either
        before = text[last:at]
        parts.append(before.rstrip())
        last = close + 1
    parts.append(text[last:])
    return "".join(parts)


def _line(value: object) -> str:
    """The first line of a message, whitespace collapsed, at most 300 characters."""
    text = str(value).strip().splitlines()[0] if str(value).strip() else type(value).__name__
    text = " ".join(text.split())
    return text if len(text) <= 300 else text[:297] + "..."
