"""Mailbox pages read with aiohttp reach the gateway as httpx answers and httpx errors.

A real HTTP server on loopback (the standard library's, in a thread) answers as each test
needs; what Graph's answers mean is the gateway's business, tested end to end against the
local Graph in ``test_faults.py``.
"""

from __future__ import annotations

import asyncio
import gzip
import threading
import time
from collections.abc import Callable, Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import httpx
import pytest
from support.receivers import closed_port

from sweeper.graph.network import AnswerTooLarge, Outbound
from sweeper.graph.pagefetch import AiohttpPages

Answer = Callable[[BaseHTTPRequestHandler], None]


class _Counted:
    def __init__(self) -> None:
        self.seen: list[tuple[str, int]] = []

    def count(self, request: httpx.Request, status: int) -> None:
        self.seen.append((request.url.path, status))


@pytest.fixture
def serve() -> Iterator[Callable[[Answer], str]]:
    servers: list[ThreadingHTTPServer] = []

    def start(answer: Answer) -> str:
        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:  # noqa: N802 (the standard library's name)
                answer(self)

            def log_message(self, *args: object) -> None:
                pass

        server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        server.daemon_threads = True
        threading.Thread(target=server.serve_forever, daemon=True).start()
        servers.append(server)
        return f"http://127.0.0.1:{server.server_address[1]}"

    yield start
    for server in servers:
        server.shutdown()
        server.server_close()


def _get(
    url: str,
    *,
    timeout: float = 5.0,
    counter: _Counted | None = None,
    max_answer_bytes: int = 64 * 1024 * 1024,
) -> httpx.Response:
    async def run() -> httpx.Response:
        outbound = Outbound(timeout=timeout, max_answer_bytes=max_answer_bytes)
        pages = AiohttpPages(counter or _Counted(), outbound, max_connections=4)
        try:
            return await pages.get(httpx.URL(url), {"Authorization": "Bearer t"})
        finally:
            await pages.aclose()

    return asyncio.run(run())


def test_a_throttled_answer_arrives_with_its_retry_after_and_its_body_decoded(
    serve: Callable[[Answer], str],
) -> None:
    body = b'{"error": {"code": "TooManyRequests"}}'

    def throttled(handler: BaseHTTPRequestHandler) -> None:
        packed = gzip.compress(body)
        handler.send_response(429)
        handler.send_header("Retry-After", "7")
        handler.send_header("Content-Encoding", "gzip")
        handler.send_header("Content-Length", str(len(packed)))
        handler.end_headers()
        handler.wfile.write(packed)

    counter = _Counted()
    response = _get(serve(throttled) + "/v1.0/users/u-1/messages?$top=5", counter=counter)

    assert response.status_code == 429
    assert response.headers["Retry-After"] == "7"
    assert response.content == body
    assert "Content-Encoding" not in response.headers  # decoded once, not again by httpx
    assert response.request.headers["Authorization"] == "Bearer t"
    assert counter.seen == [("/v1.0/users/u-1/messages", 429)]


def test_the_url_goes_out_exactly_as_graph_wrote_it(serve: Callable[[Answer], str]) -> None:
    asked: list[str] = []

    def record(handler: BaseHTTPRequestHandler) -> None:
        asked.append(handler.path)
        handler.send_response(200)
        handler.send_header("Content-Length", "2")
        handler.end_headers()
        handler.wfile.write(b"{}")

    path = "/v1.0/users/u-1/messages?%24skiptoken=a%2Bb%3D%3D&$filter=sentDateTime+ge+2026"
    _get(serve(record) + path)

    assert asked == [path]


def test_a_closed_port_is_a_connection_error() -> None:
    with pytest.raises(httpx.ConnectError):
        _get(f"http://127.0.0.1:{closed_port()}/v1.0/users")


def test_a_server_that_never_answers_is_a_timeout(serve: Callable[[Answer], str]) -> None:
    def silent(handler: BaseHTTPRequestHandler) -> None:
        time.sleep(2)

    with pytest.raises(httpx.TimeoutException):
        _get(serve(silent) + "/v1.0/users", timeout=0.3)


def test_a_body_cut_short_is_a_transport_error(serve: Callable[[Answer], str]) -> None:
    def cut(handler: BaseHTTPRequestHandler) -> None:
        handler.send_response(200)
        handler.send_header("Content-Length", "1000")
        handler.end_headers()
        handler.wfile.write(b'{"value": [')
        handler.wfile.flush()
        handler.connection.close()

    with pytest.raises(httpx.TransportError):
        _get(serve(cut) + "/v1.0/users")


def test_the_environments_proxy_is_taken_except_for_hosts_it_exempts() -> None:
    env = {"HTTPS_PROXY": "http://proxy.corp.example:3128", "NO_PROXY": "graph.internal.example"}
    pages = AiohttpPages(_Counted(), Outbound.of(env, timeout=1), max_connections=1)

    assert pages._proxy_for(httpx.URL("https://graph.microsoft.com/v1.0/users")) == (
        "http://proxy.corp.example:3128"
    )
    assert pages._proxy_for(httpx.URL("https://graph.internal.example/v1.0/users")) is None
    assert pages._proxy_for(httpx.URL("https://sub.graph.internal.example/v1.0/users")) is None


@pytest.mark.slow
def test_a_page_that_trickles_in_is_cut_off_at_the_timeout_for_the_whole_answer(
    serve: Callable[[Answer], str],
) -> None:
    def trickle(handler: BaseHTTPRequestHandler) -> None:
        handler.send_response(200)
        handler.send_header("Content-Length", "100")
        handler.end_headers()
        try:
            for _ in range(100):  # a byte every 0.2 s: each read is quick, the answer is not
                handler.wfile.write(b" ")
                handler.wfile.flush()
                time.sleep(0.2)
        except OSError:
            pass  # the client gave up, as it should

    started = time.monotonic()
    with pytest.raises(httpx.TimeoutException, match="whole answer"):
        _get(serve(trickle) + "/v1.0/users", timeout=1.0)

    assert time.monotonic() - started < 5  # 20 s if each read had its own timeout


@pytest.mark.slow
def test_a_gzip_bomb_is_refused_once_its_inflated_size_passes_the_bound(
    serve: Callable[[Answer], str],
) -> None:
    packed = gzip.compress(b" " * (32 * 1024 * 1024), compresslevel=9)  # 32 MiB from ~32 KiB

    def bomb(handler: BaseHTTPRequestHandler) -> None:
        handler.send_response(200)
        handler.send_header("Content-Encoding", "gzip")
        handler.send_header("Content-Length", str(len(packed)))
        handler.end_headers()
        handler.wfile.write(packed)

    with pytest.raises(AnswerTooLarge, match="larger than 1 MiB once decompressed"):
        _get(serve(bomb) + "/v1.0/users", max_answer_bytes=1024 * 1024)

    # The same answer within a larger bound is read whole.
    assert len(_get(serve(bomb) + "/v1.0/users").content) == 32 * 1024 * 1024
