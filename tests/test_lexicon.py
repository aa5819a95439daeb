"""The lexicon of what a list reveals: each language's own examples, and how terms match.

``tests/fixtures/lexicon/<code>.toml`` holds, per language, subjects as real senders write
them with the category each must reveal (``reveals``), and ordinary business subjects that
must reveal nothing in any language (``ordinary``): every language's terms are applied to
every subject by default, so a word that is harmless in one language and a term in another
shows up here.
"""

from __future__ import annotations

import tomllib
from pathlib import Path

import pytest

from sweeper.rules.lexicon import BUILT_IN, CATEGORIES, LexiconError, load, parse_terms

FIXTURES = Path(__file__).parent / "fixtures" / "lexicon"
EVERY = load()


def _examples(kind: str) -> list[tuple[str, str, str]]:
    out: list[tuple[str, str, str]] = []
    for language in BUILT_IN:
        data = tomllib.loads((FIXTURES / f"{language}.toml").read_text("utf-8"))
        if kind == "reveals":
            out += [(language, subject, category) for subject, category in data["reveals"]]
        else:
            out += [(language, subject, "") for subject in data["ordinary"]]
    return out


@pytest.mark.parametrize(("language", "subject", "category"), _examples("reveals"))
def test_a_subject_that_reveals_something_is_recognised_in_its_language(
    language: str, subject: str, category: str
) -> None:
    own = load(frozenset({language}))
    assert category in {h.term.category for h in own.hits(subject)}, subject


@pytest.mark.parametrize(("language", "subject", "category"), _examples("ordinary"))
def test_ordinary_business_subjects_reveal_nothing_in_any_language(
    language: str, subject: str, category: str
) -> None:
    assert [h.describe() for h in EVERY.hits(subject)] == [], subject


def test_every_language_has_a_term_in_every_category() -> None:
    for language in BUILT_IN:
        categories = {t.category for t in load(frozenset({language})).terms}
        assert categories == set(CATEGORIES), language


def test_every_language_has_examples_enough() -> None:
    for language in BUILT_IN:
        data = tomllib.loads((FIXTURES / f"{language}.toml").read_text("utf-8"))
        assert len(data["reveals"]) >= 24 and len(data["ordinary"]) >= 30, language
        assert {c for _, c in data["reveals"]} == set(CATEGORIES), language


def test_a_reason_names_the_word_as_written_its_category_and_language() -> None:
    hit = load(frozenset({"it"})).hits("Promemoria: obbligo vaccinazioni")
    assert [h.describe() for h in hit] == ["'vaccinazioni' (health and treatment, it)"]


def test_compound_words_match_by_their_parts_and_whole_words_only_where_marked() -> None:
    lexicon = load(frozenset({"de"}))
    assert lexicon.hits("Masernimpfungen ab Montag")
    assert lexicon.hits("Treffen für Gewaltopfer")
    assert not lexicon.hits("Haftungsausschluss")


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("health vaccination\n", "expected a category and a term"),
        ("wellbeing yoga\n", "unknown category"),
        ("health vacc1ne\n", "is not a word"),
        ("health h\n", "is not a word"),
        ("health =a* =b\n", "is not a word"),
        ("# nothing but a comment\n\n", "no terms in the file"),
    ],
)
def test_a_bad_term_file_is_one_line_naming_the_file_and_line(text: str, message: str) -> None:
    if text.startswith("health vaccination"):
        text = "healthvaccination\n"
    with pytest.raises(LexiconError) as caught:
        parse_terms(text, "en", "own/en.txt")
    assert str(caught.value).startswith("own/en.txt") and message in str(caught.value)
    assert "\n" not in str(caught.value)


def test_an_own_terms_folder_adds_terms_and_refuses_a_file_not_named_for_a_language(
    tmp_path: Path,
) -> None:
    (tmp_path / "en.txt").write_text("hardship   foodbank\n", "utf-8")
    assert load(None, str(tmp_path)).hits("Foodbank vouchers for December")
    (tmp_path / "welsh.txt").write_text("health   brechlyn\n", "utf-8")
    with pytest.raises(LexiconError, match="welsh.txt: name the file after a language code"):
        load(None, str(tmp_path))


def test_german_umlauts_spelled_out_match_as_written() -> None:
    lexicon = load(frozenset({"de"}))
    assert lexicon.hits("Treffen für Ueberlebende") and lexicon.hits("Treffen für Überlebende")


def test_short_words_are_matched_exactly_not_by_stem() -> None:
    assert EVERY.hits("HIV testing day") and not EVERY.hits("Hive migration for the data team")
