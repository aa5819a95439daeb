"""The console as an ASGI app (Starlette): pages rendered on the server, no scripts at all.

Every page but sign-in needs a session: a signed cookie (``Secure`` over https,
``HttpOnly``, ``SameSite=Lax``) holding a random session id and a CSRF token; the session
itself (who, their role, when it ends, ``console.session_minutes`` after sign-in) is kept
in the database and checked on every request, so that signing out ends it for good. A DPO
sees addresses and names when they ask (recorded), triages and downloads; a viewer sees
masked data and can change nothing (a viewer's POST answers 403). Every form carries the
session's CSRF token. Every answer (failures included, see :mod:`.middleware`) carries a
strict Content-Security-Policy (no script, no inline style, nothing from other hosts, no
framing), ``Referrer-Policy: no-referrer``, ``Cache-Control: no-store``, and HSTS when
served over https.

Pages are read and rendered in worker threads, each with its own connection to the
database, so that one large incident never holds the event loop and everyone else with it.
The database must exist: the console never creates one.
"""

from __future__ import annotations

import base64
import binascii
import secrets
from collections.abc import Awaitable, Callable, Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any
from urllib.parse import quote

import orjson
from sqlite_utils import Database
from starlette.applications import Starlette
from starlette.concurrency import run_in_threadpool
from starlette.convertors import Convertor, register_url_convertor
from starlette.datastructures import FormData
from starlette.exceptions import HTTPException
from starlette.middleware import Middleware
from starlette.middleware.sessions import SessionMiddleware
from starlette.requests import Request
from starlette.responses import HTMLResponse, RedirectResponse, Response
from starlette.routing import Mount, Route
from starlette.staticfiles import StaticFiles

from sweeper.console.middleware import (
    CSP,
    VIA_PROXY,
    Failures,
    ForwardedFor,
    SecurityHeaders,
    log,
    networks,
    refusals,
)
from sweeper.errors import (
    ConfigError,
    PurgedError,
    SignInRefused,
    SignInUnavailable,
    TriageError,
)
from sweeper.graph.people import PeopleSignIn, Person, person_of
from sweeper.present.render import render
from sweeper.present.response import export_people, render_worksheet
from sweeper.rules.triage import ALLOWED
from sweeper.settings import Settings
from sweeper.store import transaction, verified_domains
from sweeper.store.audit import Action, accesses, record_access
from sweeper.store.console import (
    end_session,
    health,
    incidents_for_console,
    open_existing,
    session_of,
    start_session,
)
from sweeper.store.incidents import top_domains
from sweeper.store.response import incident_view, people_to_notify, worksheet
from sweeper.store.triage import history, set_status

__all__ = ["COOKIE", "CSP", "create_app", "safe_next"]

STATIC = Path(__file__).parent / "static"
COOKIE = "sweeper_console"
LARGEST_ID = 2**63 - 1  # SQLite's largest integer: no incident has a larger id
Endpoint = Callable[[Request], Awaitable[Response]]


@dataclass(frozen=True)
class Call:
    """One guarded request, as a page handler (run in a worker thread) gets it."""

    request: Request
    db: Database
    person: Person
    form: FormData | None


Page = Callable[[Call], Response]


class IncidentId(Convertor[int]):
    """An incident's id in a path: digits, at most 30 of them (longer is no route, 404), so
    that no id is too long for Python to read; one beyond SQLite's integers is refused as
    no such incident by the guard."""

    regex = "[0-9]{1,30}"

    def convert(self, value: str) -> int:
        return int(value)

    def to_string(self, value: int) -> str:
        return str(value)


register_url_convertor("incident", IncidentId())


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
        Route("/incidents/{id:incident}", site.guard(site.incident)),
        Route(
            "/incidents/{id:incident}/reveal", site.guard(site.reveal, dpo=True), methods=["POST"]
        ),
        Route(
            "/incidents/{id:incident}/triage", site.guard(site.triage, dpo=True), methods=["POST"]
        ),
        Route("/incidents/{id:incident}/export", site.guard(site.export, dpo=True)),
        Route("/incidents/{id:incident}/worksheet", site.guard(site.worksheet, dpo=True)),
        Route("/health", site.guard(site.health)),
        Mount("/static", StaticFiles(directory=STATIC), name="static"),
    ]
    middleware = [
        Middleware(SecurityHeaders, hsts=console.secure),
        Middleware(Failures, page=site.failure_page),
        Middleware(ForwardedFor, trusted=networks(console.trusted_proxies)),
        Middleware(
            SessionMiddleware,
            secret_key=session_key or secrets.token_urlsafe(32),
            session_cookie=COOKIE,
            max_age=console.session_minutes * 60,
            same_site="lax",
            https_only=console.secure,
        ),
    ]
    return Starlette(
        routes=routes,
        middleware=middleware,
        exception_handlers={HTTPException: refusals(site.failure_page)},
    )


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
        self.minutes = settings.console.session_minutes

    # -- the pieces every page shares ---------------------------------------------------

    @contextmanager
    def _db(self) -> Iterator[Database]:
        """The database, opened in this thread for one request and closed after it."""
        db = open_existing(self.settings.database)
        try:
            yield db
        finally:
            db.conn.close()

    def _render(self, request: Request | None, person: Person | None, name: str,
                db: Database | None = None, **values: Any) -> str:  # fmt: skip
        if request is not None and self.settings.console.easy_auth:  # no sign-in here
            request.session.setdefault("csrf", secrets.token_urlsafe(32))  # to make it at
        internal = (*(verified_domains(db) if db else ()), *self.settings.own_domains)
        return render(
            f"console/{name}.html.j2",
            internal,
            self.settings.timezone,
            reveal=bool(values.get("revealed", False)),
            person=person,
            csrf=request.session.get("csrf", "") if request else "",
            **values,
        )

    def _page(self, call: Call, name: str, status: int = 200, **values: Any) -> Response:
        body = self._render(call.request, call.person, name, call.db, **values)
        return HTMLResponse(body, status_code=status)

    def _message(
        self, request: Request, status: int, title: str, text: str, person: Person | None = None
    ) -> Response:
        body = self._render(request, person, "message", title=title, text=text)
        return HTMLResponse(body, status_code=status)

    def failure_page(self, status: int, title: str, text: str) -> bytes:
        """The page of a failure (:class:`.middleware.Failures`): nobody named, one line."""
        return self._render(None, None, "message", title=title, text=text).encode()

    def _person(self, request: Request, db: Database | None) -> Person | None:
        """Who this request is from: App Service's header behind Easy Auth, else the
        session the cookie names, if it is neither revoked nor over."""
        if self.settings.console.easy_auth:
            # App Service's front end sets this header; with console.trusted_proxies set, only
            # a request through one of those may carry it (any other client could write it).
            trusted = self.settings.console.trusted_proxies
            if trusted and not request.scope.get(VIA_PROXY, False):
                return None
            principal = request.headers.get("x-ms-client-principal")
            return _easy_auth_person(principal) if principal else None
        token = request.session.get("sid")
        if not isinstance(token, str) or db is None:
            return None
        found = session_of(db, token, now=datetime.now(UTC))
        if found is None:
            return None
        return Person(found.who, found.name, "dpo" if found.role == "dpo" else "viewer")

    def guard(self, page: Page, *, dpo: bool = False) -> Endpoint:
        """Signed in, or sent to sign in; for ``dpo`` pages, the DPO role; a POST, with
        the session's CSRF token. The page runs in a worker thread."""

        async def guarded(request: Request) -> Response:
            form = await request.form() if request.method == "POST" else None
            return await run_in_threadpool(self._guarded, request, page, dpo, form)

        return guarded

    def _guarded(self, request: Request, page: Page, dpo: bool, form: FormData | None) -> Response:
        with self._db() as db:
            person = self._person(request, db)
            if person is None:
                request.session.clear()
                target = request.url.path + (f"?{request.url.query}" if request.url.query else "")
                return RedirectResponse(f"/signin?next={_quote(target)}", status_code=303)
            if form is not None and not _csrf_ok(request, form):
                return self._message(
                    request, 403, "Refused", "The form was not this session's: reload the page.",
                    person,
                )  # fmt: skip
            if dpo and person.role != "dpo":
                return self._message(
                    request, 403, "Not allowed", "Only the Data Protection Officer's role can.",
                    person,
                )  # fmt: skip
            incident_id = request.path_params.get("id")
            if isinstance(incident_id, int) and not 0 < incident_id <= LARGEST_ID:
                log.warning("console: %s asked for incident %.40s, beyond SQLite's integers",
                            person.upn, incident_id)  # fmt: skip
                return self._message(
                    request, 404, "No such incident", f"No incident {incident_id}.", person
                )
            return page(Call(request, db, person, form))

    def _audit(self, call: Call, action: Action, incident_id: int, detail: str) -> None:
        client = call.request.client.host if call.request.client else "unknown"
        record_access(
            call.db, who=call.person.upn, name=call.person.name, source=client, action=action,
            incident_id=incident_id, detail=detail,
        )  # fmt: skip

    # -- signing in and out -----------------------------------------------------------

    async def home(self, request: Request) -> Response:
        return RedirectResponse("/incidents", status_code=303)

    def signin(self, request: Request) -> Response:
        target = safe_next(request.query_params.get("next"))
        if self.people is None:  # App Service authentication signs people in
            login = f"/.auth/login/aad?post_login_redirect_uri={_quote(target)}"
            return RedirectResponse(login, status_code=303)
        with self._db() as db:
            if self._person(request, db) is not None:
                return RedirectResponse(target, status_code=303)
        hint = request.query_params.get("login_hint") or None
        try:
            flow = self.people.start(hint)
        except Exception as exc:  # MSAL reaches Entra ID for its metadata: any failure
            raise SignInUnavailable(exc) from exc
        request.session.clear()
        request.session.update({"flow": flow, "next": target})
        return RedirectResponse(flow["auth_uri"], status_code=303)

    def callback(self, request: Request) -> Response:
        flow = request.session.pop("flow", None)
        target = safe_next(request.session.pop("next", None))
        if not isinstance(flow, dict) or self.people is None:
            return self._message(
                request, 400, "Sign-in expired", "This sign-in was not started here, or took too "
                "long. Start again from the console's address.",
            )  # fmt: skip
        try:
            person = self.people.finish(flow, dict(request.query_params))
        except SignInRefused as refused:
            request.session.clear()
            return self._message(request, 403, "Not signed in", str(refused))
        except Exception as exc:  # MSAL redeems the code with Entra ID: any failure
            raise SignInUnavailable(exc) from exc
        with self._db() as db:
            token = start_session(
                db, who=person.upn, name=person.name, role=person.role, minutes=self.minutes,
                now=datetime.now(UTC),
            )  # fmt: skip
        request.session.clear()
        request.session.update({"sid": token, "csrf": secrets.token_urlsafe(32)})
        return RedirectResponse(target, status_code=303)

    async def signout(self, request: Request) -> Response:
        form = await request.form()
        return await run_in_threadpool(self._signout, request, form)

    def _signout(self, request: Request, form: FormData) -> Response:
        easy_auth = self.settings.console.easy_auth
        token = request.session.get("sid")
        refused = "The form was not this session's."
        if easy_auth:  # who is signed in comes from App Service's header: no session here
            if self._person(request, None) is not None and not _csrf_ok(request, form):
                return self._message(request, 403, "Refused", refused)
        elif isinstance(token, str):
            with self._db() as db:
                if self._person(request, db) is not None and not _csrf_ok(request, form):
                    return self._message(request, 403, "Refused", refused)
                end_session(db, token, now=datetime.now(UTC))  # the cookie is no session now
        request.session.clear()
        if easy_auth:  # App Service's own session must end too, or it signs straight back in
            return RedirectResponse(
                f"/.auth/logout?post_logout_redirect_uri={_quote('/')}", status_code=303
            )
        return RedirectResponse("/signed-out", status_code=303)

    async def signed_out(self, request: Request) -> Response:
        return self._message(request, 200, "Signed out", "You are signed out of the console.")

    # -- pages (each in a worker thread) ------------------------------------------------

    def incidents(self, call: Call) -> Response:
        query = call.request.query_params
        filters = {k: (query.get(k) or "").strip() or None for k in _FILTERS}
        rows = incidents_for_console(call.db, **filters)
        return self._page(call, "incidents", rows=rows, filters=filters)

    def incident(self, call: Call, *, reveal: bool = False) -> Response:
        db, incident_id = call.db, int(call.request.path_params["id"])
        try:
            view = incident_view(db, incident_id)
        except TriageError:
            return self._page(
                call, "message", 404, title="No such incident", text=f"No incident {incident_id}."
            )
        try:
            people = people_to_notify(db, incident_id)
        except PurgedError as purged:
            people, gone = [], str(purged)
        else:
            gone = ""
        sheet = worksheet(db, incident_id, self.settings.severity, now=datetime.now(UTC))
        return self._page(
            call,
            "incident",
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

    def reveal(self, call: Call) -> Response:
        incident_id = int(call.request.path_params["id"])
        with transaction(call.db):
            self._audit(call, "reveal", incident_id, "exposed addresses and names shown")
        return self.incident(call, reveal=True)

    def triage(self, call: Call) -> Response:
        incident_id = int(call.request.path_params["id"])
        form = call.form or FormData()
        target, note = str(form.get("status", "")), str(form.get("note", ""))
        try:
            with transaction(call.db):
                set_status(call.db, incident_id, target, by=call.person.upn, note=note)
                self._audit(call, "triage", incident_id, f"status set to {target}")
        except TriageError as refused:
            return self._page(call, "message", 400, title="Not changed", text=str(refused))
        return RedirectResponse(f"/incidents/{incident_id}", status_code=303)

    def export(self, call: Call) -> Response:
        incident_id = int(call.request.path_params["id"])
        try:
            rows = people_to_notify(call.db, incident_id)
        except (PurgedError, TriageError) as gone:
            return self._page(call, "message", 404, title="Nothing to export", text=str(gone))
        with transaction(call.db):
            self._audit(call, "export", incident_id, f"{len(rows)} people (CSV)")
        return _download(export_people(rows, "csv"), f"incident-{incident_id}-people.csv", "csv")

    def worksheet(self, call: Call) -> Response:
        incident_id = int(call.request.path_params["id"])
        try:
            sheet = worksheet(call.db, incident_id, self.settings.severity, now=datetime.now(UTC))
        except TriageError as gone:
            return self._page(call, "message", 404, title="No such incident", text=str(gone))
        with transaction(call.db):
            self._audit(call, "worksheet", incident_id, "worksheet (HTML)")
        html = render_worksheet(sheet, "html", self.settings.own_domains, self.settings.timezone)
        return _download(html, f"incident-{incident_id}-worksheet.html", "html")

    def health(self, call: Call) -> Response:
        return self._page(call, "health", health=health(call.db))


def _csrf_ok(request: Request, form: FormData) -> bool:
    expected = str(request.session.get("csrf", ""))
    given = str(form.get("csrf", ""))
    return bool(expected) and secrets.compare_digest(given, expected)


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
