"""The console as an ASGI app (Starlette): pages rendered on the server, no scripts at all.

Every page but sign-in needs a session: a signed cookie (``Secure`` over https,
``HttpOnly``, ``SameSite=Lax``) holding who signed in, their role and a CSRF token, which
ends ``console.session_minutes`` after sign-in. A DPO sees addresses when they ask
(recorded), triages and downloads; a viewer sees masked data and can change nothing (a
viewer's POST answers 403). Every form carries the session's CSRF token. Every answer
carries a strict Content-Security-Policy (no script, no inline style, nothing from other
hosts, no framing), ``Referrer-Policy: no-referrer``, ``Cache-Control: no-store``, and HSTS
when served over https.
"""

from __future__ import annotations

import base64
import binascii
import secrets
import time
from collections.abc import Awaitable, Callable, Mapping
from datetime import UTC, datetime
from pathlib import Path
from typing import Any
from urllib.parse import quote

import orjson
from sqlite_utils import Database
from starlette.applications import Starlette
from starlette.concurrency import run_in_threadpool
from starlette.middleware import Middleware
from starlette.middleware.sessions import SessionMiddleware
from starlette.requests import Request
from starlette.responses import HTMLResponse, RedirectResponse, Response
from starlette.routing import Mount, Route
from starlette.staticfiles import StaticFiles
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from sweeper import store
from sweeper.commands.settings import Settings
from sweeper.errors import ConfigError, PurgedError, SignInRefused, TriageError
from sweeper.graph.people import PeopleSignIn, Person, person_of
from sweeper.present.render import render
from sweeper.present.response import export_people, render_worksheet
from sweeper.rules.triage import ALLOWED
from sweeper.store.audit import Action, accesses, record_access
from sweeper.store.console import health, incidents_for_console
from sweeper.store.incidents import top_domains
from sweeper.store.response import incident_view, people_to_notify, worksheet
from sweeper.store.triage import history, set_status

STATIC = Path(__file__).parent / "static"
COOKIE = "sweeper_console"
CSP = (
    "default-src 'none'; style-src 'self'; img-src 'self'; form-action 'self'; "
    "frame-ancestors 'none'; base-uri 'none'"
)
Endpoint = Callable[[Request], Awaitable[Response]]


def create_app(
    settings: Settings,
    env: Mapping[str, str],
    *,
    people: PeopleSignIn | None = None,
    session_key: str | None = None,
) -> Starlette:
    """The console for ``settings`` (its ``[console]`` section, database and sign-in).

    ``session_key`` signs the cookies; by default a new random one per process, so that a
    restart ends every session and no key is kept anywhere.
    """
    console = settings.console
    if console.redirect_uri is None:
        raise ConfigError(
            "console.url",
            "must be set: the console's address, whose /auth/callback is registered as the "
            "app's redirect URI (deploy/app-registration)",
        )
    if people is None and not console.easy_auth:  # behind Easy Auth, App Service signs in
        people = PeopleSignIn(settings.sign_in, env, console.redirect_uri)
    site = _Site(settings, people)
    routes = [
        Route("/", site.home),
        Route("/signin", site.signin),
        Route("/auth/callback", site.callback),
        Route("/signout", site.signout, methods=["POST"]),
        Route("/signed-out", site.signed_out),
        Route("/incidents", site.guard(site.incidents)),
        Route("/incidents/{id:int}", site.guard(site.incident)),
        Route("/incidents/{id:int}/reveal", site.guard(site.reveal, dpo=True), methods=["POST"]),
        Route("/incidents/{id:int}/triage", site.guard(site.triage, dpo=True), methods=["POST"]),
        Route("/incidents/{id:int}/export", site.guard(site.export, dpo=True)),
        Route("/incidents/{id:int}/worksheet", site.guard(site.worksheet, dpo=True)),
        Route("/health", site.guard(site.health)),
        Mount("/static", StaticFiles(directory=STATIC), name="static"),
    ]
    middleware = [
        Middleware(SecurityHeaders, hsts=console.secure),
        Middleware(
            SessionMiddleware,
            secret_key=session_key or secrets.token_urlsafe(32),
            session_cookie=COOKIE,
            max_age=console.session_minutes * 60,
            same_site="lax",
            https_only=console.secure,
        ),
    ]
    return Starlette(routes=routes, middleware=middleware)


class SecurityHeaders:
    """The headers every answer carries (a pure ASGI middleware: it sees every answer,
    errors and static files included)."""

    def __init__(self, app: ASGIApp, *, hsts: bool) -> None:
        self.app = app
        self.hsts = hsts

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return

        async def with_headers(message: Message) -> None:
            if message["type"] == "http.response.start":
                headers = [
                    (k, v) for k, v in message.get("headers", []) if k.lower() != b"cache-control"
                ]
                headers += [
                    (b"content-security-policy", CSP.encode()),
                    (b"x-content-type-options", b"nosniff"),
                    (b"x-frame-options", b"DENY"),
                    (b"referrer-policy", b"no-referrer"),
                    (b"cache-control", b"no-store"),
                ]
                if self.hsts:
                    headers.append((b"strict-transport-security", b"max-age=31536000"))
                message = {**message, "headers": headers}
            await send(message)

        await self.app(scope, receive, with_headers)


def safe_next(target: str | None) -> str:
    """Where to go after sign-in: a path of this site, never another site's address."""
    if (
        not target
        or not target.startswith("/")
        or target.startswith("//")
        or "\\" in target
        or any(ord(c) < 0x20 for c in target)
    ):
        return "/incidents"
    return target


class _Site:
    def __init__(self, settings: Settings, people: PeopleSignIn | None) -> None:
        self.settings = settings
        self.people = people
        self.lifetime = settings.console.session_minutes * 60

    # -- the pieces every page shares ---------------------------------------------------

    def _db(self) -> Database:
        return store.open_db(self.settings.database)

    def _page(self, request: Request, name: str, status: int = 200, **values: Any) -> Response:
        db = values.pop("db", None)
        if self.settings.console.easy_auth:  # no sign-in here to make the form token at
            request.session.setdefault("csrf", secrets.token_urlsafe(32))
        internal = (*(store.verified_domains(db) if db else ()), *self.settings.own_domains)
        body = render(
            f"console/{name}.html.j2",
            internal,
            self.settings.timezone,
            reveal=bool(values.get("revealed", False)),
            person=self._person(request),
            csrf=request.session.get("csrf", ""),
            **values,
        )
        return HTMLResponse(body, status_code=status)

    def _message(self, request: Request, status: int, title: str, text: str) -> Response:
        return self._page(request, "message", status, title=title, text=text)

    def _person(self, request: Request) -> Person | None:
        if self.settings.console.easy_auth:
            principal = request.headers.get("x-ms-client-principal")
            return _easy_auth_person(principal) if principal else None
        session = request.session
        if "upn" not in session or time.time() - float(session.get("since", 0)) > self.lifetime:
            return None
        return Person(session["upn"], session["name"], session["role"])

    def guard(self, endpoint: Endpoint, *, dpo: bool = False) -> Endpoint:
        """Signed in, or sent to sign in; for ``dpo`` pages, the DPO role; a POST, with
        the session's CSRF token."""

        async def guarded(request: Request) -> Response:
            person = self._person(request)
            if person is None:
                request.session.clear()
                target = request.url.path + (f"?{request.url.query}" if request.url.query else "")
                return RedirectResponse(f"/signin?next={_quote(target)}", status_code=303)
            if request.method == "POST" and not await self._csrf_ok(request):
                return self._message(
                    request, 403, "Refused", "The form was not this session's: reload the page."
                )
            if dpo and person.role != "dpo":
                return self._message(
                    request, 403, "Not allowed", "Only the Data Protection Officer's role can."
                )
            return await endpoint(request)

        return guarded

    async def _csrf_ok(self, request: Request) -> bool:
        expected = str(request.session.get("csrf", ""))
        given = str((await request.form()).get("csrf", ""))
        return bool(expected) and secrets.compare_digest(given, expected)

    def _audit(
        self, request: Request, action: Action, incident_id: int, detail: str, db: Database
    ) -> None:
        person = self._person(request)
        assert person is not None  # guarded
        client = request.client.host if request.client else "unknown"
        record_access(
            db, who=person.upn, name=person.name, source=client, action=action,
            incident_id=incident_id, detail=detail,
        )  # fmt: skip

    # -- signing in and out -----------------------------------------------------------

    async def home(self, request: Request) -> Response:
        return RedirectResponse("/incidents", status_code=303)

    async def signin(self, request: Request) -> Response:
        target = safe_next(request.query_params.get("next"))
        if self._person(request) is not None:
            return RedirectResponse(target, status_code=303)
        if self.people is None:  # App Service authentication signs people in
            login = f"/.auth/login/aad?post_login_redirect_uri={_quote(target)}"
            return RedirectResponse(login, status_code=303)
        hint = request.query_params.get("login_hint") or None
        flow = await run_in_threadpool(self.people.start, hint)
        request.session.clear()
        request.session.update({"flow": flow, "next": target})
        return RedirectResponse(flow["auth_uri"], status_code=303)

    async def callback(self, request: Request) -> Response:
        flow = request.session.pop("flow", None)
        target = safe_next(request.session.pop("next", None))
        if not isinstance(flow, dict) or self.people is None:
            return self._message(
                request, 400, "Sign-in expired", "This sign-in was not started here, or took too "
                "long. Start again from the console's address.",
            )  # fmt: skip
        try:
            person = await run_in_threadpool(self.people.finish, flow, dict(request.query_params))
        except SignInRefused as refused:
            request.session.clear()
            return self._message(request, 403, "Not signed in", str(refused))
        request.session.clear()
        request.session.update(
            {
                "upn": person.upn,
                "name": person.name,
                "role": person.role,
                "since": time.time(),
                "csrf": secrets.token_urlsafe(32),
            }
        )
        return RedirectResponse(target, status_code=303)

    async def signout(self, request: Request) -> Response:
        if self._person(request) is not None and not await self._csrf_ok(request):
            return self._message(request, 403, "Refused", "The form was not this session's.")
        request.session.clear()
        return RedirectResponse("/signed-out", status_code=303)

    async def signed_out(self, request: Request) -> Response:
        return self._message(request, 200, "Signed out", "You are signed out of the console.")

    # -- pages ----------------------------------------------------------------------

    async def incidents(self, request: Request) -> Response:
        query = request.query_params
        filters = {k: (query.get(k) or "").strip() or None for k in _FILTERS}
        db = self._db()
        rows = incidents_for_console(db, **filters)
        return self._page(request, "incidents", db=db, rows=rows, filters=filters)

    async def incident(self, request: Request, *, reveal: bool = False) -> Response:
        incident_id = int(request.path_params["id"])
        db = self._db()
        try:
            view = incident_view(db, incident_id)
        except TriageError:
            return self._message(request, 404, "No such incident", f"No incident {incident_id}.")
        try:
            people = people_to_notify(db, incident_id)
        except PurgedError as purged:
            people, gone = [], str(purged)
        else:
            gone = ""
        sheet = worksheet(db, incident_id, self.settings.severity, now=datetime.now(UTC))
        return self._page(
            request,
            "incident",
            db=db,
            revealed=reveal,
            view=view,
            people=people,
            gone=gone,
            sheet=sheet,
            history=history(db, incident_id),
            domains=top_domains(db, incident_id, limit=10),
            trail=accesses(db, incident_id),
            steps=ALLOWED.get(view.incident["status"], ()),
        )

    async def reveal(self, request: Request) -> Response:
        incident_id = int(request.path_params["id"])
        db = self._db()
        with store.transaction(db):
            self._audit(request, "reveal", incident_id, "exposed addresses shown", db)
        return await self.incident(request, reveal=True)

    async def triage(self, request: Request) -> Response:
        incident_id = int(request.path_params["id"])
        form = await request.form()
        target, note = str(form.get("status", "")), str(form.get("note", ""))
        person = self._person(request)
        assert person is not None
        db = self._db()
        try:
            with store.transaction(db):
                set_status(db, incident_id, target, by=person.upn, note=note)
                self._audit(request, "triage", incident_id, f"status set to {target}", db)
        except TriageError as refused:
            return self._message(request, 400, "Not changed", str(refused))
        return RedirectResponse(f"/incidents/{incident_id}", status_code=303)

    async def export(self, request: Request) -> Response:
        incident_id = int(request.path_params["id"])
        db = self._db()
        try:
            rows = people_to_notify(db, incident_id)
        except (PurgedError, TriageError) as gone:
            return self._message(request, 404, "Nothing to export", str(gone))
        with store.transaction(db):
            self._audit(request, "export", incident_id, f"{len(rows)} people (CSV)", db)
        return _download(export_people(rows, "csv"), f"incident-{incident_id}-people.csv", "csv")

    async def worksheet(self, request: Request) -> Response:
        incident_id = int(request.path_params["id"])
        db = self._db()
        try:
            sheet = worksheet(db, incident_id, self.settings.severity, now=datetime.now(UTC))
        except TriageError as gone:
            return self._message(request, 404, "No such incident", str(gone))
        with store.transaction(db):
            self._audit(request, "worksheet", incident_id, "worksheet (HTML)", db)
        html = render_worksheet(sheet, "html", self.settings.own_domains, self.settings.timezone)
        return _download(html, f"incident-{incident_id}-worksheet.html", "html")

    async def health(self, request: Request) -> Response:
        db = self._db()
        return self._page(request, "health", db=db, health=health(db))


_FILTERS = ("severity", "status", "since", "until", "sender")


def _download(text: str, filename: str, kind: str) -> Response:
    media = {"csv": "text/csv; charset=utf-8", "html": "text/html; charset=utf-8"}[kind]
    return Response(
        text,
        media_type=media,
        headers={"Content-Disposition": f'attachment; filename="{filename}"'},
    )


def _quote(path: str) -> str:
    return quote(path, safe="/")


def _easy_auth_person(principal: str) -> Person | None:
    """The person App Service authentication signed in (``X-MS-CLIENT-PRINCIPAL``: base64
    JSON of the ID token's claims), when ``console.easy_auth`` trusts it."""
    try:
        body = orjson.loads(base64.b64decode(principal, validate=True))
        claims: dict[str, Any] = {}
        for claim in body.get("claims", []):
            kind, value = claim.get("typ"), claim.get("val")
            if kind == "roles":
                claims.setdefault("roles", []).append(value)
            elif isinstance(kind, str):
                claims[kind] = value
        return person_of(claims)
    except (ValueError, binascii.Error, orjson.JSONDecodeError, AttributeError, SignInRefused):
        return None
