"""Settings: one TOML file plus environment variables, checked once, up front.

Secrets never come from the file. Sign-in uses azure-identity's own variables
(``AZURE_TENANT_ID``, ``AZURE_CLIENT_ID``, ``AZURE_CLIENT_SECRET``,
``AZURE_CLIENT_CERTIFICATE_PATH``, ``AZURE_AUTHORITY_HOST``); the file may name the tenant and
client ids, which are not secret, and the environment wins over it.

Every problem raises :class:`~sweeper.errors.ConfigError` naming the setting, before anything
is written anywhere.
"""

from __future__ import annotations

import math
import os
import re
import stat
import tomllib
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from sweeper.addresses import is_loopback_host, normalise_domain
from sweeper.commands.console_settings import SCHEMA as CONSOLE_SCHEMA
from sweeper.commands.console_settings import ConsoleSettings, console_settings
from sweeper.errors import ConfigError
from sweeper.graph.endpoints import CLOUDS, MONITOR_SCOPES, SignIn
from sweeper.outbound.webhooks import check_webhook_url, webhook_secret
from sweeper.rules.allow import AllowRule
from sweeper.rules.audience import DomainClass, default_classes
from sweeper.rules.classify import Policy
from sweeper.rules.incidents import REEXPOSURE
from sweeper.rules.lexicon import (
    CATEGORIES,
    LexiconError,
    available_languages,
    check_own_terms,
)
from sweeper.rules.severity import (
    BUSINESS_CAPS,
    DETECTION_THRESHOLD,
    LEVELS,
    OWN,
    SeverityRule,
)
from sweeper.when import parse_span, time_zone

DEFAULT_DATABASE = "sweeper.db"


CLOUD_NAMES = (*CLOUDS, "custom")
AUTH_METHODS = ("client_secret", "certificate", "managed_identity", "default")
TRANSPORTS = ("graph", "smtp")

# What the file may contain: section -> key -> expected type.
_SCHEMA: dict[str, dict[str, type | tuple[type, ...]]] = {
    "graph": {
        "cloud": str,
        "auth": str,
        "tenant_id": str,
        "client_id": str,
        "timeout_seconds": (int, float),
        "max_pages": int,
        "max_answer_mb": int,
    },
    "organisation": {"own_domains": list, "timezone": str, "languages": list},
    "detection": {"min_visible_external": int, "min_private_people": int},
    "sweep": {
        "window_hours": (int, float),
        "overlap_minutes": (int, float),
        "page_size": int,
        "concurrency": int,
        "batch": bool,
        "include_disabled": bool,
        "exclude": list,
    },
    "storage": {"database": str},
    "severity": {
        "high_at": int,
        "critical_at": int,
        "colleagues_max_domains": int,
        "colleagues_max_personal": int,
        "public_min_personal_share": (int, float),
        "sensitive_terms": list,
        "sensitive_departments": list,
        "sensitive_senders": list,
        "bcc_raises": bool,
        "personal_domains": list,
        "business_at_most": str,
        "public_critical_at": int,
        "business_medium_at": int,
        "reveals_critical_at": dict,
        "terms_dir": str,
        "mixed_with": list,
        "mixed_domains": dict,
    },
    "incidents": {"window_hours": (int, float), "reexposure_days": (int, float)},
    "digest": {
        "transport": str,
        "sender": str,
        "recipients": list,
        "save_to_sent_items": bool,
        "all_clear": bool,
        "reports_dir": str,
        "smtp_host": str,
        "smtp_port": int,
        "smtp_starttls": bool,
        "smtp_username": str,
    },
    "schedule": {"cron": str, "timezone": str, "misfire_grace_minutes": int},
    "alerts": {
        "sweep_every": str,
        "min_severity": str,
        "grew_by": (int, float),
        "teams_url": str,
        "webhook_url": str,
        "mail": bool,
        "budget_seconds": (int, float),
    },
    "retention": {"addresses_days": int},
    "siem": {"endpoint": str, "rule_id": str, "stream": str, "full_addresses": bool},
    "console": CONSOLE_SCHEMA,
}
_ALLOW_SCHEMA: dict[str, type | tuple[type, ...]] = {
    "name": str,
    "reason": str,
    "sender": str,
    "domains": list,
    "subject": str,
    "expires": date,
}
_SECRET_WORDS = ("secret", "password", "certificate_password", "token", "key")


@dataclass(frozen=True)
class DigestSettings:
    """Where the DPO's digest goes and how. The SMTP password comes from the environment."""

    transport: str = "graph"  # one of TRANSPORTS
    sender: str | None = None  # Graph: the mailbox sending it; SMTP: the From address
    recipients: tuple[str, ...] = ()
    # Graph keeps a copy, which is how an interrupted digest is found sent or not (exactly
    # once); false: no copy, and an interrupted digest is sent again (at least once).
    save_to_sent_items: bool = True
    all_clear: bool = True  # send a short all clear when nothing is new
    reports_dir: Path = Path("reports")
    smtp_host: str | None = None
    smtp_port: int = 587
    smtp_starttls: bool = True
    smtp_username: str | None = None

    def check_sendable(self, env: Mapping[str, str]) -> None:
        """Raise ConfigError unless a digest can be delivered with these settings."""
        if not self.recipients:
            raise ConfigError("digest.recipients", "must list at least one address to send to")
        if not self.sender:
            raise ConfigError("digest.sender", "must be set to send the digest")
        if self.transport == "smtp":
            if not self.smtp_host:
                raise ConfigError("digest.smtp_host", "must be set for transport = 'smtp'")
            if self.smtp_username and not env.get("SWEEPER_SMTP_PASSWORD"):
                raise ConfigError(
                    "SWEEPER_SMTP_PASSWORD", "must be set when digest.smtp_username is"
                )


@dataclass(frozen=True)
class ScheduleSettings:
    """When ``sweeper schedule`` runs the nightly job."""

    cron: str = "30 5 * * *"
    timezone: str = "UTC"
    misfire_grace_minutes: int = 360  # a run late by up to 6 hours still runs


@dataclass(frozen=True)
class AlertSettings:
    """Alerts at once, after any sweep. The webhook's signing secret comes from the
    environment (``SWEEPER_WEBHOOK_SECRET``); the URLs are never logged."""

    sweep_every: timedelta | None = None  # frequent incremental sweeps by `schedule`; off
    min_severity: str = "high"  # a new incident at this severity or above is alerted
    grew_by: float = 0.5  # ... and again when the people it exposed grew by this share
    teams_url: str | None = None  # a Teams Workflows webhook ("When a Teams webhook ...")
    webhook_url: str | None = None  # a receiver of Standard Webhooks
    mail: bool = False  # a short mail to the digest's recipients, the digest's way
    # The time one run gives all its alert deliveries (channels at once); what is not
    # delivered by then is left pending for the next run, so no channel holds a sweep.
    budget_seconds: float = 30.0

    @property
    def channels(self) -> tuple[str, ...]:
        """The configured channels, in the order they are tried."""
        named = (("teams", self.teams_url), ("webhook", self.webhook_url), ("mail", self.mail))
        return tuple(name for name, on in named if on)


@dataclass(frozen=True)
class SiemSettings:
    """``[siem]``: Microsoft Sentinel through the Logs Ingestion API; on when endpoint is set."""

    endpoint: str | None = None  # the data collection endpoint (or the rule's own), https
    rule_id: str | None = None  # the data collection rule's immutable id, dcr-...
    stream: str = "Custom-SweeperEvents"  # deploy/sentinel/SweeperEvents_CL.json
    full_addresses: bool = False  # outside addresses masked (j***@gmail.com) unless true
    scope: str = MONITOR_SCOPES["global"]  # Azure Monitor in graph.cloud; not a setting

    @property
    def enabled(self) -> bool:
        return self.endpoint is not None


_DCR_ID = re.compile(r"^dcr-[0-9a-f]{32}$", re.IGNORECASE)
_STREAM = re.compile(r"^Custom-[A-Za-z0-9_]{1,100}$")


def _siem(raw: dict[str, Any], cloud: str) -> SiemSettings:
    default = SiemSettings()
    endpoint = raw.get("endpoint", "").strip().rstrip("/")
    if not endpoint:
        if others := sorted(raw.keys() - {"endpoint"}):
            raise ConfigError(
                "siem.endpoint",
                f"must be set with siem.{others[0]}: the data collection endpoint's URL, "
                "as deploy/sentinel/create.sh prints it",
            )
        return default
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
    stream = raw.get("stream", default.stream)
    if not _STREAM.match(stream):
        raise ConfigError("siem.stream", f"{stream!r} is not a custom stream (Custom-NAME)")
    return SiemSettings(
        endpoint=endpoint,
        rule_id=rule_id,
        stream=stream,
        full_addresses=raw.get("full_addresses", default.full_addresses),
        scope=MONITOR_SCOPES.get(cloud, default.scope),
    )


@dataclass(frozen=True)
class Settings:
    """Everything a command needs to know, already checked. Holds no secret."""

    cloud: str = "global"
    graph_url: str = CLOUDS["global"].graph_url  # "" when loaded without need_graph
    authority_host: str = CLOUDS["global"].authority_host
    auth: str = "client_secret"
    tenant_id: str | None = None
    client_id: str | None = None
    timeout: float = 60.0  # seconds Graph may take to answer one request, body and all
    max_pages: int = 10_000  # pages read of one mailbox or listing, at most
    max_answer_mb: int = 64  # one answer from Graph, decompressed, at most
    own_domains: tuple[str, ...] = ()
    timezone: str = "UTC"  # IANA zone in which reports show moments; stored moments are UTC
    min_visible_external: int = DETECTION_THRESHOLD
    window: timedelta = timedelta(hours=24)
    overlap: timedelta = timedelta(minutes=15)
    page_size: int = 1000  # chosen by measurement: BENCHMARKS.md, page size
    concurrency: int = 8
    batch: bool = True  # first pages of 20 mailboxes in one JSON batch
    include_disabled: bool = True  # disabled accounts with a mailbox: shared ones, leavers'
    exclude: tuple[str, ...] = ()  # accounts never swept: addresses or local*@domain patterns
    database: Path = Path(DEFAULT_DATABASE)
    config_path: Path | None = None
    ca_bundle: Path | None = None
    severity: SeverityRule = SeverityRule()
    allow: tuple[AllowRule, ...] = ()
    incident_window: timedelta = timedelta(hours=24)
    reexposure_window: timedelta = REEXPOSURE  # rule 4 of grouping
    digest: DigestSettings = DigestSettings()
    schedule: ScheduleSettings = ScheduleSettings()
    alerts: AlertSettings = AlertSettings()
    retention: timedelta = timedelta(days=180)  # exposed addresses of closed incidents
    siem: SiemSettings = SiemSettings()
    console: ConsoleSettings = ConsoleSettings()

    def policy(self, verified_domains: Iterable[str]) -> Policy:
        """The judgement rules: the tenant's verified domains plus these settings."""
        return Policy.build(
            (*verified_domains, *self.own_domains),
            self.min_visible_external,
            severity=self.severity,
            allow=self.allow,
        )

    @property
    def sign_in(self) -> SignIn:
        """What signing in and reaching Graph need, and no more."""
        return SignIn(
            graph_url=self.graph_url,
            authority_host=self.authority_host,
            method=self.auth,
            tenant_id=self.tenant_id,
            client_id=self.client_id,
            custom=self.cloud == "custom",
            ca_bundle=self.ca_bundle,
            timeout=self.timeout,
            max_pages=self.max_pages,
            max_answer_mb=self.max_answer_mb,
        )

    @property
    def graph_scope(self) -> str:
        """The ``.default`` scope of the Graph resource: scheme and host, never a port."""
        return self.sign_in.scope


def load_settings(
    config_path: str | os.PathLike[str] | None,
    env: Mapping[str, str],
    *,
    need_graph: bool = True,
    overrides: Mapping[str, Mapping[str, Any]] | None = None,
) -> Settings:
    """Read the file (``--config``, else ``SWEEPER_CONFIG``, else none) and the environment.

    ``need_graph=False`` is for commands that only read the database: sign-in settings are
    then not required, and the schedule's cron expression is not compiled (apscheduler does
    that, and loading it would slow down every listing; ``sweeper schedule``, the commands
    that sweep and ``doctor`` check it). ``overrides`` are applied over the file, section
    by section.
    """
    path_text = str(config_path) if config_path else env.get("SWEEPER_CONFIG") or None
    path = Path(path_text) if path_text else None
    raw = _read_file(path) if path else {}
    for section, values in (overrides or {}).items():
        raw[section] = {**raw.get(section, {}), **values}
    _check_schema(raw)

    graph = raw.get("graph", {})
    cloud = _cloud(graph.get("cloud"), env if need_graph else {})
    auth = _choice("graph.auth", graph.get("auth", DEFAULTS.auth), AUTH_METHODS)
    tenant_id = env.get("AZURE_TENANT_ID") or graph.get("tenant_id") or None
    client_id = env.get("AZURE_CLIENT_ID") or graph.get("client_id") or None
    graph_url, authority = "", ""
    if need_graph:
        graph_url, authority = _endpoints(cloud, env)
        _check_credentials(auth, tenant_id, client_id, env)

    detection = raw.get("detection", {})
    sweep = raw.get("sweep", {})
    storage = raw.get("storage", {})
    threshold = _int_at_least(
        "detection.min_visible_external",
        detection.get("min_visible_external", DEFAULTS.min_visible_external),
        1,
    )
    incidents = raw.get("incidents", {})
    zone = raw.get("organisation", {}).get("timezone", DEFAULTS.timezone)
    time_zone(zone, "organisation.timezone")
    return Settings(
        cloud=cloud,
        graph_url=graph_url,
        authority_host=authority,
        auth=auth,
        tenant_id=tenant_id,
        client_id=client_id,
        timeout=_between(
            "graph.timeout_seconds", graph.get("timeout_seconds", DEFAULTS.timeout), 1, 600
        ),
        max_pages=_int_between(
            "graph.max_pages", graph.get("max_pages", DEFAULTS.max_pages), 1, 10_000_000
        ),
        max_answer_mb=_int_between(
            "graph.max_answer_mb", graph.get("max_answer_mb", DEFAULTS.max_answer_mb), 1, 4096
        ),
        own_domains=_domains(
            "organisation.own_domains", raw.get("organisation", {}).get("own_domains", [])
        ),
        timezone=zone,
        min_visible_external=threshold,
        window=timedelta(
            hours=_positive(
                "sweep.window_hours", sweep.get("window_hours", _hours(DEFAULTS.window))
            )
        ),
        overlap=timedelta(
            minutes=_not_negative(
                "sweep.overlap_minutes",
                sweep.get("overlap_minutes", DEFAULTS.overlap.total_seconds() / 60),
            )
        ),
        page_size=_int_between(
            "sweep.page_size", sweep.get("page_size", DEFAULTS.page_size), 1, 1000
        ),
        concurrency=_int_between(
            "sweep.concurrency", sweep.get("concurrency", DEFAULTS.concurrency), 1, 64
        ),
        batch=sweep.get("batch", DEFAULTS.batch),
        include_disabled=sweep.get("include_disabled", DEFAULTS.include_disabled),
        exclude=_sender_patterns(
            "sweep.exclude", sweep.get("exclude", []), "room*@northwick.example"
        ),
        database=_database(storage.get("database"), path, env),
        config_path=path,
        ca_bundle=_ca_bundle(env) if need_graph else None,
        severity=_severity(
            raw.get("severity", {}),
            threshold,
            detection,
            raw.get("organisation", {}).get("languages"),
            path,
        ),
        allow=parse_allow_rules(raw.get("allow", [])),
        incident_window=timedelta(
            hours=_positive(
                "incidents.window_hours",
                incidents.get("window_hours", _hours(DEFAULTS.incident_window)),
            )
        ),
        reexposure_window=timedelta(
            days=_not_negative(
                "incidents.reexposure_days",
                incidents.get("reexposure_days", DEFAULTS.reexposure_window.days),
                30,
            )
        ),
        digest=_digest(raw.get("digest", {}), path),
        schedule=_schedule(raw.get("schedule", {}), zone, compile_cron=need_graph),
        alerts=_alerts(raw.get("alerts", {}), env if need_graph else None),
        retention=timedelta(
            days=_int_between(
                "retention.addresses_days",
                raw.get("retention", {}).get("addresses_days", DEFAULTS.retention.days),
                1,
                36500,
            )
        ),
        siem=_siem(raw.get("siem", {}), cloud),
        console=console_settings(raw.get("console", {})),
    )


DEFAULTS = Settings()  # every default is written once, on the dataclasses above


def _hours(span: timedelta) -> float:
    return span.total_seconds() / 3600


def _read_file(path: Path) -> dict[str, Any]:
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise ConfigError("--config", f"file not found: {path}") from None
    except (OSError, UnicodeDecodeError) as exc:
        raise ConfigError("--config", f"cannot read {path}: {exc}") from None
    try:
        raw = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError("--config", f"{path} is not valid TOML: {exc}") from None
    _refuse_secrets(path, raw)
    return raw


_SECRET_VALUE = re.compile(
    r"[\w~.-]{3}\dQ~[\w~.-]{31,}"  # an Entra ID client secret (the form issued since 2021)
    r"|-----BEGIN [A-Z ]*PRIVATE KEY-----"  # a certificate's private key pasted in
)


def _refuse_secrets(path: Path, raw: Any, where: str = "") -> None:
    """A secret in the file is refused; said louder when other users can read the file."""
    items = (
        raw.items() if isinstance(raw, dict) else enumerate(raw) if isinstance(raw, list) else ()
    )
    for key, value in items:
        name = f"{where}[{key}]" if isinstance(key, int) else f"{where}.{key}".lstrip(".")
        if isinstance(value, dict | list):
            _refuse_secrets(path, value, name)
            continue
        named = isinstance(key, str) and any(word in key.lower() for word in _SECRET_WORDS)
        looks = isinstance(value, str) and _SECRET_VALUE.search(value) is not None
        if not (named or looks):
            continue
        mode = stat.S_IMODE(path.stat().st_mode)
        fix = (
            "set AZURE_CLIENT_SECRET (or AZURE_CLIENT_CERTIFICATE_PATH) in the environment "
            "or use a managed identity"
        )
        if mode & 0o077:
            raise ConfigError(
                name,
                f"{path} holds a secret and other users can read it (mode {mode:04o}): treat "
                f"the secret as exposed and rotate it, remove it from the file, {fix}",
            )
        raise ConfigError(name, f"secrets never go in the configuration file; {fix}")


def _check_schema(raw: dict[str, Any]) -> None:
    for section, body in raw.items():
        if section == "allow":
            if not isinstance(body, list) or not all(isinstance(r, dict) for r in body):
                raise ConfigError("allow", "must be a list of [[allow]] tables")
            for index, rule in enumerate(body):
                _check_table(f"allow[{index}]", rule, _ALLOW_SCHEMA)
            continue
        if section not in _SCHEMA:
            known = ", ".join([*_SCHEMA, "allow"])
            raise ConfigError(section, f"unknown section (known: {known})")
        if not isinstance(body, dict):
            raise ConfigError(section, "must be a [section] table")
        _check_table(section, body, _SCHEMA[section])


def _check_table(
    section: str, body: dict[str, Any], schema: dict[str, type | tuple[type, ...]]
) -> None:
    for key, value in body.items():
        name = f"{section}.{key}"
        expected = schema.get(key)
        if expected is None:
            raise ConfigError(name, f"unknown setting (known in {section}: {', '.join(schema)})")
        if expected is bool:
            right = isinstance(value, bool)
        else:
            right = not isinstance(value, bool) and isinstance(value, expected)
        if right and expected is date:
            right = not isinstance(value, datetime)
        if not right:
            raise ConfigError(name, f"must be {_type_words(expected)}, not {value!r}")


def _type_words(expected: type | tuple[type, ...]) -> str:
    types = expected if isinstance(expected, tuple) else (expected,)
    words = {
        str: "a string",
        int: "an integer",
        float: "a number",
        list: "a list",
        bool: "true or false",
        date: "a date (2027-01-31)",
    }
    return " or ".join(words.get(t, t.__name__) for t in types)


def _choice(name: str, value: str, allowed: tuple[str, ...]) -> str:
    if value not in allowed:
        raise ConfigError(name, f"{value!r} is not one of {', '.join(allowed)}")
    return value


ENDPOINT_VARIABLES = ("SWEEPER_GRAPH_URL", "AZURE_AUTHORITY_HOST")


def _cloud(named: str | None, env: Mapping[str, str]) -> str:
    """``graph.cloud``; when the file names none, the endpoint variables mean ``custom``.

    azure-identity's convention is that ``AZURE_AUTHORITY_HOST`` chooses the authority, so a
    variable is never ignored: with no cloud named it makes the cloud ``custom`` (and both
    variables are then required); with a named cloud it must agree with that cloud's own
    endpoint, or the configuration is refused before any secret is sent anywhere.
    """
    given = {name: env[name].rstrip("/") for name in ENDPOINT_VARIABLES if env.get(name)}
    if named is None:
        return "custom" if given else "global"
    cloud = _choice("graph.cloud", named, CLOUD_NAMES)
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


def _endpoints(cloud: str, env: Mapping[str, str]) -> tuple[str, str]:
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


def _check_credentials(
    auth: str, tenant_id: str | None, client_id: str | None, env: Mapping[str, str]
) -> None:
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


def _domains(name: str, values: list[Any]) -> tuple[str, ...]:
    domains = []
    for value in values:
        if not isinstance(value, str) or "." not in value or "@" in value or " " in value:
            raise ConfigError(name, f"{value!r} is not a domain name")
        domains.append(normalise_domain(value))
    return tuple(domains)


def _int_at_least(name: str, value: int, low: int) -> int:
    if value < low:
        raise ConfigError(name, f"must be at least {low}, not {value}")
    return value


def _int_between(name: str, value: int, low: int, high: int) -> int:
    if not low <= value <= high:
        raise ConfigError(name, f"must be between {low} and {high}, not {value}")
    return value


def _between(name: str, value: float, low: float, high: float) -> float:
    if not math.isfinite(value) or not low <= value <= high:
        raise ConfigError(name, f"must be between {low} and {high}, not {value}")
    return float(value)


def _positive(name: str, value: float, high: float = 24 * 366 * 10) -> float:
    if not math.isfinite(value):
        raise ConfigError(name, f"must be a finite number, not {value}")
    if value <= 0:
        raise ConfigError(name, f"must be more than 0, not {value}")
    if value > high:
        raise ConfigError(name, f"must be at most {high}, not {value}")
    return float(value)


def _not_negative(name: str, value: float, high: float = 7 * 24 * 60) -> float:
    if not math.isfinite(value):
        raise ConfigError(name, f"must be a finite number, not {value}")
    if value < 0:
        raise ConfigError(name, f"must not be negative, not {value}")
    if value > high:
        raise ConfigError(name, f"must be at most {high}, not {value}")
    return float(value)


def _database(value: str | None, config_path: Path | None, env: Mapping[str, str]) -> Path:
    from_env = env.get("SWEEPER_DB")
    if from_env:
        return Path(from_env)
    if not value:
        return Path(DEFAULT_DATABASE)
    path = Path(value).expanduser()
    if not path.is_absolute() and config_path is not None:
        path = config_path.parent / path  # relative to the file, not to wherever cron runs
    return path


def _ca_bundle(env: Mapping[str, str]) -> Path | None:
    """A CA file to trust instead of the system's (TLS-inspecting proxies, the local Graph)."""
    for name in ("SSL_CERT_FILE", "REQUESTS_CA_BUNDLE"):
        value = env.get(name)
        if value:
            if not Path(value).is_file():
                raise ConfigError(name, f"no such file: {value}")
            return Path(value)
    return None


def _severity(
    raw: dict[str, Any],
    threshold: int,
    detection: dict[str, Any],
    languages: list[Any] | None,
    config_path: Path | None,
) -> SeverityRule:
    default = SeverityRule()
    high = raw.get("high_at", default.high_at)
    if high <= threshold:
        raise ConfigError(
            "severity.high_at", f"must be more than detection.min_visible_external ({threshold})"
        )
    critical = raw.get("critical_at", default.critical_at)
    if critical <= high:
        raise ConfigError("severity.critical_at", f"must be more than high_at ({high})")
    terms = raw.get("sensitive_terms", list(default.sensitive_terms))
    if not all(isinstance(t, str) and t.strip() for t in terms):
        raise ConfigError("severity.sensitive_terms", "must be a list of words")
    return SeverityRule(
        medium_at=threshold,
        high_at=high,
        critical_at=critical,
        colleagues_max_domains=_int_at_least(
            "severity.colleagues_max_domains",
            raw.get("colleagues_max_domains", default.colleagues_max_domains),
            0,
        ),
        colleagues_max_personal=_int_at_least(
            "severity.colleagues_max_personal",
            raw.get("colleagues_max_personal", default.colleagues_max_personal),
            0,
        ),
        public_min_personal_share=_share(
            "severity.public_min_personal_share",
            raw.get("public_min_personal_share", default.public_min_personal_share),
        ),
        sensitive_terms=tuple(t.strip().lower() for t in terms),
        bcc_raises=raw.get("bcc_raises", default.bcc_raises),
        personal_domains=frozenset(
            _domains("severity.personal_domains", raw.get("personal_domains", []))
        ),
        sensitive_departments=_phrases(
            "severity.sensitive_departments", raw.get("sensitive_departments", [])
        ),
        sensitive_senders=_sender_patterns(
            "severity.sensitive_senders",
            raw.get("sensitive_senders", []),
            "*@victimcare.example or casework*@northwick.example",
        ),
        business_at_most=_choice(
            "severity.business_at_most",
            raw.get("business_at_most", default.business_at_most),
            BUSINESS_CAPS,
        ),
        business_medium_at=_int_at_least(
            "severity.business_medium_at",
            raw.get("business_medium_at", default.business_medium_at),
            1,
        ),
        reveals_critical_at=_reveals_critical_at(
            raw.get("reveals_critical_at", {}), default.reveals_critical_at
        ),
        min_private_people=_int_between(
            "detection.min_private_people",
            detection.get("min_private_people", default.min_private_people),
            2,
            threshold if threshold > 2 else 2,
        ),
        public_critical_at=_int_at_least(
            "severity.public_critical_at",
            raw.get("public_critical_at", default.public_critical_at),
            1,
        ),
        mixed_classes=_mixed(raw.get("mixed_with"), raw.get("mixed_domains")),
        **_lexicon(languages, raw.get("terms_dir"), config_path),
    )


def _lexicon(
    languages: list[Any] | None, terms_dir: str | None, config_path: Path | None
) -> dict[str, Any]:
    """``organisation.languages`` and ``severity.terms_dir``, checked by loading them once."""
    folder: str | None = None
    if terms_dir is not None:
        path = Path(terms_dir).expanduser()
        if not path.is_absolute() and config_path is not None:
            path = config_path.parent / path
        folder = str(path)
    try:
        known = available_languages(folder)
        chosen: frozenset[str] | None = None
        if languages is not None:
            codes = [str(c).strip().lower() if isinstance(c, str) else c for c in languages]
            for index, code in enumerate(codes):
                if code not in known:
                    raise ConfigError(
                        f"organisation.languages[{index}]",
                        f"{languages[index]!r} is not a language sweeper has terms for "
                        f"({', '.join(sorted(known))})",
                    )
            if not codes:
                raise ConfigError("organisation.languages", "name one language at least")
            chosen = frozenset(codes)
        check_own_terms(folder)  # the shipped files are checked by the tests, and load lazily
    except LexiconError as error:
        raise ConfigError("severity.terms_dir" if folder else "lexicon", str(error)) from None
    return {"languages": chosen, "terms_dir": folder}


def _reveals_critical_at(
    raw: dict[str, Any], default: tuple[tuple[str, int], ...]
) -> tuple[tuple[str, int], ...]:
    """``severity.reveals_critical_at``: categories of the lexicon (or ``own``) and the number
    of people from which a list revealing one is critical, over the shipped defaults."""
    lines = dict(default)
    for category, value in raw.items():
        name = f"severity.reveals_critical_at.{category}"
        if category not in CATEGORIES and category != OWN:
            known = ", ".join([*CATEGORIES, OWN])
            raise ConfigError(name, f"is not a category of the lexicon ({known})")
        if isinstance(value, bool) or not isinstance(value, int):
            raise ConfigError(name, f"must be a whole number of people, not {value!r}")
        lines[category] = _int_at_least(name, value, 1)
    return tuple(lines.items())


def _mixed(
    mixed_with: list[Any] | None, extra: dict[str, Any] | None
) -> Mapping[str, DomainClass] | None:
    """The domain classes beside which private people rank higher: the shipped ones named in
    ``severity.mixed_with`` (default: all), with ``severity.mixed_domains`` added."""
    defaults = default_classes()
    if (mixed_with is None or set(map(str, mixed_with)) == set(defaults)) and not extra:
        return None  # the shipped classes, as they are
    names = list(defaults) if mixed_with is None else mixed_with
    classes: dict[str, DomainClass] = {}
    for index, name in enumerate(names):
        if name not in defaults:
            raise ConfigError(
                f"severity.mixed_with[{index}]",
                f"{name!r} is not a class sweeper knows ({', '.join(defaults)})",
            )
        classes[name] = defaults[name]
    for name, domains in (extra or {}).items():
        listed = _domains(
            f"severity.mixed_domains.{name}", domains if isinstance(domains, list) else [None]
        )
        base = classes.get(name) or DomainClass.build()
        classes[name] = base.adding(listed)
    return classes


def _phrases(name: str, values: list[Any]) -> tuple[str, ...]:
    """Words or phrases, matched as whole words in any letter case."""
    for index, value in enumerate(values):
        if not isinstance(value, str) or not value.strip():
            raise ConfigError(f"{name}[{index}]", f"{value!r} is not a word or phrase")
    return tuple(v.strip().lower() for v in values)


_SENDER_PATTERN = re.compile(r"^[^@\s*]*\*?[^@\s*]*@[^@\s*]+\.[^@\s*]+$")


def _sender_patterns(name: str, values: list[Any], example: str) -> tuple[str, ...]:
    """Addresses, ``*@domain`` or ``local*@domain``: a ``*`` only in the local part."""
    patterns = []
    for index, value in enumerate(values):
        text = value.strip().lower() if isinstance(value, str) else ""
        if not _SENDER_PATTERN.match(text) or text.startswith("@"):
            raise ConfigError(
                f"{name}[{index}]",
                f"{value!r} is not an address or a pattern such as {example}",
            )
        patterns.append(text)
    return tuple(patterns)


def _share(name: str, value: float) -> float:
    if not 0 <= value <= 1:
        raise ConfigError(name, f"must be a share between 0 and 1, not {value}")
    return float(value)


def parse_allow_rules(raw: list[dict[str, Any]]) -> tuple[AllowRule, ...]:
    """Allowlist rules from their TOML form (a list of tables); ConfigError names a bad one."""
    rules = []
    for index, entry in enumerate(raw):
        where = f"allow[{index}]"
        if not str(entry.get("reason", "")).strip():
            raise ConfigError(f"{where}.reason", "every allowlist rule must say why")
        if not any(k in entry for k in ("sender", "domains", "subject")):
            raise ConfigError(where, "needs at least one of sender, domains, subject")
        sender = entry.get("sender")
        if sender is not None and "@" not in sender:
            raise ConfigError(f"{where}.sender", f"{sender!r} is not an email address")
        pattern = None
        if "subject" in entry:
            try:
                pattern = re.compile(entry["subject"], re.IGNORECASE)
            except re.error as exc:
                raise ConfigError(f"{where}.subject", f"not a valid pattern: {exc}") from None
        domains = entry.get("domains")
        rules.append(
            AllowRule(
                name=entry.get("name") or where,
                reason=entry["reason"].strip(),
                sender=sender.strip().lower() if sender else None,
                domains=frozenset(_domains(f"{where}.domains", domains)) if domains else None,
                subject=pattern,
                expires=entry.get("expires"),
            )
        )
    return tuple(rules)


def _address(name: str, value: str) -> str:
    text = value.strip().lower()
    local, at, domain = text.rpartition("@")
    if not at or not local or "." not in domain or any(c.isspace() for c in text):
        raise ConfigError(name, f"{value!r} is not an email address")
    return text


def _digest(raw: dict[str, Any], config_path: Path | None) -> DigestSettings:
    default = DigestSettings()
    transport = _choice("digest.transport", raw.get("transport", default.transport), TRANSPORTS)
    sender = raw.get("sender")
    reports = Path(raw.get("reports_dir", str(default.reports_dir))).expanduser()
    if not reports.is_absolute() and config_path is not None and "reports_dir" in raw:
        reports = config_path.parent / reports
    return DigestSettings(
        transport=transport,
        sender=_address("digest.sender", sender) if sender else None,
        recipients=tuple(
            _address(f"digest.recipients[{i}]", str(r))
            for i, r in enumerate(raw.get("recipients", []))
        ),
        save_to_sent_items=raw.get("save_to_sent_items", default.save_to_sent_items),
        all_clear=raw.get("all_clear", default.all_clear),
        reports_dir=reports,
        smtp_host=raw.get("smtp_host") or None,
        smtp_port=_int_between(
            "digest.smtp_port", raw.get("smtp_port", default.smtp_port), 1, 65535
        ),
        smtp_starttls=raw.get("smtp_starttls", default.smtp_starttls),
        smtp_username=raw.get("smtp_username") or None,
    )


def _alerts(raw: dict[str, Any], env: Mapping[str, str] | None) -> AlertSettings:
    """``[alerts]``: channels, thresholds and the frequent sweep. With ``env`` (commands
    that may send), the webhook's signing secret must be there when a webhook is set."""
    default = AlertSettings()
    every = raw.get("sweep_every")
    span = None
    if every:
        try:
            span = parse_span(every)
        except ValueError as exc:
            raise ConfigError("alerts.sweep_every", str(exc)) from None
        if not timedelta(minutes=5) <= span <= timedelta(hours=12):
            raise ConfigError("alerts.sweep_every", f"{every!r} must be from 5m to 12h")
    webhook = _hook_url("alerts.webhook_url", raw.get("webhook_url"))
    if webhook and env is not None:
        webhook_secret(env)  # one line naming the variable, at start, when it is missing
    return AlertSettings(
        sweep_every=span,
        min_severity=_choice(
            "alerts.min_severity", raw.get("min_severity", default.min_severity), LEVELS
        ),
        grew_by=_between("alerts.grew_by", raw.get("grew_by", default.grew_by), 0, 100),
        teams_url=_hook_url("alerts.teams_url", raw.get("teams_url")),
        webhook_url=webhook,
        mail=raw.get("mail", default.mail),
        budget_seconds=_between(
            "alerts.budget_seconds", raw.get("budget_seconds", default.budget_seconds), 1, 600
        ),
    )


def _hook_url(name: str, value: str | None) -> str | None:
    """An https URL; plain http only to this machine's loopback (a test receiver)."""
    return check_webhook_url(name, value) if value else None


def _schedule(
    raw: dict[str, Any], organisation_zone: str, *, compile_cron: bool
) -> ScheduleSettings:
    """``[schedule]``; its zone is the organisation's unless it names one. The cron
    expression is checked only with ``compile_cron`` (apscheduler, see load_settings)."""
    default = ScheduleSettings()
    settings = ScheduleSettings(
        cron=raw.get("cron", default.cron),
        timezone=raw.get("timezone", organisation_zone),
        misfire_grace_minutes=_int_between(
            "schedule.misfire_grace_minutes",
            raw.get("misfire_grace_minutes", default.misfire_grace_minutes),
            1,
            24 * 60,
        ),
    )
    time_zone(settings.timezone, "schedule.timezone")
    if compile_cron:
        from sweeper.commands.schedule import cron_trigger  # checks the expression too

        cron_trigger(settings.cron, settings.timezone)
    return settings
