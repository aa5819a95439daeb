"""People sign in to sweeper's console through the local Entra ID as they would through the
real one: the authorization code flow with PKCE, run by the real MSAL.

The console's part is played by ``msal.ConfidentialClientApplication``. The browser's part is
one GET of the ``auth_uri`` that does not follow the redirect: its ``Location`` is what the
console's callback would receive. Nobody types a password: the fake signs in the tenant user
the ``login_hint`` names, else ``fake.sign_in_as``.

What MSAL needs to talk to a local authority:

* ``instance_discovery=False``: otherwise MSAL asks login.microsoftonline.com whether the
  authority is a known one before anything else;
* its HTTP client trusting the fake's CA. ``verify=`` alone is not enough: requests lets
  ``REQUESTS_CA_BUNDLE`` or ``CURL_CA_BUNDLE``, when set, win over a session's ``verify``.
  A session with ``trust_env = False`` ignores them (and any proxy: nothing leaves the
  machine).
"""

from __future__ import annotations

import base64
import hashlib
import re
import ssl
from html import unescape
from typing import Any
from urllib.parse import parse_qsl, urlencode, urlsplit

import httpx
import msal
import orjson
import pytest
import requests

from sweeper.fakegraph import FakeGraph
from sweeper.fakegraph.tenant import CONSOLE_DPO, CONSOLE_VIEWER, DPO_ROLE, VIEWER_ROLE

# The console's callback. Never requested: the browser's last redirect is only read.
CALLBACK = "http://localhost:8400/auth/callback"
ORDINARY = "victim.care@northwick.example"  # an enabled account with no role in the console
SHARED_MAILBOX = "clinic.bookings@northwick.example"  # a disabled account

# Most tests use Entra's default response mode, query; MSAL warns on each such flow that it
# recommends form_post (which has a test of its own).
pytestmark = pytest.mark.filterwarnings("ignore:response_mode='form_post' is recommended")


@pytest.fixture
def registered(fake: FakeGraph) -> FakeGraph:
    """The fake, with the console's callback registered on its app, as an admin would."""
    fake.redirect_uris = [CALLBACK]
    return fake


def console(fake: FakeGraph, client_id: str | None = None) -> msal.ConfidentialClientApplication:
    """The console's MSAL application, pointed at the local authority."""
    http = requests.Session()
    http.trust_env = False
    http.verify = str(fake.ca_path)
    return msal.ConfidentialClientApplication(
        client_id or fake.client_id,
        client_credential=fake.client_secret,
        authority=f"{fake.authority}/{fake.tenant.tenant_id}",
        instance_discovery=False,
        http_client=http,
    )


def browse(fake: FakeGraph, url: str) -> httpx.Response:
    """The browser's visit to the sign-in page: its answer, redirects not followed."""
    return httpx.get(url, verify=ssl.create_default_context(cafile=str(fake.ca_path)))


def start(
    fake: FakeGraph, app: msal.ConfidentialClientApplication, **options: Any
) -> tuple[dict[str, Any], httpx.Response]:
    """The flow MSAL started (kept in the console's session), and Entra's answer to it."""
    options.setdefault("redirect_uri", CALLBACK)
    flow = app.initiate_auth_code_flow(scopes=[], **options)
    return flow, browse(fake, flow["auth_uri"])


def callback(answer: httpx.Response) -> dict[str, str]:
    """The query the console's callback receives from Entra's redirect."""
    assert answer.status_code == 302, answer.text
    location = urlsplit(answer.headers["location"])
    assert f"{location.scheme}://{location.netloc}{location.path}" == CALLBACK
    return dict(parse_qsl(location.query))


def sign_in(fake: FakeGraph, login_hint: str | None) -> dict[str, Any]:
    """The whole sign-in: MSAL's result at the callback."""
    app = console(fake)
    flow, answer = start(fake, app, login_hint=login_hint)
    result: dict[str, Any] = app.acquire_token_by_auth_code_flow(flow, callback(answer))
    return result


def error_page(answer: httpx.Response) -> str:
    """Entra's own error page: the browser stays there, the console hears nothing."""
    assert answer.status_code == 400
    assert "location" not in answer.headers
    assert answer.headers["content-type"].startswith("text/html")
    return unescape(answer.text)


def user_id(fake: FakeGraph, upn: str) -> str:
    user = fake.tenant.user(upn)
    assert user is not None
    return user.id


def jwt_claims(token: str) -> dict[str, Any]:
    part = token.split(".")[1]
    claims: dict[str, Any] = orjson.loads(b64url_decode(part))
    return claims


def b64url_decode(part: str) -> bytes:
    return base64.urlsafe_b64decode(part + "=" * (-len(part) % 4))


# -- who signs in, and what the console learns of them ---------------------------------------


def test_the_dpo_signs_in_and_her_id_token_carries_her_role(registered: FakeGraph) -> None:
    result = sign_in(registered, login_hint=CONSOLE_DPO.upper())  # a UPN in any case

    assert "error" not in result, result
    claims = result["id_token_claims"]
    assert claims["roles"] == [DPO_ROLE]
    assert claims["preferred_username"] == CONSOLE_DPO
    assert claims["name"] == "Margaret Osei"
    assert claims["oid"] == user_id(registered, CONSOLE_DPO)
    assert claims["tid"] == registered.tenant.tenant_id
    assert claims["aud"] == registered.client_id
    assert claims["iss"] == f"{registered.authority}/{registered.tenant.tenant_id}/v2.0"
    assert claims["nbf"] <= claims["iat"] < claims["exp"]


def test_the_viewer_gets_the_viewer_role(registered: FakeGraph) -> None:
    claims = sign_in(registered, login_hint=CONSOLE_VIEWER)["id_token_claims"]
    assert claims["roles"] == [VIEWER_ROLE]


def test_someone_with_no_role_signs_in_and_the_id_token_has_no_roles_claim(
    registered: FakeGraph,
) -> None:
    """With assignment not required (Entra's default), anyone in the tenant signs in: it is
    for the console to refuse an ID token without one of its roles."""
    result = sign_in(registered, login_hint=ORDINARY)
    assert result["id_token_claims"]["preferred_username"] == ORDINARY
    assert "roles" not in result["id_token_claims"]


def test_without_a_login_hint_the_default_user_signs_in(registered: FakeGraph) -> None:
    registered.sign_in_as = CONSOLE_VIEWER
    assert sign_in(registered, login_hint=None)["id_token_claims"]["roles"] == [VIEWER_ROLE]


def test_what_msal_checks_and_keeps(registered: FakeGraph) -> None:
    """MSAL sends a hash of its nonce and checks the ID token echoes it (a RuntimeError if
    not); ``client_info`` gives it the account's home ids; ``sub`` is not ``oid``."""
    app = console(registered)
    flow, answer = start(registered, app, login_hint=CONSOLE_DPO)
    result = app.acquire_token_by_auth_code_flow(flow, callback(answer))

    claims = result["id_token_claims"]
    assert claims["nonce"] == hashlib.sha256(flow["nonce"].encode()).hexdigest()
    assert claims["sub"] != claims["oid"]  # pairwise: the same user differs in every app
    [account] = app.get_accounts()
    assert account["username"] == CONSOLE_DPO
    assert account["home_account_id"] == f"{claims['oid']}.{claims['tid']}"
    assert "refresh_token" not in result  # sign-in needs none; the fake issues none
    assert jwt_claims(result["access_token"])["aud"] == "00000003-0000-0000-c000-000000000000"
    assert "roles" not in jwt_claims(result["access_token"])  # the app's Graph roles stay its own


def test_the_redirect_carries_code_state_and_session_state(registered: FakeGraph) -> None:
    flow, answer = start(registered, console(registered), login_hint=CONSOLE_DPO)
    params = callback(answer)
    assert params["state"] == flow["state"]
    assert params["code"] and params["session_state"]
    assert orjson.loads(b64url_decode(params["client_info"])) == {
        "uid": user_id(registered, CONSOLE_DPO),
        "utid": registered.tenant.tenant_id,
    }


def test_form_post_answers_a_form_that_posts_the_same_fields(registered: FakeGraph) -> None:
    app = console(registered)
    flow, answer = start(registered, app, login_hint=CONSOLE_DPO, response_mode="form_post")

    assert answer.status_code == 200
    assert f'action="{CALLBACK}"' in answer.text and 'method="POST"' in answer.text
    fields = {
        unescape(name): unescape(value)
        for name, value in re.findall(r'name="([^"]+)" value="([^"]*)"', answer.text)
    }
    assert fields["state"] == flow["state"]
    result = app.acquire_token_by_auth_code_flow(flow, fields)
    assert result["id_token_claims"]["roles"] == [DPO_ROLE]


# -- the code: once, soon, by whoever asked for it -------------------------------------------


def test_a_code_is_redeemed_once(registered: FakeGraph) -> None:
    app = console(registered)
    flow, answer = start(registered, app, login_hint=CONSOLE_DPO)
    params = callback(answer)
    assert "error" not in app.acquire_token_by_auth_code_flow(dict(flow), params)

    again = app.acquire_token_by_auth_code_flow(dict(flow), params)

    assert again["error"] == "invalid_grant"
    assert again["error_description"].startswith("AADSTS54005:")


def test_a_code_lives_ten_minutes(registered: FakeGraph) -> None:
    assert registered.code_lifetime == 600
    registered.code_lifetime = -1
    result = sign_in(registered, login_hint=CONSOLE_DPO)
    assert result["error"] == "invalid_grant"
    assert result["error_description"].startswith("AADSTS70008:")


def test_a_wrong_code_verifier_is_refused(registered: FakeGraph) -> None:
    """PKCE: a stolen code is useless without the verifier kept in the console's session."""
    app = console(registered)
    flow, answer = start(registered, app, login_hint=CONSOLE_DPO)
    flow["code_verifier"] = "x" * 43

    result = app.acquire_token_by_auth_code_flow(flow, callback(answer))

    assert result["error"] == "invalid_grant"
    assert result["error_description"].startswith("AADSTS501481:")


def test_the_redirect_uri_must_be_the_authorize_requests(registered: FakeGraph) -> None:
    other = "http://localhost:8400/elsewhere"
    registered.redirect_uris.append(other)
    app = console(registered)
    flow, answer = start(registered, app, login_hint=CONSOLE_DPO)
    flow["redirect_uri"] = other  # registered too, but not the one the code was issued for

    result = app.acquire_token_by_auth_code_flow(flow, callback(answer))

    assert result["error"] == "invalid_grant"
    assert result["error_description"].startswith("AADSTS50011:")


def test_a_wrong_client_secret_is_refused_at_redemption(registered: FakeGraph) -> None:
    app = console(registered)
    flow, answer = start(registered, app, login_hint=CONSOLE_DPO)
    impostor = msal.ConfidentialClientApplication(
        registered.client_id,
        client_credential="not-the-secret",
        authority=f"{registered.authority}/{registered.tenant.tenant_id}",
        instance_discovery=False,
        http_client=app.http_client,
    )
    result = impostor.acquire_token_by_auth_code_flow(flow, callback(answer))
    assert result["error"] == "invalid_client"
    assert result["error_description"].startswith("AADSTS7000215:")


def test_a_state_mismatch_is_caught_by_msal_before_any_token_request(
    registered: FakeGraph,
) -> None:
    """A callback the console did not start (CSRF): MSAL refuses it itself, and the code is
    left unredeemed."""
    app = console(registered)
    flow, answer = start(registered, app, login_hint=CONSOLE_DPO)
    forged = {**callback(answer), "state": "someone-elses"}

    with pytest.raises(ValueError, match="state mismatch"):
        app.acquire_token_by_auth_code_flow(flow, forged)

    assert "error" not in app.acquire_token_by_auth_code_flow(flow, callback(answer))


def test_without_openid_there_is_no_id_token(registered: FakeGraph) -> None:
    """OAuth alone, as Entra allows: a code for an access token, no ID token. (MSAL always
    asks for openid, so this is a plain request.)"""
    verifier = "v" * 43
    query = {
        "client_id": registered.client_id,
        "response_type": "code",
        "redirect_uri": CALLBACK,
        "scope": "User.Read",
        "login_hint": CONSOLE_DPO,
        "code_challenge": verifier,
        "code_challenge_method": "plain",
    }
    base = f"{registered.authority}/{registered.tenant.tenant_id}/oauth2/v2.0"
    code = callback(browse(registered, f"{base}/authorize?{urlencode(query)}"))["code"]

    token = httpx.post(
        f"{base}/token",
        data={
            "grant_type": "authorization_code",
            "client_id": registered.client_id,
            "client_secret": registered.client_secret,
            "code": code,
            "redirect_uri": CALLBACK,
            "code_verifier": verifier,
        },
        verify=ssl.create_default_context(cafile=str(registered.ca_path)),
    ).json()

    assert token["access_token"] and token["scope"] == "User.Read"
    assert "id_token" not in token


# -- errors Entra shows on its own page: the console never hears of them ---------------------


def test_no_redirect_uri_registered_is_an_error_page(fake: FakeGraph) -> None:
    """A new app registration has no redirect URI: Entra will send the browser nowhere."""
    _, answer = start(fake, console(fake), login_hint=CONSOLE_DPO)
    assert "AADSTS500113" in error_page(answer)


def test_a_redirect_uri_not_registered_is_an_error_page(registered: FakeGraph) -> None:
    _, answer = start(
        registered, console(registered), login_hint=CONSOLE_DPO, redirect_uri=CALLBACK + "/"
    )
    assert "AADSTS50011" in error_page(answer)


def test_an_unknown_client_is_an_error_page(registered: FakeGraph) -> None:
    stranger = console(registered, client_id="11111111-2222-4333-8444-555555555555")
    _, answer = start(registered, stranger, login_hint=CONSOLE_DPO)
    assert "AADSTS700016" in error_page(answer)


def test_with_nobody_to_sign_in_the_page_waits_for_a_person(registered: FakeGraph) -> None:
    """No login_hint and no ``sign_in_as``: where a person would type a name, the fake
    says what it lacks."""
    _, answer = start(registered, console(registered))
    assert "sign_in_as" in error_page(answer)


def test_an_account_not_in_the_tenant_or_disabled_is_an_error_page(
    registered: FakeGraph,
) -> None:
    _, unknown = start(registered, console(registered), login_hint="nobody@northwick.example")
    assert "AADSTS50034" in error_page(unknown)
    _, disabled = start(registered, console(registered), login_hint=SHARED_MAILBOX)
    assert "AADSTS50057" in error_page(disabled)


def test_when_assignment_is_required_a_user_without_a_role_is_stopped_at_entra(
    registered: FakeGraph,
) -> None:
    """Entra shows AADSTS50105 on its own page, not to the app: the console cannot explain
    the refusal itself. Those with a role still sign in."""
    registered.assignment_required = True

    _, answer = start(registered, console(registered), login_hint=ORDINARY)

    assert "AADSTS50105" in error_page(answer)
    assert sign_in(registered, login_hint=CONSOLE_DPO)["id_token_claims"]["roles"] == [DPO_ROLE]


# -- errors Entra sends back to the console, which MSAL hands over ---------------------------


def test_a_silent_sign_in_sends_the_refusal_back_as_access_denied(
    registered: FakeGraph,
) -> None:
    """``prompt=none`` forbids any page, so the same refusal comes back to the callback."""
    registered.assignment_required = True
    app = console(registered)
    flow, answer = start(registered, app, login_hint=ORDINARY, prompt="none")

    params = callback(answer)
    assert params["state"] == flow["state"] and "code" not in params
    result = app.acquire_token_by_auth_code_flow(flow, params)

    assert result["error"] == "access_denied"
    assert result["error_description"].startswith("AADSTS50105:")


def test_a_silent_sign_in_with_nobody_to_sign_in_is_login_required(
    registered: FakeGraph,
) -> None:
    app = console(registered)
    flow, answer = start(registered, app, prompt="none")
    result = app.acquire_token_by_auth_code_flow(flow, callback(answer))
    assert result["error"] == "login_required"


def test_a_response_type_other_than_code_is_sent_back(registered: FakeGraph) -> None:
    """MSAL only asks for codes; a hand-made implicit-flow request is refused, to the app."""
    app = console(registered)
    flow = app.initiate_auth_code_flow(scopes=[], redirect_uri=CALLBACK, login_hint=CONSOLE_DPO)
    implicit = flow["auth_uri"].replace("response_type=code", "response_type=id_token")

    result = app.acquire_token_by_auth_code_flow(flow, callback(browse(registered, implicit)))

    assert result["error"] == "unsupported_response_type"
    assert result["error_description"].startswith("AADSTS700054:")
