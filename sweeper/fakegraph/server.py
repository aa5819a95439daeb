"""A local stand-in for Microsoft Graph v1.0 and the Entra ID token endpoint.

Three listeners on 127.0.0.1: Graph over plain HTTP (the SDK allows http only on loopback),
sign-in over HTTPS with a throwaway CA (azure-identity insists on HTTPS), and Azure Monitor's
Logs Ingestion API over HTTPS with the same CA (:mod:`~sweeper.fakegraph.monitor`). It
serves a :class:`~sweeper.fakegraph.tenant.Tenant` and behaves as Graph is documented to:

* tokens by client secret, certificate assertion or managed identity, each for the
  audience asked (Graph's, or Azure Monitor's); a request without a valid, unexpired token
  is a 401; an app without the needed role is a 403;
* people's sign-in, the authorization code flow with PKCE and OpenID Connect, as MSAL runs
  it for a web app: ``/authorize`` signs in the tenant user ``login_hint`` names (there is
  no human at the page) and the code is redeemed at the token endpoint for an ID token
  with the user's app roles (:mod:`~sweeper.fakegraph.signin`);
* ``/users`` (``$select``, ``$filter=accountEnabled eq true``, ``$top`` up to 999, paging by
  ``$skiptoken``), ``/domains``, and ``/users/{id|upn}/mailFolders/sentitems/messages``
  (``$select``, ``$filter`` on ``sentDateTime``/``receivedDateTime``, ``$top`` 1-1000,
  default 10, newest first, paging by ``$skip``); every page but the last carries an
  absolute ``@odata.nextLink``;
* 404 ``MailboxNotEnabledForRESTAPI`` for an account without a mailbox, 404 for an unknown
  user, 400 for query options it does not know;
* ``sendMail`` captures the mail (:attr:`FakeGraph.sent_mail`) and, unless
  ``saveToSentItems`` is false (either casing; absent means true, as in Graph), puts a copy
  in the sender's Sent Items, with the client's ``internetMessageId`` if it gave one;
* at most four requests at once per mailbox (a fifth gets 429 ``ApplicationThrottled``);
* injected faults (:class:`~sweeper.fakegraph.faults.Fault`): any status with
  ``Retry-After``, a truncated body, junk or odd entries, a reset connection, a stalled
  answer, tokens expiring early, next links that repeat, never end or lead elsewhere, a
  gzip bomb, an answer that trickles in.

This module holds the settings and runs the listeners; each service is a module of its own:
Graph's routing, throttling and faults in :mod:`~sweeper.fakegraph.router`, its resources in
:mod:`~sweeper.fakegraph.graphapi`, Entra ID's token endpoint in :mod:`~sweeper.fakegraph.entra`
and its sign-in page in :mod:`~sweeper.fakegraph.signin`, the Logs Ingestion API in
:mod:`~sweeper.fakegraph.monitor`.

Use it as a context manager; it runs in a thread with its own event loop.
"""

from __future__ import annotations

import asyncio
import secrets
import shutil
import ssl
import tempfile
import threading
from dataclasses import dataclass, field
from pathlib import Path
from types import TracebackType
from typing import Any

import trustme
from aiohttp import web

from sweeper.fakegraph import monitor, signin
from sweeper.fakegraph.entra import Entra
from sweeper.fakegraph.faults import Fault
from sweeper.fakegraph.router import GraphRouter, Logged
from sweeper.fakegraph.tenant import Tenant

ROLES = ("Mail.ReadBasic.All", "User.Read.All", "Domain.Read.All", "Mail.Send")


@dataclass
class FakeGraph:
    """The local Graph and sign-in endpoints for one tenant."""

    tenant: Tenant
    client_id: str = field(default_factory=lambda: "00000000-5eed-4000-8000-" + "0" * 12)
    client_secret: str = field(default_factory=lambda: secrets.token_urlsafe(24))
    identity_header: str = field(default_factory=lambda: secrets.token_urlsafe(16))
    roles: tuple[str, ...] = ROLES
    token_lifetime: int = 3599
    latency: float = 0.0
    faults: list[Fault] = field(default_factory=list)
    log: list[Logged] = field(default_factory=list)
    sent_mail: list[dict[str, Any]] = field(default_factory=list)
    # The Logs Ingestion API: the data collection rule's immutable id, whether the app has
    # the Monitoring Metrics Publisher role on it, what it accepted, and every request.
    rule_id: str = field(default_factory=lambda: "dcr-" + secrets.token_hex(16))
    ingestion_allowed: bool = True
    ingested: dict[str, list[dict[str, Any]]] = field(default_factory=dict)
    uploads: list[monitor.Upload] = field(default_factory=list)
    # People's sign-in (see sweeper.fakegraph.signin): the app's registered redirect URIs
    # (none, as a new app registration has), whom the sign-in page signs in when the request
    # names nobody (a UPN), whether the app requires users to be assigned to it (here: to
    # hold one of its app roles), and how long an authorization code lives.
    redirect_uris: list[str] = field(default_factory=list)
    sign_in_as: str | None = None
    assignment_required: bool = False
    code_lifetime: int = signin.CODE_LIFETIME

    def __post_init__(self) -> None:
        self._released = asyncio.Event()  # set: requests held by a "hold" fault answer 503
        self._loop: asyncio.AbstractEventLoop | None = None
        self._thread: threading.Thread | None = None
        self._runners: list[web.AppRunner] = []
        self._dir = Path(tempfile.mkdtemp(prefix="sweeper-fakegraph-"))
        self.graph_port = 0
        self.login_port = 0
        self.ingestion_port = 0
        self.issued_tokens: list[str] = []
        codes: dict[str, signin.Grant] = {}
        self._entra = Entra(self, codes)
        self._sign_in = signin.SignInPage(self, codes)
        self._graph = GraphRouter(self, self._entra, self._released)
        self._ingestion = monitor.IngestionEndpoint(self, self._entra, self._released)

    # -- life cycle ---------------------------------------------------------------------

    @property
    def graph_url(self) -> str:
        return f"http://127.0.0.1:{self.graph_port}/v1.0"

    @property
    def authority(self) -> str:
        return f"https://127.0.0.1:{self.login_port}"

    @property
    def ingestion_url(self) -> str:
        """The data collection endpoint: ``siem.endpoint``."""
        return f"https://127.0.0.1:{self.ingestion_port}"

    @property
    def ca_path(self) -> Path:
        return self._dir / "ca.pem"

    def client_env(self) -> dict[str, str]:
        """Environment for a sweeper (or any azure-identity client) to use this fake."""
        return {
            "SWEEPER_GRAPH_URL": self.graph_url,
            "AZURE_AUTHORITY_HOST": self.authority,
            "AZURE_TENANT_ID": self.tenant.tenant_id,
            "AZURE_CLIENT_ID": self.client_id,
            "AZURE_CLIENT_SECRET": self.client_secret,
            "SSL_CERT_FILE": str(self.ca_path),
            "REQUESTS_CA_BUNDLE": str(self.ca_path),
        }

    def __enter__(self) -> FakeGraph:
        self.start()
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()

    def start(self) -> None:
        ca = trustme.CA()
        ca.cert_pem.write_to_path(str(self.ca_path))
        server_ctx = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
        ca.issue_cert("127.0.0.1", "localhost").configure_cert(server_ctx)
        self._loop = asyncio.new_event_loop()
        self._thread = threading.Thread(
            target=self._loop.run_forever, name="fake-graph", daemon=True
        )
        self._thread.start()
        asyncio.run_coroutine_threadsafe(self._serve(server_ctx), self._loop).result(30)

    def stop(self) -> None:
        if self._loop is None or self._thread is None:
            return
        asyncio.run_coroutine_threadsafe(self._shutdown(), self._loop).result(30)
        self._loop.call_soon_threadsafe(self._loop.stop)
        self._thread.join(10)
        self._loop.close()
        self._loop = None
        shutil.rmtree(self._dir, ignore_errors=True)

    async def _serve(self, tls: ssl.SSLContext) -> None:
        graph = web.Application()
        graph.router.add_route("*", "/{tail:.*}", self._graph.dispatch)
        login = web.Application()
        login.router.add_get("/{tenant}/v2.0/.well-known/openid-configuration", self._entra.openid)
        login.router.add_get("/{tenant}/oauth2/v2.0/authorize", self._sign_in.authorize)
        login.router.add_post("/{tenant}/oauth2/v2.0/token", self._entra.token)
        ingestion = web.Application(client_max_size=4 * monitor.MAX_BODY)  # 413 is ours
        ingestion.router.add_route(
            "*", "/dataCollectionRules/{rule}/streams/{stream}", self._ingestion.ingest
        )
        for app, ctx in ((graph, None), (login, tls), (ingestion, tls)):
            # The ingestion listener reads gzip bodies itself: their size is checked.
            runner = web.AppRunner(app, access_log=None, auto_decompress=app is not ingestion)
            await runner.setup()
            await web.TCPSite(runner, "127.0.0.1", 0, ssl_context=ctx).start()
            self._runners.append(runner)
        self.graph_port = self._runners[0].addresses[0][1]
        self.login_port = self._runners[1].addresses[0][1]
        self.ingestion_port = self._runners[2].addresses[0][1]

    async def _shutdown(self) -> None:
        self._released.set()
        for runner in self._runners:
            await runner.cleanup()
        self._runners.clear()

    # -- helpers for tests ------------------------------------------------------------

    def add_fault(self, **kwargs: Any) -> Fault:
        fault = Fault(**kwargs)
        self.faults.append(fault)
        return fault

    def release_held(self) -> None:
        """Requests held by a ``hold`` fault answer now (503); later ones are not held."""
        if self._loop is not None:
            self._loop.call_soon_threadsafe(self._released.set)

    def requests_for(self, mailbox: str) -> list[Logged]:
        return [entry for entry in self.log if entry.mailbox == mailbox.lower()]
