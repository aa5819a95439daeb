"""Origins: the scheme, host and port two URLs must share for one token to serve both.

Plain URL arithmetic, without any HTTP library: the paging loops check every next link
with it, and :mod:`sweeper.graph.network` decides what goes through a proxy.
"""

from __future__ import annotations

from urllib.parse import urlsplit

DEFAULT_PORTS = {"http": 80, "https": 443}


def origin(url: str) -> tuple[str, str, int]:
    """Scheme, host and effective port of ``url`` (80/443 when not written), lower case.

    Two URLs may share a token only when these three are equal. An unreadable URL has the
    origin ``("", "", 0)``, which no real one has.
    """
    try:
        parts = urlsplit(url.strip())
        scheme, host, port = parts.scheme.lower(), (parts.hostname or "").lower(), parts.port
    except ValueError:
        return ("", "", 0)
    return (scheme, host, port if port is not None else DEFAULT_PORTS.get(scheme, 0))


def shown_origin(url: str) -> str:
    """``scheme://host:port`` of ``url``, for a message: never its path or query."""
    scheme, host, port = origin(url)
    return f"{scheme}://{host}:{port}" if host else "(a URL without a host)"
