"""Where Graph and sign-in are, per cloud, and what signing in needs: plain data, no SDK.

Kept apart from :mod:`.signin` and :mod:`.gateway` so that reading the settings never loads
azure-identity or the Graph SDK.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from urllib.parse import urlsplit


@dataclass(frozen=True)
class Cloud:
    name: str
    graph_url: str
    authority_host: str


CLOUDS: dict[str, Cloud] = {
    "global": Cloud(
        "global", "https://graph.microsoft.com/v1.0", "https://login.microsoftonline.com"
    ),
    "usgov": Cloud("usgov", "https://graph.microsoft.us/v1.0", "https://login.microsoftonline.us"),
    "usgov-dod": Cloud(
        "usgov-dod", "https://dod-graph.microsoft.us/v1.0", "https://login.microsoftonline.us"
    ),
    "china": Cloud(
        "china", "https://microsoftgraph.chinacloudapi.cn/v1.0", "https://login.chinacloudapi.cn"
    ),
}


@dataclass(frozen=True)
class SignIn:
    """Where and how to sign in and reach Graph. Holds no secret."""

    graph_url: str
    authority_host: str
    method: str = "client_secret"  # client_secret | certificate | managed_identity | default
    tenant_id: str | None = None
    client_id: str | None = None
    custom: bool = False  # a custom cloud: Microsoft's instance discovery does not know it
    ca_bundle: Path | None = None
    timeout: float = 60.0  # seconds for one whole answer (graph.timeout_seconds)
    max_pages: int = 10_000  # pages of one mailbox or listing (graph.max_pages)
    max_answer_mb: int = 64  # one answer, decompressed (graph.max_answer_mb)

    @property
    def scope(self) -> str:
        """The ``.default`` scope of the Graph resource: scheme and host, never a port."""
        parts = urlsplit(self.graph_url)
        return f"{parts.scheme}://{parts.hostname}/.default"


# The Logs Ingestion API's token scope per cloud (Azure Monitor's resource); a custom cloud
# (the local Graph) uses the global one.
MONITOR_SCOPES: dict[str, str] = {
    "global": "https://monitor.azure.com/.default",
    "usgov": "https://monitor.azure.us/.default",
    "usgov-dod": "https://monitor.azure.us/.default",
    "china": "https://monitor.azure.cn/.default",
}
