"""The messages of a corpus case as Microsoft Graph sends them, with made-up people.

Each person is made up from the case's id, the kind of address and its number, with names
and mail providers of the case's language, so a case shows the same people on every run and
on every machine. Kinds of address:

- ``personal``: a private person at a free-mail or ISP domain of the language (gmail.com,
  web.de, libero.it, wp.pl, ...);
- ``work``: a named person at an ordinary outside organisation;
- ``role``: a mailbox that is no person (info@, press@, redaktion@, sekretariat@, ...) at an
  outside organisation or, with ``role_at = "media"``, at a newsroom;
- ``media``: a named journalist at a news organisation (bbc.co.uk, lemonde.fr, spiegel.de,
  and local titles);
- ``law``: a named lawyer at a law firm;
- ``internal``: a colleague of the sender at the organisation's own domain.
"""

from __future__ import annotations

import hashlib
import itertools
import math
import random
import unicodedata
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

from tools.judgement_corpus import FIELDS, Case, MessageSpec, Recipients

INTERNAL_DOMAIN = "northwick.example"
START = datetime(2026, 3, 2, 8, 30, tzinfo=UTC)  # when message 1 of every case is sent

FIRST_NAMES = {
    "en": "Oliver Amelia Harry Isla Jack Sophie George Grace Noah Chloe Thomas Emily James "
    "Priya Mohammed Aisha Liam Megan Daniel Hannah",
    "fr": "Camille Léa Chloé Manon Inès Hugo Lucas Théo Mathéo Zoé Gabriel Louise Jules "
    "Éloïse Noémie Raphaël Anaïs Benoît Hélène Adèle",
    "de": "Lukas Leon Finn Jonas Paul Anna Lea Lena Marie Sophie Jürgen Björn Sören Jörg "
    "Gülay Käthe Maximilian Felix Hannah Lisa",
    "es": "Lucía Martín Sofía Hugo María Pablo Alejandro Daniel Valeria Martina José Jesús "
    "Ángela Íñigo Nuria Begoña Iker Álvaro Carmen Rocío",
    "it": "Giulia Francesco Alessandro Sofia Aurora Leonardo Lorenzo Matteo Chiara Federica "
    "Niccolò Andrea Giorgia Gabriele Martina Elisa Davide Simone Ilaria Nicoletta",
    "nl": "Daan Sem Lucas Emma Julia Mila Tess Sophie Noah Bram Anouk Fleur Thijs Joris "
    "Maaike Sanne Ruben Lotte Sven Ilse",
    "pt": "João Maria Ana Francisco Beatriz Inês Tomás Rodrigo Mariana Leonor Gonçalo "
    "Sebastião Matilde Carolina Duarte Afonso Joana Rita Tiago Simão",
    "pl": "Zofia Hanna Julia Maja Jakub Antoni Szymon Jan Filip Łukasz Małgorzata Agnieszka "
    "Katarzyna Wojciech Paweł Michał Krzysztof Grażyna Zbigniew Żaneta",
}
SURNAMES = {
    "en": "Smith Jones Taylor Brown Williams Wilson Evans Thomas Roberts Walker Wright Patel "
    "Khan Hughes Edwards Green Hall Wood Harris Clarke",
    "fr": "Martin Bernard Dubois Thomas Robert Richard Petit Durand Leroy Moreau Simon Laurent "
    "Lefèvre Michel Garcia Fournier Girard Bonnet Dupont Lambert",
    "de": "Müller Schmidt Schneider Fischer Weber Meyer Wagner Becker Schulz Hoffmann Schäfer "
    "Koch Bauer Richter Klein Wolf Schröder Neumann Schwarz Zimmermann",
    "es": "García Rodríguez González Fernández López Martínez Sánchez Pérez Gómez Martín "
    "Jiménez Ruiz Hernández Díaz Moreno Muñoz Álvarez Romero Navarro Torres",
    "it": "Rossi Russo Ferrari Esposito Bianchi Romano Colombo Ricci Marino Greco Bruno Gallo "
    "Conti De_Luca Mancini Costa Giordano Rizzo Lombardi Moretti",
    "nl": "de_Jong Jansen de_Vries van_den_Berg van_Dijk Bakker Janssen Visser Smit Meijer "
    "de_Boer Mulder de_Groot Bos Vos Peters Hendriks van_Leeuwen Dekker Brouwer",
    "pt": "Silva Santos Ferreira Pereira Oliveira Costa Rodrigues Martins Jesus Sousa "
    "Fernandes Gonçalves Gomes Lopes Marques Alves Almeida Ribeiro Pinto Carvalho",
    "pl": "Nowak Kowalski Wiśniewski Wójcik Kowalczyk Kamiński Lewandowski Zieliński "
    "Szymański Woźniak Dąbrowski Kozłowski Jankowski Mazur Kwiatkowski Krawczyk Piotrowski "
    "Grabowski Nowakowski Pawłowski",
}
# Free-mail and ISP domains people of each language use, the most common first.
PERSONAL_DOMAINS = {
    "en": "gmail.com hotmail.co.uk yahoo.co.uk outlook.com btinternet.com icloud.com "
    "live.co.uk hotmail.com",
    "fr": "gmail.com orange.fr hotmail.fr free.fr laposte.net wanadoo.fr yahoo.fr outlook.fr",
    "de": "gmail.com web.de gmx.de t-online.de gmx.net outlook.de freenet.de gmx.at",
    "es": "gmail.com hotmail.es hotmail.com yahoo.es outlook.es telefonica.net",
    "it": "gmail.com libero.it virgilio.it alice.it hotmail.it tiscali.it yahoo.it outlook.it",
    "nl": "gmail.com ziggo.nl kpnmail.nl hotmail.nl live.nl planet.nl home.nl telenet.be skynet.be",
    "pt": "gmail.com sapo.pt hotmail.com outlook.pt iol.pt live.com.pt",
    "pl": "gmail.com wp.pl onet.pl o2.pl interia.pl op.pl gazeta.pl",
}
NATIONAL_MEDIA = {
    "en": "bbc.co.uk theguardian.com thetimes.co.uk ft.com telegraph.co.uk reuters.com itv.com "
    "independent.co.uk",
    "fr": "lemonde.fr lefigaro.fr liberation.fr francetv.fr radiofrance.com afp.com "
    "leparisien.fr ouest-france.fr",
    "de": "spiegel.de zeit.de sueddeutsche.de faz.de ndr.de wdr.de br.de dpa.com",
    "es": "elpais.es elmundo.es rtve.es lavanguardia.com abc.es efe.com elperiodico.com",
    "it": "repubblica.it corriere.it rai.it lastampa.it ansa.it ilsole24ore.com ilmessaggero.it",
    "nl": "nos.nl nrc.nl volkskrant.nl telegraaf.nl rtl.nl trouw.nl anp.nl vrt.be",
    "pt": "publico.pt expresso.pt rtp.pt dn.pt jn.pt observador.pt lusa.pt sic.pt",
    "pl": "wyborcza.pl rp.pl tvn.pl polsatnews.pl pap.pl tvp.pl polskieradio.pl newsweek.pl",
}
LOCAL_MEDIA = {  # {town} is a town of the language
    "en": "{town}echo.co.uk {town}gazette.co.uk {town}chronicle.co.uk {town}post.co.uk",
    "fr": "{town}-matin.fr lepetit{town}.fr {town}-info.fr courrier-{town}.fr",
    "de": "{town}-zeitung.de {town}-kurier.de {town}-rundschau.de {town}-nachrichten.de",
    "es": "diariode{town}.es elcorreode{town}.es noticiasde{town}.es lavozde{town}.es",
    "it": "ilgiornaledi{town}.it corrieredi{town}.it lagazzettadi{town}.it {town}oggi.it",
    "nl": "dagblad{town}.nl {town}secourant.nl nieuwsblad{town}.nl {town}sekoerier.nl",
    "pt": "diariode{town}.pt jornalde{town}.pt correiode{town}.pt noticiasde{town}.pt",
    "pl": "kurier{town}.pl dziennik{town}.pl echo{town}.pl tygodnik{town}.pl",
}
TOWNS = {
    "en": "Leeds Bristol Norwich Exeter York Derby Bath Hull Reading Preston",
    "fr": "Lyon Nantes Rennes Lille Brest Dijon Tours Metz Nancy Angers",
    "de": "Bremen Kassel Mainz Trier Fulda Ulm Passau Siegen Jena Rostock",
    "es": "Burgos Cádiz León Lugo Soria Teruel Huesca Jaén Zamora Murcia",
    "it": "Parma Lecce Trento Udine Pisa Siena Bari Como Rimini Varese",
    "nl": "Zwolle Leiden Delft Breda Assen Venlo Gouda Hoorn Ede Tiel",
    "pt": "Braga Évora Faro Viseu Leiria Aveiro Guarda Beja Tomar Setúbal",
    "pl": "Kraków Gdańsk Poznań Lublin Opole Toruń Rzeszów Kielce Olsztyn Płock",
}
ORGANISATIONS = {  # stems, suffixes, top-level domains
    "en": (
        "harbour northgate bluestone redwood kestrel meridian ashford pinnacle granite willow "
        "fenwick larch brightwater oakridge thornbury calder severn pennine cobalt saxon",
        "logistics consulting engineering group partners systems foods energy analytics "
        "property design software advisory freight lettings",
        "co.uk com uk",
    ),
    "fr": (
        "lemaire dufresne atlantique rhone vallee horizon cartier bocage garonne lumiere "
        "armor loire vercors cevennes provence",
        "conseil industries services ingenierie logistique immobilier distribution batiment",
        "fr com",
    ),
    "de": (
        "nordlicht rheinblick alpen hanse elbe spree weser taunus harz eifel allgaeu "
        "bodensee schwarzwald mosel",
        "logistik bau technik consulting maschinenbau software energie service",
        "de com",
    ),
    "es": (
        "iberia levante cantabrico meseta guadalquivir pirineo mediterraneo atlantica "
        "castilla sierra",
        "consultores logistica ingenieria servicios construcciones energia",
        "es com",
    ),
    "it": (
        "adriatica tirreno dolomiti appennino laguna padana ligure sabina etna brenta",
        "consulting logistica impianti servizi costruzioni engineering",
        "it com",
    ),
    "nl": (
        "polder duinrand rivierland kempen veluwe waddenzee betuwe zeeland twente gooi",
        "advies logistiek techniek bouw groep installatie",
        "nl com",
    ),
    "pt": (
        "atlantico tejo douro minho alentejo algarve mondego estrela arrabida sado",
        "consultores logistica engenharia servicos construcoes energia",
        "pt com",
    ),
    "pl": (
        "wisla odra baltyk tatry mazowsze warta bieszczady karkonosze mazury pomorze",
        "logistyka budownictwo serwis technika doradztwo inzynieria",
        "pl com.pl",
    ),
}
LAW_FIRMS = {  # {a} and {b} are surnames of the language
    "en": "{a}{b}.co.uk {a}-{b}-llp.co.uk {a}law.co.uk {a}solicitors.co.uk",
    "fr": "{a}-avocats.fr cabinet-{a}.fr {a}-{b}-avocats.fr",
    "de": "kanzlei-{a}.de {a}-{b}-rechtsanwaelte.de {a}-partner.de",
    "es": "{a}abogados.es bufete{a}.es {a}-{b}-abogados.es",
    "it": "studiolegale{a}.it {a}avvocati.it studio{a}{b}.it",
    "nl": "{a}advocaten.nl {a}-{b}-advocaten.nl {a}legal.nl",
    "pt": "{a}-advogados.pt {a}-{b}-advogados.pt {a}-associados.pt",
    "pl": "kancelaria-{a}.pl {a}-{b}-kancelaria.pl {a}-legal.pl",
}
ROLE_MAILBOXES = {
    "en": "info press office enquiries hello admin newsdesk clerk",
    "fr": "contact accueil info presse secretariat redaction",
    "de": "info kontakt redaktion office presse poststelle",
    "es": "info contacto prensa administracion redaccion secretaria",
    "it": "info segreteria redazione amministrazione ufficiostampa protocollo",
    "nl": "info redactie secretariaat kantoor pers receptie",
    "pt": "geral info redacao contacto secretaria imprensa",
    "pl": "biuro sekretariat redakcja kontakt sekretarz info",
}
NICKNAMES = "luna kiwi bluebird mango tiger star rocky daisy pixel nemo zorro maverick sunny"
_SPECIAL = str.maketrans({"ł": "l", "Ł": "L", "ß": "ss", "ø": "o", "æ": "ae", "_": " "})
_UMLAUTS = str.maketrans({"ä": "ae", "ö": "oe", "ü": "ue", "Ä": "Ae", "Ö": "Oe", "Ü": "Ue"})


@dataclass(frozen=True)
class Person:
    address: str
    name: str | None


@dataclass
class People:
    """The people of one message, by field (To, Cc, Bcc)."""

    by_field: dict[str, list[Person]] = field(default_factory=lambda: {f: [] for f in FIELDS})


def words(text: str) -> list[str]:
    return text.split()


def ascii_part(text: str, language: str = "") -> str:
    """A name as the local part of an address: no accents, no spaces, lower case; German
    umlauts written out (Jürgen → juergen), as German addresses have them."""
    if language == "de":
        text = text.translate(_UMLAUTS)
    plain = unicodedata.normalize("NFKD", text.translate(_SPECIAL))
    kept = "".join(c for c in plain if not unicodedata.combining(c) and c.isalnum())
    return kept.lower()


def display(name: str) -> str:
    return name.replace("_", " ")


class Directory:
    """The made-up people of one case: each new person is new, each domain list fixed."""

    def __init__(self, case: Case) -> None:
        self.case = case
        self.language = case.language
        self.used: set[str] = set()
        self.organisations = self._domains("work", self._organisation_names())
        self.firms = self._domains("law", self._firm_names())
        self.newsrooms = self._newsrooms()
        self.next_person: dict[str, int] = {}

    def rng(self, *parts: object) -> random.Random:
        return random.Random("/".join(str(p) for p in (self.case.id, *parts)))

    def sender(self) -> Person:
        return self._named(INTERNAL_DOMAIN, "sender", 0)

    def new_people(
        self, kind: str, count: int, recipients: Recipients, named: bool
    ) -> list[Person]:
        """``count`` people of ``kind`` never shown before in this case."""
        make = {
            "personal": self._personal,
            "work": self._work,
            "role": self._role,
            "media": self._journalist,
            "law": self._lawyer,
            "internal": self._colleague,
        }[kind]
        start = self.next_person.get(kind, 0)
        self.next_person[kind] = start + count
        places = self._places(kind, count, recipients)
        return [make(start + i, places[i], named) for i in range(count)]

    def _places(self, kind: str, count: int, recipients: Recipients) -> list[str]:
        """The domain of each new person of ``kind``, spread over as many as asked. Every
        list of the case draws on the same organisations, first ones first: batches of one
        mailing reach people of the same firms, as they do."""
        if kind == "work":
            spread = recipients.work_domains or math.ceil(count / 3)
            return _spread(self.organisations[:spread], count)
        if kind == "law":
            spread = recipients.law_domains or math.ceil(count / 3)
            return _spread(self.firms[:spread], count)
        if kind == "media":
            spread = recipients.media_domains or min(count, 12)
            return _spread(self.newsrooms[:spread], count)
        if kind == "role":
            pool = self.newsrooms if recipients.role_at == "media" else self.organisations
            return _spread(pool[:count], count)
        return [""] * count

    def _personal(self, number: int, _place: str, named: bool) -> Person:
        rng = self.rng("personal", number)
        domain = _weighted(rng, words(PERSONAL_DOMAINS[self.language]))
        if not named:
            return self._unique(self._nickname(rng), domain, None)
        first, last = self._name(rng)
        style = rng.choice(("{f}.{l}", "{f}.{l}", "{f}{l}", "{f}.{l}{n}", "{i}{l}", "{l}.{f}"))
        given, family = ascii_part(first, self.language), ascii_part(last, self.language)
        local = style.format(f=given, l=family, i=given[0], n=rng.randint(1, 99))
        return self._unique(local, domain, f"{first} {display(last)}")

    def _work(self, number: int, place: str, named: bool) -> Person:
        return self._named(place, "work", number, named)

    def _journalist(self, number: int, place: str, named: bool) -> Person:
        return self._named(place, "media", number, named)

    def _lawyer(self, number: int, place: str, named: bool) -> Person:
        return self._named(place, "law", number, named)

    def _colleague(self, number: int, _place: str, _named: bool) -> Person:
        return self._named(INTERNAL_DOMAIN, "internal", number)

    def _role(self, number: int, place: str, _named: bool) -> Person:
        rng = self.rng("role", number)
        local = rng.choice(words(ROLE_MAILBOXES[self.language]))
        person = self._unique(local, place, None)
        return Person(person.address, person.address)  # Outlook shows the address itself

    def _named(self, domain: str, kind: str, number: int, named: bool = True) -> Person:
        rng = self.rng(kind, number)
        first, last = self._name(rng)
        given, family = ascii_part(first, self.language), ascii_part(last, self.language)
        if not named:
            return self._unique(f"{given[:1]}{family[:2]}", domain, None)
        return self._unique(f"{given}.{family}", domain, f"{first} {display(last)}")

    def _name(self, rng: random.Random) -> tuple[str, str]:
        return rng.choice(words(FIRST_NAMES[self.language])), rng.choice(
            words(SURNAMES[self.language])
        )

    def _nickname(self, rng: random.Random) -> str:
        if rng.random() < 0.5:
            return f"{rng.choice(words(NICKNAMES))}{rng.randint(10, 9999)}"
        letters = "".join(rng.choice("abcdefghjkmnprstvw") for _ in range(rng.randint(2, 3)))
        return f"{letters}{rng.randint(1950, 2009)}"

    def _unique(self, local: str, domain: str, name: str | None) -> Person:
        """The address, with a number added when someone of the case already has it."""
        address, extra = f"{local}@{domain}", 1
        while address in self.used:
            extra += 1
            address = f"{local}{extra}@{domain}"
        self.used.add(address)
        return Person(address, name)

    def _organisation_names(self) -> Iterator[str]:
        stems, suffixes, tlds = (words(t) for t in ORGANISATIONS[self.language])
        towns = [ascii_part(t) for t in words(TOWNS[self.language])]
        for stem, suffix, tld in itertools.product(stems, suffixes, tlds):
            yield f"{stem}-{suffix}.{tld}"
        for stem, suffix, town in itertools.product(stems, suffixes, towns):
            yield f"{stem}-{suffix}-{town}.{tlds[0]}"

    def _firm_names(self) -> Iterator[str]:
        names = [ascii_part(s, self.language) for s in words(SURNAMES[self.language])]
        for pattern in words(LAW_FIRMS[self.language]):
            if "{b}" in pattern:
                yield from (pattern.format(a=a, b=b) for a, b in itertools.permutations(names, 2))
            else:
                yield from (pattern.format(a=a) for a in names)

    def _domains(self, kind: str, names: Iterator[str]) -> list[str]:
        """Domains in an order of the case's own, each once, the plainest names first."""
        pool = list(dict.fromkeys(names))
        plain = [d for d in pool if d.count("-") < 2]
        rest = [d for d in pool if d.count("-") >= 2]
        self.rng("domains", kind).shuffle(plain)
        self.rng("domains", kind, "rest").shuffle(rest)
        return [*plain, *rest]

    def _newsrooms(self) -> list[str]:
        national = words(NATIONAL_MEDIA[self.language])
        self.rng("domains", "media").shuffle(national)
        towns = [ascii_part(t) for t in words(TOWNS[self.language])]
        local = [p.format(town=t) for t in towns for p in words(LOCAL_MEDIA[self.language])]
        self.rng("domains", "local").shuffle(local)
        return [*national, *local]


def _spread(domains: list[str], count: int) -> list[str]:
    """``count`` places over ``domains``: each used at least once, the first ones most."""
    if not domains:
        raise ValueError("no domains left to make more organisations for this case")
    return [domains[i % len(domains)] for i in range(count)]


def _weighted(rng: random.Random, choices: list[str]) -> str:
    """Earlier choices more often: the most common providers come first in the lists."""
    weights = [1 / (i + 1) for i in range(len(choices))]
    return rng.choices(choices, weights=weights)[0]


def _recipient(person: Person) -> dict[str, Any]:
    return {"emailAddress": {"name": person.name or person.address, "address": person.address}}


def _digest(*parts: object) -> str:
    return hashlib.sha256("/".join(str(p) for p in parts).encode()).hexdigest()[:24]


def _people_of(spec: MessageSpec, earlier: list[People], directory: Directory) -> People:
    people = People()
    if spec.same_people_as is not None:
        for name, shown in earlier[spec.same_people_as - 1].by_field.items():
            people.by_field[name].extend(shown)
    for name in FIELDS:
        recipients = spec.field(name)
        new = [
            person
            for kind, count in recipients.counts.items()
            for person in directory.new_people(kind, count, recipients, spec.named)
        ]
        directory.rng("order", len(earlier), name).shuffle(new)
        people.by_field[name] += new
    return people


def graph_messages(case: Case) -> list[dict[str, Any]]:
    """The case's messages as Graph's JSON for a message in Sent Items, in sending order."""
    directory = Directory(case)
    sender = directory.sender()
    shown: list[People] = []
    threads: list[str] = []
    messages = []
    for number, spec in enumerate(case.messages, start=1):
        people = _people_of(spec, shown, directory)
        shown.append(people)
        thread = threads[spec.same_thread_as - 1] if spec.same_thread_as else None
        threads.append(thread or f"AAQkAG{_digest(case.id, 'thread', number)}")
        messages.append(_message(case, number, spec, people, sender, threads[-1]))
    return messages


def _message(
    case: Case, number: int, spec: MessageSpec, people: People, sender: Person, thread: str
) -> dict[str, Any]:
    key = _digest(case.id, "message", number)
    author = _recipient(sender)
    sent = START + timedelta(hours=spec.hours_after)
    return {
        "id": f"AAMkAG{key}",
        "internetMessageId": f"<{key}@{INTERNAL_DOMAIN}>",
        "conversationId": thread,
        "subject": spec.subject,
        "sentDateTime": sent.strftime("%Y-%m-%dT%H:%M:%SZ"),
        "from": author,
        "sender": author,
        "toRecipients": [_recipient(p) for p in people.by_field["to"]],
        "ccRecipients": [_recipient(p) for p in people.by_field["cc"]],
        "bccRecipients": [_recipient(p) for p in people.by_field["bcc"]],
    }


def sender_of(case: Case) -> str:
    """The sending mailbox of the case (the same for all its messages)."""
    return Directory(case).sender().address


def last_sent(case: Case) -> datetime:
    return START + timedelta(hours=max(m.hours_after for m in case.messages))
