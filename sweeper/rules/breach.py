"""What a breach report asks about a visible list, drafted from the facts. Pure.

The ICO's personal data breach report form (and the Article 33(3) contents every authority
asks for) wants, besides the timeline: the categories of personal data, the types of
people concerned, how many, the likely consequences and the measures taken. For a list
shown in To or Cc the data are the addresses (and the names they show); the harm lies in
what **membership of the list reveals**: that these people are victims, patients, asylum
seekers, clients of a service. sweeper reads that from the same signals that raise the
severity (the subject's sensitive terms and the sender's sensitive function) and drafts the
answers; the worksheet marks each draft for the DPO to confirm.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

from sweeper.rules.severity import whole_words


@dataclass(frozen=True)
class Circumstance:
    """What a sensitive term says about the people on a list."""

    people: str  # the type of people, in the words of a breach report
    implies: str  # what being on the list may reveal about each of them
    special: str | None = None  # Article 9 or 10 data it may amount to, if any


_CRIME = Circumstance(
    "victims of crime or abuse",
    "that they are victims of a crime or of abuse",
    "criminal offence data (Article 10); possibly health data (Article 9)",
)
_INVESTIGATION = Circumstance(
    "people involved in an investigation (victims, witnesses or subjects)",
    "that they are involved in an investigation or an allegation",
    "criminal offence data (Article 10), where the matter is criminal",
)
_HEALTH = Circumstance(
    "patients or users of a health or care service",
    "that they use a health or care service",
    "health data (Article 9)",
)
_SEXUAL_HEALTH = Circumstance(
    "users of sexual health or HIV services",
    "that they use sexual health or HIV services",
    "health data and data concerning sex life (Article 9)",
)
_MIGRATION = Circumstance(
    "asylum seekers, refugees or migrants",
    "their immigration circumstances",
    "possibly racial or ethnic origin (Article 9)",
)
_SAFEGUARDING = Circumstance(
    "children or vulnerable adults, or their families",
    "that they are the subject of a safeguarding concern or a referral",
    "possibly health data (Article 9)",
)
_CASEWORK = Circumstance(
    "complainants or clients of a service",
    "that they have a complaint, a case or a hearing with the organisation",
)

CIRCUMSTANCES: dict[str, Circumstance] = {
    "victim": _CRIME,
    "abuse": _CRIME,
    "domestic abuse": _CRIME,
    "witness": Circumstance(
        "witnesses", "that they are witnesses in a case", "criminal offence data (Article 10)"
    ),
    "investigation": _INVESTIGATION,
    "allegation": _INVESTIGATION,
    "patient": _HEALTH,
    "clinic": _HEALTH,
    "diagnosis": _HEALTH,
    "counselling": _HEALTH,
    "mental health": Circumstance(
        "people using mental health services",
        "that they use mental health services",
        "health data (Article 9)",
    ),
    "disability": Circumstance(
        "disabled people", "that they have a disability", "health data (Article 9)"
    ),
    "hiv": _SEXUAL_HEALTH,
    "sexual health": _SEXUAL_HEALTH,
    "support group": Circumstance(
        "members of a support group",
        "that they share the circumstance the group supports",
        "possibly health data (Article 9)",
    ),
    "bereavement": Circumstance("bereaved people", "that they have been bereaved"),
    "asylum": _MIGRATION,
    "refugee": _MIGRATION,
    "immigration": _MIGRATION,
    "interpreter": Circumstance(
        "interpreters, and possibly the people they interpret for",
        "that they work as interpreters for the organisation, or need one",
        "possibly racial or ethnic origin (Article 9)",
    ),
    "relocation": Circumstance(
        "people being relocated, possibly for their safety",
        "that they are being relocated, and by whom",
    ),
    "safeguarding": _SAFEGUARDING,
    "referral": _SAFEGUARDING,
    "complaint": _CASEWORK,
    "casework": _CASEWORK,
    "tribunal": _CASEWORK,
    "survey": Circumstance(
        "respondents to a survey, who may be users of the service surveyed",
        "that they used the service the survey is about",
    ),
}


_MONEY = Circumstance(
    "people in debt or financial hardship, or claiming benefits",
    "their financial hardship, debts or benefits",
)
BY_CATEGORY: dict[str, Circumstance] = {
    "health": _HEALTH,
    "hiv": _SEXUAL_HEALTH,
    "sexuality": Circumstance(
        "people identified by their sexual life or orientation",
        "their sexual life or sexual orientation",
        "data concerning sex life or sexual orientation (Article 9)",
    ),
    "religion": Circumstance(
        "members of a religion or belief", "their religion or beliefs", "Article 9 data"
    ),
    "origin": _MIGRATION,
    "crime": Circumstance(
        "people involved in criminal proceedings, as suspects, offenders or defendants",
        "that they are involved in criminal proceedings",
        "criminal offence data (Article 10)",
    ),
    "victims": _CRIME,
    "abuse": _CRIME,
    "care": _SAFEGUARDING,
    "hardship": _MONEY,
    "bereavement": Circumstance("bereaved people", "that they have been bereaved"),
    "employment": Circumstance(
        "employees in a grievance, disciplinary or absence process",
        "that they are in a grievance, a disciplinary or an absence process",
        "possibly health data (Article 9)",
    ),
    "politics": Circumstance(
        "members or supporters of a party or a union",
        "their political opinions or union membership",
        "Article 9 data",
    ),
}
"""What each category of the lexicon (:mod:`sweeper.rules.lexicon`) says about the people."""


def circumstances(
    terms: Iterable[str], function_text: str | None = None, categories: Iterable[str] = ()
) -> list[Circumstance]:
    """What the list may reveal: from the lexicon's ``categories`` found in the subjects, the
    organisation's own sensitive ``terms`` found there, and the words of the sender's
    sensitive function (``department 'Sexual Health Service'``), each once.

    A configured term sweeper has no words for is described as the people it names.
    """
    found: list[Circumstance] = [BY_CATEGORY[c] for c in categories if c in BY_CATEGORY]
    for term in terms:
        key = term.strip().lower()
        found.append(
            CIRCUMSTANCES.get(key)
            or Circumstance(f"people the term {term!r} describes", f"that {term!r} concerns them")
        )
    if function_text:
        found += [c for key, c in CIRCUMSTANCES.items() if whole_words(key, function_text)]
    return list(dict.fromkeys(found))


def people_types(found: Iterable[Circumstance], function: str | None) -> list[str]:
    """The types of people concerned, as the report form asks for them."""
    types = [c.people for c in found]
    if function:
        types.append(f"people in contact with a sensitive function of the organisation: {function}")
    return list(dict.fromkeys(types))


def consequences(
    *,
    people: int,
    named: int | None,
    personal: int,
    found: Iterable[Circumstance],
    function: str | None,
    severity: str,
) -> list[str]:
    """The likely consequences, drafted for the DPO to confirm, most serious first."""
    found = list(found)
    lines = []
    if found or function:
        reveals = "; ".join(c.implies for c in found) or (
            "that they are in contact with a sensitive function of the organisation"
        )
        lines.append(
            f"Being on the list may reveal {reveals}. Others on it, and anyone it is "
            "forwarded to, may learn this: a risk of distress, stigma, discrimination or harm."
        )
    shown = f"Each of the {people} people can see the others' email addresses"
    if named:
        shown += f", and {named} of the addresses show a name"
    lines.append(shown + ".")
    if personal:
        lines.append(
            f"{personal} personal address{'es are' if personal != 1 else ' is'} now known to "
            "strangers: unwanted contact, harassment and phishing become possible."
        )
    lines.append("Any recipient may reply to all or forward the list, spreading it further.")
    if severity in ("high", "critical"):
        lines.append(
            f"sweeper ranks it {severity}: the risk to the people may be high, in which case "
            "they must be told without undue delay (Article 34)."
        )
    return lines
