"""A requests session whose answers are read whole within one deadline and a size bound.

MSAL (the console's sign-in of people) speaks HTTP through requests, whose timeout bounds
each read, not the answer, and which inflates a gzip answer whole. Here each answer is
read as it comes (what one read returns, never waiting for a full buffer), inflated a MiB
at a time by :class:`~sweeper.graph.network.BoundedBody`, and given up at the deadline.
"""

from __future__ import annotations

import time
from typing import Any

import httpx
import requests

from sweeper.graph.network import AnswerTooLarge, BoundedBody, Outbound


class BoundedSession(requests.Session):
    def __init__(self, outbound: Outbound, what: str) -> None:
        super().__init__()
        self._outbound = outbound
        self._what = what

    def request(self, method: str, url: str | bytes, *args: Any, **kwargs: Any) -> Any:
        limit = self._outbound.timeout
        deadline = time.monotonic() + limit
        kwargs["stream"] = True
        kwargs.setdefault("timeout", (self._outbound.connect_timeout, limit))
        response = super().request(method, url, *args, **kwargs)
        try:
            content = self._read(response, deadline, limit)
        finally:
            response.close()
        response._content = content
        response._content_consumed = True
        response.headers.pop("Content-Encoding", None)  # inflated here, within the bound
        return response

    def _read(self, response: requests.Response, deadline: float, limit: float) -> bytes:
        body = BoundedBody(
            response.headers.get("Content-Encoding"), self._outbound.max_answer_bytes, self._what
        )
        try:
            while chunk := response.raw.read1(1 << 16):
                body.feed(chunk)
                if time.monotonic() > deadline:
                    raise requests.Timeout(f"{self._what} did not come whole within {limit:.3g} s")
            return body.content()
        except (AnswerTooLarge, httpx.DecodingError) as exc:
            raise requests.exceptions.ContentDecodingError(str(exc)) from None
