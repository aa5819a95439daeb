"""``[severity]`` (with ``detection.min_private_people`` and ``organisation.languages``):
the numbers and lists of the severity rule, checked against each other and the lexicon."""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any

from sweeper.errors import ConfigError
from sweeper.rules.audience import DomainClass, default_classes
from sweeper.rules.lexicon import CATEGORIES, LexiconError, available_languages, check_own_terms
from sweeper.rules.severity import OWN, SeverityRule
from sweeper.settings.declare import int_at_least, int_between
from sweeper.settings.keys import key
from sweeper.settings.values import domains, phrases, sender_patterns


def severity_rule(
    raw: dict[str, Any],
    threshold: int,
    detection: dict[str, Any],
    languages: list[Any] | None,
    config_path: Path | None,
) -> SeverityRule:
    """The severity rule from ``[severity]``, over the detection threshold ``threshold``."""
    high = key("severity.high_at").read(raw)
    if high <= threshold:
        raise ConfigError(
            "severity.high_at", f"must be more than detection.min_visible_external ({threshold})"
        )
    critical = key("severity.critical_at").read(raw)
    if critical <= high:
        raise ConfigError("severity.critical_at", f"must be more than high_at ({high})")
    terms = key("severity.sensitive_terms").read(raw)
    if not all(isinstance(t, str) and t.strip() for t in terms):
        raise ConfigError("severity.sensitive_terms", "must be a list of words")
    return SeverityRule(
        medium_at=threshold,
        high_at=high,
        critical_at=critical,
        colleagues_max_domains=key("severity.colleagues_max_domains").read(raw),
        colleagues_max_personal=key("severity.colleagues_max_personal").read(raw),
        public_min_personal_share=key("severity.public_min_personal_share").read(raw),
        sensitive_terms=tuple(t.strip().lower() for t in terms),
        bcc_raises=key("severity.bcc_raises").read(raw),
        personal_domains=frozenset(
            domains("severity.personal_domains", key("severity.personal_domains").read(raw))
        ),
        sensitive_departments=phrases(
            "severity.sensitive_departments", key("severity.sensitive_departments").read(raw)
        ),
        sensitive_senders=sender_patterns(
            "severity.sensitive_senders",
            key("severity.sensitive_senders").read(raw),
            "*@victimcare.example or casework*@northwick.example",
        ),
        business_at_most=key("severity.business_at_most").read(raw),
        business_medium_at=key("severity.business_medium_at").read(raw),
        reveals_critical_at=_reveals_critical_at(raw.get("reveals_critical_at", {})),
        min_private_people=_min_private_people(detection, threshold),
        public_critical_at=key("severity.public_critical_at").read(raw),
        mixed_classes=_mixed(raw.get("mixed_with"), raw.get("mixed_domains")),
        **_lexicon(languages, raw.get("terms_dir"), config_path),
    )


def _min_private_people(detection: dict[str, Any], threshold: int) -> int:
    """``detection.min_private_people``: from 2 to the detection threshold."""
    people: int = key("detection.min_private_people").read(detection)
    return int_between("detection.min_private_people", people, 2, max(threshold, 2))


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


def _reveals_critical_at(raw: dict[str, Any]) -> tuple[tuple[str, int], ...]:
    """``severity.reveals_critical_at``: categories of the lexicon (or ``own``) and the number
    of people from which a list revealing one is critical, over the shipped defaults."""
    lines = dict(key("severity.reveals_critical_at").default)
    for category, value in raw.items():
        name = f"severity.reveals_critical_at.{category}"
        if category not in CATEGORIES and category != OWN:
            known = ", ".join([*CATEGORIES, OWN])
            raise ConfigError(name, f"is not a category of the lexicon ({known})")
        if isinstance(value, bool) or not isinstance(value, int):
            raise ConfigError(name, f"must be a whole number of people, not {value!r}")
        lines[category] = int_at_least(name, value, 1)
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
    for name, listed in (extra or {}).items():
        found = domains(
            f"severity.mixed_domains.{name}", listed if isinstance(listed, list) else [None]
        )
        base = classes.get(name) or DomainClass.build()
        classes[name] = base.adding(found)
    return classes
