"""The DPO's console served by uvicorn on loopback, as ``sweeper console`` runs it."""

from __future__ import annotations

import base64
import json
import re
import ssl
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass

import httpx
import uvicorn

from support.runner import Sweeper, write_config
from sweeper.console.serve import bind, server_config
from sweeper.console.web import create_app
from sweeper.settings import load_settings

KEY = "a-test-session-key"


HOSTILE = '<script>alert("console")</script><img src=x onerror="alert(1)">'


@dataclass
class Console:
    url: str
    sweeper: Sweeper

    def browser(self) -> httpx.Client:
        return httpx.Client(base_url=self.url, follow_redirects=False)

    def sign_in(self, browser: httpx.Client, upn: str, next_: str = "/incidents") -> httpx.Response:
        """The whole round: the console, Entra ID's /authorize, back to the console."""
        start = browser.get("/signin", params={"login_hint": upn, "next": next_})
        assert start.status_code == 303, start.text
        trust = ssl.create_default_context(cafile=str(self.sweeper.fake.ca_path))
        entra = httpx.get(start.headers["location"], verify=trust)
        assert entra.status_code == 302, entra.text
        back = entra.headers["location"]
        assert back.startswith(f"{self.url}/auth/callback?")
        return browser.get(back.removeprefix(self.url))

    def csrf(self, page: httpx.Response) -> str:
        match = re.search(r'name="csrf" value="([^"]+)"', page.text)
        assert match, "the page has no form token"
        return match.group(1)

    def incident_ids(self) -> list[int]:
        return [int(r["id"]) for r in self.sweeper.rows("select id from incidents order by id")]


@contextmanager
def serving(
    sweeper: Sweeper, extra: str = "", env: dict[str, str] | None = None
) -> Iterator[Console]:
    sock = bind("127.0.0.1", 0)
    url = f"http://127.0.0.1:{sock.getsockname()[1]}"
    write_config(
        sweeper.config, sweeper.config.read_text() + f'\n[console]\nurl = "{url}"\n{extra}'
    )
    sweeper.fake.redirect_uris = [f"{url}/auth/callback"]
    env = env or sweeper.env()
    app = create_app(load_settings(sweeper.config, env), env, session_key=KEY)
    server = uvicorn.Server(server_config(app))  # as `sweeper console` runs it
    thread = threading.Thread(target=server.run, kwargs={"sockets": [sock]}, daemon=True)
    thread.start()
    deadline = time.monotonic() + 10
    while not server.started and time.monotonic() < deadline:
        time.sleep(0.02)
    try:
        yield Console(url, sweeper)
    finally:
        server.should_exit = True
        thread.join(10)


def principal(upn: str, *roles: str) -> str:
    """App Service authentication's X-MS-CLIENT-PRINCIPAL: base64 JSON of the claims."""
    claims = [{"typ": "preferred_username", "val": upn}, {"typ": "name", "val": "Someone"}]
    claims += [{"typ": "roles", "val": role} for role in roles]
    return base64.b64encode(json.dumps({"claims": claims}).encode()).decode()
