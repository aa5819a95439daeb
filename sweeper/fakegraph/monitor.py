"""The local Logs Ingestion API: what Azure Monitor checks of an upload, and its answers.

:class:`IngestionEndpoint` serves
``POST /dataCollectionRules/{ruleId}/streams/{stream}?api-version=2023-01-01`` on a third
listener (HTTPS, the sign-in listener's throwaway CA) and answers as the service does:

* 401 without a valid, unexpired bearer token, or with one issued for another audience
  than ``https://monitor.azure.com`` (a Graph token is refused);
* 404 for a rule id or stream the rule does not declare; 403 when the app lacks the
  *Monitoring Metrics Publisher* role on the rule (``FakeGraph.ingestion_allowed``);
* 413 ``ContentLengthLimitExceeded`` when the body, sent or uncompressed, is over 1 MiB
  (the service's own message names 1048576 bytes);
* 400 for a body that is not gzip when it says so, not JSON, not an array of objects, or
  a record that does not match the stream's declared columns: a column the stream does not
  declare, a value of the wrong type, no ``TimeGenerated``. Azure Monitor itself drops
  undeclared columns silently; the local one refuses them, so that a column sweeper sends
  and the table lacks is a failing test, not data quietly lost;
* 204 with nothing else on success; the records are kept in ``FakeGraph.ingested[stream]``.

The declared stream is read from ``deploy/sentinel/SweeperEvents_CL.json``, the file the
deployment script creates the table and the rule from: the two cannot drift apart.
"""

from __future__ import annotations

import asyncio
import time
import zlib
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

import orjson
from aiohttp import web

from sweeper.fakegraph.odata import ODataError

if TYPE_CHECKING:
    from sweeper.fakegraph.entra import Entra
    from sweeper.fakegraph.server import FakeGraph

SCHEMA_FILE = Path(__file__).resolve().parents[2] / "deploy" / "sentinel" / "SweeperEvents_CL.json"
API_VERSION = "2023-01-01"
AUDIENCE = "https://monitor.azure.com"
MAX_BODY = 1_048_576  # bytes, sent and uncompressed
INFLATED_AT_MOST = 16 * MAX_BODY  # what the local endpoint decompresses of a body
BODY_BYTES = web.RequestKey("body_bytes", int)  # an upload's size, once decompressed


@dataclass(frozen=True)
class Upload:
    """One request to the Logs Ingestion endpoint, as the local one saw it."""

    stream: str
    status: int
    code: str | None  # the error code of a refusal
    sent_bytes: int  # the body as sent (gzip or not)
    body_bytes: int  # uncompressed; 0 when it was never decompressed
    records: int
    gzip: bool


class Refusal(ODataError):
    """An error answer of Azure Monitor's: status, code, message and headers as a Graph
    error has them, in Azure Monitor's own (shorter) body."""

    def __init__(
        self, status: int, code: str, message: str, headers: dict[str, str] | None = None
    ) -> None:
        super().__init__(status, code, message, headers)
        self.body_bytes = 0  # a body too large: its size, uncompressed as far as read

    def body(self, client_request_id: str | None = None) -> bytes:
        return orjson.dumps({"error": {"code": self.code, "message": self.message}})


def declared_streams(path: Path = SCHEMA_FILE) -> dict[str, dict[str, str]]:
    """Each stream the rule declares, with its columns and their types."""
    try:
        schema = orjson.loads(path.read_bytes())
    except (OSError, orjson.JSONDecodeError) as exc:
        raise Refusal(500, "InternalServerError", f"no stream declarations: {exc}") from None
    return {schema["stream"]: {c["name"]: c["type"] for c in schema["columns"]}}


def decode(raw: bytes, encoding: str | None) -> bytes:
    """The uncompressed body, refused when too large or not what it says it is."""
    if len(raw) > MAX_BODY:
        raise _too_large(len(raw))
    if (encoding or "").lower() != "gzip":
        return raw
    inflate = zlib.decompressobj(16 + zlib.MAX_WBITS)
    try:
        body = inflate.decompress(raw, INFLATED_AT_MOST)  # no more, however well it packs
    except zlib.error as exc:
        raise Refusal(400, "InvalidContentEncoding", f"The gzip body is invalid: {exc}") from None
    if len(body) > MAX_BODY:
        raise _too_large(len(body))
    return body


def records_of(body: bytes, stream: str, columns: dict[str, str]) -> list[dict[str, Any]]:
    """The records of a body, each checked against the stream's columns."""
    try:
        records = orjson.loads(body)
    except orjson.JSONDecodeError as exc:
        raise Refusal(400, "InvalidPayload", f"The body is not valid JSON: {exc}") from None
    if not isinstance(records, list) or not all(isinstance(r, dict) for r in records):
        raise Refusal(400, "InvalidPayload", "The body must be a JSON array of objects.")
    for index, record in enumerate(records):
        problem = _mismatch(record, columns)
        if problem:
            raise Refusal(
                400,
                "InvalidRecord",
                f"Record {index} does not match the declaration of stream '{stream}': {problem}",
            )
    return records


def _mismatch(record: dict[str, Any], columns: dict[str, str]) -> str | None:
    if record.get("TimeGenerated") is None:
        return "TimeGenerated is missing"
    for name, value in record.items():
        kind = columns.get(name)
        if kind is None:
            return f"column '{name}' is not declared"
        if value is not None and not _fits(value, kind):
            return f"column '{name}' is {kind}, not {type(value).__name__} {value!r:.60}"
    return None


def _fits(value: Any, kind: str) -> bool:
    if kind in ("int", "long"):
        return isinstance(value, int) and not isinstance(value, bool)
    if kind == "real":
        return isinstance(value, int | float) and not isinstance(value, bool)
    if kind == "boolean":
        return isinstance(value, bool)
    if kind == "string":
        return isinstance(value, str)
    if kind == "datetime":
        try:
            datetime.fromisoformat(value)
        except (TypeError, ValueError):
            return False
        return True
    return kind == "dynamic"


def _too_large(size: int) -> Refusal:
    refusal = Refusal(
        413,
        "ContentLengthLimitExceeded",
        f"Maximum allowed content length: {MAX_BODY} bytes (1 MB). "
        f"Provided content length: {size} bytes.",
    )
    refusal.body_bytes = size
    return refusal


class IngestionEndpoint:
    """``/dataCollectionRules/{rule}/streams/{stream}`` of one
    :class:`~sweeper.fakegraph.server.FakeGraph`: its faults apply, ``hold`` until released."""

    def __init__(self, fake: FakeGraph, entra: Entra, released: asyncio.Event) -> None:
        self.fake = fake
        self.entra = entra
        self.released = released

    async def ingest(self, request: web.Request) -> web.StreamResponse:
        stream = request.match_info["stream"]
        raw = await request.read()
        status, code, records = 204, None, []
        try:
            records = await self._ingestible(request, raw)
            self.fake.ingested.setdefault(stream, []).extend(records)
            return web.Response(status=204)
        except Refusal as refusal:
            status, code = refusal.status, refusal.code
            if refusal.body_bytes:
                request[BODY_BYTES] = refusal.body_bytes
            return web.Response(
                status=status,
                body=refusal.body(),
                headers={"x-ms-error-code": code, **refusal.headers},
                content_type="application/json",
            )
        finally:
            gzipped = request.headers.get("Content-Encoding", "").lower() == "gzip"
            body_bytes = request.get(BODY_BYTES, 0)
            self.fake.uploads.append(
                Upload(stream, status, code, len(raw), body_bytes, len(records), gzipped)
            )

    async def _ingestible(self, request: web.Request, raw: bytes) -> list[dict[str, Any]]:
        """The request's records, or the Refusal Azure Monitor would answer with."""
        if request.method != "POST":
            raise Refusal(405, "MethodNotAllowed", "Only POST is allowed.")
        if request.query.get("api-version") != API_VERSION:
            raise Refusal(400, "InvalidApiVersion", "The api-version is not supported.")
        token = self.entra.token_of(request)
        if token is None or token.expires < time.time():
            raise Refusal(401, "InvalidToken", "The access token is missing or expired.")
        if token.audience.rstrip("/") != AUDIENCE:
            raise Refusal(
                401,
                "InvalidTokenAudience",
                f"The token's audience '{token.audience}' is not {AUDIENCE}.",
            )
        fault = next(
            (f for f in self.fake.faults if f.path and f.matches(request.path, None)), None
        )
        if fault is not None:
            fault.hit(None)
            if fault.kind == "stall":
                await asyncio.sleep(fault.stall)
            elif fault.kind == "hold":
                await self.released.wait()
                raise Refusal(503, "ServiceUnavailable", "The request was held.")
            elif fault.kind == "reset" and request.transport is not None:
                request.transport.close()  # no answer at all: the client cannot know
                raise Refusal(502, "ConnectionReset", "The connection was reset.")
            elif fault.kind == "status":
                after = {"Retry-After": str(fault.retry_after)} if fault.retry_after else {}
                raise Refusal(fault.status, fault.code, fault.message, after)
        streams = declared_streams()
        if request.match_info["rule"] != self.fake.rule_id:
            raise Refusal(404, "NotFound", "The data collection rule was not found.")
        columns = streams.get(request.match_info["stream"])
        if columns is None:
            raise Refusal(404, "NotFound", "The rule declares no such stream.")
        if not self.fake.ingestion_allowed:
            raise Refusal(
                403,
                "OperationFailed",
                "The authentication token provided does not have access to ingest data for "
                f"the data collection rule with immutable Id '{self.fake.rule_id}'.",
            )
        body = decode(raw, request.headers.get("Content-Encoding"))
        request[BODY_BYTES] = len(body)
        return records_of(body, request.match_info["stream"], columns)
