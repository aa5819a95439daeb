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

Use it as a context manager; it runs in a thread with its own event loop.
"""

from __future__ import annotations

import asyncio
import base64
import re
import secrets
import shutil
import ssl
import tempfile
import threading
import time
import uuid
from collections import Counter
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from pathlib import Path
from types import TracebackType
from typing import Any
from urllib.parse import urlencode

import orjson
import trustme
from aiohttp import web
from aiohttp.test_utils import make_mocked_request

from sweeper.fakegraph import monitor, signin
from sweeper.fakegraph.faults import Fault, gzip_bomb, make_odd
from sweeper.fakegraph.odata import ODataError, bad_request, parse_filter, project, select_fields
from sweeper.fakegraph.tenant import FakeUser, Tenant

ROLES = ("Mail.ReadBasic.All", "User.Read.All", "Domain.Read.All", "Mail.Send")
MESSAGE_PROPERTIES = (
    "id", "createdDateTime", "lastModifiedDateTime", "receivedDateTime", "sentDateTime",
    "hasAttachments", "internetMessageId", "subject", "bodyPreview", "importance",
    "parentFolderId", "conversationId", "isDeliveryReceiptRequested", "isReadReceiptRequested",
    "isRead", "isDraft", "body", "sender", "from", "toRecipients", "ccRecipients",
    "bccRecipients", "replyTo", "flag", "uniqueBody", "categories", "webLink",
)  # fmt: skip
USER_PROPERTIES = (
    "id", "userPrincipalName", "mail", "displayName", "accountEnabled", "department", "jobTitle",
)  # fmt: skip
# The properties $filter takes here, with the kind of literal each compares with.
MESSAGE_FILTERS = {
    "sentDateTime": "datetime", "receivedDateTime": "datetime", "internetMessageId": "string",
}  # fmt: skip
USER_FILTERS = {"accountEnabled": "bool"}
MAILBOX_CONCURRENCY = 4
EXPIRED = "Lifetime validation failed, the token is expired."
# Graph's challenge on a 401: no claims in it, so the client has to get a new token itself.
CHALLENGE = (
    'Bearer realm="", authorization_uri="https://login.microsoftonline.com/common/oauth2/'
    'authorize", client_id="00000003-0000-0000-c000-000000000000"'
)
BODY_BYTES = web.RequestKey("body_bytes", int)  # an upload's size, once decompressed
Handler = Callable[[web.Request, "re.Match[str]"], Awaitable[web.StreamResponse]]


@dataclass(frozen=True)
class Logged:
    method: str
    path: str
    query: dict[str, str]
    status: int
    mailbox: str | None


@dataclass
class _Token:
    roles: tuple[str, ...]
    expires: float
    audience: str = ""


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
        self._tokens: dict[str, _Token] = {}
        self._codes: dict[str, signin.Grant] = {}
        self._in_flight: Counter[str] = Counter()
        self._released = asyncio.Event()  # set: requests held by a "hold" fault answer 503
        self._loop: asyncio.AbstractEventLoop | None = None
        self._thread: threading.Thread | None = None
        self._runners: list[web.AppRunner] = []
        self._dir = Path(tempfile.mkdtemp(prefix="sweeper-fakegraph-"))
        self.graph_port = 0
        self.login_port = 0
        self.ingestion_port = 0
        self.issued_tokens: list[str] = []
        self._routes: list[tuple[re.Pattern[str], Handler]] = [
            (re.compile(r"^/v1\.0/users$", re.I), self._users),
            (re.compile(r"^/v1\.0/domains$", re.I), self._domains),
            (
                re.compile(r"^/v1\.0/users/([^/]+)/mailfolders/([^/]+)/messages$", re.I),
                self._messages,
            ),
            (re.compile(r"^/v1\.0/users/([^/]+)/sendmail$", re.I), self._send_mail),
            (re.compile(r"^/v1\.0/users/([^/]+)$", re.I), self._user),
            (re.compile(r"^/msi/token$", re.I), self._managed_identity),
            (re.compile(r"^/v1\.0/\$batch$", re.I), self._batch),
        ]

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
        graph.router.add_route("*", "/{tail:.*}", self._dispatch)
        login = web.Application()
        login.router.add_get("/{tenant}/v2.0/.well-known/openid-configuration", self._openid)
        login.router.add_get("/{tenant}/oauth2/v2.0/authorize", self._authorize)
        login.router.add_post("/{tenant}/oauth2/v2.0/token", self._token)
        ingestion = web.Application(client_max_size=4 * monitor.MAX_BODY)  # 413 is ours
        ingestion.router.add_route(
            "*", "/dataCollectionRules/{rule}/streams/{stream}", self._ingest
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

    # -- sign-in ----------------------------------------------------------------------

    async def _openid(self, request: web.Request) -> web.Response:
        tenant = request.match_info["tenant"]
        base = f"{self.authority}/{tenant}"
        return _json(
            {
                "issuer": f"{base}/v2.0",
                "authorization_endpoint": f"{base}/oauth2/v2.0/authorize",
                "token_endpoint": f"{base}/oauth2/v2.0/token",
                "device_authorization_endpoint": f"{base}/oauth2/v2.0/devicecode",
                "jwks_uri": f"{base}/discovery/v2.0/keys",
                "response_types_supported": ["code", "id_token", "token"],
                "response_modes_supported": list(signin.RESPONSE_MODES),
                "scopes_supported": list(signin.OIDC_SCOPES),
                "subject_types_supported": ["pairwise"],
                "tenant_region_scope": "EU",
            }
        )

    async def _token(self, request: web.Request) -> web.Response:
        form = await request.post()
        if request.match_info["tenant"] != self.tenant.tenant_id:
            return _aad_error(400, "invalid_request", 90002, "Tenant not found.")
        grant_type = form.get("grant_type")
        if grant_type not in ("client_credentials", "authorization_code"):
            return _aad_error(400, "unsupported_grant_type", 70003, "Unsupported grant type.")
        refused = self._client_refusal(form)
        if refused is not None:
            return refused
        if grant_type == "authorization_code":
            return self._redeem(form)
        scope = str(form.get("scope", ""))
        if not scope.endswith("/.default"):
            return _aad_error(400, "invalid_scope", 1002012, "The scope is not valid.")
        return _json(self._issue_token(scope.removesuffix("/.default")))

    def _client_refusal(self, form: Any) -> web.Response | None:
        """The answer to a token request whose client is unknown or does not prove itself
        (a secret, or a certificate's assertion); None when the client is this app."""
        if form.get("client_id") != self.client_id:
            return _aad_error(
                400, "unauthorized_client", 700016, "Application was not found in the directory."
            )
        secret, assertion = form.get("client_secret"), form.get("client_assertion")
        if secret is not None:
            if not secrets.compare_digest(str(secret), self.client_secret):
                return _aad_error(401, "invalid_client", 7000215, "Invalid client secret provided.")
        elif isinstance(assertion, str):
            if not self._assertion_ok(assertion):
                return _aad_error(
                    401, "invalid_client", 700027, "Client assertion failed signature validation."
                )
        else:
            return _aad_error(
                400, "invalid_request", 900144, "The request body must contain 'client_secret'."
            )
        return None

    def _assertion_ok(self, assertion: str) -> bool:
        """Claims of a certificate client assertion: this app, this token endpoint, unexpired.

        The RS256/PS256 signature itself is not checked: no certificate is registered here.
        """
        parts = assertion.split(".")
        if len(parts) != 3:
            return False
        try:
            header = orjson.loads(base64.urlsafe_b64decode(parts[0] + "=" * (-len(parts[0]) % 4)))
            claims = orjson.loads(base64.urlsafe_b64decode(parts[1] + "=" * (-len(parts[1]) % 4)))
        except (ValueError, orjson.JSONDecodeError):
            return False
        return (
            header.get("alg") in ("RS256", "PS256")
            and claims.get("iss") == claims.get("sub") == self.client_id
            and str(claims.get("aud", "")).endswith("/oauth2/v2.0/token")
            and float(claims.get("exp", 0)) > time.time()
        )

    def _issue_token(
        self, audience: str = "", user: FakeUser | None = None, scopes: tuple[str, ...] = ()
    ) -> dict[str, Any]:
        """A token shaped like Entra ID's: a JWT whose ``roles`` claim lists the app's grants.

        A token for a signed-in ``user`` (delegated) names the user and lists the ``scopes``
        in ``scp`` instead: it carries none of the app's roles, so Graph grants it nothing.
        It is not signed (the local Graph knows its own tokens), but its claims are real.
        """
        claims: dict[str, Any] = {
            "aud": audience,
            "iss": f"{self.authority}/{self.tenant.tenant_id}/v2.0",
            "tid": self.tenant.tenant_id,
            "appid": self.client_id,
            "exp": int(time.time()) + self.token_lifetime,
            "jti": secrets.token_urlsafe(16),
        }
        roles = self.roles if user is None else ()
        if user is None:
            claims["roles"] = list(roles)
        else:
            claims.update(oid=user.id, upn=user.upn, name=user.display_name, scp=" ".join(scopes))
        token = signin.unsigned_jwt(claims)
        self._tokens[token] = _Token(roles, time.time() + self.token_lifetime, audience)
        self.issued_tokens.append(token)
        return {
            "token_type": "Bearer",
            "expires_in": self.token_lifetime,
            "ext_expires_in": self.token_lifetime,
            "access_token": token,
        }

    # -- people's sign-in (see sweeper.fakegraph.signin) -------------------------------------

    async def _authorize(self, request: web.Request) -> web.Response:
        """Entra's sign-in page, with nobody at it: a code for the user, or Entra's error."""
        query = request.query
        try:
            redirect_uri = self._registered_redirect(request.match_info["tenant"], query)
        except signin.ErrorPage as page:
            return page.response()
        state = {"state": query["state"]} if "state" in query else {}
        mode = query.get("response_mode") or "query"
        if mode not in signin.RESPONSE_MODES:
            error = signin.SentBack(
                "invalid_request", 9002313, "Invalid request. Request is malformed or invalid."
            )
            return signin.answer(redirect_uri, "query", {**error.params(), **state})
        try:
            grant = self._grant(query, redirect_uri)
        except signin.ErrorPage as page:
            return page.response()
        except signin.SentBack as error:
            return signin.answer(redirect_uri, mode, {**error.params(), **state})
        code = signin.new_code()
        self._codes[code] = grant
        params = {"code": code}
        if query.get("client_info") == "1":
            params["client_info"] = signin.client_info(grant.user, self.tenant.tenant_id)
        params.update(state, session_state=str(uuid.uuid4()))
        return signin.answer(redirect_uri, mode, params)

    def _registered_redirect(self, tenant: str, query: Any) -> str:
        """The request's redirect URI, once the tenant, the app and the URI are known.

        Until then Entra cannot trust where to send the browser: each error is its own page.
        """
        if tenant != self.tenant.tenant_id:
            raise signin.ErrorPage(90002, f"Tenant '{tenant}' not found.")
        client_id = query.get("client_id")
        if not client_id:
            raise signin.ErrorPage(
                900144, "The request body must contain the following parameter: 'client_id'."
            )
        if client_id != self.client_id:
            raise signin.ErrorPage(
                700016,
                f"Application with identifier '{client_id}' was not found in the directory "
                f"'{tenant}'. This can happen if the application has not been installed by the "
                "administrator of the tenant or consented to by any user in the tenant. You may "
                "have sent your authentication request to the wrong tenant.",
            )
        if not self.redirect_uris:
            raise signin.ErrorPage(500113, "No reply address is registered for the application.")
        redirect_uri = query.get("redirect_uri")
        if redirect_uri is None:
            raise signin.ErrorPage(900971, "No reply address provided.")
        if redirect_uri not in self.redirect_uris:
            raise signin.ErrorPage(
                50011,
                f"The redirect URI '{redirect_uri}' specified in the request does not match the "
                f"redirect URIs configured for the application '{client_id}'. Make sure the "
                "redirect URI sent in the request matches one added to your application in the "
                "Azure portal.",
            )
        return str(redirect_uri)

    def _grant(self, query: Any, redirect_uri: str) -> signin.Grant:
        """What the code will stand for: the request checked, the user signed in."""
        response_type = str(query.get("response_type", ""))
        if response_type != "code":
            number = 700054 if "id_token" in response_type.split() else 700051
            raise signin.SentBack(
                "unsupported_response_type",
                number,
                f"response_type '{response_type}' is not enabled for the application.",
            )
        scope = query.get("scope")
        if not scope:
            raise signin.SentBack(
                "invalid_request",
                900144,
                "The request body must contain the following parameter: 'scope'.",
            )
        challenge = query.get("code_challenge")
        method = signin.check_challenge(challenge, query.get("code_challenge_method"))
        return signin.Grant(
            client_id=self.client_id,
            user=self._signed_in(query),
            redirect_uri=redirect_uri,
            scopes=tuple(str(scope).split()),
            nonce=query.get("nonce"),
            challenge=challenge,
            challenge_method=method,
            expires=time.time() + self.code_lifetime,
        )

    def _signed_in(self, query: Any) -> FakeUser:
        """The user ``login_hint`` names (a UPN, any case), else :attr:`sign_in_as`."""
        silent = query.get("prompt") == "none"
        name = query.get("login_hint") or self.sign_in_as
        if name is None:
            if silent:
                raise signin.SentBack(
                    "login_required",
                    50058,
                    "A silent sign-in request was sent but no user is signed in.",
                )
            raise signin.ErrorPage(
                None,
                "Sign in: nobody to sign in. Give a login_hint, or set FakeGraph.sign_in_as.",
            )
        user = self.tenant.user(name)
        if user is None or user.upn.lower() != name.lower():
            raise signin.refusal(
                silent,
                "login_required",
                50034,
                f"The user account {name} does not exist in the {self.tenant.tenant_id} "
                "directory. To sign into this application, the account must be added to the "
                "directory.",
            )
        if not user.enabled:
            raise signin.refusal(silent, "access_denied", 50057, "The user account is disabled.")
        if self.assignment_required and not user.app_roles:
            raise signin.refusal(
                silent,
                "access_denied",
                50105,
                f"Your administrator has configured the application ('{self.client_id}') to "
                "block users unless they are specifically granted ('assigned') access to the "
                f"application. The signed in user '{user.upn}' is blocked because they are not "
                "a direct member of a group with access, nor had access directly assigned by an "
                "administrator. Please contact your administrator to assign access to this "
                "application.",
            )
        return user

    def _redeem(self, form: Any) -> web.Response:
        """``grant_type=authorization_code``: a code, once, for the client that asked it."""
        code = form.get("code")
        if not code:
            return _aad_error(
                400,
                "invalid_request",
                900144,
                "The request body must contain the following parameter: 'code'.",
            )
        grant = self._codes.get(str(code))
        if grant is None or grant.client_id != form.get("client_id"):
            return _aad_error(
                400, "invalid_grant", 9002313, "Invalid request. Request is malformed or invalid."
            )
        if grant.redeemed:
            return _aad_error(
                400,
                "invalid_grant",
                54005,
                "OAuth2 Authorization code was already redeemed, please retry with a new valid "
                "code or use an existing refresh token.",
            )
        if grant.expires < time.time():
            return _aad_error(
                400,
                "invalid_grant",
                70008,
                "The provided authorization code or refresh token has expired due to "
                "inactivity. Send a new interactive authorization request for this user and "
                "resource.",
            )
        redirect_uri = form.get("redirect_uri")
        if redirect_uri != grant.redirect_uri:
            return _aad_error(
                400,
                "invalid_grant",
                50011,
                f"The reply address '{redirect_uri}' does not match the reply address "
                f"'{grant.redirect_uri}' provided when requesting Authorization code.",
            )
        if grant.challenge is not None:
            verifier = form.get("code_verifier")
            if not isinstance(verifier, str):
                return _aad_error(
                    400,
                    "invalid_grant",
                    50148,
                    "The code_verifier does not match the code_challenge supplied in the "
                    "authorization request for PKCE.",
                )
            if not signin.verifier_matches(verifier, grant.challenge, grant.challenge_method):
                return _aad_error(
                    400,
                    "invalid_grant",
                    501481,
                    "The Code_Verifier does not match the code_challenge supplied in the "
                    "authorization request.",
                )
        grant.redeemed = True
        return _json(self._user_tokens(grant, with_client_info=form.get("client_info") == "1"))

    def _user_tokens(self, grant: signin.Grant, with_client_info: bool) -> dict[str, Any]:
        """The token answer for a signed-in user: Graph's access token, and the ID token
        when ``openid`` was asked. ``offline_access`` is not granted: no refresh token."""
        scopes = tuple(s for s in grant.scopes if s != "offline_access")
        body = self._issue_token(signin.GRAPH_APP_ID, user=grant.user, scopes=scopes)
        body["scope"] = " ".join(scopes)
        if "openid" in grant.scopes:
            claims = signin.id_token_claims(
                grant,
                issuer=f"{self.authority}/{self.tenant.tenant_id}/v2.0",
                tenant_id=self.tenant.tenant_id,
                lifetime=self.token_lifetime,
                now=time.time(),
            )
            body["id_token"] = signin.unsigned_jwt(claims)
        if with_client_info:
            body["client_info"] = signin.client_info(grant.user, self.tenant.tenant_id)
        return body

    async def _managed_identity(self, request: web.Request, _: re.Match[str]) -> web.Response:
        if request.headers.get("X-IDENTITY-HEADER") != self.identity_header:
            return _json({"error": "unauthorized", "message": "bad identity header"}, 401)
        if not request.query.get("resource"):
            return _json({"error": "invalid_request", "message": "resource is required"}, 400)
        issued = self._issue_token(request.query["resource"])
        return _json(
            {
                "access_token": issued["access_token"],
                "expires_on": str(int(time.time()) + self.token_lifetime),
                "resource": request.query["resource"],
                "token_type": "Bearer",
            }
        )

    def _roles_for(self, request: web.Request) -> tuple[str, ...]:
        header = request.headers.get("Authorization", "")
        token = self._tokens.get(header[7:]) if header.startswith("Bearer ") else None
        if token is None:
            raise ODataError(
                401,
                "InvalidAuthenticationToken",
                "Access token is empty or not valid.",
                {"WWW-Authenticate": CHALLENGE},
            )
        if token.expires < time.time():
            raise ODataError(
                401, "InvalidAuthenticationToken", EXPIRED, {"WWW-Authenticate": CHALLENGE}
            )
        return token.roles

    # -- Azure Monitor's Logs Ingestion API (see sweeper.fakegraph.monitor) ----------------

    async def _ingest(self, request: web.Request) -> web.StreamResponse:
        stream = request.match_info["stream"]
        raw = await request.read()
        status, code, records = 204, None, []
        try:
            records = await self._ingestible(request, raw)
            self.ingested.setdefault(stream, []).extend(records)
            return web.Response(status=204)
        except monitor.Refusal as refusal:
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
            self.uploads.append(
                monitor.Upload(stream, status, code, len(raw), body_bytes, len(records), gzipped)
            )

    async def _ingestible(self, request: web.Request, raw: bytes) -> list[dict[str, Any]]:
        """The request's records, or the Refusal Azure Monitor would answer with."""
        if request.method != "POST":
            raise monitor.Refusal(405, "MethodNotAllowed", "Only POST is allowed.")
        if request.query.get("api-version") != monitor.API_VERSION:
            raise monitor.Refusal(400, "InvalidApiVersion", "The api-version is not supported.")
        header = request.headers.get("Authorization", "")
        token = self._tokens.get(header[7:]) if header.startswith("Bearer ") else None
        if token is None or token.expires < time.time():
            raise monitor.Refusal(401, "InvalidToken", "The access token is missing or expired.")
        if token.audience.rstrip("/") != monitor.AUDIENCE:
            raise monitor.Refusal(
                401,
                "InvalidTokenAudience",
                f"The token's audience '{token.audience}' is not {monitor.AUDIENCE}.",
            )
        fault = next((f for f in self.faults if f.path and f.matches(request.path, None)), None)
        if fault is not None:
            fault.hit(None)
            if fault.kind == "stall":
                await asyncio.sleep(fault.stall)
            elif fault.kind == "hold":
                await self._released.wait()
                raise monitor.Refusal(503, "ServiceUnavailable", "The request was held.")
            elif fault.kind == "reset" and request.transport is not None:
                request.transport.close()  # no answer at all: the client cannot know
                raise monitor.Refusal(502, "ConnectionReset", "The connection was reset.")
            elif fault.kind == "status":
                after = {"Retry-After": str(fault.retry_after)} if fault.retry_after else {}
                raise monitor.Refusal(fault.status, fault.code, fault.message, after)
        streams = monitor.declared_streams()
        if request.match_info["rule"] != self.rule_id:
            raise monitor.Refusal(404, "NotFound", "The data collection rule was not found.")
        columns = streams.get(request.match_info["stream"])
        if columns is None:
            raise monitor.Refusal(404, "NotFound", "The rule declares no such stream.")
        if not self.ingestion_allowed:
            raise monitor.Refusal(
                403,
                "OperationFailed",
                "The authentication token provided does not have access to ingest data for "
                f"the data collection rule with immutable Id '{self.rule_id}'.",
            )
        body = monitor.decode(raw, request.headers.get("Content-Encoding"))
        request[BODY_BYTES] = len(body)
        return monitor.records_of(body, request.match_info["stream"], columns)

    # -- Graph --------------------------------------------------------------------------

    async def _dispatch(self, request: web.Request, in_batch: bool = False) -> web.StreamResponse:
        path = re.sub(r"/{2,}", "/", request.path)  # the SDK may send /v1.0//users
        user: FakeUser | None = None
        status = 500
        try:
            for pattern, handler in self._routes:
                match = pattern.match(path)
                if match is None:
                    continue
                if pattern.pattern.startswith("^/v1\\.0/users/"):
                    user = self.tenant.user(match.group(1))
                if handler != self._managed_identity:
                    self._roles_for(request)
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
            self.log.append(
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
        if key is not None and self._in_flight[key] >= MAILBOX_CONCURRENCY:
            raise ODataError(
                429,
                "ApplicationThrottled",
                "Application is over its MailboxConcurrency limit.",
                {"Retry-After": "1"},
            )
        if key is not None:
            self._in_flight[key] += 1
        try:
            if self.latency:  # the network and the server's work, while the request is open
                await asyncio.sleep(self.latency)
            fault = next((f for f in self.faults if f.matches(path, user)), None)
            if fault is None:
                return await handler(request, match)
            fault.hit(user)
            return await self._go_wrong(fault, request, user, handler, match, in_batch)
        finally:
            if key is not None:
                self._in_flight[key] -= 1

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
            for token in self._tokens.values():
                token.expires = min(token.expires, time.time() - 1)
            raise ODataError(
                401, "InvalidAuthenticationToken", EXPIRED, {"WWW-Authenticate": CHALLENGE}
            )
        if fault.kind == "stall":
            await asyncio.sleep(fault.stall)
        if fault.kind == "hold":
            await self._released.wait()
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
            return self._next(request, {"$skip": str(skip)})
        return f"http://{request.host}{request.path_qs}"

    async def _users(self, request: web.Request, _: re.Match[str]) -> web.Response:
        self._require(request, "User.Read.All", "Authorization_RequestDenied")
        query = request.query
        fields = select_fields(query.get("$select"), USER_PROPERTIES, "user")
        predicate = parse_filter(query.get("$filter"), USER_FILTERS)
        top = _int_option(query, "$top", default=100, low=1, high=999)
        users = [u.as_graph() for u in self.tenant.users]
        if predicate:
            users = [u for u in users if predicate(u)]
        offset = _skiptoken(query.get("$skiptoken"))
        page = users[offset : offset + top]
        body: dict[str, Any] = {
            "@odata.context": f"{self._base(request)}/$metadata#users",
            "value": [project(u, fields) for u in page],
        }
        if offset + top < len(users):
            token = base64.urlsafe_b64encode(f"users:{offset + top}".encode()).decode()
            body["@odata.nextLink"] = self._next(request, {"$skiptoken": token}, drop="$skip")
        return _json(body)

    async def _domains(self, request: web.Request, _: re.Match[str]) -> web.Response:
        self._require(request, "Domain.Read.All", "Authorization_RequestDenied")
        value = [
            {
                "authenticationType": "Managed",
                "isAdminManaged": True,
                "isInitial": False,
                "isRoot": True,
                "supportedServices": ["Email"],
                **d,
            }
            for d in self.tenant.domains
        ]
        return _json({"@odata.context": f"{self._base(request)}/$metadata#domains", "value": value})

    async def _user(self, request: web.Request, match: re.Match[str]) -> web.Response:
        self._require(request, "User.Read.All", "Authorization_RequestDenied")
        user = self.tenant.user(match.group(1))
        if user is None:
            raise _no_user(match.group(1))
        fields = select_fields(request.query.get("$select"), USER_PROPERTIES, "user")
        return _json(project(user.as_graph(), fields))

    async def _messages(self, request: web.Request, match: re.Match[str]) -> web.Response:
        self._require(request, "Mail.ReadBasic.All", "ErrorAccessDenied", also="Mail.Read")
        user = self.tenant.user(match.group(1))
        if user is None:
            raise _no_user(match.group(1))
        if not user.has_mailbox:
            raise ODataError(
                404,
                "MailboxNotEnabledForRESTAPI",
                "The mailbox is either inactive, soft-deleted, or is hosted on-premise.",
            )
        if match.group(2).lower() != "sentitems":
            raise ODataError(404, "ErrorItemNotFound", "The specified object was not found.")
        query = request.query
        fields = select_fields(query.get("$select"), MESSAGE_PROPERTIES, "message")
        predicate = parse_filter(query.get("$filter"), MESSAGE_FILTERS)
        top = _int_option(query, "$top", default=10, low=1, high=1000)
        skip = _int_option(query, "$skip", default=0, low=0, high=10**9)
        sent = self.tenant.messages_of(user)
        messages = sent if predicate is None else [m for m in sent if predicate(m)]
        page = messages[skip : skip + top]
        body: dict[str, Any] = {
            "@odata.context": f"{self._base(request)}/$metadata#users('{user.id}')"
            "/mailFolders('sentitems')/messages",
            "value": [project(m, fields) for m in page],
        }
        if skip + top < len(messages):
            body["@odata.nextLink"] = self._next(request, {"$skip": str(skip + top)})
        return _json(body)

    async def _batch(self, request: web.Request, _: re.Match[str]) -> web.StreamResponse:
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
            answer = await self._dispatch(inner, in_batch=True)
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
        return _json({"responses": list(responses)})

    async def _send_mail(self, request: web.Request, match: re.Match[str]) -> web.Response:
        """Captures the mail. Accepts Graph's camelCase and the SDK's PascalCase keys."""
        if request.method != "POST":
            raise ODataError(405, "Request_BadRequest", "Only POST is allowed on sendMail.")
        self._require(request, "Mail.Send", "ErrorAccessDenied")
        user = self.tenant.user(match.group(1))
        if user is None:
            raise _no_user(match.group(1))
        if not user.has_mailbox:
            raise ODataError(404, "MailboxNotEnabledForRESTAPI", "The mailbox is not enabled.")
        try:
            body = orjson.loads(await request.read())
        except orjson.JSONDecodeError:
            raise bad_request("Unable to read JSON request payload.") from None
        message = body.get("message", body.get("Message")) if isinstance(body, dict) else None
        if not isinstance(message, dict):
            raise bad_request("Empty Payload. JSON content expected.", "ErrorInvalidRequest")
        recipients = message.get("toRecipients", message.get("ToRecipients"))
        if not recipients:
            raise bad_request("At least one recipient is not valid.", "ErrorInvalidRecipients")
        save = body.get("saveToSentItems", body.get("SaveToSentItems", True))
        self.sent_mail.append({"sender": user.upn, "message": message, "saveToSentItems": save})
        if save is not False:
            user.sent.insert(0, _sent_copy(user, message))  # Sent Items are newest first
        return web.Response(status=202)

    def _require(self, request: web.Request, role: str, code: str, also: str | None = None) -> None:
        roles = self._roles_for(request)
        if role not in roles and (also is None or also not in roles):
            message = (
                "Insufficient privileges to complete the operation."
                if code == "Authorization_RequestDenied"
                else "Access is denied. Check credentials and try again."
            )
            raise ODataError(403, code, message)

    def _base(self, request: web.Request) -> str:
        return f"http://{request.host}/v1.0"

    def _next(self, request: web.Request, changes: dict[str, str], drop: str = "") -> str:
        query = {k: v for k, v in request.query.items() if k != drop}
        query.update(changes)
        path = re.sub(r"/{2,}", "/", request.path)
        return f"http://{request.host}{path}?{urlencode(query, safe='$,:')}"


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


def _sent_copy(user: FakeUser, message: dict[str, Any]) -> dict[str, Any]:
    """The copy Graph keeps in the sender's Sent Items of a message sent by sendMail: the
    client's internetMessageId if it gave one, else one the server makes."""

    def get_in(item: dict[str, Any], name: str, default: Any = None) -> Any:
        """Graph's camelCase key, or the SDK's PascalCase one."""
        return item.get(name, item.get(name[0].upper() + name[1:], default))

    def get(name: str, default: Any = None) -> Any:
        return get_in(message, name, default)

    stamp = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())
    serial = secrets.token_hex(16)
    me = {"emailAddress": {"name": user.display_name, "address": user.upn}}
    body = get("body") if isinstance(get("body"), dict) else {}
    content = str(get_in(body, "content", ""))
    return {
        "@odata.etag": f'W/"CQAAABYAAAD{serial[:8]}"',
        "id": f"AAMkAG{serial}AAA=",
        "createdDateTime": stamp,
        "lastModifiedDateTime": stamp,
        "receivedDateTime": stamp,
        "sentDateTime": stamp,
        "hasAttachments": bool(get("attachments")),
        "internetMessageId": get("internetMessageId")
        or f"<{serial}@LO2P265MB0001.GBRP265.PROD.OUTLOOK.EXAMPLE>",
        "subject": get("subject", ""),
        "bodyPreview": " ".join(re.sub(r"<[^>]*>", " ", content).split())[:255],
        "importance": str(get("importance", "normal")).lower(),
        "parentFolderId": "AQMkAGSentItems",
        "conversationId": f"AAQkAG{serial[:24]}=",
        "isDeliveryReceiptRequested": False,
        "isReadReceiptRequested": False,
        "isRead": True,
        "isDraft": False,
        "body": {
            "contentType": str(get_in(body, "contentType", "html")).lower(),
            "content": content,
        },
        "sender": me,
        "from": me,
        "toRecipients": get("toRecipients", []),
        "ccRecipients": get("ccRecipients", []),
        "bccRecipients": get("bccRecipients", []),
        "replyTo": get("replyTo", []),
        "flag": {"flagStatus": "notFlagged"},
    }


def _json(body: Any, status: int = 200) -> web.Response:
    return web.Response(status=status, body=orjson.dumps(body), content_type="application/json")


def _aad_error(status: int, error: str, code: int, text: str) -> web.Response:
    return _json(
        {
            "error": error,
            "error_description": f"AADSTS{code}: {text}",
            "error_codes": [code],
            "timestamp": time.strftime("%Y-%m-%d %H:%M:%SZ", time.gmtime()),
        },
        status,
    )


def _no_user(key: str) -> ODataError:
    return ODataError(
        404,
        "Request_ResourceNotFound",
        f"Resource '{key}' does not exist or one of its queried reference-property objects "
        "are not present.",
    )


def _int_option(query: Any, name: str, *, default: int, low: int, high: int) -> int:
    raw = query.get(name)
    if raw is None:
        return default
    try:
        value = int(raw)
    except ValueError:
        raise bad_request(f"Invalid value '{raw}' for query option {name}.") from None
    if not low <= value <= high:
        raise bad_request(
            f"Invalid page size specified: '{value}'. Must be between {low} and {high} inclusive."
            if name == "$top"
            else f"Invalid value '{value}' for query option {name}."
        )
    return value


def _skiptoken(raw: str | None) -> int:
    if raw is None:
        return 0
    try:
        kind, _, offset = base64.urlsafe_b64decode(raw.encode()).decode().partition(":")
        if kind != "users":
            raise ValueError(kind)
        return int(offset)
    except (ValueError, UnicodeDecodeError):
        raise bad_request("Invalid skip token.", "Directory_InvalidSkipToken") from None
