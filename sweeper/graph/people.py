"""People signing in to the console with Entra ID: OpenID Connect's authorization-code flow
with PKCE, through MSAL, against the same tenant and app registration as the sweep.

:meth:`PeopleSignIn.start` makes the flow (state, nonce, PKCE verifier) and the URL to send
the browser to; the console keeps the flow in its signed session cookie until Entra sends
the browser back; :meth:`PeopleSignIn.finish` redeems the code and reads the ID token's
claims, which MSAL has checked against the flow (state, nonce). Who may do what comes from
the token's ``roles`` claim, the app roles assigned in Entra (deploy/app-registration):
nobody without one gets in.

MSAL is synchronous (it speaks HTTP through requests): the console calls it in a worker
thread. Tokens are not kept: the account is removed from MSAL's cache once read.
"""

from __future__ import annotations

import warnings
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

from sweeper.errors import ConfigError, SignInRefused
from sweeper.graph.endpoints import SignIn

Role = Literal["dpo", "viewer"]
ROLE_OF_APP_ROLE: dict[str, Role] = {"Sweeper.DPO": "dpo", "Sweeper.Viewer": "viewer"}


@dataclass(frozen=True)
class Person:
    upn: str  # preferred_username: the account's sign-in name
    name: str
    role: Role


class PeopleSignIn:
    def __init__(self, sign_in: SignIn, env: Mapping[str, str], redirect_uri: str) -> None:
        if sign_in.method not in ("client_secret", "certificate"):
            raise ConfigError(
                "graph.auth",
                f"{sign_in.method!r} cannot sign people in to the console: it needs the app's "
                "client secret or certificate (client_secret or certificate)",
            )
        self._sign_in = sign_in
        self._env = dict(env)
        self.redirect_uri = redirect_uri
        self._app: Any = None

    def _msal(self) -> Any:
        if self._app is None:
            import msal  # type: ignore[import-untyped]

            sign_in = self._sign_in
            credential: Any
            if sign_in.method == "client_secret":
                credential = self._env["AZURE_CLIENT_SECRET"]
            else:
                credential = _certificate(self._env)
            options: dict[str, Any] = {"http_client": self._http(), "timeout": sign_in.timeout}
            self._app = msal.ConfidentialClientApplication(
                sign_in.client_id or "",
                client_credential=credential,
                authority=f"{sign_in.authority_host.rstrip('/')}/{sign_in.tenant_id}",
                # A custom authority is unknown to Microsoft's instance discovery.
                instance_discovery=not sign_in.custom,
                exclude_scopes=["offline_access"],  # signing in needs no refresh token
                **options,
            )
        return self._app

    def _http(self) -> Any:
        """MSAL's HTTP session: the proxy and CA bundle of every client (requests would let
        REQUESTS_CA_BUNDLE override a session's own CA bundle unless the session ignores
        the environment, so it does, and is given the proxy explicitly)."""
        from sweeper.graph.boundedrequests import BoundedSession
        from sweeper.graph.network import Outbound

        sign_in = self._sign_in
        outbound = Outbound.of(
            self._env,
            ca_bundle=sign_in.ca_bundle,
            timeout=sign_in.timeout,
            max_answer_bytes=sign_in.max_answer_mb * 1024 * 1024,
        )
        http = BoundedSession(outbound, "Entra ID's answer")  # whole, in time, bounded
        http.trust_env = False
        http.proxies.update(outbound.requests_proxies(sign_in.authority_host))
        if outbound.ca_bundle is not None:
            http.verify = outbound.ca_bundle
        return http

    def start(self, login_hint: str | None = None) -> dict[str, Any]:
        """A new flow: ``flow["auth_uri"]`` is where the browser goes to sign in."""
        # MSAL advises form_post; but Entra's form posts back from its own site, and a
        # SameSite=Lax session cookie (with this flow in it) is not sent with that POST.
        # The code in the query is redeemed once, with PKCE, so query mode is safe here.
        with warnings.catch_warnings():
            warnings.filterwarnings("ignore", category=UserWarning, module="msal")
            flow: dict[str, Any] = self._msal().initiate_auth_code_flow(
                [], redirect_uri=self.redirect_uri, login_hint=login_hint, response_mode="query"
            )
        return flow

    def finish(self, flow: dict[str, Any], answer: Mapping[str, str]) -> Person:
        """The person Entra signed in, from the redirect's query; SignInRefused otherwise."""
        try:
            result = self._msal().acquire_token_by_auth_code_flow(flow, dict(answer))
        except (ValueError, RuntimeError) as exc:  # MSAL: another flow's state, or nonce
            raise SignInRefused(f"the sign-in answer did not match its request ({exc})") from None
        if "error" in result:
            first = str(result.get("error_description") or "").splitlines()[:1]
            raise SignInRefused(
                f"Entra ID refused the sign-in: {result['error']}: {''.join(first)}"
            )
        claims: dict[str, Any] = result.get("id_token_claims") or {}
        for account in self._msal().get_accounts():
            self._msal().remove_account(account)
        return person_of(claims)


def person_of(claims: Mapping[str, Any]) -> Person:
    """The person an ID token names, with the strongest sweeper role it grants."""
    upn = str(claims.get("preferred_username") or claims.get("upn") or "").strip()
    if not upn:
        raise SignInRefused("the ID token names no account (no preferred_username)")
    roles = claims.get("roles") or []
    granted = [ROLE_OF_APP_ROLE[r] for r in roles if isinstance(r, str) and r in ROLE_OF_APP_ROLE]
    if not granted:
        raise SignInRefused(
            f"{upn} has no sweeper role: an administrator assigns Sweeper.DPO or "
            "Sweeper.Viewer in Entra ID (Enterprise applications, Users and groups)"
        )
    role: Role = "dpo" if "dpo" in granted else "viewer"
    return Person(upn.lower(), str(claims.get("name") or upn), role)


def _certificate(env: Mapping[str, str]) -> dict[str, Any]:
    """MSAL's client credential from the PEM certificate sweeper signs in with."""
    from cryptography import x509
    from cryptography.hazmat.primitives import hashes

    pem = Path(env["AZURE_CLIENT_CERTIFICATE_PATH"]).read_bytes()
    certificate = x509.load_pem_x509_certificate(pem)
    password = env.get("AZURE_CLIENT_CERTIFICATE_PASSWORD") or None
    return {
        "private_key": pem.decode(),
        "thumbprint": certificate.fingerprint(hashes.SHA1()).hex(),  # noqa: S303 (Entra's x5t)
        "passphrase": password,
    }
