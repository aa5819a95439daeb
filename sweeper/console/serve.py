"""``sweeper console``: the app served by uvicorn on a socket bound here first, so that a
port in use is one line naming the setting, not a server's traceback."""

from __future__ import annotations

import errno
import socket
from collections.abc import Mapping
from typing import Any

from sweeper.errors import ConfigError
from sweeper.settings import Settings


def bind(host: str, port: int) -> socket.socket:
    """A listening socket on ``host``:``port``; ConfigError naming the setting if not."""
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    try:
        sock.bind((host, port))
    except OSError as exc:
        sock.close()
        if exc.errno == errno.EADDRINUSE:
            raise ConfigError(
                "console.port", f"{port} on {host} is in use by another program"
            ) from None
        raise ConfigError(
            "console.host", f"cannot listen on {host}:{port} ({exc.strerror})"
        ) from None
    sock.listen(128)
    return sock


def serve(
    settings: Settings, env: Mapping[str, str], *, host: str | None, port: int | None
) -> None:
    import uvicorn

    from sweeper.console.web import create_app

    app = create_app(settings, env)  # refuses a missing console.url before binding
    where = (host or settings.console.host, port or settings.console.port)
    sock = bind(*where)
    print(f"console on http://{where[0]}:{where[1]}, reached at {settings.console.url}")
    uvicorn.Server(server_config(app)).run(sockets=[sock])


def server_config(app: Any) -> Any:
    """uvicorn's settings for the console: forwarded headers are never read by uvicorn
    (which would believe any loopback client); the app reads them from the proxies
    ``console.trusted_proxies`` names, and only from those."""
    import uvicorn

    return uvicorn.Config(app, log_level="warning", proxy_headers=False, server_header=False)
