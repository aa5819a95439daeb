"""Settings: one TOML file plus environment variables, checked once, up front.

Secrets never come from the file. Sign-in uses azure-identity's own variables
(``AZURE_TENANT_ID``, ``AZURE_CLIENT_ID``, ``AZURE_CLIENT_SECRET``,
``AZURE_CLIENT_CERTIFICATE_PATH``, ``AZURE_AUTHORITY_HOST``); the file may name the tenant and
client ids, which are not secret, and the environment wins over it.

Every key of the file is declared once, in :mod:`sweeper.settings.keys`: its type, default,
check and help. Every problem raises :class:`~sweeper.errors.ConfigError` naming the
setting, before anything is written anywhere.
"""

from __future__ import annotations

from sweeper.settings.alerts import AlertSettings
from sweeper.settings.allow import parse_allow_rules
from sweeper.settings.cloud import ENDPOINT_VARIABLES
from sweeper.settings.console import ConsoleSettings
from sweeper.settings.digest import DigestSettings
from sweeper.settings.keys import AUTH_METHODS, CLOUD_NAMES, DEFAULT_DATABASE, TRANSPORTS
from sweeper.settings.load import DEFAULTS, Settings, load_settings
from sweeper.settings.schedule import ScheduleSettings
from sweeper.settings.siem import SiemSettings

__all__ = [
    "AUTH_METHODS",
    "CLOUD_NAMES",
    "DEFAULTS",
    "DEFAULT_DATABASE",
    "ENDPOINT_VARIABLES",
    "TRANSPORTS",
    "AlertSettings",
    "ConsoleSettings",
    "DigestSettings",
    "ScheduleSettings",
    "Settings",
    "SiemSettings",
    "load_settings",
    "parse_allow_rules",
]
