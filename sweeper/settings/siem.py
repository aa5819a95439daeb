"""``[siem]``: Microsoft Sentinel through the Logs Ingestion API; on when endpoint is set."""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit

from sweeper.errors import ConfigError
from sweeper.graph.endpoints import MONITOR_SCOPES
from sweeper.settings.keys import default, key

_DCR_ID = re.compile(r"^dcr-[0-9a-f]{32}$", re.IGNORECASE)
_STREAM = re.compile(r"^Custom-[A-Za-z0-9_]{1,100}$")


@dataclass(frozen=True)
class SiemSettings:
    """``[siem]``: Microsoft Sentinel through the Logs Ingestion API; on when endpoint is set."""

    endpoint: str | None = default("siem.endpoint")  # the data collection endpoint, https
    rule_id: str | None = default("siem.rule_id")  # the data collection rule's id, dcr-...
    stream: str = default("siem.stream")  # deploy/sentinel/SweeperEvents_CL.json
    full_addresses: bool = default("siem.full_addresses")  # masked (j***@gmail.com) unless
    scope: str = MONITOR_SCOPES["global"]  # Azure Monitor in graph.cloud; not a setting

    @property
    def enabled(self) -> bool:
        return self.endpoint is not None


def siem_settings(raw: dict[str, Any], cloud: str) -> SiemSettings:
    """``[siem]`` as read from the file, for Azure Monitor in ``cloud``."""
    endpoint = raw.get("endpoint", "").strip().rstrip("/")
    if not endpoint:
        if others := sorted(raw.keys() - {"endpoint"}):
            raise ConfigError(
                "siem.endpoint",
                f"must be set with siem.{others[0]}: the data collection endpoint's URL, "
                "as deploy/sentinel/create.sh prints it",
            )
        return SiemSettings()
    parts = urlsplit(endpoint)
    if parts.scheme != "https" or not parts.hostname or parts.path or parts.query:
        raise ConfigError(
            "siem.endpoint",
            f"{endpoint!r} is not the https URL of a data collection endpoint "
            "(https://NAME.REGION-1.ingest.monitor.azure.com)",
        )
    rule_id = raw.get("rule_id", "").strip()
    if not _DCR_ID.match(rule_id):
        raise ConfigError(
            "siem.rule_id",
            f"{rule_id!r} is not a data collection rule's immutable id (dcr- and 32 hex digits)"
            if rule_id
            else "must be set with siem.endpoint: the data collection rule's immutable id",
        )
    stream = key("siem.stream").read(raw)
    if not _STREAM.match(stream):
        raise ConfigError("siem.stream", f"{stream!r} is not a custom stream (Custom-NAME)")
    return SiemSettings(
        endpoint=endpoint,
        rule_id=rule_id,
        stream=stream,
        full_addresses=key("siem.full_addresses").read(raw),
        scope=MONITOR_SCOPES.get(cloud, SiemSettings.scope),
    )
