"""What a visible list reveals about the people on it, read from its subject, in many languages.

A mailing's subject often says what its recipients have in common: a vaccination reminder
to parents, a support group for survivors, a hardship loan. The lexicon is data in the
package, one reviewed file per language (``sweeper/rules/terms/<code>.txt``), each line a
category and a term::

    # comment
    health      vaccination
    victims     victim*
    health      mental health
    crime       =haft

A term is one or more words, matched without regard to accents or letter case (both sides
are folded to ASCII by ``anyascii``) and by stem (Snowball's stemmer for the term's
language, through ``snowballstemmer``), so plurals and inflections match:
``vaccinazione`` finds ``vaccinazioni``, ``survivor`` finds ``Survivors``. A word ending in
``*`` matches every word that begins with it (``victim*``: victimisation). In languages that
build compound words freely (German, Dutch), a word of four letters or more also matches at
the start of a longer word, and one of five or more anywhere inside one (``impfung`` in
``Masernimpfungen``, ``opfer`` in ``Gewaltopfer``); a word written ``=haft`` is matched as
a whole word only (``Haftung`` is liability, not custody); a word written ``clinic!`` is
matched exactly, not by stem (``Clinical trial`` is not a clinic). A term of one word of three
letters or fewer is matched exactly, not by stem: the stems of short words collide (Italian
stems "hive" to ``hiv``).

``organisation.languages`` chooses which languages' files apply (default: all), and
``severity.terms_dir`` may add an organisation's own files, named ``<code>.txt`` alike.
Text is searched in linear time (one Aho-Corasick pass over the folded words, then a stem
per word and language), and only its first 1,000 characters: Outlook's subjects hold 255,
and a stranger's subject of a megabyte must not cost seconds per message.
"""

from __future__ import annotations

import bisect
import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from functools import cache, lru_cache
from importlib import resources
from pathlib import Path
from typing import Any

from sweeper.errors import DataFileError

CATEGORIES: dict[str, str] = {
    "health": "health and treatment",
    "hiv": "HIV",
    "sexuality": "sexual life or orientation",
    "religion": "religion or belief",
    "origin": "ethnicity or immigration status",
    "crime": "criminal matters",
    "victims": "victims and witnesses",
    "abuse": "abuse and survivors",
    "care": "children and families in care",
    "hardship": "debt, benefits and hardship",
    "bereavement": "bereavement",
    "employment": "employment grievances and discipline",
    "politics": "political opinion or union membership",
}
"""Each category a term may carry, and how a reason names it."""

STEMMERS: dict[str, str] = {
    "en": "english",
    "fr": "french",
    "de": "german",
    "es": "spanish",
    "it": "italian",
    "nl": "dutch",
    "pt": "portuguese",
    "pl": "polish",
    "ca": "catalan",
    "cs": "czech",
    "da": "danish",
    "fi": "finnish",
    "el": "greek",
    "hu": "hungarian",
    "ga": "irish",
    "lt": "lithuanian",
    "no": "norwegian",
    "ro": "romanian",
    "ru": "russian",
    "sr": "serbian",
    "sv": "swedish",
    "tr": "turkish",
}
"""Language codes a term file may have, and the Snowball stemmer of each."""
COMPOUNDING = frozenset({"de", "nl", "da", "sv", "no", "fi", "hu"})
"""Languages that write compound words as one (Masernimpfung, slachtofferhulp)."""
BUILT_IN = ("en", "fr", "de", "es", "it", "nl", "pt", "pl")
"""The languages the package has a reviewed file for."""

EXACT_MAX = 3  # a word this short is matched exactly: stems of short words collide (hiv, hive)
HEAD_MIN = 4  # a compounding term this long matches at the start of a longer word
INSIDE_MIN = 5  # and this long anywhere inside one
WORD_SHOWN = 40  # characters of a matched word a reason shows
TEXT_READ = 1_000  # characters of a subject read, as for allowlist patterns (Outlook: 255)
_LINE = re.compile(r"^(\S+)\s+(.+?)\s*$")
_PART = re.compile(r"=?[^\W\d_]+(?:['’-][^\W\d_]+)*[*!]?")
_TOKENS = re.compile(r"[^\W_]+")
_FOLDED = re.compile(r"[a-z0-9]+")


LexiconError = DataFileError
"""A term file that cannot be used, in one line naming the file."""


@dataclass(frozen=True)
class Term:
    """One line of a term file."""

    text: str  # as written
    category: str
    language: str
    words: tuple[str, ...]  # folded, without the markers
    stems: tuple[str, ...]  # the stem of each word, in the term's language
    prefix: tuple[bool, ...]  # each word's trailing "*"
    whole: bool  # a leading "=": never part of a compound
    exact: bool = False  # a trailing "!" on a one-word term: that word, not its stem


@dataclass(frozen=True)
class Hit:
    """A term a text names: the word as written there, and what it reveals."""

    word: str
    term: Term
    languages: tuple[str, ...] = ()  # every language with a term as close; default the term's

    def describe(self) -> str:
        category = CATEGORIES.get(self.term.category, self.term.category)
        return f"{self.word!r} ({category}, {'/'.join(self.languages or (self.term.language,))})"


def fold(text: str) -> str:
    """Lower-case ASCII: ``"Überlebende"`` → ``"uberlebende"``, ``"Łódź"`` → ``"lodz"``."""
    from anyascii import anyascii

    return anyascii(text).lower()


@cache
def _stemmer(language: str) -> Any:
    import snowballstemmer

    return snowballstemmer.stemmer(STEMMERS[language])


def stem(word: str, language: str) -> str:
    """The Snowball stem of a folded word in ``language``."""
    return str(_stemmer(language).stemWord(word))


def parse_terms(text: str, language: str, source: str) -> list[Term]:
    """The terms of one file's text. ``source`` names the file in errors."""
    if language not in STEMMERS:
        raise LexiconError(f"{source}: {language!r} is not a language sweeper can stem")
    terms: list[Term] = []
    for number, raw in enumerate(text.splitlines(), 1):
        line = raw.split("#", 1)[0].strip()
        if not line:
            continue
        match = _LINE.match(line)
        if match is None:
            raise LexiconError(f"{source}:{number}: expected a category and a term")
        category, written = match.groups()
        if category not in CATEGORIES:
            known = ", ".join(CATEGORIES)
            raise LexiconError(f"{source}:{number}: unknown category {category!r} ({known})")
        terms.append(_term(written, category, language, f"{source}:{number}"))
        spelled = _umlauts_spelled_out(written) if language == "de" else written
        if spelled != written:  # "Ueberlebende" is how a keyboard without ü writes it
            terms.append(_term(spelled, category, language, f"{source}:{number}"))
    if not terms:
        raise LexiconError(f"{source}: no terms in the file")
    return terms


_UMLAUTS = str.maketrans({"ä": "ae", "ö": "oe", "ü": "ue", "Ä": "Ae", "Ö": "Oe", "Ü": "Ue"})


def _umlauts_spelled_out(written: str) -> str:
    return written.translate(_UMLAUTS)


def _term(written: str, category: str, language: str, where: str) -> Term:
    parts = written.split()
    if not all(_PART.fullmatch(p) for p in parts) or any("=" in p for p in parts[1:]):
        raise LexiconError(
            f"{where}: {written!r} is not a word (letters, with ' or - inside; "
            "'=' may open the first word, '*' may end any)"
        )
    words: list[_Word] = []
    prefix: list[bool] = []
    for part in parts:
        found = _words(part.strip("=*!"))
        words.extend(found)
        prefix.extend([False] * (len(found) - 1) + [part.endswith("*")] if found else [])
    if not words:
        raise LexiconError(f"{where}: {written!r} is not a word (two letters at least)")
    return Term(
        text=written,
        category=category,
        language=language,
        words=tuple(w.folded for w in words),
        stems=tuple(w.stem(language) for w in words),
        prefix=tuple(prefix),
        whole=parts[0].startswith("="),
        exact=len(parts) == 1 and parts[0].endswith("!"),
    )


@dataclass
class Lexicon:
    """Terms of several languages, indexed for one linear pass over a text."""

    terms: tuple[Term, ...]
    _by_stem: dict[tuple[str, str], list[Term]] = field(default_factory=dict, repr=False)
    _automaton: Any = field(default=None, repr=False)

    def __post_init__(self) -> None:
        import ahocorasick

        automaton = ahocorasick.Automaton()
        patterns: dict[str, list[tuple[str, Term]]] = {}
        for term in self.terms:
            first, is_prefix = term.words[0], term.prefix[0]
            if is_prefix:
                patterns.setdefault(" " + first, []).append(("start", term))
            elif term.exact or (len(term.words) == 1 and len(first) <= EXACT_MAX):
                patterns.setdefault(f" {first} ", []).append(("start", term))  # exactly
            else:
                self._by_stem.setdefault((term.language, term.stems[0]), []).append(term)
            if (
                term.language in COMPOUNDING
                and not (term.whole or term.exact)
                and len(term.words) == 1
            ):
                if len(first) >= INSIDE_MIN:
                    patterns.setdefault(first, []).append(("inside", term))
                elif len(first) >= HEAD_MIN and not is_prefix:
                    patterns.setdefault(" " + first, []).append(("start", term))
        for key, value in patterns.items():
            automaton.add_word(key, value)
        if patterns:
            automaton.make_automaton()
            self._automaton = automaton

    @property
    def languages(self) -> frozenset[str]:
        return frozenset(t.language for t in self.terms)

    def hits(self, text: str) -> list[Hit]:
        """The terms ``text`` names, each once, in the order their words appear. Only its
        first :data:`TEXT_READ` characters are read: a subject is written by strangers."""
        words = _words(text[:TEXT_READ])
        if not words:
            return []
        folded = [w.folded for w in words]
        found: list[tuple[int, Term]] = []
        stems_of = _Stems(words)
        for index in range(len(folded)):  # whole words first: they say the language best
            for language in sorted(self.languages):
                for term in self._by_stem.get((language, stems_of(index, language)), ()):
                    if _rest_matches(term, folded, index, stems_of):
                        found.append((index, term))
        found.extend(self._inside(words))
        best: dict[tuple[int, str], tuple[int, list[Term]]] = {}
        for index, term in found:  # one hit per word and category: the terms closest to
            # the word as written say its language best, and tied languages are all named
            score = _shared_start(folded[index], term.words[0])
            key = (index, term.category)
            if key not in best or score > best[key][0]:
                best[key] = (score, [term])
            elif score == best[key][0]:
                best[key][1].append(term)
        hits: dict[tuple[int, str], Hit] = {}
        for (index, category), (_, terms) in best.items():
            span = words[index : index + len(terms[0].words)]
            written = " ".join(dict.fromkeys(w.written for w in span))
            languages = tuple(dict.fromkeys(t.language for t in terms))
            hits[(index, category)] = Hit(written[:WORD_SHOWN], terms[0], languages)
        return [hits[key] for key in sorted(hits)]

    def _inside(self, words: Sequence[_Word]) -> Iterable[tuple[int, Term]]:
        """Prefix terms, and compound parts, found by one pass over the joined words."""
        if self._automaton is None:
            return
        folded = [w.folded for w in words]
        stems_of = _Stems(words)
        joined = " " + " ".join(folded) + " "
        starts: list[int] = []  # the offset in ``joined`` of each word's first letter
        offset = 1
        for word in folded:
            starts.append(offset)
            offset += len(word) + 1
        for end, entries in self._automaton.iter(joined):
            for kind, term in entries:
                first = term.words[0]
                begin = end - len(first) + 1  # where the term's first word begins
                index = bisect.bisect_right(starts, begin) - 1
                whole = kind == "inside" or len(term.words) == 1
                if whole or _rest_matches(term, folded, index, stems_of):
                    yield index, term


def _shared_start(word: str, term_word: str) -> int:
    """How many letters the two share from their start (a word inside a compound: all)."""
    if term_word in word:
        return len(term_word)
    shared = 0
    for a, b in zip(word, term_word, strict=False):
        if a != b:
            break
        shared += 1
    return shared


class _Stems:
    """Each word's stem in each language, computed at most once."""

    def __init__(self, words: Sequence[_Word]) -> None:
        self.words = words
        self.cache: dict[tuple[int, str], str] = {}

    def __call__(self, index: int, language: str) -> str:
        key = (index, language)
        if key not in self.cache:
            self.cache[key] = self.words[index].stem(language)
        return self.cache[key]


@lru_cache(maxsize=65_536)
def _stem_folded(source: str, language: str) -> str:
    """The stem of a word as written (lower case), folded: Snowball's stemmers know their
    language's accents (réfugiées and réfugié share ``réfugi``), so accents go after."""
    return fold(stem(source, language))


def _word_matches(term: Term, position: int, word: str, word_stem: str) -> bool:
    if term.prefix[position]:
        return word.startswith(term.words[position])
    return word_stem == term.stems[position]


def _rest_matches(term: Term, folded: Sequence[str], index: int, stems_of: _Stems) -> bool:
    """The words after the first, in the words after ``index``."""
    if index + len(term.words) > len(folded):
        return False
    return all(
        _word_matches(term, k, folded[index + k], stems_of(index + k, term.language))
        for k in range(1, len(term.words))
    )


@dataclass(frozen=True, slots=True)
class _Word:
    folded: str  # lower-case ASCII, as compared
    written: str  # the word as the text has it, for a reason to show
    source: str  # what is stemmed: the written word in lower case, where it folds to one

    def stem(self, language: str) -> str:
        return _stem_folded(self.source, language)


def _words(text: str) -> list[_Word]:
    """The words of ``text`` of two letters or more (``d'accueil`` is ``accueil``, ``à`` is
    nothing); a word that folds to several (``"Łódź-2024"`` is one, ``"5€"`` two) is split
    as folded."""
    words: list[_Word] = []
    for match in _TOKENS.finditer(text):
        written = match.group()
        parts = [p for p in _FOLDED.findall(fold(written)) if len(p) > 1]
        source = written.lower() if len(parts) == 1 else None
        words.extend(_Word(p, written, source or p) for p in parts)
    return words


def _built_in(language: str) -> str:
    return resources.files("sweeper.rules").joinpath("terms", f"{language}.txt").read_text("utf-8")


def load(languages: frozenset[str] | None = None, terms_dir: str | None = None) -> Lexicon:
    """The lexicon of ``languages`` (None: every language there is a file for), with the
    files of ``terms_dir`` added. Raises :class:`LexiconError` in one line naming the file.

    Built once per process for each choice, and again when the own files change."""
    return _load(languages, terms_dir, _signature(terms_dir))


def _signature(terms_dir: str | None) -> tuple[tuple[str, int, int], ...]:
    if not terms_dir:
        return ()
    try:
        return tuple(
            (p.name, p.stat().st_mtime_ns, p.stat().st_size)
            for p in sorted(Path(terms_dir).glob("*.txt"))
        )
    except OSError:
        return ()  # said by _own_files, in one line


@lru_cache(maxsize=8)
def _load(
    languages: frozenset[str] | None,
    terms_dir: str | None,
    signature: tuple[tuple[str, int, int], ...],
) -> Lexicon:
    texts: list[tuple[str, str, str]] = []  # (text, language, source)
    for language in BUILT_IN:
        texts.append((_built_in(language), language, f"sweeper/rules/terms/{language}.txt"))
    if terms_dir:
        texts.extend(_own_files(Path(terms_dir)))
    wanted = languages if languages is not None else {lang for _, lang, _ in texts}
    terms: list[Term] = []
    for text, language, source in texts:
        if language in wanted:
            terms.extend(parse_terms(text, language, source))
    return Lexicon(tuple(terms))


def _own_files(folder: Path) -> list[tuple[str, str, str]]:
    try:
        paths = sorted(folder.glob("*.txt"))
    except OSError as error:
        raise LexiconError(f"{folder}: {error.strerror or error}") from None
    if not folder.is_dir():
        raise LexiconError(f"{folder}: not a folder")
    out: list[tuple[str, str, str]] = []
    for path in paths:
        language = path.stem.lower()
        if language not in STEMMERS:
            known = ", ".join(sorted(STEMMERS))
            raise LexiconError(f"{path}: name the file after a language code ({known})")
        try:
            out.append((path.read_text("utf-8"), language, str(path)))
        except (OSError, UnicodeDecodeError) as error:
            raise LexiconError(f"{path}: cannot be read ({error})") from None
    return out


def check_own_terms(terms_dir: str | None) -> None:
    """Parse an organisation's own term files, so that a bad one is said at start-up."""
    if terms_dir:
        for text, language, source in _own_files(Path(terms_dir)):
            parse_terms(text, language, source)


def available_languages(terms_dir: str | None = None) -> frozenset[str]:
    """Codes ``organisation.languages`` may name: a built-in file's, or one of ``terms_dir``."""
    own = {lang for _, lang, _ in _own_files(Path(terms_dir))} if terms_dir else set()
    return frozenset(BUILT_IN) | own
