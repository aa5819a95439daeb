"""azure-core's aiohttp transport, each answer read whole under one deadline and a size bound.

azure-identity (sign-in) and the Logs Ingestion client send through azure-core, whose own
timeouts bound each read, not the answer (a server sending a byte at a time is never cut
off), and which inflates a gzip answer whole in memory. Here every answer is read as it
comes, inflated a MiB at a time by :class:`~sweeper.graph.network.BoundedBody`, within
``Outbound.timeout`` seconds from the request's start: as Graph's answers are
(:class:`~sweeper.graph.network.BoundedTransport`).
"""

from __future__ import annotations

import asyncio
from typing import Any

import httpx
from azure.core.exceptions import AzureError, ServiceResponseTimeoutError
from azure.core.pipeline.transport import AioHttpTransport

from sweeper.graph.network import AnswerTooLarge, BoundedBody, Outbound


class BoundedAioHttpTransport(AioHttpTransport):  # type: ignore[misc]
    """An aiohttp transport for azure-core clients whose answers are bounded in time and
    size (an answer too large is not asked for again: azure-core retries only its own
    request and response errors)."""

    def __init__(self, outbound: Outbound, what: str, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self._outbound = outbound
        self._what = what

    async def send(self, request: Any, *, stream: bool = False, **config: Any) -> Any:
        timeout = self._outbound.timeout
        try:
            async with asyncio.timeout(timeout):
                response = await super().send(request, stream=True, **config)
                if not stream:
                    await self._load(response)
        except TimeoutError:
            raise ServiceResponseTimeoutError(
                f"{self._what} did not come whole within {timeout:.3g} s"
            ) from None
        except (AnswerTooLarge, httpx.DecodingError) as exc:
            raise AzureError(str(exc)) from None
        return response

    async def _load(self, response: Any) -> None:
        body = BoundedBody(
            response.headers.get("Content-Encoding"), self._outbound.max_answer_bytes, self._what
        )
        try:
            async for chunk in response.internal_response.content.iter_chunked(1 << 16):
                body.feed(chunk)
        finally:
            response.internal_response.release()
        response._content = body.content()
        response._decompressed_content = True  # inflated here, within the bound
        if hasattr(response, "_set_read_checks"):  # azure.core.rest's response type
            await response.read()
