"""``[console]``: where the DPO's web console is served and how its sessions behave.

The console is reached at ``url`` (behind a reverse proxy or App Service in production) and
listens on ``host``:``port`` (loopback by default). Its redirect URI, registered with the
app (deploy/app-registration), is ``url`` + :data:`CALLBACK_PATH`.
"""

from __future__ import annotations

import ipaddress
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit

from sweeper.addresses import is_loopback_host
from sweeper.errors import ConfigError
from sweeper.settings.keys import default, key

CALLBACK_PATH = "/auth/callback"
ROLES = ("Sweeper.DPO", "Sweeper.Viewer")
"""The app roles that let an account in: the DPO sees addresses, triages and downloads;
the viewer sees masked data and reads only."""


@dataclass(frozen=True)
class ConsoleSettings:
    url: str | None = default("console.url")  # https, or http on loopback only
    host: str = default("console.host")
    port: int = default("console.port")
    session_minutes: int = default("console.session_minutes")  # from sign-in
    easy_auth: bool = default("console.easy_auth")  # X-MS-CLIENT-PRINCIPAL; never by default
    # The reverse proxies whose X-Forwarded-For is believed (addresses or networks); none by
    # default: the audit records the socket's peer, whatever a client claims.
    trusted_proxies: tuple[str, ...] = tuple(default("console.trusted_proxies"))

    @property
    def redirect_uri(self) -> str | None:
        return None if self.url is None else self.url + CALLBACK_PATH

    @property
    def secure(self) -> bool:
        """Served over https: cookies are ``Secure`` and HSTS is sent."""
        return self.url is not None and self.url.startswith("https://")


def console_settings(raw: dict[str, Any]) -> ConsoleSettings:
    """``[console]`` as read from the file."""
    url = raw.get("url", "").strip().rstrip("/") or None
    if url is not None:
        _check_url(url)
    port = key("console.port").read(raw)
    if not 1 <= port <= 65535:
        raise ConfigError("console.port", f"{port} is not a TCP port (1-65535)")
    minutes = key("console.session_minutes").read(raw)
    if not 5 <= minutes <= 720:
        raise ConfigError("console.session_minutes", f"{minutes} is not between 5 and 720")
    host = key("console.host").read(raw).strip()
    if not host:
        raise ConfigError("console.host", "is empty: the address to listen on (127.0.0.1)")
    proxies = _proxies(key("console.trusted_proxies").read(raw))
    return ConsoleSettings(url, host, port, minutes, key("console.easy_auth").read(raw), proxies)


def _proxies(values: list[Any]) -> tuple[str, ...]:
    """The trusted proxies, each an IP address or network (``10.0.0.0/8``), normalised."""
    found = []
    for value in values:
        try:
            found.append(str(ipaddress.ip_network(str(value).strip(), strict=False)))
        except ValueError:
            raise ConfigError(
                "console.trusted_proxies",
                f"{value!r} is not an IP address or network (such as 10.0.0.5 or 10.0.0.0/24)",
            ) from None
    return tuple(found)


def _check_url(url: str) -> None:
    parts = urlsplit(url)
    if parts.scheme not in ("https", "http") or not parts.hostname or parts.query:
        raise ConfigError("console.url", f"{url!r} is not the console's address (https://HOST)")
    if parts.path not in ("", "/"):
        raise ConfigError(
            "console.url",
            f"{url!r} has a path: the console is served at the root of its own host name "
            "(https://HOST), not below another site",
        )
    if parts.scheme == "http" and not is_loopback_host(parts.hostname):
        raise ConfigError(
            "console.url",
            f"{url!r} is not https: sign-in cookies and personal data would cross the "
            "network in clear (http is accepted on 127.0.0.1 and localhost only)",
        )
