"""The Graph listener's front door: routes, the request log, throttling, faults, batching.

:class:`GraphRouter` sends each request to its :class:`~sweeper.fakegraph.graphapi.GraphApi`
resource (or the managed identity endpoint), after the token check, and writes it in
``FakeGraph.log`` with the status it got. On the way it holds at most four requests at once
per mailbox (a fifth gets 429 ``ApplicationThrottled``) and serves the injected faults
(:mod:`~sweeper.fakegraph.faults`). ``$batch`` answers up to 20 relative GET requests, each
through the same routes, limits and faults.
"""

from __future__ import annotations

import asyncio
import re
from collections import Counter
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import orjson
from aiohttp import web
from aiohttp.test_utils import make_mocked_request

from sweeper.fakegraph.faults import Fault, gzip_bomb, make_odd
from sweeper.fakegraph.graphapi import CHALLENGE, EXPIRED, GraphApi, next_link
from sweeper.fakegraph.odata import ODataError, bad_request, json_answer
from sweeper.fakegraph.tenant import FakeUser

if TYPE_CHECKING:
    from sweeper.fakegraph.entra import Entra
    from sweeper.fakegraph.server import FakeGraph

MAILBOX_CONCURRENCY = 4
Handler = Callable[[web.Request, "re.Match[str]"], Awaitable[web.StreamResponse]]


@dataclass(frozen=True)
class Logged:
    method: str
    path: str
    query: dict[str, str]
    status: int
    mailbox: str | None


class GraphRouter:
    """The Graph listener of one :class:`~sweeper.fakegraph.server.FakeGraph`."""

    def __init__(self, fake: FakeGraph, entra: Entra, released: asyncio.Event) -> None:
        self.fake = fake
        self.entra = entra
        self.released = released  # set: requests held by a "hold" fault answer 503
        self.api = GraphApi(fake, entra)
        self.in_flight: Counter[str] = Counter()
        self.routes: list[tuple[re.Pattern[str], Handler]] = [
            (re.compile(r"^/v1\.0/users$", re.I), self.api.users),
            (re.compile(r"^/v1\.0/domains$", re.I), self.api.domains),
            (
                re.compile(r"^/v1\.0/users/([^/]+)/mailfolders/([^/]+)/messages$", re.I),
                self.api.messages,
            ),
            (re.compile(r"^/v1\.0/users/([^/]+)/sendmail$", re.I), self.api.send_mail),
            (re.compile(r"^/v1\.0/users/([^/]+)$", re.I), self.api.user),
            (re.compile(r"^/msi/token$", re.I), entra.managed_identity),
            (re.compile(r"^/v1\.0/\$batch$", re.I), self.batch),
        ]

    async def dispatch(self, request: web.Request, in_batch: bool = False) -> web.StreamResponse:
        """The answer to ``request`` (an item of a ``$batch`` when ``in_batch``), written in
        ``FakeGraph.log`` with its status."""
        path = re.sub(r"/{2,}", "/", request.path)  # the SDK may send /v1.0//users
        user: FakeUser | None = None
        status = 500
        try:
            for pattern, handler in self.routes:
                match = pattern.match(path)
                if match is None:
                    continue
                if pattern.pattern.startswith("^/v1\\.0/users/"):
                    user = self.fake.tenant.user(match.group(1))
                if handler != self.entra.managed_identity:
                    self.api.roles_for(request)
                response = await self._with_faults(request, path, user, handler, match, in_batch)
                status = response.status
                return response
            raise ODataError(400, "BadRequest", f"Resource not found for the segment '{path}'.")
        except ODataError as error:
            status = error.status
            return web.Response(
                status=error.status,
                body=error.body(request.headers.get("client-request-id")),
                headers={"Content-Type": "application/json", **error.headers},
            )
        finally:
            self.fake.log.append(
                Logged(
                    request.method,
                    path,
                    dict(request.query),
                    status,
                    user.upn.lower() if user else None,
                )
            )

    async def _with_faults(
        self,
        request: web.Request,
        path: str,
        user: FakeUser | None,
        handler: Handler,
        match: re.Match[str],
        in_batch: bool,
    ) -> web.StreamResponse:
        key = user.id if user else None
        if key is not None and self.in_flight[key] >= MAILBOX_CONCURRENCY:
            raise ODataError(
                429,
                "ApplicationThrottled",
                "Application is over its MailboxConcurrency limit.",
                {"Retry-After": "1"},
            )
        if key is not None:
            self.in_flight[key] += 1
        try:
            if self.fake.latency:  # the network and the server's work, while the request is open
                await asyncio.sleep(self.fake.latency)
            fault = next((f for f in self.fake.faults if f.matches(path, user)), None)
            if fault is None:
                return await handler(request, match)
            fault.hit(user)
            return await self._go_wrong(fault, request, user, handler, match, in_batch)
        finally:
            if key is not None:
                self.in_flight[key] -= 1

    async def _go_wrong(
        self,
        fault: Fault,
        request: web.Request,
        user: FakeUser | None,
        handler: Handler,
        match: re.Match[str],
        in_batch: bool,
    ) -> web.StreamResponse:
        """Answer ``request`` the way ``fault`` says (see :mod:`~sweeper.fakegraph.faults`)."""
        if fault.kind == "status":
            headers = {}
            if fault.retry_after is not None:
                headers["Retry-After"] = str(fault.retry_after)
            raise ODataError(fault.status, fault.code, fault.message, headers)
        if fault.kind == "expire":
            self.entra.expire_all()
            raise ODataError(
                401, "InvalidAuthenticationToken", EXPIRED, {"WWW-Authenticate": CHALLENGE}
            )
        if fault.kind == "stall":
            await asyncio.sleep(fault.stall)
        if fault.kind == "hold":
            await self.released.wait()
            raise ODataError(503, "ServiceUnavailable", "The request was held.", {})
        response = await handler(request, match)
        if not isinstance(response, web.Response):
            return response  # already streamed: nothing more can go wrong with it
        body = bytes(response.body) if response.body else b""  # type: ignore[arg-type]
        if fault.kind == "truncate":
            response.body = body[: len(body) // 2]
        elif fault.kind == "junk":
            page = orjson.loads(body)
            page["value"] += [None, "not a message", 42]
            response.body = orjson.dumps(page)
        elif fault.kind == "odd" and user is not None:
            response.body = orjson.dumps(make_odd(orjson.loads(body), user))
        elif fault.kind == "reset":
            if in_batch:  # the connection is the batch's: all of its answer is cut off
                raise _Reset()
            return await _cut_off(request, body)
        elif fault.kind in ("repeat", "endless", "relink"):
            page = orjson.loads(body)
            page["@odata.nextLink"] = self._wrong_link(fault, request, page)
            response.body = orjson.dumps(page)
        elif fault.kind in ("bomb", "trickle"):
            if in_batch:  # the answer is the batch's: all of it is spoilt
                raise _Spoilt(fault)
            return await _spoilt(fault, request, body)
        return response

    def _wrong_link(self, fault: Fault, request: web.Request, page: dict[str, Any]) -> str:
        """The next link a ``repeat``, ``endless`` or ``relink`` fault serves."""
        if fault.kind == "relink":
            return fault.link or ""
        if fault.kind == "endless":
            if "@odata.nextLink" in page:
                return str(page["@odata.nextLink"])
            skip = int(request.query.get("$skip", "0")) + int(request.query.get("$top", "10"))
            return next_link(request, {"$skip": str(skip)})
        return f"http://{request.host}{request.path_qs}"

    async def batch(self, request: web.Request, _: re.Match[str]) -> web.StreamResponse:
        """JSON batching: up to 20 requests with relative URLs, answered one by one.

        Each item goes through the same routes, limits and faults as a request of its own,
        so an item can be a 429 inside a 200 batch answer, as in Graph.
        """
        if request.method != "POST":
            raise ODataError(405, "Request_BadRequest", "Only POST is allowed on $batch.")
        try:
            body = orjson.loads(await request.read())
            items = body["requests"]
        except (orjson.JSONDecodeError, KeyError, TypeError):
            raise bad_request("Invalid batch payload format.") from None
        if not isinstance(items, list) or not 1 <= len(items) <= 20:
            raise bad_request("Number of batch request steps must be between 1 and 20.")
        ids = [str(item.get("id")) for item in items if isinstance(item, dict)]
        if len(set(ids)) != len(items):
            raise bad_request("Batch request ids must be present and unique.")
        for item in items:
            url = str(item.get("url", ""))
            if url.startswith(("http://", "https://")) or item.get("method") != "GET":
                raise bad_request("Batch items take relative GET URLs here.")

        async def one(item: dict[str, Any]) -> dict[str, Any]:
            # The batch body is read, so the request cannot be cloned: make an item request
            # with the batch's own headers (its token) and the item's URL.
            inner = make_mocked_request(
                "GET", "/v1.0/" + str(item["url"]).lstrip("/"), headers=request.headers
            )
            answer = await self.dispatch(inner, in_batch=True)
            body = answer.body if isinstance(answer, web.Response) else None
            raw = bytes(body) if body else b""  # type: ignore[arg-type]
            retry_after = answer.headers.get("Retry-After")
            headers = {"Retry-After": retry_after} if retry_after else {}
            return {
                "id": str(item["id"]),
                "status": answer.status,
                "headers": {"Content-Type": "application/json", **headers},
                "body": orjson.loads(raw) if raw else None,
            }

        whole = orjson.dumps({"responses": [{"id": i, "status": 200} for i in ids]})
        try:
            responses = await asyncio.gather(*(one(item) for item in items))
        except orjson.JSONDecodeError:  # an item was cut short: so is the whole answer
            return web.Response(body=whole[: len(whole) // 2], content_type="application/json")
        except _Reset:
            return await _cut_off(request, whole)
        except _Spoilt as spoilt:
            return await _spoilt(spoilt.fault, request, whole)
        return json_answer({"responses": list(responses)})


class _Reset(Exception):
    """A batch item's connection fault: the whole batch answer is cut off."""


class _Spoilt(Exception):
    """A batch item's ``bomb`` or ``trickle`` fault: the whole batch answer is spoilt."""

    def __init__(self, fault: Fault) -> None:
        self.fault = fault


async def _spoilt(fault: Fault, request: web.Request, body: bytes) -> web.StreamResponse:
    """A ``bomb`` (a gzip answer inflating to ``fault.size``) or ``body`` trickling in."""
    if fault.kind == "bomb":
        return web.Response(
            body=gzip_bomb(fault.size),
            headers={"Content-Type": "application/json", "Content-Encoding": "gzip"},
        )
    return await _trickle(request, body, fault.pace)


async def _trickle(request: web.Request, body: bytes, pace: float) -> web.StreamResponse:
    """A 200 of ``body``, one byte every ``pace`` seconds, until done or the client leaves."""
    response = web.StreamResponse(status=200, headers={"Content-Type": "application/json"})
    response.content_length = len(body)
    await response.prepare(request)
    try:
        for at in range(len(body)):
            await response.write(body[at : at + 1])
            await asyncio.sleep(pace)
    except (ConnectionError, RuntimeError):
        pass  # the client gave up waiting, as it should
    return response


async def _cut_off(request: web.Request, body: bytes) -> web.StreamResponse:
    """Send the headers and half of ``body`` (a 200), then close the connection."""
    response = web.StreamResponse(status=200, headers={"Content-Type": "application/json"})
    response.content_length = len(body)
    await response.prepare(request)
    await response.write(body[: len(body) // 2])
    if request.transport is not None:
        request.transport.close()
    return response
