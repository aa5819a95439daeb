"""The local Entra ID's user sign-in: the authorization code flow with PKCE, OpenID Connect.

:class:`SignInPage` serves ``GET /{tenant}/oauth2/v2.0/authorize`` and
:class:`~sweeper.fakegraph.entra.Entra` redeems its codes at ``POST /{tenant}/oauth2/v2.0/token``
(``grant_type=authorization_code``), answering as Entra ID's v2.0 endpoint does:

* Errors Entra shows on its own page, where the browser stays, are a 400 HTML page naming the
  AADSTS code, never a redirect: an unknown tenant or client (AADSTS700016), a redirect URI
  the app has not registered (AADSTS50011; none registered at all, AADSTS500113), an
  account that does not exist (AADSTS50034) or is disabled (AADSTS50057), and a user not
  assigned to an app that requires assignment (AADSTS50105). The app never hears of them.
* Errors Entra sends back go to the redirect URI as ``error`` and ``error_description``
  with the ``state``: a response type other than ``code`` (``unsupported_response_type``),
  no ``scope`` or a malformed PKCE challenge (``invalid_request``), ``prompt=none`` with
  nobody to sign in (``login_required``).
* Success is ``code``, ``state``, ``session_state`` (and ``client_info`` when asked, as MSAL
  does), by a 302 to the redirect URI (``response_mode`` ``query``, the default, or
  ``fragment``) or an auto-submitting form (``form_post``).
* A code lives ten minutes and is redeemed once (AADSTS70008, AADSTS54005), by the same
  client, with the same ``redirect_uri`` and a ``code_verifier`` matching the challenge
  (``S256`` or ``plain``; AADSTS50148 when it is missing, AADSTS501481 when it is wrong).
* The ID token, issued when ``openid`` was asked, names the user (``oid``, a pairwise
  ``sub``, ``preferred_username``, ``name``), echoes the ``nonce`` and lists the user's app
  roles in ``roles`` (left out when there are none, as Entra does).

There is no human at the sign-in page: the user is the one ``login_hint`` names, else
``FakeGraph.sign_in_as``. No refresh token is issued: sign-in does not need one, and the
fake has no refresh grant to redeem it with.
"""

from __future__ import annotations

import base64
import hashlib
import html
import secrets
import time
import uuid
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any
from urllib.parse import urlencode

import orjson
from aiohttp import web

from sweeper.fakegraph.tenant import FakeUser

if TYPE_CHECKING:
    from sweeper.fakegraph.server import FakeGraph

CODE_LIFETIME = 600  # seconds: "authorization codes are short lived, about ten minutes"
GRAPH_APP_ID = "00000003-0000-0000-c000-000000000000"  # the audience of a Graph token
OIDC_SCOPES = ("openid", "profile", "email", "offline_access")
RESPONSE_MODES = ("query", "fragment", "form_post")
PKCE_METHODS = ("S256", "plain")


@dataclass
class Grant:
    """What an authorization code stands for, kept until it is redeemed or expires."""

    client_id: str
    user: FakeUser
    redirect_uri: str
    scopes: tuple[str, ...]
    nonce: str | None
    challenge: str | None
    challenge_method: str
    expires: float
    redeemed: bool = False


class ErrorPage(Exception):
    """An error Entra shows on its own sign-in page: the browser is not sent back.

    Without a code, it stands for the sign-in form itself, where a person would type a name.
    """

    def __init__(self, code: int | None, text: str) -> None:
        super().__init__(text if code is None else f"AADSTS{code}: {text}")

    def response(self) -> web.Response:
        body = (
            "<!DOCTYPE html><html><head><title>Sign in to your account</title></head><body>"
            "<h1>Sorry, but we're having trouble signing you in.</h1>"
            f"<p>{html.escape(str(self))}</p></body></html>"
        )
        return web.Response(status=400, text=body, content_type="text/html")


class SentBack(Exception):
    """An error Entra sends back to the app's redirect URI, with the request's state."""

    def __init__(self, error: str, code: int, text: str) -> None:
        super().__init__(f"AADSTS{code}: {text}")
        self.error = error

    def params(self) -> dict[str, str]:
        return {"error": self.error, "error_description": str(self)}


def answer(redirect_uri: str, mode: str, params: dict[str, str]) -> web.Response:
    """Send ``params`` back to the app the way ``response_mode`` says."""
    if mode == "form_post":
        fields = "".join(
            f'<input type="hidden" name="{html.escape(k)}" value="{html.escape(v)}">'
            for k, v in params.items()
        )
        body = (
            "<!DOCTYPE html><html><head><title>Working...</title></head>"
            '<body onload="document.forms[0].submit()">'
            f'<form method="POST" name="hiddenform" action="{html.escape(redirect_uri)}">'
            f'{fields}<noscript><input type="submit" value="Continue"></noscript>'
            "</form></body></html>"
        )
        return web.Response(text=body, content_type="text/html")
    separator = "#" if mode == "fragment" else ("&" if "?" in redirect_uri else "?")
    return web.Response(
        status=302, headers={"Location": f"{redirect_uri}{separator}{urlencode(params)}"}
    )


def refusal(silent: bool, error: str, code: int, text: str) -> ErrorPage | SentBack:
    """A refusal of the user: on Entra's page, or sent back when ``prompt=none`` forbids
    any page ("the request can't be completed silently")."""
    return SentBack(error, code, text) if silent else ErrorPage(code, text)


def check_challenge(challenge: str | None, method: str | None) -> str:
    """The challenge's method (``plain`` when the request names none, as RFC 7636 says)."""
    if challenge is None:
        return "plain"
    if not 43 <= len(challenge) <= 128:
        raise SentBack("invalid_request", 501491, "Invalid size of Code_Challenge parameter.")
    if (method or "plain") not in PKCE_METHODS:
        raise SentBack(
            "invalid_request", 9002313, "Invalid request. Request is malformed or invalid."
        )
    return method or "plain"


def verifier_matches(verifier: str, challenge: str, method: str) -> bool:
    """PKCE: S256's challenge is the unpadded base64url of the verifier's SHA-256."""
    if method == "S256":
        expected = b64url(hashlib.sha256(verifier.encode("ascii", "replace")).digest())
    else:
        expected = verifier
    return secrets.compare_digest(expected, challenge)


def pairwise_sub(client_id: str, user_id: str) -> str:
    """Entra's ``sub``: the same user has a different one in every app, unlike ``oid``."""
    return b64url(hashlib.sha256(f"{client_id}:{user_id}".encode()).digest())


def id_token_claims(
    grant: Grant, issuer: str, tenant_id: str, lifetime: int, now: float
) -> dict[str, Any]:
    """The ID token's claims for the user the grant signed in, for the app that asked."""
    user = grant.user
    claims: dict[str, Any] = {
        "ver": "2.0",
        "iss": issuer,
        "aud": grant.client_id,
        "tid": tenant_id,
        "oid": user.id,
        "sub": pairwise_sub(grant.client_id, user.id),
        "preferred_username": user.upn,
        "name": user.display_name,
        "iat": int(now),
        "nbf": int(now),
        "exp": int(now) + lifetime,
    }
    if "email" in grant.scopes and user.has_mailbox:
        claims["email"] = user.upn
    if grant.nonce is not None:
        claims["nonce"] = grant.nonce
    if user.app_roles:
        claims["roles"] = list(user.app_roles)
    return claims


def client_info(user: FakeUser, tenant_id: str) -> str:
    """What MSAL asks for with ``client_info=1``: the account's home ids, base64url JSON."""
    return b64url(orjson.dumps({"uid": user.id, "utid": tenant_id}))


def unsigned_jwt(claims: dict[str, Any]) -> str:
    """A JWT shaped like Entra's, not signed: the local fake's tokens are read, not verified."""
    return (
        ".".join(b64url(orjson.dumps(part)) for part in ({"typ": "JWT", "alg": "none"}, claims))
        + "."
        + secrets.token_urlsafe(16)
    )


def new_code() -> str:
    """An opaque, long authorization code, as Entra's are."""
    return "0." + secrets.token_urlsafe(96)


def b64url(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).decode().rstrip("=")


class SignInPage:
    """``GET /{tenant}/oauth2/v2.0/authorize`` of one
    :class:`~sweeper.fakegraph.server.FakeGraph`'s app: its codes are redeemed by
    :class:`~sweeper.fakegraph.entra.Entra`."""

    def __init__(self, fake: FakeGraph, codes: dict[str, Grant]) -> None:
        self.fake = fake
        self.codes = codes

    async def authorize(self, request: web.Request) -> web.Response:
        """Entra's sign-in page, with nobody at it: a code for the user, or Entra's error."""
        query = request.query
        try:
            redirect_uri = self._registered_redirect(request.match_info["tenant"], query)
        except ErrorPage as page:
            return page.response()
        state = {"state": query["state"]} if "state" in query else {}
        mode = query.get("response_mode") or "query"
        if mode not in RESPONSE_MODES:
            error = SentBack(
                "invalid_request", 9002313, "Invalid request. Request is malformed or invalid."
            )
            return answer(redirect_uri, "query", {**error.params(), **state})
        try:
            grant = self._grant(query, redirect_uri)
        except ErrorPage as page:
            return page.response()
        except SentBack as error:
            return answer(redirect_uri, mode, {**error.params(), **state})
        code = new_code()
        self.codes[code] = grant
        params = {"code": code}
        if query.get("client_info") == "1":
            params["client_info"] = client_info(grant.user, self.fake.tenant.tenant_id)
        params.update(state, session_state=str(uuid.uuid4()))
        return answer(redirect_uri, mode, params)

    def _registered_redirect(self, tenant: str, query: Any) -> str:
        """The request's redirect URI, once the tenant, the app and the URI are known.

        Until then Entra cannot trust where to send the browser: each error is its own page.
        """
        if tenant != self.fake.tenant.tenant_id:
            raise ErrorPage(90002, f"Tenant '{tenant}' not found.")
        client_id = query.get("client_id")
        if not client_id:
            raise ErrorPage(
                900144, "The request body must contain the following parameter: 'client_id'."
            )
        if client_id != self.fake.client_id:
            raise ErrorPage(
                700016,
                f"Application with identifier '{client_id}' was not found in the directory "
                f"'{tenant}'. This can happen if the application has not been installed by the "
                "administrator of the tenant or consented to by any user in the tenant. You may "
                "have sent your authentication request to the wrong tenant.",
            )
        if not self.fake.redirect_uris:
            raise ErrorPage(500113, "No reply address is registered for the application.")
        redirect_uri = query.get("redirect_uri")
        if redirect_uri is None:
            raise ErrorPage(900971, "No reply address provided.")
        if redirect_uri not in self.fake.redirect_uris:
            raise ErrorPage(
                50011,
                f"The redirect URI '{redirect_uri}' specified in the request does not match the "
                f"redirect URIs configured for the application '{client_id}'. Make sure the "
                "redirect URI sent in the request matches one added to your application in the "
                "Azure portal.",
            )
        return str(redirect_uri)

    def _grant(self, query: Any, redirect_uri: str) -> Grant:
        """What the code will stand for: the request checked, the user signed in."""
        response_type = str(query.get("response_type", ""))
        if response_type != "code":
            number = 700054 if "id_token" in response_type.split() else 700051
            raise SentBack(
                "unsupported_response_type",
                number,
                f"response_type '{response_type}' is not enabled for the application.",
            )
        scope = query.get("scope")
        if not scope:
            raise SentBack(
                "invalid_request",
                900144,
                "The request body must contain the following parameter: 'scope'.",
            )
        challenge = query.get("code_challenge")
        method = check_challenge(challenge, query.get("code_challenge_method"))
        return Grant(
            client_id=self.fake.client_id,
            user=self._signed_in(query),
            redirect_uri=redirect_uri,
            scopes=tuple(str(scope).split()),
            nonce=query.get("nonce"),
            challenge=challenge,
            challenge_method=method,
            expires=time.time() + self.fake.code_lifetime,
        )

    def _signed_in(self, query: Any) -> FakeUser:
        """The user ``login_hint`` names (a UPN, any case), else :attr:`sign_in_as`."""
        silent = query.get("prompt") == "none"
        name = query.get("login_hint") or self.fake.sign_in_as
        if name is None:
            if silent:
                raise SentBack(
                    "login_required",
                    50058,
                    "A silent sign-in request was sent but no user is signed in.",
                )
            raise ErrorPage(
                None,
                "Sign in: nobody to sign in. Give a login_hint, or set FakeGraph.sign_in_as.",
            )
        user = self.fake.tenant.user(name)
        if user is None or user.upn.lower() != name.lower():
            raise refusal(
                silent,
                "login_required",
                50034,
                f"The user account {name} does not exist in the {self.fake.tenant.tenant_id} "
                "directory. To sign into this application, the account must be added to the "
                "directory.",
            )
        if not user.enabled:
            raise refusal(silent, "access_denied", 50057, "The user account is disabled.")
        if self.fake.assignment_required and not user.app_roles:
            raise refusal(
                silent,
                "access_denied",
                50105,
                f"Your administrator has configured the application ('{self.fake.client_id}') to "
                "block users unless they are specifically granted ('assigned') access to the "
                f"application. The signed in user '{user.upn}' is blocked because they are not "
                "a direct member of a group with access, nor had access directly assigned by an "
                "administrator. Please contact your administrator to assign access to this "
                "application.",
            )
        return user
