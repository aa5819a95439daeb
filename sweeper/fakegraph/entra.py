"""The local Entra ID's token endpoint, and the tokens the other listeners check.

:class:`Entra` answers ``POST /{tenant}/oauth2/v2.0/token`` for the app's client
credentials (a client secret, or a certificate's assertion), redeems the codes of people's
sign-in (:mod:`~sweeper.fakegraph.signin`), serves the OpenID configuration and, on the
Graph listener, the managed identity endpoint ``/msi/token``. Each token is for the
audience asked (Graph's, or Azure Monitor's) and lasts ``FakeGraph.token_lifetime``;
:meth:`Entra.token_of` finds the one a request carries, as Graph and the Logs Ingestion
API check it.
"""

from __future__ import annotations

import base64
import re
import secrets
import time
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import orjson
from aiohttp import web

from sweeper.fakegraph import signin
from sweeper.fakegraph.odata import json_answer
from sweeper.fakegraph.tenant import FakeUser

if TYPE_CHECKING:
    from sweeper.fakegraph.server import FakeGraph


@dataclass
class Token:
    """A token issued here: the app roles it grants, when it expires, whom it is for."""

    roles: tuple[str, ...]
    expires: float
    audience: str = ""


class Entra:
    """The token endpoint of one :class:`~sweeper.fakegraph.server.FakeGraph`'s app, and
    every token it issued (by its text)."""

    def __init__(self, fake: FakeGraph, codes: dict[str, signin.Grant]) -> None:
        self.fake = fake
        self.codes = codes  # the sign-in page's codes, redeemed here
        self.tokens: dict[str, Token] = {}

    def token_of(self, request: web.Request) -> Token | None:
        """The token issued here that the request's ``Authorization: Bearer`` carries."""
        header = request.headers.get("Authorization", "")
        return self.tokens.get(header[7:]) if header.startswith("Bearer ") else None

    def expire_all(self) -> None:
        """Every token issued so far expires now (the ``expire`` fault)."""
        for token in self.tokens.values():
            token.expires = min(token.expires, time.time() - 1)

    async def openid(self, request: web.Request) -> web.Response:
        tenant = request.match_info["tenant"]
        base = f"{self.fake.authority}/{tenant}"
        return json_answer(
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

    async def token(self, request: web.Request) -> web.Response:
        form = await request.post()
        if request.match_info["tenant"] != self.fake.tenant.tenant_id:
            return aad_error(400, "invalid_request", 90002, "Tenant not found.")
        grant_type = form.get("grant_type")
        if grant_type not in ("client_credentials", "authorization_code"):
            return aad_error(400, "unsupported_grant_type", 70003, "Unsupported grant type.")
        refused = self._client_refusal(form)
        if refused is not None:
            return refused
        if grant_type == "authorization_code":
            return self._redeem(form)
        scope = str(form.get("scope", ""))
        if not scope.endswith("/.default"):
            return aad_error(400, "invalid_scope", 1002012, "The scope is not valid.")
        return json_answer(self._issue_token(scope.removesuffix("/.default")))

    def _client_refusal(self, form: Any) -> web.Response | None:
        """The answer to a token request whose client is unknown or does not prove itself
        (a secret, or a certificate's assertion); None when the client is this app."""
        if form.get("client_id") != self.fake.client_id:
            return aad_error(
                400, "unauthorized_client", 700016, "Application was not found in the directory."
            )
        secret, assertion = form.get("client_secret"), form.get("client_assertion")
        if secret is not None:
            if not secrets.compare_digest(str(secret), self.fake.client_secret):
                return aad_error(401, "invalid_client", 7000215, "Invalid client secret provided.")
        elif isinstance(assertion, str):
            if not self._assertion_ok(assertion):
                return aad_error(
                    401, "invalid_client", 700027, "Client assertion failed signature validation."
                )
        else:
            return aad_error(
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
            and claims.get("iss") == claims.get("sub") == self.fake.client_id
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
            "iss": f"{self.fake.authority}/{self.fake.tenant.tenant_id}/v2.0",
            "tid": self.fake.tenant.tenant_id,
            "appid": self.fake.client_id,
            "exp": int(time.time()) + self.fake.token_lifetime,
            "jti": secrets.token_urlsafe(16),
        }
        roles = self.fake.roles if user is None else ()
        if user is None:
            claims["roles"] = list(roles)
        else:
            claims.update(oid=user.id, upn=user.upn, name=user.display_name, scp=" ".join(scopes))
        token = signin.unsigned_jwt(claims)
        self.tokens[token] = Token(roles, time.time() + self.fake.token_lifetime, audience)
        self.fake.issued_tokens.append(token)
        return {
            "token_type": "Bearer",
            "expires_in": self.fake.token_lifetime,
            "ext_expires_in": self.fake.token_lifetime,
            "access_token": token,
        }

    def _redeem(self, form: Any) -> web.Response:
        """``grant_type=authorization_code``: a code, once, for the client that asked it."""
        code = form.get("code")
        if not code:
            return aad_error(
                400,
                "invalid_request",
                900144,
                "The request body must contain the following parameter: 'code'.",
            )
        grant = self.codes.get(str(code))
        if grant is None or grant.client_id != form.get("client_id"):
            return aad_error(
                400, "invalid_grant", 9002313, "Invalid request. Request is malformed or invalid."
            )
        if grant.redeemed:
            return aad_error(
                400,
                "invalid_grant",
                54005,
                "OAuth2 Authorization code was already redeemed, please retry with a new valid "
                "code or use an existing refresh token.",
            )
        if grant.expires < time.time():
            return aad_error(
                400,
                "invalid_grant",
                70008,
                "The provided authorization code or refresh token has expired due to "
                "inactivity. Send a new interactive authorization request for this user and "
                "resource.",
            )
        redirect_uri = form.get("redirect_uri")
        if redirect_uri != grant.redirect_uri:
            return aad_error(
                400,
                "invalid_grant",
                50011,
                f"The reply address '{redirect_uri}' does not match the reply address "
                f"'{grant.redirect_uri}' provided when requesting Authorization code.",
            )
        if grant.challenge is not None:
            verifier = form.get("code_verifier")
            if not isinstance(verifier, str):
                return aad_error(
                    400,
                    "invalid_grant",
                    50148,
                    "The code_verifier does not match the code_challenge supplied in the "
                    "authorization request for PKCE.",
                )
            if not signin.verifier_matches(verifier, grant.challenge, grant.challenge_method):
                return aad_error(
                    400,
                    "invalid_grant",
                    501481,
                    "The Code_Verifier does not match the code_challenge supplied in the "
                    "authorization request.",
                )
        grant.redeemed = True
        return json_answer(
            self._user_tokens(grant, with_client_info=form.get("client_info") == "1")
        )

    def _user_tokens(self, grant: signin.Grant, with_client_info: bool) -> dict[str, Any]:
        """The token answer for a signed-in user: Graph's access token, and the ID token
        when ``openid`` was asked. ``offline_access`` is not granted: no refresh token."""
        scopes = tuple(s for s in grant.scopes if s != "offline_access")
        body = self._issue_token(signin.GRAPH_APP_ID, user=grant.user, scopes=scopes)
        body["scope"] = " ".join(scopes)
        if "openid" in grant.scopes:
            claims = signin.id_token_claims(
                grant,
                issuer=f"{self.fake.authority}/{self.fake.tenant.tenant_id}/v2.0",
                tenant_id=self.fake.tenant.tenant_id,
                lifetime=self.fake.token_lifetime,
                now=time.time(),
            )
            body["id_token"] = signin.unsigned_jwt(claims)
        if with_client_info:
            body["client_info"] = signin.client_info(grant.user, self.fake.tenant.tenant_id)
        return body

    async def managed_identity(self, request: web.Request, _: re.Match[str]) -> web.Response:
        if request.headers.get("X-IDENTITY-HEADER") != self.fake.identity_header:
            return json_answer({"error": "unauthorized", "message": "bad identity header"}, 401)
        if not request.query.get("resource"):
            return json_answer({"error": "invalid_request", "message": "resource is required"}, 400)
        issued = self._issue_token(request.query["resource"])
        return json_answer(
            {
                "access_token": issued["access_token"],
                "expires_on": str(int(time.time()) + self.fake.token_lifetime),
                "resource": request.query["resource"],
                "token_type": "Bearer",
            }
        )


def aad_error(status: int, error: str, code: int, text: str) -> web.Response:
    return json_answer(
        {
            "error": error,
            "error_description": f"AADSTS{code}: {text}",
            "error_codes": [code],
            "timestamp": time.strftime("%Y-%m-%d %H:%M:%SZ", time.gmtime()),
        },
        status,
    )
