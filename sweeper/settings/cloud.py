"""``[graph]``'s cloud and sign-in, with the environment: which endpoints, which
credentials must be there, and which CA bundle to trust."""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from urllib.parse import urlsplit

from sweeper.addresses import is_loopback_host
from sweeper.errors import ConfigError
from sweeper.graph.endpoints import CLOUDS
from sweeper.settings.keys import key

ENDPOINT_VARIABLES = ("SWEEPER_GRAPH_URL", "AZURE_AUTHORITY_HOST")


def cloud_named(named: str | None, env: Mapping[str, str]) -> str:
    """``graph.cloud``; when the file names none, the endpoint variables mean ``custom``.

    azure-identity's convention is that ``AZURE_AUTHORITY_HOST`` chooses the authority, so a
    variable is never ignored: with no cloud named it makes the cloud ``custom`` (and both
    variables are then required); with a named cloud it must agree with that cloud's own
    endpoint, or the configuration is refused before any secret is sent anywhere.
    """
    given = {name: env[name].rstrip("/") for name in ENDPOINT_VARIABLES if env.get(name)}
    if named is None:
        return "custom" if given else key("graph.cloud").default
    cloud: str = key("graph.cloud").read({"cloud": named})
    if cloud == "custom":
        return cloud
    known = CLOUDS[cloud]
    expected = {"SWEEPER_GRAPH_URL": known.graph_url, "AZURE_AUTHORITY_HOST": known.authority_host}
    for name, value in given.items():
        if value.lower() != expected[name].lower():
            raise ConfigError(
                name,
                f"is set to {value!r} but graph.cloud is {cloud!r} ({expected[name]}): unset "
                "it, or set graph.cloud = 'custom' to use it",
            )
    return cloud


def endpoints(cloud: str, env: Mapping[str, str]) -> tuple[str, str]:
    """Graph's base URL and the sign-in host: the cloud's own, or the variables' (custom)."""
    if cloud != "custom":
        known = CLOUDS[cloud]
        return known.graph_url, known.authority_host
    graph_url = env.get("SWEEPER_GRAPH_URL", "").rstrip("/")
    authority = env.get("AZURE_AUTHORITY_HOST", "").rstrip("/")
    for name, value in (("SWEEPER_GRAPH_URL", graph_url), ("AZURE_AUTHORITY_HOST", authority)):
        if not value:
            raise ConfigError(
                name,
                "must be set for a custom cloud (graph.cloud = 'custom', or the other endpoint "
                "variable set with no graph.cloud); to use a Microsoft cloud, name it in "
                "graph.cloud and unset the endpoint variables",
            )
    _check_url("SWEEPER_GRAPH_URL", graph_url, allow_loopback_http=True)
    _check_url("AZURE_AUTHORITY_HOST", authority, allow_loopback_http=False)
    return graph_url, authority


def _check_url(name: str, url: str, *, allow_loopback_http: bool) -> None:
    parts = urlsplit(url)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise ConfigError(name, f"{url!r} is not an http(s) URL")
    if parts.scheme == "http" and not (allow_loopback_http and is_loopback_host(parts.hostname)):
        raise ConfigError(name, f"{url!r} must use https (plain http only on loopback)")


def check_credentials(
    auth: str, tenant_id: str | None, client_id: str | None, env: Mapping[str, str]
) -> None:
    """The variables ``graph.auth`` needs are set (the secret itself is never read here)."""
    if auth in ("client_secret", "certificate"):
        if not tenant_id:
            raise ConfigError("AZURE_TENANT_ID", f"must be set for graph.auth = {auth!r}")
        if not client_id:
            raise ConfigError("AZURE_CLIENT_ID", f"must be set for graph.auth = {auth!r}")
    if auth == "client_secret" and not env.get("AZURE_CLIENT_SECRET"):
        raise ConfigError("AZURE_CLIENT_SECRET", "must be set for graph.auth = 'client_secret'")
    if auth == "certificate":
        cert = env.get("AZURE_CLIENT_CERTIFICATE_PATH")
        if not cert:
            raise ConfigError(
                "AZURE_CLIENT_CERTIFICATE_PATH", "must be set for graph.auth = 'certificate'"
            )
        if not Path(cert).is_file():
            raise ConfigError("AZURE_CLIENT_CERTIFICATE_PATH", f"no such file: {cert}")


def ca_bundle(env: Mapping[str, str]) -> Path | None:
    """A CA file to trust instead of the system's (TLS-inspecting proxies, the local Graph)."""
    for name in ("SSL_CERT_FILE", "REQUESTS_CA_BUNDLE"):
        value = env.get(name)
        if value:
            if not Path(value).is_file():
                raise ConfigError(name, f"no such file: {value}")
            return Path(value)
    return None
