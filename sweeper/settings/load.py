"""The :class:`Settings` every command reads, and :func:`load_settings`, which makes them from
the file and the environment, checked once, up front, before anything is written anywhere."""

from __future__ import annotations

import os
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path
from typing import Any

from sweeper.graph.endpoints import CLOUDS, SignIn
from sweeper.rules.allow import AllowRule
from sweeper.rules.classify import Policy
from sweeper.rules.severity import SeverityRule
from sweeper.settings.alerts import AlertSettings, alert_settings
from sweeper.settings.allow import parse_allow_rules
from sweeper.settings.cloud import ca_bundle, check_credentials, cloud_named, endpoints
from sweeper.settings.console import ConsoleSettings, console_settings
from sweeper.settings.digest import DigestSettings, digest_settings
from sweeper.settings.file import check_schema, read_file
from sweeper.settings.keys import DEFAULT_DATABASE, default, key, value
from sweeper.settings.schedule import ScheduleSettings, schedule_settings
from sweeper.settings.severity import severity_rule
from sweeper.settings.siem import SiemSettings, siem_settings
from sweeper.settings.values import domains, sender_patterns
from sweeper.when import time_zone


@dataclass(frozen=True)
class Settings:
    """Everything a command needs to know, already checked. Holds no secret."""

    cloud: str = default("graph.cloud")
    graph_url: str = CLOUDS["global"].graph_url  # "" when loaded without need_graph
    authority_host: str = CLOUDS["global"].authority_host
    auth: str = default("graph.auth")
    tenant_id: str | None = default("graph.tenant_id")
    client_id: str | None = default("graph.client_id")
    timeout: float = float(default("graph.timeout_seconds"))  # one request, body and all
    max_pages: int = default("graph.max_pages")  # of one mailbox or listing, at most
    max_answer_mb: int = default("graph.max_answer_mb")  # one answer, decompressed, at most
    own_domains: tuple[str, ...] = tuple(default("organisation.own_domains"))
    timezone: str = default("organisation.timezone")  # IANA zone reports show moments in
    min_visible_external: int = default("detection.min_visible_external")
    window: timedelta = timedelta(hours=default("sweep.window_hours"))
    overlap: timedelta = timedelta(minutes=default("sweep.overlap_minutes"))
    page_size: int = default("sweep.page_size")  # chosen by measurement: BENCHMARKS.md
    concurrency: int = default("sweep.concurrency")
    batch: bool = default("sweep.batch")  # first pages of 20 mailboxes in one JSON batch
    include_disabled: bool = default("sweep.include_disabled")  # shared ones, leavers'
    exclude: tuple[str, ...] = tuple(default("sweep.exclude"))  # accounts never swept
    database: Path = Path(DEFAULT_DATABASE)
    config_path: Path | None = None
    ca_bundle: Path | None = None
    severity: SeverityRule = SeverityRule()
    allow: tuple[AllowRule, ...] = ()
    incident_window: timedelta = timedelta(hours=default("incidents.window_hours"))
    reexposure_window: timedelta = timedelta(days=default("incidents.reexposure_days"))
    digest: DigestSettings = DigestSettings()
    schedule: ScheduleSettings = ScheduleSettings()
    alerts: AlertSettings = AlertSettings()
    retention: timedelta = timedelta(days=default("retention.addresses_days"))
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


DEFAULTS = Settings()  # every default is declared once, in sweeper.settings.keys


def load_settings(
    config_path: str | os.PathLike[str] | None,
    env: Mapping[str, str],
    *,
    need_graph: bool = True,
    overrides: Mapping[str, Mapping[str, Any]] | None = None,
) -> Settings:
    """Read the file (``--config``, else ``SWEEPER_CONFIG``, else none) and the environment.

    ``need_graph=False`` is for commands that only read the database: sign-in settings are
    then not required, and the schedule's cron expression is not compiled (APScheduler does
    that, and loading it would slow down every listing; ``sweeper schedule``, the commands
    that sweep and ``doctor`` check it). ``overrides`` are applied over the file, section
    by section.
    """
    path_text = str(config_path) if config_path else env.get("SWEEPER_CONFIG") or None
    path = Path(path_text) if path_text else None
    raw = read_file(path) if path else {}
    for section, values in (overrides or {}).items():
        raw[section] = {**raw.get(section, {}), **values}
    check_schema(raw)
    sign_in = _sign_in(raw.get("graph", {}), env, need_graph=need_graph)
    threshold = value(raw, "detection.min_visible_external")
    zone = value(raw, "organisation.timezone")
    time_zone(zone, "organisation.timezone")
    return Settings(
        **sign_in,
        timeout=value(raw, "graph.timeout_seconds"),
        max_pages=value(raw, "graph.max_pages"),
        max_answer_mb=value(raw, "graph.max_answer_mb"),
        own_domains=domains("organisation.own_domains", value(raw, "organisation.own_domains")),
        timezone=zone,
        min_visible_external=threshold,
        **_sweep(raw),
        database=_database(raw.get("storage", {}).get("database"), path, env),
        config_path=path,
        ca_bundle=ca_bundle(env) if need_graph else None,
        severity=severity_rule(
            raw.get("severity", {}),
            threshold,
            raw.get("detection", {}),
            raw.get("organisation", {}).get("languages"),
            path,
        ),
        allow=parse_allow_rules(raw.get("allow", [])),
        incident_window=timedelta(hours=value(raw, "incidents.window_hours")),
        reexposure_window=timedelta(days=value(raw, "incidents.reexposure_days")),
        digest=digest_settings(raw.get("digest", {}), path),
        schedule=schedule_settings(raw.get("schedule", {}), zone, compile_cron=need_graph),
        alerts=alert_settings(raw.get("alerts", {}), env if need_graph else None),
        retention=timedelta(days=value(raw, "retention.addresses_days")),
        siem=siem_settings(raw.get("siem", {}), sign_in["cloud"]),
        console=console_settings(raw.get("console", {})),
    )


def _sign_in(graph: dict[str, Any], env: Mapping[str, str], *, need_graph: bool) -> dict[str, Any]:
    """The cloud, its endpoints and who signs in; the credentials checked with ``need_graph``."""
    cloud = cloud_named(graph.get("cloud"), env if need_graph else {})
    auth = key("graph.auth").read(graph)
    tenant_id = env.get("AZURE_TENANT_ID") or graph.get("tenant_id") or None
    client_id = env.get("AZURE_CLIENT_ID") or graph.get("client_id") or None
    graph_url, authority = "", ""
    if need_graph:
        graph_url, authority = endpoints(cloud, env)
        check_credentials(auth, tenant_id, client_id, env)
    return {
        "cloud": cloud,
        "graph_url": graph_url,
        "authority_host": authority,
        "auth": auth,
        "tenant_id": tenant_id,
        "client_id": client_id,
    }


def _sweep(raw: dict[str, Any]) -> dict[str, Any]:
    """``[sweep]``: the window and how mailboxes are read."""
    return {
        "window": timedelta(hours=value(raw, "sweep.window_hours")),
        "overlap": timedelta(minutes=value(raw, "sweep.overlap_minutes")),
        "page_size": value(raw, "sweep.page_size"),
        "concurrency": value(raw, "sweep.concurrency"),
        "batch": value(raw, "sweep.batch"),
        "include_disabled": value(raw, "sweep.include_disabled"),
        "exclude": sender_patterns(
            "sweep.exclude", value(raw, "sweep.exclude"), "room*@northwick.example"
        ),
    }


def _database(named: str | None, config_path: Path | None, env: Mapping[str, str]) -> Path:
    """``storage.database``, relative to the file; ``SWEEPER_DB`` wins over it."""
    from_env = env.get("SWEEPER_DB")
    if from_env:
        return Path(from_env)
    if not named:
        return Path(DEFAULT_DATABASE)
    path = Path(named).expanduser()
    if not path.is_absolute() and config_path is not None:
        path = config_path.parent / path  # relative to the file, not to wherever cron runs
    return path
